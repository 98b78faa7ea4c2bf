//! Unit tests of the aplus scheme: configuration, authentication (every header error named), the
//! calls to the wallet (rendering, our signature checked with the gateway's public key, the
//! wallet's signed answer verified), acknowledgement.

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
const PATH: &str = "/schemes/aplus/aps/api/v1/payments/notifyPayment";

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
wallet_api_url = "http://127.0.0.1:9/mpp/aps/api/v1/payments/"
pay_to_currency = "MYR"
[clients.other]
public_keys = { "1" = "gateway-public.pem" }
pay_to_currency = "THB"
"#;

fn settings(text: &str, demo: Option<&str>) -> SchemeSettings {
    SchemeSettings {
        table: table(text),
        demo_client: demo.map(str::to_owned),
        base_dir: testdata(),
        replay_bytes: crate::scheme::native::auth::REPLAY_DEFAULT_BYTES,
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
            "signing_key_pem = \"gateway-private.pem\"\nsigning_key_version = 1\n[clients.w]\nwallet_api_url = \"ftp://x/y/\"\npublic_keys = { \"1\" = \"wallet-my-public.pem\" }\n",
            "clients.w.wallet_api_url",
        ),
        (
            "signing_key_pem = \"gateway-private.pem\"\nsigning_key_version = 1\n[clients.w]\nwallet_api_url = \"https://w.example/no-slash\"\npublic_keys = { \"1\" = \"wallet-my-public.pem\" }\n",
            "clients.w.wallet_api_url",
        ),
        (
            "signing_key_pem = \"gateway-private.pem\"\nsigning_key_version = 1\n[clients.w]\npay_to_currency = \"XYZ\"\npublic_keys = { \"1\" = \"wallet-my-public.pem\" }\n",
            "clients.w.pay_to_currency",
        ),
        (
            "signing_key_pem = \"gateway-private.pem\"\nsigning_key_version = 1\nacquirer_id = \"\"\n",
            "acquirer_id",
        ),
        (
            "signing_key_pem = \"gateway-private.pem\"\nsigning_key_version = 1\npayment_notify_url = \"gw.example/notify\"\n",
            "payment_notify_url",
        ),
        (
            "signing_key_pem = \"gateway-private.pem\"\nsigning_key_version = 1\n[clients.w]\npsp_id = \"has space\"\npublic_keys = { \"1\" = \"wallet-my-public.pem\" }\n",
            "clients.w.psp_id",
        ),
        (
            "signing_key_pem = \"gateway-private.pem\"\nsigning_key_version = 1\n[clients.w]\npayment_notify_url = 7\npublic_keys = { \"1\" = \"wallet-my-public.pem\" }\n",
            "clients.w.payment_notify_url",
        ),
        (
            "signing_key_pem = \"gateway-private.pem\"\nsigning_key_version = 1\n[clients.w]\nwallet_api_url = \"https://w.example/n/\"\n",
            "clients.w.public_keys",
        ),
        (
            "signing_key_pem = \"gateway-private.pem\"\nsigning_key_version = 1\n[clients.w]\npublic_keys = { \"1\" = \"wallet-my-public.pem\" }\n",
            "clients.w.pay_to_currency",
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
    // The demo wallet pays in MYR without any configuration.
    assert_eq!(
        s.clients
            .get("demo-wallet")
            .and_then(|c| c.pay_to_currency)
            .map(|c| c.code()),
        Some("MYR")
    );
    // The banner's walkthrough (run against `qrbridge serve` by tests/gateway.rs:
    // userInitiatedPay → notifyPayment) only in the demo, with the official paths.
    let walk = s.demo_walkthrough("http://127.0.0.1:1", STATIC).unwrap();
    for route in ["userInitiatedPay", "notifyPayment"] {
        assert!(walk.contains(&format!("${{A}}{route} ")), "{walk}");
    }
    assert!(walk.contains("A=http://127.0.0.1:1/schemes/aplus/aps/api/v1/payments/"));
    assert!(walk.contains(DYNAMIC), "{walk}");
    assert!(
        scheme()
            .demo_walkthrough("http://127.0.0.1:1", STATIC)
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
        Err(e) => (transformers::code_of(&e).as_str(), e.to_string()),
        Ok(_) => ("accepted", String::new()),
    };
    let cases: Vec<Case<'_>> = vec![
        (
            without("client-id"),
            body,
            now,
            "INVALID_CLIENT",
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
            "INVALID_CLIENT",
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

/// The demo's static SGQR code (`cli::serve::DEMO_CODE`).
const STATIC: &str = "00020101021126370009SG.PAYNOW010120210201912345K0301127730011SG.COM.NETS01231201912345K991231235900021511111686614000303088686614028260008COM.GRAB0110A93FO3230Q51380007SG.SGQR0112180907512345020701.00015204581253037025802SG5917SOBA NOODLE HOUSE6009Singapore63048499";
/// The same with point of initiation 12 and SGD 12.50, CRC by an independent Python CRC-16/CCITT-FALSE.
const DYNAMIC: &str = "00020101021226370009SG.PAYNOW010120210201912345K0301127730011SG.COM.NETS01231201912345K991231235900021511111686614000303088686614028260008COM.GRAB0110A93FO3230Q51380007SG.SGQR0112180907512345020701.0001520458125303702540512.505802SG5917SOBA NOODLE HOUSE6009Singapore6304D0CC";

#[test]
fn the_demo_dynamic_code_is_the_static_code_with_an_amount_and_a_new_crc() {
    assert_eq!(dynamic_code(STATIC, "12.50").as_deref(), Some(DYNAMIC));
    assert_eq!(dynamic_code("0002", "1"), None);
}

#[test]
fn aplus_is_a_scheme_whose_wallets_debit_first() {
    assert!(crate::payment::DEBITS_FIRST.contains(&NAME));
    assert_eq!(
        scheme().calls(),
        &[
            WalletCall::PaymentCancel,
            WalletCall::PaymentInquiry,
            WalletCall::RefundCredit
        ]
    );
}

fn money(minor: u64, ccy: &str) -> Money {
    Money(Amount::from_minor(minor, Currency::from_code(ccy).unwrap()).unwrap())
}

fn id(s: &str) -> RequestId {
    RequestId::new(s).unwrap()
}

fn payment(status: PaymentStatus) -> PaymentResponse {
    PaymentResponse {
        scheme_ref: None,
        merchant: None,
        payment_id: id("P9"),
        payment_request_id: id("APR0001"),
        payment_status: status,
        merchant_amount: money(1250, "SGD"),
        payer_amount: money(4314, "MYR"),
        refunded_amount: None,
        acquirer: None,
    }
}

fn notice(call: WalletCall, event: NoticeEvent, scheme_ref: Option<String>) -> Notice {
    Notice {
        call,
        scheme: NAME.to_owned(),
        client_id: "wallet-my".to_owned(),
        scheme_ref,
        notice_id: "N-P9-FAILED".to_owned(),
        event,
    }
}

/// Checks our signature on a call with the gateway's public key (ring, independent of `sign.rs`'s
/// signer) and returns the body as JSON.
fn check_signed(m: &NoticeMessage, path: &str) -> Value {
    let h = header_map(&m.headers);
    assert_eq!(h.get("client-id").unwrap(), "wallet-my");
    let time = h.get("request-time").unwrap().to_str().unwrap();
    let sig = h.get("signature").unwrap().to_str().unwrap();
    let parsed = AplusSignatureHeader::parse(sig).unwrap();
    assert_eq!(parsed.key_version, 2);
    let key = AplusPublicKey::from_pem(GATEWAY_PUBLIC).unwrap();
    let message = sign::string_to_sign("POST", path, "wallet-my", time, &m.body);
    assert!(key.verify(&message, &parsed.signature), "our signature");
    serde_json::from_slice(&m.body).unwrap()
}

#[test]
fn a_failed_payment_becomes_a_signed_cancel_payment_to_the_wallet() {
    let reference = transformers::AplusRef {
        payment_request_id: id("APR0001"),
        payment_id: Some(transformers::AplusWalletId::new("mpp-2026-0001").unwrap()),
    };
    let n = notice(
        WalletCall::PaymentCancel,
        NoticeEvent::Payment(Box::new(payment(PaymentStatus::Fail))),
        Some(reference.encode()),
    );
    let m = scheme().notification(&n).unwrap().unwrap();
    assert_eq!(
        m.url,
        "http://127.0.0.1:9/mpp/aps/api/v1/payments/cancelPayment"
    );
    let v = check_signed(&m, "/mpp/aps/api/v1/payments/cancelPayment");
    assert_eq!(
        v,
        json!({"paymentRequestId": "APR0001", "paymentId": "mpp-2026-0001"})
    );
    // Without the stored reference, the payment's own request id still names the order.
    let n = notice(
        WalletCall::PaymentInquiry,
        NoticeEvent::Payment(Box::new(payment(PaymentStatus::Processing))),
        None,
    );
    let m = scheme().notification(&n).unwrap().unwrap();
    assert!(m.url.ends_with("/inquiryPayment"), "{}", m.url);
    let v = check_signed(&m, "/mpp/aps/api/v1/payments/inquiryPayment");
    assert_eq!(v, json!({"paymentRequestId": "APR0001"}));
}

#[test]
fn a_refund_credit_becomes_the_alipay_plus_refund_call() {
    let refund = RefundResponse {
        refund_id: id("R7"),
        refund_request_id: id("merchant-refund-7"),
        payment_id: id("P9"),
        refund_status: RefundStatus::Success,
        refund_amount: money(500, "SGD"),
        payer_refund_amount: money(1726, "MYR"),
    };
    let reference = transformers::AplusRef {
        payment_request_id: id("APR0001"),
        payment_id: None,
    };
    let n = notice(
        WalletCall::RefundCredit,
        NoticeEvent::Refund(refund.clone()),
        Some(reference.encode()),
    );
    let m = scheme().notification(&n).unwrap().unwrap();
    let v = check_signed(&m, "/mpp/aps/api/v1/payments/refund");
    assert_eq!(v["refundRequestId"], "R7");
    assert_eq!(v["paymentRequestId"], "APR0001");
    assert_eq!(
        v["refundAmount"],
        json!({"currency": "SGD", "value": "500"})
    );
    assert_eq!(
        v["refundToAmount"],
        json!({"currency": "MYR", "value": "1726"})
    );
    assert!(v["refundRequestTime"].as_str().unwrap().ends_with('Z'));
    // Without the payment's reference the call cannot name the order: an error (retried, then
    // parked for an operator), never a call with a guessed id.
    let n = notice(WalletCall::RefundCredit, NoticeEvent::Refund(refund), None);
    assert!(scheme().notification(&n).is_err());
}

#[test]
fn a_client_without_wallet_api_url_cannot_be_asked_to_cancel() {
    let n = Notice {
        client_id: "other".to_owned(),
        ..notice(
            WalletCall::PaymentCancel,
            NoticeEvent::Payment(Box::new(payment(PaymentStatus::Reversed))),
            None,
        )
    };
    let e = scheme().notification(&n).unwrap_err();
    assert!(e.to_string().contains("wallet_api_url"), "{e}");
    // An inquiry it cannot take is simply not needed.
    let n = Notice {
        call: WalletCall::PaymentInquiry,
        ..n
    };
    assert_eq!(scheme().notification(&n).unwrap(), None);
}

/// The wallet's answer signed with its key, as `qrbridge wallet-sim aplus` signs it.
fn wallet_answer(path: &str, body: &[u8], spoil: bool) -> HeaderMap {
    let time = now_text(SystemTime::now());
    let key = sign::AplusSigner::from_pem(WALLET_PRIVATE).unwrap();
    let mut signature = key
        .sign(&sign::string_to_sign(
            "POST",
            path,
            "wallet-my",
            &time,
            body,
        ))
        .unwrap();
    if spoil {
        signature[0] ^= 1;
    }
    header_map(&[
        ("client-id", "wallet-my".to_owned()),
        ("response-time", time),
        (
            "signature",
            AplusSignatureHeader {
                key_version: 1,
                signature,
            }
            .format(),
        ),
    ])
}

#[test]
fn the_wallets_answer_must_carry_its_signature_and_result_s() {
    let s = scheme();
    let n = notice(
        WalletCall::PaymentCancel,
        NoticeEvent::Payment(Box::new(payment(PaymentStatus::Fail))),
        None,
    );
    let m = s.notification(&n).unwrap().unwrap();
    let path = "/mpp/aps/api/v1/payments/cancelPayment";
    let ok = br#"{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}"#;
    assert_eq!(
        s.verify_answer(&n, &m, &wallet_answer(path, ok, false), ok),
        Ok(())
    );
    assert!(
        s.verify_answer(&n, &m, &wallet_answer(path, ok, true), ok)
            .is_err()
    );
    assert!(s.verify_answer(&n, &m, &HeaderMap::new(), ok).is_err());
    // Signed over another path (another API): refused.
    assert!(
        s.verify_answer(&n, &m, &wallet_answer("/other", ok, false), ok)
            .is_err()
    );
    assert!(s.acknowledged(StatusCode::OK, &HeaderMap::new(), ok));
    // resultMessage may be absent or null (the docs' optional fields).
    let bare =
        br#"{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":null},"x":1}"#;
    assert!(s.acknowledged(StatusCode::OK, &HeaderMap::new(), bare));
    let f = br#"{"result":{"resultStatus":"F","resultCode":"ORDER_NOT_EXIST"}}"#;
    assert!(!s.acknowledged(StatusCode::OK, &HeaderMap::new(), f));
    assert_eq!(
        s.refused(StatusCode::OK, &HeaderMap::new(), f).as_deref(),
        Some("ORDER_NOT_EXIST ")
    );
    let u = br#"{"result":{"resultStatus":"U","resultCode":"UNKNOWN_EXCEPTION"}}"#;
    assert!(!s.acknowledged(StatusCode::OK, &HeaderMap::new(), u));
    assert_eq!(s.refused(StatusCode::OK, &HeaderMap::new(), u), None);
    assert!(!s.acknowledged(StatusCode::BAD_GATEWAY, &HeaderMap::new(), ok));
}

#[test]
fn url_paths_are_what_call_signatures_cover() {
    assert_eq!(url_path("https://w.example/a/b?x=1"), Some("/a/b?x=1"));
    assert_eq!(url_path("http://127.0.0.1:9/n"), Some("/n"));
    assert_eq!(url_path("https://w.example"), None);
    assert_eq!(url_path("ftp://w.example/n"), None);
    assert_eq!(url_path("https:///n"), None);
}

#[test]
fn a_full_order_memory_admits_every_new_order_and_lets_the_oldest_go() {
    // 50 orders of weight 100 fit; each new one must be remembered (the wallet debits its user
    // for it), the least recently used going first.
    let memory = super::order_memory::<String>(5_000, String::len);
    for i in 0..200_u32 {
        let key = format!("APR{i:04}");
        // Earlier orders are read (as notifyPayment reads them): frequency must not keep them.
        for j in i.saturating_sub(5)..i {
            let _ = memory.get(&format!("APR{j:04}"));
        }
        memory.insert(key.clone(), Arc::new("x".repeat(93)));
        memory.run_pending_tasks();
        assert!(memory.contains_key(&key), "order {i} was not admitted");
    }
    assert!(!memory.contains_key("APR0000"));
    assert!(
        memory.weighted_size() <= 5_000,
        "{}",
        memory.weighted_size()
    );
}
