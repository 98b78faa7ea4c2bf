//! `qrbridge wallet-sim <scheme>`: wallet-side simulators, one per foreign wallet scheme, that speak
//! the scheme's standard (so the gateway is tested as a real wallet would use it), keep a ledger of
//! their users' money, and can misbehave on demand (answer F or U, be slow, be down).

use std::convert::Infallible;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

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

/// A simulator's server side, shared by every scheme's simulator: plain HTTP/1 on `listener`, each
/// request answered by `handle(wallet, request)`, each connection bounded to 120 s; returns after
/// `stop_after` seconds, on Ctrl-C, or when `stopped` is notified (the simulator's `stop` command).
pub(crate) async fn serve_until<W, F, Fut>(
    listener: tokio::net::TcpListener,
    wallet: Arc<W>,
    handle: F,
    stop_after: Option<u64>,
    stopped: &tokio::sync::Notify,
) where
    W: Send + Sync + 'static,
    F: Fn(Arc<W>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let accept = async {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let w = wallet.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let w = w.clone();
                    async move { Ok::<_, Infallible>(handle(w, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service);
                let _ = tokio::time::timeout(Duration::from_secs(120), conn).await;
            });
        }
    };
    let stop = async {
        match stop_after {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::select! {
        () = accept => {}
        () = stop => {}
        () = stopped.notified() => {}
    }
}
