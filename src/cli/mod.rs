//! Command-line front end. One file per command family; each returns the process exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod emv;
mod fx;

#[derive(Parser)]
#[command(name = "qrbridge", version, about = "Cross-border QR unified gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode and validate EMVCo merchant-presented QR payloads.
    Decode(emv::DecodeArgs),
    /// Encode a payload from a `fields` JSON object (as printed by `decode --json`).
    Encode(emv::EncodeArgs),
    /// FX tools: price an amount from a rates file.
    Fx(fx::FxArgs),
}

/// Parses the command line and runs the chosen command.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Decode(args) => emv::decode(args),
        Command::Encode(args) => emv::encode(args),
        Command::Fx(args) => fx::run(args),
    }
}
