//! A bare hyper server: the floor the gateway's per-request CPU is compared with (issue 16,
//! defect 6; `scripts/decode-cost`). The same stack as `qrbridge serve` (tokio, hyper 1 with
//! hyper-util's auto builder, plaintext on loopback) and nothing else: it reads the request body
//! and answers a fixed JSON body the size of a decode answer.
//!
//! `cargo run --release --example bare_hyper -- 127.0.0.1:8090`; stops on SIGTERM or Ctrl-C.

use std::convert::Infallible;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

const ANSWER: &str = r#"{"resultCode":"SUCCESS","resultMessage":"","decodeId":"0a4f0f6e-5c1a-4d2e-9a57-1f2b3c4d5e6f","codeType":"DYNAMIC","scheme":"PayNow","merchant":{"name":"BAKERY PTE LTD","city":"SINGAPORE","country":"SG","mcc":"5812","merchantId":"+6591234567"},"amount":{"currency":"SGD","value":"1250"},"expiresAt":"2026-12-05T21:30:00Z"}"#;

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let _ = req.into_body().collect().await;
    let mut r = Response::new(Full::new(Bytes::from_static(ANSWER.as_bytes())));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    // Two workers, as `qrbridge serve` has.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("bare hyper on {}", listener.local_addr()?);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (tcp, _) = accepted?;
                    tokio::spawn(async move {
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(tcp), hyper::service::service_fn(answer))
                            .await;
                    });
                }
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
