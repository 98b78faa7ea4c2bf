//! The operator listener (`[operator] listen`): plaintext HTTP/1.1 serving `GET /metrics`
//! (Prometheus text), `GET /healthz` and `GET /readyz`, apart from the wallet-facing listener so
//! that wallets never see it. Bind it to a loopback or an internal address only.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::server::health::Readiness;

use crate::telemetry::metrics;

/// A running operator listener.
pub struct OperatorListener {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

/// Most operator connections at once (scrapers and probes are few).
const MAX_CONNECTIONS: usize = 64;

impl OperatorListener {
    /// Binds and serves until [`OperatorListener::stop`].
    pub async fn start(addr: SocketAddr, readiness: Readiness) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let task = tokio::spawn(async move {
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (tcp, _) = match listener.accept().await {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "operator listener: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let readiness = readiness.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let service = hyper::service::service_fn(move |req| {
                        let readiness = readiness.clone();
                        async move { Ok::<_, Infallible>(answer(&req, &readiness)) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10))
                        .serve_connection(TokioIo::new(tcp), service);
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "operator connection");
                    }
                });
            }
        });
        Ok(OperatorListener { addr, task })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting (connections in progress end with the runtime).
    pub fn stop(self) {
        self.task.abort();
    }
}

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn answer(req: &Request<Incoming>, readiness: &Readiness) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
    }
    match req.uri().path() {
        "/metrics" => text(StatusCode::OK, metrics::CONTENT_TYPE, metrics::render()),
        "/healthz" => text(StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" => match readiness() {
            Ok(()) => text(StatusCode::OK, "text/plain", "ready\n"),
            Err(e) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("{e}\n"),
            ),
        },
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}
