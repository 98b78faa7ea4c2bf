//! Command-line front end. One file per command family; each returns the process exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod acquirer_sim;
mod iso8583;

#[derive(Parser)]
#[command(name = "qrbridge", version, about = "Cross-border QR unified gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// ISO 8583 messages: decode hex captures to JSON, encode JSON to hex.
    #[command(subcommand)]
    Iso8583(iso8583::Iso8583Command),
    /// Run the acquirer simulator (ISO 8583 over mutual TLS) with a JSON-exportable ledger.
    AcquirerSim(acquirer_sim::Args),
}

/// Parses the command line and runs the chosen command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Iso8583(cmd) => iso8583::run(cmd),
        Command::AcquirerSim(args) => acquirer_sim::run(args),
    }
}
