//! The native scheme's driver: Wallet API v1, JSON, HMAC-SHA256 request signatures.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hyper::header::HeaderMap;
use qrbridge::scheme::Scheme;
use qrbridge::scheme::native::Native;
use qrbridge::scheme::native::auth::{
    AuthConfig, ClientKey, Credentials, Secret, request_time, sign_request_hmac,
    verify_notification_hmac,
};
use serde_json::{Value, json};

use crate::harness::{self, CLIENT, CUSTOMER, Driver, Final, Noticed, Paid, Refused, Sfu, Tamper};

const KEY: &[u8] = b"test-key-for-wallet-my-32-bytes!";

pub struct NativeDriver {
    addr: SocketAddr,
    /// request id → the pay body sent.
    sent: Mutex<Vec<(String, Vec<u8>)>>,
    /// request id → payment id.
    ids: Mutex<Vec<(String, String)>>,
}

fn key() -> Secret {
    Secret::new(KEY.to_vec())
}

fn result(v: &Value) -> (String, String) {
    (
        v["result"]["resultStatus"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        v["result"]["resultCode"].as_str().unwrap_or("").to_owned(),
    )
}

fn status_of(v: &Value) -> Final {
    match v["paymentStatus"].as_str() {
        Some("SUCCESS") => Final::Success,
        Some("FAIL") => Final::Fail,
        Some("PROCESSING") => Final::Processing,
        Some("REVERSED") => Final::Reversed,
        Some("CANCELLED") => Final::Cancelled,
        other => panic!("no paymentStatus ({other:?}) in {v}"),
    }
}

fn sfu(s: &str) -> Sfu {
    match s {
        "S" => Sfu::S,
        "F" => Sfu::F,
        "U" => Sfu::U,
        other => panic!("resultStatus {other:?}"),
    }
}

impl NativeDriver {
    async fn send(&self, path: &str, body: &[u8], time: SystemTime, tamper: bool) -> (u16, Value) {
        let t = request_time(time);
        let mut sig = sign_request_hmac(&key(), 1, "POST", path, CLIENT, &t, body);
        if tamper {
            // Flip one base64 character of the signature value.
            let at = sig.len() - 3;
            let c = if &sig[at..at + 1] == "A" { "B" } else { "A" };
            sig.replace_range(at..at + 1, c);
        }
        let (status, _, bytes) = harness::http(
            self.addr,
            "POST",
            path,
            &[
                ("content-type", "application/json".to_owned()),
                ("client-id", CLIENT.to_owned()),
                ("request-time", t),
                ("signature", sig),
            ],
            body,
        )
        .await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(path, body.to_string().as_bytes(), SystemTime::now(), false)
            .await
    }

    async fn quote(&self, code: &str, amount: Option<u64>, id: &str) -> String {
        let (s, d) = self
            .post(
                "/v1/qr/decode",
                json!({"decodeRequestId": format!("d-{id}"), "customerId": CUSTOMER,
                       "codeValue": code, "payerCurrency": "MYR"}),
            )
            .await;
        assert_eq!(s, 200, "{d}");
        let mut req = json!({"quoteRequestId": format!("q-{id}"), "decodeId": d["decodeId"],
                             "payerCurrency": "MYR"});
        if let Some(v) = amount {
            req["amount"] = json!({"currency": "SGD", "value": v.to_string()});
        }
        let (s, q) = self.post("/v1/quotes", req).await;
        assert_eq!(s, 200, "{q}");
        q["quoteId"].as_str().unwrap().to_owned()
    }

    async fn pay_body(&self, id: &str, body: Vec<u8>) -> Paid {
        let (_, v) = self
            .send("/v1/payments", &body, SystemTime::now(), false)
            .await;
        let (status, code) = result(&v);
        let payment_id = v["paymentId"].as_str().map(str::to_owned);
        if let Some(p) = &payment_id {
            self.ids.lock().unwrap().push((id.to_owned(), p.clone()));
        }
        let _ = code;
        Paid {
            result: sfu(&status),
            payment_id,
        }
    }

    fn payment_id(&self, id: &str) -> String {
        let ids = self.ids.lock().unwrap();
        ids.iter()
            .find(|(r, _)| r == id)
            .map(|(_, p)| p.clone())
            .unwrap()
    }
}

impl Driver for NativeDriver {
    const NAME: &'static str = "native";
    const CODE_BAD_SIGNATURE: &'static str = "INVALID_SIGNATURE";
    const CODE_STALE: &'static str = "INVALID_SIGNATURE";
    const CODE_MALFORMED: &'static str = "PARAM_ILLEGAL";
    const CODE_OVERSIZE: &'static str = "REQUEST_TOO_LARGE";
    const CODE_INCONSISTENT: &'static str = "REPEAT_REQ_INCONSISTENT";

    fn scheme(notify_url: &str) -> Arc<dyn Scheme> {
        let creds = Credentials::new().with_key(CLIENT, 1, ClientKey::HmacSha256(key()));
        let urls = [(CLIENT.to_owned(), notify_url.to_owned())].into();
        Arc::new(
            Native::new(AuthConfig::signatures(creds))
                .unwrap()
                .with_notify_urls(urls),
        )
    }

    fn client(addr: SocketAddr) -> Self {
        NativeDriver {
            addr,
            sent: Mutex::new(Vec::new()),
            ids: Mutex::new(Vec::new()),
        }
    }

    async fn pay(&self, code: &str, amount: Option<u64>, id: &str) -> Paid {
        let quote_id = self.quote(code, amount, id).await;
        let body = json!({"paymentRequestId": id, "quoteId": quote_id, "customerId": CUSTOMER})
            .to_string()
            .into_bytes();
        self.sent
            .lock()
            .unwrap()
            .push((id.to_owned(), body.clone()));
        self.pay_body(id, body).await
    }

    async fn repay(&self, id: &str) -> Paid {
        let body = {
            let sent = self.sent.lock().unwrap();
            sent.iter().find(|(r, _)| r == id).unwrap().1.clone()
        };
        self.pay_body(id, body).await
    }

    async fn pay_inconsistent(&self, id: &str) -> Refused {
        let quote_id = self.quote(harness::SGQR_STATIC, Some(999), "other").await;
        let (http, v) = self
            .post(
                "/v1/payments",
                json!({"paymentRequestId": id, "quoteId": quote_id, "customerId": CUSTOMER}),
            )
            .await;
        Refused {
            http,
            code: result(&v).1,
        }
    }

    async fn inquire(&self, id: &str) -> Final {
        let (s, v) = self
            .post("/v1/payments/inquiry", json!({"paymentRequestId": id}))
            .await;
        assert_eq!(s, 200, "{v}");
        status_of(&v)
    }

    async fn cancel(&self, id: &str) -> Final {
        let (_, v) = self
            .post("/v1/payments/cancel", json!({"paymentRequestId": id}))
            .await;
        status_of(&v)
    }

    async fn refund(&self, id: &str, refund_id: &str, amount: u64) -> Sfu {
        let payment_id = self.payment_id(id);
        let (_, v) = self
            .post(
                "/v1/refunds",
                json!({"refundRequestId": refund_id, "paymentId": payment_id,
                       "refundAmount": {"currency": "SGD", "value": amount.to_string()}}),
            )
            .await;
        sfu(&result(&v).0)
    }

    async fn tampered(&self, how: Tamper, limit: u64) -> Refused {
        let good = json!({"paymentRequestId": "tampered-1", "quoteId": "q-none",
                          "customerId": CUSTOMER})
        .to_string()
        .into_bytes();
        let (http, v) = match how {
            Tamper::BadSignature => {
                self.send("/v1/payments", &good, SystemTime::now(), true)
                    .await
            }
            Tamper::StaleTime => {
                let ten_minutes_ago = SystemTime::now() - Duration::from_secs(600);
                self.send("/v1/payments", &good, ten_minutes_ago, false)
                    .await
            }
            Tamper::Malformed => {
                self.send(
                    "/v1/payments",
                    b"{\"paymentRequestId\": ",
                    SystemTime::now(),
                    false,
                )
                .await
            }
            Tamper::Oversize => {
                let big = vec![b' '; usize::try_from(limit).unwrap() + 1];
                self.send("/v1/payments", &big, SystemTime::now(), false)
                    .await
            }
        };
        Refused {
            http,
            code: result(&v).1,
        }
    }

    fn read_notice(&self, headers: &HeaderMap, body: &[u8]) -> Result<Noticed, String> {
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .ok_or(format!("header {n} missing"))
        };
        verify_notification_hmac(
            &key(),
            "/notify",
            h("client-id")?,
            h("response-time")?,
            h("signature")?,
            body,
        )
        .map_err(|e| format!("signature: {e}"))?;
        let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        match v["notifyType"].as_str() {
            Some("PAYMENT_RESULT") => Ok(Noticed::Payment {
                request_id: v["payment"]["paymentRequestId"]
                    .as_str()
                    .ok_or("no paymentRequestId")?
                    .to_owned(),
                status: status_of(&v["payment"]),
            }),
            Some("REFUND_RESULT") => Ok(Noticed::Refund {
                refund_request_id: v["refund"]["refundRequestId"]
                    .as_str()
                    .ok_or("no refundRequestId")?
                    .to_owned(),
                result: match v["refund"]["refundStatus"].as_str() {
                    Some("SUCCESS") => Sfu::S,
                    Some("FAIL") => Sfu::F,
                    _ => Sfu::U,
                },
            }),
            other => Err(format!("notifyType {other:?}")),
        }
    }

    fn ack() -> (u16, &'static str, Vec<u8>) {
        (
            200,
            "application/json",
            br#"{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"received"}}"#
                .to_vec(),
        )
    }
}

crate::battery!(crate::native::NativeDriver);

/// `cargo test` replays the native fuzz target's corpus (and any crash files), and each seed is a
/// request its route accepts.
#[test]
fn the_fuzz_corpus_replays_and_its_seeds_are_accepted_requests() {
    use qrbridge::payment::{
        DecodeRequest, PaymentInquiryRequest, PaymentRequest, QuoteRequest, RefundInquiryRequest,
        RefundRequest,
    };
    use qrbridge::scheme::parse_json;
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in [
        "fuzz/corpus/native_request",
        "fuzz/artifacts/native_request",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            qrbridge::fuzzing::native_request(&bytes);
            n += 1;
        }
    }
    assert!(n >= 8, "seed corpus present ({n} files)");
    let seed =
        |name: &str| std::fs::read(root.join("fuzz/corpus/native_request").join(name)).unwrap();
    parse_json::<DecodeRequest>(&seed("decode.json")).unwrap();
    parse_json::<QuoteRequest>(&seed("quote.json")).unwrap();
    parse_json::<PaymentRequest>(&seed("pay.json")).unwrap();
    parse_json::<PaymentInquiryRequest>(&seed("inquiry.json")).unwrap();
    parse_json::<RefundRequest>(&seed("refund.json")).unwrap();
    parse_json::<RefundInquiryRequest>(&seed("refund-inquiry.json")).unwrap();
    let header = String::from_utf8(seed("signature-header")).unwrap();
    qrbridge::scheme::native::auth::SignatureHeader::parse(&header).unwrap();
    let time = String::from_utf8(seed("request-time")).unwrap();
    assert!(qrbridge::scheme::native::auth::parse_request_time(&time).is_some());
}
