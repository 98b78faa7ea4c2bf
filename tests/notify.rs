//! Wallet notifications end to end over real sockets on 127.0.0.1: the gateway (plaintext loopback
//! server, authentication off for the test client, the acquirer simulator over mutual TLS), the
//! notice outbox in a redb journal, the deliverer, and a loopback "wallet" HTTP server that records
//! every notification (plain HTTP, or TLS under a private CA) and answers per a script (fail, drop
//! the connection, wrong acknowledgement, slow or prompt acknowledgement). Plus the outbox's state
//! machine and its same-transaction guarantee on the journal alone. Every wait is bounded; expected
//! values are worked out here, not copied from the code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/stack.rs"]
mod stack;

#[path = "common/child.rs"]
mod child;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderMap;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use qrbridge::acquirer::sim::{Behaviour, SimConfig, Simulator};
use qrbridge::gateway::Gateway;
use qrbridge::journal::*;
use qrbridge::money::{Amount, Currency};
use qrbridge::notify::{Deliverer, NotifyPolicy};
use qrbridge::scheme::Scheme;
use qrbridge::scheme::native::Native;
use qrbridge::scheme::native::auth::{
    AuthConfig, ClientKey, Credentials, Secret, verify_notification_hmac,
};
use qrbridge::server::RunningServer;
use qrbridge::tls::pki::Pki;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CLIENT: &str = "wallet-my";
/// A client configured without a notify URL.
const QUIET: &str = "wallet-quiet";
const KEY: &[u8] = b"test-key-for-wallet-my-32-bytes!";
const QUIET_KEY: &[u8] = b"test-key-for-wallet-quiet-32-byt";
const SGQR_STATIC: &str = "00020101021126370009SG.PAYNOW010120210201912345K0301127730011SG.COM.NETS01231201912345K991231235900021511111686614000303088686614028260008COM.GRAB0110A93FO3230Q51380007SG.SGQR0112180907512345020701.00015204581253037025802SG5917SOBA NOODLE HOUSE6009Singapore63048499";
const NOTIFY_PATH: &str = "/wallet/notify?v=1";

fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "qrbridge-notify-test-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Polls `check` every 10 ms until it returns `Some`, at most `limit`.
async fn eventually<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        if start.elapsed() > limit {
            panic!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---- the wallet: a loopback HTTP server that records notifications and answers per a script ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// HTTP 500.
    Fail,
    /// Close the connection without an answer.
    Drop,
    /// HTTP 200 with a body that is not an acknowledgement (resultStatus F).
    WrongAck,
    /// HTTP 200 `{"result":{"resultStatus":"S",...}}`.
    Ack,
    /// `Ack` after this many milliseconds.
    SlowAck(u64),
}

#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    /// What the probe saw when the request arrived (before it was answered).
    probe: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap().to_str().unwrap()
    }
}

type Probe = Arc<dyn Fn() -> String + Send + Sync>;

struct WalletState {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    /// When the script is used up.
    otherwise: Mutex<Reply>,
    probe: Mutex<Option<Probe>>,
    /// Requests being answered now, and the most at once.
    busy: std::sync::atomic::AtomicUsize,
    most_busy: std::sync::atomic::AtomicUsize,
}

struct Wallet {
    addr: SocketAddr,
    state: Arc<WalletState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Wallet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Wallet {
    async fn start(script: Vec<Reply>, otherwise: Reply) -> Wallet {
        Wallet::start_with(script, otherwise, None).await
    }

    /// Over TLS with a certificate for `localhost` from `pki`'s private CA.
    async fn start_tls(script: Vec<Reply>, otherwise: Reply, pki: &Pki) -> Wallet {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_slice_iter(pki.server_cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key =
            rustls_pki_types::PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Wallet::start_with(script, otherwise, Some(acceptor)).await
    }

    async fn start_with(
        script: Vec<Reply>,
        otherwise: Reply,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Wallet {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(WalletState {
            received: Mutex::new(Vec::new()),
            script: Mutex::new(script.into()),
            otherwise: Mutex::new(otherwise),
            probe: Mutex::new(None),
            busy: Default::default(),
            most_busy: Default::default(),
        });
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&shared);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let state = Arc::clone(&state);
                        async move { answer(&state, req).await }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
            }
        });
        Wallet { addr, state, task }
    }

    fn url(&self) -> String {
        format!("http://{}{NOTIFY_PATH}", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    fn set_otherwise(&self, reply: Reply) {
        *self.state.otherwise.lock().unwrap() = reply;
    }

    fn set_probe(&self, probe: Probe) {
        *self.state.probe.lock().unwrap() = Some(probe);
    }

    async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        eventually(&format!("{n} notifications received"), limit, || {
            let r = self.received();
            (r.len() >= n).then_some(r)
        })
        .await
    }
}

async fn answer(
    state: &WalletState,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    let probe = state
        .probe
        .lock()
        .unwrap()
        .clone()
        .map(|p| p())
        .unwrap_or_default();
    state.received.lock().unwrap().push(Received {
        at: Instant::now(),
        path,
        headers: parts.headers,
        body,
        probe,
    });
    let reply = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(*state.otherwise.lock().unwrap());
    let busy = state.busy.fetch_add(1, Ordering::SeqCst) + 1;
    state.most_busy.fetch_max(busy, Ordering::SeqCst);
    if let Reply::SlowAck(ms) = reply {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    state.busy.fetch_sub(1, Ordering::SeqCst);
    let ok = |body: &str| {
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap()
    };
    match reply {
        Reply::Fail => Ok(Response::builder()
            .status(500)
            .body(Full::new(Bytes::from_static(b"busy")))
            .unwrap()),
        Reply::Drop => Err(std::io::Error::other("dropped by the script")),
        Reply::WrongAck => Ok(ok(
            r#"{"result":{"resultStatus":"F","resultCode":"PROCESS_FAIL","resultMessage":"no"}}"#,
        )),
        Reply::Ack | Reply::SlowAck(_) => Ok(ok(
            r#"{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"ok"}}"#,
        )),
    }
}

// ---- the notifying scheme and the deliverer ----------------------------------------------------

fn credentials() -> Credentials {
    Credentials::new()
        .with_key(CLIENT, 1, ClientKey::HmacSha256(Secret::new(KEY.to_vec())))
        .with_key(
            QUIET,
            1,
            ClientKey::HmacSha256(Secret::new(QUIET_KEY.to_vec())),
        )
}

/// The native scheme, notifying `CLIENT` at `url` (and `QUIET` nowhere).
fn native(url: Option<String>) -> Vec<Arc<dyn Scheme>> {
    let mut urls = BTreeMap::new();
    if let Some(u) = url {
        urls.insert(CLIENT.to_owned(), u);
    }
    vec![Arc::new(
        Native::new(AuthConfig::signatures(credentials()))
            .unwrap()
            .with_notify_urls(urls),
    )]
}

fn quick_policy() -> NotifyPolicy {
    NotifyPolicy {
        first_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(2),
        ..NotifyPolicy::default()
    }
}

fn notice_state(j: &RedbJournal, id: &str) -> Option<OutboxNotice> {
    j.snapshot().unwrap().notice(id).unwrap()
}

async fn wait_notice(j: &RedbJournal, id: &str, state: NoticeState) -> OutboxNotice {
    eventually(
        &format!("notice {id} {state}"),
        Duration::from_secs(20),
        || notice_state(j, id).filter(|n| n.state == state),
    )
    .await
}

// ---- the gateway fixture (simulator + gateway + server) -----------------------------------------

struct Fixture {
    addr: SocketAddr,
    _sim: Simulator,
    /// Kept alive for the test (its links and reversal watcher).
    _gateway: Gateway,
    /// The gateway's journal, as the engine the test opened (its outbox reads are the engine's).
    journal: Arc<RedbJournal>,
    server: Option<RunningServer>,
    dir: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Fixture {
    fn journal(&self) -> Arc<RedbJournal> {
        Arc::clone(&self.journal)
    }
}

fn sim_config() -> SimConfig {
    let mut c = SimConfig::default();
    c.by_amount
        .insert("7777".to_owned(), Behaviour::NeverAnswer);
    c
}

/// The gateway with its server answering as `client` (authentication off).
async fn fixture(client: &str) -> Fixture {
    let dir = temp_dir("gw");
    let (sim, link) = stack::acquirer(sim_config()).await;
    let journal =
        Arc::new(RedbJournal::open(JournalConfig::new(dir.join("journal.redb"))).unwrap());
    let settings = stack::sg_settings(
        &[CLIENT, QUIET],
        vec![stack::route("SG.PAYNOW", 2, None, 20)],
    );
    let (gateway, server) = stack::serve_gateway(settings, journal.clone(), link, client).await;
    Fixture {
        addr: server.local_addr(),
        _sim: sim,
        _gateway: gateway,
        journal,
        server: Some(server),
        dir,
    }
}

async fn post(addr: SocketAddr, path: &str, body: Value) -> Value {
    let body = body.to_string();
    let fut = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        serde_json::from_str(body).unwrap_or(Value::Null)
    };
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .expect("answered within 30 s")
}

fn result_status(v: &Value) -> &str {
    v["result"]["resultStatus"].as_str().unwrap_or("")
}

/// Decode → quote → pay SGD `minor` / 100: the pay answer.
async fn pay(f: &Fixture, request_id: &str, minor: u64) -> Value {
    pay_at(f.addr, request_id, minor).await
}

/// The same against a gateway at `addr`.
async fn pay_at(addr: SocketAddr, request_id: &str, minor: u64) -> Value {
    let d = post(
        addr,
        "/v1/qr/decode",
        json!({"decodeRequestId":"d-1","customerId":"cust-1","codeValue":SGQR_STATIC,"payerCurrency":"MYR"}),
    )
    .await;
    let q = post(
        addr,
        "/v1/quotes",
        json!({"quoteRequestId":"q-1","decodeId":d["decodeId"],"payerCurrency":"MYR",
               "amount":{"currency":"SGD","value":minor.to_string()}}),
    )
    .await;
    post(
        addr,
        "/v1/payments",
        json!({"paymentRequestId":request_id,"quoteId":q["quoteId"],"customerId":"cust-1"}),
    )
    .await
}

/// Checks the notification's signature with the wallet-side helper and returns its body.
fn verified(r: &Received) -> Value {
    assert_eq!(r.path, NOTIFY_PATH);
    assert_eq!(r.header("client-id"), CLIENT);
    verify_notification_hmac(
        &Secret::new(KEY.to_vec()),
        &r.path,
        r.header("client-id"),
        r.header("response-time"),
        r.header("signature"),
        &r.body,
    )
    .unwrap_or_else(|e| panic!("notification signature: {e}"));
    // The same signature over another body, or as a response, does not verify.
    let mut tampered = r.body.clone();
    tampered.push(b' ');
    assert!(
        verify_notification_hmac(
            &Secret::new(KEY.to_vec()),
            &r.path,
            CLIENT,
            r.header("response-time"),
            r.header("signature"),
            &tampered,
        )
        .is_err()
    );
    assert!(
        qrbridge::scheme::native::auth::verify_response_hmac(
            &Secret::new(KEY.to_vec()),
            "POST",
            &r.path,
            CLIENT,
            r.header("response-time"),
            r.header("signature"),
            &r.body,
        )
        .is_err(),
        "a notification signature must not pass as a response signature"
    );
    r.json()
}

// ---- end to end -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_payment_reversed_later_is_notified_once_signed_and_final() {
    let f = fixture(CLIENT).await;
    let wallet = Wallet::start(vec![], Reply::Ack).await;
    let deliverer =
        Deliverer::start(f.journal(), native(Some(wallet.url())), quick_policy()).unwrap();
    // A payment answered S at once: no notice.
    let ok = pay(&f, "pay-ok", 2000).await;
    assert_eq!(result_status(&ok), "S", "{ok}");
    // A payment the acquirer never answers: U now, REVERSED later.
    let p = pay(&f, "pay-silent", 7777).await;
    let answered = Instant::now();
    assert_eq!(result_status(&p), "U", "{p}");
    assert_eq!(p["paymentStatus"], "PROCESSING");
    let pid = p["paymentId"].as_str().unwrap().to_owned();
    let got = wallet.wait_for(1, Duration::from_secs(30)).await;
    let body = verified(&got[0]);
    assert_eq!(body["noticeId"], format!("N-{pid}-REVERSED"));
    assert_eq!(body["notifyType"], "PAYMENT_RESULT");
    assert_eq!(body["payment"]["paymentId"], pid.as_str());
    assert_eq!(body["payment"]["paymentRequestId"], "pay-silent");
    assert_eq!(body["payment"]["paymentStatus"], "REVERSED");
    assert_eq!(
        body["payment"]["merchantAmount"],
        json!({"currency":"SGD","value":"7777"})
    );
    let j = f.journal();
    let sent = wait_notice(&j, &format!("N-{pid}-REVERSED"), NoticeState::Sent).await;
    assert_eq!(sent.attempts, 0, "acknowledged at the first attempt");
    assert_eq!(sent.client_id, CLIENT);
    assert_eq!(sent.scheme, "native");
    let reversed_at = j
        .snapshot()
        .unwrap()
        .payment(pid.parse().unwrap())
        .unwrap()
        .unwrap();
    let committed = reversed_at.updated_at_ms;
    let arrival_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - got[0].at.elapsed().as_millis() as u64;
    println!(
        "U answered → notification received: {} ms; REVERSED committed → received: {} ms",
        got[0].at.duration_since(answered).as_millis(),
        arrival_ms.saturating_sub(committed)
    );
    // Sent means done: nothing more arrives, and nothing about the approved payment ever did.
    let stats = deliverer.shutdown(Duration::from_secs(5)).await;
    assert_eq!(wallet.received().len(), 1);
    assert_eq!((stats.sent, stats.failed), (1, 0), "{stats:?}");
    assert!(j.snapshot().unwrap().pending_notices().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_wallet_is_retried_with_backoff_and_the_notice_is_sent_only_after_the_ack() {
    let f = fixture(CLIENT).await;
    let j = f.journal();
    let wallet = Wallet::start(
        vec![Reply::Fail, Reply::Drop, Reply::WrongAck, Reply::Ack],
        Reply::Ack,
    )
    .await;
    // At every arrival, before the wallet answers: what does the journal say?
    let probe_journal = Arc::clone(&j);
    wallet.set_probe(Arc::new(move || {
        let snap = probe_journal.snapshot().unwrap();
        snap.pending_notices()
            .unwrap()
            .iter()
            .map(|n| format!("{}={}", n.notice_id, n.state))
            .collect::<Vec<_>>()
            .join(",")
    }));
    let policy = quick_policy();
    let deliverer =
        Deliverer::start(j.clone(), native(Some(wallet.url())), policy.clone()).unwrap();
    let p = pay(&f, "pay-retried", 7777).await;
    assert_eq!(result_status(&p), "U", "{p}");
    let pid = p["paymentId"].as_str().unwrap().to_owned();
    let id = format!("N-{pid}-REVERSED");
    let got = wallet.wait_for(4, Duration::from_secs(30)).await;
    let sent = wait_notice(&j, &id, NoticeState::Sent).await;
    for (i, r) in got.iter().enumerate() {
        assert_eq!(verified(r)["noticeId"], id.as_str(), "attempt {i}");
        assert_eq!(
            r.probe,
            format!("{id}=PENDING"),
            "attempt {i}: still PENDING while the wallet had not acknowledged"
        );
    }
    assert_eq!(sent.attempts, 3, "three failed attempts before the ack");
    assert!(
        sent.last_error
            .as_deref()
            .unwrap()
            .contains("not an acknowledgement"),
        "{sent:?}"
    );
    // Backoff: the n-th retry waits at least half of 100 ms × 2^(n−1) (jitter is in the upper half).
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    for (n, gap) in gaps.iter().enumerate() {
        let floor = Duration::from_millis(50 << n);
        assert!(*gap >= floor, "retry {} after {gap:?} < {floor:?}", n + 1);
    }
    println!("retry gaps with first_delay 100 ms: {gaps:?}");
    deliverer.shutdown(Duration::from_secs(5)).await;
    assert_eq!(wallet.received().len(), 4, "nothing after the ack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_payment_is_notified_as_cancelled() {
    let f = fixture(CLIENT).await;
    let wallet = Wallet::start(vec![], Reply::Ack).await;
    let deliverer =
        Deliverer::start(f.journal(), native(Some(wallet.url())), quick_policy()).unwrap();
    let p = pay(&f, "pay-cancel", 2000).await;
    assert_eq!(result_status(&p), "S", "{p}");
    let pid = p["paymentId"].as_str().unwrap().to_owned();
    let c = post(
        f.addr,
        "/v1/payments/cancel",
        json!({"paymentRequestId":"pay-cancel"}),
    )
    .await;
    assert!(
        c["paymentStatus"] == "CANCELLED" || c["paymentStatus"] == "PROCESSING",
        "{c}"
    );
    let got = wallet.wait_for(1, Duration::from_secs(30)).await;
    let body = verified(&got[0]);
    assert_eq!(body["noticeId"], format!("N-{pid}-CANCELLED"));
    assert_eq!(body["notifyType"], "PAYMENT_RESULT");
    assert_eq!(body["payment"]["paymentStatus"], "CANCELLED");
    wait_notice(
        &f.journal(),
        &format!("N-{pid}-CANCELLED"),
        NoticeState::Sent,
    )
    .await;
    deliverer.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        wallet.received().len(),
        1,
        "the S pay itself is not notified"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_answered_at_once_is_still_notified() {
    let f = fixture(CLIENT).await;
    let wallet = Wallet::start(vec![], Reply::Ack).await;
    let deliverer =
        Deliverer::start(f.journal(), native(Some(wallet.url())), quick_policy()).unwrap();
    let p = pay(&f, "pay-refund", 10_000).await;
    assert_eq!(result_status(&p), "S", "{p}");
    let r = post(
        f.addr,
        "/v1/refunds",
        json!({"refundRequestId":"refund-1","paymentId":p["paymentId"],
               "refundAmount":{"currency":"SGD","value":"2500"},"reason":"test"}),
    )
    .await;
    assert_eq!(result_status(&r), "S", "{r}");
    let rid = r["refundId"].as_str().unwrap().to_owned();
    let got = wallet.wait_for(1, Duration::from_secs(30)).await;
    let body = verified(&got[0]);
    assert_eq!(body["noticeId"], format!("N-{rid}-SUCCESS"));
    assert_eq!(body["notifyType"], "REFUND_RESULT");
    assert_eq!(body["refund"]["refundId"], rid.as_str());
    assert_eq!(body["refund"]["refundStatus"], "SUCCESS");
    assert_eq!(
        body["refund"]["refundAmount"],
        json!({"currency":"SGD","value":"2500"})
    );
    assert!(body.get("payment").is_none(), "{body}");
    wait_notice(&f.journal(), &format!("N-{rid}-SUCCESS"), NoticeState::Sent).await;
    deliverer.shutdown(Duration::from_secs(5)).await;
    assert_eq!(wallet.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_notify_url_gets_no_attempt_and_nothing_stays_pending() {
    let f = fixture(QUIET).await;
    let wallet = Wallet::start(vec![], Reply::Ack).await;
    // The wallet's URL is configured for the other client only.
    let deliverer =
        Deliverer::start(f.journal(), native(Some(wallet.url())), quick_policy()).unwrap();
    let p = pay(&f, "pay-quiet", 7777).await;
    assert_eq!(result_status(&p), "U", "{p}");
    let pid = p["paymentId"].as_str().unwrap().to_owned();
    let n = wait_notice(
        &f.journal(),
        &format!("N-{pid}-REVERSED"),
        NoticeState::NotNeeded,
    )
    .await;
    assert_eq!((n.client_id.as_str(), n.attempts), (QUIET, 0));
    assert!(
        f.journal()
            .snapshot()
            .unwrap()
            .pending_notices()
            .unwrap()
            .is_empty()
    );
    let stats = deliverer.shutdown(Duration::from_secs(5)).await;
    assert_eq!((stats.not_needed, stats.sent, stats.failed), (1, 0, 0));
    assert!(wallet.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_drains_before_the_deliverer_stops() {
    // serve.rs order: server shutdown, then deliverer shutdown. A notice created by the last
    // request is still delivered when the deliverer is running.
    let mut f = fixture(CLIENT).await;
    let wallet = Wallet::start(vec![], Reply::Ack).await;
    let deliverer =
        Deliverer::start(f.journal(), native(Some(wallet.url())), quick_policy()).unwrap();
    let p = pay(&f, "pay-drain", 2000).await;
    let c = post(
        f.addr,
        "/v1/payments/cancel",
        json!({"paymentRequestId":"pay-drain"}),
    )
    .await;
    assert_eq!(result_status(&p), "S", "{p}");
    assert!(result_status(&c) == "S" || result_status(&c) == "U", "{c}");
    f.server
        .take()
        .unwrap()
        .shutdown(Duration::from_secs(5))
        .await;
    wallet.wait_for(1, Duration::from_secs(30)).await;
    let stats = deliverer.shutdown(Duration::from_secs(5)).await;
    assert_eq!(stats.sent, 1, "{stats:?}");
}

// ---- the deliverer on the journal alone ------------------------------------------------------

fn cur(code: &str) -> Currency {
    Currency::from_code(code).unwrap()
}

fn amt(minor: u64, code: &str) -> Amount {
    Amount::from_minor(minor, cur(code)).unwrap()
}

fn new_payment(request: &str, origin: Origin) -> NewPayment {
    NewPayment {
        merchant: qrbridge::payment::Merchant {
            name: "KOPI STALL".to_owned(),
            city: "SINGAPORE".to_owned(),
            country: "SG".to_owned(),
            mcc: "5812".to_owned(),
            merchant_id: "M0001".to_owned(),
        },
        client_id: CLIENT.to_owned(),
        request_id: request.to_owned(),
        customer: CustomerId::new("cust-secret-4711"),
        quote: QuoteSnapshot {
            quote_id: "019a8f3e-0000-7000-8000-000000000001".to_owned(),
            merchant_amount: amt(10_000, "SGD"),
            payer_amount: amt(33_337, "MYR"),
            fees: amt(0, "MYR"),
            mid_rate: "3.3004".parse::<Decimal>().unwrap(),
            rate: "3.3337".parse::<Decimal>().unwrap(),
            markup_bps: 100,
            rate_source: "test".to_owned(),
            rate_as_of_ms: 1_763_640_000_000,
        },
        routing: Routing {
            acquirer: "sim".to_owned(),
            merchant_id: "M0001".to_owned(),
            terminal_id: None,
            scheme: "SG.PAYNOW".to_owned(),
            qr_reference: None,
        },
        limits: DailyLimits::default(),
        origin,
    }
}

fn acquirer(code: &str) -> AcquirerData {
    AcquirerData {
        stan: Some("000042".to_owned()),
        rrn: Some("632510000042".to_owned()),
        response_code: Some(code.to_owned()),
        ..AcquirerData::default()
    }
}

/// QUOTED → SENT → UNKNOWN → REVERSING → REVERSED, returning the payment after each step.
async fn reversed(j: &RedbJournal, request: &str, origin: Origin) -> Vec<Payment> {
    let mut out = vec![j.record_intent(new_payment(request, origin)).await.unwrap()];
    let id = out[0].id;
    for e in [
        PaymentEvent::Sent {
            acquirer: AcquirerData::default(),
        },
        PaymentEvent::Unknown {
            cause: "timeout".to_owned(),
            acquirer: AcquirerData::default(),
        },
        PaymentEvent::Reversing {
            reversal_id: Some(1),
        },
        PaymentEvent::Reversed {
            response_code: "00".to_owned(),
        },
    ] {
        out.push(j.update_payment(id, e).await.unwrap());
    }
    out
}

fn open(dir: &std::path::Path) -> Arc<RedbJournal> {
    open_with(dir, qrbridge::gateway::notices::rules())
}

/// A journal in `dir` with `rules` deciding which state changes create notices.
fn open_with(dir: &std::path::Path, rules: Arc<dyn NoticeRules>) -> Arc<RedbJournal> {
    let j = RedbJournal::open(JournalConfig::new(dir.join("journal.redb"))).unwrap();
    j.set_notice_rules(rules);
    Arc::new(j)
}

fn close(j: Arc<RedbJournal>) {
    match Arc::try_unwrap(j) {
        Ok(j) => j.close(),
        Err(_) => panic!("the journal is still shared"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_notice_survives_a_restart_and_is_delivered_then() {
    let dir = temp_dir("restart");
    let wallet = Wallet::start(vec![], Reply::Fail).await;
    let j = open(&dir);
    let p = reversed(&j, "pay-restart", Origin::default()).await;
    let id = format!("N-{}-REVERSED", p[0].id);
    let deliverer =
        Deliverer::start(j.clone(), native(Some(wallet.url())), quick_policy()).unwrap();
    wallet.wait_for(2, Duration::from_secs(20)).await;
    deliverer.shutdown(Duration::from_secs(5)).await;
    let before = notice_state(&j, &id).unwrap();
    assert_eq!(before.state, NoticeState::Pending);
    assert!(before.attempts >= 2, "{before:?}");
    close(j);

    // The gateway is down; the wallet recovers meanwhile.
    wallet.set_otherwise(Reply::Ack);
    let j = open(&dir);
    let pending = j.snapshot().unwrap().pending_notices().unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|n| n.notice_id.as_str())
            .collect::<Vec<_>>(),
        vec![id.as_str()],
        "the notice is in the reopened journal"
    );
    let seen = wallet.received().len();
    let deliverer =
        Deliverer::start(j.clone(), native(Some(wallet.url())), quick_policy()).unwrap();
    let after = wait_notice(&j, &id, NoticeState::Sent).await;
    assert_eq!(
        after.attempts, before.attempts,
        "no failure after the restart"
    );
    let got = wallet.received();
    assert_eq!(
        got.len(),
        seen + 1,
        "delivered once more, then acknowledged"
    );
    assert_eq!(
        verified(got.last().unwrap())["noticeId"],
        id.as_str(),
        "same notice id across the restart"
    );
    deliverer.shutdown(Duration::from_secs(5)).await;
    close(j);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_a_non_loopback_address_is_refused_and_parked_at_once() {
    let dir = temp_dir("refused");
    let j = open(&dir);
    let p = reversed(&j, "pay-refused", Origin::default()).await;
    let id = format!("N-{}-REVERSED", p[0].id);
    // 192.0.2.0/24 is TEST-NET-1: nothing may be sent there, and nothing is.
    let deliverer = Deliverer::start(
        j.clone(),
        native(Some("http://192.0.2.7:8080/notify".to_owned())),
        quick_policy(),
    )
    .unwrap();
    let parked = wait_notice(&j, &id, NoticeState::Parked).await;
    let error = parked.last_error.clone().unwrap();
    assert!(
        error.contains("loopback") && error.contains("https://"),
        "{error}"
    );
    assert_eq!(parked.attempts, 1);
    assert_eq!(
        j.snapshot()
            .unwrap()
            .parked_notices()
            .unwrap()
            .iter()
            .map(|n| n.notice_id.clone())
            .collect::<Vec<_>>(),
        vec![id]
    );
    deliverer.shutdown(Duration::from_secs(5)).await;
    close(j);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_still_failing_at_its_maximum_age_is_parked() {
    let dir = temp_dir("park");
    let wallet = Wallet::start(vec![], Reply::Fail).await;
    let j = open(&dir);
    let p = reversed(&j, "pay-park", Origin::default()).await;
    let id = format!("N-{}-REVERSED", p[0].id);
    let policy = NotifyPolicy {
        first_delay: Duration::from_millis(40),
        max_age: Duration::from_millis(400),
        ..quick_policy()
    };
    let started = Instant::now();
    let deliverer = Deliverer::start(j.clone(), native(Some(wallet.url())), policy).unwrap();
    let parked = wait_notice(&j, &id, NoticeState::Parked).await;
    let took = started.elapsed();
    let n = wallet.received().len();
    assert!(n >= 2, "retried before parking: {n}");
    assert_eq!(parked.attempts as usize, n, "every attempt counted");
    assert!(
        parked.last_error.as_deref().unwrap().contains("500"),
        "{parked:?}"
    );
    // Parked at the maximum age, not before it.
    assert!(
        parked.updated_at_ms >= parked.created_at_ms + 400,
        "{parked:?}"
    );
    println!("parked after {n} attempts, {} ms", took.as_millis());
    // Parked means no more attempts.
    let stats = deliverer.shutdown(Duration::from_secs(5)).await;
    assert_eq!(stats.parked, 1);
    assert_eq!(wallet.received().len(), n);
    assert!(j.snapshot().unwrap().pending_notices().unwrap().is_empty());
    close(j);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- the outbox in the journal ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_is_committed_with_its_state_change_and_never_without_it() {
    let dir = temp_dir("outbox");
    let j = open(&dir);
    let origin = Origin::new("aplus", Some("MSG-0001".to_owned()));
    let steps = reversed(&j, "pay-outbox", origin.clone()).await;
    let pid = steps[0].id;
    let id = format!("N-{pid}-REVERSED");
    let snap = j.snapshot().unwrap();
    let n = snap.notice(&id).unwrap().unwrap();
    assert_eq!(
        snap.payment(pid).unwrap().unwrap().state,
        PaymentState::Reversed
    );
    // Exactly one notice: none for SENT, UNKNOWN or REVERSING.
    assert_eq!(snap.pending_notices().unwrap().len(), 1);
    assert_eq!(
        (
            n.scheme.as_str(),
            n.scheme_ref.as_deref(),
            n.client_id.as_str()
        ),
        ("aplus", Some("MSG-0001"), CLIENT)
    );
    // An aplus wallet debited its user before the 0200: the reversal becomes its cancelPayment.
    assert_eq!(
        (n.kind, n.state, n.attempts),
        (NoticeKind::PaymentCancel, NoticeState::Pending, 0)
    );
    assert_eq!(n.subject, pid.to_string());
    let event: Value = serde_json::from_str(&n.event).unwrap();
    assert_eq!(event["paymentStatus"], "REVERSED");
    assert_eq!(event["paymentId"], pid.to_string());
    assert_eq!(
        event["merchantAmount"],
        json!({"currency":"SGD","value":"10000"})
    );
    // The payment keeps its origin.
    assert_eq!(snap.payment(pid).unwrap().unwrap().origin, origin);
    drop(snap);
    // A refused state change creates nothing.
    let again = j
        .update_payment(
            pid,
            PaymentEvent::Reversed {
                response_code: "00".to_owned(),
            },
        )
        .await;
    assert!(again.is_err());
    assert_eq!(j.snapshot().unwrap().pending_notices().unwrap().len(), 1);
    // An approved payment (its pay answer was final) creates none either.
    let ok = j
        .record_intent(new_payment("pay-approved", Origin::default()))
        .await
        .unwrap();
    j.update_payment(
        ok.id,
        PaymentEvent::Sent {
            acquirer: AcquirerData::default(),
        },
    )
    .await
    .unwrap();
    j.update_payment(
        ok.id,
        PaymentEvent::Approved {
            acquirer: acquirer("00"),
        },
    )
    .await
    .unwrap();
    assert_eq!(j.snapshot().unwrap().pending_notices().unwrap().len(), 1);
    // Durable: after a restart both the state and its notice are there.
    close(j);
    let j = open(&dir);
    let snap = j.snapshot().unwrap();
    assert_eq!(
        snap.payment(pid).unwrap().unwrap().state,
        PaymentState::Reversed
    );
    assert_eq!(snap.notice(&id).unwrap().unwrap(), n);
    drop(snap);
    close(j);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_rules_installed_a_state_change_creates_no_notice() {
    let dir = temp_dir("norules");
    let j = Arc::new(RedbJournal::open(JournalConfig::new(dir.join("journal.redb"))).unwrap());
    let steps = reversed(&j, "pay-norules", Origin::default()).await;
    assert_eq!(steps[4].state, PaymentState::Reversed);
    assert!(j.snapshot().unwrap().pending_notices().unwrap().is_empty());
    close(j);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_notify_on_every_final_state() {
    let dir = temp_dir("refunds");
    let j = open(&dir);
    let p = j
        .record_intent(new_payment("pay-refunds", Origin::default()))
        .await
        .unwrap();
    j.update_payment(
        p.id,
        PaymentEvent::Sent {
            acquirer: AcquirerData::default(),
        },
    )
    .await
    .unwrap();
    j.update_payment(
        p.id,
        PaymentEvent::Approved {
            acquirer: acquirer("00"),
        },
    )
    .await
    .unwrap();
    let refund = |req: &str, minor| NewRefund {
        client_id: CLIENT.to_owned(),
        request_id: req.to_owned(),
        payment_id: p.id,
        amount: amt(minor, "SGD"),
        reason: "test".to_owned(),
        origin: Origin::new("iso20022", Some("MSG-R".to_owned())),
        trace: Default::default(),
    };
    let ok = j.reserve_refund(refund("r-ok", 3_000)).await.unwrap();
    let no = j.reserve_refund(refund("r-no", 1_000)).await.unwrap();
    assert!(
        j.snapshot().unwrap().pending_notices().unwrap().is_empty(),
        "PENDING refunds are not final"
    );
    j.update_refund(
        ok.id,
        RefundEvent::Approved {
            acquirer: acquirer("00"),
        },
    )
    .await
    .unwrap();
    j.update_refund(
        no.id,
        RefundEvent::Unknown {
            cause: "timeout".to_owned(),
            acquirer: AcquirerData::default(),
        },
    )
    .await
    .unwrap();
    j.update_refund(
        no.id,
        RefundEvent::Declined {
            acquirer: acquirer("51"),
        },
    )
    .await
    .unwrap();
    let snap = j.snapshot().unwrap();
    let mut ids: Vec<String> = snap
        .pending_notices()
        .unwrap()
        .into_iter()
        .map(|n| n.notice_id)
        .collect();
    ids.sort();
    let mut want = vec![
        format!("N-{}-SUCCESS", ok.id),
        format!("N-{}-FAILED", no.id),
    ];
    want.sort();
    assert_eq!(ids, want, "one notice per final state, none for UNKNOWN");
    let failed = snap
        .notice(&format!("N-{}-FAILED", no.id))
        .unwrap()
        .unwrap();
    assert_eq!(failed.kind, NoticeKind::Refund);
    assert_eq!(
        (failed.scheme.as_str(), failed.scheme_ref.as_deref()),
        ("iso20022", Some("MSG-R"))
    );
    let event: Value = serde_json::from_str(&failed.event).unwrap();
    assert_eq!(event["refundStatus"], "FAIL");
    assert_eq!(
        event["refundAmount"],
        json!({"currency":"SGD","value":"1000"})
    );
    drop(snap);
    close(j);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_state_machine_schedules_sends_and_parks() {
    let dir = temp_dir("states");
    let j = open(&dir);
    let a = reversed(&j, "pay-a", Origin::default()).await[0].id;
    let b = reversed(&j, "pay-b", Origin::default()).await[0].id;
    let c = reversed(&j, "pay-c", Origin::default()).await[0].id;
    let [a, b, c] = [a, b, c].map(|p| format!("N-{p}-REVERSED"));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert_eq!(j.snapshot().unwrap().due_notices(now, 10).unwrap().len(), 3);
    // a fails and is due in an hour: no longer due now, and it is the next due time.
    let later = now + 3_600_000;
    let failed = j
        .notice_attempt(
            &a,
            NoticeOutcome::Failed {
                error: "HTTP 503".to_owned(),
                retry: Retry::At(later),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (failed.state, failed.attempts, failed.next_attempt_at_ms),
        (NoticeState::Pending, 1, later)
    );
    let snap = j.snapshot().unwrap();
    let due: Vec<String> = snap
        .due_notices(now, 10)
        .unwrap()
        .into_iter()
        .map(|n| n.notice_id)
        .collect();
    assert!(
        !due.contains(&a) && due.contains(&b) && due.contains(&c),
        "{due:?}"
    );
    assert_eq!(snap.next_notice_due_after(now).unwrap(), Some(later));
    assert_eq!(snap.due_notices(later, 10).unwrap().len(), 3);
    assert_eq!(
        snap.due_notices(now, 1).unwrap().len(),
        1,
        "the limit holds"
    );
    drop(snap);
    // b is acknowledged; c parked; neither is due any more, nor takes another attempt.
    assert_eq!(
        j.notice_attempt(&b, NoticeOutcome::Sent)
            .await
            .unwrap()
            .state,
        NoticeState::Sent
    );
    let parked = j
        .notice_attempt(
            &c,
            NoticeOutcome::Failed {
                error: "gave up".to_owned(),
                retry: Retry::Park,
            },
        )
        .await
        .unwrap();
    assert_eq!((parked.state, parked.attempts), (NoticeState::Parked, 1));
    for id in [&b, &c] {
        let e = j.notice_attempt(id, NoticeOutcome::Sent).await.unwrap_err();
        assert!(e.to_string().contains(id.as_str()), "{e}");
    }
    let e = j
        .notice_attempt("N-nope", NoticeOutcome::Sent)
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let snap = j.snapshot().unwrap();
    let pending: Vec<String> = snap
        .pending_notices()
        .unwrap()
        .into_iter()
        .map(|n| n.notice_id)
        .collect();
    assert_eq!(pending, vec![a.clone()]);
    assert_eq!(
        snap.parked_notices()
            .unwrap()
            .into_iter()
            .map(|n| n.notice_id)
            .collect::<Vec<_>>(),
        vec![c.clone()]
    );
    drop(snap);
    // An operator re-queues the parked one: due now, its history kept; only PARKED ones qualify.
    let back = j.requeue_notice(&c).await.unwrap();
    assert_eq!(
        (back.state, back.attempts, back.last_error.as_deref()),
        (NoticeState::Pending, 1, Some("gave up"))
    );
    let snap = j.snapshot().unwrap();
    assert!(snap.parked_notices().unwrap().is_empty());
    let due_now = snap.due_notices(back.next_attempt_at_ms, 10).unwrap();
    assert_eq!(
        due_now.into_iter().map(|n| n.notice_id).collect::<Vec<_>>(),
        vec![c.clone()]
    );
    drop(snap);
    for id in [&b, &c] {
        assert!(j.requeue_notice(id).await.is_err(), "{id} is not parked");
    }
    j.notice_attempt(&c, NoticeOutcome::Sent).await.unwrap();
    // NOT_NEEDED is final as well.
    assert_eq!(
        j.notice_attempt(&a, NoticeOutcome::NotNeeded)
            .await
            .unwrap()
            .state,
        NoticeState::NotNeeded
    );
    assert!(j.snapshot().unwrap().pending_notices().unwrap().is_empty());
    close(j);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_a_wallet_with_a_private_ca_is_delivered_only_when_that_ca_is_configured() {
    let dir = temp_dir("https");
    let pki = Pki::generate(&["localhost"], "unused-client").unwrap();
    let wallet = Wallet::start_tls(vec![], Reply::Ack, &pki).await;
    let url = format!("https://localhost:{}{NOTIFY_PATH}", wallet.addr.port());
    let j = open(&dir);
    let p = reversed(&j, "pay-https", Origin::default()).await;
    let id = format!("N-{}-REVERSED", p[0].id);
    // The public roots do not know the wallet's CA: the handshake fails and nothing is delivered.
    let deliverer = Deliverer::start(j.clone(), native(Some(url.clone())), quick_policy()).unwrap();
    let failed = eventually("a failed TLS attempt", Duration::from_secs(20), || {
        notice_state(&j, &id).filter(|n| n.attempts >= 1)
    })
    .await;
    deliverer.shutdown(Duration::from_secs(5)).await;
    assert_eq!(failed.state, NoticeState::Pending);
    let error = failed.last_error.unwrap();
    assert!(error.contains("TLS handshake"), "{error}");
    assert!(wallet.received().is_empty());
    // With the wallet's CA as an extra trust anchor it goes through.
    let ca = dir.join("wallet-ca.pem");
    std::fs::write(&ca, &pki.ca_cert).unwrap();
    let policy = NotifyPolicy {
        extra_ca_pem: Some(ca),
        ..quick_policy()
    };
    let deliverer = Deliverer::start(j.clone(), native(Some(url)), policy).unwrap();
    let sent = wait_notice(&j, &id, NoticeState::Sent).await;
    assert!(sent.attempts >= 1);
    let got = wallet.received();
    assert_eq!(got.len(), 1);
    assert_eq!(verified(&got[0])["noticeId"], id.as_str());
    deliverer.shutdown(Duration::from_secs(5)).await;
    close(j);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_extra_ca_file_stops_the_deliverer_from_starting() {
    let dir = temp_dir("badca");
    let j = open(&dir);
    let missing = dir.join("missing.pem");
    let e = Deliverer::start(
        j.clone(),
        native(None),
        NotifyPolicy {
            extra_ca_pem: Some(missing.clone()),
            ..quick_policy()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("missing.pem"), "{e}");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "no certificates here\n").unwrap();
    let e = Deliverer::start(
        j.clone(),
        native(None),
        NotifyPolicy {
            extra_ca_pem: Some(empty),
            ..quick_policy()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no CERTIFICATE"), "{e}");
    close(j);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_in_flight_never_exceed_the_concurrency_bound() {
    let dir = temp_dir("concurrency");
    let wallet = Wallet::start(vec![], Reply::SlowAck(300)).await;
    let j = open(&dir);
    let mut ids = Vec::new();
    for i in 0..12 {
        let p = reversed(&j, &format!("pay-many-{i}"), Origin::default()).await;
        ids.push(format!("N-{}-REVERSED", p[0].id));
    }
    let policy = NotifyPolicy {
        concurrency: 3,
        ..quick_policy()
    };
    let started = Instant::now();
    let deliverer = Deliverer::start(j.clone(), native(Some(wallet.url())), policy).unwrap();
    for id in &ids {
        wait_notice(&j, id, NoticeState::Sent).await;
    }
    let took = started.elapsed();
    let stats = deliverer.shutdown(Duration::from_secs(5)).await;
    assert_eq!((stats.sent, stats.failed), (12, 0));
    assert_eq!(wallet.received().len(), 12);
    let most = wallet.state.most_busy.load(Ordering::SeqCst);
    assert_eq!(most, 3, "at most 3 at once, and the bound is used");
    // 12 notices, 3 at a time, 300 ms each: at least 4 rounds.
    assert!(took >= Duration::from_millis(1200), "{took:?}");
    println!(
        "12 notices, concurrency 3, 300 ms per answer: all sent in {} ms",
        took.as_millis()
    );
    close(j);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- the outbound seam: calls other than result notifications ----------------------------------

/// A wallet scheme that makes a payment-cancel call (as Alipay+'s `cancelPayment` does): its body
/// names the call, the notice and the payment; a `{"refused":"..."}` answer is a definite refusal.
#[derive(Debug)]
struct Cancelling {
    url: String,
    calls: &'static [qrbridge::payment::WalletCall],
}

impl Scheme for Cancelling {
    fn name(&self) -> &'static str {
        "native"
    }
    fn prefix(&self) -> &'static str {
        "/test/"
    }
    fn is_demo(&self) -> bool {
        false
    }
    fn serve<'a>(
        &'a self,
        _req: qrbridge::scheme::Inbound<'a>,
        _dispatch: qrbridge::scheme::Dispatch,
    ) -> qrbridge::scheme::BoxFuture<'a, qrbridge::scheme::Outbound> {
        Box::pin(async { unreachable!("no inbound route in this test") })
    }
    fn refuse(
        &self,
        _req: &qrbridge::scheme::Inbound<'_>,
        _error: &qrbridge::payment::ApiError,
    ) -> qrbridge::scheme::Outbound {
        unreachable!("no inbound route in this test")
    }
    fn calls(&self) -> &'static [qrbridge::payment::WalletCall] {
        self.calls
    }
    fn notification(
        &self,
        notice: &qrbridge::payment::Notice,
    ) -> Result<Option<qrbridge::scheme::NoticeMessage>, qrbridge::payment::ApiError> {
        let payment_id = match &notice.event {
            qrbridge::payment::NoticeEvent::Payment(p) => p.payment_id.to_string(),
            qrbridge::payment::NoticeEvent::Refund(r) => r.payment_id.to_string(),
        };
        let body = json!({"call": notice.call.as_str(), "noticeId": notice.notice_id, "paymentId": payment_id});
        Ok(Some(qrbridge::scheme::NoticeMessage {
            url: self.url.clone(),
            content_type: "application/json",
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }))
    }
    fn acknowledged(&self, status: hyper::StatusCode, _headers: &HeaderMap, body: &[u8]) -> bool {
        status.is_success() && body.starts_with(br#"{"result":{"resultStatus":"S""#)
    }
    fn refused(&self, status: hyper::StatusCode, _h: &HeaderMap, _body: &[u8]) -> Option<String> {
        // The script's WrongAck (200, resultStatus F) stands for the wallet's definite "no".
        status
            .is_success()
            .then(|| "the wallet answered F: it will not cancel".to_owned())
    }
}

/// Rules that ask the wallet to cancel a payment that FAILED (the domestic side refused after the
/// wallet debited its user): in the same transaction as the FAILED state.
struct CancelOnFailure;

impl NoticeRules for CancelOnFailure {
    fn payment(&self, before: &Payment, after: &Payment) -> Option<NoticeDraft> {
        (before.state != after.state && after.state == PaymentState::Failed).then(|| NoticeDraft {
            notice_id: format!("C-{}", after.id),
            kind: NoticeKind::PaymentCancel,
            event: json!({
                "paymentId": after.id.to_string(),
                "paymentRequestId": after.request_id,
                "paymentStatus": "FAIL",
                "merchantAmount": {"currency": "SGD", "value": "1250"},
                "payerAmount": {"currency": "MYR", "value": "4200"},
            })
            .to_string(),
        })
    }
    fn refund(&self, _before: &Refund, _after: &Refund) -> Option<NoticeDraft> {
        None
    }
}

async fn declined(j: &RedbJournal, request: &str) -> Payment {
    let p = j
        .record_intent(new_payment(request, Origin::default()))
        .await
        .unwrap();
    j.update_payment(
        p.id,
        PaymentEvent::Sent {
            acquirer: AcquirerData::default(),
        },
    )
    .await
    .unwrap();
    j.update_payment(
        p.id,
        PaymentEvent::Declined {
            acquirer: acquirer("05"),
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_cancel_call_goes_out_durably_and_is_sent_once_acknowledged() {
    use qrbridge::payment::WalletCall;
    let dir = temp_dir("cancel-call");
    let wallet = Wallet::start(vec![Reply::Fail], Reply::Ack).await;
    let j = open_with(&dir, Arc::new(CancelOnFailure));
    let p = declined(&j, "pay-cancel-call").await;
    let id = format!("C-{}", p.id);
    let scheme: Arc<dyn Scheme> = Arc::new(Cancelling {
        url: wallet.url(),
        calls: &[WalletCall::PaymentResult, WalletCall::PaymentCancel],
    });
    let deliverer = Deliverer::start(j.clone(), vec![scheme], quick_policy()).unwrap();
    let sent = wait_notice(&j, &id, NoticeState::Sent).await;
    assert_eq!(
        sent.attempts, 1,
        "one failure (HTTP 500) before the acknowledgement"
    );
    let got = wallet.received();
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_eq!(
            r.json(),
            json!({"call":"PAYMENT_CANCEL","noticeId": id,"paymentId": p.id.to_string()})
        );
    }
    deliverer.shutdown(Duration::from_secs(5)).await;
    close(j);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_scheme_cannot_make_or_the_wallet_refuses_is_parked_with_the_reason() {
    use qrbridge::payment::WalletCall;
    // A scheme that declares no cancel call: parked at once, nothing sent.
    let dir = temp_dir("cancel-unsupported");
    let wallet = Wallet::start(vec![], Reply::Ack).await;
    let j = open_with(&dir, Arc::new(CancelOnFailure));
    let p = declined(&j, "pay-unsupported").await;
    let scheme: Arc<dyn Scheme> = Arc::new(Cancelling {
        url: wallet.url(),
        calls: &[WalletCall::PaymentResult],
    });
    let deliverer = Deliverer::start(j.clone(), vec![scheme], quick_policy()).unwrap();
    let parked = wait_notice(&j, &format!("C-{}", p.id), NoticeState::Parked).await;
    let error = parked.last_error.unwrap();
    assert!(error.contains("PAYMENT_CANCEL"), "{error}");
    assert!(wallet.received().is_empty());
    deliverer.shutdown(Duration::from_secs(5)).await;
    close(j);

    // A wallet that answers a definite no: parked after that one attempt, with its reason.
    let dir2 = temp_dir("cancel-refused");
    let wallet = Wallet::start(vec![], Reply::WrongAck).await;
    let j = open_with(&dir2, Arc::new(CancelOnFailure));
    let p = declined(&j, "pay-refused-call").await;
    let scheme: Arc<dyn Scheme> = Arc::new(Cancelling {
        url: wallet.url(),
        calls: &[WalletCall::PaymentCancel],
    });
    let deliverer = Deliverer::start(j.clone(), vec![scheme], quick_policy()).unwrap();
    let parked = wait_notice(&j, &format!("C-{}", p.id), NoticeState::Parked).await;
    assert_eq!(parked.attempts, 1);
    assert!(
        parked.last_error.unwrap().contains("will not cancel"),
        "the wallet's reason is kept"
    );
    assert_eq!(wallet.received().len(), 1);
    deliverer.shutdown(Duration::from_secs(5)).await;
    close(j);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}

// ---- refunds that start at the merchant: RefundCredit ------------------------------------------

fn merchant_refund(pid: &str, reference: &str, minor: u64) -> qrbridge::gateway::MerchantRefund {
    qrbridge::gateway::MerchantRefund {
        acquirer: "sg".to_owned(),
        original: qrbridge::gateway::Original::Payment(pid.parse().unwrap()),
        merchant_id: None,
        reference: reference.to_owned(),
        amount: amt(minor, "SGD"),
        reason: "returned goods".to_owned(),
        trace: AcquirerData::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_refund_credits_the_native_wallet_retried_until_acknowledged_and_once() {
    let f = fixture(CLIENT).await;
    // 500, dropped connection, then the acknowledgement.
    let wallet = Wallet::start(vec![Reply::Fail, Reply::Drop], Reply::Ack).await;
    let deliverer =
        Deliverer::start(f.journal(), native(Some(wallet.url())), quick_policy()).unwrap();
    let p = pay(&f, "pay-m", 2000).await;
    assert_eq!(result_status(&p), "S", "{p}");
    let pid = p["paymentId"].as_str().unwrap().to_owned();
    let payer = p["payerAmount"]["value"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    // The merchant refunds 5.00 of 20.00 SGD: a quarter of the payer amount, rounded half up.
    let recorded = f
        ._gateway
        .merchant_refund(merchant_refund(&pid, "RRN000000001", 500))
        .await
        .unwrap();
    assert!(!recorded.repeat);
    let rid = recorded.refund.id.to_string();
    let id = format!("N-{rid}-CREDIT");
    let sent = wait_notice(&f.journal(), &id, NoticeState::Sent).await;
    assert_eq!(sent.attempts, 2, "a 500 and a dropped connection first");
    let got = wallet.received();
    assert_eq!(got.len(), 3, "three attempts, one notice id");
    for r in &got {
        let body = verified(r);
        assert_eq!(body["noticeId"], id.as_str());
        assert_eq!(body["notifyType"], "REFUND_CREDIT");
        assert_eq!(body["refund"]["paymentId"], pid.as_str());
        assert_eq!(body["refund"]["refundId"], rid.as_str());
        assert_eq!(body["refund"]["refundStatus"], "SUCCESS");
        assert_eq!(
            body["refund"]["refundAmount"],
            json!({"currency":"SGD","value":"500"})
        );
        assert_eq!(
            body["refund"]["payerRefundAmount"]["value"],
            (payer / 4 + u64::from(payer % 4 >= 2)).to_string()
        );
    }
    // The acquirer repeats it: the same refund, no new notice, nothing more to the wallet.
    let again = f
        ._gateway
        .merchant_refund(merchant_refund(&pid, "RRN000000001", 500))
        .await
        .unwrap();
    assert!(again.repeat);
    assert_eq!(again.refund.id, recorded.refund.id);
    // The wallet's inquiry sees the payment partially refunded.
    let inq = post(f.addr, "/v1/payments/inquiry", json!({"paymentId": pid})).await;
    assert_eq!(result_status(&inq), "S", "{inq}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = deliverer.shutdown(Duration::from_secs(5)).await;
    assert_eq!(wallet.received().len(), 3);
    assert_eq!(
        (stats.sent, stats.failed, stats.parked),
        (1, 2, 0),
        "{stats:?}"
    );
    let payment = f
        .journal()
        .snapshot()
        .unwrap()
        .payment(pid.parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(payment.state, PaymentState::PartiallyRefunded);
    assert_eq!(payment.refunded, amt(500, "SGD"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_credit_for_a_client_without_an_endpoint_is_parked_with_the_reason() {
    let f = fixture(QUIET).await;
    let wallet = Wallet::start(vec![], Reply::Ack).await;
    let deliverer =
        Deliverer::start(f.journal(), native(Some(wallet.url())), quick_policy()).unwrap();
    let p = pay(&f, "pay-quiet-m", 2000).await;
    assert_eq!(result_status(&p), "S", "{p}");
    let pid = p["paymentId"].as_str().unwrap().to_owned();
    let recorded = f
        ._gateway
        .merchant_refund(merchant_refund(&pid, "RRN000000002", 2000))
        .await
        .unwrap();
    let id = format!("N-{}-CREDIT", recorded.refund.id);
    // Not NOT_NEEDED: the payer is owed money, so a person must see it.
    let n = wait_notice(&f.journal(), &id, NoticeState::Parked).await;
    let reason = n.last_error.unwrap_or_default();
    assert!(
        reason.contains("no endpoint for refund credits"),
        "{reason}"
    );
    assert_eq!(
        f.journal()
            .snapshot()
            .unwrap()
            .parked_notices()
            .unwrap()
            .len(),
        1
    );
    let stats = deliverer.shutdown(Duration::from_secs(5)).await;
    assert_eq!((stats.parked, stats.not_needed), (1, 0), "{stats:?}");
    assert!(wallet.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acquirer_refunds_over_the_link_and_the_wallet_is_credited_exactly_once() {
    use qrbridge::acquirer::sim::{RefundOrder, RefundOutcome, Target};
    let f = fixture(CLIENT).await;
    let wallet = Wallet::start(vec![], Reply::Ack).await;
    let deliverer =
        Deliverer::start(f.journal(), native(Some(wallet.url())), quick_policy()).unwrap();
    let p = pay(&f, "pay-adv", 2000).await;
    assert_eq!(result_status(&p), "S", "{p}");
    let pid = p["paymentId"].as_str().unwrap().to_owned();
    let rrn = p["acquirer"]["rrn"].as_str().unwrap().to_owned();
    let order = |target: Target, amount: u64, reference: Option<&str>| RefundOrder {
        target,
        amount,
        reference: reference.map(str::to_owned),
    };
    // 12.00 of 20.00: accepted.
    let first = f
        ._sim
        .refund(order(Target::Rrn(rrn.clone()), 1200, None))
        .await;
    assert_eq!(first.response_code.as_deref(), Some("00"), "{first:?}");
    assert_eq!(
        (first.outcome, first.transmissions),
        (RefundOutcome::Accepted, 1)
    );
    // The same advice again (same DE37): answered 00 again, credited once.
    let dup = f
        ._sim
        .refund(order(Target::Rrn(rrn.clone()), 1200, Some(&first.rrn)))
        .await;
    assert_eq!(dup.response_code.as_deref(), Some("00"), "{dup:?}");
    // 8.01 more is one cent too many: 13, nothing changes.
    let over = f
        ._sim
        .refund(order(Target::Rrn(rrn.clone()), 801, None))
        .await;
    assert_eq!(over.response_code.as_deref(), Some("13"), "{over:?}");
    // A payment that does not exist: 25.
    let unknown = f._sim.refund(order(Target::Unknown, 100, None)).await;
    assert_eq!(unknown.response_code.as_deref(), Some("25"), "{unknown:?}");
    // A reused DE37 for another amount: 94.
    let reused = f
        ._sim
        .refund(order(Target::Rrn(rrn.clone()), 100, Some(&first.rrn)))
        .await;
    assert_eq!(reused.response_code.as_deref(), Some("94"), "{reused:?}");
    // A payment the acquirer never answered, reversed: 12.
    let silent = pay(&f, "pay-adv-silent", 7777).await;
    assert_eq!(result_status(&silent), "U", "{silent}");
    let spid = silent["paymentId"].as_str().unwrap().to_owned();
    let j = f.journal();
    let reversed = eventually("reversed", Duration::from_secs(30), || {
        j.snapshot()
            .unwrap()
            .payment(spid.parse().unwrap())
            .unwrap()
            .filter(|p| p.state == PaymentState::Reversed)
    })
    .await;
    let srrn = reversed.acquirer.rrn.clone().unwrap();
    let on_reversed = f._sim.refund(order(Target::Rrn(srrn), 100, None)).await;
    assert_eq!(
        on_reversed.response_code.as_deref(),
        Some("12"),
        "{on_reversed:?}"
    );

    // The wallet gets exactly one REFUND_CREDIT (and the reversal's PAYMENT_RESULT).
    let got = wallet.wait_for(2, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let credits: Vec<Value> = wallet
        .received()
        .iter()
        .map(verified)
        .filter(|b| b["notifyType"] == "REFUND_CREDIT")
        .collect();
    assert_eq!(credits.len(), 1, "{got:?}");
    assert_eq!(credits[0]["refund"]["paymentId"], pid.as_str());
    assert_eq!(credits[0]["refund"]["refundRequestId"], first.rrn.as_str());
    assert_eq!(
        credits[0]["refund"]["refundAmount"],
        json!({"currency":"SGD","value":"1200"})
    );
    let payment = j
        .snapshot()
        .unwrap()
        .payment(pid.parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(payment.refunded, amt(1200, "SGD"));
    assert_eq!(payment.state, PaymentState::PartiallyRefunded);
    // The simulator's ledger agrees.
    let ledger = f._sim.ledger();
    assert_eq!(ledger.by_rrn(&rrn).unwrap().refunded, 1200);
    assert_eq!(ledger.refunds.len(), 6);
    deliverer.shutdown(Duration::from_secs(5)).await;
}

/// The real binaries: `acquirer-sim` refunds the payment (a 0220 at `[refunds]` rate 100 %), the
/// gateway answers 0230 00, the wallet refuses the credit, the gateway is SIGKILLed between the
/// answer and a delivery, and after the restart the wallet is credited, one refund, one notice id.
#[test]
fn a_refund_advice_answered_before_a_sigkill_is_still_credited_after_the_restart_and_only_once() {
    use child::Child;
    let dir = temp_dir("advice-crash");
    std::fs::write(
        dir.join("sim.toml"),
        "[refunds]\nrate_percent = 100\nafter_ms = 300\namount_percent = 50\n",
    )
    .unwrap();
    let pki = dir.join("pki");
    let ledger_path = dir.join("ledger.json");
    let mut sim = Child::spawn(&[
        "acquirer-sim",
        "--listen",
        "127.0.0.1:0",
        "--pki-dir",
        pki.to_str().unwrap(),
        "--config",
        dir.join("sim.toml").to_str().unwrap(),
        "--ledger",
        ledger_path.to_str().unwrap(),
    ]);
    let sim_addr = sim.wait_for("acquirer simulator listening on");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The wallet refuses every credit until told otherwise.
    let wallet = rt.block_on(Wallet::start(vec![], Reply::Fail));
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/qrbridge.toml")).unwrap();
    let without_schemes = example.split("\n[schemes.").next().unwrap().to_owned();
    let config = without_schemes
        .replace("0.0.0.0:8443", "127.0.0.1:0")
        .replace("transport = \"tls\"", "transport = \"plaintext-loopback\"")
        .replace("auth = \"signatures\"", "auth = \"off\"")
        .replace(
            "# demo_client = \"demo-wallet\"",
            "demo_client = \"wallet-my-01\"",
        )
        .replace("https://wallet-my.example/qrbridge/notify", &wallet.url())
        .replace("first_delay_ms = 1000", "first_delay_ms = 100")
        .replace("acquirer.example.sg:8583", &sim_addr)
        .replace(
            "server_name = \"acquirer.example.sg\"",
            "server_name = \"localhost\"",
        )
        .replace("certs/acquirer-ca.pem", "pki/ca.pem")
        .replace("certs/qrbridge-client.pem", "pki/client.pem")
        .replace("certs/qrbridge-client.key", "pki/client.key")
        .replace(
            "rates_file = \"testdata/fx/eurofxref-daily.xml\"",
            "# bundled rates",
        )
        .replace("max_age_secs = 345600", "max_age_secs = 0");
    assert!(
        config.contains(&wallet.url()),
        "the example names the notify URL"
    );
    let config_path = dir.join("gateway.toml");
    std::fs::write(&config_path, config).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let serve = || {
        let g = Child::spawn(&["serve", "--config", config_path.to_str().unwrap()]);
        let addr: SocketAddr = g.wait_for("qrbridge gateway listening on").parse().unwrap();
        g.wait_for("ready");
        (g, addr)
    };
    let (gateway, addr) = serve();
    let pid = rt.block_on(async {
        let p = pay_at(addr, "crash-credit-1", 2000).await;
        assert_eq!(result_status(&p), "S", "{p}");
        p["paymentId"].as_str().unwrap().to_owned()
    });
    // The advice comes 300 ms after the approval; the first delivery fails, and so do retries.
    let first = rt.block_on(wallet.wait_for(1, Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(300));
    let mut gateway = gateway;
    gateway.signal("-KILL");
    gateway.wait_exit();
    let attempts_before = wallet.received().len();
    wallet.set_otherwise(Reply::Ack);
    let (gateway, _addr) = serve();
    let id = first[0].json()["noticeId"].as_str().unwrap().to_owned();
    rt.block_on(async {
        eventually(
            "the credit acknowledged after the restart",
            Duration::from_secs(30),
            || {
                let r = wallet.received();
                (r.len() > attempts_before).then_some(())
            },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    drop(gateway);
    sim.signal("-INT");
    assert!(sim.wait_exit().success());
    let got = wallet.received();
    for r in &got {
        let body = r.json();
        assert_eq!(body["notifyType"], "REFUND_CREDIT", "{body}");
        assert_eq!(body["noticeId"], id.as_str(), "one notice id: {body}");
        assert_eq!(body["refund"]["paymentId"], pid.as_str());
        assert_eq!(
            body["refund"]["refundAmount"],
            json!({"currency":"SGD","value":"1000"})
        );
    }
    let journal = RedbJournal::open(JournalConfig::new(dir.join("data/journal.redb"))).unwrap();
    let snap = journal.snapshot().unwrap();
    let notice = snap.notice(&id).unwrap().unwrap();
    assert_eq!(notice.state, NoticeState::Sent, "{notice:?}");
    let refunds = snap.refunds().unwrap();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    let payment = snap.payment(pid.parse().unwrap()).unwrap().unwrap();
    assert_eq!(payment.refunded, amt(1000, "SGD"));
    let ledger: Value =
        serde_json::from_str(&std::fs::read_to_string(&ledger_path).unwrap()).unwrap();
    let advices = ledger["refunds"].as_array().unwrap();
    assert_eq!(advices.len(), 1, "{advices:?}");
    assert_eq!(advices[0]["outcome"], "accepted", "{advices:?}");
    eprintln!(
        "credit attempts before the kill: {attempts_before}, after the restart: {}",
        got.len() - attempts_before
    );
    drop(journal);
    let _ = std::fs::remove_dir_all(&dir);
}
