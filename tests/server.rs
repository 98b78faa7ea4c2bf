//! The wallet-facing server over real sockets on 127.0.0.1:0: TLS 1.3 with rcgen certificates,
//! HTTP/1.1 and HTTP/2 clients (hyper over tokio-rustls), mutual TLS, limits, JSON errors,
//! signatures, graceful shutdown, health, and the written specs (openapi.yaml, errors.md) checked
//! against the code. The gateway is a test double here; every loop is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Request, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use qrbridge::money::{Amount, Currency};
use qrbridge::payment::*;
use qrbridge::scheme::native::Route;
use qrbridge::scheme::native::auth::{
    self, AuthConfig, ClientKey, Credentials, Secret, sign_request_hmac, verify_response_hmac,
};
use qrbridge::server::*;
use qrbridge::tls::pki::Pki;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

const CLIENT: &str = "wallet-my-01";
const KEY: &[u8] = b"test-key-for-wallet-my-01-32byte";

// ---------------------------------------------------------------------------------------------
// The gateway double
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct TestApi {
    calls: Mutex<Vec<(&'static str, String)>>,
    entered: Notify,
    release: Notify,
    slow_finished: std::sync::atomic::AtomicUsize,
}

fn money(code: &str, minor: u64) -> Money {
    Money(Amount::from_minor(minor, Currency::from_code(code).unwrap()).unwrap())
}

fn id(s: &str) -> RequestId {
    RequestId::new(s).unwrap()
}

fn payment(request_id: &RequestId, status: PaymentStatus) -> PaymentResponse {
    PaymentResponse {
        merchant: None,
        scheme_ref: None,
        payment_id: id("P-1"),
        payment_request_id: request_id.clone(),
        payment_status: status,
        merchant_amount: money("SGD", 1250),
        payer_amount: money("MYR", 4321),
        refunded_amount: None,
        acquirer: Some(AcquirerResult {
            stan: "000001".into(),
            rrn: "632512000001".into(),
            auth_code: None,
            response_code: "05".into(),
        }),
    }
}

fn refund(request_id: RequestId) -> RefundResponse {
    RefundResponse {
        refund_id: id("R-1"),
        refund_request_id: request_id,
        payment_id: id("P-1"),
        refund_status: RefundStatus::Success,
        refund_amount: money("SGD", 250),
        payer_refund_amount: money("MYR", 864),
    }
}

impl TestApi {
    fn record(&self, route: &'static str, ctx: &RequestContext) {
        self.calls
            .lock()
            .unwrap()
            .push((route, ctx.client_id.clone()));
    }
}

impl Pipeline for TestApi {
    fn decode(
        self: Arc<Self>,
        ctx: RequestContext,
        req: DecodeRequest,
    ) -> BoxFuture<'static, Handled<DecodeResponse>> {
        Box::pin(async move {
            self.record("decode", &ctx);
            Ok(Answer::ok(DecodeResponse {
                decode_id: id("D-1"),
                code_type: CodeType::Dynamic,
                scheme: "SGQR".into(),
                merchant: Merchant {
                    name: "Kopi Stall".into(),
                    city: "Singapore".into(),
                    country: "SG".into(),
                    mcc: "5812".into(),
                    merchant_id: req.decode_request_id.to_string(),
                },
                amount: Some(money("SGD", 1250)),
                expires_at: "2026-11-21T11:00:00Z".into(),
            }))
        })
    }

    fn quote(
        self: Arc<Self>,
        ctx: RequestContext,
        req: QuoteRequest,
    ) -> BoxFuture<'static, Handled<QuoteResponse>> {
        Box::pin(async move {
            self.record("quote", &ctx);
            if req.decode_id.as_str() == "D-EXPIRED" {
                return Err(ApiError::OrderNotFound {
                    what: "decode",
                    id: req.decode_id.to_string(),
                });
            }
            Ok(Answer::ok(QuoteResponse {
                quote_id: id("Q-1"),
                merchant_amount: req.amount.unwrap_or(money("SGD", 1250)),
                payer_amount: money(req.payer_currency.code(), 4321),
                rate: "3.4568".into(),
                mid_rate: "3.4395".into(),
                markup_bps: 50,
                effective_rate: "3.4568".into(),
                expires_at: "2026-11-21T11:00:00Z".into(),
            }))
        })
    }

    fn pay(
        self: Arc<Self>,
        ctx: RequestContext,
        req: PaymentRequest,
    ) -> BoxFuture<'static, Handled<PaymentResponse>> {
        Box::pin(async move {
            self.record("pay", &ctx);
            match req.quote_id.as_str() {
                "Q-SLOW" => {
                    self.entered.notify_one();
                    self.release.notified().await;
                    self.slow_finished.fetch_add(1, Ordering::SeqCst);
                    Ok(Answer::ok(payment(
                        &req.payment_request_id,
                        PaymentStatus::Success,
                    )))
                }
                "Q-DECLINE" => Ok(Answer::failed(
                    payment(&req.payment_request_id, PaymentStatus::Fail),
                    ApiError::AcquirerDeclined {
                        response_code: "05".into(),
                    },
                )),
                "Q-EXPIRED" => Err(ApiError::QuoteExpired {
                    quote_id: "Q-EXPIRED".into(),
                    expired_at: "2026-11-21T10:00:00Z".into(),
                }),
                "Q-PANIC" => panic!("a bug in the gateway"),
                _ => Ok(Answer::ok(payment(
                    &req.payment_request_id,
                    PaymentStatus::Success,
                ))),
            }
        })
    }

    fn inquire_payment(
        self: Arc<Self>,
        ctx: RequestContext,
        req: PaymentInquiryRequest,
    ) -> BoxFuture<'static, Handled<PaymentResponse>> {
        Box::pin(async move {
            self.record("inquire_payment", &ctx);
            let request_id = match req.payment {
                PaymentRef::RequestId(r) => r,
                PaymentRef::PaymentId(_) => id("PR-1"),
            };
            Ok(Answer::ok(payment(&request_id, PaymentStatus::Reversed)))
        })
    }

    fn cancel(
        self: Arc<Self>,
        ctx: RequestContext,
        req: CancelRequest,
    ) -> BoxFuture<'static, Handled<CancelResponse>> {
        Box::pin(async move {
            self.record("cancel", &ctx);
            Ok(Answer::ok(CancelResponse {
                payment_id: id("P-1"),
                payment_request_id: req.payment_request_id,
                payment_status: PaymentStatus::Cancelled,
            }))
        })
    }

    fn refund(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RefundRequest,
    ) -> BoxFuture<'static, Handled<RefundResponse>> {
        Box::pin(async move {
            self.record("refund", &ctx);
            Ok(Answer::ok(refund(req.refund_request_id)))
        })
    }

    fn inquire_refund(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RefundInquiryRequest,
    ) -> BoxFuture<'static, Handled<RefundResponse>> {
        Box::pin(async move {
            self.record("inquire_refund", &ctx);
            let request_id = match req.refund {
                RefundRef::RequestId(r) => r,
                RefundRef::RefundId(_) => id("RR-1"),
            };
            Ok(Answer::ok(refund(request_id)))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Servers and clients
// ---------------------------------------------------------------------------------------------

fn credentials() -> Credentials {
    Credentials::new().with_key(CLIENT, 1, ClientKey::HmacSha256(Secret::new(KEY.to_vec())))
}

fn limits() -> Limits {
    Limits {
        max_body_bytes: 4096,
        ..Limits::default()
    }
}

fn config(transport: Transport) -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        transport,
        limits: limits(),
        auth: AuthConfig::signatures(credentials()),
    }
}

struct Running {
    server: RunningServer,
    api: Arc<TestApi>,
    ca: String,
}

async fn start_with(config: ServerConfig, readiness: health::Readiness) -> Running {
    let api = Arc::new(TestApi::default());
    let server = RunningServer::start(config, api.clone(), readiness)
        .await
        .unwrap();
    let ca = server
        .generated_pki()
        .map(|p| p.ca_cert.clone())
        .unwrap_or_default();
    Running { server, api, ca }
}

async fn start_tls() -> Running {
    start_with(
        config(Transport::Tls(TlsSettings::default())),
        health::always_ready(),
    )
    .await
}

fn roots(ca_pem: &str) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    roots
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_tls(
    ca_pem: &str,
    alpn: &[u8],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut c = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots(ca_pem))
        .with_no_client_auth();
    c.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(c)
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

async fn connect_with(
    addr: SocketAddr,
    tls: Option<Arc<ClientConfig>>,
    h2: bool,
) -> Result<Sender, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    macro_rules! handshake {
        ($io:expr) => {
            if h2 {
                let (s, c) = hyper::client::conn::http2::handshake(TokioExecutor::new(), $io)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(c);
                Sender::H2(s)
            } else {
                let (s, c) = hyper::client::conn::http1::handshake($io)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(c);
                Sender::H1(s)
            }
        };
    }
    Ok(match tls {
        None => handshake!(TokioIo::new(tcp)),
        Some(config) => {
            let name = ServerName::try_from("localhost").unwrap();
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| e.to_string())?;
            handshake!(TokioIo::new(stream))
        }
    })
}

async fn connect(r: &Running, h2: bool) -> Sender {
    let alpn: &[u8] = if h2 { b"h2" } else { b"http/1.1" };
    let tls = (!r.ca.is_empty()).then(|| client_tls(&r.ca, alpn, &[&rustls::version::TLS13]));
    connect_with(r.server.local_addr(), tls, h2).await.unwrap()
}

struct Reply {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
    fn code(&self) -> String {
        self.json()["result"]["resultCode"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    fn message(&self) -> String {
        self.json()["result"]["resultMessage"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

async fn send(
    sender: &mut Sender,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<Reply, String> {
    let mut req = Request::builder().method(method);
    req = match sender {
        Sender::H1(_) => req.uri(path).header("host", "localhost"),
        Sender::H2(_) => req.uri(format!("https://localhost{path}")),
    };
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let req = req.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
    let resp = match sender {
        Sender::H1(s) => {
            s.ready().await.map_err(|e| e.to_string())?;
            s.send_request(req).await
        }
        Sender::H2(s) => {
            s.ready().await.map_err(|e| e.to_string())?;
            s.send_request(req).await
        }
    }
    .map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Reply {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    })
}

fn now() -> String {
    auth::request_time(SystemTime::now())
}

fn signed_headers(
    method: &str,
    path: &str,
    time: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".to_owned()),
        ("client-id", CLIENT.to_owned()),
        ("request-time", time.to_owned()),
        (
            "signature",
            sign_request_hmac(
                &Secret::new(KEY.to_vec()),
                1,
                method,
                path,
                CLIENT,
                time,
                body,
            ),
        ),
    ]
}

async fn post(sender: &mut Sender, path: &str, body: &Value) -> Reply {
    let bytes = serde_json::to_vec(body).unwrap();
    let headers = signed_headers("POST", path, &now(), &bytes);
    send(sender, "POST", path, &headers, &bytes).await.unwrap()
}

fn valid_bodies() -> Vec<(Route, Value)> {
    vec![
        (
            Route::Decode,
            json!({"decodeRequestId":"DR-1","customerId":"cust-42","codeValue":"000201010212","payerCurrency":"MYR"}),
        ),
        (
            Route::Quote,
            json!({"quoteRequestId":"QR-1","decodeId":"D-1","amount":{"currency":"SGD","value":"1250"},"payerCurrency":"MYR"}),
        ),
        (
            Route::Pay,
            json!({"paymentRequestId":"PR-1","quoteId":"Q-1","customerId":"cust-42"}),
        ),
        (Route::PaymentInquiry, json!({"paymentRequestId":"PR-1"})),
        (Route::Cancel, json!({"paymentRequestId":"PR-1"})),
        (
            Route::Refund,
            json!({"refundRequestId":"RR-1","paymentId":"P-1","refundAmount":{"currency":"SGD","value":"250"},"reason":"changed mind"}),
        ),
        (Route::RefundInquiry, json!({"refundId":"R-1"})),
    ]
}

// ---------------------------------------------------------------------------------------------
// Routing, protocols, TLS
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_wallet_route_reaches_its_handler_over_http1_and_http2() {
    let r = start_tls().await;
    for h2 in [false, true] {
        let mut c = connect(&r, h2).await;
        for (route, body) in valid_bodies() {
            let reply = post(&mut c, route.path(), &body).await;
            assert_eq!(reply.status, StatusCode::OK, "{route:?}: {:?}", reply.body);
            assert_eq!(
                reply.version,
                if h2 {
                    Version::HTTP_2
                } else {
                    Version::HTTP_11
                }
            );
            let v = reply.json();
            assert_eq!(v["result"]["resultStatus"], "S");
            assert_eq!(v["result"]["resultCode"], "SUCCESS");
        }
    }
    let calls = r.api.calls.lock().unwrap().clone();
    let names: Vec<&str> = calls.iter().map(|(n, _)| *n).collect();
    let once = [
        "decode",
        "quote",
        "pay",
        "inquire_payment",
        "cancel",
        "refund",
        "inquire_refund",
    ];
    assert_eq!(names, [once, once].concat());
    assert!(calls.iter().all(|(_, client)| client == CLIENT));
}

#[tokio::test]
async fn response_bodies_carry_the_wire_fields() {
    let r = start_tls().await;
    let mut c = connect(&r, false).await;
    let (_, body) = valid_bodies().remove(1);
    let v = post(&mut c, "/v1/quotes", &body).await.json();
    assert_eq!(v["payerAmount"], json!({"currency":"MYR","value":"4321"}));
    assert_eq!(
        v["merchantAmount"],
        json!({"currency":"SGD","value":"1250"})
    );
    assert_eq!(v["markupBps"], 50);
    assert_eq!(v["quoteId"], "Q-1");
}

#[tokio::test]
async fn responses_are_signed_and_the_signature_verifies() {
    let r = start_tls().await;
    let mut c = connect(&r, false).await;
    let (route, body) = valid_bodies().remove(2);
    let reply = post(&mut c, route.path(), &body).await;
    let h = |n: &str| reply.headers.get(n).unwrap().to_str().unwrap().to_owned();
    assert_eq!(h("client-id"), CLIENT);
    verify_response_hmac(
        &Secret::new(KEY.to_vec()),
        "POST",
        route.path(),
        CLIENT,
        &h("response-time"),
        &h("signature"),
        &reply.body,
    )
    .unwrap();
    // and a flipped byte does not verify
    let mut tampered = reply.body.to_vec();
    tampered[3] ^= 1;
    assert!(
        verify_response_hmac(
            &Secret::new(KEY.to_vec()),
            "POST",
            route.path(),
            CLIENT,
            &h("response-time"),
            &h("signature"),
            &tampered,
        )
        .is_err()
    );
}

#[tokio::test]
async fn a_tls12_only_client_cannot_connect() {
    let r = start_tls().await;
    let tls12 = client_tls(&r.ca, b"http/1.1", &[&rustls::version::TLS12]);
    let err = connect_with(r.server.local_addr(), Some(tls12), false)
        .await
        .err()
        .expect("TLS 1.2 handshake must fail");
    assert!(!err.is_empty());
}

#[tokio::test]
async fn a_client_that_does_not_trust_our_ca_cannot_connect() {
    let r = start_tls().await;
    let other = Pki::generate(&["localhost"], "x").unwrap();
    let tls = client_tls(&other.ca_cert, b"http/1.1", &[&rustls::version::TLS13]);
    assert!(
        connect_with(r.server.local_addr(), Some(tls), false)
            .await
            .is_err()
    );
}

fn fingerprint(cert_pem: &str) -> String {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    tls::certificate_fingerprint(der.as_ref())
}

async fn start_mtls(pki: &Pki, clients: BTreeMap<String, String>) -> Running {
    let settings = TlsSettings {
        identity: Some(Identity {
            cert_pem: pki.server_cert.clone(),
            key_pem: Secret::new(pki.server_key.clone().into_bytes()),
        }),
        mutual: Some(MutualTls {
            client_ca_pem: pki.ca_cert.clone(),
            clients,
        }),
    };
    let mut r = start_with(config(Transport::Tls(settings)), health::always_ready()).await;
    r.ca = pki.ca_cert.clone();
    r
}

async fn connect_mtls(r: &Running, client: &Pki) -> Result<Sender, String> {
    let tls = qrbridge::tls::client_config(&r.ca, &client.client_cert, &client.client_key).unwrap();
    connect_with(r.server.local_addr(), Some(tls), false).await
}

#[tokio::test]
async fn mutual_tls_maps_the_client_certificate_to_the_client_id() {
    let pki = Pki::generate(&["localhost", "127.0.0.1"], "wallet-my-01").unwrap();
    let map = BTreeMap::from([(fingerprint(&pki.client_cert), CLIENT.to_owned())]);
    let r = start_mtls(&pki, map).await;
    let mut c = connect_mtls(&r, &pki).await.unwrap();
    let (route, body) = valid_bodies().remove(0);
    let reply = post(&mut c, route.path(), &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(r.api.calls.lock().unwrap()[0].1, CLIENT);

    // a request signed for another client over this certificate is refused
    let bytes = serde_json::to_vec(&body).unwrap();
    let mut headers = signed_headers("POST", route.path(), &now(), &bytes);
    headers[1].1 = "wallet-th-02".into();
    let reply = send(&mut c, "POST", route.path(), &headers, &bytes)
        .await
        .unwrap();
    assert!(reply.status.is_client_error(), "{}", reply.status);
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused() {
    let pki = Pki::generate(&["localhost", "127.0.0.1"], "wallet").unwrap();
    let stranger = Pki::generate(&["localhost"], "stranger").unwrap();
    let map = BTreeMap::from([(fingerprint(&pki.client_cert), CLIENT.to_owned())]);
    let r = start_mtls(&pki, map).await;
    let tls =
        qrbridge::tls::client_config(&r.ca, &stranger.client_cert, &stranger.client_key).unwrap();
    // TLS 1.3: the server's refusal of the certificate surfaces at the first exchange.
    let outcome = match connect_with(r.server.local_addr(), Some(tls), false).await {
        Err(e) => Err(e),
        Ok(mut c) => send(&mut c, "GET", "/healthz", &[], b"")
            .await
            .map(|r| r.status),
    };
    assert!(outcome.is_err(), "{outcome:?}");
}

#[tokio::test]
async fn a_certificate_from_our_ca_that_is_not_mapped_gets_access_denied() {
    let pki = Pki::generate(&["localhost", "127.0.0.1"], "wallet").unwrap();
    let r = start_mtls(&pki, BTreeMap::new()).await;
    let mut c = connect_mtls(&r, &pki).await.unwrap();
    let (route, body) = valid_bodies().remove(0);
    let reply = post(&mut c, route.path(), &body).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.code(), "ACCESS_DENIED");
    assert!(reply.message().contains(&fingerprint(&pki.client_cert)));
    assert!(r.api.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn plaintext_is_refused_on_a_non_loopback_address() {
    let mut c = config(Transport::PlaintextLoopback);
    c.listen = "0.0.0.0:0".parse().unwrap();
    let err = RunningServer::start(c, Arc::new(TestApi::default()), health::always_ready())
        .await
        .unwrap_err();
    assert!(matches!(err, ServerError::PlaintextNotLoopback(_)));
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[tokio::test]
async fn plaintext_on_loopback_serves_http1() {
    let r = start_with(config(Transport::PlaintextLoopback), health::always_ready()).await;
    let mut c = connect(&r, false).await;
    let (route, body) = valid_bodies().remove(3);
    assert_eq!(
        post(&mut c, route.path(), &body).await.status,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/// Writes `head` (and `body`) on a raw plaintext connection and reads one response.
async fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let reading = async {
        loop {
            let n = s.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                if buf.len() >= end + 4 + len {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), reading)
        .await
        .expect("no response within 20 s");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let end = find(&buf, b"\r\n\r\n").unwrap();
    let json = serde_json::from_slice(&buf[end + 4..]).unwrap_or(Value::Null);
    (status, json)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn a_declared_oversize_body_is_refused_with_413_before_it_is_read() {
    let r = start_with(config(Transport::PlaintextLoopback), health::always_ready()).await;
    // 10 MB declared, 10 bytes sent: the answer comes without waiting for the rest.
    let head = "POST /v1/payments HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n";
    let (status, v) = raw(r.server.local_addr(), head, b"{\"payment").await;
    assert_eq!(status, 413);
    assert_eq!(v["result"]["resultCode"], "REQUEST_TOO_LARGE");
    assert_eq!(v["result"]["resultStatus"], "F");
    assert!(r.api.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_chunked_body_growing_past_the_limit_is_refused_with_413() {
    let r = start_with(config(Transport::PlaintextLoopback), health::always_ready()).await;
    let head = "POST /v1/payments HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n";
    let mut body = Vec::new();
    for _ in 0..5 {
        body.extend_from_slice(b"400\r\n");
        body.extend_from_slice(&[b' '; 0x400]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let (status, v) = raw(r.server.local_addr(), head, &body).await;
    assert_eq!(status, 413);
    assert_eq!(v["result"]["resultCode"], "REQUEST_TOO_LARGE");
}

#[tokio::test]
async fn too_many_headers_are_refused_with_431() {
    let r = start_with(config(Transport::PlaintextLoopback), health::always_ready()).await;
    let mut head = "GET /healthz HTTP/1.1\r\nhost: x\r\n".to_owned();
    for i in 0..100 {
        head.push_str(&format!("x-h{i}: {i}\r\n"));
    }
    head.push_str("\r\n");
    let (status, _) = raw(r.server.local_addr(), &head, b"").await;
    assert_eq!(status, 431, "too many header fields");
}

#[tokio::test]
async fn a_body_that_never_arrives_is_answered_408() {
    let mut c = config(Transport::PlaintextLoopback);
    c.limits.request_timeout = Duration::from_millis(300);
    let r = start_with(c, health::always_ready()).await;
    let head = "POST /v1/payments HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n";
    let (status, v) = raw(r.server.local_addr(), head, b"{\"paym").await;
    assert_eq!(status, 408);
    assert_eq!(v["result"]["resultCode"], "REQUEST_TIMEOUT");
}

// ---------------------------------------------------------------------------------------------
// Malformed input: always 4xx, naming the field
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_wrong_types_and_unknown_fields_are_400_naming_the_field() {
    let r = start_tls().await;
    let mut c = connect(&r, true).await;
    let cases: Vec<(&str, &[u8], &str)> = vec![
        ("/v1/payments", b"{\"paymentRequestId\":", "body"),
        ("/v1/payments", b"", "body"),
        ("/v1/payments", b"[]", "body"),
        (
            "/v1/payments",
            br#"{"paymentRequestId":5,"quoteId":"Q-1","customerId":"c"}"#,
            "paymentRequestId",
        ),
        (
            "/v1/payments",
            br#"{"paymentRequestId":"PR-1","quoteId":"Q-1","customerId":"c","tip":"1"}"#,
            "tip",
        ),
        (
            "/v1/payments",
            br#"{"paymentRequestId":"PR-1","customerId":"c"}"#,
            "quoteId",
        ),
        (
            "/v1/payments",
            br#"{"paymentRequestId":"has space","quoteId":"Q-1","customerId":"c"}"#,
            "paymentRequestId",
        ),
        (
            "/v1/quotes",
            br#"{"quoteRequestId":"Q","decodeId":"D","amount":{"currency":"SGD","value":"12.50"},"payerCurrency":"MYR"}"#,
            "amount",
        ),
        (
            "/v1/quotes",
            br#"{"quoteRequestId":"Q","decodeId":"D","payerCurrency":"ZZZ"}"#,
            "payerCurrency",
        ),
        (
            "/v1/payments/inquiry",
            br#"{"paymentRequestId":"PR-1","paymentId":"P-1"}"#,
            "paymentRequestId, paymentId",
        ),
        (
            "/v1/qr/decode",
            br#"{"decodeRequestId":"D","customerId":"c","codeValue":"","payerCurrency":"MYR"}"#,
            "codeValue",
        ),
        (
            "/v1/payments",
            br#"{"paymentRequestId":"PR-1","quoteId":"Q-1","customerId":"c"} trailing"#,
            "body",
        ),
    ];
    for (path, body, field) in cases {
        let headers = signed_headers("POST", path, &now(), body);
        let reply = send(&mut c, "POST", path, &headers, body).await.unwrap();
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{}: {:?}",
            String::from_utf8_lossy(body),
            reply.body
        );
        assert_eq!(reply.code(), "PARAM_ILLEGAL");
        assert!(
            reply.message().contains(field),
            "{} → {:?} should name {field}",
            String::from_utf8_lossy(body),
            reply.message()
        );
    }
    assert!(r.api.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_non_json_content_type_is_refused() {
    let r = start_tls().await;
    let mut c = connect(&r, false).await;
    let (route, body) = valid_bodies().remove(3);
    let bytes = serde_json::to_vec(&body).unwrap();
    let mut headers = signed_headers("POST", route.path(), &now(), &bytes);
    headers[0].1 = "text/plain".into();
    let reply = send(&mut c, "POST", route.path(), &headers, &bytes)
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.message().contains("content-type"));
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_get_404_and_405() {
    let r = start_tls().await;
    let mut c = connect(&r, false).await;
    let reply = send(&mut c, "POST", "/v2/payments", &[], b"{}")
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code(), "NOT_FOUND");
    let reply = send(&mut c, "GET", "/v1/payments", &[], b"").await.unwrap();
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.code(), "METHOD_NOT_ALLOWED");
    assert_eq!(
        reply.headers["allow"], "POST",
        "RFC 9110 §15.5.6: a 405 lists Allow"
    );
    let reply = send(&mut c, "POST", "/healthz", &[], b"").await.unwrap();
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "GET");
}

// ---------------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_stale_replayed_and_missing_signatures_are_401_never_5xx() {
    let r = start_tls().await;
    let mut c = connect(&r, false).await;
    let path = "/v1/payments/inquiry";
    let body = br#"{"paymentRequestId":"PR-1"}"#;

    let wrong_key = {
        let mut h = signed_headers("POST", path, &now(), body);
        h[3].1 = sign_request_hmac(
            &Secret::new(b"another-key-another-key-another!".to_vec()),
            1,
            "POST",
            path,
            CLIENT,
            &h[2].1,
            body,
        );
        h
    };
    let stale = signed_headers(
        "POST",
        path,
        &auth::request_time(SystemTime::now() - Duration::from_secs(3600)),
        body,
    );
    let future = signed_headers(
        "POST",
        path,
        &auth::request_time(SystemTime::now() + Duration::from_secs(3600)),
        body,
    );
    let signed_for_other_path = signed_headers("POST", "/v1/payments/cancel", &now(), body);
    let missing = signed_headers("POST", path, &now(), body)[..3].to_vec();
    let unknown_client = {
        let mut h = signed_headers("POST", path, &now(), body);
        h[1].1 = "wallet-unknown".into();
        h
    };
    let garbage = {
        let mut h = signed_headers("POST", path, &now(), body);
        h[3].1 = "algorithm=HMAC-SHA256,keyVersion=1,signature=%%%".into();
        h
    };
    let bad_time = {
        let mut h = signed_headers("POST", path, &now(), body);
        h[2].1 = "yesterday".into();
        h
    };
    for (what, headers, expect) in [
        ("wrong key", wrong_key, "does not match"),
        ("stale", stale, "outside"),
        ("in the future", future, "outside"),
        ("other path", signed_for_other_path, "does not match"),
        ("missing signature", missing, "missing header signature"),
        ("unknown client", unknown_client, "unknown client"),
        ("garbage", garbage, "base64"),
        ("bad time", bad_time, "request-time"),
    ] {
        let reply = send(&mut c, "POST", path, &headers, body).await.unwrap();
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(reply.code(), "INVALID_SIGNATURE", "{what}");
        assert!(
            reply.message().contains(expect),
            "{what}: {}",
            reply.message()
        );
        assert!(reply.headers.get("signature").is_none(), "{what}: unsigned");
    }

    // a replay: the same signed request twice
    let headers = signed_headers("POST", path, &now(), body);
    let first = send(&mut c, "POST", path, &headers, body).await.unwrap();
    assert_eq!(first.status, StatusCode::OK);
    let again = send(&mut c, "POST", path, &headers, body).await.unwrap();
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(
        again.message().contains("already used"),
        "{}",
        again.message()
    );
    assert_eq!(r.api.calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_full_replay_guard_refuses_new_signatures_with_503_and_forgets_none() {
    // Room for 16 signatures (one per shard): the guard fills after a few dozen requests.
    let mut cfg = config(Transport::PlaintextLoopback);
    cfg.auth.replay_bytes = 16 * auth::REPLAY_ENTRY_BYTES;
    let r = start_with(cfg, health::always_ready()).await;
    let mut c = connect(&r, false).await;
    let path = "/v1/payments/inquiry";
    let mut accepted = Vec::new();
    let mut full = None;
    for i in 0..200 {
        let body = format!(r#"{{"paymentRequestId":"PR-{i}"}}"#).into_bytes();
        let headers = signed_headers("POST", path, &now(), &body);
        let reply = send(&mut c, "POST", path, &headers, &body).await.unwrap();
        match reply.status {
            StatusCode::OK => accepted.push((headers, body)),
            StatusCode::SERVICE_UNAVAILABLE => {
                full = Some(reply);
                break;
            }
            other => panic!("request {i}: {other} {}", reply.message()),
        }
    }
    let full = full.expect("the guard never filled");
    assert_eq!(full.code(), "SERVICE_UNAVAILABLE");
    assert!(
        full.message().contains("replay memory is full"),
        "{}",
        full.message()
    );
    assert!(
        !accepted.is_empty() && accepted.len() <= 16,
        "{}",
        accepted.len()
    );
    // Nothing of the refused request reached the API; every accepted signature is still
    // remembered: sent again, each is a replay, not a new request.
    assert_eq!(r.api.calls.lock().unwrap().len(), accepted.len());
    for (headers, body) in &accepted {
        let again = send(&mut c, "POST", path, headers, body).await.unwrap();
        assert_eq!(again.status, StatusCode::UNAUTHORIZED);
        assert!(
            again.message().contains("already used"),
            "{}",
            again.message()
        );
    }
    assert_eq!(r.api.calls.lock().unwrap().len(), accepted.len());
    let metrics = qrbridge::telemetry::metrics::render();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("qrbridge_replay_memory_full_total{scheme=\"native\"}")),
        "the refusal is counted"
    );
}

#[tokio::test]
async fn demo_mode_needs_no_signature_and_attributes_calls_to_the_demo_client() {
    let mut cfg = config(Transport::PlaintextLoopback);
    cfg.auth = AuthConfig::off("demo-wallet");
    let r = start_with(cfg, health::always_ready()).await;
    let mut c = connect(&r, false).await;
    let (route, body) = valid_bodies().remove(0);
    let reply = send(
        &mut c,
        "POST",
        route.path(),
        &[("content-type", "application/json".to_owned())],
        &serde_json::to_vec(&body).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers.get("signature").is_none());
    assert_eq!(r.api.calls.lock().unwrap()[0].1, "demo-wallet");
}

// ---------------------------------------------------------------------------------------------
// Handler outcomes through the one mapping
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn handler_outcomes_map_to_status_code_and_result() {
    let r = start_tls().await;
    let mut c = connect(&r, true).await;
    let pay = |quote: &str, n: u32| json!({"paymentRequestId": format!("PR-{n}"), "quoteId": quote, "customerId": "cust-42"});
    // a decline is processed: 200, F, with the payment fields beside the result
    let reply = post(&mut c, "/v1/payments", &pay("Q-DECLINE", 1)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let v = reply.json();
    assert_eq!(v["result"]["resultStatus"], "F");
    assert_eq!(v["result"]["resultCode"], "ACQUIRER_DECLINED");
    assert_eq!(v["paymentStatus"], "FAIL");
    assert_eq!(v["acquirer"]["responseCode"], "05");
    // a business error without a body
    let reply = post(&mut c, "/v1/payments", &pay("Q-EXPIRED", 2)).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.code(), "QUOTE_EXPIRED");
    assert!(reply.message().contains("Q-EXPIRED"));
    // a handler that panics: U, never a dropped connection
    let reply = post(&mut c, "/v1/payments", &pay("Q-PANIC", 3)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.json()["result"]["resultStatus"], "U");
    assert_eq!(reply.code(), "UNKNOWN_EXCEPTION");
    // and the connection still serves
    let reply = post(&mut c, "/v1/payments", &pay("Q-1", 4)).await;
    assert_eq!(reply.status, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Health and shutdown
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn healthz_is_alive_and_readyz_follows_the_gateways_predicate() {
    let ready = Arc::new(AtomicBool::new(false));
    let flag = ready.clone();
    let predicate: health::Readiness = Arc::new(move || {
        if flag.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("journal not open".to_owned())
        }
    });
    let r = start_with(config(Transport::Tls(TlsSettings::default())), predicate).await;
    let mut c = connect(&r, false).await;
    let alive = send(&mut c, "GET", "/healthz", &[], b"").await.unwrap();
    assert_eq!(alive.status, StatusCode::OK);
    assert_eq!(alive.json()["status"], "alive");
    let not_ready = send(&mut c, "GET", "/readyz", &[], b"").await.unwrap();
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(not_ready.json()["reason"], "journal not open");
    ready.store(true, Ordering::SeqCst);
    let now_ready = send(&mut c, "GET", "/readyz", &[], b"").await.unwrap();
    assert_eq!(now_ready.status, StatusCode::OK);
}

#[tokio::test]
async fn graceful_shutdown_stops_accepting_and_finishes_the_request_in_flight() {
    let r = start_tls().await;
    let addr = r.server.local_addr();
    let mut c = connect(&r, false).await;
    let body = json!({"paymentRequestId":"PR-SLOW","quoteId":"Q-SLOW","customerId":"cust-42"});
    let in_flight = tokio::spawn(async move { post(&mut c, "/v1/payments", &body).await });
    r.api.entered.notified().await;

    let handlers = r.server.handlers();
    assert_eq!(handlers.count(), 1);
    let shutdown = tokio::spawn(r.server.shutdown(Duration::from_secs(30)));

    // new connections are refused once the listener is closed (bounded wait)
    let mut refused = false;
    for _ in 0..500 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "listener still accepting during shutdown");
    assert!(
        !shutdown.is_finished(),
        "shutdown must wait for the request in flight"
    );

    r.api.release.notify_one();
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["paymentStatus"], "SUCCESS");
    let report = shutdown.await.unwrap();
    assert!(report.drained, "{report:?}");
    assert_eq!(report.connections_dropped, 0);
    assert!(handlers.wait_idle_within(Duration::from_secs(10)).await);
}

// ---------------------------------------------------------------------------------------------
// The written specs agree with the code
// ---------------------------------------------------------------------------------------------

fn spec(name: &str) -> String {
    std::fs::read_to_string(format!("{}/spec/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// A fully populated instance of each response type, and the field list it declares.
fn responses() -> Vec<(&'static str, Value, &'static [&'static str])> {
    let pay = {
        let mut p = payment(&id("PR-1"), PaymentStatus::Success);
        p.refunded_amount = Some(money("SGD", 1));
        p.acquirer.as_mut().unwrap().auth_code = Some("A1B2C3".into());
        p.merchant = Some(Merchant {
            name: "Kopi Stall".into(),
            city: "Singapore".into(),
            country: "SG".into(),
            mcc: "5812".into(),
            merchant_id: "M1".into(),
        });
        p
    };
    vec![
        (
            "DecodeResponse",
            serde_json::to_value(DecodeResponse {
                decode_id: id("D"),
                code_type: CodeType::Static,
                scheme: "SGQR".into(),
                merchant: Merchant {
                    name: "n".into(),
                    city: "c".into(),
                    country: "SG".into(),
                    mcc: "5812".into(),
                    merchant_id: "m".into(),
                },
                amount: Some(money("SGD", 1)),
                expires_at: "t".into(),
            })
            .unwrap(),
            DecodeResponse::FIELDS,
        ),
        (
            "QuoteResponse",
            serde_json::to_value(QuoteResponse {
                quote_id: id("Q"),
                merchant_amount: money("SGD", 1),
                payer_amount: money("MYR", 3),
                rate: "3".into(),
                mid_rate: "3".into(),
                markup_bps: 1,
                effective_rate: "3".into(),
                expires_at: "t".into(),
            })
            .unwrap(),
            QuoteResponse::FIELDS,
        ),
        (
            "PaymentResponse",
            serde_json::to_value(pay).unwrap(),
            PaymentResponse::FIELDS,
        ),
        (
            "CancelResponse",
            serde_json::to_value(CancelResponse {
                payment_id: id("P"),
                payment_request_id: id("PR"),
                payment_status: PaymentStatus::Cancelled,
            })
            .unwrap(),
            CancelResponse::FIELDS,
        ),
        (
            "RefundResponse",
            serde_json::to_value(refund(id("RR"))).unwrap(),
            RefundResponse::FIELDS,
        ),
    ]
}

#[test]
fn declared_response_fields_are_what_the_types_serialise() {
    for (name, value, fields) in responses() {
        let declared: BTreeSet<String> = fields.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(keys(&value), declared, "{name}");
    }
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        None => v,
        Some(r) => {
            let mut cur = doc;
            for part in r.trim_start_matches("#/").split('/') {
                cur = &cur[part];
            }
            resolve(doc, cur)
        }
    }
}

/// Properties of a schema, following `$ref` and merging `allOf`.
fn properties(doc: &Value, schema: &Value) -> BTreeSet<String> {
    let schema = resolve(doc, schema);
    let mut out = BTreeSet::new();
    if let Some(p) = schema.get("properties") {
        out.extend(keys(p));
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            out.extend(properties(doc, s));
        }
    }
    out
}

#[test]
fn openapi_describes_exactly_the_registered_routes_and_response_shapes() {
    let doc: Value = serde_yaml_ng::from_str(&spec("openapi.yaml")).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    let mut expected: BTreeSet<String> = Route::ALL.iter().map(|r| r.path().to_owned()).collect();
    expected.extend(["/healthz".to_owned(), "/readyz".to_owned()]);
    assert_eq!(paths.keys().cloned().collect::<BTreeSet<_>>(), expected);

    let shapes: BTreeMap<&str, BTreeSet<String>> = responses()
        .into_iter()
        .map(|(name, _, fields)| {
            let mut all: BTreeSet<String> = fields.iter().map(|s| (*s).to_owned()).collect();
            all.insert("result".to_owned());
            (name, all)
        })
        .collect();
    let response_of = |route: Route| match route {
        Route::Decode => "DecodeResponse",
        Route::Quote => "QuoteResponse",
        Route::Pay | Route::PaymentInquiry => "PaymentResponse",
        Route::Cancel => "CancelResponse",
        Route::Refund | Route::RefundInquiry => "RefundResponse",
    };
    for route in Route::ALL {
        let op = &paths[route.path()];
        let methods: Vec<&String> = op.as_object().unwrap().keys().collect();
        assert_eq!(methods, ["post"], "{}", route.path());
        let ok = &op["post"]["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(
            properties(&doc, ok),
            shapes[response_of(route)],
            "{} 200 response",
            route.path()
        );
        assert!(
            op["post"]["requestBody"]["content"]["application/json"]["schema"].is_object(),
            "{} request body",
            route.path()
        );
    }
    // request bodies: every field a valid request uses is described; every required one is used
    for (route, body) in valid_bodies() {
        let schema =
            &paths[route.path()]["post"]["requestBody"]["content"]["application/json"]["schema"];
        let described = properties(&doc, schema);
        let sent = keys(&body);
        assert!(
            sent.is_subset(&described),
            "{}: {sent:?} vs {described:?}",
            route.path()
        );
        let required: BTreeSet<String> = resolve(&doc, schema)["required"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        assert!(
            required.is_subset(&sent),
            "{}: required {required:?}",
            route.path()
        );
    }
    // the result object and its codes
    let result = &doc["components"]["schemas"]["Result"];
    assert_eq!(
        keys(&result["properties"]),
        BTreeSet::from(["resultStatus", "resultCode", "resultMessage"].map(String::from))
    );
    let codes: BTreeSet<String> = result["properties"]["resultCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let ours: BTreeSet<String> = ResultCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    assert_eq!(codes, ours);
}

#[test]
fn errors_md_lists_every_code_with_its_http_status_and_s_f_u() {
    let text = spec("errors.md");
    for code in ResultCode::ALL {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", code.as_str())))
            .unwrap_or_else(|| panic!("{code} missing from spec/errors.md"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[2], code.http_status().as_u16().to_string(), "{code}");
        assert_eq!(cells[3], format!("{:?}", code.status()), "{code}");
    }
}

#[tokio::test]
async fn out_of_range_limits_and_windows_are_refused_at_start() {
    let mut c = config(Transport::PlaintextLoopback);
    c.limits.max_header_bytes = 1024;
    let err = RunningServer::start(c, Arc::new(TestApi::default()), health::always_ready())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_header_bytes"), "{err}");
    let mut c = config(Transport::PlaintextLoopback);
    c.auth.window = Duration::MAX;
    let err = RunningServer::start(c, Arc::new(TestApi::default()), health::always_ready())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("window"), "{err}");
}

#[tokio::test]
async fn concurrent_http2_streams_each_get_their_own_answer() {
    let r = start_tls().await;
    let Sender::H2(h2) = connect(&r, true).await else {
        panic!("expected HTTP/2")
    };
    let mut set = tokio::task::JoinSet::new();
    for n in 0..64 {
        let mut c = Sender::H2(h2.clone());
        set.spawn(async move {
            let id = format!("PR-{n:03}");
            let reply = post(
                &mut c,
                "/v1/payments/inquiry",
                &json!({"paymentRequestId": id}),
            )
            .await;
            (id, reply.status, reply.json()["paymentRequestId"].clone())
        });
    }
    let mut seen = 0;
    while let Some(done) = set.join_next().await {
        let (id, status, echoed) = done.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(echoed, json!(id));
        seen += 1;
    }
    assert_eq!(seen, 64);
}

#[tokio::test]
async fn a_client_that_disconnects_does_not_cancel_the_handler() {
    let r = start_tls().await;
    let mut c = connect(&r, true).await;
    let body = json!({"paymentRequestId":"PR-GONE","quoteId":"Q-SLOW","customerId":"cust-42"});
    let request = tokio::spawn(async move { post(&mut c, "/v1/payments", &body).await });
    r.api.entered.notified().await;
    request.abort(); // drops the client's connection with the request in flight
    let _ = request.await;
    let mut closed = false;
    for _ in 0..500 {
        if r.server.open_connections() == 0 {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(closed, "the server did not notice the disconnect");
    assert_eq!(
        r.server.handlers().count(),
        1,
        "the handler is still running"
    );
    r.api.release.notify_one();
    assert!(
        r.server
            .handlers()
            .wait_idle_within(Duration::from_secs(10))
            .await
    );
    assert_eq!(r.api.slow_finished.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_configured_certificate_must_have_an_ecdsa_key() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let settings = TlsSettings {
        identity: Some(Identity {
            cert_pem: cert.pem(),
            key_pem: Secret::new(key.serialize_pem().into_bytes()),
        }),
        mutual: None,
    };
    let err = RunningServer::start(
        config(Transport::Tls(settings)),
        Arc::new(TestApi::default()),
        health::always_ready(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("ECDSA"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Connection slots
// ---------------------------------------------------------------------------------------------

#[test]
fn idle_connections_close_after_ten_seconds_by_default_as_documented() {
    assert_eq!(Limits::default().idle_timeout, Duration::from_secs(10));
    let guide = include_str!("../docs/operator.md");
    assert!(guide.contains("idle 10 s (`idle_timeout_ms`)"));
    let example = include_str!("../qrbridge.toml");
    assert!(example.contains("idle_timeout_ms = 10000"));
}

/// Waits (at most `limit`) for the peer to close `stream`: true on EOF or a reset.
async fn closed_by_peer<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let until = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {} // a TLS session ticket, a SETTINGS frame, ...
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tls_and_pinging_http2_connections_cannot_hold_every_slot() {
    let mut c = config(Transport::Tls(TlsSettings::default()));
    c.limits.max_connections = 5;
    c.limits.idle_timeout = Duration::from_millis(800);
    c.limits.header_read_timeout = Duration::from_millis(800);
    let r = start_with(c, health::always_ready()).await;
    let addr = r.server.local_addr();
    // The attack fills every slot: two TLS connections that send nothing after the handshake, two
    // HTTP/2 connections that only answer (and send) PINGs, one TCP connection that never starts
    // its handshake.
    let mut idle_tls = Vec::new();
    for _ in 0..2 {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = client_tls(&r.ca, b"h2", &[&rustls::version::TLS13]);
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        idle_tls.push(stream);
    }
    let mut pinging = Vec::new();
    for _ in 0..2 {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = client_tls(&r.ca, b"h2", &[&rustls::version::TLS13]);
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .keep_alive_interval(Duration::from_millis(100))
            .keep_alive_while_idle(true)
            .handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .unwrap();
        pinging.push((sender, tokio::spawn(conn)));
    }
    let mut silent = TcpStream::connect(addr).await.unwrap();
    for _ in 0..100 {
        if r.server.open_connections() == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        r.server.open_connections(),
        5,
        "the attack holds every slot"
    );

    // A new client during the attack is served once the idle connections are closed.
    let served = tokio::spawn({
        let ca = r.ca.clone();
        async move {
            let tls = client_tls(&ca, b"http/1.1", &[&rustls::version::TLS13]);
            let mut c = connect_with(addr, Some(tls), false).await?;
            send(&mut c, "GET", "/healthz", &[], b"").await
        }
    });
    let reply = tokio::time::timeout(Duration::from_secs(15), served)
        .await
        .expect("a new client is served during the attack")
        .unwrap()
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);

    for s in &mut idle_tls {
        assert!(
            closed_by_peer(s, Duration::from_secs(10)).await,
            "an idle TLS connection was never closed"
        );
    }
    assert!(
        closed_by_peer(&mut silent, Duration::from_secs(10)).await,
        "a connection that never handshakes was never closed"
    );
    for (sender, conn) in pinging {
        let ended = tokio::time::timeout(Duration::from_secs(10), conn).await;
        assert!(
            ended.is_ok(),
            "an HTTP/2 connection answering PINGs was never closed"
        );
        assert!(sender.is_closed());
    }
    for _ in 0..500 {
        if r.server.open_connections() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(r.server.open_connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_idle_only_without_a_request_in_progress() {
    let mut c = config(Transport::Tls(TlsSettings::default()));
    c.limits.idle_timeout = Duration::from_millis(300);
    let r = start_with(c, health::always_ready()).await;
    // A request held past the idle timeout keeps its connection open and is answered.
    let mut slow = connect(&r, false).await;
    let body = json!({"paymentRequestId":"PR-SLOW","quoteId":"Q-SLOW","customerId":"cust-42"});
    let in_flight = tokio::spawn(async move {
        let reply = post(&mut slow, "/v1/payments", &body).await;
        (reply, slow)
    });
    r.api.entered.notified().await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    r.api.release.notify_one();
    let (reply, mut slow) = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    // Then idle: a keep-alive connection is closed after the timeout.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(
        send(&mut slow, "GET", "/healthz", &[], b"").await.is_err(),
        "an idle keep-alive connection stayed open past the idle timeout"
    );
}

#[test]
fn openapi_currency_codes_are_exactly_the_iso_4217_codes_the_gateway_accepts() {
    let doc: Value = serde_yaml_ng::from_str(&spec("openapi.yaml")).unwrap();
    let listed: BTreeSet<String> = doc["components"]["schemas"]["Currency"]["enum"]
        .as_array()
        .expect("Currency has an enum")
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let mut accepted = BTreeSet::new();
    for a in b'A'..=b'Z' {
        for b in b'A'..=b'Z' {
            for c in b'A'..=b'Z' {
                let code = String::from_utf8(vec![a, b, c]).unwrap();
                if Currency::from_code(&code).is_ok() {
                    accepted.insert(code);
                }
            }
        }
    }
    assert_eq!(listed, accepted);
    for refused in ["XAU", "XTS", "XXX", "ABC"] {
        assert!(!listed.contains(refused), "{refused}");
    }
}
