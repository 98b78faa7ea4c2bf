//! The scheme against the worked example of spec/auth.md (computed independently with Python's
//! `hmac` and `hashlib`), and every way a request can fail authentication.

use std::sync::Arc;

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use super::*;
use crate::time::{ManualClock, parse_timestamp};

const KEY_B64: &str = "cXJicmlkZ2Utc3BlYy1leGFtcGxlLWtleS0wMDAxISE=";
const BODY: &[u8] =
    br#"{"paymentRequestId":"PR-20261121-0001","quoteId":"Q-7f3a","customerId":"cust-42"}"#;
const TIME: &str = "2026-11-21T10:40:00Z";
const DIGEST: &str = "fe17a9f517ffe0de4c75f75b008e983918e34df857ccb105a7f1788a6d9cc5f6";
const SIGNATURE: &str =
    "algorithm=HMAC-SHA256,keyVersion=1,signature=Xz2qNGbDj1nYsxYTZJIu9FNyqsCoxdmhGETg/ivG9UM=";
const RESPONSE_BODY: &[u8] = br#"{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"},"paymentId":"P-1"}"#;
const RESPONSE_SIGNATURE: &str =
    "algorithm=HMAC-SHA256,keyVersion=1,signature=eDU/nzrNX/Bd5FUI9DzRsyGJoWidQNgpzigoMossLVY=";

fn key() -> Secret {
    Secret::from_base64(KEY_B64).unwrap()
}

fn clock_at(t: &str) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(parse_timestamp(t).unwrap()))
}

fn authenticator(clock: Arc<ManualClock>) -> Authenticator {
    let credentials = Credentials::new().with_key("wallet-my-01", 1, ClientKey::HmacSha256(key()));
    Authenticator::new(AuthConfig {
        clock,
        ..AuthConfig::signatures(credentials)
    })
    .unwrap()
}

fn parts<'a>(time: &'a str, signature: &'a str, body: &'a [u8]) -> SignedParts<'a> {
    SignedParts {
        method: "POST",
        path: "/v1/payments",
        client_id: Some("wallet-my-01"),
        request_time: Some(time),
        signature: Some(signature),
        body,
    }
}

#[test]
fn worked_example_of_the_spec_signs_and_verifies() {
    assert_eq!(body_digest(BODY), DIGEST);
    let signed = sign_request_hmac(
        &key(),
        1,
        "POST",
        "/v1/payments",
        "wallet-my-01",
        TIME,
        BODY,
    );
    assert_eq!(signed, SIGNATURE);
    let auth = authenticator(clock_at(TIME));
    let who = auth.verify(&parts(TIME, SIGNATURE, BODY)).unwrap();
    assert_eq!(who.client_id, "wallet-my-01");
    assert_eq!(who.key, Some((Algorithm::HmacSha256, 1)));
}

#[test]
fn worked_example_response_signature_verifies_and_is_what_we_sign() {
    verify_response_hmac(
        &key(),
        "POST",
        "/v1/payments",
        "wallet-my-01",
        "2026-11-21T10:40:01Z",
        RESPONSE_SIGNATURE,
        RESPONSE_BODY,
    )
    .unwrap();
    let auth = authenticator(clock_at("2026-11-21T10:40:01Z"));
    let who = Authenticated {
        client_id: "wallet-my-01".into(),
        key: Some((Algorithm::HmacSha256, 1)),
    };
    let sig = auth
        .sign_response(&who, "POST", "/v1/payments", RESPONSE_BODY)
        .unwrap();
    assert_eq!(sig.response_time, "2026-11-21T10:40:01.000Z");
    verify_response_hmac(
        &key(),
        "POST",
        "/v1/payments",
        "wallet-my-01",
        &sig.response_time,
        &sig.signature,
        RESPONSE_BODY,
    )
    .unwrap();
}

#[test]
fn a_request_signature_never_verifies_as_a_response() {
    assert_eq!(
        verify_response_hmac(
            &key(),
            "POST",
            "/v1/payments",
            "wallet-my-01",
            TIME,
            SIGNATURE,
            BODY
        ),
        Err(AuthFault::Mismatch)
    );
}

#[test]
fn request_time_is_accepted_up_to_five_minutes_either_way_and_refused_beyond() {
    let clock = clock_at(TIME);
    for (now, ok) in [
        ("2026-11-21T10:45:00Z", true),
        ("2026-11-21T10:35:00Z", true),
        ("2026-11-21T10:45:01Z", false),
        ("2026-11-21T10:34:59Z", false),
    ] {
        clock.set(parse_timestamp(now).unwrap());
        let auth_fresh = authenticator(clock.clone());
        let r = auth_fresh.verify(&parts(TIME, SIGNATURE, BODY));
        assert_eq!(r.is_ok(), ok, "now {now}: {r:?}");
        if !ok {
            assert!(matches!(r, Err(AuthFault::StaleRequestTime { .. })));
        }
    }
}

#[test]
fn a_replayed_signature_is_refused() {
    let auth = authenticator(clock_at(TIME));
    auth.verify(&parts(TIME, SIGNATURE, BODY)).unwrap();
    assert_eq!(
        auth.verify(&parts(TIME, SIGNATURE, BODY)),
        Err(AuthFault::Replayed)
    );
}

#[test]
fn a_changed_body_time_path_or_client_breaks_the_signature() {
    let auth = authenticator(clock_at(TIME));
    let tampered =
        br#"{"paymentRequestId":"PR-20261121-0001","quoteId":"Q-7f3b","customerId":"cust-42"}"#;
    assert_eq!(
        auth.verify(&parts(TIME, SIGNATURE, tampered)),
        Err(AuthFault::Mismatch)
    );
    assert_eq!(
        auth.verify(&parts("2026-11-21T10:40:01Z", SIGNATURE, BODY)),
        Err(AuthFault::Mismatch)
    );
    let mut p = parts(TIME, SIGNATURE, BODY);
    p.path = "/v1/refunds";
    assert_eq!(auth.verify(&p), Err(AuthFault::Mismatch));
    p.path = "/v1/payments";
    p.method = "PUT";
    assert_eq!(auth.verify(&p), Err(AuthFault::Mismatch));
}

#[test]
fn missing_headers_unknown_clients_and_keys_are_named() {
    let auth = authenticator(clock_at(TIME));
    let mut p = parts(TIME, SIGNATURE, BODY);
    p.signature = None;
    assert_eq!(auth.verify(&p), Err(AuthFault::MissingHeader("signature")));
    let mut p = parts(TIME, SIGNATURE, BODY);
    p.client_id = Some("someone-else");
    assert_eq!(
        auth.verify(&p),
        Err(AuthFault::UnknownClient("someone-else".into()))
    );
    let other_version = SIGNATURE.replace("keyVersion=1", "keyVersion=2");
    assert!(matches!(
        auth.verify(&parts(TIME, &other_version, BODY)),
        Err(AuthFault::UnknownKey { key_version: 2, .. })
    ));
    let ed = SIGNATURE.replace("HMAC-SHA256", "Ed25519");
    assert!(matches!(
        auth.verify(&parts(TIME, &ed, BODY)),
        Err(AuthFault::UnknownKey { .. })
    ));
    let date_only = auth.verify(&parts("2026-11-21", SIGNATURE, BODY));
    assert!(matches!(
        date_only,
        Err(AuthFault::MalformedHeader {
            header: "request-time",
            ..
        })
    ));
}

#[test]
fn ed25519_clients_are_verified_and_answered_with_our_ed25519_key() {
    let wallet_pkcs8 = generate_ed25519_pkcs8().unwrap();
    let wallet = Ed25519KeyPair::from_pkcs8(wallet_pkcs8.expose()).unwrap();
    let ours = generate_ed25519_pkcs8().unwrap();
    let credentials = Credentials::new().with_key(
        "wallet-ed",
        3,
        ClientKey::Ed25519 {
            public_key: wallet.public_key().as_ref().to_vec(),
        },
    );
    let auth = Authenticator::new(AuthConfig {
        clock: clock_at(TIME),
        response_key: Some((7, ours)),
        ..AuthConfig::signatures(credentials)
    })
    .unwrap();
    let message = canonical_string(
        Direction::Request,
        "POST",
        "/v1/quotes",
        "wallet-ed",
        TIME,
        b"{}",
    );
    let header = SignatureHeader {
        algorithm: Algorithm::Ed25519,
        key_version: 3,
        signature: wallet.sign(message.as_bytes()).as_ref().to_vec(),
    }
    .format();
    let p = SignedParts {
        method: "POST",
        path: "/v1/quotes",
        client_id: Some("wallet-ed"),
        request_time: Some(TIME),
        signature: Some(&header),
        body: b"{}",
    };
    let who = auth.verify(&p).unwrap();
    let sig = auth
        .sign_response(&who, "POST", "/v1/quotes", b"{}")
        .unwrap();
    let parsed = SignatureHeader::parse(&sig.signature).unwrap();
    assert_eq!(parsed.key_version, 7);
    let response_message = canonical_string(
        Direction::Response,
        "POST",
        "/v1/quotes",
        "wallet-ed",
        &sig.response_time,
        b"{}",
    );
    UnparsedPublicKey::new(&ED25519, auth.response_public_key().unwrap())
        .verify(response_message.as_bytes(), &parsed.signature)
        .unwrap();
}

#[test]
fn ed25519_clients_without_a_response_key_are_a_configuration_error() {
    let credentials = Credentials::new().with_key(
        "wallet-ed",
        1,
        ClientKey::Ed25519 {
            public_key: vec![0; 32],
        },
    );
    assert!(matches!(
        Authenticator::new(AuthConfig::signatures(credentials)),
        Err(AuthConfigError::MissingResponseKey(_))
    ));
}

#[test]
fn demo_mode_attributes_everything_to_the_demo_client_and_signs_nothing() {
    let auth = Authenticator::new(AuthConfig::off("demo-wallet")).unwrap();
    let p = SignedParts {
        method: "POST",
        path: "/v1/quotes",
        client_id: Some("someone"),
        request_time: None,
        signature: None,
        body: b"{}",
    };
    let who = auth.verify(&p).unwrap();
    assert_eq!(who.client_id, "demo-wallet");
    assert!(
        auth.sign_response(&who, "POST", "/v1/quotes", b"{}")
            .is_none()
    );
}

#[test]
fn credentials_debug_does_not_show_keys() {
    let c = Credentials::new().with_key("w", 1, ClientKey::HmacSha256(key()));
    let shown = format!("{c:?} {:?}", AuthConfig::signatures(c.clone()));
    assert!(
        !shown.contains(KEY_B64) && !shown.contains("qrbridge-spec"),
        "{shown}"
    );
}

#[test]
fn request_times_take_an_optional_fraction_and_nothing_else() {
    let base = parse_request_time("2026-11-21T10:40:00Z").unwrap();
    assert_eq!(
        parse_request_time("2026-11-21T10:40:00.5Z").unwrap(),
        base + std::time::Duration::from_millis(500)
    );
    assert_eq!(
        parse_request_time("2026-11-21T10:40:00.123456789Z").unwrap(),
        base + std::time::Duration::from_nanos(123_456_789)
    );
    for bad in [
        "2026-11-21",
        "2026-11-21T10:40:00",
        "2026-11-21T10:40:00+08:00",
        "2026-11-21T10:40:00.Z",
        "2026-11-21T10:40:00.1234567890Z",
        "2026-11-21T10:40Z",
        "2026-11-21 10:40:00Z",
    ] {
        assert!(parse_request_time(bad).is_none(), "{bad}");
    }
    assert_eq!(
        request_time(base + std::time::Duration::from_millis(7)),
        "2026-11-21T10:40:00.007Z"
    );
}

/// spec/auth.md §9: a notification, computed independently with Python's `hmac` and `hashlib`.
pub(crate) const NOTIFY_BODY: &[u8] = br#"{"noticeId":"N-019aa5e2-8c40-7000-8000-0000000000aa-REVERSED","notifyType":"PAYMENT_RESULT","payment":{"paymentId":"019aa5e2-8c40-7000-8000-0000000000aa","paymentRequestId":"PR-20261121-0002","paymentStatus":"REVERSED","merchantAmount":{"currency":"SGD","value":"7777"},"payerAmount":{"currency":"MYR","value":"25930"}}}"#;
pub(crate) const NOTIFY_SIGNATURE: &str =
    "algorithm=HMAC-SHA256,keyVersion=1,signature=oJM/yCwAXHk6layacMLsVLzO0rKIlOdfxsQ2ApsNslc=";

#[test]
fn worked_notification_example_verifies_and_is_what_we_sign() {
    assert_eq!(NOTIFY_BODY.len(), 320);
    assert_eq!(
        body_digest(NOTIFY_BODY),
        "9b5e835a0c638a0088a8addb102a624ce0a46edc9b7b4860d0ac3768796f62f3"
    );
    let time = "2026-11-21T10:45:00.000Z";
    verify_notification_hmac(
        &key(),
        "/qrb/notify?v=1",
        "wallet-my-01",
        time,
        NOTIFY_SIGNATURE,
        NOTIFY_BODY,
    )
    .unwrap();
    let auth = authenticator(clock_at("2026-11-21T10:45:00Z"));
    let sig = auth
        .sign_notification("wallet-my-01", "POST", "/qrb/notify?v=1", NOTIFY_BODY)
        .unwrap();
    assert_eq!(sig.response_time, time);
    assert_eq!(sig.signature, NOTIFY_SIGNATURE);
    // Neither a response nor a request signature over the same parts: the first line differs.
    assert!(
        verify_response_hmac(
            &key(),
            "POST",
            "/qrb/notify?v=1",
            "wallet-my-01",
            time,
            NOTIFY_SIGNATURE,
            NOTIFY_BODY
        )
        .is_err()
    );
    assert_ne!(
        sign_request_hmac(
            &key(),
            1,
            "POST",
            "/qrb/notify?v=1",
            "wallet-my-01",
            time,
            NOTIFY_BODY
        ),
        NOTIFY_SIGNATURE
    );
    // Another path, or a client without keys, does not get this signature.
    assert!(
        verify_notification_hmac(
            &key(),
            "/qrb/notify",
            "wallet-my-01",
            time,
            NOTIFY_SIGNATURE,
            NOTIFY_BODY
        )
        .is_err()
    );
    assert!(
        auth.sign_notification("wallet-unknown", "POST", "/n", NOTIFY_BODY)
            .is_none()
    );
}

#[test]
fn notifications_are_signed_with_the_newest_key_version() {
    let credentials = Credentials::new()
        .with_key("w", 1, ClientKey::HmacSha256(key()))
        .with_key(
            "w",
            3,
            ClientKey::HmacSha256(Secret::new(b"another-key-of-32-bytes-for-w-v3".to_vec())),
        )
        .with_key("x", 9, ClientKey::HmacSha256(key()));
    let auth = Authenticator::new(AuthConfig {
        clock: clock_at("2026-11-21T10:45:00Z"),
        ..AuthConfig::signatures(credentials)
    })
    .unwrap();
    let sig = auth.sign_notification("w", "POST", "/n", b"{}").unwrap();
    assert!(sig.signature.contains("keyVersion=3"), "{}", sig.signature);
    let off = Authenticator::new(AuthConfig::off("demo")).unwrap();
    assert!(off.sign_notification("demo", "POST", "/n", b"{}").is_none());
}

#[test]
fn ed25519_clients_get_notifications_signed_with_our_ed25519_key() {
    let wallet_pkcs8 = generate_ed25519_pkcs8().unwrap();
    let wallet = Ed25519KeyPair::from_pkcs8(wallet_pkcs8.expose()).unwrap();
    let credentials = Credentials::new().with_key(
        "wallet-ed",
        3,
        ClientKey::Ed25519 {
            public_key: wallet.public_key().as_ref().to_vec(),
        },
    );
    let auth = Authenticator::new(AuthConfig {
        clock: clock_at(TIME),
        response_key: Some((7, generate_ed25519_pkcs8().unwrap())),
        ..AuthConfig::signatures(credentials)
    })
    .unwrap();
    let sig = auth
        .sign_notification("wallet-ed", "POST", "/n?x=1", NOTIFY_BODY)
        .unwrap();
    assert!(sig.signature.starts_with("algorithm=Ed25519,keyVersion=7,"));
    let ours = auth.response_public_key().unwrap();
    let check = |path: &str, body: &[u8]| {
        verify_notification_ed25519(
            ours,
            path,
            "wallet-ed",
            &sig.response_time,
            &sig.signature,
            body,
        )
    };
    check("/n?x=1", NOTIFY_BODY).unwrap();
    assert!(check("/n", NOTIFY_BODY).is_err());
    assert!(check("/n?x=1", b"{}").is_err());
    // The wallet's own key is not the signer.
    assert!(
        verify_notification_ed25519(
            wallet.public_key().as_ref(),
            "/n?x=1",
            "wallet-ed",
            &sig.response_time,
            &sig.signature,
            NOTIFY_BODY,
        )
        .is_err()
    );
}
