//! `qrbridge wallet-sim <scheme>`: wallet-side simulators, one per foreign wallet scheme, that speak
//! the scheme's standard (so the gateway is tested as a real wallet would use it), keep a ledger of
//! their users' money, and can misbehave on demand (answer F or U, be slow, be down).

use std::process::ExitCode;

pub mod aplus;
pub mod iso20022;

/// The scheme to simulate.
#[derive(clap::Subcommand)]
pub enum WalletSimCommand {
    /// An Alipay+ MPP wallet (merchant-presented mode): scans through userInitiatedPay, debits its
    /// user, notifies (notifyPayment), and serves cancelPayment / refund / inquiryPayment.
    #[command(subcommand)]
    Aplus(aplus::AplusCommand),
    /// An ISO 20022 wallet (the payer's PSP, CBPR+ or Nexus profile): asks quotes, sends pacs.008,
    /// pacs.028 and camt.056, takes our pacs.002 notifications and pacs.004 returns.
    #[command(subcommand)]
    Iso20022(iso20022::Iso20022Command),
}

/// Runs a simulator command.
pub fn run(cmd: WalletSimCommand) -> ExitCode {
    match cmd {
        WalletSimCommand::Aplus(c) => aplus::run(c),
        WalletSimCommand::Iso20022(c) => iso20022::run(c),
    }
}
