//! Command-line front end. One file per command family; each returns the process exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod acquirer_sim;
mod admin;
mod config_check;
mod emv;
mod fx;
mod iso8583;
mod reconcile;
mod serve;
mod wallet;
mod wallet_sim;

/// `qrbridge --version`: the crate version and the git commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("QRBRIDGE_GIT_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(name = "qrbridge", version = VERSION, about = "Cross-border QR unified gateway")]
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
    /// ISO 8583 messages: decode hex captures to JSON, encode JSON to hex.
    #[command(subcommand)]
    Iso8583(iso8583::Iso8583Command),
    /// Run the acquirer simulator (ISO 8583 over mutual TLS) with a JSON-exportable ledger.
    AcquirerSim(acquirer_sim::Args),
    /// Run the gateway; without --config, the embedded Singapore demo (authentication off).
    Serve(serve::Args),
    /// Wallet API v1 client: signed decode, quote, pay, inquiry, cancel, refund requests.
    Wallet(wallet::Args),
    /// Wallet-side simulators of the foreign schemes: `wallet-sim aplus serve | pay | ledger`.
    #[command(subcommand)]
    WalletSim(wallet_sim::WalletSimCommand),
    /// Operator tools over the journal (offline): payments, notices, manual reviews, exports.
    Admin(admin::Args),
    /// Reconcile the acquirer's settlement file against the journal (exit 0 clean, 1 breaks, 2 bad input).
    Reconcile(reconcile::Args),
    /// Configuration tools: `config check FILE` reports every problem of a file.
    #[command(subcommand)]
    Config(config_check::ConfigCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff, section 1) on stdout: `qrbridge man > qrbridge.1`.
    Man,
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
        Command::Iso8583(cmd) => iso8583::run(cmd),
        Command::AcquirerSim(args) => acquirer_sim::run(args),
        Command::Reconcile(args) => reconcile::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Wallet(args) => wallet::run(args),
        Command::WalletSim(cmd) => wallet_sim::run(cmd),
        Command::Admin(args) => admin::run(args),
        Command::Config(cmd) => config_check::run(cmd),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            // Into a buffer: the generator panics on a write error (e.g. a closed pipe).
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "qrbridge", &mut out);
            use std::io::Write;
            let _ = std::io::stdout().write_all(&out);
            ExitCode::SUCCESS
        }
        Command::Man => {
            use clap::CommandFactory;
            let man = clap_mangen::Man::new(Cli::command());
            let mut out = Vec::new();
            match man.render(&mut out) {
                Ok(()) => {
                    use std::io::Write;
                    let _ = std::io::stdout().write_all(&out);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
