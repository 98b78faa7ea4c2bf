//! `qrbridge wallet-sim <scheme>`: wallet-side simulators, one per foreign wallet scheme, that speak
//! the scheme's standard (so the gateway is tested as a real wallet would use it), keep a ledger of
//! their users' money, and can misbehave on demand (answer F or U, be slow, be down).

use std::process::ExitCode;

pub mod aplus;

/// The scheme to simulate.
#[derive(clap::Subcommand)]
pub enum WalletSimCommand {
    /// An Alipay+ MPP wallet (merchant-presented mode): scans through userInitiatedPay, debits its
    /// user, notifies (notifyPayment), and serves cancelPayment / refund / inquiryPayment.
    #[command(subcommand)]
    Aplus(aplus::AplusCommand),
}

/// Runs a simulator command.
pub fn run(cmd: WalletSimCommand) -> ExitCode {
    match cmd {
        WalletSimCommand::Aplus(c) => aplus::run(c),
    }
}
