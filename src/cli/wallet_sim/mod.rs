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
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use qrbridge::http_client::{HttpClient, OutboundRequest, target};
use serde_json::Value;

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

/// The exit code of a simulator command: 0, or 1 with the error on stderr.
pub(crate) fn exit(done: Result<(), String>) -> ExitCode {
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// A request to a running simulator's control endpoints (`/sim/...`): `body` as JSON (none when
/// null), the JSON answer, or the simulator's `error` when it is not 200. `answer_timeout` bounds
/// the wait; `max_answer_bytes` raises the client's default answer limit.
pub(crate) async fn call(
    wallet: &str,
    method: Method,
    path: &str,
    body: &Value,
    answer_timeout: Duration,
    max_answer_bytes: Option<usize>,
) -> Result<Value, String> {
    let t = target(&format!("{}{path}", wallet.trim_end_matches('/')))?;
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let mut client = HttpClient::new(None).with_timeouts(Duration::from_secs(5), answer_timeout);
    if let Some(max) = max_answer_bytes {
        client = client.with_max_answer_bytes(max);
    }
    let answer = client
        .send(OutboundRequest {
            method,
            target: t,
            content_type: (!bytes.is_empty()).then_some("application/json"),
            headers: Vec::new(),
            body: bytes,
        })
        .await
        .map_err(|e| format!("{wallet}: {e}"))?;
    let v: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| format!("{wallet}: answer not JSON: {e}"))?;
    if answer.status != StatusCode::OK {
        return Err(format!("{wallet}{path}: {}", v["error"]));
    }
    Ok(v)
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
