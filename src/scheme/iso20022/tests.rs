#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::scheme::Peer;
use crate::scheme::native::auth::AuthFault;
use std::path::PathBuf;

use hyper::StatusCode;
use hyper::header::HeaderMap;

use super::transformers::*;
use super::*;
use crate::money::{Amount, Currency};
use crate::payment::{AcquirerResult, PaymentResponse, PaymentStatus, RefundResponse};
use crate::scheme::native::auth::verify_notification_hmac;

const KEY: &[u8] = b"test-key-for-wallet-my-32-bytes!";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/schemes/iso20022")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap()
}

fn ccy(code: &str) -> Currency {
    Currency::from_code(code).unwrap()
}

fn amount(minor: u64, code: &str) -> Amount {
    Amount::from_minor(minor, ccy(code)).unwrap()
}

fn payment() -> Iso20022Payment {
    let doc: Iso20022Pacs008 = parse_document(
        &fixture("valid/pacs008.xml"),
        NS_PACS008,
        "FIToFICstmrCdtTrf",
    )
    .unwrap();
    Iso20022Payment::try_from(doc).unwrap()
}

#[test]
fn the_example_pacs008_reads_as_exact_amounts_and_its_identifiers() {
    let p = payment();
    assert_eq!(p.msg_id, "MYWALLET20261121-0001");
    assert_eq!(p.end_to_end_id, "MYWALLET-E2E-0001");
    assert_eq!(p.uetr.as_str(), "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b");
    assert_eq!(p.accepted_at, "2026-11-21T10:39:58Z");
    assert_eq!(p.quote_id.as_str(), "0b9e6a52-8f0e-4d0b-9b8c-2a7c1d4e5f60");
    assert_eq!(p.customer_id.expose(), "cust-1");
    assert_eq!(p.settlement, amount(1250, "SGD"));
    assert_eq!(p.instructed, amount(4042, "MYR"));
    assert_eq!(p.rate, "3.2336".parse().unwrap());
    assert_eq!(p.creditor_account, "111116866140003");
    assert_eq!(p.creditor_name, "SOBA NOODLE HOUSE");
}

#[test]
fn every_invalid_fixture_is_refused_with_its_code_naming_its_element() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixtures().join("invalid")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let (first, rest) = text.split_once('\n').unwrap();
        let expect = first
            .strip_prefix("<!-- expect: ")
            .and_then(|s| s.strip_suffix(" -->"))
            .unwrap_or_else(|| panic!("{path:?}: no expect line"));
        let (code, element) = expect.split_once(' ').unwrap();
        let fault =
            parse_document::<Iso20022Pacs008>(rest.as_bytes(), NS_PACS008, "FIToFICstmrCdtTrf")
                .and_then(Iso20022Payment::try_from)
                .expect_err(&format!("{path:?} must be refused"));
        assert_eq!(fault.code, code, "{path:?}: {fault}");
        assert_eq!(fault.http, 400, "{path:?}: {fault}");
        assert!(
            fault.path.starts_with(element),
            "{path:?}: expected the path {element}, got {fault}"
        );
        seen += 1;
    }
    assert!(seen >= 20, "only {seen} invalid fixtures");
}

#[test]
fn decimal_amounts_convert_exactly_within_the_currency_exponent() {
    let at = "X/InstdAmt";
    let a = |v: &str, c: &str| {
        Iso20022Amount {
            ccy: c.to_owned(),
            value: v.to_owned(),
        }
        .to_amount(at)
    };
    assert_eq!(a("40.4", "MYR").unwrap().minor(), 4040);
    assert_eq!(a("40.42", "MYR").unwrap().minor(), 4042);
    let three = a("40.425", "MYR").unwrap_err();
    assert_eq!((three.code, three.path.as_str()), ("CH16", at));
    assert!(three.reason.contains("3 decimals"), "{three}");
    assert_eq!(a("100", "JPY").unwrap().minor(), 100);
    let jpy = a("100.0", "JPY").unwrap_err();
    assert!(jpy.reason.contains("JPY has 0"), "{jpy}");
    assert_eq!(a("0.001", "KWD").unwrap().minor(), 1);
    for bad in [
        "", "1e2", "+1", "-1", " 1", "1.", ".5", "1.2.3", "1,00", "١٢",
    ] {
        assert!(a(bad, "MYR").is_err(), "{bad:?} accepted");
    }
    let unknown = a("1", "XXQ").unwrap_err();
    assert_eq!(unknown.path, "X/InstdAmt/@Ccy");
}

#[test]
fn rates_are_positive_plain_decimals() {
    assert_eq!(rate("3.2336", "r").unwrap(), "3.2336".parse().unwrap());
    assert_eq!(rate("3.23360", "r").unwrap(), rate("3.2336", "r").unwrap());
    for bad in [
        "", "-1", "+1", "1e3", "0", "0.000", ".5", "3.", "1.2.3", "NaN",
    ] {
        let e = rate(bad, "r").unwrap_err();
        assert_eq!((e.code, e.path.as_str()), ("CH16", "r"), "{bad:?}");
    }
}

#[test]
fn uetr_must_be_a_lower_case_version_4_uuid() {
    assert!(uetr("6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b", "u").is_ok());
    for bad in [
        "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4",
        "6f1c2b3a-4d5e-4f60-7a7b-9c0d1e2f3a4b",
        "6f1c2b3a-4d5e-5f60-8a7b-9c0d1e2f3a4b",
        "6f1c2b3a4d5e4f608a7b9c0d1e2f3a4b0000",
        "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4g",
    ] {
        assert!(uetr(bad, "u").is_err(), "{bad}");
    }
}

#[test]
fn iso_date_times_with_fractions_and_offsets_are_accepted() {
    for ok in [
        "2026-11-21T10:40:00Z",
        "2026-11-21T10:40:00.123Z",
        "2026-11-21T10:40:00+08:00",
        "2026-11-21T10:40:00",
    ] {
        assert!(date_time(ok, "d").is_ok(), "{ok}");
    }
    for bad in [
        "2026-11-21",
        "2026-11-21 10:40:00Z",
        "2026-11-21T10:40:00.Z",
        "x",
    ] {
        assert!(date_time(bad, "d").is_err(), "{bad}");
    }
}

fn terms() -> Iso20022Terms {
    Iso20022Terms {
        merchant_amount: amount(1250, "SGD"),
        payer_amount: amount(4042, "MYR"),
        rate: "3.23360".parse().unwrap(),
        source_rate: Some("0.3092528451".parse().unwrap()),
        account: "111116866140003".to_owned(),
        name: "SOBA NOODLE HOUSE".to_owned(),
    }
}

#[test]
fn the_terms_store_stays_within_its_bytes_and_always_admits_a_fresh_quote() {
    let bound: u64 = 64 << 10;
    let store = terms_store(bound, std::time::Duration::from_secs(600));
    let one = u64::from(terms_weight(&format!("{:036}", 0), &terms()));
    assert!(one > 300, "an entry weighs what it holds: {one}");
    for i in 0..5_000 {
        store.insert(format!("{i:036}"), terms());
    }
    store.run_pending_tasks();
    assert!(
        store.weighted_size() <= bound,
        "{} > {bound}",
        store.weighted_size()
    );
    // LRU: the newest quotes' terms are held (TinyLFU would refuse new keys once full).
    for i in 4_990..5_000 {
        assert!(store.contains_key(&format!("{i:036}")), "{i}");
    }
    assert!(!store.contains_key(&format!("{:036}", 0)));
}

#[test]
fn a_pacs008_must_agree_with_its_quote_or_is_refused_with_the_reason_and_element() {
    let p = payment();
    assert_eq!(p.agrees_with(&terms(), Iso20022Profile::Cbpr), Ok(()));
    // The same document in the Nexus profile: settlement and rate in the other direction.
    let f = p.agrees_with(&terms(), Iso20022Profile::Nexus).unwrap_err();
    assert_eq!(
        (f.code, f.path.as_str()),
        ("AM03", "FIToFICstmrCdtTrf/CdtTrfTxInf/IntrBkSttlmAmt/@Ccy")
    );
    let nexus = Iso20022Payment {
        settlement: amount(4042, "MYR"),
        rate: "0.3092528451".parse().unwrap(),
        ..payment()
    };
    assert_eq!(nexus.agrees_with(&terms(), Iso20022Profile::Nexus), Ok(()));
    let refused = |t: Iso20022Terms| p.agrees_with(&t, Iso20022Profile::Cbpr).unwrap_err();
    let f = refused(Iso20022Terms {
        merchant_amount: amount(1251, "SGD"),
        ..terms()
    });
    assert_eq!(
        (f.code, f.http, f.path.as_str()),
        ("AM09", 422, "FIToFICstmrCdtTrf/CdtTrfTxInf/IntrBkSttlmAmt")
    );
    let f = refused(Iso20022Terms {
        payer_amount: amount(4042, "THB"),
        ..terms()
    });
    assert_eq!(
        (f.code, f.path.as_str()),
        ("AM03", "FIToFICstmrCdtTrf/CdtTrfTxInf/InstdAmt/@Ccy")
    );
    let f = refused(Iso20022Terms {
        rate: "3.2337".parse().unwrap(),
        ..terms()
    });
    assert_eq!(
        (f.code, f.path.as_str()),
        ("AM09", "FIToFICstmrCdtTrf/CdtTrfTxInf/XchgRate")
    );
    let f = refused(Iso20022Terms {
        account: "999".to_owned(),
        ..terms()
    });
    assert_eq!(
        (f.code, f.path.as_str()),
        ("AC03", "FIToFICstmrCdtTrf/CdtTrfTxInf/CdtrAcct/Id/Othr/Id")
    );
    let f = refused(Iso20022Terms {
        name: "OTHER SHOP".to_owned(),
        ..terms()
    });
    assert_eq!(
        (f.code, f.path.as_str()),
        ("BE01", "FIToFICstmrCdtTrf/CdtTrfTxInf/Cdtr/Nm")
    );
}

#[test]
fn the_other_example_documents_read() {
    let s: Iso20022Pacs028 =
        parse_document(&fixture("valid/pacs028.xml"), NS_PACS028, "FIToFIPmtStsReq").unwrap();
    let s = Iso20022StatusRequest::try_from(s).unwrap();
    assert_eq!(s.uetr.as_str(), "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b");
    assert_eq!(s.orgnl_msg_id.as_deref(), Some("MYWALLET20261121-0001"));

    let c: Iso20022Camt056 =
        parse_document(&fixture("valid/camt056.xml"), NS_CAMT056, "FIToFIPmtCxlReq").unwrap();
    let c = Iso20022CancelRequest::try_from(c).unwrap();
    assert_eq!(c.assignment_id, "MYWALLET-CXL-0001");
    assert_eq!(
        c.assigner.agt.unwrap().fin_instn_id.bicfi.as_deref(),
        Some("MYWLMYKLXXX")
    );
    assert_eq!(c.cxl_id.as_deref(), Some("CXL-0001"));
    assert_eq!(c.uetr.as_str(), "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b");

    // A pacs.028 posted where a pacs.008 is expected is refused, naming what was found.
    let wrong = parse_document::<Iso20022Pacs008>(
        &fixture("valid/pacs028.xml"),
        NS_PACS008,
        "FIToFICstmrCdtTrf",
    )
    .unwrap_err();
    assert_eq!(wrong.code, "FF01");
}

#[test]
fn predefined_entities_and_character_references_are_read() {
    let xml = String::from_utf8(fixture("valid/pacs008.xml"))
        .unwrap()
        .replace("SOBA NOODLE HOUSE", "SOBA &amp; NOODLE &#x48;OUSE");
    let doc: Iso20022Pacs008 =
        parse_document(xml.as_bytes(), NS_PACS008, "FIToFICstmrCdtTrf").unwrap();
    let p = Iso20022Payment::try_from(doc).unwrap();
    assert_eq!(p.creditor_name, "SOBA & NOODLE HOUSE");
}

#[test]
fn every_error_has_a_status_and_reason() {
    let (s, r) = reason_for(&ApiError::AcquirerDeclined {
        response_code: "51".to_owned(),
    });
    assert_eq!((s, r), (Iso20022TxSts::Rjct, Iso20022Reason::Code("AM04")));
    let (s, _) = reason_for(&ApiError::AcquirerTimeout {
        payment_id: "p".to_owned(),
        cause: "no answer".to_owned(),
    });
    assert_eq!(s, Iso20022TxSts::Pdng);
    let (_, r) = reason_for(&ApiError::RepeatRequestInconsistent {
        request_id: "x".to_owned(),
    });
    assert_eq!(r.as_str(), "AM05");
    let (_, r) = reason_for(&ApiError::InvalidSignature(AuthFault::StaleRequestTime {
        request_time: "t".to_owned(),
        now: "n".to_owned(),
        window: Duration::from_secs(300),
    }));
    assert_eq!(r, Iso20022Reason::Proprietary("STALE_REQUEST_TIME"));
    let (_, r) = reason_for(&ApiError::InvalidSignature(AuthFault::Mismatch));
    assert_eq!(r, Iso20022Reason::Proprietary("INVALID_SIGNATURE"));
    assert_eq!(decline_reason("05"), Iso20022Reason::Code("AG01"));
    assert_eq!(decline_reason("XY"), Iso20022Reason::Code("MS03"));
}

fn response(status: PaymentStatus, code: &str) -> PaymentResponse {
    PaymentResponse {
        merchant: None,
        scheme_ref: None,
        payment_id: RequestId::new("7d1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b").unwrap(),
        payment_request_id: RequestId::new("6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b").unwrap(),
        payment_status: status,
        merchant_amount: Money(amount(1250, "SGD")),
        payer_amount: Money(amount(4042, "MYR")),
        refunded_amount: None,
        acquirer: Some(AcquirerResult {
            stan: "000001".to_owned(),
            rrn: "000000000001".to_owned(),
            auth_code: None,
            response_code: code.to_owned(),
        }),
    }
}

#[test]
fn a_pacs002_is_deterministic_and_reads_back() {
    let p = payment();
    let original = Iso20022Original {
        msg_id: p.msg_id.clone(),
        msg_nm_id: MSG_PACS008,
        instr_id: None,
        end_to_end_id: Some(p.end_to_end_id.clone()),
        uetr: Some(p.uetr.to_string()),
    };
    let (tx_sts, reason) = payment_status(&response(PaymentStatus::Fail, "51"));
    let status = Iso20022Status {
        tx_sts,
        reason,
        info: None,
        accepted_at: Some(p.accepted_at.clone()),
        reference: Some("7d1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b".to_owned()),
        amount: Some(p.settlement),
    };
    let a = render_pacs002(&original, &status, &p.accepted_at).unwrap();
    let b = render_pacs002(&original, &status, &p.accepted_at).unwrap();
    assert_eq!(a, b);
    let text = String::from_utf8(a.clone()).unwrap();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.002.001.10\">"), "{text}");
    assert!(
        text.contains("<IntrBkSttlmAmt Ccy=\"SGD\">12.50</IntrBkSttlmAmt>"),
        "{text}"
    );
    let doc = parse_pacs002(&a).unwrap();
    let r = doc.report;
    assert_eq!(r.grp_hdr.cre_dt_tm, "2026-11-21T10:39:58Z");
    assert!(r.grp_hdr.msg_id.starts_with("QRB") && r.grp_hdr.msg_id.len() == 35);
    assert_eq!(
        r.orgnl_grp_inf_and_sts.orgnl_msg_id,
        "MYWALLET20261121-0001"
    );
    assert_eq!(r.orgnl_grp_inf_and_sts.orgnl_msg_nm_id, "pacs.008.001.08");
    let tx = r.tx_inf_and_sts.unwrap();
    assert_eq!(tx.tx_sts, "RJCT");
    assert_eq!(
        tx.sts_rsn_inf.unwrap().rsn.unwrap().cd.as_deref(),
        Some("AM04")
    );
    assert_eq!(
        tx.orgnl_uetr.as_deref(),
        Some("6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b")
    );
    assert_eq!(tx.orgnl_end_to_end_id.as_deref(), Some("MYWALLET-E2E-0001"));
    assert_eq!(
        tx.clr_sys_ref.as_deref(),
        Some("7d1c2b3a4d5e4f608a7b9c0d1e2f3a4b")
    );
    // Another status is another message id.
    let ok = Iso20022Status {
        tx_sts: Iso20022TxSts::Accc,
        reason: None,
        ..status
    };
    let c = parse_pacs002(&render_pacs002(&original, &ok, &p.accepted_at).unwrap()).unwrap();
    assert_ne!(c.report.grp_hdr.msg_id, r.grp_hdr.msg_id);
    assert!(c.report.tx_inf_and_sts.unwrap().sts_rsn_inf.is_none());
}

#[test]
fn payment_states_map_to_statuses_and_reasons() {
    let s = |st| payment_status(&response(st, "00"));
    assert_eq!(s(PaymentStatus::Success), (Iso20022TxSts::Accc, None));
    assert_eq!(s(PaymentStatus::Processing), (Iso20022TxSts::Pdng, None));
    assert_eq!(
        s(PaymentStatus::Reversed),
        (Iso20022TxSts::Rjct, Some(Iso20022Reason::Code("AB03")))
    );
    assert_eq!(
        s(PaymentStatus::Cancelled),
        (Iso20022TxSts::Rjct, Some(Iso20022Reason::Code("FOCR")))
    );
    assert_eq!(
        resolution(PaymentStatus::Cancelled).0,
        Iso20022Resolution::Cncl
    );
    assert_eq!(
        resolution(PaymentStatus::Processing).0,
        Iso20022Resolution::Pdcr
    );
    // Rejections carry ExternalPaymentCancellationRejection1Code values with their meaning:
    // nothing to cancel is a narrative, a settled payment the agent's decision.
    let (r, why) = resolution(PaymentStatus::Fail);
    assert_eq!(r, Iso20022Resolution::Rjcr(Iso20022Reason::Code("NARR")));
    assert!(why.is_some());
    assert_eq!(
        resolution(PaymentStatus::Success).0,
        Iso20022Resolution::Rjcr(Iso20022Reason::Code("AGNT"))
    );
    assert_eq!(
        cancellation_reason_for(&ApiError::OrderNotFound {
            what: "payment",
            id: "x".to_owned()
        }),
        Iso20022Reason::Code("NOOR")
    );
    // In a pacs.002 an unknown original is AG09 (NOOR is not a status reason).
    assert_eq!(
        reason_for(&ApiError::OrderNotFound {
            what: "payment",
            id: "x".to_owned()
        })
        .1,
        Iso20022Reason::Code("AG09")
    );
}

#[test]
fn the_quote_query_decodes_the_code_and_the_amount_exactly() {
    let qr = "000201010211...6304ABCD SOBA & co=1";
    let q = format!(
        "codeValue={}&customerId=cust-1&sourceCurrency=MYR&amount=12.5&destinationCurrency=SGD",
        form_encode(qr)
    );
    let parsed = Iso20022QuoteQuery::try_from(q.as_str()).unwrap();
    assert_eq!(parsed.code_value.as_str(), qr);
    assert_eq!(parsed.customer_id.expose(), "cust-1");
    assert_eq!(parsed.source_currency, ccy("MYR"));
    assert_eq!(parsed.amount, Some(amount(1250, "SGD")));
    assert_eq!(form_decode("a+b%2Bc").unwrap(), "a b+c");
    let refused = |q: &str| Iso20022QuoteQuery::try_from(q).unwrap_err();
    assert_eq!(
        refused("customerId=c&sourceCurrency=MYR").path,
        "query/codeValue"
    );
    assert_eq!(
        refused("codeValue=x&customerId=c&sourceCurrency=MYR&amount=1").path,
        "query/destinationCurrency"
    );
    let f = refused(
        "codeValue=x&customerId=c&sourceCurrency=MYR&amount=12.505&destinationCurrency=SGD",
    );
    assert_eq!((f.code, f.path.as_str()), ("CH16", "query/amount"));
    assert_eq!(
        refused("codeValue=x&codeValue=y&customerId=c&sourceCurrency=MYR").path,
        "query/codeValue"
    );
    assert_eq!(
        refused("codeValue=x&customerId=c&sourceCurrency=MYR&foo=1").path,
        "query/foo"
    );
    assert_eq!(refused("codeValue=%4&customerId=c").code, "FF01");
}

fn settings(table: &str, demo: Option<&str>) -> SchemeSettings {
    SchemeSettings {
        table: toml::from_str(table).unwrap(),
        demo_client: demo.map(str::to_owned),
        base_dir: PathBuf::from("."),
        replay_bytes: crate::scheme::native::auth::REPLAY_DEFAULT_BYTES,
    }
}

fn table(notify: &str) -> String {
    use base64::Engine as _;
    format!(
        "[clients.wallet-my]\nhmac_key_base64 = \"{}\"\nkey_version = 3\nnotify_url = \"{notify}\"\n",
        base64::engine::general_purpose::STANDARD.encode(KEY)
    )
}

#[test]
fn configuration_errors_name_the_key() {
    let err = |t: &str| Iso20022::new(&settings(t, None)).unwrap_err().to_string();
    // An absent table builds a scheme nobody can call.
    assert!(!Iso20022::new(&settings("", None)).unwrap().is_demo());
    assert!(err("[clients.w]\nkey_version = 1\n").contains("clients.w.hmac_key_base64"));
    assert!(err("[clients.w]\nhmac_key_base64 = \"!!\"\n").contains("not base64"));
    assert!(err("[clients.w]\nhmac_key_base64 = \"c2hvcnQ=\"\n").contains("at least 16 bytes"));
    assert!(err(&table("ftp://x/")).contains("clients.wallet-my.notify_url"));
    assert!(err(&table("http://wallet.example/n")).contains("loopback"));
    assert!(err("colour = 1\n").contains("colour"));
    let e = err(
        "[clients.w]\nhmac_key_base64 = \"dGVzdC1rZXktZm9yLXdhbGxldC1teS0zMi1ieXRlcyE=\"\nkey_version = \"one\"\n",
    );
    assert!(e.contains("clients.w.key_version"), "{e}");
    let demo = Iso20022::new(&settings("", Some("demo"))).unwrap();
    assert!(demo.is_demo());
    let signed = Iso20022::new(&settings(&table("http://127.0.0.1:9/notify"), None)).unwrap();
    assert!(!signed.is_demo());
    assert!(crate::scheme::REGISTRY.iter().any(|e| e.name == NAME));
}

#[test]
fn a_notification_is_a_signed_pacs002_the_wallet_can_verify() {
    let scheme = Iso20022::new(&settings(
        &table("http://127.0.0.1:9/wallet/notify?x=1"),
        None,
    ))
    .unwrap();
    let p = payment();
    let notice = Notice {
        call: crate::payment::WalletCall::PaymentResult,
        scheme: NAME.to_owned(),
        client_id: "wallet-my".to_owned(),
        scheme_ref: Some(p.scheme_ref(Iso20022Profile::Cbpr)),
        notice_id: "n-1".to_owned(),
        event: NoticeEvent::Payment(Box::new(response(PaymentStatus::Reversed, ""))),
    };
    let msg = scheme.notification(&notice).unwrap().unwrap();
    assert_eq!(msg.url, "http://127.0.0.1:9/wallet/notify?x=1");
    assert_eq!(msg.content_type, "application/xml");
    let h = |n: &str| {
        msg.headers
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(h("client-id"), "wallet-my");
    assert!(
        h("signature").contains("keyVersion=3"),
        "{}",
        h("signature")
    );
    let key = Secret::new(KEY.to_vec());
    let verify = |body: &[u8]| {
        verify_notification_hmac(
            &key,
            "/wallet/notify?x=1",
            "wallet-my",
            &h("response-time"),
            &h("signature"),
            body,
        )
    };
    assert_eq!(verify(&msg.body), Ok(()));
    let mut tampered = msg.body.clone();
    tampered[60] ^= 1;
    assert!(verify(&tampered).is_err());
    let doc = parse_pacs002(&msg.body).unwrap().report;
    assert_eq!(
        doc.orgnl_grp_inf_and_sts.orgnl_msg_id,
        "MYWALLET20261121-0001"
    );
    let tx = doc.tx_inf_and_sts.unwrap();
    assert_eq!(tx.tx_sts, "RJCT");
    assert_eq!(
        tx.sts_rsn_inf.unwrap().rsn.unwrap().cd.as_deref(),
        Some("AB03")
    );
    assert_eq!(tx.orgnl_end_to_end_id.as_deref(), Some("MYWALLET-E2E-0001"));

    // A refund that started at the merchant goes out as a pacs.004 from us: the original named
    // from the journaled reference, the refund in both currencies, the rate that links them.
    let refund = Notice {
        call: crate::payment::WalletCall::RefundCredit,
        scheme_ref: Some(p.scheme_ref(Iso20022Profile::Cbpr)),
        event: NoticeEvent::Refund(RefundResponse {
            refund_id: RequestId::new("8a1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b").unwrap(),
            refund_request_id: RequestId::new("merchant-refund-1").unwrap(),
            payment_id: RequestId::new("7d1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b").unwrap(),
            refund_status: crate::payment::RefundStatus::Success,
            refund_amount: Money(amount(500, "SGD")),
            payer_refund_amount: Money(amount(1617, "MYR")),
        }),
        ..notice.clone()
    };
    let msg = scheme.notification(&refund).unwrap().unwrap();
    let again = scheme.notification(&refund).unwrap().unwrap();
    let doc = parse_pacs004(&msg.body).unwrap().rtr;
    assert_eq!(
        doc.grp_hdr.msg_id,
        parse_pacs004(&again.body).unwrap().rtr.grp_hdr.msg_id,
        "a retry carries the same MsgId"
    );
    let tx = doc.tx;
    assert_eq!(tx.rtr_id, "8a1c2b3a4d5e4f608a7b9c0d1e2f3a4b");
    assert_eq!(tx.orgnl_clr_sys_ref, "7d1c2b3a4d5e4f608a7b9c0d1e2f3a4b");
    assert_eq!(
        tx.orgnl_grp_inf.as_ref().map(|g| g.orgnl_msg_id.as_str()),
        Some("MYWALLET20261121-0001")
    );
    assert_eq!(
        tx.orgnl_uetr.as_deref(),
        Some("6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b")
    );
    assert_eq!(
        (
            tx.rtrd_intr_bk_sttlm_amt.value.as_str(),
            tx.rtrd_instd_amt.value.as_str()
        ),
        ("5.00", "16.17")
    );
    assert_eq!(tx.xchg_rate.as_deref(), Some("3.234"));
    assert_eq!(tx.rtr_rsn_inf.rsn.unwrap().cd.as_deref(), Some("MS02"));
    // Wallet-side refunds do not exist in this scheme: a RefundResult is not one of its calls.
    assert!(
        !scheme
            .calls()
            .contains(&crate::payment::WalletCall::RefundResult)
    );
    assert!(
        scheme
            .notification(&Notice {
                call: crate::payment::WalletCall::RefundResult,
                ..refund.clone()
            })
            .is_err()
    );

    // A settled payment cancelled at the wallet's request: its funds go back as a pacs.004
    // FOCR (return following a cancellation request), the whole payment, not as a RJCT of a
    // payment the wallet saw settled.
    let cancelled = Notice {
        event: NoticeEvent::Payment(Box::new(response(PaymentStatus::Cancelled, ""))),
        ..notice.clone()
    };
    let msg = scheme.notification(&cancelled).unwrap().unwrap();
    assert!(parse_pacs002(&msg.body).is_err());
    let ret = parse_pacs004(&msg.body).unwrap().rtr.tx;
    let p = response(PaymentStatus::Cancelled, "");
    assert_eq!(ret.rtr_id, p.payment_id.as_str().replace('-', ""));
    assert_eq!(ret.orgnl_clr_sys_ref, ret.rtr_id);
    assert_eq!(ret.rtr_rsn_inf.rsn.unwrap().cd.as_deref(), Some("FOCR"));
    assert_eq!(
        (
            ret.rtrd_intr_bk_sttlm_amt.to_amount("x").unwrap(),
            ret.rtrd_instd_amt.to_amount("x").unwrap()
        ),
        (p.merchant_amount.0, p.payer_amount.0)
    );
    assert_eq!(
        ret.orgnl_uetr.as_deref(),
        Some("6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b")
    );

    // No endpoint, no notification.
    let other = Notice {
        client_id: "wallet-th".to_owned(),
        ..notice
    };
    assert_eq!(scheme.notification(&other).unwrap(), None);
}

#[test]
fn only_2xx_answers_acknowledge_a_notification() {
    let scheme = Iso20022::new(&settings(&table("http://127.0.0.1:9/n"), None)).unwrap();
    let h = HeaderMap::new();
    for (code, ok) in [
        (200, true),
        (202, true),
        (204, true),
        (302, false),
        (500, false),
    ] {
        assert_eq!(
            scheme.acknowledged(StatusCode::from_u16(code).unwrap(), &h, b""),
            ok,
            "{code}"
        );
    }
    // The wallet's pacs.002 about our pacs.004: ACCC acknowledges, RJCT is a definite refusal.
    let original = Iso20022Original {
        msg_id: "QRB0123".to_owned(),
        msg_nm_id: MSG_PACS004,
        instr_id: Some("8a1c2b3a4d5e4f608a7b9c0d1e2f3a4b".to_owned()),
        end_to_end_id: None,
        uetr: None,
    };
    let report = |tx_sts, reason| {
        let status = Iso20022Status {
            tx_sts,
            reason,
            info: None,
            accepted_at: None,
            reference: None,
            amount: None,
        };
        render_pacs002(&original, &status, "2026-11-21T11:00:00Z").unwrap()
    };
    let ok = report(Iso20022TxSts::Accc, None);
    assert!(scheme.acknowledged(StatusCode::OK, &h, &ok));
    assert_eq!(scheme.refused(StatusCode::OK, &h, &ok), None);
    let no = report(Iso20022TxSts::Rjct, Some(Iso20022Reason::Code("AC04")));
    assert!(!scheme.acknowledged(StatusCode::OK, &h, &no));
    let why = scheme.refused(StatusCode::OK, &h, &no).unwrap();
    assert!(why.contains("RJCT AC04"), "{why}");
    // A 500 is retried whatever its body says.
    assert_eq!(
        scheme.refused(StatusCode::INTERNAL_SERVER_ERROR, &h, &no),
        None
    );
}

#[test]
fn refusals_before_the_body_is_read_are_group_level_pacs002_on_xml_routes() {
    let scheme = Iso20022::new(&settings(&table("http://127.0.0.1:9/n"), None)).unwrap();
    let headers = HeaderMap::new();
    let inbound = |path: &'static str| Inbound {
        method: "POST",
        path,
        query: None,
        headers: &headers,
        body: b"",
        peer: &Peer::Anonymous,
        received_at: SystemTime::UNIX_EPOCH,
        request_id: "test-request",
    };
    let e = ApiError::RequestTooLarge { limit: 10 };
    let out = scheme.refuse(&inbound("/schemes/iso20022/v1/payments"), &e);
    assert_eq!(out.status, StatusCode::PAYLOAD_TOO_LARGE);
    let doc = parse_pacs002(&out.body)
        .unwrap()
        .report
        .orgnl_grp_inf_and_sts;
    assert_eq!(doc.grp_sts.as_deref(), Some("RJCT"));
    assert_eq!(
        doc.sts_rsn_inf.unwrap().rsn.unwrap().prtry.as_deref(),
        Some("REQUEST_TOO_LARGE")
    );
    let out = scheme.refuse(&inbound("/schemes/iso20022/v1/quotes"), &e);
    assert_eq!(out.content_type, "application/json");
    let v: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(v["error"]["code"], "REQUEST_TOO_LARGE");
}

#[test]
fn routes_and_their_methods() {
    assert_eq!(
        Iso20022Route::from_path("/schemes/iso20022/v1/payments/status"),
        Some(Iso20022Route::Status)
    );
    assert_eq!(Iso20022Route::from_path("/schemes/iso20022/v1/pay"), None);
    assert_eq!(Iso20022Route::Quotes.method(), "GET");
    assert_eq!(Iso20022Route::Cancellations.method(), "POST");
    // A wallet does not send us returns: a pacs.004 goes the other way (we send it).
    assert_eq!(
        Iso20022Route::from_path("/schemes/iso20022/v1/returns"),
        None
    );
}

#[test]
fn the_fuzz_corpus_and_any_crash_files_replay_without_panicking() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut replayed = 0;
    for dir in [
        "fuzz/corpus/iso20022_pacs008",
        "fuzz/artifacts/iso20022_pacs008",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            crate::fuzzing::iso20022_request(&data);
            replayed += 1;
        }
    }
    assert!(replayed >= 5, "only {replayed} corpus files");
}

#[test]
fn the_demo_walkthrough_is_offered_only_in_demo_mode_with_the_code_url_encoded() {
    let signed = Iso20022::new(&settings(&table("http://127.0.0.1:9/n"), None)).unwrap();
    assert_eq!(
        signed.demo_walkthrough("http://127.0.0.1:8080", "A B&C"),
        None
    );
    let demo = Iso20022::new(&settings("", Some("demo"))).unwrap();
    let walk = demo
        .demo_walkthrough("http://127.0.0.1:8080", "A B&C")
        .unwrap();
    assert!(
        walk.contains("I=http://127.0.0.1:8080/schemes/iso20022/v1\n"),
        "{walk}"
    );
    assert!(walk.contains("codeValue=A%20B%26C&"), "{walk}");
    assert!(walk.contains("pacs.008.001.08") && walk.contains("pacs.028.001.03"));
}

#[test]
fn each_return_cause_has_its_external_return_reason_code() {
    use transformers::{Iso20022ReturnCause as Cause, return_reason};
    assert_eq!(
        return_reason(Cause::MerchantRefund { reason: None }),
        (Iso20022Reason::Code("MS02"), None)
    );
    assert_eq!(
        return_reason(Cause::MerchantRefund { reason: Some("  ") }),
        (Iso20022Reason::Code("MS02"), None)
    );
    assert_eq!(
        return_reason(Cause::MerchantRefund {
            reason: Some("goods returned")
        }),
        (
            Iso20022Reason::Code("NARR"),
            Some("goods returned".to_owned())
        )
    );
    assert_eq!(
        return_reason(Cause::Cancellation),
        (Iso20022Reason::Code("FOCR"), None)
    );
}
