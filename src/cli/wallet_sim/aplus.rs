//! `qrbridge wallet-sim aplus`: an Alipay+ MPP wallet (Mobile Payment Provider) for the gateway's
//! `aplus` scheme (spec/schemes/aplus.md).
//!
//! `serve` runs the wallet: its side of the Alipay+ MPP API (`cancelPayment`, `refund`,
//! `inquiryPayment` under `/aps/api/v1/payments/`, the gateway's `wallet_api_url`), a bounded
//! in-memory ledger of its users' money, and control endpoints: `POST /sim/scan` (the user scans a
//! code: userInitiatedPay to the gateway, the order shown, the user debited, notifyPayment),
//! `GET /sim/ledger`, `POST /sim/mode` (answer S / F / U, be slow, be down, answer inquiries
//! "still processing"). A scan may also debit without notifying (`silent`: the gateway must
//! inquire) or be abandoned (no debit, no notification).
//! `pay` asks a running wallet to scan a code and prints the order and the gateway's answers;
//! `ledger` prints its ledger.
//!
//! With `--key` the wallet signs its requests and answers (RSA256); with `--gateway-key` it
//! verifies the gateway's calls. Without them (the embedded demo, authentication off) nothing is
//! signed.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use qrbridge::http_client::{HttpClient, OutboundRequest, target};
use qrbridge::scheme::aplus::sign::{
    AplusPublicKey, AplusSignatureHeader, AplusSigner, format_time, string_to_sign,
};
use serde_json::{Value, json};

/// Where the wallet's APIs live on its server.
pub const API_PATH: &str = "/aps/api/v1/payments/";
/// The gateway's aplus APIs, after its base URL.
const GATEWAY_PATH: &str = "/schemes/aplus/aps/api/v1/payments/";
/// The most ledger entries kept (the oldest go first).
const MAX_ENTRIES: usize = 10_000;
/// The largest request body read.
const MAX_BODY: usize = 64 * 1024;

/// `qrbridge wallet-sim aplus ...`
#[derive(clap::Subcommand)]
pub enum AplusCommand {
    /// Run the wallet (its APIs, its ledger, the control endpoints) until Ctrl-C.
    Serve(ServeArgs),
    /// Ask a running wallet to scan a code: userInitiatedPay, show the order, debit, notify.
    Pay(PayArgs),
    /// Ask a running wallet to send (again) its notifyPayment for a payment it debited (the
    /// Alipay+ docs have the wallet repeat it until the answer is S; after `pay --result
    /// silent`, the notification that was lost).
    Notify {
        /// The wallet (`http://127.0.0.1:8090`).
        #[arg(long, default_value = "http://127.0.0.1:8090")]
        wallet: String,
        /// The gateway's address.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        gateway: String,
        /// Our order's id (from the gateway's userInitiatedPay answer).
        #[arg(long)]
        payment_request_id: String,
    },
    /// Print a running wallet's ledger (JSON).
    Ledger {
        /// The wallet (`http://127.0.0.1:8090`).
        #[arg(long, default_value = "http://127.0.0.1:8090")]
        wallet: String,
    },
    /// Stop a running wallet (it prints its ledger as it stops).
    Stop {
        /// The wallet (`http://127.0.0.1:8090`).
        #[arg(long, default_value = "http://127.0.0.1:8090")]
        wallet: String,
    },
}

/// `serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Listen here (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The wallet's client id at the gateway.
    #[arg(long, default_value = "demo-wallet")]
    client_id: String,
    /// The wallet's RSA private key (PEM): signs its requests and its answers. None: unsigned.
    #[arg(long)]
    key: Option<PathBuf>,
    /// The keyVersion the gateway knows the wallet's key by.
    #[arg(long, default_value_t = 1)]
    key_version: u32,
    /// The gateway's RSA public key (PEM): the gateway's calls must verify. None: not checked.
    #[arg(long)]
    gateway_key: Option<PathBuf>,
    /// How the wallet answers the gateway's calls: S, F or U.
    #[arg(long, default_value = "S")]
    answer: String,
    /// Answer after this many milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Start down (HTTP 503 to every call) until `POST /sim/mode {"down": false}`.
    #[arg(long)]
    down: bool,
    /// Stop after this many seconds instead of waiting for Ctrl-C.
    #[arg(long)]
    stop_after: Option<u64>,
}

/// `pay`.
#[derive(clap::Args)]
pub struct PayArgs {
    /// The running wallet (`qrbridge wallet-sim aplus serve`).
    #[arg(long, default_value = "http://127.0.0.1:8090")]
    wallet: String,
    /// The gateway's address; the wallet's Alipay+ base URL is this + `/schemes/aplus`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
    /// The scanned code.
    #[arg(long)]
    code: String,
    /// The user.
    #[arg(long, default_value = "my-customer-1")]
    customer: String,
    /// What the wallet does: S (it debits its user and notifies), F (it does not debit, and
    /// notifies F), `silent` (it debits its user but its notification never leaves: the gateway
    /// must inquire), `abandon` (the user walks away: no debit, no notification).
    #[arg(long, default_value = "S")]
    result: String,
}

/// How the wallet behaves towards the gateway's calls.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mode {
    answer: String,
    /// `processing`: inquiryPayment answers that the payment is still in process (result S,
    /// paymentResult U), whatever the ledger says; `ledger` (default): what the ledger says.
    inquiry: String,
    delay: Duration,
    down: bool,
}

/// One payment order in the wallet's books.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    payment_request_id: String,
    payment_id: String,
    customer_id: String,
    currency: String,
    /// Debited from the user (minor units).
    debited: u64,
    /// Given back (cancel, refunds).
    credited: u64,
    /// DEBITED, NOT_DEBITED, CANCELLED.
    state: String,
    refunds: Vec<String>,
}

struct Wallet {
    client_id: String,
    key: Option<(u32, AplusSigner)>,
    gateway_key: Option<AplusPublicKey>,
    mode: Mutex<Mode>,
    entries: Mutex<VecDeque<Entry>>,
    http: HttpClient,
    seq: std::sync::atomic::AtomicU64,
    stop: tokio::sync::Notify,
}

/// Runs the command.
pub fn run(cmd: AplusCommand) -> ExitCode {
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
        AplusCommand::Serve(a) => rt.block_on(serve(a)),
        AplusCommand::Pay(a) => rt.block_on(pay(a)),
        AplusCommand::Notify {
            wallet,
            gateway,
            payment_request_id,
        } => rt.block_on(async move {
            let v = call(
                &wallet,
                Method::POST,
                "/sim/notify",
                &json!({"gateway": gateway, "paymentRequestId": payment_request_id}),
            )
            .await?;
            println!("sent notifyPayment {}", v["sent"]);
            println!(
                "notifyPayment {payment_request_id} (paymentId {}): {}",
                v["sent"]["paymentId"].as_str().unwrap_or("?"),
                v["notify"]["result"]["resultStatus"]
                    .as_str()
                    .unwrap_or("?")
            );
            println!("answer notifyPayment {}", v["notify"]);
            Ok(())
        }),
        AplusCommand::Ledger { wallet } => rt.block_on(async move {
            let v = call(&wallet, Method::GET, "/sim/ledger", &Value::Null).await?;
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(())
        }),
        AplusCommand::Stop { wallet } => rt.block_on(async move {
            call(&wallet, Method::POST, "/sim/stop", &json!({})).await?;
            println!("stopped {wallet}");
            Ok(())
        }),
    };
    super::exit(done)
}

fn read_pem(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

async fn serve(a: ServeArgs) -> Result<(), String> {
    if !["S", "F", "U"].contains(&a.answer.as_str()) {
        return Err(format!("--answer {:?}: S, F or U", a.answer));
    }
    let key = match &a.key {
        Some(p) => Some((a.key_version, AplusSigner::from_pem(&read_pem(p)?)?)),
        None => None,
    };
    let gateway_key = match &a.gateway_key {
        Some(p) => Some(AplusPublicKey::from_pem(&read_pem(p)?)?),
        None => None,
    };
    let wallet = Arc::new(Wallet {
        client_id: a.client_id,
        key,
        gateway_key,
        mode: Mutex::new(Mode {
            answer: a.answer,
            inquiry: "ledger".to_owned(),
            delay: Duration::from_millis(a.delay_ms),
            down: a.down,
        }),
        entries: Mutex::new(VecDeque::new()),
        http: HttpClient::new(None).with_timeouts(Duration::from_secs(5), Duration::from_secs(30)),
        seq: std::sync::atomic::AtomicU64::new(1),
        stop: tokio::sync::Notify::new(),
    });
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .map_err(|e| format!("{}: {e}", a.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("aplus wallet simulator listening on {addr}");
    println!("wallet APIs (the gateway's wallet_api_url): http://{addr}{API_PATH}");
    super::serve_until(
        listener,
        wallet.clone(),
        |w, req| async move { w.handle(req).await },
        a.stop_after,
        &wallet.stop,
    )
    .await;
    let ledger = wallet.ledger();
    println!("{}", serde_json::to_string(&ledger).unwrap_or_default());
    Ok(())
}

fn reply(
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    for (k, v) in headers
        .into_iter()
        .chain([("content-type", "application/json; charset=UTF-8".to_owned())])
    {
        if let Ok(v) = v.parse() {
            h.insert(k, v);
        }
    }
    r
}

fn result(status: &str, code: &str, message: &str) -> Value {
    json!({"resultStatus": status, "resultCode": code, "resultMessage": message})
}

impl Wallet {
    async fn handle(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        let headers = req.headers().clone();
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes().to_vec(),
            Err(e) => {
                let v = json!({"result": result("F", "PARAM_ILLEGAL", &format!("body: {e}"))});
                return reply(
                    StatusCode::BAD_REQUEST,
                    Vec::new(),
                    v.to_string().into_bytes(),
                );
            }
        };
        if let Some(api) = path.strip_prefix(API_PATH) {
            return self.api(api, &path, &headers, &body).await;
        }
        let parsed = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
        let v = match (method, path.as_str()) {
            (Method::GET, "/sim/ledger") => Ok(self.ledger()),
            (Method::POST, "/sim/mode") => self.set_mode(&parsed()),
            (Method::POST, "/sim/scan") => self.scan(&parsed()).await,
            (Method::POST, "/sim/notify") => self.renotify(&parsed()).await,
            (Method::POST, "/sim/stop") => {
                self.stop.notify_one();
                Ok(json!({"stopping": true}))
            }
            _ => Err(format!("no {path}")),
        };
        match v {
            Ok(v) => reply(StatusCode::OK, Vec::new(), v.to_string().into_bytes()),
            Err(e) => reply(
                StatusCode::BAD_REQUEST,
                Vec::new(),
                json!({ "error": e }).to_string().into_bytes(),
            ),
        }
    }

    /// The wallet's side of the Alipay+ MPP API: a call from the gateway.
    async fn api(
        &self,
        api: &str,
        path: &str,
        headers: &hyper::HeaderMap,
        body: &[u8],
    ) -> Response<Full<Bytes>> {
        let mode = self.mode.lock().map(|m| m.clone()).unwrap_or(Mode {
            answer: "U".to_owned(),
            inquiry: "ledger".to_owned(),
            delay: Duration::ZERO,
            down: true,
        });
        if mode.down {
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                Vec::new(),
                b"down".to_vec(),
            );
        }
        tokio::time::sleep(mode.delay).await;
        let answer = match self.verify(path, headers, body) {
            Err(e) => json!({"result": result("F", "INVALID_SIGNATURE", &e)}),
            Ok(()) => {
                let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                match mode.answer.as_str() {
                    "F" => {
                        json!({"result": result("F", "PROCESS_FAIL", "the simulator answers F")})
                    }
                    "U" => {
                        json!({"result": result("U", "UNKNOWN_EXCEPTION", "the simulator answers U")})
                    }
                    _ if api == "inquiryPayment" && mode.inquiry == "processing" => {
                        json!({"result": result("S", "SUCCESS", "success"),
                               "paymentResult": result("U", "PAYMENT_IN_PROCESS", "in process"),
                               "paymentRequestId": v["paymentRequestId"]})
                    }
                    _ => self.apply(api, &v),
                }
            }
        };
        let body = answer.to_string().into_bytes();
        let headers = self.sign(path, "response-time", &body);
        reply(StatusCode::OK, headers, body)
    }

    fn verify(&self, path: &str, headers: &hyper::HeaderMap, body: &[u8]) -> Result<(), String> {
        let Some(key) = &self.gateway_key else {
            return Ok(());
        };
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .ok_or(format!("no {n} header"))
        };
        let sig = AplusSignatureHeader::parse(h("signature")?).map_err(|e| e.to_string())?;
        let signed = string_to_sign("POST", path, h("client-id")?, h("request-time")?, body);
        if key.verify(&signed, &sig.signature) {
            Ok(())
        } else {
            Err("the gateway's signature does not verify".to_owned())
        }
    }

    fn sign(
        &self,
        path: &str,
        time_header: &'static str,
        body: &[u8],
    ) -> Vec<(&'static str, String)> {
        let Some((version, key)) = &self.key else {
            return Vec::new();
        };
        key.signed_headers(*version, "POST", path, &self.client_id, time_header, body)
            .unwrap_or_default()
    }

    /// cancelPayment gives the user back what was debited (whatever the order's status, as the
    /// docs require); refund credits `refundToAmount` once per refundRequestId; inquiryPayment
    /// says what the wallet did.
    fn apply(&self, api: &str, v: &Value) -> Value {
        let id = v["paymentRequestId"].as_str().unwrap_or("");
        let Ok(mut entries) = self.entries.lock() else {
            return json!({"result": result("U", "UNKNOWN_EXCEPTION", "ledger unavailable")});
        };
        let entry = entries.iter_mut().find(|e| e.payment_request_id == id);
        match (api, entry) {
            ("cancelPayment", Some(e)) => {
                if e.state == "DEBITED" {
                    e.credited = e.debited;
                    e.state = "CANCELLED".to_owned();
                    println!(
                        "cancelPayment {id}: {} {} back to {}",
                        e.currency, e.debited, e.customer_id
                    );
                }
                json!({"result": result("S", "SUCCESS", "success")})
            }
            // Nothing debited for an order the wallet never saw: nothing to give back.
            ("cancelPayment", None) => {
                json!({"result": result("S", "SUCCESS", "no such payment: nothing to cancel")})
            }
            ("refund", Some(e)) => {
                let refund = v["refundRequestId"].as_str().unwrap_or("").to_owned();
                let amount: u64 = v["refundToAmount"]["value"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if !e.refunds.contains(&refund) && e.credited + amount <= e.debited {
                    e.refunds.push(refund.clone());
                    e.credited += amount;
                    println!(
                        "refund {refund} of {id}: {} {amount} to {}",
                        e.currency, e.customer_id
                    );
                }
                json!({"result": result("S", "SUCCESS", "success"), "refundId": format!("w-{refund}")})
            }
            ("refund", None) => {
                json!({"result": result("F", "ORDER_NOT_EXIST", "no such payment")})
            }
            ("inquiryPayment", Some(e)) => {
                let paid = if e.state == "DEBITED" {
                    result("S", "SUCCESS", "debited")
                } else {
                    result("F", "ORDER_IS_CLOSED", &e.state)
                };
                json!({"result": result("S", "SUCCESS", "success"), "paymentResult": paid,
                       "paymentId": e.payment_id, "paymentRequestId": id})
            }
            ("inquiryPayment", None) => {
                json!({"result": result("F", "ORDER_NOT_EXIST", "no such payment")})
            }
            _ => json!({"result": result("F", "INVALID_API", &format!("no API {api}"))}),
        }
    }

    fn set_mode(&self, v: &Value) -> Result<Value, String> {
        let mut m = self
            .mode
            .lock()
            .map_err(|_| "mode unavailable".to_owned())?;
        if let Some(a) = v["answer"].as_str() {
            if !["S", "F", "U"].contains(&a) {
                return Err(format!("answer {a:?}: S, F or U"));
            }
            m.answer = a.to_owned();
        }
        if let Some(i) = v["inquiry"].as_str() {
            if !["ledger", "processing"].contains(&i) {
                return Err(format!("inquiry {i:?}: ledger or processing"));
            }
            m.inquiry = i.to_owned();
        }
        if let Some(d) = v["delayMs"].as_u64() {
            m.delay = Duration::from_millis(d.min(120_000));
        }
        if let Some(d) = v["down"].as_bool() {
            m.down = d;
        }
        Ok(
            json!({"answer": m.answer, "inquiry": m.inquiry, "delayMs": m.delay.as_millis() as u64, "down": m.down}),
        )
    }

    fn ledger(&self) -> Value {
        let entries: Vec<Entry> = self
            .entries
            .lock()
            .map(|e| e.iter().cloned().collect())
            .unwrap_or_default();
        let mut net: BTreeMap<String, i64> = BTreeMap::new();
        for e in &entries {
            let n = net.entry(e.currency.clone()).or_insert(0);
            *n += i64::try_from(e.debited).unwrap_or(i64::MAX)
                - i64::try_from(e.credited).unwrap_or(i64::MAX);
        }
        json!({"entries": entries, "netDebited": net})
    }

    /// The user scans: userInitiatedPay, the order shown, the user debited (result S), notifyPayment.
    async fn scan(&self, v: &Value) -> Result<Value, String> {
        let gateway = v["gateway"].as_str().ok_or("gateway missing")?;
        let code = v["codeValue"].as_str().ok_or("codeValue missing")?;
        let customer = v["customerId"].as_str().unwrap_or("my-customer-1");
        let wanted = v["result"].as_str().unwrap_or("S");
        if !["S", "F", "silent", "abandon"].contains(&wanted) {
            return Err(format!("result {wanted:?}: S, F, silent or abandon"));
        }
        // silent: debited, but the notification never leaves; abandon: the user walks away.
        let debits = matches!(wanted, "S" | "silent");
        let scan = json!({"codeValue": code, "customerId": customer});
        let order = self.post(gateway, "userInitiatedPay", &scan).await?;
        if order["result"]["resultStatus"] != "S" || order.get("paymentRequestId").is_none() {
            return Ok(json!({"order": order, "sent": {"userInitiatedPay": scan}}));
        }
        let id = order["paymentRequestId"].as_str().unwrap_or("").to_owned();
        let currency = order["payToAmount"]["currency"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let debit: u64 = order["payToAmount"]["value"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or("payToAmount unreadable")?;
        if wanted == "abandon" {
            println!(
                "userInitiatedPay {id}: the user walked away (nothing debited, no notification)"
            );
            return Ok(json!({"order": order, "paymentRequestId": id,
                             "sent": {"userInitiatedPay": scan}}));
        }
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let payment_id = format!("{}-{n:08}", self.client_id);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.pop_front();
            }
            let debited = if debits { debit } else { 0 };
            entries.push_back(Entry {
                payment_request_id: id.clone(),
                payment_id: payment_id.clone(),
                customer_id: customer.to_owned(),
                currency,
                debited,
                credited: 0,
                state: if debits { "DEBITED" } else { "NOT_DEBITED" }.to_owned(),
                refunds: Vec::new(),
            });
        }
        if wanted == "silent" {
            println!("userInitiatedPay {id}: debited {debit}; the notification is lost (silent)");
            return Ok(
                json!({"order": order, "paymentRequestId": id, "paymentId": payment_id,
                             "sent": {"userInitiatedPay": scan}}),
            );
        }
        let code = if wanted == "S" {
            "SUCCESS"
        } else {
            "USER_BALANCE_NOT_ENOUGH"
        };
        let notify = json!({
            "paymentRequestId": id,
            "paymentId": payment_id,
            "paymentTime": format_time(SystemTime::now()),
            "paymentResult": result(wanted, code, if wanted == "S" { "success" } else { "not debited" }),
            "paymentAmount": order["paymentAmount"],
            "payToAmount": order["payToAmount"],
            "customerId": customer,
        });
        let notified = self.post(gateway, "notifyPayment", &notify).await?;
        Ok(
            json!({"order": order, "notify": notified, "paymentRequestId": id,
                  "paymentId": payment_id,
                  "sent": {"userInitiatedPay": scan, "notifyPayment": notify}}),
        )
    }

    /// The wallet (re)sends its notifyPayment S for an entry it debited.
    async fn renotify(&self, v: &Value) -> Result<Value, String> {
        let gateway = v["gateway"].as_str().ok_or("gateway missing")?;
        let id = v["paymentRequestId"]
            .as_str()
            .ok_or("paymentRequestId missing")?;
        let entry = self
            .entries
            .lock()
            .map_err(|_| "ledger unavailable".to_owned())?
            .iter()
            .find(|e| e.payment_request_id == id)
            .cloned()
            .ok_or_else(|| format!("no payment {id} in the ledger"))?;
        if entry.state != "DEBITED" {
            return Err(format!(
                "payment {id} is {}: nothing to notify",
                entry.state
            ));
        }
        let notify = json!({
            "paymentRequestId": id,
            "paymentId": entry.payment_id,
            "paymentTime": format_time(SystemTime::now()),
            "paymentResult": result("S", "SUCCESS", "success"),
            "payToAmount": {"currency": entry.currency, "value": entry.debited.to_string()},
            "customerId": entry.customer_id,
        });
        let notified = self.post(gateway, "notifyPayment", &notify).await?;
        Ok(json!({"notify": notified, "sent": notify}))
    }

    async fn post(&self, gateway: &str, api: &str, body: &Value) -> Result<Value, String> {
        let url = format!("{}{GATEWAY_PATH}{api}", gateway.trim_end_matches('/'));
        let t = target(&url)?;
        let bytes = body.to_string().into_bytes();
        let headers = self.sign(&t.path, "request-time", &bytes);
        let answer = self
            .http
            .send(OutboundRequest {
                method: Method::POST,
                target: t,
                content_type: Some("application/json; charset=UTF-8"),
                headers,
                body: bytes,
            })
            .await
            .map_err(|e| format!("{api}: {e}"))?;
        serde_json::from_slice(&answer.body).map_err(|e| format!("{api}: answer not JSON: {e}"))
    }
}

/// A request to a running wallet's control endpoints (an answer within 60 s).
async fn call(wallet: &str, method: Method, path: &str, body: &Value) -> Result<Value, String> {
    super::call(wallet, method, path, body, Duration::from_secs(60), None).await
}

async fn pay(a: PayArgs) -> Result<(), String> {
    let v = call(
        &a.wallet,
        Method::POST,
        "/sim/scan",
        &json!({"gateway": a.gateway, "codeValue": a.code, "customerId": a.customer, "result": a.result}),
    )
    .await?;
    if let Some(sent) = v["sent"].as_object() {
        for (api, body) in sent {
            println!("sent {api} {body}");
        }
    }
    let order = &v["order"];
    println!(
        "userInitiatedPay: {}",
        order["result"]["resultStatus"].as_str().unwrap_or("?")
    );
    if let Some(o) = order.get("order") {
        let amount = |x: &Value| {
            format!(
                "{} {}",
                x["currency"].as_str().unwrap_or("?"),
                x["value"].as_str().unwrap_or("?")
            )
        };
        println!(
            "  order: {} · {} · pay {} (the merchant gets {})",
            o["merchant"]["merchantName"].as_str().unwrap_or("?"),
            o["orderDescription"].as_str().unwrap_or("?"),
            amount(&order["payToAmount"]),
            amount(&order["paymentAmount"]),
        );
    }
    println!("answer userInitiatedPay {order}");
    if let Some(n) = v.get("notify") {
        println!(
            "notifyPayment {} (paymentId {}): {}",
            v["paymentRequestId"].as_str().unwrap_or("?"),
            v["paymentId"].as_str().unwrap_or("?"),
            n["result"]["resultStatus"].as_str().unwrap_or("?")
        );
        println!("answer notifyPayment {n}");
    }
    Ok(())
}
