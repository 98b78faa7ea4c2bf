//! Server benchmarks: signing + verifying one request (the per-request cost of authentication), and
//! signed `POST /v1/payments/inquiry` round trips over TLS 1.3 on loopback against a handler that
//! answers at once — HTTP/1.1 with one request in flight, HTTP/2 with 32 in flight on one
//! connection. What the server adds per request, before the gateway's own work.
//!
//! Run briefly: `cargo bench --bench server -- --measurement-time 3 --warm-up-time 1`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use qrbridge::money::{Amount, Currency};
use qrbridge::payment::*;
use qrbridge::scheme::native::auth::{
    AuthConfig, Authenticator, ClientKey, Credentials, Secret, SignedParts, request_time,
    sign_request_hmac,
};
use qrbridge::server::*;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

const CLIENT: &str = "wallet-bench";
const KEY: &[u8] = b"bench-key-bench-key-bench-key-32";
const PATH: &str = "/v1/payments/inquiry";

struct Instant200;

fn money(minor: u64) -> Result<Money, ApiError> {
    let c = Currency::from_code("SGD").map_err(|e| ApiError::param("currency", e.to_string()))?;
    Amount::from_minor(minor, c)
        .map(Money)
        .map_err(|e| ApiError::param("value", e.to_string()))
}

fn nope<T>() -> Handled<T> {
    Err(ApiError::NotFound { path: "-".into() })
}

impl Pipeline for Instant200 {
    fn decode(
        self: Arc<Self>,
        _: RequestContext,
        _: DecodeRequest,
    ) -> BoxFuture<'static, Handled<DecodeResponse>> {
        Box::pin(async move { nope() })
    }
    fn quote(
        self: Arc<Self>,
        _: RequestContext,
        _: QuoteRequest,
    ) -> BoxFuture<'static, Handled<QuoteResponse>> {
        Box::pin(async move { nope() })
    }
    fn pay(
        self: Arc<Self>,
        _: RequestContext,
        _: PaymentRequest,
    ) -> BoxFuture<'static, Handled<PaymentResponse>> {
        Box::pin(async move { nope() })
    }
    fn inquire_payment(
        self: Arc<Self>,
        _: RequestContext,
        req: PaymentInquiryRequest,
    ) -> BoxFuture<'static, Handled<PaymentResponse>> {
        Box::pin(async move {
            let PaymentRef::RequestId(r) = req.payment else {
                return nope();
            };
            Ok(Answer::ok(PaymentResponse {
                merchant: None,
                scheme_ref: None,
                payment_id: r.clone(),
                payment_request_id: r,
                payment_status: PaymentStatus::Success,
                merchant_amount: money(1250)?,
                payer_amount: money(1250)?,
                refunded_amount: None,
                acquirer: None,
            }))
        })
    }
    fn cancel(
        self: Arc<Self>,
        _: RequestContext,
        _: CancelRequest,
    ) -> BoxFuture<'static, Handled<CancelResponse>> {
        Box::pin(async move { nope() })
    }
    fn refund(
        self: Arc<Self>,
        _: RequestContext,
        _: RefundRequest,
    ) -> BoxFuture<'static, Handled<RefundResponse>> {
        Box::pin(async move { nope() })
    }
    fn inquire_refund(
        self: Arc<Self>,
        _: RequestContext,
        _: RefundInquiryRequest,
    ) -> BoxFuture<'static, Handled<RefundResponse>> {
        Box::pin(async move { nope() })
    }
}

fn credentials() -> Credentials {
    Credentials::new().with_key(CLIENT, 1, ClientKey::HmacSha256(Secret::new(KEY.to_vec())))
}

static COUNTER: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);

fn failed(why: impl std::fmt::Display) {
    if FAILED.fetch_add(1, Ordering::Relaxed) == 0 {
        eprintln!("first failed request: {why}");
    }
}

/// A fresh signed inquiry (unique body, so never a replay).
fn signed() -> (Vec<u8>, String, String) {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let body = format!(r#"{{"paymentRequestId":"PR-{n:012}"}}"#).into_bytes();
    let time = request_time(SystemTime::now());
    let sig = sign_request_hmac(
        &Secret::new(KEY.to_vec()),
        1,
        "POST",
        PATH,
        CLIENT,
        &time,
        &body,
    );
    (body, time, sig)
}

fn auth(c: &mut Criterion) {
    let Ok(authenticator) = Authenticator::new(AuthConfig::signatures(credentials())) else {
        return;
    };
    c.bench_function(
        "auth: sign + verify one request (HMAC-SHA256, ~40 B body)",
        |b| {
            b.iter(|| {
                let (body, time, sig) = signed();
                let parts = SignedParts {
                    method: "POST",
                    path: PATH,
                    client_id: Some(CLIENT),
                    request_time: Some(&time),
                    signature: Some(&sig),
                    body: &body,
                };
                black_box(authenticator.verify(&parts).is_ok())
            })
        },
    );
}

fn request(body: Vec<u8>, time: String, sig: String, h2: bool) -> Option<Request<Full<Bytes>>> {
    let uri = if h2 {
        format!("https://localhost{PATH}")
    } else {
        PATH.to_owned()
    };
    Request::builder()
        .method("POST")
        .uri(uri)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("client-id", CLIENT)
        .header("request-time", time)
        .header("signature", sig)
        .body(Full::new(Bytes::from(body)))
        .ok()
}

async fn tls_stream(
    addr: std::net::SocketAddr,
    ca: &str,
    alpn: &[u8],
) -> Option<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.ok()?).ok()?;
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .ok()?
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(addr).await.ok()?;
    tcp.set_nodelay(true).ok()?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").ok()?, tcp)
        .await
        .ok()
}

fn server(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    else {
        return;
    };
    let config = ServerConfig {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        transport: Transport::Tls(TlsSettings::default()),
        limits: Limits::default(),
        auth: AuthConfig::signatures(credentials()),
    };
    let Ok(running) = rt.block_on(RunningServer::start(
        config,
        Arc::new(Instant200),
        health::always_ready(),
    )) else {
        return;
    };
    let Some(ca) = running.generated_pki().map(|p| p.ca_cert.clone()) else {
        return;
    };
    let addr = running.local_addr();

    let Some(mut h1) = rt.block_on(async {
        let io = tls_stream(addr, &ca, b"http/1.1").await?;
        let (s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .ok()?;
        tokio::spawn(conn);
        Some(s)
    }) else {
        return;
    };
    let mut group = c.benchmark_group("server");
    group.throughput(Throughput::Elements(1));
    group.bench_function("signed inquiry over TLS 1.3, HTTP/1.1, 1 in flight", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let (body, time, sig) = signed();
                    let Some(req) = request(body, time, sig, false) else {
                        break;
                    };
                    if let Err(e) = h1.ready().await {
                        failed(e);
                        break;
                    }
                    match h1.send_request(req).await {
                        Ok(resp) => {
                            if !resp.status().is_success() {
                                failed(resp.status());
                            }
                            let _ = black_box(resp.into_body().collect().await);
                        }
                        Err(e) => failed(e),
                    }
                }
                start.elapsed()
            })
        })
    });

    let Some(h2) = rt.block_on(async {
        let io = tls_stream(addr, &ca, b"h2").await?;
        let (s, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                .await
                .ok()?;
        tokio::spawn(conn);
        Some(s)
    }) else {
        return;
    };
    const IN_FLIGHT: u64 = 32;
    group.throughput(Throughput::Elements(IN_FLIGHT));
    group.bench_function("signed inquiry over TLS 1.3, HTTP/2, 32 in flight", |b| {
        b.iter_custom(|iters| {
            let h2 = h2.clone();
            rt.block_on(async move {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..IN_FLIGHT {
                        let mut sender = h2.clone();
                        let (body, time, sig) = signed();
                        let req = request(body, time, sig, true);
                        set.spawn(async move {
                            let Some(req) = req else { return };
                            if let Err(e) = sender.ready().await {
                                return failed(e);
                            }
                            match sender.send_request(req).await {
                                Ok(resp) => {
                                    if !resp.status().is_success() {
                                        failed(resp.status());
                                    }
                                    let _ = resp.into_body().collect().await;
                                }
                                Err(e) => failed(e),
                            }
                        });
                    }
                    while set.join_next().await.is_some() {}
                }
                start.elapsed()
            })
        })
    });
    group.finish();
    let report = rt.block_on(running.shutdown(Duration::from_secs(5)));
    println!(
        "shutdown: {report:?}; requests sent: {}, failed: {}",
        COUNTER.load(Ordering::Relaxed),
        FAILED.load(Ordering::Relaxed)
    );
}

criterion_group!(benches, auth, server);
criterion_main!(benches);
