//! The aplus scheme over real sockets, as an Alipay+ MPP wallet sees it: the wallet scans
//! (`userInitiatedPay`, answered with the order and our `paymentRequestId`), debits its user and
//! notifies (`notifyPayment`); the gateway authorises at the acquirer simulator (mutual TLS) and,
//! when the domestic side does not take the money, calls the wallet's `cancelPayment` through the
//! outbox. The test wallet here signs and verifies with `ring` directly and its own PEM and
//! percent-encoding code, not with `scheme::aplus::sign`, and keeps a ledger of its user's money:
//! at the end of each flow the wallet's ledger, the journal and the acquirer's ledger agree.
//!
//! The shared battery (`harness.rs`) drives wallet-initiated pay / inquiry / cancel / refund,
//! which the Alipay+ MPP choreography does not have; this file is aplus's own suite (the
//! refusals included).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use qrbridge::acquirer::sim::{Behaviour, SimConfig, Simulator, Status};
use qrbridge::gateway::Gateway;
use qrbridge::journal::{Journal, JournalConfig, NoticeState, PaymentState, RedbJournal};
use qrbridge::notify::{Deliverer, NotifyPolicy};
use qrbridge::scheme::native::auth::AuthConfig;
use qrbridge::scheme::{Scheme, SchemeSettings};
use qrbridge::server::{Limits, RunningServer, ServerConfig, Transport};
use ring::rand::SystemRandom;
use ring::signature::{
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::harness::{self, CLIENT, SGQR_STATIC};
use crate::stack;

const ROUTES: &str = "/schemes/aplus/aps/api/v1/payments/";
const WALLET_PRIVATE: &str = include_str!("../../testdata/schemes/aplus/wallet-my-private.pem");
/// The gateway's public key as PKCS#1 (made by `openssl rsa -pubin -RSAPublicKey_out`).
const GATEWAY_PUBLIC_PKCS1: &str =
    include_str!("../../testdata/schemes/aplus/gateway-public-pkcs1.pem");
/// Where the test wallet's APIs live (the gateway appends the API name).
const WALLET_API_PATH: &str = "/mpp/aps/api/v1/payments/";
const BODY_LIMIT: u64 = 64 * 1024;
/// Amounts (SGD minor units) the acquirer simulator approves, declines (51) or never answers.
const APPROVE: &str = "12.50";
const DECLINE: &str = "51.00";
const NO_ANSWER: &str = "77.77";
/// The ids Alipay+ would assign (configured): ours as the acquiring side, the wallet's.
const ACQUIRER_ID: &str = "1022188000000000001";
const PSP_ID: &str = "1022172000000000001";

fn pem(text: &str, label: &str) -> Vec<u8> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let inner = text
        .split(&begin)
        .nth(1)
        .unwrap()
        .split(&end)
        .next()
        .unwrap();
    let b64: String = inner.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(b64).unwrap()
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn urldecode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SS.mmm+08:00` (Singapore / Kuala Lumpur time, as the wallet would send it).
fn time_text(at: SystemTime) -> String {
    let d = at.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    let local = d.as_secs() + 8 * 3600;
    let (days, rem) = (local / 86_400, local % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}+08:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

fn to_sign(path: &str, client: &str, time: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!("POST {path}\n{client}.{time}.").into_bytes();
    m.extend_from_slice(body);
    m
}

/// Verifies `client-id`, `<time_header>` and `signature` of a message from the gateway.
fn verify_from_gateway(
    headers: &HeaderMap,
    time_header: &str,
    path: &str,
    body: &[u8],
) -> Result<(), String> {
    let get = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .ok_or(format!("no {n} header"))
    };
    let client = get("client-id")?;
    if client != CLIENT {
        return Err(format!("client-id {client:?}"));
    }
    let time = get(time_header)?;
    let sig = get("signature")?;
    let mut parts = sig.split(',');
    if parts.next() != Some("algorithm=RSA256") || parts.next() != Some("keyVersion=1") {
        return Err(format!("signature header {sig:?}"));
    }
    let value = parts
        .next()
        .and_then(|p| p.strip_prefix("signature="))
        .ok_or(format!("signature header {sig:?}"))?;
    let bytes = STANDARD
        .decode(urldecode(value))
        .map_err(|e| e.to_string())?;
    let key = UnparsedPublicKey::new(
        &RSA_PKCS1_2048_8192_SHA256,
        pem(GATEWAY_PUBLIC_PKCS1, "RSA PUBLIC KEY"),
    );
    key.verify(&to_sign(path, client, time, body), &bytes)
        .map_err(|_| format!("{time_header} signature does not verify"))
}

/// What the test wallet does when the gateway calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Result S, signed.
    Answer,
    /// HTTP 503, unsigned (down).
    Down,
    /// inquiryPayment: still in process (result S, paymentResult U); other calls as `Answer`.
    Processing,
}

/// One call the gateway made to the wallet, its signature verified.
#[derive(Debug, Clone)]
struct Call {
    api: String,
    body: Value,
}

/// The test MPP wallet: its server for the gateway's calls, and its user's ledger (MYR minor units
/// per paymentRequestId: − debited by the wallet before notifying, + credited back by the
/// gateway's cancelPayment or refund).
#[derive(Clone)]
struct Wallet {
    base: String,
    calls: Arc<Mutex<Vec<Call>>>,
    arrived: Arc<tokio::sync::Notify>,
    mode: Arc<Mutex<Mode>>,
    ledger: Arc<Mutex<BTreeMap<String, i64>>>,
    /// Refunds already credited (the wallet dedupes on refundRequestId).
    refunded: Arc<Mutex<Vec<String>>>,
}

impl Wallet {
    async fn start(key: Arc<RsaKeyPair>) -> Wallet {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let w = Wallet {
            base: format!("http://{addr}{WALLET_API_PATH}"),
            calls: Arc::new(Mutex::new(Vec::new())),
            arrived: Arc::new(tokio::sync::Notify::new()),
            mode: Arc::new(Mutex::new(Mode::Answer)),
            ledger: Arc::new(Mutex::new(BTreeMap::new())),
            refunded: Arc::new(Mutex::new(Vec::new())),
        };
        let served = w.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (w, key) = (served.clone(), key.clone());
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let (w, key) = (w.clone(), key.clone());
                            async move { Ok::<_, Infallible>(w.answer(req, &key).await) }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        w
    }

    async fn answer(
        &self,
        req: Request<hyper::body::Incoming>,
        key: &RsaKeyPair,
    ) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        let (parts, body) = req.into_parts();
        let body = body.collect().await.unwrap().to_bytes().to_vec();
        if *self.mode.lock().unwrap() == Mode::Down {
            let mut r = Response::new(Full::new(Bytes::from_static(b"down")));
            *r.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
            return r;
        }
        // Our calls from the gateway are signed with its key: a wrong one is refused.
        let (status, result) = match verify_from_gateway(
            &parts.headers,
            "request-time",
            &path,
            &body,
        ) {
            Err(e) => (
                401,
                json!({"result": {"resultStatus":"F","resultCode":"INVALID_SIGNATURE","resultMessage":e}}),
            ),
            Ok(()) => {
                let v: Value = serde_json::from_slice(&body).unwrap();
                let api = path
                    .strip_prefix(WALLET_API_PATH)
                    .unwrap_or(&path)
                    .to_owned();
                let extra = self.apply(&api, &v);
                self.calls.lock().unwrap().push(Call { api, body: v });
                self.arrived.notify_waiters();
                extra
            }
        };
        let out = serde_json::to_vec(&result).unwrap();
        let time = time_text(SystemTime::now());
        let mut sig = vec![0; key.public().modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            &to_sign(&path, CLIENT, &time, &out),
            &mut sig,
        )
        .unwrap();
        let mut r = Response::new(Full::new(Bytes::from(out)));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        let h = r.headers_mut();
        h.insert(
            "content-type",
            "application/json; charset=UTF-8".parse().unwrap(),
        );
        h.insert("client-id", CLIENT.parse().unwrap());
        h.insert("response-time", time.parse().unwrap());
        h.insert(
            "signature",
            format!(
                "algorithm=RSA256,keyVersion=1,signature={}",
                urlencode(&STANDARD.encode(&sig))
            )
            .parse()
            .unwrap(),
        );
        r
    }

    /// The wallet's side of a call, and its answer (HTTP status, body): a cancel gives the user
    /// back what was debited (once); a refund credits `refundToAmount` (once per
    /// refundRequestId); an inquiry says whether the user was debited (the ledger), or that the
    /// payment is still in process (`Mode::Processing`), or that there is no such payment.
    fn apply(&self, api: &str, v: &Value) -> (u16, Value) {
        let ok = json!({"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"});
        let id = v["paymentRequestId"].as_str().unwrap_or("").to_owned();
        let mut ledger = self.ledger.lock().unwrap();
        match api {
            "cancelPayment" => {
                ledger.insert(id, 0);
            }
            "inquiryPayment" if *self.mode.lock().unwrap() == Mode::Processing => {
                return (
                    200,
                    json!({"result": ok, "paymentRequestId": id,
                           "paymentResult": {"resultStatus":"U","resultCode":"PAYMENT_IN_PROCESS","resultMessage":"in process"}}),
                );
            }
            "inquiryPayment" => {
                return match ledger.get(&id) {
                    Some(debited) if *debited < 0 => (
                        200,
                        json!({"result": ok, "paymentRequestId": id, "paymentResult": ok,
                               "paymentId": format!("mpp-inq-{}", &id[3..11])}),
                    ),
                    _ => (
                        200,
                        json!({"result": {"resultStatus":"F","resultCode":"ORDER_NOT_EXIST","resultMessage":"no such payment"}}),
                    ),
                };
            }
            "refund" => {
                let refund = v["refundRequestId"].as_str().unwrap().to_owned();
                let mut done = self.refunded.lock().unwrap();
                if !done.contains(&refund) {
                    done.push(refund);
                    let credit: i64 = v["refundToAmount"]["value"]
                        .as_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    *ledger.entry(id).or_insert(0) += credit;
                }
            }
            _ => {}
        }
        (200, json!({ "result": ok }))
    }

    fn debit(&self, id: &str, minor: i64) {
        *self
            .ledger
            .lock()
            .unwrap()
            .entry(id.to_owned())
            .or_insert(0) -= minor;
    }

    fn balance(&self, id: &str) -> i64 {
        self.ledger.lock().unwrap().get(id).copied().unwrap_or(0)
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Waits (at most 20 s) for a call to `api`.
    async fn wait_for(&self, api: &str) -> Call {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let waiter = self.arrived.notified();
            if let Some(c) = self.calls().into_iter().find(|c| c.api == api) {
                return c;
            }
            if tokio::time::timeout_at(deadline, waiter).await.is_err() {
                panic!("no {api} call within 20 s; got {:?}", self.calls());
            }
        }
    }
}

/// What one exchange returned.
struct Got {
    http: u16,
    headers: HeaderMap,
    v: Value,
}

impl Got {
    fn status(&self) -> &str {
        self.v["result"]["resultStatus"].as_str().unwrap_or("")
    }
    fn code(&self) -> &str {
        self.v["result"]["resultCode"].as_str().unwrap_or("")
    }
}

/// How a request is spoiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spoil {
    None,
    Signature,
    Client,
}

/// Acquirer simulator + gateway + server (aplus) + notice deliverer + the test wallet.
struct Env {
    addr: SocketAddr,
    gateway: Gateway,
    /// The quoting clock: set back to make an order whose expiry (and inquiry) is near.
    clock: Arc<qrbridge::time::ManualClock>,
    sim: Simulator,
    journal: Arc<RedbJournal>,
    wallet: Wallet,
    key: Arc<RsaKeyPair>,
    server: Option<RunningServer>,
    deliverer: Option<Deliverer>,
    dir: PathBuf,
    /// Every exchange: (API, request body, HTTP status, response body).
    log: Mutex<Vec<(String, Value, u16, Value)>>,
}

impl Drop for Env {
    fn drop(&mut self) {
        drop(self.deliverer.take());
        drop(self.server.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/schemes/aplus")
}

fn minor(amount: &str) -> String {
    amount.replace('.', "")
}

impl Env {
    async fn start() -> Env {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "qrbridge-aplus-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut sim_config = SimConfig::default();
        sim_config.by_amount.insert(
            minor(DECLINE),
            Behaviour::Decline {
                code: "51".to_owned(),
            },
        );
        sim_config
            .by_amount
            .insert(minor(NO_ANSWER), Behaviour::NeverAnswer);
        let (sim, link) = stack::acquirer(sim_config).await;
        let (quoter, quotes, clock) = stack::quoting();
        let journal =
            Arc::new(RedbJournal::open(JournalConfig::new(dir.join("journal.redb"))).unwrap());
        let settings = stack::sg_settings(&[CLIENT], stack::sg_routes());
        let (gateway, _report) = Gateway::start(
            settings,
            journal.clone(),
            quoter,
            quotes,
            vec![("sg".to_owned(), link)],
        )
        .await
        .unwrap();
        gateway.ready(Duration::from_secs(10)).await.unwrap();
        let key = Arc::new(RsaKeyPair::from_pkcs8(&pem(WALLET_PRIVATE, "PRIVATE KEY")).unwrap());
        let wallet = Wallet::start(key.clone()).await;
        let table: toml::Table = format!(
            r#"
            signing_key_pem = "gateway-private.pem"
            signing_key_version = 1
            acquirer_id = "{ACQUIRER_ID}"
            payment_notify_url = "https://gw.example/schemes/aplus/aps/api/v1/payments/notifyPayment"
            [clients.wallet-my]
            public_keys = {{ "1" = "wallet-my-public.pem" }}
            wallet_api_url = "{}"
            pay_to_currency = "MYR"
            psp_id = "{PSP_ID}"
            "#,
            wallet.base
        )
        .parse()
        .unwrap();
        let scheme: Arc<dyn Scheme> = qrbridge::scheme::aplus::build(&SchemeSettings {
            table,
            demo_client: None,
            base_dir: testdata(),
            replay_bytes: qrbridge::scheme::native::auth::REPLAY_DEFAULT_BYTES,
        })
        .unwrap();
        let server = RunningServer::start_with_schemes(
            ServerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                transport: Transport::PlaintextLoopback,
                limits: Limits {
                    max_body_bytes: BODY_LIMIT,
                    ..Limits::default()
                },
                auth: AuthConfig::off("native-demo"),
            },
            vec![scheme],
            Arc::new(gateway.clone()),
            gateway.readiness(),
        )
        .await
        .unwrap();
        let addr = server.local_addr();
        // The deliverer settles orders with the wallet's answers to inquiries, as `serve` does.
        let deliverer = Deliverer::start_settling(
            journal.clone(),
            server.schemes(),
            NotifyPolicy {
                first_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(500),
                attempt_timeout: Duration::from_secs(5),
                max_inquiries: 3,
                ..NotifyPolicy::default()
            },
            Some(Arc::new(gateway.clone())),
        )
        .unwrap();
        Env {
            addr,
            gateway,
            clock,
            sim,
            journal,
            wallet,
            key,
            server: Some(server),
            deliverer: Some(deliverer),
            dir,
            log: Mutex::new(Vec::new()),
        }
    }

    /// A request signed with the wallet's key at `at`, spoiled as asked.
    async fn send_at(&self, api: &str, body: &[u8], at: SystemTime, spoil: Spoil) -> Got {
        let path = format!("{ROUTES}{api}");
        let time = time_text(at);
        let client = if spoil == Spoil::Client {
            "wallet-xx"
        } else {
            CLIENT
        };
        let mut sig = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                &to_sign(&path, client, &time, body),
                &mut sig,
            )
            .unwrap();
        if spoil == Spoil::Signature {
            sig[10] ^= 0x01;
        }
        let headers = [
            ("content-type", "application/json; charset=UTF-8".to_owned()),
            ("client-id", client.to_owned()),
            ("request-time", time),
            (
                "signature",
                format!(
                    "algorithm=RSA256,keyVersion=1,signature={}",
                    urlencode(&STANDARD.encode(&sig))
                ),
            ),
        ];
        let (http, headers, bytes) = harness::http(self.addr, "POST", &path, &headers, body).await;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("{api}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes))
        });
        // Every answer to an authenticated request is signed by the gateway.
        if http == 200 {
            verify_from_gateway(&headers, "response-time", &path, &bytes)
                .unwrap_or_else(|e| panic!("{api}: {e}"));
        }
        if let Ok(sent) = serde_json::from_slice::<Value>(body) {
            self.log
                .lock()
                .unwrap()
                .push((api.to_owned(), sent, http, v.clone()));
        }
        Got { http, headers, v }
    }

    async fn send(&self, api: &str, body: Value) -> Got {
        self.send_at(
            api,
            body.to_string().as_bytes(),
            SystemTime::now(),
            Spoil::None,
        )
        .await
    }

    /// userInitiatedPay with the official body.
    async fn scan(&self, code: &str, customer: &str) -> Got {
        self.send(
            "userInitiatedPay",
            json!({"codeValue": code, "customerId": customer,
                   "passThroughInfo": "{\"osType\":\"ANDROID\"}"}),
        )
        .await
    }

    /// The wallet debits its user for the order in `order`, then notifies S.
    async fn debit_and_notify(&self, order: &Got, wallet_payment_id: &str) -> Got {
        let id = order.v["paymentRequestId"].as_str().unwrap();
        let pay_to: i64 = order.v["payToAmount"]["value"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        self.wallet.debit(id, pay_to);
        self.notify(order, "S", wallet_payment_id).await
    }

    async fn notify(&self, order: &Got, result: &str, wallet_payment_id: &str) -> Got {
        let code = if result == "S" {
            "SUCCESS"
        } else {
            "USER_BALANCE_NOT_ENOUGH"
        };
        self.send(
            "notifyPayment",
            json!({"paymentRequestId": order.v["paymentRequestId"],
                   "paymentId": wallet_payment_id,
                   "paymentTime": time_text(SystemTime::now()),
                   "paymentResult": {"resultStatus": result, "resultCode": code, "resultMessage": null},
                   "paymentAmount": order.v["paymentAmount"],
                   "payToAmount": order.v["payToAmount"],
                   "customerId": "cust-1",
                   "paymentPromoInfo": null}),
        )
        .await
    }

    /// Scans with the quoting clock set back, so that the order's expiry (its quote's) is 1 s
    /// away and the gateway's inquiry (`ORDER_INQUIRY_GRACE` after it) is due in about 6 s.
    async fn scan_expiring(&self, code: &str, customer: &str) -> Got {
        let lifetime = qrbridge::fx::QuotePolicy::default().lifetime;
        self.clock
            .set(SystemTime::now() - lifetime + Duration::from_secs(1));
        let got = self.scan(code, customer).await;
        self.clock.set(SystemTime::now());
        got
    }

    async fn payment_state(&self, id: &str) -> Option<PaymentState> {
        self.journal
            .payment_by_request(CLIENT, id)
            .await
            .unwrap()
            .map(|p| p.state)
    }

    /// Polls the journal until the payment reaches `want` (at most 20 s).
    async fn wait_state(&self, id: &str, want: PaymentState) {
        for _ in 0..400 {
            if self.payment_state(id).await == Some(want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{id} never reached {want:?}: {:?}",
            self.payment_state(id).await
        );
    }
}

fn code(amount: &str) -> String {
    qrbridge::scheme::aplus::dynamic_code(SGQR_STATIC, amount).unwrap()
}

fn purchases(sim: &Simulator) -> Vec<qrbridge::acquirer::sim::Entry> {
    sim.ledger()
        .entries
        .into_iter()
        .filter(|e| e.processing_code.starts_with("00"))
        .collect()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_code_notified_s_is_authorised_and_the_three_ledgers_agree() {
    let env = Env::start().await;
    let order = env.scan(&code(APPROVE), "cust-1").await;
    assert_eq!((order.http, order.status()), (200, "S"), "{}", order.v);
    let id = order.v["paymentRequestId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("APR") && id.len() <= 64, "{id}");
    let o = &order.v["order"];
    assert_eq!(o["merchant"]["merchantName"], "SOBA NOODLE HOUSE");
    assert_eq!(o["merchant"]["merchantMCC"], "5812");
    assert_eq!(o["merchant"]["merchantAddress"]["region"], "SG");
    assert!(o["merchant"]["referenceMerchantId"].is_string(), "{o}");
    assert_eq!(
        o["orderAmount"],
        json!({"currency": "SGD", "value": "1250"})
    );
    assert_eq!(order.v["paymentAmount"], o["orderAmount"]);
    assert_eq!(order.v["payToAmount"]["currency"], "MYR");
    assert_eq!(order.v["paymentQuote"]["quoteCurrencyPair"], "SGD/MYR");
    assert!(order.v["paymentExpiryTime"].is_string());
    // The ids Alipay+ assigns the two sides, and where to notify: as configured.
    assert_eq!(
        (
            order.v["acquirerId"].as_str(),
            order.v["pspId"].as_str(),
            order.v["paymentNotifyUrl"].as_str()
        ),
        (
            Some(ACQUIRER_ID),
            Some(PSP_ID),
            Some("https://gw.example/schemes/aplus/aps/api/v1/payments/notifyPayment")
        )
    );
    // Nothing reaches the acquirer before the wallet's notification.
    assert!(purchases(&env.sim).is_empty());
    let acked = env.debit_and_notify(&order, "mpp-pay-1").await;
    assert_eq!(
        (acked.http, acked.status(), acked.code()),
        (200, "S", "SUCCESS"),
        "{}",
        acked.v
    );
    let p = purchases(&env.sim);
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].amount, p[0].status), (1250, Status::Approved));
    assert_eq!(env.payment_state(&id).await, Some(PaymentState::Success));
    // Completed: the wallet is not called; its user paid what the order said.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(env.wallet.calls().is_empty(), "{:?}", env.wallet.calls());
    let pay_to: i64 = order.v["payToAmount"]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(env.wallet.balance(&id), -pay_to);
    // A repeat of the notification (the wallet did not see our answer) changes nothing.
    let again = env.notify(&order, "S", "mpp-pay-1").await;
    assert_eq!(again.status(), "S", "{}", again.v);
    assert_eq!(purchases(&env.sim).len(), 1);
    // The same notification with another wallet paymentId is not the same notification.
    let other = env.notify(&order, "S", "mpp-pay-2").await;
    assert_eq!(other.code(), "REPEAT_REQ_INCONSISTENT", "{}", other.v);
    assert_eq!(purchases(&env.sim).len(), 1);
    // The code is paid: scanning it again does not make a second order.
    let rescan = env.scan(&code(APPROVE), "cust-1").await;
    assert_eq!(
        (rescan.status(), rescan.code()),
        ("F", "ORDER_IS_CLOSED"),
        "{}",
        rescan.v
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_scan_is_the_same_order_and_another_user_is_refused() {
    let env = Env::start().await;
    let first = env.scan(&code(APPROVE), "cust-1").await;
    assert_eq!(first.status(), "S", "{}", first.v);
    let again = env.scan(&code(APPROVE), "cust-1").await;
    assert_eq!(again.v["paymentRequestId"], first.v["paymentRequestId"]);
    assert_eq!(again.v["paymentQuote"], first.v["paymentQuote"]);
    let other = env.scan(&code(APPROVE), "cust-2").await;
    assert_eq!(other.code(), "REPEAT_REQ_INCONSISTENT", "{}", other.v);
    // The official body with fields we do not know, optional fields null: answered, not refused.
    let extra = env
        .send(
            "userInitiatedPay",
            json!({"codeValue": code("3.00"), "customerId": "cust-1", "passThroughInfo": null,
                   "acquirerId": null, "userInitiatedPayExtraInfo": {"k": "v"}}),
        )
        .await;
    assert_eq!((extra.http, extra.status()), (200, "S"), "{}", extra.v);
    // A static code without an amount: the order, no payment order yet (our extension).
    let fixed = env.scan(SGQR_STATIC, "cust-1").await;
    assert_eq!(fixed.status(), "S", "{}", fixed.v);
    assert!(fixed.v.get("paymentRequestId").is_none(), "{}", fixed.v);
    assert!(fixed.v["order"].get("orderAmount").is_none(), "{}", fixed.v);
    assert!(purchases(&env.sim).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decline_after_the_debit_makes_the_gateway_cancel_on_the_wallet() {
    let env = Env::start().await;
    let order = env.scan(&code(DECLINE), "cust-1").await;
    let id = order.v["paymentRequestId"].as_str().unwrap().to_owned();
    // The wallet is down at first: the cancel is retried until it answers.
    *env.wallet.mode.lock().unwrap() = Mode::Down;
    let acked = env.debit_and_notify(&order, "mpp-pay-51").await;
    assert_eq!(acked.status(), "S", "{}", acked.v);
    assert!(env.wallet.balance(&id) < 0);
    let p = purchases(&env.sim);
    assert_eq!((p.len(), p[0].status), (1, Status::Declined));
    assert_eq!(env.payment_state(&id).await, Some(PaymentState::Failed));
    tokio::time::sleep(Duration::from_millis(400)).await;
    *env.wallet.mode.lock().unwrap() = Mode::Answer;
    let cancel = env.wallet.wait_for("cancelPayment").await;
    assert_eq!(
        cancel.body,
        json!({"acquirerId": ACQUIRER_ID, "pspId": PSP_ID, "paymentRequestId": id,
               "paymentId": "mpp-pay-51"})
    );
    // The user is whole; the merchant was not paid; the journal's notice is SENT.
    assert_eq!(env.wallet.balance(&id), 0);
    let snap = env.journal.snapshot().unwrap();
    let pid = env
        .journal
        .payment_by_request(CLIENT, &id)
        .await
        .unwrap()
        .unwrap()
        .id;
    let notice = snap.notice(&format!("N-{pid}-FAILED")).unwrap().unwrap();
    for _ in 0..100 {
        if env
            .journal
            .snapshot()
            .unwrap()
            .notice(&notice.notice_id)
            .unwrap()
            .unwrap()
            .state
            == NoticeState::Sent
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let notice = env
        .journal
        .snapshot()
        .unwrap()
        .notice(&notice.notice_id)
        .unwrap()
        .unwrap();
    assert_eq!(notice.state, NoticeState::Sent, "{notice:?}");
    assert!(
        notice.attempts >= 1,
        "the wallet was down first: {notice:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acquirer_timeout_is_reversed_then_cancelled_on_the_wallet() {
    let env = Env::start().await;
    let order = env.scan(&code(NO_ANSWER), "cust-1").await;
    let id = order.v["paymentRequestId"].as_str().unwrap().to_owned();
    let acked = env.debit_and_notify(&order, "mpp-pay-77").await;
    // The notification was processed (the outcome is ours to resolve): S.
    assert_eq!(acked.status(), "S", "{}", acked.v);
    env.wait_state(&id, PaymentState::Reversed).await;
    assert_eq!(purchases(&env.sim)[0].status, Status::Reversed);
    let cancel = env.wallet.wait_for("cancelPayment").await;
    assert_eq!(cancel.body["paymentRequestId"], id.as_str());
    assert_eq!(
        (
            cancel.body["acquirerId"].as_str(),
            cancel.body["pspId"].as_str()
        ),
        (Some(ACQUIRER_ID), Some(PSP_ID))
    );
    assert_eq!(env.wallet.balance(&id), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_f_notification_closes_the_order_and_nothing_is_sent() {
    let env = Env::start().await;
    let order = env.scan(&code(APPROVE), "cust-1").await;
    let id = order.v["paymentRequestId"].as_str().unwrap().to_owned();
    let f = env.notify(&order, "F", "mpp-pay-f").await;
    assert_eq!(f.status(), "S", "{}", f.v);
    let late = env.notify(&order, "S", "mpp-pay-f").await;
    assert_eq!(
        (late.status(), late.code()),
        ("F", "ORDER_IS_CLOSED"),
        "{}",
        late.v
    );
    assert!(
        late.v["result"]["resultMessage"]
            .as_str()
            .unwrap()
            .contains(&id)
    );
    assert!(purchases(&env.sim).is_empty());
    // The order was journaled when scanned; the F closed it (no money moved anywhere).
    assert_eq!(env.payment_state(&id).await, Some(PaymentState::Closed));
    // The user did not pay: the code may be scanned again, a new order.
    let again = env.scan(&code(APPROVE), "cust-1").await;
    assert_eq!(again.status(), "S", "{}", again.v);
    assert_ne!(again.v["paymentRequestId"], order.v["paymentRequestId"]);
    // An id we never issued.
    let unknown = env
        .send(
            "notifyPayment",
            json!({"paymentRequestId": "APR-never", "paymentResult": {"resultStatus": "S", "resultCode": "SUCCESS"}}),
        )
        .await;
    assert_eq!(unknown.code(), "ORDER_IS_CLOSED", "{}", unknown.v);
    // U is not a result.
    let u = env
        .send(
            "notifyPayment",
            json!({"paymentRequestId": id, "paymentResult": {"resultStatus": "U", "resultCode": "PAYMENT_IN_PROCESS"}}),
        )
        .await;
    assert_eq!((u.http, u.code()), (400, "PARAM_ILLEGAL"), "{}", u.v);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debit_notified_for_an_order_we_do_not_hold_is_refused_and_counted() {
    let env = Env::start().await;
    let counted = || {
        qrbridge::telemetry::metrics::global()
            .debits_refused
            .get_or_create(&qrbridge::telemetry::metrics::DebitLabels {
                scheme: "aplus".to_owned(),
                reason: "not_open".to_owned(),
            })
            .get()
    };
    let before = counted();
    let late = env
        .send(
            "notifyPayment",
            json!({"paymentRequestId": "APR-not-held", "paymentId": "mpp-pay-late",
                   "paymentResult": {"resultStatus": "S", "resultCode": "SUCCESS"}}),
        )
        .await;
    assert_eq!(
        (late.status(), late.code()),
        ("F", "ORDER_IS_CLOSED"),
        "{}",
        late.v
    );
    assert!(purchases(&env.sim).is_empty());
    // The user's money is with the wallet and no merchant is paid: an operator sees it counted.
    assert!(counted() > before, "not counted");
    assert!(
        qrbridge::telemetry::metrics::render()
            .contains("qrbridge_debits_refused_total{scheme=\"aplus\",reason=\"not_open\"}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_in_alipay_plus_form_and_leave_no_trace() {
    let env = Env::start().await;
    let body = include_bytes!("../../testdata/schemes/aplus/requests/userInitiatedPay.json");
    let now = SystemTime::now();
    let cases: [(Got, u16, &str); 4] = [
        (
            env.send_at("userInitiatedPay", body, now, Spoil::Signature)
                .await,
            401,
            "INVALID_SIGNATURE",
        ),
        (
            env.send_at("userInitiatedPay", body, now, Spoil::Client)
                .await,
            401,
            "INVALID_CLIENT",
        ),
        (
            env.send_at(
                "userInitiatedPay",
                body,
                now - Duration::from_secs(600),
                Spoil::None,
            )
            .await,
            401,
            "REQUEST_TIME_INVALID",
        ),
        (
            env.send_at("userInitiatedPay", b"{\"codeValue\": ", now, Spoil::None)
                .await,
            400,
            "PARAM_ILLEGAL",
        ),
    ];
    for (got, http, code) in cases {
        assert_eq!(
            (got.http, got.code(), got.status()),
            (http, code, "F"),
            "{}",
            got.v
        );
        // Refusals before authentication are unsigned.
        assert!(got.http == 400 || got.headers.get("signature").is_none());
    }
    // The wallet-initiated calls of the earlier interface are not Alipay+ MPP APIs.
    for old in [
        "pay",
        "inquiryPayment",
        "cancelPayment",
        "refund",
        "inquiryRefund",
    ] {
        let got = env.send(old, json!({"paymentRequestId": "p-1"})).await;
        assert_eq!(
            (got.http, got.code()),
            (404, "INVALID_API"),
            "{old}: {}",
            got.v
        );
    }
    let (http, _, bytes) =
        harness::http(env.addr, "GET", &format!("{ROUTES}notifyPayment"), &[], b"").await;
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        (http, v["result"]["resultCode"].as_str()),
        (405, Some("METHOD_NOT_SUPPORTED"))
    );
    let big = vec![b' '; usize::try_from(BODY_LIMIT).unwrap() + 1];
    let got = env.send_at("notifyPayment", &big, now, Spoil::None).await;
    assert_eq!((got.http, got.code()), (413, "PARAM_ILLEGAL"));
    assert!(env.sim.ledger().entries.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_credit_is_rendered_as_the_refund_call_and_the_wallet_credits_once() {
    // Issue 14 produces RefundCredit notices for merchant refunds; here one is made by hand and
    // delivered the way the deliverer does: rendered and signed by the scheme, POSTed, the
    // wallet's signed answer verified and judged.
    use qrbridge::payment::{Money, RefundResponse, RefundStatus, RequestId};
    use qrbridge::scheme::{Notice, NoticeEvent, WalletCall};
    let env = Env::start().await;
    let scheme = env
        .server
        .as_ref()
        .unwrap()
        .schemes()
        .into_iter()
        .find(|s| s.name() == "aplus")
        .unwrap();
    let money = |minor, ccy| {
        Money(
            qrbridge::money::Amount::from_minor(
                minor,
                qrbridge::money::Currency::from_code(ccy).unwrap(),
            )
            .unwrap(),
        )
    };
    let reference = qrbridge::scheme::aplus::transformers::AplusRef {
        payment_request_id: RequestId::new("APR0001").unwrap(),
        payment_id: None,
    };
    env.wallet.debit("APR0001", 4314);
    let notice = Notice {
        call: WalletCall::RefundCredit,
        scheme: "aplus".to_owned(),
        client_id: CLIENT.to_owned(),
        scheme_ref: Some(reference.encode()),
        notice_id: "N-R1-SUCCESS".to_owned(),
        event: NoticeEvent::Refund(RefundResponse {
            refund_id: RequestId::new("R1").unwrap(),
            refund_request_id: RequestId::new("merchant-refund-1").unwrap(),
            payment_id: RequestId::new("P1").unwrap(),
            refund_status: RefundStatus::Success,
            refund_amount: money(500, "SGD"),
            payer_refund_amount: money(1726, "MYR"),
        }),
    };
    let client = qrbridge::notify::NotifyClient::new(None).unwrap();
    for _ in 0..2 {
        let message = scheme.notification(&notice).unwrap().unwrap();
        assert!(message.url.ends_with("/mpp/aps/api/v1/payments/refund"));
        let answer = client
            .post(
                qrbridge::notify::outbound(message.clone()).unwrap(),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(
            scheme.verify_answer(&notice, &message, &answer.headers, &answer.body),
            Ok(())
        );
        assert!(scheme.acknowledged(answer.status, &answer.headers, &answer.body));
    }
    let call = env.wallet.wait_for("refund").await;
    crate::openapi::Doc::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spec/schemes/aplus.openapi.yaml"),
    )
    .validate("RefundCall", &call.body)
    .unwrap();
    assert_eq!(call.body["refundRequestId"], "R1");
    assert_eq!(
        call.body["refundToAmount"],
        json!({"currency": "MYR", "value": "1726"})
    );
    // Delivered twice (at least once), credited once.
    assert_eq!(env.wallet.balance("APR0001"), -4314 + 1726);
}

#[test]
fn the_fuzz_corpus_replays_and_the_official_requests_parse() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in ["fuzz/corpus/aplus_request", "fuzz/artifacts/aplus_request"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            qrbridge::fuzzing::aplus_request(&bytes);
            n += 1;
        }
    }
    assert!(n >= 12, "seed corpus present ({n} files)");
    use qrbridge::scheme::aplus::transformers as t;
    use qrbridge::scheme::parse_json;
    let req = |name: &str| std::fs::read(testdata().join("requests").join(name)).unwrap();
    parse_json::<t::AplusUserInitiatedPayRequest>(&req("userInitiatedPay.json")).unwrap();
    parse_json::<t::AplusNotifyPaymentRequest>(&req("notifyPayment.json")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_both_ways_validates_against_the_openapi_document() {
    let doc = crate::openapi::Doc::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spec/schemes/aplus.openapi.yaml"),
    );
    // The checker can fail: wrong amounts, missing fields, fields a call must not carry.
    assert!(
        doc.validate("Amount", &json!({"currency": "SGD", "value": "12.50"}))
            .is_err()
    );
    assert!(
        doc.validate("Amount", &json!({"currency": "SGD", "value": "0125"}))
            .is_err()
    );
    assert!(
        doc.validate("UserInitiatedPayRequest", &json!({"codeValue": "x"}))
            .is_err()
    );
    assert!(
        doc.validate("PaymentCall", &json!({"paymentRequestId": "a", "x": "1"}))
            .is_err()
    );
    let env = Env::start().await;
    let paid = env.scan(&code(APPROVE), "cust-1").await;
    env.debit_and_notify(&paid, "mpp-1").await;
    let declined = env.scan(&code(DECLINE), "cust-1").await;
    env.debit_and_notify(&declined, "mpp-2").await;
    env.scan(SGQR_STATIC, "cust-1").await;
    env.notify(&paid, "S", "mpp-other").await;
    env.send("notifyPayment", json!({"paymentRequestId": "APR-x", "paymentResult": {"resultStatus": "S", "resultCode": "SUCCESS"}}))
        .await;
    env.wallet.wait_for("cancelPayment").await;
    let log = env.log.lock().unwrap().clone();
    assert!(log.len() >= 7, "{log:?}");
    for (api, sent, http, got) in &log {
        let (request, answer) = match api.as_str() {
            "userInitiatedPay" => ("UserInitiatedPayRequest", "UserInitiatedPayResponse"),
            "notifyPayment" => ("NotifyPaymentRequest", "ResultOnly"),
            other => panic!("{other}"),
        };
        doc.validate(request, sent)
            .unwrap_or_else(|e| panic!("{api} request {sent}: {e:?}"));
        let answer = if *http == 200 { answer } else { "ResultOnly" };
        doc.validate(answer, got)
            .unwrap_or_else(|e| panic!("{api} answer {got}: {e:?}"));
    }
    // The gateway's calls to the wallet.
    let calls = env.wallet.calls();
    assert!(!calls.is_empty());
    for c in calls {
        let schema = match c.api.as_str() {
            "cancelPayment" | "inquiryPayment" => "PaymentCall",
            "refund" => "RefundCall",
            other => panic!("{other}"),
        };
        doc.validate(schema, &c.body)
            .unwrap_or_else(|e| panic!("{} {}: {e:?}", c.api, c.body));
    }
}

/// Runs the `cryptography` peer (tests/peers/aplus_rsa_peer.py) over `commands`; `None` (after a
/// notice) when it is missing and `QRBRIDGE_REQUIRE_PEERS` is not set.
fn rsa_peer(commands: &[Value]) -> Option<Vec<Value>> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let probe = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        if std::env::var("QRBRIDGE_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("QRBRIDGE_REQUIRE_PEERS=1 but `python3 -c 'import cryptography'` fails");
        }
        eprintln!(
            "notice: Python `cryptography` is not installed; skipping the aplus signature peer test"
        );
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/aplus_rsa_peer.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input: String = commands.iter().map(|c| format!("{c}\n")).collect();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "peer failed");
    let answers: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), commands.len());
    Some(answers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_rsa_implementation_signs_what_we_accept_and_verifies_what_we_sign() {
    let env = Env::start().await;
    let path = format!("{ROUTES}userInitiatedPay");
    let body = json!({"codeValue": code(APPROVE), "customerId": "cust-py"}).to_string();
    let time = time_text(SystemTime::now());
    let sign = json!({"op": "sign", "key": testdata().join("wallet-my-private.pem"),
                      "method": "POST", "path": path, "client": CLIENT, "time": time,
                      "body_b64": STANDARD.encode(&body), "version": 1});
    let Some(signed) = rsa_peer(&[sign]) else {
        return;
    };
    // The peer's signature is accepted by the gateway...
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("client-id", CLIENT.to_owned()),
        ("request-time", time),
        (
            "signature",
            signed[0]["header"].as_str().unwrap().to_owned(),
        ),
    ];
    let (http, got, bytes) =
        harness::http(env.addr, "POST", &path, &headers, body.as_bytes()).await;
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        (http, v["result"]["resultStatus"].as_str()),
        (200, Some("S")),
        "{v}"
    );
    // ...and the gateway's signature on its answer verifies in the peer; a changed body does not.
    let h = |n: &str| got.get(n).unwrap().to_str().unwrap().to_owned();
    let verify = |body: &[u8]| {
        json!({"op": "verify", "key": testdata().join("gateway-public.pem"),
               "method": "POST", "path": path, "client": h("client-id"), "time": h("response-time"),
               "body_b64": STANDARD.encode(body), "header": h("signature")})
    };
    let mut changed = bytes.clone();
    changed.push(b' ');
    let checked = rsa_peer(&[verify(&bytes), verify(&changed)]).unwrap();
    assert_eq!(checked[0]["ok"], true, "{}", checked[0]);
    assert_eq!(checked[1]["ok"], false, "{}", checked[1]);
    // A peer signature over another body is refused by the gateway.
    let other = json!({"op": "sign", "key": testdata().join("wallet-my-private.pem"),
                       "method": "POST", "path": path, "client": CLIENT, "time": h("response-time"),
                       "body_b64": STANDARD.encode("{}"), "version": 1});
    let wrong = rsa_peer(&[other]).unwrap();
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("client-id", CLIENT.to_owned()),
        ("request-time", h("response-time")),
        ("signature", wrong[0]["header"].as_str().unwrap().to_owned()),
    ];
    let (http, _, bytes) = harness::http(env.addr, "POST", &path, &headers, body.as_bytes()).await;
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        (http, v["result"]["resultCode"].as_str()),
        (401, Some("INVALID_SIGNATURE")),
        "{v}"
    );
}

/// Issue 14 end to end: the acquirer (the simulator) sends a refund advice for an aplus payment
/// over the ISO 8583 link; the gateway answers 0230 00 and calls the wallet's `refund` with the
/// payment's MPP references; the advice sent again is answered 00 and the user is credited once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_advice_from_the_acquirer_credits_the_aplus_wallet_once() {
    use qrbridge::acquirer::sim::{RefundOrder, Target};
    let env = Env::start().await;
    let order = env.scan(&code(APPROVE), "cust-1").await;
    assert_eq!(order.status(), "S", "{}", order.v);
    let id = order.v["paymentRequestId"].as_str().unwrap().to_owned();
    let acked = env.debit_and_notify(&order, "mpp-pay-77").await;
    assert_eq!(acked.status(), "S", "{}", acked.v);
    let pay_to: i64 = order.v["payToAmount"]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(env.wallet.balance(&id), -pay_to);
    let rrn = purchases(&env.sim)[0].rrn.clone();
    // The whole 12.50: the payer gets back exactly what it paid.
    let first = env
        .sim
        .refund(RefundOrder {
            target: Target::Rrn(rrn.clone()),
            amount: 1250,
            reference: None,
        })
        .await;
    assert_eq!(first.response_code.as_deref(), Some("00"), "{first:?}");
    let again = env
        .sim
        .refund(RefundOrder {
            target: Target::Rrn(rrn),
            amount: 1250,
            reference: Some(first.rrn.clone()),
        })
        .await;
    assert_eq!(again.response_code.as_deref(), Some("00"), "{again:?}");
    let call = env.wallet.wait_for("refund").await;
    assert_eq!(call.body["paymentRequestId"], id.as_str(), "{}", call.body);
    assert_eq!(call.body["paymentId"], "mpp-pay-77", "{}", call.body);
    assert_eq!(
        call.body["refundAmount"],
        json!({"currency": "SGD", "value": "1250"})
    );
    assert_eq!(
        call.body["refundToAmount"]["value"],
        pay_to.to_string(),
        "{}",
        call.body
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        env.wallet.balance(&id),
        0,
        "credited once: {:?}",
        env.wallet.calls()
    );
    assert_eq!(env.payment_state(&id).await, Some(PaymentState::Refunded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_refund_reaches_the_wallet_as_the_refund_call_and_credits_the_user() {
    use qrbridge::gateway::{MerchantRefund, Original};
    let env = Env::start().await;
    let order = env.scan(&code(APPROVE), "cust-1").await;
    let id = order.v["paymentRequestId"].as_str().unwrap().to_owned();
    env.debit_and_notify(&order, "mpp-pay-r").await;
    let payment = env
        .journal
        .payment_by_request(CLIENT, &id)
        .await
        .unwrap()
        .unwrap();
    let sgd = qrbridge::money::Currency::from_code("SGD").unwrap();
    // The merchant refunds SGD 5.00 at its acquirer (issue 14's path: advice or operator).
    env.gateway
        .merchant_refund(MerchantRefund {
            acquirer: "sg".to_owned(),
            original: Original::Payment(payment.id),
            merchant_id: None,
            reference: "M-REFUND-1".to_owned(),
            amount: qrbridge::money::Amount::from_minor(500, sgd).unwrap(),
            reason: "returned goods".to_owned(),
            trace: Default::default(),
        })
        .await
        .unwrap();
    let call = env.wallet.wait_for("refund").await;
    assert_eq!(call.body["paymentRequestId"], id.as_str());
    assert_eq!(call.body["paymentId"], "mpp-pay-r");
    assert_eq!(
        call.body["refundAmount"],
        json!({"currency": "SGD", "value": "500"})
    );
    let credit: i64 = call.body["refundToAmount"]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(call.body["refundToAmount"]["currency"], "MYR");
    let pay_to: i64 = order.v["payToAmount"]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(credit > 0 && credit < pay_to, "{credit} of {pay_to}");
    assert_eq!(env.wallet.balance(&id), -pay_to + credit);
    crate::openapi::Doc::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spec/schemes/aplus.openapi.yaml"),
    )
    .validate("RefundCall", &call.body)
    .unwrap();
}

// ---- the wallet is silent: inquiryPayment at the order's expiry ------------------------------

fn pay_to(order: &Got) -> i64 {
    order.v["payToAmount"]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_wallet_that_debited_is_inquired_at_the_expiry_and_the_payment_authorised() {
    let env = Env::start().await;
    let order = env.scan_expiring(&code(APPROVE), "cust-1").await;
    assert_eq!(order.status(), "S", "{}", order.v);
    let id = order.v["paymentRequestId"].as_str().unwrap().to_owned();
    // The wallet debits its user; its notification never arrives.
    env.wallet.debit(&id, pay_to(&order));
    assert_eq!(env.payment_state(&id).await, Some(PaymentState::Ordered));
    let inquiry = env.wallet.wait_for("inquiryPayment").await;
    assert_eq!(inquiry.body["paymentRequestId"], id.as_str());
    // The wallet says it debited: the authorisation goes to the acquirer, as after a notify S.
    env.wait_state(&id, PaymentState::Success).await;
    let p = purchases(&env.sim);
    assert_eq!(
        (p.len(), p[0].amount, p[0].status),
        (1, 1250, Status::Approved)
    );
    let payment = env
        .journal
        .payment_by_request(CLIENT, &id)
        .await
        .unwrap()
        .unwrap();
    let wallet_id = format!("mpp-inq-{}", &id[3..11]);
    assert!(
        payment
            .origin
            .scheme_ref
            .as_deref()
            .unwrap()
            .contains(&wallet_id),
        "the wallet's paymentId from its answer is kept: {payment:?}"
    );
    // Three ledgers: the user paid once, the merchant was paid once, nothing to cancel.
    assert_eq!(env.wallet.balance(&id), -pay_to(&order));
    assert!(env.wallet.calls().iter().all(|c| c.api != "cancelPayment"));
    // The notification arriving late after all is the same debit: processed, no second 0200.
    let late = env.notify(&order, "S", &wallet_id).await;
    assert_eq!(late.status(), "S", "{}", late.v);
    assert_eq!(purchases(&env.sim).len(), 1);
    // One that names another wallet payment is not the same debit.
    let other = env.notify(&order, "S", "mpp-someone-else").await;
    assert_eq!(other.code(), "REPEAT_REQ_INCONSISTENT", "{}", other.v);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_the_wallet_never_paid_is_closed_after_the_inquiry_and_a_late_debit_refused() {
    let env = Env::start().await;
    let order = env.scan_expiring(&code(APPROVE), "cust-1").await;
    let id = order.v["paymentRequestId"].as_str().unwrap().to_owned();
    // The user walked away: the wallet has no such payment (ORDER_NOT_EXIST).
    env.wait_state(&id, PaymentState::Closed).await;
    assert!(env.wallet.calls().iter().any(|c| c.api == "inquiryPayment"));
    assert!(env.wallet.calls().iter().all(|c| c.api != "cancelPayment"));
    assert!(purchases(&env.sim).is_empty());
    // A debit notified after the order closed reaches no acquirer; the wallet must give it back.
    let late = env.debit_and_notify(&order, "mpp-late").await;
    assert_eq!(
        (late.status(), late.code()),
        ("F", "ORDER_IS_CLOSED"),
        "{}",
        late.v
    );
    assert!(purchases(&env.sim).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_whose_result_stays_unknown_is_cancelled_on_the_wallet_after_the_last_inquiry() {
    let env = Env::start().await;
    *env.wallet.mode.lock().unwrap() = Mode::Processing;
    let order = env.scan_expiring(&code(APPROVE), "cust-1").await;
    let id = order.v["paymentRequestId"].as_str().unwrap().to_owned();
    env.wallet.debit(&id, pay_to(&order));
    // Asked max_inquiries (3) times, always "in process": the order is cancelled on the wallet's
    // side, so the user it debited is made whole; the merchant was never paid.
    env.wait_state(&id, PaymentState::Cancelled).await;
    let cancel = env.wallet.wait_for("cancelPayment").await;
    assert_eq!(cancel.body["paymentRequestId"], id.as_str());
    let inquiries = env
        .wallet
        .calls()
        .iter()
        .filter(|c| c.api == "inquiryPayment")
        .count();
    assert_eq!(inquiries, 3);
    assert_eq!(env.wallet.balance(&id), 0);
    assert!(purchases(&env.sim).is_empty());
    // The wallet's notification after the cancel is refused (and counted): nothing is sent.
    let late = env.notify(&order, "S", "mpp-too-late").await;
    assert_eq!(late.code(), "ORDER_IS_CLOSED", "{}", late.v);
    assert!(purchases(&env.sim).is_empty());
}
