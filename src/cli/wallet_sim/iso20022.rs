//! `qrbridge wallet-sim iso20022`: an ISO 20022 wallet — the payer's PSP, the debtor agent — for
//! the gateway's `iso20022` scheme (spec/schemes/iso20022.md), in the CBPR+ or the Nexus profile.
//!
//! `serve` runs the wallet: its notification endpoint ([`NOTIFY_PATH`], the gateway's
//! `notify_url`), which takes the gateway's pacs.002 (a payment's final state) and pacs.004 (a
//! payment return: a refund the merchant made) and answers each pacs.004 with its own pacs.002
//! (`ACCC`: the payer is credited; or `RJCT` with a reason, as configured); a bounded in-memory
//! ledger of its users' money; a bounded log of every ISO 20022 document it sent and received; and
//! control endpoints: `POST /sim/pay` (ask a quote, debit the payer, send the pacs.008),
//! `POST /sim/status` (pacs.028), `POST /sim/cancel` (camt.056), `GET /sim/ledger`,
//! `GET /sim/messages`, `POST /sim/mode` (how it answers returns, be slow, be down),
//! `POST /sim/stop`. The other subcommands call a running wallet's control endpoints.
//!
//! The choreography is the debtor agent's: the payer is debited before the pacs.008 goes out (a
//! credit transfer), and credited back when the payment ends rejected (`RJCT` in the answer, in a
//! pacs.028 answer or in a pushed pacs.002), reversed after a pending answer (`RJCT AB03`), or when
//! a return (pacs.004) comes: a refund the merchant made (`MS02`), or the funds of a payment
//! cancelled by our camt.056 (`FOCR`; the camt.029 `CNCL` only says the cancellation is accepted).
//!
//! With `--key` (a file holding the client's HMAC-SHA256 key in base64, as the gateway's
//! `hmac_key_base64`) the wallet signs its requests, verifies the gateway's answers (and does not
//! act on one that fails) and verifies every notification (401 when it fails). Without it (the
//! embedded demo, authentication off) nothing is signed or checked.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use qrbridge::http_client::{HttpClient, OutboundRequest, target};
use qrbridge::money::{Amount, Currency};
use qrbridge::scheme::iso20022::transformers::{
    self as iso, Iso20022Original, Iso20022Pacs002, Iso20022Profile, Iso20022Quote, Iso20022Reason,
    Iso20022Status, Iso20022TxSts, form_encode,
};
use qrbridge::scheme::native::auth::{
    Secret, request_time, sign_request_hmac, verify_notification_hmac, verify_response_hmac,
};
use qrbridge::time::format_rfc3339;
use serde_json::{Value, json};

/// Where the wallet takes the gateway's notifications (its `notify_url` path).
pub const NOTIFY_PATH: &str = "/iso20022/notify";
/// The gateway's iso20022 routes, after its base URL.
const GATEWAY_PATH: &str = "/schemes/iso20022/v1";
/// The most ledger entries kept (the oldest go first).
const MAX_ENTRIES: usize = 10_000;
/// The most returns one payment takes (each credits at least one minor unit).
const MAX_RETURNS: usize = 100;
/// The most documents the message log keeps, and their total bytes (the oldest go first).
const MAX_MESSAGES: usize = 2_000;
const MAX_MESSAGE_BYTES: usize = 8 << 20;
/// The largest request body read (the gateway's documents are at most 128 KiB).
const MAX_BODY: usize = 256 * 1024;
const NS: &str = "urn:iso:std:iso:20022:tech:xsd:";

/// `qrbridge wallet-sim iso20022 ...`
#[derive(clap::Subcommand)]
pub enum Iso20022Command {
    /// Run the wallet (its notification endpoint, its ledger, the control endpoints) until Ctrl-C.
    Serve(ServeArgs),
    /// Ask a running wallet to pay a code: quote, debit the payer, pacs.008, read the pacs.002.
    Pay(PayArgs),
    /// Ask a running wallet for a payment's status: pacs.028, read the pacs.002.
    Status(TxArgs),
    /// Ask a running wallet to cancel a payment: camt.056, read the camt.029.
    Cancel(TxArgs),
    /// Change how a running wallet answers: returns ACCC or RJCT, delay, down.
    Mode(ModeArgs),
    /// Print a running wallet's ledger (JSON).
    Ledger {
        /// The wallet.
        #[arg(long, default_value = "http://127.0.0.1:8091")]
        wallet: String,
    },
    /// Print every ISO 20022 document a running wallet sent and received (JSON lines).
    Messages {
        /// The wallet.
        #[arg(long, default_value = "http://127.0.0.1:8091")]
        wallet: String,
    },
    /// Stop a running wallet (it prints its ledger as it stops).
    Stop {
        /// The wallet.
        #[arg(long, default_value = "http://127.0.0.1:8091")]
        wallet: String,
    },
}

/// `serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Listen here (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8091")]
    listen: SocketAddr,
    /// The wallet's client id at the gateway.
    #[arg(long, default_value = "demo-wallet")]
    client_id: String,
    /// A file holding the client's HMAC-SHA256 key in base64 (the gateway's `hmac_key_base64`):
    /// signs requests, verifies answers and notifications. None: nothing signed or checked.
    #[arg(long)]
    key: Option<PathBuf>,
    /// The keyVersion the gateway knows the key by.
    #[arg(long, default_value_t = 1)]
    key_version: u32,
    /// The message profile the gateway has for this client: `cbpr` or `nexus`.
    #[arg(long, default_value = "cbpr")]
    profile: String,
    /// The wallet's BIC (`DbtrAgt`, the camt.056's `Assgnr`).
    #[arg(long, default_value = "MYWLMYKLXXX")]
    bic: String,
    /// How it answers a return (pacs.004): `ACCC` (the payer is credited) or `RJCT`.
    #[arg(long, default_value = "ACCC")]
    returns: String,
    /// The ExternalStatusReason1Code of a `RJCT` answer to a return.
    #[arg(long, default_value = "AC04")]
    reject_reason: String,
    /// Answer notifications after this many milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Start down (HTTP 503 to every notification) until `mode --down false`.
    #[arg(long)]
    down: bool,
    /// Stop after this many seconds instead of waiting for Ctrl-C.
    #[arg(long)]
    stop_after: Option<u64>,
}

/// `pay`.
#[derive(clap::Args)]
pub struct PayArgs {
    /// The running wallet (`qrbridge wallet-sim iso20022 serve`).
    #[arg(long, default_value = "http://127.0.0.1:8091")]
    wallet: String,
    /// The gateway's address; its iso20022 routes are under `/schemes/iso20022/v1`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
    /// The scanned code.
    #[arg(long)]
    code: String,
    /// The amount in the merchant's currency, for a static code (`12.50`).
    #[arg(long)]
    amount: Option<String>,
    /// The merchant's currency, with `--amount` (ISO 4217 alpha-3).
    #[arg(long, default_value = "SGD")]
    destination_currency: String,
    /// The payer's currency (ISO 4217 alpha-3).
    #[arg(long, default_value = "MYR")]
    currency: String,
    /// The payer (`DbtrAcct`).
    #[arg(long, default_value = "my-customer-1")]
    customer: String,
}

/// `status`, `cancel`.
#[derive(clap::Args)]
pub struct TxArgs {
    /// The running wallet.
    #[arg(long, default_value = "http://127.0.0.1:8091")]
    wallet: String,
    /// The gateway's address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
    /// The payment's UETR (as `pay` printed it); `last`: the wallet's latest payment.
    #[arg(long, default_value = "last")]
    uetr: String,
}

/// `mode`.
#[derive(clap::Args)]
pub struct ModeArgs {
    /// The running wallet.
    #[arg(long, default_value = "http://127.0.0.1:8091")]
    wallet: String,
    /// Answer returns `ACCC` or `RJCT`.
    #[arg(long)]
    returns: Option<String>,
    /// The reason of a `RJCT`.
    #[arg(long)]
    reject_reason: Option<String>,
    /// Answer notifications after this many milliseconds.
    #[arg(long)]
    delay_ms: Option<u64>,
    /// Be down (503) or up.
    #[arg(long)]
    down: Option<bool>,
}

/// How the wallet answers the gateway's notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mode {
    /// `ACCC` or `RJCT`, for returns.
    returns: Iso20022TxSts,
    reject_reason: &'static str,
    delay: Duration,
    down: bool,
}

/// A return the wallet took.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Return {
    rtr_id: String,
    msg_id: String,
    /// Credited to the payer (minor units of the entry's currency).
    amount: u64,
    reason: String,
}

/// One payment in the wallet's books.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    uetr: String,
    msg_id: String,
    end_to_end_id: String,
    quote_id: String,
    customer_id: String,
    /// The payer's currency.
    currency: String,
    /// Debited from the payer (minor units).
    debited: u64,
    /// Given back (rejected, reversed, cancelled, returns).
    credited: u64,
    /// What the merchant is paid, as quoted (`{ccy, value}`).
    merchant_amount: Value,
    /// PENDING (debited, no final status yet), SETTLED, REJECTED, REVERSED, CANCELLED.
    state: String,
    /// The last status the gateway gave (`ACCC`, `RJCT AM04`, `PDNG`, camt.029 `CNCL` ...).
    last_status: String,
    /// The gateway's reference (`ClrSysRef`: our payment id without hyphens).
    clr_sys_ref: Option<String>,
    returns: Vec<Return>,
}

/// A document sent or received.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
struct Logged {
    /// `sent` or `received`.
    direction: &'static str,
    /// What it is (`pacs.008.001.08`, from its namespace), and to or from where.
    message: String,
    what: String,
    xml: String,
}

#[derive(Default)]
struct MessageLog {
    docs: VecDeque<Logged>,
    bytes: usize,
    dropped: u64,
}

#[derive(Default)]
struct Books {
    entries: VecDeque<Entry>,
    /// Notifications about payments the wallet does not know (acknowledged, counted).
    unmatched_notifications: u64,
    /// Returns it refused.
    refused_returns: u64,
    /// Notifications whose signature did not verify (refused 401).
    bad_signatures: u64,
}

struct Wallet {
    client_id: String,
    key: Option<(u32, Secret)>,
    profile: Iso20022Profile,
    bic: String,
    mode: Mutex<Mode>,
    books: Mutex<Books>,
    log: Mutex<MessageLog>,
    http: HttpClient,
    /// Makes MsgIds unique across runs: the start time.
    run: u64,
    seq: AtomicU64,
    stop: tokio::sync::Notify,
}

/// Runs the command.
pub fn run(cmd: Iso20022Command) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let done = match cmd {
        Iso20022Command::Serve(a) => rt.block_on(serve(a)),
        Iso20022Command::Pay(a) => rt.block_on(pay(a)),
        Iso20022Command::Status(a) => rt.block_on(tx_call(a, "/sim/status")),
        Iso20022Command::Cancel(a) => rt.block_on(tx_call(a, "/sim/cancel")),
        Iso20022Command::Mode(a) => rt.block_on(async move {
            let mut body = serde_json::Map::new();
            if let Some(r) = a.returns {
                body.insert("returns".into(), json!(r));
            }
            if let Some(r) = a.reject_reason {
                body.insert("rejectReason".into(), json!(r));
            }
            if let Some(d) = a.delay_ms {
                body.insert("delayMs".into(), json!(d));
            }
            if let Some(d) = a.down {
                body.insert("down".into(), json!(d));
            }
            let v = call(&a.wallet, Method::POST, "/sim/mode", &Value::Object(body)).await?;
            println!("{v}");
            Ok(())
        }),
        Iso20022Command::Ledger { wallet } => rt.block_on(async move {
            let v = call(&wallet, Method::GET, "/sim/ledger", &Value::Null).await?;
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(())
        }),
        Iso20022Command::Messages { wallet } => rt.block_on(async move {
            let v = call(&wallet, Method::GET, "/sim/messages", &Value::Null).await?;
            for m in v["messages"].as_array().into_iter().flatten() {
                println!("{m}");
            }
            Ok(())
        }),
        Iso20022Command::Stop { wallet } => rt.block_on(async move {
            call(&wallet, Method::POST, "/sim/stop", &json!({})).await?;
            println!("stopped {wallet}");
            Ok(())
        }),
    };
    super::exit(done)
}

fn return_status(s: &str) -> Result<Iso20022TxSts, String> {
    match s {
        "ACCC" => Ok(Iso20022TxSts::Accc),
        "RJCT" => Ok(Iso20022TxSts::Rjct),
        other => Err(format!("returns {other:?}: ACCC or RJCT")),
    }
}

/// The ExternalStatusReason1Codes a wallet may reject a return with (spec/schemes/iso20022.md
/// §12): the payer's account closed, blocked, of the wrong type, or the wallet's own reasons.
const REJECT_REASONS: &[&str] = &["AC04", "AC06", "AG01", "MS03", "NARR", "RR04"];

/// One of [`REJECT_REASONS`].
fn reason_code(s: &str) -> Result<&'static str, String> {
    REJECT_REASONS
        .iter()
        .find(|c| **c == s)
        .copied()
        .ok_or_else(|| format!("reject reason {s:?}: one of {}", REJECT_REASONS.join(", ")))
}

fn read_key(path: &PathBuf) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("{}: not base64: {e}", path.display()))?;
    if bytes.len() < 16 {
        return Err(format!(
            "{}: at least 16 bytes are required, got {}",
            path.display(),
            bytes.len()
        ));
    }
    Ok(Secret::new(bytes))
}

async fn serve(a: ServeArgs) -> Result<(), String> {
    let profile = Iso20022Profile::parse(&a.profile)
        .ok_or_else(|| format!("--profile {:?}: cbpr or nexus", a.profile))?;
    let key = match &a.key {
        Some(p) => Some((a.key_version, read_key(p)?)),
        None => None,
    };
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let wallet = Arc::new(Wallet {
        client_id: a.client_id,
        key,
        profile,
        bic: a.bic,
        mode: Mutex::new(Mode {
            returns: return_status(&a.returns)?,
            reject_reason: reason_code(&a.reject_reason)?,
            delay: Duration::from_millis(a.delay_ms.min(120_000)),
            down: a.down,
        }),
        books: Mutex::new(Books::default()),
        log: Mutex::new(MessageLog::default()),
        http: HttpClient::new(None).with_timeouts(Duration::from_secs(5), Duration::from_secs(30)),
        run,
        seq: AtomicU64::new(1),
        stop: tokio::sync::Notify::new(),
    });
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .map_err(|e| format!("{}: {e}", a.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("iso20022 wallet simulator listening on {addr}");
    println!("notify_url (the gateway's, for this client): http://{addr}{NOTIFY_PATH}");
    super::serve_until(
        listener,
        wallet.clone(),
        |w, req| async move { w.handle(req).await },
        a.stop_after,
        &wallet.stop,
    )
    .await;
    println!("{}", wallet.ledger());
    Ok(())
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert("content-type", v);
    }
    r
}

fn now() -> String {
    format_rfc3339(SystemTime::now())
}

/// Escapes text for an XML element or attribute.
fn esc(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// The message identifier a document's namespace names (`pacs.002.001.10`), or `?`.
fn message_of(xml: &[u8]) -> String {
    let text = String::from_utf8_lossy(xml);
    text.find(NS)
        .and_then(|at| {
            let rest = &text[at + NS.len()..];
            rest.find(['"', '\'']).map(|end| rest[..end].to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// Minor units of a decimal amount (`40.42`) in `ccy`.
fn minor(ccy: &str, value: &str) -> Result<(Currency, u64), String> {
    let c = Currency::from_code(ccy).map_err(|e| format!("currency {ccy:?}: {e}"))?;
    let a = Amount::parse(value, c).map_err(|e| format!("amount {value:?} {ccy}: {e}"))?;
    Ok((c, a.minor()))
}

fn decimal(ccy: &str, minor_units: u64) -> String {
    Currency::from_code(ccy)
        .ok()
        .and_then(|c| Amount::from_minor(minor_units, c).ok())
        .map_or_else(|| minor_units.to_string(), Amount::to_decimal_string)
}

/// A pacs.002's transaction status, reason and OrgnlUETR; for a group-level report, `GrpSts`
/// and its reason with no UETR.
fn status_of(doc: &Iso20022Pacs002) -> (String, Option<String>, Option<String>) {
    let code = |r: Option<&iso::Iso20022RsnInf>| {
        r.and_then(|r| r.rsn.as_ref())
            .and_then(|r| r.code())
            .map(str::to_owned)
    };
    match &doc.report.tx_inf_and_sts {
        Some(tx) => (
            tx.tx_sts.clone(),
            code(tx.sts_rsn_inf.as_ref()),
            tx.orgnl_uetr.clone(),
        ),
        None => {
            let g = &doc.report.orgnl_grp_inf_and_sts;
            (
                g.grp_sts.clone().unwrap_or_default(),
                code(g.sts_rsn_inf.as_ref()),
                None,
            )
        }
    }
}

impl Entry {
    /// Gives the payer back what is still debited; the entry ends in `state`.
    fn credit_back(&mut self, state: &str) {
        if matches!(self.state.as_str(), "PENDING" | "SETTLED") {
            self.credited = self.debited;
            self.state = state.to_owned();
        }
    }

    /// What a status of the payment (an answer, a pacs.028 answer, a pushed pacs.002) means for
    /// the books: `ACCC` settles a pending payment; `RJCT` gives the payer back what is left
    /// (REJECTED, REVERSED after `AB03`, CANCELLED after `FOCR`); `PDNG` changes nothing.
    fn apply(&mut self, tx_sts: &str, reason: Option<&str>) {
        self.last_status = match reason {
            Some(r) => format!("{tx_sts} {r}"),
            None => tx_sts.to_owned(),
        };
        match (tx_sts, reason) {
            ("ACCC" | "ACSC", _) if self.state == "PENDING" => self.state = "SETTLED".to_owned(),
            ("RJCT", Some("AB03")) => self.credit_back("REVERSED"),
            ("RJCT", Some("FOCR")) => self.credit_back("CANCELLED"),
            ("RJCT", _) if self.state == "PENDING" => self.credit_back("REJECTED"),
            _ => {}
        }
    }
}

impl Wallet {
    async fn handle(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        let path_and_query = req
            .uri()
            .path_and_query()
            .map_or_else(|| path.clone(), |p| p.as_str().to_owned());
        let method = req.method().clone();
        let headers = req.headers().clone();
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes().to_vec(),
            Err(e) => {
                return reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "application/json",
                    json!({ "error": format!("body: {e}") })
                        .to_string()
                        .into_bytes(),
                );
            }
        };
        if path == NOTIFY_PATH && method == Method::POST {
            return self.notified(&path_and_query, &headers, &body).await;
        }
        let parsed = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
        let v = match (method, path.as_str()) {
            (Method::GET, "/sim/ledger") => Ok(self.ledger()),
            (Method::GET, "/sim/messages") => Ok(self.messages()),
            (Method::POST, "/sim/mode") => self.set_mode(&parsed()),
            (Method::POST, "/sim/pay") => self.pay(&parsed()).await,
            (Method::POST, "/sim/status") => self.status(&parsed()).await,
            (Method::POST, "/sim/cancel") => self.cancel(&parsed()).await,
            (Method::POST, "/sim/stop") => {
                self.stop.notify_one();
                Ok(json!({"stopping": true}))
            }
            _ => Err(format!("no {path}")),
        };
        match v {
            Ok(v) => reply(
                StatusCode::OK,
                "application/json",
                v.to_string().into_bytes(),
            ),
            Err(e) => reply(
                StatusCode::BAD_REQUEST,
                "application/json",
                json!({ "error": e }).to_string().into_bytes(),
            ),
        }
    }

    fn record(&self, direction: &'static str, what: String, xml: &[u8]) {
        let Ok(mut log) = self.log.lock() else {
            return;
        };
        let doc = Logged {
            direction,
            message: message_of(xml),
            what,
            xml: String::from_utf8_lossy(xml).into_owned(),
        };
        log.bytes += doc.xml.len();
        log.docs.push_back(doc);
        while log.docs.len() > MAX_MESSAGES || log.bytes > MAX_MESSAGE_BYTES {
            let Some(old) = log.docs.pop_front() else {
                break;
            };
            log.bytes -= old.xml.len();
            log.dropped += 1;
        }
    }

    fn mode(&self) -> Mode {
        self.mode.lock().map(|m| m.clone()).unwrap_or(Mode {
            returns: Iso20022TxSts::Rjct,
            reject_reason: "NARR",
            delay: Duration::ZERO,
            down: true,
        })
    }

    fn count(&self, f: impl FnOnce(&mut Books)) {
        if let Ok(mut b) = self.books.lock() {
            f(&mut b);
        }
    }

    // -----------------------------------------------------------------------------------------
    // The gateway's notifications.

    /// A notification from the gateway: a pacs.002 about one of our payments (acknowledged with
    /// 204) or a pacs.004 returning money to a payer (answered with our pacs.002).
    async fn notified(
        &self,
        path: &str,
        headers: &hyper::HeaderMap,
        body: &[u8],
    ) -> Response<Full<Bytes>> {
        let mode = self.mode();
        if mode.down {
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                b"down".to_vec(),
            );
        }
        tokio::time::sleep(mode.delay).await;
        if let Err(e) = self.verify_notification(path, headers, body) {
            self.count(|b| b.bad_signatures += 1);
            eprintln!("iso20022 wallet: notification refused: {e}");
            return reply(StatusCode::UNAUTHORIZED, "text/plain", e.into_bytes());
        }
        self.record("received", "notification".to_owned(), body);
        let message = message_of(body);
        if message.starts_with("pacs.004.") {
            let answer = self.returned(body, &mode);
            self.record("sent", "answer to the pacs.004".to_owned(), &answer);
            return reply(StatusCode::OK, "application/xml", answer);
        }
        match iso::parse_pacs002(body) {
            Ok(doc) => {
                let (tx_sts, reason, uetr) = status_of(&doc);
                let known = self.with_entry(uetr.as_deref(), |e| {
                    e.apply(&tx_sts, reason.as_deref());
                    println!("pacs.002 for {}: {tx_sts} → {}", e.uetr, e.state);
                });
                if known.is_none() {
                    self.count(|b| b.unmatched_notifications += 1);
                    eprintln!("iso20022 wallet: a pacs.002 about a payment it does not know");
                }
                reply(StatusCode::NO_CONTENT, "text/plain", Vec::new())
            }
            Err(fault) => {
                let answer = iso::render_group_refusal(
                    &message,
                    Iso20022Reason::Code(fault.code),
                    &fault.message(),
                    &now(),
                )
                .unwrap_or_default();
                self.record("sent", "refusal of a notification".to_owned(), &answer);
                reply(StatusCode::BAD_REQUEST, "application/xml", answer)
            }
        }
    }

    fn verify_notification(
        &self,
        path: &str,
        headers: &hyper::HeaderMap,
        body: &[u8],
    ) -> Result<(), String> {
        let Some((_, key)) = &self.key else {
            return Ok(());
        };
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .ok_or(format!("no {n} header"))
        };
        let client = h("client-id")?;
        if client != self.client_id {
            return Err(format!("client-id {client:?} is not this wallet's"));
        }
        verify_notification_hmac(
            key,
            path,
            client,
            h("response-time")?,
            h("signature")?,
            body,
        )
        .map_err(|e| format!("the gateway's signature does not verify: {e}"))
    }

    /// Runs `f` on the entry of `uetr`; `None` when there is none.
    fn with_entry<T>(&self, uetr: Option<&str>, f: impl FnOnce(&mut Entry) -> T) -> Option<T> {
        let uetr = uetr?;
        let mut books = self.books.lock().ok()?;
        books.entries.iter_mut().find(|e| e.uetr == uetr).map(f)
    }

    /// A payment return: checked against the payment it names, the payer credited once per
    /// `RtrId`, answered with a pacs.002 about the return (`OrgnlMsgNmId` pacs.004.001.09,
    /// `OrgnlInstrId` the `RtrId`): `ACCC`, or `RJCT` with the configured reason or what was wrong.
    fn returned(&self, body: &[u8], mode: &Mode) -> Vec<u8> {
        let rtr = match iso::parse_pacs004(body) {
            Ok(doc) => doc.rtr,
            Err(fault) => {
                self.count(|b| b.refused_returns += 1);
                return iso::render_group_refusal(
                    iso::MSG_PACS004,
                    Iso20022Reason::Code(fault.code),
                    &fault.message(),
                    &now(),
                )
                .unwrap_or_default();
            }
        };
        let tx = &rtr.tx;
        let original = Iso20022Original {
            msg_id: rtr.grp_hdr.msg_id.clone(),
            msg_nm_id: iso::MSG_PACS004,
            instr_id: Some(tx.rtr_id.clone()),
            end_to_end_id: tx.orgnl_end_to_end_id.clone(),
            uetr: tx.orgnl_uetr.clone(),
        };
        let refuse = |code: &'static str, info: String| (Iso20022TxSts::Rjct, Some(code), info);
        let reason = tx
            .rtr_rsn_inf
            .rsn
            .as_ref()
            .and_then(|r| r.code())
            .unwrap_or("")
            .to_owned();
        let (tx_sts, code, info) = if mode.returns == Iso20022TxSts::Rjct {
            refuse(
                mode.reject_reason,
                "the wallet is set to reject returns".to_owned(),
            )
        } else {
            let amount = minor(&tx.rtrd_instd_amt.ccy, &tx.rtrd_instd_amt.value);
            let outcome = self.with_entry(tx.orgnl_uetr.as_deref(), |e| {
                let (ccy, amount) = match &amount {
                    Ok((c, a)) => (c.code(), *a),
                    Err(why) => return refuse("AM12", why.clone()),
                };
                if ccy != e.currency {
                    return refuse("AM03", format!("{ccy} is not the payment's {}", e.currency));
                }
                if e.returns.iter().any(|r| r.rtr_id == tx.rtr_id) {
                    return (Iso20022TxSts::Accc, None, "already credited".to_owned());
                }
                if e.state != "SETTLED" {
                    return refuse(
                        "FF12",
                        format!("the payment is {}, not settled: nothing to return", e.state),
                    );
                }
                if e.credited + amount > e.debited {
                    return refuse(
                        "AM09",
                        format!(
                            "{ccy} {} back on {} debited, {} credited",
                            decimal(ccy, amount),
                            decimal(ccy, e.debited),
                            decimal(ccy, e.credited),
                        ),
                    );
                }
                if e.returns.len() >= MAX_RETURNS {
                    return refuse("NARR", format!("more than {MAX_RETURNS} returns"));
                }
                e.credited += amount;
                if reason == "FOCR" {
                    // The whole payment back after our camt.056 was accepted.
                    e.state = "CANCELLED".to_owned();
                }
                e.returns.push(Return {
                    rtr_id: tx.rtr_id.clone(),
                    msg_id: rtr.grp_hdr.msg_id.clone(),
                    amount,
                    reason: reason.clone(),
                });
                println!(
                    "pacs.004 {} for {}: {ccy} {} back to {}",
                    tx.rtr_id,
                    e.uetr,
                    decimal(ccy, amount),
                    e.customer_id
                );
                (Iso20022TxSts::Accc, None, String::new())
            });
            outcome.unwrap_or_else(|| {
                refuse(
                    "AG09",
                    "no payment with this OrgnlUETR in the wallet's books".to_owned(),
                )
            })
        };
        if tx_sts == Iso20022TxSts::Rjct {
            self.count(|b| b.refused_returns += 1);
            eprintln!(
                "iso20022 wallet: return {} refused: RJCT {} {info}",
                tx.rtr_id,
                code.unwrap_or("")
            );
        }
        let status = Iso20022Status {
            tx_sts,
            reason: code.map(Iso20022Reason::Code),
            info: (!info.is_empty()).then_some(info),
            accepted_at: None,
            reference: None,
            amount: None,
        };
        iso::render_pacs002(&original, &status, &now()).unwrap_or_default()
    }

    // -----------------------------------------------------------------------------------------
    // Calls to the gateway.

    fn next_id(&self, tag: &str) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        // Max35Text: a short tag, the start time and the sequence number.
        format!("SIM{tag}{:X}{n:06}", self.run)
    }

    /// POSTs one of our documents to the gateway's `path` (under `GATEWAY_PATH`), logging it as
    /// `what` and the answer as "answer to `what`" in the message log.
    async fn post_document(
        &self,
        gateway: &str,
        path: &str,
        what: String,
        document: Vec<u8>,
    ) -> Result<(StatusCode, Vec<u8>), String> {
        self.record("sent", what.clone(), &document);
        let (status, body) = self
            .send(
                gateway,
                Method::POST,
                &format!("{GATEWAY_PATH}{path}"),
                document,
            )
            .await?;
        self.record("received", format!("answer to {what}"), &body);
        Ok((status, body))
    }

    /// A signed request to the gateway (`path_and_query` under its base URL); the answer's
    /// status and body, its signature checked.
    async fn send(
        &self,
        gateway: &str,
        method: Method,
        path_and_query: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Vec<u8>), String> {
        let url = format!("{}{path_and_query}", gateway.trim_end_matches('/'));
        let t = target(&url)?;
        let mut headers = Vec::new();
        if let Some((version, key)) = &self.key {
            let time = request_time(SystemTime::now());
            let sig = sign_request_hmac(
                key,
                *version,
                method.as_str(),
                &t.path,
                &self.client_id,
                &time,
                &body,
            );
            headers.push(("client-id", self.client_id.clone()));
            headers.push(("request-time", time));
            headers.push(("signature", sig));
        }
        let signed_path = t.path.clone();
        let answer = self
            .http
            .send(OutboundRequest {
                method: method.clone(),
                target: t,
                content_type: (method == Method::POST).then_some("application/xml"),
                headers,
                body,
            })
            .await
            .map_err(|e| format!("{path_and_query}: {e}"))?;
        // Refusals decided before authentication (401, 404, 405, 413) are not signed (spec §2).
        let unsigned = matches!(answer.status.as_u16(), 401 | 404 | 405 | 413);
        if let Some((_, key)) = &self.key
            && !unsigned
        {
            let h = |n: &str| {
                answer
                    .headers
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            verify_response_hmac(
                key,
                method.as_str(),
                &signed_path,
                &self.client_id,
                &h("response-time"),
                &h("signature"),
                &answer.body,
            )
            .map_err(|e| {
                format!(
                    "{path_and_query}: HTTP {}: the answer's signature does not verify ({e}); not acted on",
                    answer.status
                )
            })?;
        }
        Ok((answer.status, answer.body.to_vec()))
    }

    /// `POST /sim/pay`: the quote, the debit, the pacs.008, the pacs.002.
    async fn pay(&self, v: &Value) -> Result<Value, String> {
        let gateway = v["gateway"].as_str().ok_or("gateway missing")?;
        let code = v["codeValue"].as_str().ok_or("codeValue missing")?;
        let customer = v["customerId"].as_str().unwrap_or("my-customer-1");
        let source = v["sourceCurrency"].as_str().unwrap_or("MYR");
        let mut query = format!(
            "{GATEWAY_PATH}/quotes?codeValue={}&customerId={}&sourceCurrency={}",
            form_encode(code),
            form_encode(customer),
            form_encode(source)
        );
        if let Some(amount) = v["amount"].as_str() {
            let dest = v["destinationCurrency"].as_str().unwrap_or("SGD");
            query.push_str(&format!(
                "&amount={}&destinationCurrency={}",
                form_encode(amount),
                form_encode(dest)
            ));
        }
        let (status, body) = self.send(gateway, Method::GET, &query, Vec::new()).await?;
        if status != StatusCode::OK {
            return Ok(json!({"quoted": false, "http": status.as_u16(),
                             "answer": String::from_utf8_lossy(&body)}));
        }
        let quote: Iso20022Quote =
            serde_json::from_slice(&body).map_err(|e| format!("the quote is not one: {e}"))?;
        let (_, debit) = minor(&quote.instructed_amount.ccy, &quote.instructed_amount.value)?;
        let uetr = qrbridge::telemetry::random::uuid_v4().ok_or("no random bytes")?;
        let msg_id = self.next_id("P");
        let end_to_end_id = format!("E2E{}", &msg_id[3..]);
        let document = self.pacs008(&msg_id, &end_to_end_id, &uetr, &quote, customer);
        // The payer is debited before the credit transfer goes out.
        let entry = Entry {
            uetr: uetr.clone(),
            msg_id: msg_id.clone(),
            end_to_end_id,
            quote_id: quote.quote_id.clone(),
            customer_id: customer.to_owned(),
            currency: quote.instructed_amount.ccy.clone(),
            debited: debit,
            credited: 0,
            merchant_amount: json!(
                quote
                    .destination_amount
                    .as_ref()
                    .unwrap_or(&quote.interbank_settlement_amount)
            ),
            state: "PENDING".to_owned(),
            last_status: String::new(),
            clr_sys_ref: None,
            returns: Vec::new(),
        };
        if let Ok(mut books) = self.books.lock() {
            if books.entries.len() >= MAX_ENTRIES {
                books.entries.pop_front();
            }
            books.entries.push_back(entry);
        }
        let sent = self
            .post_document(gateway, "/payments", format!("pay {uetr}"), document)
            .await;
        let mut out = json!({"quoted": true, "quote": quote, "uetr": uetr, "msgId": msg_id,
                             "debited": {"ccy": quote.instructed_amount.ccy,
                                         "value": quote.instructed_amount.value}});
        match sent {
            Ok((status, body)) => {
                let (tx_sts, reason) = self.apply_answer(&uetr, &body, true);
                out["http"] = json!(status.as_u16());
                out["txSts"] = json!(tx_sts);
                out["reason"] = json!(reason);
            }
            // Sent or maybe sent: the payment stays PENDING until a pacs.028 or a notification.
            Err(e) => out["error"] = json!(e),
        }
        out["entry"] = self.entry(&uetr);
        Ok(out)
    }

    /// Reads the gateway's pacs.002 answer about `uetr` and applies it. A group-level refusal
    /// of the pacs.008 (`first`: the payment's own answer) means it was not read: nothing paid.
    fn apply_answer(&self, uetr: &str, body: &[u8], first: bool) -> (String, Option<String>) {
        let Ok(doc) = iso::parse_pacs002(body) else {
            return ("?".to_owned(), None);
        };
        let (tx_sts, reason, about) = status_of(&doc);
        let reference = doc
            .report
            .tx_inf_and_sts
            .as_ref()
            .and_then(|t| t.clr_sys_ref.clone());
        match about {
            Some(u) if u == uetr => {
                self.with_entry(Some(uetr), |e| {
                    e.apply(&tx_sts, reason.as_deref());
                    if reference.is_some() {
                        e.clr_sys_ref = reference;
                    }
                });
            }
            None if first && tx_sts == "RJCT" => {
                self.with_entry(Some(uetr), |e| e.apply("RJCT", reason.as_deref()));
            }
            _ => {}
        }
        (tx_sts, reason)
    }

    /// `uetr`, or for `last` the UETR of the latest payment.
    fn uetr(&self, uetr: &str) -> Result<String, String> {
        if uetr != "last" {
            return Ok(uetr.to_owned());
        }
        self.books
            .lock()
            .ok()
            .and_then(|b| b.entries.back().map(|e| e.uetr.clone()))
            .ok_or_else(|| "no payment yet".to_owned())
    }

    /// The original references (OrgnlGrpInf, OrgnlEndToEndId) of the payment `uetr` names, for a
    /// pacs.028 or camt.056 TxInf; empty when the ledger does not hold it.
    fn original_refs(&self, uetr: &str) -> String {
        match self.with_entry(Some(uetr), |e| (e.msg_id.clone(), e.end_to_end_id.clone())) {
            Some((m, e2e)) => format!(
                "<OrgnlGrpInf><OrgnlMsgId>{}</OrgnlMsgId><OrgnlMsgNmId>{}</OrgnlMsgNmId></OrgnlGrpInf><OrgnlEndToEndId>{}</OrgnlEndToEndId>",
                esc(&m),
                self.profile.pacs008_message(),
                esc(&e2e)
            ),
            None => String::new(),
        }
    }

    /// `POST /sim/status`: a pacs.028 for `uetr`.
    async fn status(&self, v: &Value) -> Result<Value, String> {
        let gateway = v["gateway"].as_str().ok_or("gateway missing")?;
        let uetr = self.uetr(v["uetr"].as_str().ok_or("uetr missing")?)?;
        let uetr = uetr.as_str();
        let msg_id = self.next_id("S");
        let original = self.original_refs(uetr);
        let document = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{NS}pacs.028.001.03"><FIToFIPmtStsReq><GrpHdr><MsgId>{msg_id}</MsgId><CreDtTm>{t}</CreDtTm></GrpHdr><TxInf>{original}<OrgnlUETR>{u}</OrgnlUETR></TxInf></FIToFIPmtStsReq></Document>
"#,
            t = now(),
            u = esc(uetr)
        )
        .into_bytes();
        let (status, body) = self
            .post_document(
                gateway,
                "/payments/status",
                format!("status {uetr}"),
                document,
            )
            .await?;
        let (tx_sts, reason) = self.apply_answer(uetr, &body, false);
        Ok(
            json!({"uetr": uetr, "http": status.as_u16(), "txSts": tx_sts, "reason": reason,
                  "entry": self.entry(uetr)}),
        )
    }

    /// `POST /sim/cancel`: a camt.056 for `uetr`. A camt.029 `CNCL` says the cancellation is
    /// accepted; the payer is credited when the funds come back (the gateway's pacs.004 `FOCR`).
    async fn cancel(&self, v: &Value) -> Result<Value, String> {
        let gateway = v["gateway"].as_str().ok_or("gateway missing")?;
        let uetr = self.uetr(v["uetr"].as_str().ok_or("uetr missing")?)?;
        let uetr = uetr.as_str();
        let id = self.next_id("C");
        let original = self.original_refs(uetr);
        let document = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{NS}camt.056.001.08"><FIToFIPmtCxlReq><Assgnmt><Id>{id}</Id><Assgnr><Agt><FinInstnId><BICFI>{bic}</BICFI></FinInstnId></Agt></Assgnr><Assgne><Agt><FinInstnId><Nm>QRBRIDGE</Nm></FinInstnId></Agt></Assgne><CreDtTm>{t}</CreDtTm></Assgnmt><Undrlyg><TxInf><CxlId>{id}</CxlId>{original}<OrgnlUETR>{u}</OrgnlUETR><CxlRsnInf><Rsn><Cd>CUST</Cd></Rsn></CxlRsnInf></TxInf></Undrlyg></FIToFIPmtCxlReq></Document>
"#,
            bic = esc(&self.bic),
            t = now(),
            u = esc(uetr)
        )
        .into_bytes();
        let (status, body) = self
            .post_document(
                gateway,
                "/cancellations",
                format!("cancel {uetr}"),
                document,
            )
            .await?;
        let (conf, tx_cxl_sts, reason) = match iso::parse_camt029(&body) {
            Ok(doc) => {
                let tx = &doc.resolution.cxl_dtls.tx;
                let reason = tx
                    .cxl_sts_rsn_inf
                    .as_ref()
                    .and_then(|r| r.rsn.as_ref())
                    .and_then(|r| r.code())
                    .map(str::to_owned);
                if tx.orgnl_uetr == uetr {
                    self.with_entry(Some(uetr), |e| {
                        // CNCL: the cancellation is accepted; the funds come back with the
                        // gateway's pacs.004 (FOCR), which credits the payer.
                        e.last_status = format!("camt.029 {}", doc.resolution.sts.conf);
                    });
                }
                (
                    doc.resolution.sts.conf.clone(),
                    tx.tx_cxl_sts.clone(),
                    reason,
                )
            }
            Err(_) => {
                // A group-level pacs.002 refusal of the camt.056.
                let (sts, reason) = self.apply_answer(uetr, &body, false);
                (sts, String::new(), reason)
            }
        };
        Ok(
            json!({"uetr": uetr, "http": status.as_u16(), "conf": conf, "txCxlSts": tx_cxl_sts,
                  "reason": reason, "entry": self.entry(uetr)}),
        )
    }

    /// The pacs.008 paying `quote`, in the client's profile: CBPR+ (pacs.008.001.08, settlement
    /// in the merchant's currency) or Nexus (pacs.008.001.11, settlement in the payer's).
    fn pacs008(
        &self,
        msg_id: &str,
        end_to_end_id: &str,
        uetr: &str,
        quote: &Iso20022Quote,
        customer: &str,
    ) -> Vec<u8> {
        let t = now();
        let version = self.profile.pacs008_message();
        let (pmt_id, chrg_br) = match self.profile {
            Iso20022Profile::Cbpr => (
                format!("<EndToEndId>{end_to_end_id}</EndToEndId><UETR>{uetr}</UETR>"),
                "SLEV",
            ),
            // The guidelines' PmtId carries InstrId and TxId too, and charges are shared.
            Iso20022Profile::Nexus => (
                format!(
                    "<InstrId>{msg_id}</InstrId><EndToEndId>{end_to_end_id}</EndToEndId><TxId>{msg_id}</TxId><UETR>{uetr}</UETR>"
                ),
                "SHAR",
            ),
        };
        let amt =
            |a: &iso::Iso20022JsonAmount| format!("Ccy=\"{}\">{}", esc(&a.ccy), esc(&a.value));
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{NS}{version}"><FIToFICstmrCdtTrf><GrpHdr><MsgId>{msg_id}</MsgId><CreDtTm>{t}</CreDtTm><NbOfTxs>1</NbOfTxs><SttlmInf><SttlmMtd>CLRG</SttlmMtd></SttlmInf></GrpHdr><CdtTrfTxInf><PmtId>{pmt_id}</PmtId><IntrBkSttlmAmt {sttlm}</IntrBkSttlmAmt><AccptncDtTm>{t}</AccptncDtTm><InstdAmt {instd}</InstdAmt><XchgRate>{rate}</XchgRate><ChrgBr>{chrg_br}</ChrgBr><Dbtr><Nm>{debtor}</Nm></Dbtr><DbtrAcct><Id><Othr><Id>{customer}</Id></Othr></Id></DbtrAcct><DbtrAgt><FinInstnId><BICFI>{bic}</BICFI></FinInstnId></DbtrAgt><CdtrAgt><FinInstnId/></CdtrAgt><Cdtr><Nm>{name}</Nm></Cdtr><CdtrAcct><Id><Othr><Id>{account}</Id></Othr></Id></CdtrAcct><RmtInf><Strd><AddtlRmtInf>{rmt}</AddtlRmtInf></Strd></RmtInf></CdtTrfTxInf></FIToFICstmrCdtTrf></Document>
"#,
            sttlm = amt(&quote.interbank_settlement_amount),
            instd = amt(&quote.instructed_amount),
            rate = esc(&quote.exchange_rate),
            debtor = esc(&format!("PAYER {customer}")),
            customer = esc(customer),
            bic = esc(&self.bic),
            name = esc(&quote.creditor.name),
            account = esc(&quote.creditor.account),
            rmt = esc(&quote.remittance_information),
        )
        .into_bytes()
    }

    // -----------------------------------------------------------------------------------------
    // Control.

    fn set_mode(&self, v: &Value) -> Result<Value, String> {
        let mut m = self
            .mode
            .lock()
            .map_err(|_| "mode unavailable".to_owned())?;
        if let Some(r) = v["returns"].as_str() {
            m.returns = return_status(r)?;
        }
        if let Some(r) = v["rejectReason"].as_str() {
            m.reject_reason = reason_code(r)?;
        }
        if let Some(d) = v["delayMs"].as_u64() {
            m.delay = Duration::from_millis(d.min(120_000));
        }
        if let Some(d) = v["down"].as_bool() {
            m.down = d;
        }
        Ok(
            json!({"returns": m.returns.as_str(), "rejectReason": m.reject_reason,
                  "delayMs": u64::try_from(m.delay.as_millis()).unwrap_or(u64::MAX),
                  "down": m.down}),
        )
    }

    fn entry(&self, uetr: &str) -> Value {
        self.with_entry(Some(uetr), |e| json!(e))
            .unwrap_or(Value::Null)
    }

    fn ledger(&self) -> Value {
        let Ok(books) = self.books.lock() else {
            return json!({"error": "ledger unavailable"});
        };
        let mut net: BTreeMap<String, i128> = BTreeMap::new();
        for e in &books.entries {
            *net.entry(e.currency.clone()).or_insert(0) +=
                i128::from(e.debited) - i128::from(e.credited);
        }
        json!({"entries": books.entries, "netDebited": net,
               "unmatchedNotifications": books.unmatched_notifications,
               "refusedReturns": books.refused_returns,
               "badSignatures": books.bad_signatures})
    }

    fn messages(&self) -> Value {
        match self.log.lock() {
            Ok(log) => json!({"messages": log.docs, "dropped": log.dropped}),
            Err(_) => json!({"messages": [], "dropped": 0}),
        }
    }
}

/// A request to a running wallet's control endpoints (an answer within 90 s, its message log up
/// to 64 MiB).
async fn call(wallet: &str, method: Method, path: &str, body: &Value) -> Result<Value, String> {
    super::call(
        wallet,
        method,
        path,
        body,
        Duration::from_secs(90),
        Some(64 << 20),
    )
    .await
}

fn show_entry(e: &Value) {
    if e.is_null() {
        return;
    }
    let ccy = e["currency"].as_str().unwrap_or("?");
    let amount = |k: &str| decimal(ccy, e[k].as_u64().unwrap_or(0));
    println!(
        "  ledger: {} {} debited, {} credited · {}",
        ccy,
        amount("debited"),
        amount("credited"),
        e["state"].as_str().unwrap_or("?")
    );
}

async fn pay(a: PayArgs) -> Result<(), String> {
    let mut body = json!({"gateway": a.gateway, "codeValue": a.code, "customerId": a.customer,
                          "sourceCurrency": a.currency});
    if let Some(amount) = &a.amount {
        body["amount"] = json!(amount);
        body["destinationCurrency"] = json!(a.destination_currency);
    }
    let v = call(&a.wallet, Method::POST, "/sim/pay", &body).await?;
    if v["quoted"] != true {
        println!("quote refused: HTTP {} {}", v["http"], v["answer"]);
        println!("result {v}");
        return Err("no quote".to_owned());
    }
    let q = &v["quote"];
    let s = |x: &Value| x.as_str().unwrap_or("?").to_owned();
    println!(
        "quote {}: pay {} {} · {} at {} · {}",
        s(&q["quoteId"]),
        s(&q["instructedAmount"]["ccy"]),
        s(&q["instructedAmount"]["value"]),
        q.get("destinationAmount")
            .map(|d| format!("{} {}", s(&d["ccy"]), s(&d["value"])))
            .unwrap_or_else(|| format!(
                "{} {}",
                s(&q["interbankSettlementAmount"]["ccy"]),
                s(&q["interbankSettlementAmount"]["value"])
            )),
        s(&q["exchangeRate"]),
        s(&q["creditor"]["name"]),
    );
    match v.get("error") {
        Some(e) => println!(
            "pacs.008 {} uetr {}: not answered: {e}",
            s(&v["msgId"]),
            s(&v["uetr"])
        ),
        None => println!(
            "pacs.008 {} uetr {}: HTTP {} pacs.002 {}{}",
            s(&v["msgId"]),
            s(&v["uetr"]),
            v["http"],
            s(&v["txSts"]),
            v["reason"]
                .as_str()
                .map(|r| format!(" {r}"))
                .unwrap_or_default()
        ),
    }
    show_entry(&v["entry"]);
    println!("result {v}");
    Ok(())
}

async fn tx_call(a: TxArgs, path: &str) -> Result<(), String> {
    let v = call(
        &a.wallet,
        Method::POST,
        path,
        &json!({"gateway": a.gateway, "uetr": a.uetr}),
    )
    .await?;
    let s = |x: &Value| x.as_str().unwrap_or("").to_owned();
    if path == "/sim/cancel" {
        println!(
            "camt.056 uetr {}: HTTP {} camt.029 {} {} {}",
            a.uetr,
            v["http"],
            s(&v["conf"]),
            s(&v["txCxlSts"]),
            s(&v["reason"])
        );
    } else {
        println!(
            "pacs.028 uetr {}: HTTP {} pacs.002 {} {}",
            s(&v["uetr"]),
            v["http"],
            s(&v["txSts"]),
            s(&v["reason"])
        );
    }
    show_entry(&v["entry"]);
    println!("result {v}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            uetr: "u".to_owned(),
            msg_id: "m".to_owned(),
            end_to_end_id: "e".to_owned(),
            quote_id: "q".to_owned(),
            customer_id: "c".to_owned(),
            currency: "MYR".to_owned(),
            debited: 4042,
            credited: 0,
            merchant_amount: Value::Null,
            state: "PENDING".to_owned(),
            last_status: String::new(),
            clr_sys_ref: None,
            returns: Vec::new(),
        }
    }

    #[test]
    fn a_rejected_payment_gives_the_payer_back_once_and_a_settled_one_keeps_the_debit() {
        let mut e = entry();
        e.apply("PDNG", None);
        assert_eq!((e.state.as_str(), e.credited), ("PENDING", 0));
        e.apply("RJCT", Some("AM04"));
        assert_eq!((e.state.as_str(), e.credited), ("REJECTED", 4042));
        // A second RJCT (the notification after the answer) does not credit again.
        e.apply("RJCT", Some("AB03"));
        assert_eq!((e.state.as_str(), e.credited), ("REJECTED", 4042));
        let mut e = entry();
        e.apply("ACCC", None);
        assert_eq!((e.state.as_str(), e.credited), ("SETTLED", 0));
        // A settled payment is not rejected by a stray RJCT, only cancelled (FOCR).
        e.apply("RJCT", Some("AM04"));
        assert_eq!(e.state, "SETTLED");
        e.apply("RJCT", Some("FOCR"));
        assert_eq!((e.state.as_str(), e.credited), ("CANCELLED", 4042));
    }

    #[test]
    fn the_message_is_named_by_its_namespace() {
        assert_eq!(
            message_of(b"<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.004.001.09\">"),
            "pacs.004.001.09"
        );
        assert_eq!(message_of(b"<Document>"), "?");
    }

    #[test]
    fn reject_reasons_come_from_a_fixed_list() {
        assert_eq!(reason_code("AC06"), Ok("AC06"));
        assert!(reason_code("ac04").is_err());
        assert!(reason_code("ZZZZ").is_err());
    }
}
