//! Command-line front end. One file per command family; each returns the process exit code.

mod fx;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "qrbridge", version, about = "Cross-border QR unified gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// FX tools: price an amount from a rates file.
    Fx(fx::FxArgs),
}

/// Parses the command line and runs the chosen command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Fx(args) => fx::run(args),
    }
}
