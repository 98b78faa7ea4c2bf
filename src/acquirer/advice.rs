//! Messages the acquirer originates on the link: the **refund advice** (0220, repeated as 0221) and
//! our answer (0230). Pure: parsing and building; the link (`link/conn.rs`) hands each advice to
//! an [`AdviceHandler`] (the gateway) and sends the answer it decides.
//!
//! ```text
//! acquirer → us   0220 DE3 20xxxx  refund advice: the merchant refunded DE4/DE49 of the payment
//!                                  named by DE90 (original MTI, STAN, DE7 of our 0200)
//! acquirer → us   0221             its repeat, identical but for the MTI (no 0230 seen in time)
//! us → acquirer   0230             DE39: 00 accepted (journaled: the wallet credit is ours to
//!                                  deliver), or why not (spec/acquirer-iso8583.md §3a)
//! ```
//!
//! An advice is store-and-forward: the acquirer has already done it (the merchant is debited) and
//! repeats it until we answer; we answer only after it is durable, and a repeat gets the same
//! answer without a second effect.
//!
//! The MTIs, processing code `20`, the DE39 codes and the DE90 layout are ISO 8583:1987's. Ours
//! (our profile's extensions, marked as such in spec/acquirer-iso8583.md §3a): DE90 naming our
//! 0200 by its STAN and DE7, DE37 as the acquirer's one-refund-per-reference key (`94` when reused
//! for another refund), DE42 checked against the payment's merchant, and no 0230 at all while an
//! advice cannot be decided yet (the acquirer's repeats carry it).

use std::future::Future;
use std::pin::Pin;

use super::iso8583::{Message, Mti};
use super::message::ResponseCode;
use crate::money::Currency;

/// Advice (acquirer-originated, store-and-forward).
pub const ADVICE: Mti = Mti::ADVICE;
/// Advice repeat.
pub const ADVICE_REPEAT: Mti = Mti::ADVICE_REPEAT;
/// Advice response.
pub const ADVICE_RESPONSE: Mti = Mti::ADVICE_RESPONSE;

/// DE39 answers to an advice (ISO 8583:1987 codes, as our profile uses them).
pub mod codes {
    use super::ResponseCode;

    /// `00` accepted (journaled; also the answer to a repeat of an accepted advice).
    pub fn accepted() -> ResponseCode {
        ResponseCode::APPROVED
    }
    /// `12` invalid transaction: not a refund, or the payment moved no money that can be refunded
    /// (declined, reversed, cancelled, or in manual review). A payment whose own outcome is still
    /// open gets no answer at all (the acquirer repeats the advice).
    pub fn invalid_transaction() -> ResponseCode {
        ResponseCode::INVALID_TRANSACTION
    }
    /// `13` invalid amount: more than is left of the payment, zero, or not its currency.
    pub fn invalid_amount() -> ResponseCode {
        ResponseCode::INVALID_AMOUNT
    }
    /// `25` unable to locate the original: no payment of ours matches DE90.
    pub fn original_not_found() -> ResponseCode {
        ResponseCode::ORIGINAL_NOT_FOUND
    }
    /// `30` format error: a mandatory field missing or malformed.
    pub fn format_error() -> ResponseCode {
        ResponseCode::FORMAT_ERROR
    }
    /// `94` duplicate transmission: the refund's DE37 was used before for another refund.
    pub fn duplicate() -> ResponseCode {
        ResponseCode::DUPLICATE_TRANSMISSION
    }
    /// `96` system malfunction: not accepted now (the journal could not record it); repeat it.
    pub fn malfunction() -> ResponseCode {
        ResponseCode::SYSTEM_MALFUNCTION
    }
}

/// Whether `mti` is an advice we answer (0220 or 0221).
pub fn is_advice(mti: Mti) -> bool {
    mti == ADVICE || mti == ADVICE_REPEAT
}

/// The payment an advice refers to: DE90 of the advice (the original 0200's MTI, STAN and DE7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalData {
    /// The original's MTI (`0200`).
    pub mti: String,
    /// The original's STAN (DE11, 6 digits).
    pub stan: String,
    /// The original's transmission date and time (DE7, `MMDDhhmmss`).
    pub transmitted: String,
}

impl OriginalData {
    /// Parses DE90: MTI (4) + STAN (6) + DE7 (10) + acquiring institution (11) + forwarding
    /// institution (11), all digits.
    pub fn parse(de90: &str) -> Option<Self> {
        if de90.len() != 42 || !de90.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(OriginalData {
            mti: de90[0..4].to_owned(),
            stan: de90[4..10].to_owned(),
            transmitted: de90[10..20].to_owned(),
        })
    }

    /// The key the journal indexes a payment's 0200 under: STAN ‖ DE7 (16 digits).
    pub fn trace_key(&self) -> String {
        format!("{}{}", self.stan, self.transmitted)
    }
}

/// A refund advice (0220 / 0221 with processing code `20xxxx`), as the acquirer sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundAdvice {
    /// True for a 0221 (a repeat).
    pub repeat: bool,
    /// The refund amount, minor units of `currency` (DE4).
    pub amount: u64,
    /// DE49.
    pub currency: Currency,
    /// The acquirer's STAN for the advice (DE11).
    pub stan: String,
    /// DE7 of the advice.
    pub transmitted: String,
    /// The acquirer's retrieval reference number of the refund (DE37): its reference, unique per
    /// acquirer; a repeat carries the same.
    pub rrn: String,
    /// The acquirer's approval code for the refund (DE38), if given.
    pub auth_code: Option<String>,
    /// The merchant (DE42, trimmed).
    pub merchant_id: String,
    /// The refunded payment (DE90).
    pub original: OriginalData,
}

/// Why an advice is not a refund advice we can act on: answered with `code` (30 or 12).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("advice field {field}: {reason}")]
pub struct AdviceError {
    /// The data element.
    pub field: u8,
    /// What is wrong.
    pub reason: &'static str,
    /// The DE39 to answer.
    pub code: ResponseCode,
}

impl RefundAdvice {
    /// Reads a 0220 / 0221.
    pub fn parse(m: &Message) -> Result<RefundAdvice, AdviceError> {
        let format = |field, reason| AdviceError {
            field,
            reason,
            code: codes::format_error(),
        };
        if !is_advice(m.mti()) {
            return Err(format(0, "not a 0220 or 0221"));
        }
        let de3 = m.text(3).ok_or(format(3, "missing"))?;
        if de3.len() != 6 || !de3.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format(3, "not 6 digits"));
        }
        if !de3.starts_with("20") {
            return Err(AdviceError {
                field: 3,
                reason: "only refund advices (processing code 20xxxx) are accepted",
                code: codes::invalid_transaction(),
            });
        }
        let de4 = m.text(4).ok_or(format(4, "missing"))?;
        let amount = if de4.len() == 12 && de4.bytes().all(|b| b.is_ascii_digit()) {
            de4.parse::<u64>().map_err(|_| format(4, "not a number"))?
        } else {
            return Err(format(4, "not 12 digits"));
        };
        let de49 = m.text(49).ok_or(format(49, "missing"))?;
        let currency = de49
            .parse::<u16>()
            .ok()
            .and_then(|n| Currency::from_numeric(n).ok())
            .ok_or(format(49, "not an ISO 4217 numeric currency code"))?;
        let stan = m.text(11).ok_or(format(11, "missing"))?.to_owned();
        let transmitted = m.text(7).ok_or(format(7, "missing"))?.to_owned();
        let rrn = m.text(37).ok_or(format(37, "missing"))?.trim().to_owned();
        if rrn.is_empty() || !rrn.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format(37, "empty or not alphanumeric"));
        }
        let original = m
            .text(90)
            .and_then(OriginalData::parse)
            .ok_or(format(90, "missing or not 42 digits"))?;
        if original.mti != "0200" {
            return Err(AdviceError {
                field: 90,
                reason: "the original is not a 0200",
                code: codes::original_not_found(),
            });
        }
        Ok(RefundAdvice {
            repeat: m.mti() == ADVICE_REPEAT,
            amount,
            currency,
            stan,
            transmitted,
            rrn,
            auth_code: m
                .text(38)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            merchant_id: m.text(42).unwrap_or_default().trim().to_owned(),
            original,
        })
    }
}

/// The 0230 answering `advice` (a 0220 or 0221): its DE3, 4, 7, 11, 32, 37, 41, 42, 49 and 90
/// echoed, DE39 `code`.
pub fn advice_response(advice: &Message, code: &ResponseCode) -> Message {
    super::message::response_echoing(advice, &[3, 4, 7, 11, 32, 37, 41, 42, 49, 90], code)
}

/// An advice being handled: resolves to the DE39 of the 0230, or `None` to leave it unanswered
/// for now (the acquirer repeats it: e.g. the payment's own outcome is not journaled yet).
pub type AdviceFuture = Pin<Box<dyn Future<Output = Option<ResponseCode>> + Send + 'static>>;

/// Acts on refund advices for one link (the gateway's, per acquirer). It must answer `00` only
/// once the refund is durable, and answer a repeat of an accepted advice `00` without a second
/// effect.
pub trait AdviceHandler: Send + Sync + 'static {
    /// Handles one refund advice; resolves to the DE39 to answer, or `None`: not answered now.
    fn refund_advice(&self, advice: RefundAdvice) -> AdviceFuture;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advice() -> Message {
        Message::new(ADVICE)
            .with(3, "200000")
            .with(4, "000000000500")
            .with(7, "1205103000")
            .with(11, "700001")
            .with(32, "12345678")
            .with(37, "634010700001")
            .with(41, "QRB00001")
            .with(42, "M0001          ")
            .with(49, "702")
            .with(90, "020000004212051029591234567800000000000000")
    }

    #[test]
    fn reads_a_refund_advice_and_its_original() {
        let a = RefundAdvice::parse(&advice()).unwrap();
        assert!(!a.repeat);
        assert_eq!(a.amount, 500);
        assert_eq!(a.currency.code(), "SGD");
        assert_eq!(a.rrn, "634010700001");
        assert_eq!(a.merchant_id, "M0001");
        assert_eq!(
            a.original,
            OriginalData {
                mti: "0200".to_owned(),
                stan: "000042".to_owned(),
                transmitted: "1205102959".to_owned()
            }
        );
        assert_eq!(a.original.trace_key(), "0000421205102959");
        let mut repeat = advice();
        repeat.set_mti(ADVICE_REPEAT);
        assert!(RefundAdvice::parse(&repeat).unwrap().repeat);
    }

    #[test]
    fn refuses_what_is_not_a_usable_refund_advice_with_its_code() {
        let code_of = |m: Message| RefundAdvice::parse(&m).unwrap_err().code;
        let mut purchase = advice();
        purchase.set(3, "000000");
        assert_eq!(code_of(purchase).as_str(), "12");
        let mut no_amount = advice();
        no_amount.remove(4);
        assert_eq!(code_of(no_amount).as_str(), "30");
        let mut short90 = advice();
        short90.set(90, "0200000042");
        assert_eq!(code_of(short90).as_str(), "30");
        let mut not_0200 = advice();
        not_0200.set(90, "040000004212051029591234567800000000000000");
        assert_eq!(code_of(not_0200).as_str(), "25");
        let mut bad_currency = advice();
        bad_currency.set(49, "999");
        assert_eq!(code_of(bad_currency).as_str(), "30");
    }

    #[test]
    fn the_answer_echoes_the_advice_and_carries_the_code() {
        let r = advice_response(&advice(), &codes::invalid_amount());
        assert_eq!(r.mti().as_str(), "0230");
        assert_eq!(r.text(39), Some("13"));
        for n in [3u8, 4, 7, 11, 32, 37, 41, 42, 49, 90] {
            assert_eq!(r.get(n), advice().get(n), "DE{n}");
        }
        assert_eq!(ADVICE_REPEAT.response(), ADVICE_RESPONSE);
    }
}
