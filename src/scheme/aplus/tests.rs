//! Unit tests of the aplus scheme: configuration, authentication (every header error named),
//! notifications (rendering, signature checked with the gateway's public key), acknowledgement.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::*;
use crate::money::{Amount, Currency};
use crate::payment::{Money, PaymentResponse, PaymentStatus, RefundResponse, RefundStatus};

const WALLET_PRIVATE: &str = include_str!("../../../testdata/schemes/aplus/wallet-my-private.pem");
const GATEWAY_PUBLIC: &str = include_str!("../../../testdata/schemes/aplus/gateway-public.pem");
const PATH: &str = "/schemes/aplus/v1/payments/pay";

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/schemes/aplus")
}

fn table(text: &str) -> toml::Table {
    text.parse().unwrap()
}

const CONFIG: &str = r#"
signing_key_pem = "gateway-private.pem"
signing_key_version = 2
[clients.wallet-my]
public_keys = { "1" = "wallet-my-public.pem", "3" = "wallet-my-public-pkcs1.pem" }
notify_url = "http://127.0.0.1:9/aplus/notify?x=1"
pay_to_currency = "MYR"
[clients.other]
public_keys = { "1" = "gateway-public.pem" }
"#;

fn settings(text: &str, demo: Option<&str>) -> SchemeSettings {
    SchemeSettings {
        table: table(text),
        demo_client: demo.map(str::to_owned),
        base_dir: testdata(),
    }
}

fn scheme() -> Aplus {
    Aplus::new(&settings(CONFIG, None)).unwrap()
}

fn config_err(text: &str) -> SchemeConfigError {
    Aplus::new(&settings(text, None)).unwrap_err()
}

#[test]
fn configuration_errors_name_the_key() {
    let cases = [
        ("x = 1\n", "x"),
        (
            "signing_key_pem = \"nope.pem\"\nsigning_key_version = 1\n",
            "signing_key_pem",
        ),
        (
            "signing_key_pem = \"gateway-public.pem\"\nsigning_key_version = 1\n",
            "signing_key_pem",
        ),
        (
            "signing_key_pem = \"gateway-private.pem\"\n",
            "signing_key_version",
        ),
        (
            "signing_key_pem = \"gateway-private.pem\"\nsigning_key_version = 0\n",
            "signing_key_version",
        ),
        ("signing_key_version = 1\n", "signing_key_pem"),
        ("", "signing_key_pem"),
        (
            "signing_key_pem = \"gateway-private.pem\"\nsigning_key_version = 1\n[clients.w]\npublic_keys = { \"v1\" = \"wallet-my-public.pem\" }\n",
            "clients.w.public_keys.v1",
        ),
        (
            "signing_key_pem = \"gateway-private.pem\"\nsigning_key_version = 1\n[clients.w]\npublic_keys = { \"1\" = \"wallet-my-private.pem\" }\n",
            "clients.w.public_keys.1",
        ),
        (
            "signing_key_pem = \"gateway-private.pem\"\nsigning_key_version = 1\n[clients.w]\nnotify_url = \"ftp://x/y\"\npublic_keys = { \"1\" = \"wallet-my-public.pem\" }\n",
            "clients.w.notify_url",
        ),
        (
            "signing_key_pem = \"gateway-private.pem\"\nsigning_key_version = 1\n[clients.w]\npay_to_currency = \"XYZ\"\npublic_keys = { \"1\" = \"wallet-my-public.pem\" }\n",
            "clients.w.pay_to_currency",
        ),
        (
            "signing_key_pem = \"gateway-private.pem\"\nsigning_key_version = 1\n[clients.w]\nnotify_url = \"https://w.example/n\"\n",
            "clients.w.public_keys",
        ),
        (
            "signing_key_pem = \"gateway-private.pem\"\nsigning_key_version = 1\n[clients.w]\nfoo = 1\n",
            "clients.w.foo",
        ),
    ];
    for (text, key) in cases {
        let e = config_err(text);
        assert_eq!(e.key, key, "{text}: {e}");
        assert_eq!(e.scheme, "aplus");
    }
}

#[test]
fn demo_mode_needs_no_keys_and_says_so() {
    let s = Aplus::new(&settings("", Some("demo-wallet"))).unwrap();
    assert!(s.is_demo());
    assert!(!scheme().is_demo());
    assert_eq!(s.prefix(), "/schemes/aplus/");
    // The banner's walkthrough (run by hand against `qrbridge serve`: userInitiatedPay → pay →
    // inquiryPayment all S) only in the demo.
    let walk = s.demo_walkthrough("http://127.0.0.1:1", "CODE").unwrap();
    for route in ["userInitiatedPay", "pay", "inquiryPayment"] {
        assert!(walk.contains(&format!("${{A}}{route} ")), "{walk}");
    }
    assert!(walk.contains("A=http://127.0.0.1:1/schemes/aplus/v1/payments/"));
    assert!(
        scheme()
            .demo_walkthrough("http://127.0.0.1:1", "CODE")
            .is_none()
    );
}

/// Headers of a request signed with the wallet's key (`openssl`-checked in `sign.rs`).
fn signed(
    client: &str,
    version: u32,
    time: &str,
    body: &[u8],
    key: &str,
) -> Vec<(&'static str, String)> {
    let signer = sign::AplusSigner::from_pem(key).unwrap();
    let sig = signer
        .sign(&sign::string_to_sign("POST", PATH, client, time, body))
        .unwrap();
    vec![
        ("client-id", client.to_owned()),
        ("request-time", time.to_owned()),
        (
            "signature",
            format!(
                "algorithm=RSA256,keyVersion={version},signature={}",
                sign::percent_encode(&STANDARD.encode(sig))
            ),
        ),
    ]
}

fn header_map(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            HeaderName::from_static(k),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn auth(
    s: &Aplus,
    pairs: &[(&'static str, String)],
    body: &[u8],
    now: SystemTime,
) -> Result<(String, bool), ApiError> {
    let headers = header_map(pairs);
    let peer = Peer::Anonymous;
    s.authenticate(&Inbound {
        method: "POST",
        path: PATH,
        query: None,
        headers: &headers,
        body,
        peer: &peer,
        received_at: now,
        request_id: "test-request",
    })
}

fn now_text(at: SystemTime) -> String {
    sign::format_time(at)
}

#[test]
fn a_signed_request_is_accepted_once() {
    let s = scheme();
    let now = SystemTime::now();
    let body = br#"{"paymentRequestId":"p-1"}"#;
    let h = signed("wallet-my", 1, &now_text(now), body, WALLET_PRIVATE);
    assert_eq!(
        auth(&s, &h, body, now).unwrap(),
        ("wallet-my".to_owned(), true)
    );
    match auth(&s, &h, body, now) {
        Err(ApiError::InvalidSignature(AuthFault::Replayed)) => {}
        other => panic!("{other:?}"),
    }
    // The PKCS#1 form of the same public key, registered as version 3, verifies too.
    let h = signed(
        "wallet-my",
        3,
        "2026-11-21T20:40:00+08:00",
        body,
        WALLET_PRIVATE,
    );
    let at = sign::parse_time("2026-11-21T12:41:00Z").unwrap();
    assert!(auth(&s, &h, body, at).is_ok());
}

/// Headers, body, when received, the expected code, what the message must say.
type Case<'a> = (Headers, &'a [u8], SystemTime, &'a str, &'a str);
type Headers = Vec<(&'static str, String)>;

#[test]
fn every_authentication_failure_names_its_header_or_key() {
    let s = scheme();
    let now = SystemTime::now();
    let time = now_text(now);
    let body = br#"{"a":"b"}"#;
    let good = signed("wallet-my", 1, &time, body, WALLET_PRIVATE);
    let without = |name: &str| -> Vec<(&'static str, String)> {
        good.iter().filter(|(k, _)| *k != name).cloned().collect()
    };
    let replace = |name: &'static str, value: &str| -> Vec<(&'static str, String)> {
        let mut v = without(name);
        v.push((name, value.to_owned()));
        v
    };
    let code = |r: Result<(String, bool), ApiError>| match r {
        Err(e) => (
            transformers::code_of(&e, AplusRoute::Pay).as_str(),
            e.to_string(),
        ),
        Ok(_) => ("accepted", String::new()),
    };
    let cases: Vec<Case<'_>> = vec![
        (
            without("client-id"),
            body,
            now,
            "CLIENT_INVALID",
            "missing header client-id",
        ),
        (
            without("request-time"),
            body,
            now,
            "REQUEST_TIME_INVALID",
            "missing header request-time",
        ),
        (
            without("signature"),
            body,
            now,
            "INVALID_SIGNATURE",
            "missing header signature",
        ),
        (
            replace("client-id", "nobody"),
            body,
            now,
            "CLIENT_INVALID",
            "unknown client id \"nobody\"",
        ),
        (
            replace(
                "signature",
                &good[2].1.replace("keyVersion=1", "keyVersion=7"),
            ),
            body,
            now,
            "KEY_NOT_FOUND",
            "keyVersion 7",
        ),
        (
            replace("signature", &good[2].1.replace("RSA256", "RSA")),
            body,
            now,
            "INVALID_SIGNATURE",
            "header signature: algorithm \"RSA\"",
        ),
        (
            replace("request-time", "yesterday"),
            body,
            now,
            "REQUEST_TIME_INVALID",
            "header request-time",
        ),
        (
            good.clone(),
            body,
            now + Duration::from_secs(301),
            "REQUEST_TIME_INVALID",
            "outside ±300 s",
        ),
        (
            good.clone(),
            br#"{"a":"c"}"#,
            now,
            "INVALID_SIGNATURE",
            "does not match",
        ),
        (
            signed("other", 1, &time, body, WALLET_PRIVATE),
            body,
            now,
            "INVALID_SIGNATURE",
            "does not match",
        ),
    ];
    for (headers, body, at, want, says) in cases {
        let (got, message) = code(auth(&s, &headers, body, at));
        assert_eq!(got, want, "{headers:?}: {message}");
        assert!(message.contains(says), "{message:?} should say {says:?}");
    }
}

fn sgd(minor: u64) -> Money {
    Money(Amount::from_minor(minor, Currency::from_code("SGD").unwrap()).unwrap())
}

fn myr(minor: u64) -> Money {
    Money(Amount::from_minor(minor, Currency::from_code("MYR").unwrap()).unwrap())
}

fn id(s: &str) -> crate::payment::RequestId {
    crate::payment::RequestId::new(s).unwrap()
}

fn notice(client: &str, event: NoticeEvent) -> Notice {
    Notice {
        call: crate::payment::WalletCall::PaymentResult,
        scheme: NAME.to_owned(),
        client_id: client.to_owned(),
        scheme_ref: None,
        notice_id: "N-1".to_owned(),
        event,
    }
}

fn check_signed(m: &NoticeMessage, path: &str, client: &str) -> Value {
    let h: BTreeMap<&str, &str> = m.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(h["client-id"], client);
    let time = h["request-time"];
    let at = sign::parse_time(time).unwrap();
    let age = SystemTime::now().duration_since(at).unwrap_or_default();
    assert!(age < Duration::from_secs(60), "request-time is now");
    let sig = sign::AplusSignatureHeader::parse(h["signature"]).unwrap();
    assert_eq!(sig.key_version, 2, "our signing_key_version");
    let key = sign::AplusPublicKey::from_pem(GATEWAY_PUBLIC).unwrap();
    let message = sign::string_to_sign("POST", path, client, time, &m.body);
    assert!(
        key.verify(&message, &sig.signature),
        "signature verifies with gateway-public.pem"
    );
    serde_json::from_slice(&m.body).unwrap()
}

#[test]
fn payment_notification_is_rendered_and_signed_for_the_notify_url() {
    let s = scheme();
    let p = PaymentResponse {
        merchant: None,
        scheme_ref: None,
        payment_id: id("P9"),
        payment_request_id: id("pay-9"),
        payment_status: PaymentStatus::Reversed,
        merchant_amount: sgd(7777),
        payer_amount: myr(26843),
        refunded_amount: None,
        acquirer: None,
    };
    let m = s
        .notification(&notice("wallet-my", NoticeEvent::Payment(Box::new(p))))
        .unwrap()
        .unwrap();
    assert_eq!(m.url, "http://127.0.0.1:9/aplus/notify?x=1");
    assert!(m.content_type.starts_with("application/json"));
    let v = check_signed(&m, "/aplus/notify?x=1", "wallet-my");
    assert_eq!(
        v,
        json!({
            "notifyType": "PAYMENT_RESULT",
            "notifyId": "N-1",
            "paymentId": "P9",
            "paymentRequestId": "pay-9",
            "paymentResult": {"resultStatus":"F","resultCode":"PROCESS_FAIL",
                "resultMessage":"the acquirer did not answer in time; the payment was reversed, nothing charged"},
            "paymentStatus": "REVERSED",
            "paymentAmount": {"currency":"SGD","value":"7777"},
            "payToAmount": {"currency":"MYR","value":"26843"}
        })
    );
}

#[test]
fn refund_notification_is_rendered_and_signed() {
    let s = scheme();
    let r = RefundResponse {
        refund_id: id("R1"),
        refund_request_id: id("rf-1"),
        payment_id: id("P1"),
        refund_status: RefundStatus::Success,
        refund_amount: sgd(500),
        payer_refund_amount: myr(1726),
    };
    let m = s
        .notification(&notice("wallet-my", NoticeEvent::Refund(r)))
        .unwrap()
        .unwrap();
    let v = check_signed(&m, "/aplus/notify?x=1", "wallet-my");
    assert_eq!(v["notifyType"], "REFUND_RESULT");
    assert_eq!(v["refundRequestId"], "rf-1");
    assert_eq!(v["refundResult"]["resultStatus"], "S");
    assert_eq!(v["refundAmount"], json!({"currency":"SGD","value":"500"}));
    assert_eq!(
        v["refundToAmount"],
        json!({"currency":"MYR","value":"1726"})
    );
    // A client without notify_url takes no notifications.
    let r2 = RefundResponse {
        refund_id: id("R2"),
        refund_request_id: id("rf-2"),
        payment_id: id("P1"),
        refund_status: RefundStatus::Fail,
        refund_amount: sgd(1),
        payer_refund_amount: myr(3),
    };
    assert!(
        s.notification(&notice("other", NoticeEvent::Refund(r2)))
            .unwrap()
            .is_none()
    );
}

#[test]
fn only_a_200_with_result_status_s_acknowledges() {
    let s = scheme();
    let h = HeaderMap::new();
    let ok = br#"{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}"#;
    assert!(s.acknowledged(StatusCode::OK, &h, ok));
    assert!(s.acknowledged(
        StatusCode::OK,
        &h,
        br#"{"result":{"resultStatus":"S"},"x":1}"#
    ));
    assert!(!s.acknowledged(StatusCode::ACCEPTED, &h, ok));
    assert!(!s.acknowledged(StatusCode::OK, &h, br#"{"result":{"resultStatus":"F"}}"#));
    assert!(!s.acknowledged(StatusCode::OK, &h, br#"{"result":{"resultStatus":"U"}}"#));
    assert!(!s.acknowledged(StatusCode::OK, &h, b"OK"));
}

#[test]
fn url_paths_are_what_notification_signatures_cover() {
    assert_eq!(url_path("https://w.example/a/b?c=d"), Some("/a/b?c=d"));
    assert_eq!(url_path("http://127.0.0.1:8080/n"), Some("/n"));
    assert_eq!(url_path("https://w.example"), None);
    assert_eq!(url_path("ftp://w.example/x"), None);
}
