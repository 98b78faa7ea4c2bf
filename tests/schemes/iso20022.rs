//! The `iso20022` scheme's driver: a wallet that fetches a quote with `GET .../quotes?...` (JSON),
//! builds a pacs.008 from it, posts it and reads the pacs.002; pacs.028 for the status, camt.056
//! to cancel; HMAC-SHA256 request signatures; notifications are pacs.002 (and pacs.004 returns)
//! signed with the wallet's key. Plus the scheme's own end-to-end checks (byte-identical replay,
//! a pacs.008 that disagrees with its quote, the quote's content).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hyper::header::HeaderMap;
use qrbridge::scheme::iso20022::transformers::{
    Iso20022Pacs002, form_encode, parse_camt029, parse_pacs002, parse_pacs004,
};
use qrbridge::scheme::native::auth::{
    Secret, request_time, sign_request_hmac, verify_notification_hmac, verify_response_hmac,
};
use qrbridge::scheme::{Scheme, SchemeSettings};
use serde_json::Value;

use crate::harness::{
    self, APPROVE, CLIENT, CUSTOMER, DECLINE, Driver, Env, Final, Noticed, Paid, Refused,
    SGQR_STATIC, Sfu, Tamper,
};

const KEY: &[u8] = b"test-key-for-wallet-my-32-bytes!";
const QUOTES: &str = "/schemes/iso20022/v1/quotes";
const PAYMENTS: &str = "/schemes/iso20022/v1/payments";
const STATUS: &str = "/schemes/iso20022/v1/payments/status";
const CANCELLATIONS: &str = "/schemes/iso20022/v1/cancellations";
const NS: &str = "urn:iso:std:iso:20022:tech:xsd:";

fn key() -> Secret {
    Secret::new(KEY.to_vec())
}

/// The wallet's request id → a UETR (a version 4 UUID made from a hash of the id).
fn uetr(id: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn now() -> String {
    request_time(SystemTime::now())
}

/// A pacs.008 paying `quote` (the JSON the scheme returned) with UETR `uetr`.
fn pacs008(msg_id: &str, uetr: &str, quote: &Value, settlement: &str) -> Vec<u8> {
    let s = |v: &Value| esc(v.as_str().unwrap());
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{NS}pacs.008.001.08">
  <FIToFICstmrCdtTrf>
    <GrpHdr>
      <MsgId>{msg_id}</MsgId>
      <CreDtTm>2026-11-21T10:40:00Z</CreDtTm>
      <NbOfTxs>1</NbOfTxs>
      <SttlmInf><SttlmMtd>CLRG</SttlmMtd></SttlmInf>
    </GrpHdr>
    <CdtTrfTxInf>
      <PmtId><EndToEndId>E2E-{msg_id}</EndToEndId><UETR>{uetr}</UETR></PmtId>
      <IntrBkSttlmAmt Ccy="{sccy}">{settlement}</IntrBkSttlmAmt>
      <AccptncDtTm>2026-11-21T10:39:58Z</AccptncDtTm>
      <InstdAmt Ccy="{iccy}">{ival}</InstdAmt>
      <XchgRate>{rate}</XchgRate>
      <ChrgBr>SLEV</ChrgBr>
      <Dbtr><Nm>Siti Aminah</Nm></Dbtr>
      <DbtrAcct><Id><Othr><Id>{CUSTOMER}</Id></Othr></Id></DbtrAcct>
      <DbtrAgt><FinInstnId><BICFI>MYWLMYKLXXX</BICFI></FinInstnId></DbtrAgt>
      <CdtrAgt><FinInstnId/></CdtrAgt>
      <Cdtr><Nm>{name}</Nm></Cdtr>
      <CdtrAcct><Id><Othr><Id>{account}</Id></Othr></Id></CdtrAcct>
      <RmtInf><Strd><AddtlRmtInf>{rmt}</AddtlRmtInf></Strd></RmtInf>
    </CdtTrfTxInf>
  </FIToFICstmrCdtTrf>
</Document>
"#,
        sccy = s(&quote["interbankSettlementAmount"]["ccy"]),
        iccy = s(&quote["instructedAmount"]["ccy"]),
        ival = s(&quote["instructedAmount"]["value"]),
        rate = s(&quote["exchangeRate"]),
        name = s(&quote["creditor"]["name"]),
        account = s(&quote["creditor"]["account"]),
        rmt = s(&quote["remittanceInformation"]),
    )
    .into_bytes()
}

fn pacs028(uetr: &str) -> Vec<u8> {
    format!(
        r#"<Document xmlns="{NS}pacs.028.001.03"><FIToFIPmtStsReq><GrpHdr><MsgId>STS-1</MsgId><CreDtTm>{t}</CreDtTm></GrpHdr><TxInf><OrgnlUETR>{uetr}</OrgnlUETR></TxInf></FIToFIPmtStsReq></Document>"#,
        t = now()
    )
    .into_bytes()
}

fn camt056(uetr: &str) -> Vec<u8> {
    format!(
        r#"<Document xmlns="{NS}camt.056.001.08"><FIToFIPmtCxlReq><Assgnmt><Id>CXL-1</Id><Assgnr><Agt><FinInstnId><BICFI>MYWLMYKLXXX</BICFI></FinInstnId></Agt></Assgnr><Assgne><Agt><FinInstnId><Nm>QRBRIDGE</Nm></FinInstnId></Agt></Assgne><CreDtTm>{t}</CreDtTm></Assgnmt><Undrlyg><TxInf><OrgnlUETR>{uetr}</OrgnlUETR><CxlRsnInf><Rsn><Cd>CUST</Cd></Rsn></CxlRsnInf></TxInf></Undrlyg></FIToFIPmtCxlReq></Document>"#,
        t = now()
    )
    .into_bytes()
}

fn sgd(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// A status report's TxSts and reason code (transaction level, else group level).
fn status_and_reason(doc: &Iso20022Pacs002) -> (String, Option<String>) {
    match &doc.report.tx_inf_and_sts {
        Some(tx) => (
            tx.tx_sts.clone(),
            tx.sts_rsn_inf
                .as_ref()
                .and_then(|r| r.rsn.as_ref())
                .and_then(|r| r.code())
                .map(str::to_owned),
        ),
        None => {
            let g = &doc.report.orgnl_grp_inf_and_sts;
            (
                g.grp_sts.clone().unwrap_or_default(),
                g.sts_rsn_inf
                    .as_ref()
                    .and_then(|r| r.rsn.as_ref())
                    .and_then(|r| r.code())
                    .map(str::to_owned),
            )
        }
    }
}

fn final_of(doc: &Iso20022Pacs002) -> Final {
    match status_and_reason(doc) {
        (s, _) if s == "ACCC" => Final::Success,
        (s, _) if s == "PDNG" => Final::Processing,
        (s, Some(r)) if s == "RJCT" && r == "AB03" => Final::Reversed,
        (s, Some(r)) if s == "RJCT" && r == "FOCR" => Final::Cancelled,
        (s, _) if s == "RJCT" => Final::Fail,
        other => panic!("unexpected status {other:?}"),
    }
}

fn sfu(doc: &Iso20022Pacs002) -> Sfu {
    match status_and_reason(doc).0.as_str() {
        "ACCC" => Sfu::S,
        "RJCT" => Sfu::F,
        "PDNG" => Sfu::U,
        other => panic!("TxSts {other:?}"),
    }
}

/// What the wallet sent for one pay: the pacs.008 and the quote it was built from.
#[derive(Clone)]
struct Sent {
    body: Vec<u8>,
    quote: Value,
}

pub struct Iso20022Driver {
    addr: SocketAddr,
    sent: Mutex<HashMap<String, Sent>>,
    /// UETR → the wallet's request id.
    ids: Mutex<HashMap<String, String>>,
    /// Every XML document the gateway sent this wallet (answers, refusals, notifications): all
    /// are validated against their official schema when the driver is dropped.
    emitted: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Iso20022Driver {
    fn record(&self, what: String, headers: &HeaderMap, body: &[u8]) {
        let xml = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/xml"));
        if xml {
            self.emitted.lock().unwrap().push((what, body.to_vec()));
        }
    }
}

impl Drop for Iso20022Driver {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let docs = std::mem::take(&mut *self.emitted.lock().unwrap());
        crate::xsd::assert_valid(&docs);
        eprintln!(
            "iso20022: {} emitted documents checked against their XSD",
            docs.len()
        );
    }
}

/// An answer: status, headers, body.
type Reply = (u16, HeaderMap, Vec<u8>);

impl Iso20022Driver {
    async fn send(&self, method: &str, target: &str, body: &[u8], time: SystemTime) -> Reply {
        let t = request_time(time);
        let sig = sign_request_hmac(&key(), 1, method, target, CLIENT, &t, body);
        self.send_signed(method, target, body, t, sig).await
    }

    async fn send_signed(
        &self,
        method: &str,
        target: &str,
        body: &[u8],
        t: String,
        sig: String,
    ) -> Reply {
        let mut headers = vec![
            ("client-id", CLIENT.to_owned()),
            ("request-time", t),
            ("signature", sig),
        ];
        if method == "POST" {
            headers.push(("content-type", "application/xml".to_owned()));
        }
        let (status, h, bytes) = harness::http(self.addr, method, target, &headers, body).await;
        self.record(format!("{method} {target} → {status}"), &h, &bytes);
        // Every answer to an authenticated request is signed: check it as a wallet must. (Refused
        // before authentication: 401, 404, 405, 413 are not.)
        if !matches!(status, 401 | 404 | 405 | 413) {
            let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
            verify_response_hmac(
                &key(),
                method,
                target,
                CLIENT,
                header("response-time"),
                header("signature"),
                &bytes,
            )
            .unwrap_or_else(|e| panic!("{method} {target}: response signature: {e}"));
        }
        (status, h, bytes)
    }

    async fn post(&self, target: &str, body: &[u8]) -> (u16, Iso20022Pacs002) {
        let (status, _, bytes) = self.send("POST", target, body, SystemTime::now()).await;
        let doc = parse_pacs002(&bytes).unwrap_or_else(|e| {
            panic!(
                "{target}: {status} not a pacs.002 ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, doc)
    }

    async fn quote(&self, code: &str, amount: Option<u64>) -> Value {
        let mut target = format!(
            "{QUOTES}?codeValue={}&customerId={CUSTOMER}&sourceCurrency=MYR",
            form_encode(code)
        );
        if let Some(a) = amount {
            target.push_str(&format!("&amount={}&destinationCurrency=SGD", sgd(a)));
        }
        let (status, _, bytes) = self.send("GET", &target, b"", SystemTime::now()).await;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        v
    }

    fn paid(doc: &Iso20022Pacs002) -> Paid {
        Paid {
            result: sfu(doc),
            payment_id: doc
                .report
                .tx_inf_and_sts
                .as_ref()
                .and_then(|t| t.clr_sys_ref.clone()),
        }
    }

    fn refused(status: u16, bytes: &[u8]) -> Refused {
        let code = match parse_pacs002(bytes) {
            Ok(doc) => status_and_reason(&doc).1.unwrap_or_default(),
            Err(e) => panic!(
                "{status}: not a pacs.002 ({e}): {}",
                String::from_utf8_lossy(bytes)
            ),
        };
        Refused { http: status, code }
    }

    fn sent(&self, id: &str) -> Sent {
        self.sent.lock().unwrap().get(id).cloned().unwrap()
    }

    /// A well-formed pacs.008 for a quote that does not exist (for the refusals).
    fn unquoted_pacs008(id: &str) -> Vec<u8> {
        let quote = serde_json::json!({
            "interbankSettlementAmount": {"ccy": "SGD", "value": "12.50"},
            "instructedAmount": {"ccy": "MYR", "value": "40.42"},
            "exchangeRate": "3.2336",
            "creditor": {"name": "SOBA NOODLE HOUSE", "account": "111116866140003"},
            "remittanceInformation": "QUOTE/no-such-quote",
        });
        pacs008(id, &uetr(id), &quote, "12.50")
    }
}

impl Driver for Iso20022Driver {
    const NAME: &'static str = "iso20022";
    const CODE_BAD_SIGNATURE: &'static str = "INVALID_SIGNATURE";
    const CODE_STALE: &'static str = "STALE_REQUEST_TIME";
    const CODE_MALFORMED: &'static str = "FF01";
    const CODE_OVERSIZE: &'static str = "REQUEST_TOO_LARGE";
    const CODE_INCONSISTENT: &'static str = "AM05";
    const WALLET_REFUNDS: bool = false;

    fn scheme(notify_url: &str) -> Arc<dyn Scheme> {
        let table = format!(
            "[clients.{CLIENT}]\nhmac_key_base64 = \"{}\"\nkey_version = 1\nnotify_url = \"{notify_url}\"\n",
            base64::engine::general_purpose::STANDARD.encode(KEY)
        );
        qrbridge::scheme::iso20022::build(&SchemeSettings {
            table: toml::from_str(&table).unwrap(),
            demo_client: None,
            base_dir: ".".into(),
            replay_bytes: qrbridge::scheme::native::auth::REPLAY_DEFAULT_BYTES,
        })
        .unwrap()
    }

    fn client(addr: SocketAddr) -> Self {
        Iso20022Driver {
            addr,
            sent: Mutex::new(HashMap::new()),
            ids: Mutex::new(HashMap::new()),
            emitted: Mutex::new(Vec::new()),
        }
    }

    async fn pay(&self, code: &str, amount: Option<u64>, id: &str) -> Paid {
        let quote = self.quote(code, amount).await;
        let settlement = quote["interbankSettlementAmount"]["value"]
            .as_str()
            .unwrap()
            .to_owned();
        let u = uetr(id);
        let body = pacs008(id, &u, &quote, &settlement);
        self.ids.lock().unwrap().insert(u, id.to_owned());
        self.sent.lock().unwrap().insert(
            id.to_owned(),
            Sent {
                body: body.clone(),
                quote,
            },
        );
        let (_, doc) = self.post(PAYMENTS, &body).await;
        Self::paid(&doc)
    }

    async fn repay(&self, id: &str) -> Paid {
        let (_, doc) = self.post(PAYMENTS, &self.sent(id).body).await;
        Self::paid(&doc)
    }

    async fn pay_inconsistent(&self, id: &str) -> Refused {
        let sent = self.sent(id);
        let body = pacs008(id, &uetr(id), &sent.quote, "99.99");
        let (status, _, bytes) = self.send("POST", PAYMENTS, &body, SystemTime::now()).await;
        Self::refused(status, &bytes)
    }

    async fn inquire(&self, id: &str) -> Final {
        let (status, doc) = self.post(STATUS, &pacs028(&uetr(id))).await;
        assert_eq!(status, 200, "{doc:?}");
        final_of(&doc)
    }

    async fn cancel(&self, id: &str) -> Final {
        let (_, _, bytes) = self
            .send(
                "POST",
                CANCELLATIONS,
                &camt056(&uetr(id)),
                SystemTime::now(),
            )
            .await;
        let doc = parse_camt029(&bytes).unwrap();
        let tx = &doc.resolution.cxl_dtls.tx;
        assert_eq!(tx.orgnl_uetr, uetr(id));
        // Sts/Conf (investigation confirmation) and TxCxlSts (individual status) agree.
        match (doc.resolution.sts.conf.as_str(), tx.tx_cxl_sts.as_str()) {
            ("CNCL", "ACCR") => Final::Cancelled,
            ("PDCR", "PDCR") => Final::Processing,
            ("RJCR", "RJCR") => Final::Fail,
            other => panic!("Conf / TxCxlSts {other:?}"),
        }
    }

    async fn refund(&self, _id: &str, _refund_id: &str, _amount: u64) -> Sfu {
        unreachable!(
            "WALLET_REFUNDS is false: a wallet does not ask an ISO 20022 gateway for a refund"
        )
    }

    async fn tampered(&self, how: Tamper, limit: u64) -> Refused {
        let body = Self::unquoted_pacs008("tampered-1");
        let (status, headers, bytes) = match how {
            Tamper::BadSignature => {
                let t = now();
                // Signed over another body.
                let sig = sign_request_hmac(&key(), 1, "POST", PAYMENTS, CLIENT, &t, b"<x/>");
                let mut headers = vec![
                    ("client-id", CLIENT.to_owned()),
                    ("request-time", t),
                    ("signature", sig),
                ];
                headers.push(("content-type", "application/xml".to_owned()));
                harness::http(self.addr, "POST", PAYMENTS, &headers, &body).await
            }
            Tamper::StaleTime => {
                let t = request_time(SystemTime::now() - Duration::from_secs(3600));
                let sig = sign_request_hmac(&key(), 1, "POST", PAYMENTS, CLIENT, &t, &body);
                let headers = vec![
                    ("client-id", CLIENT.to_owned()),
                    ("request-time", t),
                    ("signature", sig),
                    ("content-type", "application/xml".to_owned()),
                ];
                harness::http(self.addr, "POST", PAYMENTS, &headers, &body).await
            }
            Tamper::Malformed => {
                let broken = &body[..body.len() / 2];
                self.send("POST", PAYMENTS, broken, SystemTime::now()).await
            }
            Tamper::Oversize => {
                let big = vec![b' '; usize::try_from(limit).unwrap() + 1];
                self.send("POST", PAYMENTS, &big, SystemTime::now()).await
            }
        };
        if matches!(how, Tamper::BadSignature | Tamper::StaleTime) {
            // Sent past `send`: record the refusal here.
            self.record(format!("tampered {how:?} → {status}"), &headers, &bytes);
        }
        Self::refused(status, &bytes)
    }

    fn read_notice(&self, headers: &HeaderMap, body: &[u8]) -> Result<Noticed, String> {
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .ok_or(format!("no {n} header"))
        };
        verify_notification_hmac(
            &key(),
            "/notify",
            header("client-id")?,
            header("response-time")?,
            header("signature")?,
            body,
        )
        .map_err(|e| format!("notification signature: {e}"))?;
        self.emitted
            .lock()
            .unwrap()
            .push(("notification".to_owned(), body.to_vec()));
        if let Ok(ret) = parse_pacs004(body) {
            let reason = ret.rtr.tx.rtr_rsn_inf.rsn.as_ref().and_then(|r| r.code());
            if reason == Some("FOCR") {
                // The funds of a payment cancelled by our camt.056 (a return following a
                // cancellation request): the payment's final state.
                let u = ret.rtr.tx.orgnl_uetr.clone().ok_or("no OrgnlUETR")?;
                let request_id = self
                    .ids
                    .lock()
                    .unwrap()
                    .get(&u)
                    .cloned()
                    .ok_or(format!("UETR {u} was not sent by this wallet"))?;
                return Ok(Noticed::Payment {
                    request_id,
                    status: Final::Cancelled,
                });
            }
            // A return from the gateway: the payer is credited (RefundCredit).
            return Ok(Noticed::Refund {
                refund_request_id: ret.rtr.tx.rtr_id,
                result: Sfu::S,
            });
        }
        let doc = parse_pacs002(body).map_err(|e| e.to_string())?;
        let tx = doc.report.tx_inf_and_sts.as_ref().ok_or("no TxInfAndSts")?;
        let u = tx.orgnl_uetr.clone().ok_or("no OrgnlUETR")?;
        let request_id = self
            .ids
            .lock()
            .unwrap()
            .get(&u)
            .cloned()
            .ok_or(format!("UETR {u} was not sent by this wallet"))?;
        Ok(Noticed::Payment {
            request_id,
            status: final_of(&doc),
        })
    }

    fn ack() -> (u16, &'static str, Vec<u8>) {
        (204, "text/plain", Vec::new())
    }
}

crate::battery!(crate::iso20022::Iso20022Driver);

// ---------------------------------------------------------------------------------------------
// The scheme's own end-to-end checks.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quote_gives_decimal_amounts_the_rate_and_the_creditor_from_the_code() {
    let env = Env::<Iso20022Driver>::start().await;
    let q = env.wallet.quote(SGQR_STATIC, Some(APPROVE)).await;
    assert_eq!(
        q["interbankSettlementAmount"],
        serde_json::json!({"ccy": "SGD", "value": "12.50"})
    );
    // 12.50 SGD × (4.8066 / 1.5087) × 1.015 = 40.4237... MYR → 40.42 (half-up).
    assert_eq!(
        q["instructedAmount"],
        serde_json::json!({"ccy": "MYR", "value": "40.42"})
    );
    assert_eq!(q["sourceCurrency"], "MYR");
    assert_eq!(q["destinationCurrency"], "SGD");
    assert_eq!(q["markupBps"], 150);
    // The effective rate is what the payer pays per merchant unit: 40.42 / 12.50.
    assert_eq!(q["exchangeRate"], "3.2336", "{q}");
    assert_eq!(q["creditor"]["name"], "SOBA NOODLE HOUSE");
    assert_eq!(q["creditor"]["account"], "111116866140003");
    assert_eq!(q["creditor"]["mcc"], "5812");
    let id = q["quoteId"].as_str().unwrap();
    assert_eq!(q["remittanceInformation"], format!("QUOTE/{id}"));
    // Each GET is a new quote.
    let again = env.wallet.quote(SGQR_STATIC, Some(APPROVE)).await;
    assert_ne!(again["quoteId"], q["quoteId"]);
    // A bad query is a 400 naming the parameter.
    let (status, _, body) = env
        .wallet
        .send("GET", &format!("{QUOTES}?codeValue=x&customerId=c&sourceCurrency=MYR&amount=1.234&destinationCurrency=SGD"), b"", SystemTime::now())
        .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("CH16")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("query/amount"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_resend_returns_the_identical_pacs002_and_authorises_once() {
    let env = Env::<Iso20022Driver>::start().await;
    let w = &env.wallet;
    let paid = w.pay(SGQR_STATIC, Some(APPROVE), "pay-bytes-1").await;
    assert_eq!(paid.result, Sfu::S);
    let body = w.sent("pay-bytes-1").body;
    let (s1, _, first) = w.send("POST", PAYMENTS, &body, SystemTime::now()).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s2, _, second) = w.send("POST", PAYMENTS, &body, SystemTime::now()).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(first, second, "the replayed pacs.002 differs");
    let doc = parse_pacs002(&first).unwrap();
    let tx = doc.report.tx_inf_and_sts.unwrap();
    assert_eq!(tx.tx_sts, "ACCC");
    assert_eq!(tx.orgnl_uetr.as_deref(), Some(uetr("pay-bytes-1").as_str()));
    assert_eq!(tx.orgnl_end_to_end_id.as_deref(), Some("E2E-pay-bytes-1"));
    assert_eq!(tx.accptnc_dt_tm.as_deref(), Some("2026-11-21T10:39:58Z"));
    assert_eq!(doc.report.orgnl_grp_inf_and_sts.orgnl_msg_id, "pay-bytes-1");
    assert_eq!(
        doc.report.orgnl_grp_inf_and_sts.orgnl_msg_nm_id,
        "pacs.008.001.08"
    );
    // The pacs.028 names only the UETR; the answer names the original from the journal.
    let (status, doc) = w.post(STATUS, &pacs028(&uetr("pay-bytes-1"))).await;
    assert_eq!(status, 200);
    assert_eq!(doc.report.orgnl_grp_inf_and_sts.orgnl_msg_id, "pay-bytes-1");
    let tx = doc.report.tx_inf_and_sts.unwrap();
    assert_eq!(tx.orgnl_end_to_end_id.as_deref(), Some("E2E-pay-bytes-1"));
    assert_eq!(tx.tx_sts, "ACCC");
    let ledger = env.ledger();
    let mine: Vec<_> = ledger
        .entries
        .iter()
        .filter(|e| e.processing_code.starts_with("00"))
        .collect();
    assert_eq!(mine.len(), 1, "{ledger:?}");
    assert_eq!(
        (mine[0].amount, mine[0].merchant.as_str()),
        (APPROVE, "111116866140003")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decline_is_rjct_am04_and_a_pacs008_that_disagrees_with_its_quote_never_reaches_the_acquirer()
 {
    let env = Env::<Iso20022Driver>::start().await;
    let w = &env.wallet;
    let paid = w.pay(SGQR_STATIC, Some(DECLINE), "pay-am04").await;
    assert_eq!(paid.result, Sfu::F);
    let (status, _, bytes) = w
        .send(
            "POST",
            PAYMENTS,
            &w.sent("pay-am04").body,
            SystemTime::now(),
        )
        .await;
    let doc = parse_pacs002(&bytes).unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        status_and_reason(&doc),
        ("RJCT".to_owned(), Some("AM04".to_owned()))
    );

    let q = w.quote(SGQR_STATIC, Some(APPROVE)).await;
    let id = "pay-wrong-amount";
    let body = pacs008(id, &uetr(id), &q, "12.49");
    let (status, _, bytes) = w.send("POST", PAYMENTS, &body, SystemTime::now()).await;
    let doc = parse_pacs002(&bytes).unwrap();
    assert_eq!(status, 422);
    assert_eq!(
        status_and_reason(&doc),
        ("RJCT".to_owned(), Some("AM09".to_owned()))
    );
    let info = doc
        .report
        .tx_inf_and_sts
        .unwrap()
        .sts_rsn_inf
        .unwrap()
        .addtl_inf
        .unwrap();
    assert!(
        info.starts_with("FIToFICstmrCdtTrf/CdtTrfTxInf/IntrBkSttlmAmt"),
        "{info}"
    );
    // The quote was not consumed: the right document still pays with it.
    let body = pacs008(id, &uetr(id), &q, "12.50");
    let (status, _, bytes) = w.send("POST", PAYMENTS, &body, SystemTime::now()).await;
    assert_eq!(status, 200);
    assert_eq!(status_and_reason(&parse_pacs002(&bytes).unwrap()).0, "ACCC");
    let purchases = env
        .ledger()
        .entries
        .iter()
        .filter(|e| e.processing_code.starts_with("00"))
        .count();
    assert_eq!(purchases, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_methods_and_content_types_are_refused_in_the_schemes_form() {
    let env = Env::<Iso20022Driver>::start().await;
    let w = &env.wallet;
    let (status, _, body) = w
        .send(
            "GET",
            "/schemes/iso20022/v1/nothing",
            b"",
            SystemTime::now(),
        )
        .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (status, headers, _) = w.send("GET", PAYMENTS, b"", SystemTime::now()).await;
    assert_eq!(status, 405);
    assert_eq!(
        headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    // An unsigned request: 401, group-level rejection.
    let (status, _, body) = harness::http(
        env.addr,
        "POST",
        PAYMENTS,
        &[],
        &Iso20022Driver::unquoted_pacs008("x"),
    )
    .await;
    assert_eq!(
        Iso20022Driver::refused(status, &body).code,
        "INVALID_SIGNATURE"
    );
    assert_eq!(status, 401);
    // A signed pacs.008 sent as JSON: 400 FF01 naming the header.
    let body = Iso20022Driver::unquoted_pacs008("ct");
    let t = now();
    let sig = sign_request_hmac(&key(), 1, "POST", PAYMENTS, CLIENT, &t, &body);
    let headers = [
        ("client-id", CLIENT.to_owned()),
        ("request-time", t),
        ("signature", sig),
        ("content-type", "application/json".to_owned()),
    ];
    let (status, _, bytes) = harness::http(env.addr, "POST", PAYMENTS, &headers, &body).await;
    let doc = parse_pacs002(&bytes).unwrap();
    assert_eq!(status, 400);
    let group = doc.report.orgnl_grp_inf_and_sts.sts_rsn_inf.unwrap();
    assert_eq!(group.rsn.unwrap().cd.as_deref(), Some("FF01"));
    assert!(group.addtl_inf.unwrap().starts_with("content-type"));
    // A pacs.008 for a quote the gateway never gave: RJCT NOOR, nothing authorised.
    let (status, _, body) = w
        .send(
            "POST",
            PAYMENTS,
            &Iso20022Driver::unquoted_pacs008("nq"),
            SystemTime::now(),
        )
        .await;
    assert_eq!(
        Iso20022Driver::refused(status, &body),
        Refused {
            http: 404,
            code: "ORDER_NOT_FOUND".to_owned()
        }
    );
    assert!(env.ledger().entries.is_empty());
}

#[test]
fn every_valid_fixture_and_every_document_this_wallet_builds_is_schema_valid() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/schemes/iso20022/valid");
    let mut docs = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        docs.push((path.display().to_string(), std::fs::read(&path).unwrap()));
    }
    assert!(docs.len() >= 3, "{} fixtures", docs.len());
    let quote = serde_json::json!({
        "interbankSettlementAmount": {"ccy": "SGD", "value": "12.50"},
        "instructedAmount": {"ccy": "MYR", "value": "40.42"},
        "exchangeRate": "3.2336",
        "creditor": {"name": "SOBA & NOODLE HOUSE", "account": "111116866140003"},
        "remittanceInformation": "QUOTE/0b9e6a52-8f0e-4d0b-9b8c-2a7c1d4e5f60",
    });
    let u = uetr("built");
    docs.push(("pacs008()".to_owned(), pacs008("M-1", &u, &quote, "12.50")));
    docs.push(("pacs028()".to_owned(), pacs028(&u)));
    docs.push(("camt056()".to_owned(), camt056(&u)));
    crate::xsd::assert_valid(&docs);
}

#[test]
fn the_validator_can_fail() {
    // The camt.056 this scheme accepted before issue 13 (no Assgnr / Assgne) and a pacs.008
    // without its mandatory Dbtr: both are refused by the schema.
    let old_camt = format!(
        r#"<Document xmlns="{NS}camt.056.001.08"><FIToFIPmtCxlReq><Assgnmt><Id>CXL-1</Id><CreDtTm>2026-11-21T10:42:00Z</CreDtTm></Assgnmt><Undrlyg><TxInf><OrgnlUETR>{}</OrgnlUETR></TxInf></Undrlyg></FIToFIPmtCxlReq></Document>"#,
        uetr("x")
    );
    let pacs = String::from_utf8(pacs008(
        "M-1",
        &uetr("y"),
        &serde_json::json!({
            "interbankSettlementAmount": {"ccy": "SGD", "value": "12.50"},
            "instructedAmount": {"ccy": "MYR", "value": "40.42"},
            "exchangeRate": "3.23357142857",
            "creditor": {"name": "N", "account": "1"},
            "remittanceInformation": "QUOTE/q",
        }),
        "12.50",
    ))
    .unwrap();
    let docs = vec![
        ("old camt.056".to_owned(), old_camt.into_bytes()),
        ("12-digit rate".to_owned(), pacs.into_bytes()),
    ];
    let bad = crate::xsd::invalid(&docs);
    if bad.is_empty() {
        // Only when the validator is unavailable (a notice was printed).
        assert!(std::env::var("QRBRIDGE_REQUIRE_PEERS").as_deref() != Ok("1"));
        return;
    }
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].contains("Assgnr"), "{bad:?}");
    assert!(bad[1].contains("XchgRate"), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_fixture_posted_to_the_gateway_is_refused_with_its_reason_and_element() {
    let env = Env::<Iso20022Driver>::start().await;
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/schemes/iso20022/invalid");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let (first, rest) = text.split_once('\n').unwrap();
        let expect = first
            .strip_prefix("<!-- expect: ")
            .and_then(|s| s.strip_suffix(" -->"))
            .unwrap();
        let (code, element) = expect.split_once(' ').unwrap();
        let (status, _, bytes) = env
            .wallet
            .send("POST", PAYMENTS, rest.as_bytes(), SystemTime::now())
            .await;
        assert_eq!(status, 400, "{path:?}");
        let doc = parse_pacs002(&bytes).unwrap();
        let group = doc.report.orgnl_grp_inf_and_sts;
        assert_eq!(group.grp_sts.as_deref(), Some("RJCT"), "{path:?}");
        let why = group.sts_rsn_inf.unwrap();
        assert_eq!(why.rsn.unwrap().cd.as_deref(), Some(code), "{path:?}");
        let info = why.addtl_inf.unwrap();
        assert!(info.starts_with(element), "{path:?}: {info}");
        seen += 1;
    }
    assert!(seen >= 25, "{seen}");
    assert!(env.ledger().entries.is_empty());
}

#[test]
fn the_demo_banners_documents_are_schema_valid() {
    let scheme = qrbridge::scheme::iso20022::build(&SchemeSettings {
        table: toml::from_str(&format!("[clients.{CLIENT}]\n")).unwrap(),
        demo_client: Some(CLIENT.to_owned()),
        base_dir: ".".into(),
        replay_bytes: qrbridge::scheme::native::auth::REPLAY_DEFAULT_BYTES,
    })
    .unwrap();
    let banner = scheme
        .demo_walkthrough("http://127.0.0.1:8080", SGQR_STATIC)
        .unwrap();
    // The shell variables the walk fills in from the quote, with the worked example's values.
    let fill = |doc: &str| {
        doc.replace("$NOW", "2026-11-21T10:40:00Z")
            .replace("$UETR", "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b")
            .replace("$RANDOM", "12345")
            .replace("$MYR", "40.42")
            .replace("$RATE", "3.2336")
            .replace("$NAME", "SOBA NOODLE HOUSE")
            .replace("$ACCOUNT", "111116866140003")
            .replace("$QUOTE_ID", "0b9e6a52-8f0e-4d0b-9b8c-2a7c1d4e5f60")
    };
    let docs: Vec<(String, Vec<u8>)> = banner
        .split('"')
        .filter(|part| part.starts_with("<Document"))
        .map(|doc| ("banner".to_owned(), fill(doc).into_bytes()))
        .collect();
    assert_eq!(docs.len(), 2, "{banner}");
    crate::xsd::assert_valid(&docs);
}

// ---------------------------------------------------------------------------------------------
// Returns go out: a refund that started at the merchant reaches the wallet as a pacs.004 from
// us, through the journal's outbox and the deliverer (signed, retried, acknowledged by the
// wallet's pacs.002). The RefundCredit notice is made here by rules of the test's own (the
// gateway's rules for merchant refunds are the domestic side's).

mod returns {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper::header::HeaderMap;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use qrbridge::journal::*;
    use qrbridge::money::{Amount, Currency};
    use qrbridge::notify::{Deliverer, NotifyPolicy};
    use qrbridge::payment::{Money, RefundResponse, RefundStatus, RequestId};
    use qrbridge::scheme::iso20022::transformers::{
        Iso20022Original, Iso20022Reason, Iso20022Ref, Iso20022Status, Iso20022TxSts, MSG_PACS004,
        parse_pacs004, render_pacs002,
    };
    use qrbridge::scheme::native::auth::verify_notification_hmac;
    use tokio::net::TcpListener;

    use super::{CLIENT, Driver, Iso20022Driver, key, uetr};

    /// Rules that credit the payer when a refund succeeds (what the domestic side's rules do for a
    /// refund the merchant started).
    struct CreditOnRefund;

    impl NoticeRules for CreditOnRefund {
        fn payment(&self, _before: &Payment, _after: &Payment) -> Option<NoticeDraft> {
            None
        }
        fn refund(&self, before: &Refund, after: &Refund) -> Option<NoticeDraft> {
            (before.state != after.state && after.state == RefundState::Success).then(|| {
                let event = RefundResponse {
                    refund_id: RequestId::new(after.id.to_string()).unwrap(),
                    refund_request_id: RequestId::new(after.request_id.clone()).unwrap(),
                    payment_id: RequestId::new(after.payment_id.to_string()).unwrap(),
                    refund_status: RefundStatus::Success,
                    refund_amount: Money(after.amount),
                    payer_refund_amount: Money(after.payer_amount),
                };
                NoticeDraft {
                    notice_id: format!("RC-{}", after.id),
                    kind: NoticeKind::RefundCredit,
                    event: serde_json::to_string(&event).unwrap(),
                }
            })
        }
    }

    fn amt(minor: u64, code: &str) -> Amount {
        Amount::from_minor(minor, Currency::from_code(code).unwrap()).unwrap()
    }

    /// The payment's journaled reference, as the scheme wrote it for its pacs.008.
    fn pacs008_ref(u: &str) -> String {
        Iso20022Ref {
            msg_id: "MYWALLET20261121-0001".to_owned(),
            msg_nm_id: "pacs.008.001.08".to_owned(),
            end_to_end_id: Some("MYWALLET-E2E-0001".to_owned()),
            uetr: u.to_owned(),
            rtr_id: None,
        }
        .to_json()
    }

    async fn paid_and_refunded(j: &RedbJournal, u: &str) -> Refund {
        let origin = Origin::new("iso20022", Some(pacs008_ref(u)));
        let p = j
            .record_intent(NewPayment {
                merchant: qrbridge::payment::Merchant {
                    name: "SOBA NOODLE HOUSE".to_owned(),
                    city: "Singapore".to_owned(),
                    country: "SG".to_owned(),
                    mcc: "5812".to_owned(),
                    merchant_id: "111116866140003".to_owned(),
                },
                client_id: CLIENT.to_owned(),
                request_id: u.to_owned(),
                customer: CustomerId::new("cust-1"),
                quote: QuoteSnapshot {
                    quote_id: "019a8f3e-0000-7000-8000-000000000001".to_owned(),
                    merchant_amount: amt(1250, "SGD"),
                    payer_amount: amt(4042, "MYR"),
                    fees: amt(0, "MYR"),
                    mid_rate: "3.1859216544".parse().unwrap(),
                    rate: "3.2337".parse().unwrap(),
                    markup_bps: 150,
                    rate_source: "test".to_owned(),
                    rate_as_of_ms: 1_763_640_000_000,
                },
                routing: Routing {
                    acquirer: "sim".to_owned(),
                    merchant_id: "111116866140003".to_owned(),
                    terminal_id: None,
                    scheme: "SG.PAYNOW".to_owned(),
                    qr_reference: None,
                },
                limits: DailyLimits::default(),
                origin: origin.clone(),
            })
            .await
            .unwrap();
        let acquirer = |code: &str| AcquirerData {
            stan: Some("000042".to_owned()),
            rrn: Some("632510000042".to_owned()),
            response_code: Some(code.to_owned()),
            ..AcquirerData::default()
        };
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
        let r = j
            .reserve_refund(NewRefund {
                client_id: CLIENT.to_owned(),
                request_id: format!("merchant-refund-{}", &u[..8]),
                payment_id: p.id,
                amount: amt(500, "SGD"),
                reason: "returned goods".to_owned(),
                origin,
                trace: Default::default(),
            })
            .await
            .unwrap();
        j.update_refund(
            r.id,
            RefundEvent::Approved {
                acquirer: acquirer("00"),
            },
        )
        .await
        .unwrap()
    }

    /// The wallet's return endpoint: answers each pacs.004 with `script[n]` (then the last one):
    /// an HTTP status and the wallet's pacs.002 status about the return.
    async fn wallet(
        script: Vec<(u16, Iso20022TxSts)>,
    ) -> (String, Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/notify", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (g, script) = (g.clone(), script.clone());
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let (g, script) = (g.clone(), script.clone());
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = body.collect().await.unwrap().to_bytes().to_vec();
                                let n = {
                                    let mut g = g.lock().unwrap();
                                    g.push((parts.headers, body.clone()));
                                    g.len() - 1
                                };
                                let (status, tx_sts) = script[n.min(script.len() - 1)];
                                let rtr = parse_pacs004(&body).unwrap().rtr;
                                let original = Iso20022Original {
                                    msg_id: rtr.grp_hdr.msg_id,
                                    msg_nm_id: MSG_PACS004,
                                    instr_id: Some(rtr.tx.rtr_id),
                                    end_to_end_id: rtr.tx.orgnl_end_to_end_id,
                                    uetr: rtr.tx.orgnl_uetr,
                                };
                                let status_report = Iso20022Status {
                                    tx_sts,
                                    reason: (tx_sts == Iso20022TxSts::Rjct)
                                        .then_some(Iso20022Reason::Code("AC04")),
                                    info: None,
                                    accepted_at: None,
                                    reference: None,
                                    amount: None,
                                };
                                let reply = render_pacs002(
                                    &original,
                                    &status_report,
                                    "2026-11-21T11:00:01Z",
                                )
                                .unwrap();
                                let mut r = Response::new(Full::new(Bytes::from(reply)));
                                *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                                r.headers_mut().insert(
                                    "content-type",
                                    hyper::header::HeaderValue::from_static("application/xml"),
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
        (url, got)
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("qrbridge-iso-returns-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    async fn wait(j: &RedbJournal, id: &str, state: NoticeState) -> OutboxNotice {
        for _ in 0..400 {
            if let Some(n) = j.snapshot().unwrap().notice(id).unwrap()
                && n.state == state
            {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "notice {id} never {state:?}: {:?}",
            j.snapshot().unwrap().notice(id).unwrap()
        );
    }

    fn policy() -> NotifyPolicy {
        NotifyPolicy {
            first_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(500),
            attempt_timeout: Duration::from_secs(5),
            ..NotifyPolicy::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_merchant_refund_reaches_the_wallet_as_a_signed_schema_valid_pacs004_retried_until_its_pacs002()
     {
        let dir = temp_dir("ok");
        let (url, got) = wallet(vec![(500, Iso20022TxSts::Accc), (200, Iso20022TxSts::Accc)]).await;
        let j = RedbJournal::open(JournalConfig::new(dir.join("journal.redb"))).unwrap();
        j.set_notice_rules(Arc::new(CreditOnRefund));
        let j = Arc::new(j);
        let u = uetr("returned-payment");
        let refund = paid_and_refunded(&j, &u).await;
        let deliverer =
            Deliverer::start(j.clone(), vec![Iso20022Driver::scheme(&url)], policy()).unwrap();
        let sent = wait(&j, &format!("RC-{}", refund.id), NoticeState::Sent).await;
        let got = got.lock().unwrap().clone();
        assert_eq!(got.len(), 2, "one 500, then the acknowledging pacs.002");
        assert_eq!(sent.attempts, 1, "{sent:?}");
        let mut docs = Vec::new();
        for (headers, body) in &got {
            let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
            verify_notification_hmac(
                &key(),
                "/notify",
                h("client-id"),
                h("response-time"),
                h("signature"),
                body,
            )
            .unwrap();
            docs.push(("pacs.004 sent".to_owned(), body.clone()));
        }
        crate::xsd::assert_valid(&docs);
        let first = parse_pacs004(&got[0].1).unwrap().rtr;
        let second = parse_pacs004(&got[1].1).unwrap().rtr;
        assert_eq!(
            first.grp_hdr.msg_id, second.grp_hdr.msg_id,
            "a retry is the same message"
        );
        let tx = second.tx;
        assert_eq!(tx.orgnl_uetr.as_deref(), Some(u.as_str()));
        assert_eq!(
            tx.orgnl_grp_inf
                .map(|g| (g.orgnl_msg_id, g.orgnl_msg_nm_id)),
            Some((
                "MYWALLET20261121-0001".to_owned(),
                "pacs.008.001.08".to_owned()
            ))
        );
        assert_eq!(tx.orgnl_end_to_end_id.as_deref(), Some("MYWALLET-E2E-0001"));
        assert_eq!(
            (
                tx.rtrd_intr_bk_sttlm_amt.ccy.as_str(),
                tx.rtrd_intr_bk_sttlm_amt.value.as_str()
            ),
            ("SGD", "5.00")
        );
        assert_eq!(tx.rtrd_instd_amt.ccy, "MYR");
        assert_eq!(tx.rtr_id, refund.id.to_string().replace('-', ""));
        deliverer.shutdown(Duration::from_secs(5)).await;
        drop(j);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_return_the_wallet_rejects_with_a_pacs002_is_parked_with_its_reason() {
        let dir = temp_dir("rjct");
        let (url, got) = wallet(vec![(200, Iso20022TxSts::Rjct)]).await;
        let j = RedbJournal::open(JournalConfig::new(dir.join("journal.redb"))).unwrap();
        j.set_notice_rules(Arc::new(CreditOnRefund));
        let j = Arc::new(j);
        let refund = paid_and_refunded(&j, &uetr("rejected-return")).await;
        let deliverer =
            Deliverer::start(j.clone(), vec![Iso20022Driver::scheme(&url)], policy()).unwrap();
        let parked = wait(&j, &format!("RC-{}", refund.id), NoticeState::Parked).await;
        let why = parked.last_error.unwrap_or_default();
        assert!(why.contains("RJCT AC04"), "{why}");
        assert_eq!(got.lock().unwrap().len(), 1, "a definite no is not retried");
        deliverer.shutdown(Duration::from_secs(5)).await;
        drop(j);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

// ---------------------------------------------------------------------------------------------
// The Nexus profile: the same wallet client configured with `profile = "nexus"`.

/// The iso20022 wallet with its client in the Nexus profile (everything else as the CBPR+ one).
pub struct NexusDriver(Iso20022Driver);

impl Driver for NexusDriver {
    const NAME: &'static str = "iso20022-nexus";
    const CODE_BAD_SIGNATURE: &'static str = Iso20022Driver::CODE_BAD_SIGNATURE;
    const CODE_STALE: &'static str = Iso20022Driver::CODE_STALE;
    const CODE_MALFORMED: &'static str = Iso20022Driver::CODE_MALFORMED;
    const CODE_OVERSIZE: &'static str = Iso20022Driver::CODE_OVERSIZE;
    const CODE_INCONSISTENT: &'static str = Iso20022Driver::CODE_INCONSISTENT;
    const WALLET_REFUNDS: bool = false;

    fn scheme(notify_url: &str) -> Arc<dyn Scheme> {
        let table = format!(
            "[clients.{CLIENT}]\nhmac_key_base64 = \"{}\"\nnotify_url = \"{notify_url}\"\nprofile = \"nexus\"\n",
            base64::engine::general_purpose::STANDARD.encode(KEY)
        );
        qrbridge::scheme::iso20022::build(&SchemeSettings {
            table: toml::from_str(&table).unwrap(),
            demo_client: None,
            base_dir: ".".into(),
            replay_bytes: qrbridge::scheme::native::auth::REPLAY_DEFAULT_BYTES,
        })
        .unwrap()
    }
    fn client(addr: SocketAddr) -> Self {
        NexusDriver(Iso20022Driver::client(addr))
    }
    async fn pay(&self, _code: &str, _amount: Option<u64>, _id: &str) -> Paid {
        unreachable!("the Nexus profile's payments are built by its own test")
    }
    async fn repay(&self, id: &str) -> Paid {
        self.0.repay(id).await
    }
    async fn pay_inconsistent(&self, id: &str) -> Refused {
        self.0.pay_inconsistent(id).await
    }
    async fn inquire(&self, id: &str) -> Final {
        self.0.inquire(id).await
    }
    async fn cancel(&self, id: &str) -> Final {
        self.0.cancel(id).await
    }
    async fn refund(&self, id: &str, refund_id: &str, amount: u64) -> Sfu {
        self.0.refund(id, refund_id, amount).await
    }
    async fn tampered(&self, how: Tamper, limit: u64) -> Refused {
        self.0.tampered(how, limit).await
    }
    fn read_notice(&self, headers: &HeaderMap, body: &[u8]) -> Result<Noticed, String> {
        self.0.read_notice(headers, body)
    }
    fn ack() -> (u16, &'static str, Vec<u8>) {
        Iso20022Driver::ack()
    }
}

/// A Nexus pacs.008 (pacs.008.001.11) shaped on the BIS Nexus guidelines' example payment (a
/// sender in Italy, Maria Rossi, pays in EUR a recipient in Singapore who is credited in SGD; the
/// guidelines' flow-of-funds page, docs.bis.org/nexus, checked 2026-12-05): the interbank
/// settlement amount in the source currency, the FX provider's rate (destination units per source
/// unit) applied to it, the FXP's settlement access providers as intermediary agents, the quote
/// id in the additional remittance information. Amounts and rate come from our quote.
fn nexus_pacs008(msg_id: &str, uetr: &str, quote: &Value) -> Vec<u8> {
    let s = |v: &Value| esc(v.as_str().unwrap());
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{NS}pacs.008.001.11">
  <FIToFICstmrCdtTrf>
    <GrpHdr>
      <MsgId>{msg_id}</MsgId>
      <CreDtTm>2026-11-21T10:40:00Z</CreDtTm>
      <NbOfTxs>1</NbOfTxs>
      <SttlmInf><SttlmMtd>CLRG</SttlmMtd></SttlmInf>
    </GrpHdr>
    <CdtTrfTxInf>
      <PmtId><InstrId>{msg_id}</InstrId><EndToEndId>E2E-{msg_id}</EndToEndId><TxId>TX-{msg_id}</TxId><UETR>{uetr}</UETR></PmtId>
      <IntrBkSttlmAmt Ccy="{sccy}">{sval}</IntrBkSttlmAmt>
      <AccptncDtTm>2026-11-21T10:39:58Z</AccptncDtTm>
      <InstdAmt Ccy="{iccy}">{ival}</InstdAmt>
      <XchgRate>{rate}</XchgRate>
      <ChrgBr>SHAR</ChrgBr>
      <IntrmyAgt1><FinInstnId><BICFI>SSAPITMMXXX</BICFI></FinInstnId></IntrmyAgt1>
      <IntrmyAgt2><FinInstnId><BICFI>DSAPSGSGXXX</BICFI></FinInstnId></IntrmyAgt2>
      <Dbtr><Nm>Maria Rossi</Nm><PstlAdr><TwnNm>Roma</TwnNm><Ctry>IT</Ctry></PstlAdr></Dbtr>
      <DbtrAcct><Id><Othr><Id>{CUSTOMER}</Id></Othr></Id></DbtrAcct>
      <DbtrAgt><FinInstnId><BICFI>SPSPITMMXXX</BICFI></FinInstnId></DbtrAgt>
      <CdtrAgt><FinInstnId/></CdtrAgt>
      <Cdtr><Nm>{name}</Nm><PstlAdr><TwnNm>Singapore</TwnNm><Ctry>SG</Ctry></PstlAdr></Cdtr>
      <CdtrAcct><Id><Othr><Id>{account}</Id></Othr></Id></CdtrAcct>
      <RmtInf><Strd><AddtlRmtInf>{rmt}</AddtlRmtInf></Strd></RmtInf>
    </CdtTrfTxInf>
  </FIToFICstmrCdtTrf>
</Document>
"#,
        sccy = s(&quote["interbankSettlementAmount"]["ccy"]),
        sval = s(&quote["interbankSettlementAmount"]["value"]),
        iccy = s(&quote["instructedAmount"]["ccy"]),
        ival = s(&quote["instructedAmount"]["value"]),
        rate = s(&quote["exchangeRate"]),
        name = s(&quote["creditor"]["name"]),
        account = s(&quote["creditor"]["account"]),
        rmt = s(&quote["remittanceInformation"]),
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nexus_pacs008_in_the_source_currency_is_accepted_and_paid() {
    let env = Env::<NexusDriver>::start().await;
    let w = &env.wallet.0;
    // SGD 150.00 for the recipient, paid from EUR (the guidelines' example pair).
    let target = format!(
        "{QUOTES}?codeValue={}&customerId={CUSTOMER}&sourceCurrency=EUR&amount=150.00&destinationCurrency=SGD",
        form_encode(SGQR_STATIC)
    );
    let (status, _, bytes) = w.send("GET", &target, b"", SystemTime::now()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let q: Value = serde_json::from_slice(&bytes).unwrap();
    // The Nexus directions: settlement in EUR, the rate in SGD per EUR, the SGD amount apart.
    assert_eq!(q["interbankSettlementAmount"]["ccy"], "EUR", "{q}");
    assert_eq!(q["interbankSettlementAmount"], q["instructedAmount"], "{q}");
    assert_eq!(
        q["destinationAmount"],
        serde_json::json!({"ccy": "SGD", "value": "150.00"})
    );
    let eur: rust_decimal::Decimal = q["instructedAmount"]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let rate: rust_decimal::Decimal = q["exchangeRate"].as_str().unwrap().parse().unwrap();
    // About 1.49 SGD per EUR (the guidelines' example uses exactly 1.5).
    assert!(
        rate > rust_decimal::Decimal::ONE && rate < rust_decimal::Decimal::TWO,
        "SGD per EUR: {rate}"
    );
    assert_eq!(
        (eur * rate).round_dp(2),
        "150.00".parse::<rust_decimal::Decimal>().unwrap(),
        "the rate applied to the settlement amount gives the merchant amount"
    );

    let u = uetr("nexus-1");
    let body = nexus_pacs008("NEXUS-0001", &u, &q);
    crate::xsd::assert_valid(&[("the Nexus pacs.008".to_owned(), body.clone())]);
    let (status, bytes) = {
        let (s, _, b) = w.send("POST", PAYMENTS, &body, SystemTime::now()).await;
        (s, b)
    };
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert!(
        String::from_utf8_lossy(&bytes).contains("urn:iso:std:iso:20022:tech:xsd:pacs.002.001.13"),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let doc = parse_pacs002(&bytes).unwrap();
    assert_eq!(
        doc.report.orgnl_grp_inf_and_sts.orgnl_msg_nm_id,
        "pacs.008.001.11"
    );
    let tx = doc.report.tx_inf_and_sts.unwrap();
    assert_eq!(tx.tx_sts, "ACCC");
    assert_eq!(tx.orgnl_tx_ref.unwrap().intr_bk_sttlm_amt.ccy, "EUR");
    // The merchant is paid SGD 150.00.
    let ledger = env.ledger();
    assert_eq!(ledger.entries.len(), 1, "{ledger:?}");
    assert_eq!(
        (
            ledger.entries[0].amount,
            ledger.entries[0].currency.as_str()
        ),
        (15_000, "702")
    );
    // Its status, in the same version.
    let (status, doc) = w.post(STATUS, &pacs028(&u)).await;
    assert_eq!(status, 200);
    assert_eq!(doc.report.orgnl_grp_inf_and_sts.orgnl_msg_id, "NEXUS-0001");
    assert_eq!(
        doc.report.orgnl_grp_inf_and_sts.orgnl_msg_nm_id,
        "pacs.008.001.11"
    );
    // A CBPR+-shaped document (pacs.008.001.08) from this client is not its profile: FF01.
    let cbpr = pacs008("CBPR-1", &uetr("cbpr-1"), &q, "150.00");
    let (status, _, bytes) = w.send("POST", PAYMENTS, &cbpr, SystemTime::now()).await;
    assert_eq!(status, 400);
    assert_eq!(Iso20022Driver::refused(status, &bytes).code, "FF01");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_the_acquirer_originates_reaches_the_wallet_as_a_pacs004_naming_the_payment() {
    use qrbridge::acquirer::sim::{RefundOrder, Target};
    let env = Env::<Iso20022Driver>::start().await;
    let w = &env.wallet;
    let paid = w
        .pay(SGQR_STATIC, Some(APPROVE), "pay-merchant-refund")
        .await;
    assert_eq!(paid.result, Sfu::S);
    let rrn = env.ledger().entries[0].rrn.clone();
    // The merchant refunds SGD 5.00 at its acquirer: a 0220 advice on the link.
    let advice = env
        .sim
        .refund(RefundOrder {
            target: Target::Rrn(rrn),
            amount: 500,
            reference: None,
        })
        .await;
    assert_eq!(advice.response_code.as_deref(), Some("00"), "{advice:?}");
    let ret = env
        .inbox
        .wait_for(|r| parse_pacs004(&r.body).ok().map(|d| (r.clone(), d)))
        .await;
    // Signed, and recorded by the driver (so validated against pacs.004.001.09 at the end).
    assert!(matches!(
        w.read_notice(&ret.0.headers, &ret.0.body),
        Ok(Noticed::Refund { result: Sfu::S, .. })
    ));
    let tx = ret.1.rtr.tx;
    assert_eq!(
        tx.orgnl_uetr.as_deref(),
        Some(uetr("pay-merchant-refund").as_str())
    );
    assert_eq!(
        tx.orgnl_grp_inf.map(|g| g.orgnl_msg_id),
        Some("pay-merchant-refund".to_owned())
    );
    assert_eq!(
        (
            tx.rtrd_intr_bk_sttlm_amt.ccy.as_str(),
            tx.rtrd_intr_bk_sttlm_amt.value.as_str()
        ),
        ("SGD", "5.00")
    );
    assert_eq!(tx.rtrd_instd_amt.ccy, "MYR");
}
