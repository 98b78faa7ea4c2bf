//! Entry points for the cargo-fuzz targets in `fuzz/`. Each target is one line calling a function here,
//! so `cargo test` can replay the corpus and the crash files through the same code. Not a stable API.
//! A failed property is a panic here on purpose: that is how a fuzzer reports a finding.
#![allow(clippy::panic)]

use arbitrary::{Arbitrary, Unstructured};

use crate::emv::{self, MerchantQr, Mode, arbitrary::ArbitraryQr};
use crate::money::{Amount, Currency, Rounding};

/// Raw bytes → EMV parser, in both modes: must never panic; an accepted payload must re-encode to
/// itself (with the CRC in upper case).
pub fn emv_parse(data: &[u8]) {
    for mode in [Mode::Profiles, Mode::Strict] {
        let Ok(qr) = emv::parse_bytes(data, mode) else {
            continue;
        };
        let s = qr.as_str();
        touch(&qr);
        let again = match emv::encode_with(&qr.to_data(), mode) {
            Ok(p) => p,
            Err(e) => panic!("accepted payload {s:?} does not re-encode: {e}"),
        };
        let split = s.len() - 4;
        let expected = format!("{}{}", &s[..split], s[split..].to_ascii_uppercase());
        assert_eq!(again, expected, "round trip changed the payload");
    }
}

/// Calls every accessor, so a panic in any of them is found.
fn touch(qr: &MerchantQr<'_>) {
    let _ = (
        qr.initiation(),
        qr.mcc(),
        qr.amount(),
        qr.tip(),
        qr.name(),
        qr.city(),
        qr.postal_code(),
    );
    let _ = (
        qr.country(),
        qr.currency().exponent(),
        qr.profile(),
        qr.crc(),
        qr.format_indicator(),
    );
    for a in qr.accounts() {
        let _ = (
            a.guid(),
            a.scheme(),
            a.subs().count(),
            a.role(emv::Role::MerchantId),
            a.nested(1).count(),
        );
    }
    if let Some(ad) = qr.additional_data() {
        let _ = (
            ad.reference_label(),
            ad.consumer_data_request(),
            ad.merchant_channel(),
            ad.subs().count(),
        );
    }
    if let Some(l) = qr.language() {
        let _ = (l.language(), l.name(), l.city());
    }
    let _ = (
        qr.unreserved().filter_map(|t| t.guid()).count(),
        qr.rfu().count(),
        qr.fields().len(),
    );
    for w in qr.warnings().iter() {
        let _ = w.to_string();
    }
}

/// An `Arbitrary` valid model → encode → parse must give the model back.
pub fn emv_structured(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(ArbitraryQr(model, deviations)) = ArbitraryQr::arbitrary(&mut u) else {
        return;
    };
    let payload = match emv::encode(&model) {
        Ok(p) => p,
        Err(e) => panic!("a valid model failed to encode: {e}\n{model:?}"),
    };
    let qr = match emv::parse(&payload) {
        Ok(qr) => qr,
        Err(e) => panic!("encoded model does not parse: {e}\n{payload}"),
    };
    touch(&qr);
    assert_eq!(
        qr.to_data(),
        model,
        "model → encode → parse changed the model: {payload}"
    );
    // Each deviation the model was built with is named by its warning (unless the warnings
    // overflowed their inline capacity), and strict EMVCo v1.1 refuses the code.
    if qr.warnings().dropped() == 0 {
        for d in &deviations {
            assert!(
                qr.warnings().iter().any(|w| w.code.as_str() == *d),
                "deviation {d} gave no warning: {payload}"
            );
        }
    }
    if !deviations.is_empty() {
        assert!(
            emv::parse_strict(&payload).is_err(),
            "strict accepted deviations {deviations:?}: {payload}"
        );
    }
    if deviations.contains(&"amount_too_precise") {
        assert!(qr.amount().is_none() && qr.amount_too_precise().is_some());
    }
}

/// Currencies the amount fuzzer picks from: exponents 0, 2, 3, 4, 0, 2, 3.
const FX_AMOUNT_CURRENCIES: [&str; 7] = ["JPY", "THB", "KWD", "CLF", "VND", "IDR", "BHD"];

/// First byte picks a currency, the rest is an amount string. Parsing must never panic; an accepted
/// amount must come back unchanged from its decimal, EMV tag 54, ISO 8583 n12 and `Decimal` forms.
pub fn fx_amount(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let code = FX_AMOUNT_CURRENCIES[usize::from(selector) % FX_AMOUNT_CURRENCIES.len()];
    let Ok(currency) = Currency::from_code(code) else {
        return;
    };
    if let Ok(amount) = Amount::parse(text, currency) {
        let canonical = amount.to_decimal_string();
        assert_eq!(Amount::parse(&canonical, currency), Ok(amount), "{text:?}");
        if let Ok(emv) = amount.to_emv() {
            assert_eq!(Amount::parse_emv(&emv, currency), Ok(amount), "{text:?}");
        }
        if let Ok(n12) = amount.to_n12() {
            assert_eq!(Amount::parse_n12(&n12, currency), Ok(amount), "{text:?}");
        }
        for rule in Rounding::ALL {
            assert_eq!(
                Amount::from_decimal(amount.to_decimal(), currency, rule),
                Ok(amount),
                "{text:?}"
            );
        }
    }
    if let Ok(amount) = Amount::parse_emv(text, currency) {
        assert_eq!(Amount::parse(text, currency), Ok(amount), "{text:?}");
    }
    if let Ok(amount) = Amount::parse_n12(text, currency) {
        assert_eq!(amount.to_n12().as_deref(), Ok(text), "{text:?}");
    }
}

/// Raw bytes → ISO 8583 decoder (ASCII profile): must never panic; an accepted message must re-encode
/// to exactly the same bytes.
pub fn iso8583_decode(data: &[u8]) {
    use crate::acquirer::iso8583::{Spec, decode, encode};
    let spec = Spec::iso1987_ascii();
    if let Ok(message) = decode(data, spec) {
        let wire = encode(&message, spec);
        assert_eq!(
            wire.as_deref().ok(),
            Some(data),
            "decode → encode is not byte-exact: {wire:?}"
        );
    }
}

/// Raw bytes as a received TLS stream → frame reader (first byte picks the framing and how the bytes
/// arrive in pieces): must never panic; every frame must re-wrap to exactly the bytes it consumed,
/// and each frame goes through the decoder.
pub fn iso8583_frame(data: &[u8]) {
    use crate::acquirer::frame::{FrameReader, Framing};
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let framing = if control & 1 == 0 {
        Framing::Binary2
    } else {
        Framing::Ascii4
    };
    let chunk = usize::from(control >> 1).max(1);
    let mut reader = FrameReader::new(framing, 4096);
    let mut rewrapped = Vec::new();
    'feed: for piece in stream.chunks(chunk) {
        reader.push(piece);
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    iso8583_decode(frame);
                    let wrapped = framing.wrap(frame, &mut rewrapped);
                    assert!(
                        wrapped.is_ok(),
                        "a frame we read cannot be written back: {wrapped:?}"
                    );
                }
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    assert_eq!(
        &stream[..rewrapped.len()],
        &rewrapped[..],
        "frames do not re-wrap to the bytes consumed"
    );
}

/// Raw bytes → every native (Wallet API v1) request parser, the `signature` header parser and the
/// request-time parser: must never panic; an accepted request re-serialises to a body that parses
/// to the same request; an accepted request time prints back to the same instant.
pub fn native_request(data: &[u8]) {
    use crate::payment::{
        CancelRequest, DecodeRequest, PaymentInquiryRequest, PaymentRequest, QuoteRequest,
        RefundInquiryRequest, RefundRequest,
    };
    use crate::scheme::native::auth::{SignatureHeader, parse_request_time, request_time};
    use crate::scheme::parse_json;

    fn round_trip<T>(data: &[u8])
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        if let Ok(req) = parse_json::<T>(data) {
            let again = match serde_json::to_vec(&req) {
                Ok(bytes) => bytes,
                Err(e) => panic!("accepted request does not serialise: {e}"),
            };
            match parse_json::<T>(&again) {
                Ok(back) => assert_eq!(back, req, "request round trip changed it"),
                Err(e) => panic!("re-serialised request refused: {e}"),
            }
        }
    }
    round_trip::<DecodeRequest>(data);
    round_trip::<QuoteRequest>(data);
    round_trip::<PaymentRequest>(data);
    round_trip::<CancelRequest>(data);
    round_trip::<RefundRequest>(data);
    let _ = parse_json::<PaymentInquiryRequest>(data);
    let _ = parse_json::<RefundInquiryRequest>(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = SignatureHeader::parse(text);
    if let Some(t) = parse_request_time(text) {
        // We write request times to the millisecond; a wallet may send more digits. What we write
        // reads back as itself, and differs from what was read by less than a millisecond.
        let written = request_time(t);
        let back = parse_request_time(&written);
        assert_eq!(
            back.map(request_time).as_deref(),
            Some(written.as_str()),
            "request time round trip changed it"
        );
        if let Some(b) = back {
            let gap = t.duration_since(b).or_else(|_| b.duration_since(t));
            assert!(
                gap.is_ok_and(|g| g < std::time::Duration::from_millis(1)),
                "request time {text:?} written as {written} moved by a millisecond or more"
            );
        }
    }
}

/// Raw bytes → every aplus request parser (userInitiatedPay, notifyPayment, the wallets' answers
/// to our calls, the unknown-field scan), the `signature` header parser, the request-time parser
/// and the PEM/DER key readers: must never panic; an accepted signature header formats back to a
/// header that parses to the same value; an accepted request re-serialises to a body that parses
/// to the same request.
pub fn aplus_request(data: &[u8]) {
    use crate::scheme::aplus::sign;
    use crate::scheme::aplus::transformers::{
        AplusInquiryPaymentAnswer, AplusNotifyPaymentRequest, AplusRef, AplusResultOnly,
        AplusRoute, AplusUserInitiatedPayRequest, AplusUserInitiatedPayResponse, unknown_fields,
    };
    use crate::scheme::parse_json;

    fn round_trip<T>(data: &[u8], what: &str)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        if let Ok(r) = parse_json::<T>(data) {
            let again = match serde_json::to_vec(&r) {
                Ok(bytes) => bytes,
                Err(e) => panic!("accepted {what} does not serialise: {e}"),
            };
            match parse_json::<T>(&again) {
                Ok(back) => assert_eq!(back, r, "{what} round trip changed it"),
                Err(e) => panic!("re-serialised {what} refused: {e}"),
            }
        }
    }
    if let Ok(v) = parse_json::<serde_json::Value>(data) {
        for route in AplusRoute::ALL {
            let _ = unknown_fields(&v, route.known_fields());
        }
    }
    round_trip::<AplusUserInitiatedPayRequest>(data, "userInitiatedPay request");
    if let Ok(r) = parse_json::<AplusUserInitiatedPayRequest>(data) {
        let _ = r.check();
    }
    round_trip::<AplusNotifyPaymentRequest>(data, "notifyPayment request");
    if let Ok(r) = parse_json::<AplusNotifyPaymentRequest>(data) {
        let _ = r.check();
        let _ = r.digest();
    }
    let _ = parse_json::<AplusUserInitiatedPayResponse>(data);
    let _ = parse_json::<AplusResultOnly>(data);
    if let Ok(a) = parse_json::<AplusInquiryPaymentAnswer>(data) {
        // What the deliverer settles an order with: never a panic, whatever the wallet answered.
        let _ = a.wallet_result();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = AplusRef::decode(text);
    }
    let _ = sign::spki_to_pkcs1(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(h) = sign::AplusSignatureHeader::parse(text) {
        match sign::AplusSignatureHeader::parse(&h.format()) {
            Ok(back) => assert_eq!(back, h, "signature header round trip changed it"),
            Err(e) => panic!("formatted signature header refused: {e}"),
        }
    }
    let _ = sign::parse_time(text).map(sign::format_time);
    if let Ok(bytes) = sign::percent_decode(text)
        && let Ok(s) = std::str::from_utf8(&bytes)
    {
        assert_eq!(
            sign::percent_decode(&sign::percent_encode(s)).ok(),
            Some(bytes.clone())
        );
    }
    let _ = sign::AplusPublicKey::from_pem(text);
}

/// Raw bytes → the `iso20022` scheme's parsers (pacs.008 in both profiles, pacs.028, camt.056,
/// the wallet's pacs.002 and the quote query; and the wallet side's readers of our pacs.004 and
/// camt.029, which the wallet simulator uses): must never panic; an accepted pacs.008's amounts
/// must print back to themselves, and the pacs.002 answering it must read back with its
/// identifiers.
pub fn iso20022_request(data: &[u8]) {
    use crate::scheme::iso20022::transformers as iso;
    for (namespace, msg_nm_id) in [
        (iso::NS_PACS008, iso::MSG_PACS008),
        (iso::NS_PACS008_NEXUS, iso::MSG_PACS008_NEXUS),
    ] {
        iso20022_pacs008(data, namespace, msg_nm_id);
    }
    let _ = iso::parse_document::<iso::Iso20022Pacs028>(data, iso::NS_PACS028, "FIToFIPmtStsReq")
        .and_then(iso::Iso20022StatusRequest::try_from);
    let _ = iso::parse_document::<iso::Iso20022Camt056>(data, iso::NS_CAMT056, "FIToFIPmtCxlReq")
        .and_then(iso::Iso20022CancelRequest::try_from);
    // The wallet's pacs.002 acknowledging (or rejecting) a pacs.004 we sent.
    let _ = iso::parse_pacs002(data);
    // What a wallet (the simulator) reads from us.
    if let Ok(ret) = iso::parse_pacs004(data) {
        let _ = ret.rtr.tx.rtrd_instd_amt.to_amount("RtrdInstdAmt");
    }
    let _ = iso::parse_camt029(data);
    if let Ok(query) = std::str::from_utf8(data) {
        let _ = iso::Iso20022QuoteQuery::try_from(query);
    }
}

/// One pacs.008 version: read, and if accepted, its amounts and the pacs.002 answering it.
fn iso20022_pacs008(data: &[u8], namespace: &str, msg_nm_id: &'static str) {
    use crate::scheme::iso20022::transformers as iso;
    let payment = iso::parse_document::<iso::Iso20022Pacs008>(data, namespace, "FIToFICstmrCdtTrf")
        .and_then(iso::Iso20022Payment::try_from);
    if let Ok(p) = payment {
        for a in [p.settlement, p.instructed] {
            let again = Amount::parse(&a.to_decimal_string(), a.currency());
            assert_eq!(again, Ok(a), "amount does not print back");
        }
        let original = iso::Iso20022Original {
            msg_id: p.msg_id.clone(),
            msg_nm_id,
            instr_id: None,
            end_to_end_id: Some(p.end_to_end_id.clone()),
            uetr: Some(p.uetr.to_string()),
        };
        let status = iso::Iso20022Status {
            tx_sts: iso::Iso20022TxSts::Accc,
            reason: None,
            info: None,
            accepted_at: Some(p.accepted_at.clone()),
            reference: None,
            amount: Some(p.settlement),
        };
        let rendered = match iso::render_pacs002(&original, &status, &p.accepted_at) {
            Ok(r) => r,
            Err(e) => panic!("pacs.002 for an accepted pacs.008 not rendered: {e}"),
        };
        let report = match iso::parse_pacs002(&rendered) {
            Ok(r) => r.report,
            Err(e) => panic!("our pacs.002 does not read back: {e}"),
        };
        assert_eq!(report.orgnl_grp_inf_and_sts.orgnl_msg_id, p.msg_id);
        let tx = report.tx_inf_and_sts;
        assert_eq!(
            tx.as_ref().and_then(|t| t.orgnl_end_to_end_id.clone()),
            Some(p.end_to_end_id.clone())
        );
    }
}
