//! The aplus scheme's driver: an Alipay+-shaped wallet (userInitiatedPay → pay, inquiryPayment,
//! cancelPayment, refund), every request signed RSA256 with the test-only key of `wallet-my`, every
//! signed response verified with the gateway's test-only public key. The driver signs and verifies
//! with `ring` directly and its own PEM and percent-encoding code, not with `scheme::aplus::sign`.
//! Then the battery, and aplus-only checks over the same environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::header::HeaderMap;
use qrbridge::scheme::{Scheme, SchemeSettings};
use ring::rand::SystemRandom;
use ring::signature::{
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey,
};
use serde_json::{Value, json};

use crate::harness::{
    self, APPROVE, CLIENT, CUSTOMER, Driver, Env, Final, Noticed, Paid, Refused, SGQR_STATIC, Sfu,
    Tamper,
};

const ROUTES: &str = "/schemes/aplus/v1/payments/";
const WALLET_PRIVATE: &str = include_str!("../../testdata/schemes/aplus/wallet-my-private.pem");
/// The gateway's public key as PKCS#1 (made by `openssl rsa -pubin -RSAPublicKey_out`).
const GATEWAY_PUBLIC_PKCS1: &str =
    include_str!("../../testdata/schemes/aplus/gateway-public-pkcs1.pem");

/// The notify URL's path the scheme was built with (the harness inbox: `/notify`).
static NOTIFY_PATH: Mutex<Option<String>> = Mutex::new(None);

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

pub struct AplusDriver {
    addr: SocketAddr,
    key: RsaKeyPair,
    /// request id → the pay body sent.
    sent: Mutex<Vec<(String, Vec<u8>)>>,
    /// request id → payment id.
    ids: Mutex<Vec<(String, String)>>,
}

/// What one exchange returned.
struct Got {
    http: u16,
    v: Value,
}

impl Got {
    fn status(&self) -> Sfu {
        sfu(self.v["result"]["resultStatus"].as_str().unwrap_or(""))
    }
    fn code(&self) -> String {
        self.v["result"]["resultCode"]
            .as_str()
            .unwrap_or("")
            .to_owned()
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

fn final_of(s: Option<&str>, v: &Value) -> Final {
    match s {
        Some("SUCCESS") => Final::Success,
        Some("FAIL") => Final::Fail,
        Some("PROCESSING") => Final::Processing,
        Some("REVERSED") => Final::Reversed,
        Some("CANCELLED") => Final::Cancelled,
        other => panic!("no paymentStatus ({other:?}) in {v}"),
    }
}

/// How a request is sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spoil {
    None,
    Signature,
}

impl AplusDriver {
    fn sign(&self, path: &str, time: &str, body: &[u8]) -> Vec<u8> {
        let mut sig = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                &to_sign(path, CLIENT, time, body),
                &mut sig,
            )
            .unwrap();
        sig
    }

    async fn send_at(&self, route: &str, body: &[u8], at: SystemTime, spoil: Spoil) -> Got {
        let path = format!("{ROUTES}{route}");
        let time = time_text(at);
        let mut sig = self.sign(&path, &time, body);
        if spoil == Spoil::Signature {
            sig[10] ^= 1;
        }
        let (http, headers, bytes) = harness::http(
            self.addr,
            "POST",
            &path,
            &[
                ("content-type", "application/json; charset=UTF-8".to_owned()),
                ("client-id", CLIENT.to_owned()),
                ("request-time", time),
                (
                    "signature",
                    format!(
                        "algorithm=RSA256,keyVersion=1,signature={}",
                        urlencode(&STANDARD.encode(&sig))
                    ),
                ),
            ],
            body,
        )
        .await;
        let v: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{path}: HTTP {http}, body not JSON ({e}): {bytes:?}"));
        // An authenticated request gets a signed answer.
        if !matches!(http, 401 | 403 | 413) {
            verify_from_gateway(&headers, "response-time", &path, &bytes)
                .unwrap_or_else(|e| panic!("{path}: response {v}: {e}"));
        }
        Got { http, v }
    }

    async fn send(&self, route: &str, body: Value) -> Got {
        self.send_at(
            route,
            body.to_string().as_bytes(),
            SystemTime::now(),
            Spoil::None,
        )
        .await
    }

    /// userInitiatedPay with the amount (SGD minor units) the payer entered.
    async fn order(&self, code: &str, amount: Option<u64>) -> Got {
        let mut req = json!({"codeValue": code, "customerId": CUSTOMER, "payToCurrency": "MYR"});
        if let Some(a) = amount {
            req["orderAmount"] = json!({"currency": "SGD", "value": a.to_string()});
        }
        self.send("userInitiatedPay", req).await
    }

    /// The pay body for `order`'s quote.
    fn pay_request(id: &str, order: &Value) -> Vec<u8> {
        json!({
            "paymentRequestId": id,
            "paymentQuote": order["paymentQuote"],
            "paymentAmount": order["order"]["orderAmount"],
            "payToAmount": order["payToAmount"],
            "customerId": CUSTOMER,
            "paymentRequestTime": time_text(SystemTime::now()),
        })
        .to_string()
        .into_bytes()
    }

    async fn pay_body(&self, id: &str, body: &[u8]) -> Paid {
        let got = self
            .send_at("pay", body, SystemTime::now(), Spoil::None)
            .await;
        assert_eq!(got.http, 200, "{}", got.v);
        let payment_id = got.v["paymentId"].as_str().map(str::to_owned);
        if let Some(p) = &payment_id {
            self.ids.lock().unwrap().push((id.to_owned(), p.clone()));
        }
        Paid {
            result: got.status(),
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

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/schemes/aplus")
}

impl Driver for AplusDriver {
    const NAME: &'static str = "aplus";
    const CODE_BAD_SIGNATURE: &'static str = "INVALID_SIGNATURE";
    const CODE_STALE: &'static str = "REQUEST_TIME_INVALID";
    const CODE_MALFORMED: &'static str = "PARAM_ILLEGAL";
    const CODE_OVERSIZE: &'static str = "PARAM_ILLEGAL";
    const CODE_INCONSISTENT: &'static str = "REPEAT_REQ_INCONSISTENT";

    fn scheme(notify_url: &str) -> Arc<dyn Scheme> {
        let path = notify_url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
            .unwrap();
        *NOTIFY_PATH.lock().unwrap() = Some(path);
        let table: toml::Table = format!(
            r#"
            signing_key_pem = "gateway-private.pem"
            signing_key_version = 1
            [clients.wallet-my]
            public_keys = {{ "1" = "wallet-my-public.pem" }}
            notify_url = "{notify_url}"
            pay_to_currency = "MYR"
            "#
        )
        .parse()
        .unwrap();
        qrbridge::scheme::aplus::build(&SchemeSettings {
            table,
            demo_client: None,
            base_dir: testdata(),
        })
        .unwrap()
    }

    fn client(addr: SocketAddr) -> Self {
        AplusDriver {
            addr,
            key: RsaKeyPair::from_pkcs8(&pem(WALLET_PRIVATE, "PRIVATE KEY")).unwrap(),
            sent: Mutex::new(Vec::new()),
            ids: Mutex::new(Vec::new()),
        }
    }

    async fn pay(&self, code: &str, amount: Option<u64>, id: &str) -> Paid {
        let order = self.order(code, amount).await;
        assert_eq!((order.http, order.status()), (200, Sfu::S), "{}", order.v);
        let body = Self::pay_request(id, &order.v);
        self.sent
            .lock()
            .unwrap()
            .push((id.to_owned(), body.clone()));
        self.pay_body(id, &body).await
    }

    async fn repay(&self, id: &str) -> Paid {
        let body = {
            let sent = self.sent.lock().unwrap();
            sent.iter().find(|(r, _)| r == id).unwrap().1.clone()
        };
        self.pay_body(id, &body).await
    }

    async fn pay_inconsistent(&self, id: &str) -> Refused {
        let order = self.order(SGQR_STATIC, Some(999)).await;
        assert_eq!(order.status(), Sfu::S, "{}", order.v);
        let got = self
            .send_at(
                "pay",
                &Self::pay_request(id, &order.v),
                SystemTime::now(),
                Spoil::None,
            )
            .await;
        Refused {
            http: got.http,
            code: got.code(),
        }
    }

    async fn inquire(&self, id: &str) -> Final {
        let got = self
            .send("inquiryPayment", json!({"paymentRequestId": id}))
            .await;
        assert_eq!((got.http, got.status()), (200, Sfu::S), "{}", got.v);
        let status = final_of(got.v["paymentStatus"].as_str(), &got.v);
        // paymentResult says the same as paymentStatus.
        let expected = match status {
            Final::Success => "S",
            Final::Processing => "U",
            Final::Fail | Final::Reversed | Final::Cancelled => "F",
        };
        assert_eq!(
            got.v["paymentResult"]["resultStatus"], expected,
            "{}",
            got.v
        );
        status
    }

    async fn cancel(&self, id: &str) -> Final {
        let got = self
            .send("cancelPayment", json!({"paymentRequestId": id}))
            .await;
        let status = final_of(got.v["paymentStatus"].as_str(), &got.v);
        let expected = match status {
            Final::Cancelled => Sfu::S,
            _ => Sfu::U,
        };
        assert_eq!(got.status(), expected, "{}", got.v);
        status
    }

    async fn refund(&self, id: &str, refund_id: &str, amount: u64) -> Sfu {
        let payment_id = self.payment_id(id);
        let got = self
            .send(
                "refund",
                json!({"refundRequestId": refund_id, "paymentId": payment_id,
                       "refundAmount": {"currency": "SGD", "value": amount.to_string()},
                       "refundReason": "battery"}),
            )
            .await;
        got.status()
    }

    async fn tampered(&self, how: Tamper, limit: u64) -> Refused {
        let good = include_bytes!("../../testdata/schemes/aplus/requests/pay.json");
        let got = match how {
            Tamper::BadSignature => {
                self.send_at("pay", good, SystemTime::now(), Spoil::Signature)
                    .await
            }
            Tamper::StaleTime => {
                let ten_minutes_ago = SystemTime::now() - Duration::from_secs(600);
                self.send_at("pay", good, ten_minutes_ago, Spoil::None)
                    .await
            }
            Tamper::Malformed => {
                self.send_at(
                    "pay",
                    b"{\"paymentRequestId\": ",
                    SystemTime::now(),
                    Spoil::None,
                )
                .await
            }
            Tamper::Oversize => {
                let big = vec![b' '; usize::try_from(limit).unwrap() + 1];
                self.send_at("pay", &big, SystemTime::now(), Spoil::None)
                    .await
            }
        };
        Refused {
            http: got.http,
            code: got.code(),
        }
    }

    fn read_notice(&self, headers: &HeaderMap, body: &[u8]) -> Result<Noticed, String> {
        let path = NOTIFY_PATH
            .lock()
            .unwrap()
            .clone()
            .ok_or("the scheme was not built")?;
        verify_from_gateway(headers, "request-time", &path, body)?;
        let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        match v["notifyType"].as_str() {
            Some("PAYMENT_RESULT") => Ok(Noticed::Payment {
                request_id: v["paymentRequestId"]
                    .as_str()
                    .ok_or("no paymentRequestId")?
                    .to_owned(),
                status: final_of(v["paymentStatus"].as_str(), &v),
            }),
            Some("REFUND_RESULT") => Ok(Noticed::Refund {
                refund_request_id: v["refundRequestId"]
                    .as_str()
                    .ok_or("no refundRequestId")?
                    .to_owned(),
                result: sfu(v["refundResult"]["resultStatus"].as_str().unwrap_or("")),
            }),
            other => Err(format!("notifyType {other:?}")),
        }
    }

    fn ack() -> (u16, &'static str, Vec<u8>) {
        (
            200,
            "application/json; charset=UTF-8",
            br#"{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}"#
                .to_vec(),
        )
    }
}

crate::battery!(crate::aplus::AplusDriver);

// ---------------------------------------------------------------------------------------------
// aplus-only checks over the same environment
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_code_order_then_quote_then_pay_then_inquiry() {
    let env = Env::<AplusDriver>::start().await;
    let w = &env.wallet;
    // Without an amount: the order (merchant), no quote yet.
    let o = w.order(SGQR_STATIC, None).await;
    assert_eq!((o.http, o.status()), (200, Sfu::S), "{}", o.v);
    assert_eq!(o.v["codeType"], "STATIC");
    assert_eq!(
        o.v["order"]["merchant"]["merchantName"],
        "SOBA NOODLE HOUSE"
    );
    assert_eq!(o.v["order"]["merchant"]["merchantMCC"], "5812");
    assert_eq!(o.v["order"]["merchant"]["merchantAddress"]["region"], "SG");
    assert_eq!(
        o.v["order"]["merchant"]["merchantAddress"]["city"],
        "Singapore"
    );
    assert!(o.v.get("paymentQuote").is_none(), "{}", o.v);
    // With the amount: the quote, SGD/MYR, the wallet amount in MYR minor units.
    let o = w.order(SGQR_STATIC, Some(APPROVE)).await;
    assert_eq!(o.status(), Sfu::S, "{}", o.v);
    assert_eq!(
        o.v["order"]["orderAmount"],
        json!({"currency":"SGD","value":"1250"})
    );
    assert_eq!(o.v["paymentQuote"]["quoteCurrencyPair"], "SGD/MYR");
    let price: rust_decimal::Decimal = o.v["paymentQuote"]["quotePrice"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let myr: u64 = o.v["payToAmount"]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(o.v["payToAmount"]["currency"], "MYR");
    // Both currencies have 2 decimals: MYR minor = 1250 × price, up to rounding.
    let exact = price * rust_decimal::Decimal::from(1250);
    let diff = (rust_decimal::Decimal::from(myr) - exact).abs();
    assert!(diff < rust_decimal::Decimal::ONE, "{myr} vs 1250 × {price}");
    // Pay with an amount that is not the quote's: refused, naming the field, nothing sent.
    let mut bad: Value =
        serde_json::from_slice(&AplusDriver::pay_request("pay-x-1", &o.v)).unwrap();
    bad["payToAmount"]["value"] = json!((myr + 1).to_string());
    let got = w.send("pay", bad).await;
    assert_eq!(
        (got.http, got.code()),
        (400, "PARAM_ILLEGAL".to_owned()),
        "{}",
        got.v
    );
    assert!(
        got.v["result"]["resultMessage"]
            .as_str()
            .unwrap()
            .contains("payToAmount"),
        "{}",
        got.v
    );
    assert!(env.ledger().entries.is_empty());
    // Then the right one.
    let body = AplusDriver::pay_request("pay-x-1", &o.v);
    let paid = w.pay_body("pay-x-1", &body).await;
    assert_eq!(paid.result, Sfu::S);
    let got = w
        .send(
            "inquiryPayment",
            json!({"paymentId": paid.payment_id.clone().unwrap()}),
        )
        .await;
    assert_eq!(got.v["paymentRequestId"], "pay-x-1", "{}", got.v);
    assert_eq!(got.v["paymentStatus"], "SUCCESS");
    assert_eq!(got.v["paymentResult"]["resultCode"], "SUCCESS");
    assert_eq!(
        got.v["paymentAmount"],
        json!({"currency":"SGD","value":"1250"})
    );
    assert_eq!(got.v["payToAmount"]["value"], myr.to_string());
    // The refund inquiry of a refund.
    assert_eq!(w.refund("pay-x-1", "rf-x-1", 250).await, Sfu::S);
    let got = w
        .send("inquiryRefund", json!({"refundRequestId": "rf-x-1"}))
        .await;
    assert_eq!(got.status(), Sfu::S, "{}", got.v);
    assert_eq!(got.v["refundResult"]["resultStatus"], "S");
    assert_eq!(
        got.v["refundAmount"],
        json!({"currency":"SGD","value":"250"})
    );
    assert_eq!(got.v["refundToAmount"]["currency"], "MYR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decline_51_is_user_balance_not_enough_and_unknown_quote_is_refused() {
    let env = Env::<AplusDriver>::start().await;
    let w = &env.wallet;
    let o = w.order(SGQR_STATIC, Some(harness::DECLINE)).await;
    let got = w
        .send_at(
            "pay",
            &AplusDriver::pay_request("pay-d-1", &o.v),
            SystemTime::now(),
            Spoil::None,
        )
        .await;
    assert_eq!(
        (got.http, got.status(), got.code()),
        (200, Sfu::F, "USER_BALANCE_NOT_ENOUGH".to_owned()),
        "{}",
        got.v
    );
    assert_eq!(got.v["acquirerResult"]["responseCode"], "51");
    // A quote the scheme never issued: PARAM_ILLEGAL naming paymentQuote.quoteId.
    let body = include_bytes!("../../testdata/schemes/aplus/requests/pay.json");
    let got = w.send_at("pay", body, SystemTime::now(), Spoil::None).await;
    assert_eq!(
        (got.http, got.code()),
        (400, "PARAM_ILLEGAL".to_owned()),
        "{}",
        got.v
    );
    assert!(
        got.v["result"]["resultMessage"]
            .as_str()
            .unwrap()
            .contains("paymentQuote.quoteId")
    );
    // A payment nobody made.
    let got = w
        .send("inquiryPayment", json!({"paymentRequestId": "nope"}))
        .await;
    assert_eq!(
        (got.status(), got.code()),
        (Sfu::F, "ORDER_NOT_EXIST".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_methods_media_types_and_replays_are_refused_in_aplus_form() {
    let env = Env::<AplusDriver>::start().await;
    let (http, _, body) = harness::http(
        env.addr,
        "POST",
        "/schemes/aplus/v1/payments/nope",
        &[],
        b"{}",
    )
    .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (http, v["result"]["resultCode"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (http, headers, body) =
        harness::http(env.addr, "GET", "/schemes/aplus/v1/payments/pay", &[], b"").await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (http, v["result"]["resultCode"].as_str()),
        (405, Some("METHOD_NOT_SUPPORTED"))
    );
    assert_eq!(
        headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    // Unsigned.
    let (http, headers, body) = harness::http(
        env.addr,
        "POST",
        "/schemes/aplus/v1/payments/pay",
        &[],
        b"{}",
    )
    .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (http, v["result"]["resultCode"].as_str()),
        (401, Some("CLIENT_INVALID")),
        "{v}"
    );
    assert!(headers.get("signature").is_none(), "refusals are unsigned");
    // The same signed request twice: the second is a replay.
    let w = &env.wallet;
    let at = SystemTime::now();
    let body = br#"{"paymentRequestId":"nope"}"#;
    let first = w.send_at("inquiryPayment", body, at, Spoil::None).await;
    assert_eq!(first.code(), "ORDER_NOT_EXIST");
    let second = w.send_at("inquiryPayment", body, at, Spoil::None).await;
    assert_eq!(
        (second.http, second.code()),
        (401, "INVALID_SIGNATURE".to_owned()),
        "{}",
        second.v
    );
    // A text body.
    let path = format!("{ROUTES}inquiryPayment");
    let time = time_text(SystemTime::now());
    let sig = w.sign(&path, &time, body);
    let (http, _, bytes) = harness::http(
        env.addr,
        "POST",
        &path,
        &[
            ("content-type", "text/plain".to_owned()),
            ("client-id", CLIENT.to_owned()),
            ("request-time", time),
            (
                "signature",
                format!(
                    "algorithm=RSA256,keyVersion=1,signature={}",
                    urlencode(&STANDARD.encode(sig))
                ),
            ),
        ],
        body,
    )
    .await;
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        (http, v["result"]["resultCode"].as_str()),
        (415, Some("MEDIA_TYPE_NOT_ACCEPTABLE")),
        "{v}"
    );
}

#[test]
fn notifications_render_and_verify_with_the_wallets_reader() {
    use qrbridge::money::{Amount, Currency};
    use qrbridge::payment::{Money, PaymentResponse, PaymentStatus, RequestId};
    use qrbridge::scheme::{Notice, NoticeEvent};
    let scheme = AplusDriver::scheme("http://127.0.0.1:9/notify");
    let notice = Notice {
        call: qrbridge::payment::WalletCall::PaymentResult,
        scheme: "aplus".to_owned(),
        client_id: CLIENT.to_owned(),
        scheme_ref: None,
        notice_id: "N-7".to_owned(),
        event: NoticeEvent::Payment(Box::new(PaymentResponse {
            merchant: None,
            scheme_ref: None,
            payment_id: RequestId::new("P7").unwrap(),
            payment_request_id: RequestId::new("pay-7").unwrap(),
            payment_status: PaymentStatus::Reversed,
            merchant_amount: Money(
                Amount::from_minor(7777, Currency::from_code("SGD").unwrap()).unwrap(),
            ),
            payer_amount: Money(
                Amount::from_minor(26843, Currency::from_code("MYR").unwrap()).unwrap(),
            ),
            refunded_amount: None,
            acquirer: None,
        })),
    };
    let m = scheme.notification(&notice).unwrap().unwrap();
    let mut headers = HeaderMap::new();
    for (k, v) in &m.headers {
        headers.insert(*k, v.parse().unwrap());
    }
    let wallet = AplusDriver::client("127.0.0.1:9".parse().unwrap());
    assert_eq!(
        wallet.read_notice(&headers, &m.body),
        Ok(Noticed::Payment {
            request_id: "pay-7".to_owned(),
            status: Final::Reversed
        })
    );
    let mut tampered = m.body.clone();
    tampered[5] ^= 1;
    assert!(wallet.read_notice(&headers, &tampered).is_err());
    let (status, _, ack) = AplusDriver::ack();
    assert!(scheme.acknowledged(
        hyper::StatusCode::from_u16(status).unwrap(),
        &HeaderMap::new(),
        &ack
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_is_payment_in_process_then_reversed_by_inquiry_and_replay() {
    let env = Env::<AplusDriver>::start().await;
    let w = &env.wallet;
    let o = w.order(SGQR_STATIC, Some(harness::NO_ANSWER)).await;
    let body = AplusDriver::pay_request("pay-u-1", &o.v);
    let got = w
        .send_at("pay", &body, SystemTime::now(), Spoil::None)
        .await;
    assert_eq!(
        (got.http, got.status(), got.code()),
        (200, Sfu::U, "PAYMENT_IN_PROCESS".to_owned()),
        "{}",
        got.v
    );
    assert!(got.v["paymentId"].is_string(), "{}", got.v);
    env.wait_status("pay-u-1", Final::Reversed).await;
    let got = w
        .send("inquiryPayment", json!({"paymentRequestId": "pay-u-1"}))
        .await;
    assert_eq!(got.v["paymentResult"]["resultStatus"], "F", "{}", got.v);
    // The same pay again now says the end, not U.
    let again = w
        .send_at("pay", &body, SystemTime::now(), Spoil::None)
        .await;
    assert_eq!(again.v["paymentStatus"], "REVERSED", "{}", again.v);
    assert_eq!(again.status(), Sfu::F, "{}", again.v);
}

#[test]
fn the_fuzz_corpus_replays_and_the_example_requests_parse() {
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
    assert!(n >= 9, "seed corpus present ({n} files)");
    use qrbridge::scheme::aplus::transformers as t;
    use qrbridge::scheme::parse_json;
    let req = |name: &str| std::fs::read(testdata().join("requests").join(name)).unwrap();
    parse_json::<t::AplusUserInitiatedPayRequest>(&req("userInitiatedPay.json")).unwrap();
    parse_json::<t::AplusPayRequest>(&req("pay.json")).unwrap();
    parse_json::<t::AplusInquiryPaymentRequest>(&req("inquiryPayment.json")).unwrap();
    parse_json::<t::AplusCancelPaymentRequest>(&req("cancelPayment.json")).unwrap();
    parse_json::<t::AplusRefundRequest>(&req("refund.json")).unwrap();
    parse_json::<t::AplusInquiryRefundRequest>(&req("inquiryRefund.json")).unwrap();
}
