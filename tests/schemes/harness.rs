//! The shared environment and the battery. `battery!(Driver)` expands to the same eleven tests for a
//! scheme's driver: happy path, decline, unknown → reversed → notified, cancel, refund, idempotent
//! replay, inconsistent replay, bad signature, stale time, malformed body, oversize body.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use qrbridge::acquirer::sim::{Behaviour, Ledger, SimConfig, Simulator, Status};
use qrbridge::gateway::Gateway;
use qrbridge::journal::{JournalConfig, RedbJournal};
use qrbridge::notify::{Deliverer, NotifyPolicy};
use qrbridge::scheme::Scheme;
use qrbridge::scheme::native::auth::AuthConfig;
use qrbridge::server::{Limits, RunningServer, ServerConfig, Transport};
use tokio::net::{TcpListener, TcpStream};

use crate::stack;

/// The wallet client every driver authenticates as.
pub const CLIENT: &str = "wallet-my";
/// The payer.
pub const CUSTOMER: &str = "cust-1";
/// The server's body limit in the battery (small, so the oversize test is cheap).
pub const BODY_LIMIT: u64 = 64 * 1024;

/// Static SGQR code with PayNow, NETS, GrabPay and SGQR templates (no amount): SOBA NOODLE HOUSE.
pub const SGQR_STATIC: &str = "00020101021126370009SG.PAYNOW010120210201912345K0301127730011SG.COM.NETS01231201912345K991231235900021511111686614000303088686614028260008COM.GRAB0110A93FO3230Q51380007SG.SGQR0112180907512345020701.00015204581253037025802SG5917SOBA NOODLE HOUSE6009Singapore63048499";
/// Approved by the simulator (SGD minor units).
pub const APPROVE: u64 = 1250;
/// Declined by the simulator with DE39 51.
pub const DECLINE: u64 = 5100;
/// Never answered by the simulator: U, then reversed.
pub const NO_ANSWER: u64 = 7777;

/// S / F / U.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sfu {
    S,
    F,
    U,
}

/// A payment's status as the wallet can learn it (inquiry, cancel answer, notification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Final {
    Success,
    Fail,
    Processing,
    Reversed,
    Cancelled,
}

/// What a wallet sees of a pay request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paid {
    pub result: Sfu,
    pub payment_id: Option<String>,
}

/// A refusal: HTTP status and the scheme's own error / reason code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub http: u16,
    pub code: String,
}

/// How a request is spoiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    BadSignature,
    StaleTime,
    Malformed,
    Oversize,
}

/// What a notification told the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Noticed {
    Payment {
        request_id: String,
        status: Final,
    },
    Refund {
        refund_request_id: String,
        result: Sfu,
    },
}

/// A wallet speaking one scheme.
pub trait Driver: Send + Sync + Sized + 'static {
    const NAME: &'static str;
    const CODE_BAD_SIGNATURE: &'static str;
    const CODE_STALE: &'static str;
    const CODE_MALFORMED: &'static str;
    const CODE_OVERSIZE: &'static str;
    const CODE_INCONSISTENT: &'static str;
    /// Whether the wallet can ask for a refund in this scheme. Where refunds start only at the
    /// merchant (ISO 20022: a pacs.004 goes from us to the wallet) the battery's refund test does
    /// not apply and the scheme tests its outbound return itself.
    const WALLET_REFUNDS: bool = true;
    /// The scheme under test: authentication on for `wallet-my`, notifications to `notify_url`.
    fn scheme(notify_url: &str) -> Arc<dyn Scheme>;
    /// A wallet client of the server at `addr`.
    fn client(addr: SocketAddr) -> Self;
    /// Everything a wallet does to pay `code` with request id `id`.
    fn pay(&self, code: &str, amount: Option<u64>, id: &str) -> impl Future<Output = Paid> + Send;
    /// The final pay request for `id` again, identical body.
    fn repay(&self, id: &str) -> impl Future<Output = Paid> + Send;
    /// Same request id, a different body.
    fn pay_inconsistent(&self, id: &str) -> impl Future<Output = Refused> + Send;
    /// The payment's status by inquiry.
    fn inquire(&self, id: &str) -> impl Future<Output = Final> + Send;
    /// Cancels; the status the answer gives.
    fn cancel(&self, id: &str) -> impl Future<Output = Final> + Send;
    /// Refunds `amount` (merchant currency minor units).
    fn refund(&self, id: &str, refund_id: &str, amount: u64) -> impl Future<Output = Sfu> + Send;
    /// A spoiled pay-type request.
    fn tampered(&self, how: Tamper, limit: u64) -> impl Future<Output = Refused> + Send;
    /// Verifies and reads one received notification.
    fn read_notice(&self, headers: &HeaderMap, body: &[u8]) -> Result<Noticed, String>;
    /// The wallet's acknowledgement: (status, content type, body).
    fn ack() -> (u16, &'static str, Vec<u8>);
}

/// One HTTP/1.1 exchange on its own loopback connection, bounded to 30 s:
/// (status, response headers, body).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, HeaderMap, Vec<u8>) {
    let fut = async {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(target)
            .header("host", addr.to_string());
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes().to_vec();
        (status, parts.headers, bytes)
    };
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .expect("answered within 30 s")
}

/// A received notification.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// The wallet's notification endpoint on loopback: records every notification and acknowledges it.
pub struct Inbox {
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
    arrived: Arc<tokio::sync::Notify>,
}

impl Inbox {
    async fn start(ack: (u16, &'static str, Vec<u8>)) -> Inbox {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(tokio::sync::Notify::new());
        let (g, a) = (got.clone(), arrived.clone());
        let ack = Arc::new(ack);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (g, a, ack) = (g.clone(), a.clone(), ack.clone());
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let (g, a, ack) = (g.clone(), a.clone(), ack.clone());
                            async move {
                                let path = req.uri().path().to_owned();
                                let (parts, body) = req.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes().to_vec())
                                    .unwrap_or_default();
                                g.lock().unwrap().push(Received {
                                    path,
                                    headers: parts.headers,
                                    body,
                                });
                                a.notify_waiters();
                                let mut r = Response::new(Full::new(Bytes::from(ack.2.clone())));
                                *r.status_mut() = hyper::StatusCode::from_u16(ack.0).unwrap();
                                r.headers_mut().insert(
                                    "content-type",
                                    hyper::header::HeaderValue::from_static(ack.1),
                                );
                                Ok::<_, Infallible>(r)
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Inbox {
            url: format!("http://{addr}/notify"),
            got,
            arrived,
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (at most 20 s) until a notification satisfies `pick`.
    pub async fn wait_for<T>(&self, mut pick: impl FnMut(&Received) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let waiter = self.arrived.notified();
            let got = self.received();
            if let Some(bad) = got.iter().find(|r| r.path != "/notify") {
                panic!(
                    "a notification went to {:?}, not the configured /notify",
                    bad.path
                );
            }
            if let Some(t) = got.iter().find_map(&mut pick) {
                return t;
            }
            if tokio::time::timeout_at(deadline, waiter).await.is_err() {
                panic!(
                    "no matching notification within 20 s; got {:?}",
                    self.received()
                );
            }
        }
    }
}

fn temp_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "qrbridge-schemes-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Simulator + gateway + server (native and the driver's scheme) + the wallet's inbox.
pub struct Env<D: Driver> {
    pub addr: SocketAddr,
    pub sim: Simulator,
    pub inbox: Inbox,
    pub wallet: D,
    server: Option<RunningServer>,
    deliverer: Option<Deliverer>,
    dir: PathBuf,
}

impl<D: Driver> Drop for Env<D> {
    fn drop(&mut self) {
        drop(self.deliverer.take());
        drop(self.server.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl<D: Driver> Env<D> {
    pub async fn start() -> Env<D> {
        let dir = temp_dir();
        let mut sim_config = SimConfig::default();
        sim_config.by_amount.insert(
            DECLINE.to_string(),
            Behaviour::Decline {
                code: "51".to_owned(),
            },
        );
        sim_config
            .by_amount
            .insert(NO_ANSWER.to_string(), Behaviour::NeverAnswer);
        let (sim, link) = stack::acquirer(sim_config).await;
        let (quoter, quotes, _clock) = stack::quoting();
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
        let inbox = Inbox::start(D::ack()).await;
        let scheme = D::scheme(&inbox.url);
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
        let deliverer = Deliverer::start(
            journal,
            server.schemes(),
            NotifyPolicy {
                first_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(500),
                attempt_timeout: Duration::from_secs(5),
                ..NotifyPolicy::default()
            },
        )
        .unwrap();
        Env {
            addr,
            sim,
            inbox,
            wallet: D::client(addr),
            server: Some(server),
            deliverer: Some(deliverer),
            dir,
        }
    }

    pub fn ledger(&self) -> Ledger {
        self.sim.ledger()
    }

    /// Polls the payment by inquiry until `want` (at most 20 s).
    pub async fn wait_status(&self, id: &str, want: Final) {
        let mut last = Final::Processing;
        for _ in 0..400 {
            last = self.wallet.inquire(id).await;
            if last == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("payment {id} never reached {want:?}; last {last:?}");
    }
}

fn purchases(l: &Ledger) -> Vec<&qrbridge::acquirer::sim::Entry> {
    l.entries
        .iter()
        .filter(|e| e.processing_code.starts_with("00"))
        .collect()
}

fn refunds(l: &Ledger) -> Vec<&qrbridge::acquirer::sim::Entry> {
    l.entries
        .iter()
        .filter(|e| e.processing_code.starts_with("20"))
        .collect()
}

pub async fn happy_path<D: Driver>() {
    let env = Env::<D>::start().await;
    let paid = env
        .wallet
        .pay(SGQR_STATIC, Some(APPROVE), "pay-happy-1")
        .await;
    assert_eq!(paid.result, Sfu::S, "{paid:?}");
    assert!(paid.payment_id.is_some());
    let ledger = env.ledger();
    let p = purchases(&ledger);
    assert_eq!(p.len(), 1, "{ledger:?}");
    assert_eq!((p[0].amount, p[0].currency.as_str()), (APPROVE, "702"));
    assert_eq!(p[0].status, Status::Approved);
    assert_eq!(env.wallet.inquire("pay-happy-1").await, Final::Success);
    // The answer was final: nothing to notify.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        env.inbox.received().is_empty(),
        "{:?}",
        env.inbox.received()
    );
}

pub async fn decline<D: Driver>() {
    let env = Env::<D>::start().await;
    let paid = env
        .wallet
        .pay(SGQR_STATIC, Some(DECLINE), "pay-decline-1")
        .await;
    assert_eq!(paid.result, Sfu::F, "{paid:?}");
    let ledger = env.ledger();
    assert_eq!(purchases(&ledger).len(), 1);
    assert_eq!(purchases(&ledger)[0].status, Status::Declined);
    assert_eq!(env.wallet.inquire("pay-decline-1").await, Final::Fail);
}

pub async fn unknown_is_reversed_and_notified<D: Driver>() {
    let env = Env::<D>::start().await;
    let paid = env
        .wallet
        .pay(SGQR_STATIC, Some(NO_ANSWER), "pay-unknown-1")
        .await;
    assert_eq!(paid.result, Sfu::U, "{paid:?}");
    env.wait_status("pay-unknown-1", Final::Reversed).await;
    let ledger = env.ledger();
    assert_eq!(purchases(&ledger)[0].status, Status::Reversed);
    let noticed = env
        .inbox
        .wait_for(|r| env.wallet.read_notice(&r.headers, &r.body).ok())
        .await;
    assert_eq!(
        noticed,
        Noticed::Payment {
            request_id: "pay-unknown-1".to_owned(),
            status: Final::Reversed
        }
    );
}

pub async fn cancel<D: Driver>() {
    let env = Env::<D>::start().await;
    let paid = env
        .wallet
        .pay(SGQR_STATIC, Some(APPROVE), "pay-cancel-1")
        .await;
    assert_eq!(paid.result, Sfu::S, "{paid:?}");
    let answered = env.wallet.cancel("pay-cancel-1").await;
    assert!(
        matches!(answered, Final::Cancelled | Final::Processing),
        "{answered:?}"
    );
    env.wait_status("pay-cancel-1", Final::Cancelled).await;
    let ledger = env.ledger();
    assert_eq!(purchases(&ledger)[0].status, Status::Reversed, "{ledger:?}");
    let noticed = env
        .inbox
        .wait_for(|r| env.wallet.read_notice(&r.headers, &r.body).ok())
        .await;
    assert_eq!(
        noticed,
        Noticed::Payment {
            request_id: "pay-cancel-1".to_owned(),
            status: Final::Cancelled
        }
    );
}

pub async fn refund<D: Driver>() {
    if !D::WALLET_REFUNDS {
        eprintln!("{}: no wallet-initiated refunds in this scheme", D::NAME);
        return;
    }
    let env = Env::<D>::start().await;
    let paid = env
        .wallet
        .pay(SGQR_STATIC, Some(APPROVE), "pay-refund-1")
        .await;
    assert_eq!(paid.result, Sfu::S, "{paid:?}");
    assert_eq!(
        env.wallet.refund("pay-refund-1", "refund-1", 500).await,
        Sfu::S
    );
    // A second refund beyond what is left is refused.
    assert_eq!(
        env.wallet.refund("pay-refund-1", "refund-2", APPROVE).await,
        Sfu::F
    );
    let ledger = env.ledger();
    let r = refunds(&ledger);
    assert_eq!(r.len(), 1, "{ledger:?}");
    assert_eq!(r[0].amount, 500);
    let noticed = env
        .inbox
        .wait_for(|r| env.wallet.read_notice(&r.headers, &r.body).ok())
        .await;
    assert_eq!(
        noticed,
        Noticed::Refund {
            refund_request_id: "refund-1".to_owned(),
            result: Sfu::S
        }
    );
}

pub async fn idempotent_replay<D: Driver>() {
    let env = Env::<D>::start().await;
    let first = env
        .wallet
        .pay(SGQR_STATIC, Some(APPROVE), "pay-replay-1")
        .await;
    assert_eq!(first.result, Sfu::S);
    let again = env.wallet.repay("pay-replay-1").await;
    assert_eq!(again, first);
    assert_eq!(purchases(&env.ledger()).len(), 1);
}

pub async fn inconsistent_replay<D: Driver>() {
    let env = Env::<D>::start().await;
    let first = env
        .wallet
        .pay(SGQR_STATIC, Some(APPROVE), "pay-incons-1")
        .await;
    assert_eq!(first.result, Sfu::S);
    let refused = env.wallet.pay_inconsistent("pay-incons-1").await;
    assert_eq!(refused.code, D::CODE_INCONSISTENT, "{refused:?}");
    assert_eq!(purchases(&env.ledger()).len(), 1);
}

async fn refused_without_trace<D: Driver>(how: Tamper, code: &str) -> Refused {
    let env = Env::<D>::start().await;
    let refused = env.wallet.tampered(how, BODY_LIMIT).await;
    assert_eq!(refused.code, code, "{} {how:?}: {refused:?}", D::NAME);
    assert!(refused.http < 500, "{} {how:?}: {refused:?}", D::NAME);
    assert!(env.ledger().entries.is_empty());
    refused
}

pub async fn bad_signature<D: Driver>() {
    refused_without_trace::<D>(Tamper::BadSignature, D::CODE_BAD_SIGNATURE).await;
}

pub async fn stale_time<D: Driver>() {
    refused_without_trace::<D>(Tamper::StaleTime, D::CODE_STALE).await;
}

pub async fn malformed_body<D: Driver>() {
    refused_without_trace::<D>(Tamper::Malformed, D::CODE_MALFORMED).await;
}

pub async fn oversize_body<D: Driver>() {
    let r = refused_without_trace::<D>(Tamper::Oversize, D::CODE_OVERSIZE).await;
    assert_eq!(r.http, 413);
}

/// The battery for one driver.
#[macro_export]
macro_rules! battery {
    ($driver:ty) => {
        mod battery {
            use $crate::harness;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn happy_path() {
                harness::happy_path::<$driver>().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn decline() {
                harness::decline::<$driver>().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn unknown_is_reversed_and_notified() {
                harness::unknown_is_reversed_and_notified::<$driver>().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cancel() {
                harness::cancel::<$driver>().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn refund() {
                harness::refund::<$driver>().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn idempotent_replay() {
                harness::idempotent_replay::<$driver>().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn inconsistent_replay() {
                harness::inconsistent_replay::<$driver>().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn bad_signature() {
                harness::bad_signature::<$driver>().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn stale_time() {
                harness::stale_time::<$driver>().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn malformed_body() {
                harness::malformed_body::<$driver>().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn oversize_body() {
                harness::oversize_body::<$driver>().await
            }
        }
    };
}
