//! `qrbridge wallet ...` (the built binary) against Wallet API servers over real sockets on
//! 127.0.0.1: the real `RunningServer` with HMAC authentication ON and a stub `Pipeline` (TLS with
//! rcgen certificates, and plaintext loopback), plus hand-written HTTP servers that answer with a
//! wrong, tampered, stale or missing response signature, or never answer. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use qrbridge::money::{Amount, Currency};
use qrbridge::payment::*;
use qrbridge::scheme::native::auth::{
    AuthConfig, ClientKey, Credentials, Direction, Secret, canonical_string,
    generate_ed25519_pkcs8, request_time,
};
use qrbridge::server::*;
use qrbridge::tls::pki::Pki;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CLIENT: &str = "wallet-my-01";
const KEY: &[u8] = b"test-key-for-wallet-my-01-32byte";
const OTHER_KEY: &[u8] = b"another-key-not-the-wallets-32by";
/// A dynamic SG PayNow code (SGD 12.80) from testdata/emv/valid/.
const CODE: &str = "00020101021226500009SG.PAYNOW010100211+659123456703010040820261231520458125303702540512.805802SG5910TAN AH KOW6009SINGAPORE62420110ORDER123450903AME1010M90312345X110321163042634";

fn b64(key: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(key)
}

// ---------------------------------------------------------------------------------------------
// The gateway stub: idempotent payments by (client id, request id, body hash)
// ---------------------------------------------------------------------------------------------

/// (client, paymentRequestId) → (body hash, response, outcome code).
type Payments = HashMap<(String, String), (String, PaymentResponse, Option<&'static str>)>;

#[derive(Default)]
struct StubApi {
    payments: Mutex<Payments>,
    authorisations: AtomicUsize,
    seen_customers: Mutex<Vec<String>>,
}

fn money(code: &str, minor: u64) -> Money {
    Money(Amount::from_minor(minor, Currency::from_code(code).unwrap()).unwrap())
}

fn id(s: &str) -> RequestId {
    RequestId::new(s).unwrap()
}

fn payment(payment_id: &str, request_id: &RequestId, status: PaymentStatus) -> PaymentResponse {
    PaymentResponse {
        merchant: None,
        scheme_ref: None,
        payment_id: id(payment_id),
        payment_request_id: request_id.clone(),
        payment_status: status,
        merchant_amount: money("SGD", 1250),
        payer_amount: money("MYR", 4321),
        refunded_amount: None,
        acquirer: None,
    }
}

fn outcome_error(code: Option<&'static str>, payment_id: &str) -> Option<ApiError> {
    match code {
        None => None,
        Some("DECLINED") => Some(ApiError::AcquirerDeclined {
            response_code: "05".into(),
        }),
        Some(_) => Some(ApiError::AcquirerTimeout {
            payment_id: payment_id.into(),
            cause: "no answer from the acquirer within the deadline".into(),
        }),
    }
}

impl Pipeline for StubApi {
    fn decode(
        self: Arc<Self>,
        _ctx: RequestContext,
        req: DecodeRequest,
    ) -> BoxFuture<'static, Handled<DecodeResponse>> {
        Box::pin(async move {
            self.seen_customers
                .lock()
                .unwrap()
                .push(req.customer_id.expose().to_owned());
            if req.code_value.as_str() != CODE {
                return Err(ApiError::QrInvalid {
                    detail: "crc mismatch at 63".into(),
                });
            }
            Ok(Answer::ok(DecodeResponse {
                decode_id: id("D-1"),
                code_type: CodeType::Dynamic,
                scheme: "PAYNOW".into(),
                merchant: Merchant {
                    name: "Kopi Stall".into(),
                    city: "Singapore".into(),
                    country: "SG".into(),
                    mcc: "5499".into(),
                    merchant_id: "M-1".into(),
                },
                amount: Some(money("SGD", 1250)),
                expires_at: "2026-11-21T11:00:00Z".into(),
            }))
        })
    }

    fn quote(
        self: Arc<Self>,
        _ctx: RequestContext,
        req: QuoteRequest,
    ) -> BoxFuture<'static, Handled<QuoteResponse>> {
        Box::pin(async move {
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
            let key = (ctx.client_id.clone(), req.payment_request_id.to_string());
            let mut payments = self.payments.lock().unwrap();
            if let Some((hash, stored, code)) = payments.get(&key) {
                if *hash != ctx.body_sha256 {
                    return Err(ApiError::RepeatRequestInconsistent {
                        request_id: req.payment_request_id.to_string(),
                    });
                }
                let err = outcome_error(*code, stored.payment_id.as_str());
                return Ok(Answer {
                    body: stored.clone(),
                    outcome: err,
                });
            }
            let n = self.authorisations.fetch_add(1, Ordering::SeqCst) + 1;
            let payment_id = format!("P-{n}");
            let (status, code) = match req.quote_id.as_str() {
                "Q-DECLINE" => (PaymentStatus::Fail, Some("DECLINED")),
                "Q-TIMEOUT" => (PaymentStatus::Processing, Some("TIMEOUT")),
                _ => (PaymentStatus::Success, None),
            };
            let body = payment(&payment_id, &req.payment_request_id, status);
            payments.insert(key, (ctx.body_sha256, body.clone(), code));
            Ok(Answer {
                body,
                outcome: outcome_error(code, &payment_id),
            })
        })
    }

    fn inquire_payment(
        self: Arc<Self>,
        ctx: RequestContext,
        req: PaymentInquiryRequest,
    ) -> BoxFuture<'static, Handled<PaymentResponse>> {
        Box::pin(async move {
            let payments = self.payments.lock().unwrap();
            let found = payments.iter().find(|((client, rid), (_, p, _))| {
                *client == ctx.client_id
                    && match &req.payment {
                        PaymentRef::RequestId(r) => r.as_str() == rid,
                        PaymentRef::PaymentId(p_id) => *p_id == p.payment_id,
                    }
            });
            match found {
                Some((_, (_, p, _))) => Ok(Answer::ok(p.clone())),
                None => Err(ApiError::OrderNotFound {
                    what: "payment",
                    id: "?".into(),
                }),
            }
        })
    }

    fn cancel(
        self: Arc<Self>,
        _ctx: RequestContext,
        req: CancelRequest,
    ) -> BoxFuture<'static, Handled<CancelResponse>> {
        Box::pin(async move {
            Ok(Answer::ok(CancelResponse {
                payment_id: id("P-1"),
                payment_request_id: req.payment_request_id,
                payment_status: PaymentStatus::Cancelled,
            }))
        })
    }

    fn refund(
        self: Arc<Self>,
        _ctx: RequestContext,
        req: RefundRequest,
    ) -> BoxFuture<'static, Handled<RefundResponse>> {
        Box::pin(async move {
            if req.refund_amount.0.minor() > 1250 {
                return Err(ApiError::RefundAmountExceed {
                    payment_id: req.payment_id.to_string(),
                    requested: req.refund_amount.0.to_decimal_string(),
                    refundable: "12.50".into(),
                });
            }
            Ok(Answer::ok(RefundResponse {
                refund_id: id("R-1"),
                refund_request_id: req.refund_request_id,
                payment_id: req.payment_id,
                refund_status: RefundStatus::Success,
                refund_amount: req.refund_amount,
                payer_refund_amount: money("MYR", 864),
            }))
        })
    }

    fn inquire_refund(
        self: Arc<Self>,
        _ctx: RequestContext,
        req: RefundInquiryRequest,
    ) -> BoxFuture<'static, Handled<RefundResponse>> {
        Box::pin(async move {
            let rid = match req.refund {
                RefundRef::RequestId(r) => r,
                RefundRef::RefundId(_) => id("RR-1"),
            };
            Ok(Answer::ok(RefundResponse {
                refund_id: id("R-1"),
                refund_request_id: rid,
                payment_id: id("P-1"),
                refund_status: RefundStatus::Success,
                refund_amount: money("SGD", 250),
                payer_refund_amount: money("MYR", 864),
            }))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

struct Gateway {
    server: RunningServer,
    api: Arc<StubApi>,
    url: String,
    ca_file: Option<PathBuf>,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "qrbridge-wallet-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start(tls: bool) -> Gateway {
    let api = Arc::new(StubApi::default());
    let credentials =
        Credentials::new().with_key(CLIENT, 1, ClientKey::HmacSha256(Secret::new(KEY.to_vec())));
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        transport: if tls {
            Transport::Tls(TlsSettings::default())
        } else {
            Transport::PlaintextLoopback
        },
        limits: Limits::default(),
        auth: AuthConfig::signatures(credentials),
    };
    let server = RunningServer::start(config, api.clone(), health::always_ready())
        .await
        .unwrap();
    let dir = TempDir::new(if tls { "tls" } else { "plain" });
    let port = server.local_addr().port();
    let (url, ca_file) = match server.generated_pki() {
        Some(pki) => (
            format!("https://localhost:{port}"),
            Some(dir.file("ca.pem", pki.ca_cert.as_bytes())),
        ),
        None => (format!("http://127.0.0.1:{port}"), None),
    };
    Gateway {
        server,
        api,
        url,
        ca_file,
        _dir: dir,
    }
}

impl Gateway {
    /// Connection options for `key` (the wallet's key unless a test says otherwise).
    fn options(&self, key: &[u8]) -> Vec<String> {
        let mut o = vec![
            "--url".to_owned(),
            self.url.clone(),
            "--client-id".to_owned(),
            CLIENT.to_owned(),
            "--key-base64".to_owned(),
            b64(key),
            "--timeout".to_owned(),
            "10".to_owned(),
        ];
        if let Some(ca) = &self.ca_file {
            o.extend(["--ca".to_owned(), ca.display().to_string()]);
        }
        o
    }

    async fn wallet(&self, args: &[&str]) -> Run {
        self.wallet_with_key(KEY, args).await
    }

    async fn wallet_with_key(&self, key: &[u8], args: &[&str]) -> Run {
        let mut all = vec!["wallet".to_owned()];
        all.extend(self.options(key));
        all.extend(args.iter().map(|s| (*s).to_owned()));
        run(all).await
    }
}

/// One finished `qrbridge` run.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
    fn result_code(&self) -> String {
        self.json()["result"]["resultCode"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// Runs the built binary off the runtime's threads, killing it if it outlives 30 s.
async fn run(args: Vec<String>) -> Run {
    run_with_stdin(args, Vec::new()).await
}

async fn run_with_stdin(args: Vec<String>, stdin: Vec<u8>) -> Run {
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_qrbridge"))
            .args(&args)
            .env_remove("QRBRIDGE_WALLET_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the qrbridge binary starts");
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            let _ = input.write_all(&stdin); // a child that does not read stdin may close it
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!("qrbridge {args:?} did not finish within 30 s: {out:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().unwrap();
        Run {
            code: status.code().expect("exited, not killed"),
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        }
    })
    .await
    .unwrap()
}

fn expect(run: &Run, code: i32) {
    assert_eq!(run.code, code, "{run:#?}");
}

// ---------------------------------------------------------------------------------------------
// Against the real server with authentication on
// ---------------------------------------------------------------------------------------------

async fn walkthrough(g: &Gateway) {
    let r = g
        .wallet(&[
            "decode",
            "--code",
            CODE,
            "--payer-currency",
            "MYR",
            "--customer",
            "cust-42",
        ])
        .await;
    expect(&r, 0);
    assert_eq!(r.json()["decodeId"], "D-1");
    assert!(r.stderr.contains("response signature verified"), "{r:?}");
    assert!(r.stderr.contains("decodeRequestId: "), "{r:?}");

    let r = g
        .wallet(&[
            "quote",
            "--decode-id",
            "D-1",
            "--amount",
            "12.50",
            "--payer-currency",
            "MYR",
        ])
        .await;
    expect(&r, 0);
    assert_eq!(
        r.json()["merchantAmount"],
        serde_json::json!({"currency": "SGD", "value": "1250"})
    );

    let r = g
        .wallet(&[
            "pay",
            "--quote-id",
            "Q-1",
            "--customer",
            "cust-42",
            "--request-id",
            "PR-walk",
        ])
        .await;
    expect(&r, 0);
    let payment_id = r.json()["paymentId"].as_str().unwrap().to_owned();

    let r = g.wallet(&["inquiry", "--payment-id", &payment_id]).await;
    expect(&r, 0);
    assert_eq!(r.json()["paymentRequestId"], "PR-walk");
    let r = g
        .wallet(&["inquiry", "--payment-request-id", "PR-walk"])
        .await;
    expect(&r, 0);
    assert_eq!(r.json()["paymentId"], payment_id.as_str());

    let r = g
        .wallet(&["cancel", "--payment-request-id", "PR-walk"])
        .await;
    expect(&r, 0);
    assert_eq!(r.json()["paymentStatus"], "CANCELLED");

    let r = g
        .wallet(&[
            "refund",
            "--payment-id",
            &payment_id,
            "--amount",
            "2.50",
            "--reason",
            "one coffee returned",
        ])
        .await;
    expect(&r, 0);
    assert_eq!(r.json()["refundAmount"]["value"], "250");

    let r = g
        .wallet(&["refund-inquiry", "--refund-request-id", "RR-9"])
        .await;
    expect(&r, 0);
    assert_eq!(r.json()["refundRequestId"], "RR-9");
    assert_eq!(g.api.seen_customers.lock().unwrap().as_slice(), ["cust-42"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_over_tls_are_accepted_and_every_command_succeeds() {
    let g = start(true).await;
    assert!(g.url.starts_with("https://"));
    walkthrough(&g).await;
    g.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_over_plaintext_loopback_are_accepted() {
    let g = start(false).await;
    assert!(g.url.starts_with("http://"));
    walkthrough(&g).await;
    g.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_can_come_from_stdin_byte_for_byte() {
    let g = start(false).await;
    let mut args = vec!["wallet".to_owned()];
    args.extend(g.options(KEY));
    args.extend(["decode", "--code", "-", "--payer-currency", "MYR"].map(str::to_owned));
    let r = run_with_stdin(args.clone(), format!("{CODE}\r\n").into_bytes()).await;
    expect(&r, 0);
    assert_eq!(r.json()["decodeId"], "D-1");
    // A character more (here a trailing space) is a different code: nothing is trimmed.
    let r = run_with_stdin(args, format!("{CODE} \n").into_bytes()).await;
    expect(&r, 1);
    assert_eq!(r.result_code(), "QR_INVALID");
    g.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_refused_with_invalid_signature_and_exit_1() {
    let g = start(true).await;
    let r = g
        .wallet_with_key(OTHER_KEY, &["inquiry", "--payment-id", "P-1"])
        .await;
    expect(&r, 1);
    assert_eq!(r.result_code(), "INVALID_SIGNATURE");
    assert_eq!(r.json()["result"]["resultStatus"], "F");
    assert!(r.stderr.contains("refused before authentication"), "{r:?}");
    // A wrong key version and an unknown client are refused the same way.
    let r = g
        .wallet(&["--key-version", "2", "inquiry", "--payment-id", "P-1"])
        .await;
    expect(&r, 1);
    assert_eq!(r.result_code(), "INVALID_SIGNATURE");
    let r = g
        .wallet(&["--client-id", "someone", "inquiry", "--payment-id", "P-1"])
        .await;
    expect(&r, 1);
    assert_eq!(r.result_code(), "INVALID_SIGNATURE");
    assert_eq!(g.api.authorisations.load(Ordering::SeqCst), 0);
    g.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_request_to_a_gateway_with_authentication_on_is_refused() {
    let g = start(false).await;
    let r = run(vec![
        "wallet".into(),
        "--url".into(),
        g.url.clone(),
        "inquiry".into(),
        "--payment-id".into(),
        "P-1".into(),
    ])
    .await;
    expect(&r, 1);
    assert_eq!(r.result_code(), "INVALID_SIGNATURE");
    assert!(r.stderr.contains("UNSIGNED"), "{r:?}");
    g.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resending_with_the_same_request_id_replays_and_a_different_body_is_inconsistent() {
    let g = start(true).await;
    let pay = |quote: &'static str| {
        [
            "pay",
            "--quote-id",
            quote,
            "--customer",
            "cust-42",
            "--request-id",
            "PR-replay",
        ]
    };
    let first = g.wallet(&pay("Q-1")).await;
    expect(&first, 0);
    // A second, freshly signed request with the same id and body: the stored answer, no new
    // authorisation (the signature differs, so the gateway's replay guard is not what answers).
    let again = g.wallet(&pay("Q-1")).await;
    expect(&again, 0);
    assert_eq!(first.json()["paymentId"], again.json()["paymentId"]);
    assert_eq!(g.api.authorisations.load(Ordering::SeqCst), 1);
    // Same id, another body.
    let other = g.wallet(&pay("Q-2")).await;
    expect(&other, 1);
    assert_eq!(other.result_code(), "REPEAT_REQ_INCONSISTENT");
    assert_eq!(g.api.authorisations.load(Ordering::SeqCst), 1);
    // Without --request-id every run is a new payment.
    let fresh = g.wallet(&["pay", "--quote-id", "Q-1"]).await;
    expect(&fresh, 0);
    assert_ne!(fresh.json()["paymentId"], first.json()["paymentId"]);
    assert!(fresh.stderr.contains("paymentRequestId: "), "{fresh:?}");
    assert_eq!(g.api.authorisations.load(Ordering::SeqCst), 2);
    g.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_follow_the_result_status() {
    let g = start(false).await;
    let declined = g.wallet(&["pay", "--quote-id", "Q-DECLINE"]).await;
    expect(&declined, 1);
    assert_eq!(declined.result_code(), "ACQUIRER_DECLINED");
    assert_eq!(declined.json()["paymentStatus"], "FAIL");

    let unknown = g
        .wallet(&["pay", "--quote-id", "Q-TIMEOUT", "--request-id", "PR-u"])
        .await;
    expect(&unknown, 3);
    assert_eq!(unknown.result_code(), "ACQUIRER_TIMEOUT");
    assert_eq!(unknown.json()["result"]["resultStatus"], "U");
    assert!(unknown.stderr.contains("inquiry"), "{unknown:?}");

    let invalid = g
        .wallet(&["decode", "--code", "000201", "--payer-currency", "MYR"])
        .await;
    expect(&invalid, 1);
    assert_eq!(invalid.result_code(), "QR_INVALID");

    let too_much = g
        .wallet(&["refund", "--payment-id", "P-1", "--amount", "12.51"])
        .await;
    expect(&too_much, 1);
    assert_eq!(too_much.result_code(), "REFUND_AMOUNT_EXCEED");
    g.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_before_anything_is_sent() {
    let g = start(false).await;
    for args in [
        vec!["inquiry"],
        vec![
            "inquiry",
            "--payment-id",
            "P-1",
            "--payment-request-id",
            "R",
        ],
        vec![
            "quote",
            "--decode-id",
            "D-1",
            "--amount",
            "12.505",
            "--payer-currency",
            "MYR",
        ],
        vec!["quote", "--decode-id", "D-1", "--payer-currency", "XXQ"],
        vec!["pay", "--quote-id", "has space"],
        vec!["decode", "--code", "", "--payer-currency", "MYR"],
        vec!["--key-version", "x", "pay", "--quote-id", "Q-1"],
    ] {
        let r = g.wallet(&args).await;
        expect(&r, 2);
        assert!(r.stdout.is_empty(), "{args:?}: {r:?}");
    }
    let r = run(vec![
        "wallet".into(),
        "--url".into(),
        g.url.clone(),
        "--key-base64".into(),
        "c2hvcnQ=".into(),
        "pay".into(),
        "--quote-id".into(),
        "Q-1".into(),
    ])
    .await;
    expect(&r, 2);
    assert!(r.stderr.contains("at least 16 bytes"), "{r:?}");
    assert_eq!(g.api.authorisations.load(Ordering::SeqCst), 0);
    g.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_never_printed_even_verbosely() {
    let g = start(true).await;
    let dir = TempDir::new("keyfile");
    let key_file = dir.file("wallet.key", format!("{}\n", b64(KEY)).as_bytes());
    let mut args = vec!["wallet".to_owned()];
    args.extend(
        [
            "--url",
            &g.url,
            "--client-id",
            CLIENT,
            "--ca",
            &g.ca_file.as_ref().unwrap().display().to_string(),
            "--key-file",
            &key_file.display().to_string(),
            "--verbose",
            "pay",
            "--quote-id",
            "Q-1",
        ]
        .map(str::to_owned),
    );
    let r = run(args).await;
    expect(&r, 0);
    assert!(
        r.stderr
            .contains("> signature: algorithm=HMAC-SHA256,keyVersion=1,signature=")
    );
    assert!(r.stderr.contains("QRB1-REQUEST"), "{r:?}");
    assert!(r.stderr.contains("< signature: "), "{r:?}");
    let key_text = String::from_utf8_lossy(KEY).into_owned();
    for shown in [&r.stdout, &r.stderr] {
        assert!(
            !shown.contains(&b64(KEY)) && !shown.contains(&key_text),
            "{r:?}"
        );
    }
    g.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_gateway_whose_ca_we_do_not_trust_is_not_reached() {
    let g = start(true).await;
    let other = start(true).await; // a different private CA
    let mut args = vec!["wallet".to_owned()];
    args.extend(g.options(KEY));
    let ca_at = args.iter().position(|a| a == "--ca").unwrap();
    args[ca_at + 1] = other.ca_file.as_ref().unwrap().display().to_string();
    args.extend(["inquiry", "--payment-id", "P-1"].map(str::to_owned));
    let r = run(args).await;
    expect(&r, 2);
    assert!(r.stderr.contains("TLS handshake"), "{r:?}");
    g.server.shutdown(Duration::from_secs(5)).await;
    other.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_presents_the_client_certificate_given_with_cert_and_key() {
    let pki = Pki::generate(&["localhost", "127.0.0.1"], CLIENT).unwrap();
    let der = CertificateDer::from_pem_slice(pki.client_cert.as_bytes()).unwrap();
    let clients = BTreeMap::from([(
        tls::certificate_fingerprint(der.as_ref()),
        CLIENT.to_owned(),
    )]);
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
    let api = Arc::new(StubApi::default());
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        transport: Transport::Tls(settings),
        limits: Limits::default(),
        auth: AuthConfig::signatures(Credentials::new().with_key(
            CLIENT,
            1,
            ClientKey::HmacSha256(Secret::new(KEY.to_vec())),
        )),
    };
    let server = RunningServer::start(config, api.clone(), health::always_ready())
        .await
        .unwrap();
    let dir = TempDir::new("mtls");
    let g = Gateway {
        url: format!("https://127.0.0.1:{}", server.local_addr().port()),
        ca_file: Some(dir.file("ca.pem", pki.ca_cert.as_bytes())),
        server,
        api,
        _dir: TempDir::new("mtls-unused"),
    };
    let cert = dir.file("client.pem", pki.client_cert.as_bytes());
    let key = dir.file("client.key", pki.client_key.as_bytes());
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let r = g
        .wallet(&["--cert", &cert, "--key", &key, "pay", "--quote-id", "Q-1"])
        .await;
    expect(&r, 0);
    assert_eq!(g.api.authorisations.load(Ordering::SeqCst), 1);
    // Without the certificate the handshake is refused: no answer, never a success.
    let r = g.wallet(&["pay", "--quote-id", "Q-1"]).await;
    assert!(matches!(r.code, 2 | 3), "{r:?}");
    assert!(r.stderr.contains("CertificateRequired"), "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    // --cert without --key is a usage error.
    let r = g
        .wallet(&["--cert", &cert, "pay", "--quote-id", "Q-1"])
        .await;
    expect(&r, 2);
    assert_eq!(g.api.authorisations.load(Ordering::SeqCst), 1);
    g.server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ed25519_wallets_sign_with_their_key_and_verify_the_gateways() {
    use ring::signature::{Ed25519KeyPair, KeyPair};
    let wallet_pkcs8 = generate_ed25519_pkcs8().unwrap();
    let wallet = Ed25519KeyPair::from_pkcs8(wallet_pkcs8.expose()).unwrap();
    let gateway_pkcs8 = generate_ed25519_pkcs8().unwrap();
    let gateway_public = b64(Ed25519KeyPair::from_pkcs8(gateway_pkcs8.expose())
        .unwrap()
        .public_key()
        .as_ref());
    let credentials = Credentials::new().with_key(
        "wallet-ed",
        3,
        ClientKey::Ed25519 {
            public_key: wallet.public_key().as_ref().to_vec(),
        },
    );
    let api = Arc::new(StubApi::default());
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        transport: Transport::PlaintextLoopback,
        limits: Limits::default(),
        auth: AuthConfig {
            response_key: Some((7, gateway_pkcs8)),
            ..AuthConfig::signatures(credentials)
        },
    };
    let server = RunningServer::start(config, api.clone(), health::always_ready())
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}", server.local_addr().port());
    let dir = TempDir::new("ed25519");
    let der = dir.file("wallet.der", wallet_pkcs8.expose());
    let pem = dir.file(
        "wallet.pem",
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            b64(wallet_pkcs8.expose())
        )
        .as_bytes(),
    );
    let call = |key_file: &PathBuf, gateway_key: &str, version: &str| {
        [
            "wallet",
            "--url",
            &url,
            "--client-id",
            "wallet-ed",
            "--ed25519-key-file",
            &key_file.display().to_string(),
            "--gateway-public-key",
            gateway_key,
            "--key-version",
            version,
            "pay",
            "--quote-id",
            "Q-1",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    for file in [&der, &pem] {
        let r = run(call(file, &gateway_public, "3")).await;
        expect(&r, 0);
        assert!(r.stderr.contains("response signature verified"), "{r:?}");
    }
    assert_eq!(api.authorisations.load(Ordering::SeqCst), 2);
    // Another gateway key: the (genuine) answer cannot be verified, so it is not trusted.
    let stranger = b64(wallet.public_key().as_ref());
    let r = run(call(&der, &stranger, "3")).await;
    expect(&r, 4);
    assert!(r.stdout.is_empty(), "{r:?}");
    // A key version the gateway does not know: refused before authentication.
    let r = run(call(&der, &gateway_public, "4")).await;
    expect(&r, 1);
    assert_eq!(r.result_code(), "INVALID_SIGNATURE");
    // Usage: the Ed25519 key without the gateway's key, or with an HMAC key too.
    let mut no_gateway = call(&der, &gateway_public, "3");
    no_gateway.drain(7..9);
    let r = run(no_gateway).await;
    expect(&r, 2);
    assert!(r.stderr.contains("--gateway-public-key"), "{r:?}");
    let mut both = call(&der, &gateway_public, "3");
    both.extend(["--key-base64".to_owned(), b64(KEY)]);
    expect(&run(both).await, 2);
    assert_eq!(api.authorisations.load(Ordering::SeqCst), 3);
    server.shutdown(Duration::from_secs(5)).await;
}

// ---------------------------------------------------------------------------------------------
// Hand-written servers: bad response signatures, silence, nobody home
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Rogue {
    /// Signs with a key that is not the wallet's.
    OtherKey,
    /// Signs the genuine body, then sends a changed one.
    TamperedBody,
    /// Signs correctly, but with a response-time an hour old.
    Stale,
    /// A success without any signature.
    Unsigned,
    /// Signs correctly (the control: the CLI accepts it).
    Honest,
    /// Accepts, reads the request, never answers.
    Silent,
    /// Answers 2 MiB (correctly signed): more than the client reads.
    Huge,
}

const GENUINE: &str = r#"{"result":{"resultStatus":"F","resultCode":"ACQUIRER_DECLINED","resultMessage":"declined"},"paymentId":"P-1","paymentStatus":"FAIL"}"#;
const TAMPERED: &str = r#"{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"},"paymentId":"P-1","paymentStatus":"SUCCESS"}"#;

fn sign(key: &[u8], path: &str, time: &str, body: &[u8]) -> String {
    let message = canonical_string(Direction::Response, "POST", path, CLIENT, time, body);
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    qrbridge::scheme::native::auth::SignatureHeader {
        algorithm: qrbridge::scheme::native::auth::Algorithm::HmacSha256,
        key_version: 1,
        signature: ring::hmac::sign(&k, message.as_bytes()).as_ref().to_vec(),
    }
    .format()
}

/// Serves one connection at a time on plaintext loopback until dropped; answers per `mode`.
async fn rogue(mode: Rogue) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head and a content-length body (bounded by the client's own timeout).
                let (path, body_start, len) = loop {
                    let Ok(n) = s.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (path, end + 4, len);
                    }
                };
                while buf.len() < body_start + len {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                if let Rogue::Silent = mode {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    return;
                }
                let now = request_time(SystemTime::now());
                let hour_ago = request_time(SystemTime::now() - Duration::from_secs(3600));
                let (body, sig, time) = match mode {
                    Rogue::OtherKey => (
                        GENUINE.to_owned(),
                        Some(sign(OTHER_KEY, &path, &now, GENUINE.as_bytes())),
                        now,
                    ),
                    Rogue::TamperedBody => (
                        TAMPERED.to_owned(),
                        Some(sign(KEY, &path, &now, GENUINE.as_bytes())),
                        now,
                    ),
                    Rogue::Stale => (
                        TAMPERED.to_owned(),
                        Some(sign(KEY, &path, &hour_ago, TAMPERED.as_bytes())),
                        hour_ago,
                    ),
                    Rogue::Unsigned => (TAMPERED.to_owned(), None, now),
                    Rogue::Honest | Rogue::Silent => (
                        TAMPERED.to_owned(),
                        Some(sign(KEY, &path, &now, TAMPERED.as_bytes())),
                        now,
                    ),
                    Rogue::Huge => {
                        let body = format!("{}{TAMPERED}", " ".repeat(2 << 20));
                        let sig = sign(KEY, &path, &now, body.as_bytes());
                        (body, Some(sig), now)
                    }
                };
                let mut head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n",
                    body.len()
                );
                if let Some(sig) = sig {
                    head.push_str(&format!(
                        "client-id: {CLIENT}\r\nresponse-time: {time}\r\nsignature: {sig}\r\n"
                    ));
                }
                head.push_str("\r\n");
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (url, task)
}

async fn against_rogue(mode: Rogue, extra: &[&str]) -> Run {
    let (url, task) = rogue(mode).await;
    let mut args: Vec<String> = [
        "wallet",
        "--url",
        &url,
        "--client-id",
        CLIENT,
        "--key-base64",
        &b64(KEY),
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.extend(["pay", "--quote-id", "Q-1"].map(str::to_owned));
    let r = run(args).await;
    task.abort();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correctly_signed_response_from_the_hand_written_server_is_accepted() {
    let r = against_rogue(Rogue::Honest, &[]).await;
    expect(&r, 0);
    assert!(r.stderr.contains("response signature verified"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_response_signatures_are_detected_and_the_answer_is_not_trusted() {
    for mode in [
        Rogue::OtherKey,
        Rogue::TamperedBody,
        Rogue::Stale,
        Rogue::Unsigned,
    ] {
        let r = against_rogue(mode, &[]).await;
        expect(&r, 4);
        assert!(
            r.stdout.is_empty(),
            "{mode:?}: untrusted JSON on stdout: {r:?}"
        );
        assert!(r.stderr.contains("NOT trusted"), "{mode:?}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_never_answers_is_an_unknown_outcome_exit_3() {
    let started = Instant::now();
    let r = against_rogue(Rogue::Silent, &["--timeout", "1"]).await;
    expect(&r, 3);
    assert!(r.stderr.contains("no answer within 1 s"), "{r:?}");
    assert!(r.stderr.contains("inquiry"), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_larger_than_a_mebibyte_is_cut_short_as_an_unknown_outcome() {
    let r = against_rogue(Rogue::Huge, &[]).await;
    expect(&r, 3);
    assert!(r.stderr.contains("answer cut short"), "{r:?}");
    assert!(r.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_gateway_exits_2_with_a_clear_message() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = run(vec![
        "wallet".into(),
        "--url".into(),
        format!("http://127.0.0.1:{port}"),
        "inquiry".into(),
        "--payment-id".into(),
        "P-1".into(),
    ])
    .await;
    expect(&r, 2);
    assert!(r.stderr.contains("could not connect to 127.0.0.1"), "{r:?}");
    assert!(r.stderr.contains("nothing was sent"), "{r:?}");
    assert!(r.stdout.is_empty());
    // Plain http:// off loopback is refused before connecting.
    let r = run([
        "wallet",
        "--url",
        "http://192.0.2.1:8080",
        "inquiry",
        "--payment-id",
        "P-1",
    ]
    .map(str::to_owned)
    .to_vec())
    .await;
    expect(&r, 2);
    assert!(r.stderr.contains("loopback only"), "{r:?}");
}
