//! Typed messages of our profile (`spec/acquirer-iso8583.md`) built on the generic codec:
//! 0800/0810 network management, 0200/0210 purchase and refund, 0400/0401/0410 reversal, and the DE48
//! private sub-fields. Pure: no I/O, no clock (callers pass a [`Trace`]).

use std::fmt;

use super::iso8583::{Message, Mti};
use crate::money::Currency;
use crate::time::fields::UtcFields;

/// System trace audit number (DE11), 1..=999_999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stan(u32);

impl Stan {
    /// The lowest STAN, 000001.
    pub const MIN: Stan = Stan(1);

    /// A STAN from 1..=999_999.
    pub fn new(n: u32) -> Option<Stan> {
        (1..=999_999).contains(&n).then_some(Stan(n))
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }

    /// Six ASCII digits.
    pub fn de11(self) -> String {
        format!("{:06}", self.0)
    }

    /// From six ASCII digits.
    pub fn parse(text: &[u8]) -> Option<Stan> {
        if text.len() != 6 || !text.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Stan::new(std::str::from_utf8(text).ok()?.parse().ok()?)
    }
}

impl fmt::Display for Stan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

/// What identifies one transmission to the acquirer: STAN, DE7 and the terminal (DE41). Responses
/// echo all three; the link matches on them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Trace {
    /// DE11.
    pub stan: Stan,
    /// DE7, `MMDDhhmmss` UTC.
    pub transmitted: String,
    /// DE12 (`hhmmss`) and DE13 (`MMDD`) at the merchant (UTC in this profile).
    pub local_time: String,
    /// DE13.
    pub local_date: String,
    /// DE37 retrieval reference number: `YDDDhh` + STAN.
    pub rrn: String,
}

impl Trace {
    /// The trace for a transmission at `at` with `stan`.
    pub fn new(stan: Stan, at: &UtcFields) -> Self {
        Trace {
            stan,
            transmitted: at.de7(),
            local_time: at.de12(),
            local_date: at.de13(),
            rrn: format!(
                "{}{:03}{:02}{}",
                at.year % 10,
                at.ordinal,
                at.hour,
                stan.de11()
            ),
        }
    }
}

/// Fixed per-link identity carried in every message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    /// DE32 acquiring institution identification code (up to 11 digits).
    pub acquiring_institution: String,
    /// DE41 card acceptor terminal id (8 characters).
    pub terminal_id: String,
}

/// DE48 private sub-fields: `TT LL value` repeated (2-digit tag, 2-digit length, up to 99 characters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrivateData {
    /// Tag 01: our quote id.
    pub quote_id: Option<String>,
    /// Tag 02: the foreign wallet scheme.
    pub wallet_scheme: Option<String>,
    /// Tag 03: the wallet's request id.
    pub wallet_request_id: Option<String>,
    /// Tag 04: the QR code's reference label (EMV tag 62.05).
    pub reference_label: Option<String>,
    /// Sub-fields with tags we do not know, kept in order.
    pub other: Vec<(String, String)>,
}

/// Tags of the DE48 sub-fields.
pub mod de48_tag {
    /// Quote id.
    pub const QUOTE_ID: &str = "01";
    /// Wallet scheme.
    pub const WALLET_SCHEME: &str = "02";
    /// Wallet request id.
    pub const WALLET_REQUEST_ID: &str = "03";
    /// QR reference label.
    pub const REFERENCE_LABEL: &str = "04";
}

impl PrivateData {
    /// DE48 text, or `None` when empty.
    pub fn encode(&self) -> Result<Option<String>, MessageError> {
        let mut out = String::new();
        let known = [
            (de48_tag::QUOTE_ID, &self.quote_id),
            (de48_tag::WALLET_SCHEME, &self.wallet_scheme),
            (de48_tag::WALLET_REQUEST_ID, &self.wallet_request_id),
            (de48_tag::REFERENCE_LABEL, &self.reference_label),
        ];
        let iter = known
            .iter()
            .filter_map(|(t, v)| v.as_deref().map(|v| (*t, v)))
            .chain(self.other.iter().map(|(t, v)| (t.as_str(), v.as_str())));
        for (tag, value) in iter {
            if tag.len() != 2 || !tag.bytes().all(|b| b.is_ascii_digit()) {
                return Err(MessageError::Private(format!(
                    "tag {tag:?} is not two digits"
                )));
            }
            if value.len() > 99 || !value.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
                return Err(MessageError::Private(format!(
                    "sub-field {tag}: up to 99 printable ASCII characters"
                )));
            }
            out.push_str(tag);
            out.push_str(&format!("{:02}", value.len()));
            out.push_str(value);
        }
        if out.len() > 999 {
            return Err(MessageError::Private("DE48 longer than 999".to_owned()));
        }
        Ok((!out.is_empty()).then_some(out))
    }

    /// Parses DE48 text.
    pub fn parse(text: &str) -> Result<Self, MessageError> {
        let mut p = PrivateData::default();
        let mut rest = text;
        while !rest.is_empty() {
            let head = rest
                .get(..4)
                .filter(|h| h.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    MessageError::Private(format!(
                        "sub-field header at {}",
                        text.len() - rest.len()
                    ))
                })?;
            let (tag, len) = head.split_at(2);
            let len: usize = len
                .parse()
                .map_err(|_| MessageError::Private("length".to_owned()))?;
            let value = rest
                .get(4..4 + len)
                .ok_or_else(|| MessageError::Private(format!("sub-field {tag} truncated")))?
                .to_owned();
            rest = &rest[4 + len..];
            match tag {
                de48_tag::QUOTE_ID => p.quote_id = Some(value),
                de48_tag::WALLET_SCHEME => p.wallet_scheme = Some(value),
                de48_tag::WALLET_REQUEST_ID => p.wallet_request_id = Some(value),
                de48_tag::REFERENCE_LABEL => p.reference_label = Some(value),
                _ => p.other.push((tag.to_owned(), value)),
            }
        }
        Ok(p)
    }
}

/// Purchase or refund (DE3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// DE3 = 000000.
    Purchase,
    /// DE3 = 200000.
    Refund,
}

impl Kind {
    fn de3(self) -> &'static str {
        match self {
            Kind::Purchase => "000000",
            Kind::Refund => "200000",
        }
    }
}

/// DE10 conversion rate: `decimals` then 7 digits, rate = digits / 10^decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversionRate {
    decimals: u8,
    digits: u32,
}

impl ConversionRate {
    /// `digits / 10^decimals`; `digits` ≤ 9_999_999, `decimals` ≤ 9.
    pub fn new(digits: u32, decimals: u8) -> Option<Self> {
        (digits <= 9_999_999 && decimals <= 9).then_some(ConversionRate { decimals, digits })
    }

    fn de10(self) -> String {
        format!("{}{:07}", self.decimals, self.digits)
    }
}

/// The amount in the payer's (cardholder billing) currency: DE6, DE10, DE51.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Billing {
    /// Minor units of `currency`.
    pub amount: u64,
    /// Payer currency.
    pub currency: Currency,
    /// Merchant → payer rate.
    pub rate: ConversionRate,
}

/// An authorisation request in our terms (the link adds the trace and terminal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    /// Purchase or refund.
    pub kind: Kind,
    /// DE4, minor units of `currency`.
    pub amount: u64,
    /// DE49, the merchant's currency.
    pub currency: Currency,
    /// DE6/DE10/DE51, when the payer pays in another currency.
    pub billing: Option<Billing>,
    /// DE42 merchant id (up to 15; padded with spaces).
    pub merchant_id: String,
    /// DE18 merchant category code (4 digits).
    pub mcc: String,
    /// DE43 name (up to 25), city (up to 13), country (2 letters).
    pub merchant_name: String,
    /// DE43 city.
    pub merchant_city: String,
    /// DE43 country (ISO 3166 alpha-2).
    pub merchant_country: String,
    /// DE48.
    pub private: PrivateData,
}

/// A message could not be built from our data (our side).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// A value does not fit its data element.
    #[error("DE{field}: {reason}")]
    Field {
        /// Data element.
        field: u8,
        /// Why.
        reason: &'static str,
    },
    /// DE48 sub-fields malformed.
    #[error("DE48: {0}")]
    Private(String),
}

fn amount12(field: u8, minor: u64) -> Result<String, MessageError> {
    if minor > 999_999_999_999 {
        return Err(MessageError::Field {
            field,
            reason: "amount above 12 digits",
        });
    }
    Ok(format!("{minor:012}"))
}

fn pad(field: u8, text: &str, width: usize) -> Result<String, MessageError> {
    if text.len() > width || !text.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
        return Err(MessageError::Field {
            field,
            reason: "too long or not printable ASCII",
        });
    }
    Ok(format!("{text:<width$}"))
}

/// The 0200 for `p`.
pub fn purchase_request(
    p: &Purchase,
    terminal: &Terminal,
    trace: &Trace,
) -> Result<Message, MessageError> {
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set(3, p.kind.de3())
        .set(4, amount12(4, p.amount)?)
        .set(7, trace.transmitted.as_str())
        .set(11, trace.stan.de11())
        .set(12, trace.local_time.as_str())
        .set(13, trace.local_date.as_str());
    if let Some(b) = &p.billing {
        m.set(6, amount12(6, b.amount)?)
            .set(10, b.rate.de10())
            .set(51, format!("{:03}", b.currency.numeric()));
    }
    if p.mcc.len() != 4 || !p.mcc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MessageError::Field {
            field: 18,
            reason: "MCC must be 4 digits",
        });
    }
    let country = &p.merchant_country;
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(MessageError::Field {
            field: 43,
            reason: "country must be 2 letters",
        });
    }
    let de43 = format!(
        "{}{}{}",
        pad(43, &p.merchant_name, 25)?,
        pad(43, &p.merchant_city, 13)?,
        country
    );
    m.set(18, p.mcc.as_str())
        .set(22, "030")
        .set(25, "00")
        .set(32, terminal.acquiring_institution.as_str())
        .set(37, trace.rrn.as_str())
        .set(41, pad(41, &terminal.terminal_id, 8)?)
        .set(42, pad(42, &p.merchant_id, 15)?)
        .set(43, de43)
        .set(49, format!("{:03}", p.currency.numeric()));
    if let Some(de48) = p.private.encode()? {
        m.set(48, de48);
    }
    Ok(m)
}

/// Why we reverse (DE39 of the 0400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReversalReason {
    /// No answer in time: `68`.
    Timeout,
    /// The connection was lost after the request was sent: `68`.
    ConnectionLost,
    /// The answer could not be used: `96`.
    UnusableAnswer,
    /// Cancelled by the payer or wallet before cut-off: `17`.
    Cancelled,
}

impl ReversalReason {
    /// DE39 value carried in the 0400.
    pub fn de39(self) -> &'static str {
        match self {
            ReversalReason::Timeout | ReversalReason::ConnectionLost => "68",
            ReversalReason::UnusableAnswer => "96",
            ReversalReason::Cancelled => "17",
        }
    }
}

/// The 0400 reversing `original` (a 0200 we sent): same 3, 4, 32, 37, 41, 42, 49 (and 6, 51), a new
/// trace, DE39 the reason, DE90 the original data elements. Repeats change only the MTI to 0401.
pub fn reversal_request(
    original: &Message,
    trace: &Trace,
    reason: ReversalReason,
) -> Result<Message, MessageError> {
    let mut m = Message::new(Mti::REVERSAL);
    for n in [3u8, 4, 6, 10, 32, 37, 41, 42, 48, 49, 51] {
        if let Some(v) = original.get(n) {
            m.set(n, v);
        }
    }
    m.set(7, trace.transmitted.as_str())
        .set(11, trace.stan.de11())
        .set(12, trace.local_time.as_str())
        .set(13, trace.local_date.as_str())
        .set(39, reason.de39());
    m.set(90, original_data(original)?);
    Ok(m)
}

/// DE90: original MTI (4) + STAN (6) + DE7 (10) + acquiring institution (11, zero-padded) +
/// forwarding institution (11 zeros).
pub fn original_data(original: &Message) -> Result<String, MessageError> {
    let missing = |field| MessageError::Field {
        field,
        reason: "missing in the original",
    };
    let stan = original.text(11).ok_or(missing(11))?;
    let de7 = original.text(7).ok_or(missing(7))?;
    let acq = original.text(32).unwrap_or("");
    if acq.len() > 11 {
        return Err(MessageError::Field {
            field: 32,
            reason: "longer than 11",
        });
    }
    Ok(format!(
        "{}{stan}{de7}{acq:0>11}{}",
        original.mti(),
        "0".repeat(11)
    ))
}

/// Network management function (DE70).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkFunction {
    /// `001`
    SignOn,
    /// `002`
    SignOff,
    /// `301`
    Echo,
}

impl NetworkFunction {
    /// DE70 value.
    pub fn de70(self) -> &'static str {
        match self {
            NetworkFunction::SignOn => "001",
            NetworkFunction::SignOff => "002",
            NetworkFunction::Echo => "301",
        }
    }
}

/// The 0800 for `function`.
pub fn network_request(function: NetworkFunction, terminal: &Terminal, trace: &Trace) -> Message {
    Message::new(Mti::NETWORK_REQUEST)
        .with(7, trace.transmitted.as_str())
        .with(11, trace.stan.de11())
        .with(41, format!("{:<8}", terminal.terminal_id))
        .with(70, function.de70())
}

/// A response copying the echoed fields of `request` (3, 4, 7, 11, 32, 37, 41, 42, 49, 70, 90) and
/// setting DE39 — what an acquirer (the simulator) sends.
pub fn response_to(request: &Message, code: &ResponseCode) -> Message {
    response_echoing(
        request,
        &[3, 4, 6, 7, 11, 32, 37, 41, 42, 49, 51, 70, 90],
        code,
    )
}

/// A response to `request` (its response MTI) copying those of `fields` it carries and setting
/// DE39 to `code`.
pub fn response_echoing(request: &Message, fields: &[u8], code: &ResponseCode) -> Message {
    let mut m = Message::new(request.mti().response());
    for &n in fields {
        if let Some(v) = request.get(n) {
            m.set(n, v);
        }
    }
    m.set(39, code.as_str());
    m
}

/// DE39 response code: two characters; unknown codes survive as themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseCode([u8; 2]);

impl ResponseCode {
    /// Approved.
    pub const APPROVED: ResponseCode = ResponseCode(*b"00");
    /// Do not honour.
    pub const DO_NOT_HONOUR: ResponseCode = ResponseCode(*b"05");
    /// Invalid transaction.
    pub const INVALID_TRANSACTION: ResponseCode = ResponseCode(*b"12");
    /// Invalid amount.
    pub const INVALID_AMOUNT: ResponseCode = ResponseCode(*b"13");
    /// Unable to locate the original (answer to a reversal of an unknown transaction).
    pub const ORIGINAL_NOT_FOUND: ResponseCode = ResponseCode(*b"25");
    /// Format error.
    pub const FORMAT_ERROR: ResponseCode = ResponseCode(*b"30");
    /// Duplicate transmission.
    pub const DUPLICATE_TRANSMISSION: ResponseCode = ResponseCode(*b"94");
    /// System malfunction.
    pub const SYSTEM_MALFUNCTION: ResponseCode = ResponseCode(*b"96");

    /// From two alphanumeric ASCII characters.
    pub fn parse(text: &[u8]) -> Option<Self> {
        let b: [u8; 2] = text.try_into().ok()?;
        b.iter()
            .all(u8::is_ascii_alphanumeric)
            .then_some(ResponseCode(b))
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// What the code means for the payment.
    pub fn class(&self) -> ResponseClass {
        use DeclineReason as D;
        match &self.0 {
            b"00" | b"08" | b"11" => ResponseClass::Approved,
            b"03" => ResponseClass::Declined(D::InvalidMerchant),
            b"05" | b"01" | b"02" => ResponseClass::Declined(D::DoNotHonour),
            b"12" | b"30" | b"57" | b"58" => ResponseClass::Declined(D::NotPermitted),
            b"13" => ResponseClass::Declined(D::InvalidAmount),
            b"14" | b"04" | b"41" | b"43" | b"54" | b"62" => {
                ResponseClass::Declined(D::AccountUnusable)
            }
            b"51" => ResponseClass::Declined(D::InsufficientFunds),
            b"61" | b"65" => ResponseClass::Declined(D::LimitExceeded),
            b"94" => ResponseClass::Declined(D::Duplicate),
            // 09 in progress, 19 re-enter, 68 too late, 91 issuer unavailable, 96 malfunction,
            // and every code we do not know: the state at the issuer is unknown → reverse.
            _ => ResponseClass::Unknown,
        }
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The meaning of a response code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseClass {
    /// The payment is approved.
    Approved,
    /// Declined; no money moved.
    Declined(DeclineReason),
    /// Not a usable answer: reverse.
    Unknown,
}

/// Why the acquirer declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclineReason {
    /// 01, 02, 05.
    DoNotHonour,
    /// 03.
    InvalidMerchant,
    /// 12, 30, 57, 58.
    NotPermitted,
    /// 13.
    InvalidAmount,
    /// 04, 14, 41, 43, 54, 62.
    AccountUnusable,
    /// 51.
    InsufficientFunds,
    /// 61, 65.
    LimitExceeded,
    /// 94.
    Duplicate,
}

/// An approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// DE39.
    pub code: ResponseCode,
    /// DE38, when given.
    pub auth_code: Option<String>,
    /// DE37.
    pub rrn: String,
    /// DE11 of our request.
    pub stan: Stan,
    /// The 0200 that was approved: what a cancellation before cut-off reverses.
    pub request: Message,
}

/// A decline (a value, not an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decline {
    /// DE39.
    pub code: ResponseCode,
    /// What it means.
    pub reason: DeclineReason,
}

/// Reading a 0210 against its 0200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Approved.
    Approved(Approval),
    /// Declined.
    Declined(Decline),
    /// The answer cannot be trusted or says "unknown": reverse.
    Unusable(String),
}

/// Reads `response` (a 0210 matched to `request`): checks the echoed amount and currency, then maps DE39.
pub fn read_answer(request: &Message, response: &Message) -> Answer {
    if response.mti() != Mti::FINANCIAL_RESPONSE {
        return Answer::Unusable(format!("MTI {} answers a 0200", response.mti()));
    }
    for n in [4u8, 49] {
        if let Some(v) = response.get(n)
            && request.get(n) != Some(v)
        {
            return Answer::Unusable(format!("DE{n} differs from the request"));
        }
    }
    let Some(code) = response.get(39).and_then(ResponseCode::parse) else {
        return Answer::Unusable("DE39 missing or malformed".to_owned());
    };
    let stan = request.get(11).and_then(Stan::parse);
    match (code.class(), stan) {
        (ResponseClass::Approved, Some(stan)) => Answer::Approved(Approval {
            code,
            auth_code: response.text(38).map(str::to_owned),
            rrn: response
                .text(37)
                .or_else(|| request.text(37))
                .unwrap_or_default()
                .to_owned(),
            stan,
            request: request.clone(),
        }),
        (ResponseClass::Declined(reason), _) => Answer::Declined(Decline { code, reason }),
        (ResponseClass::Unknown, _) | (ResponseClass::Approved, None) => {
            Answer::Unusable(format!("response code {code} leaves the outcome unknown"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acquirer::iso8583::{Spec, encode};

    fn purchase() -> Purchase {
        Purchase {
            kind: Kind::Purchase,
            amount: 35_000,
            currency: Currency::from_code("MYR").unwrap(),
            billing: Some(Billing {
                amount: 61_234,
                currency: Currency::from_code("HKD").unwrap(),
                rate: ConversionRate::new(1_749_543, 6).unwrap(),
            }),
            merchant_id: "M0001".to_owned(),
            mcc: "5812".to_owned(),
            merchant_name: "Nasi Lemak Stall".to_owned(),
            merchant_city: "Kuala Lumpur".to_owned(),
            merchant_country: "MY".to_owned(),
            private: PrivateData {
                quote_id: Some("Q-1".to_owned()),
                wallet_scheme: Some("ALIPAYHK".to_owned()),
                wallet_request_id: Some("WR-9".to_owned()),
                reference_label: None,
                other: vec![],
            },
        }
    }

    fn terminal() -> Terminal {
        Terminal {
            acquiring_institution: "123456".to_owned(),
            terminal_id: "QRB00001".to_owned(),
        }
    }

    fn trace() -> Trace {
        Trace::new(Stan::new(42).unwrap(), &UtcFields::from_unix(1_795_256_130))
    }

    #[test]
    fn purchase_carries_the_profile_fields() {
        let m = purchase_request(&purchase(), &terminal(), &trace()).unwrap();
        assert_eq!(m.text(3), Some("000000"));
        assert_eq!(m.text(4), Some("000000035000"));
        assert_eq!(m.text(6), Some("000000061234"));
        assert_eq!(m.text(10), Some("61749543"));
        assert_eq!(m.text(11), Some("000042"));
        assert_eq!(m.text(7), Some("1121101530"));
        assert_eq!(m.text(37), Some("632510000042"));
        assert_eq!(m.text(42), Some("M0001          "));
        assert_eq!(m.text(43), Some("Nasi Lemak Stall         Kuala Lumpur MY"));
        assert_eq!(m.text(48), Some("0103Q-10208ALIPAYHK0304WR-9"));
        assert_eq!(m.text(49), Some("458"));
        assert_eq!(m.text(51), Some("344"));
        encode(&m, Spec::iso1987_ascii()).unwrap();
    }

    #[test]
    fn refund_uses_processing_code_200000() {
        let mut p = purchase();
        p.kind = Kind::Refund;
        let m = purchase_request(&p, &terminal(), &trace()).unwrap();
        assert_eq!(m.text(3), Some("200000"));
    }

    #[test]
    fn reversal_points_at_the_original() {
        let original = purchase_request(&purchase(), &terminal(), &trace()).unwrap();
        let t2 = Trace::new(Stan::new(43).unwrap(), &UtcFields::from_unix(1_795_256_160));
        let r = reversal_request(&original, &t2, ReversalReason::Timeout).unwrap();
        assert_eq!(r.mti(), Mti::REVERSAL);
        assert_eq!(r.text(11), Some("000043"));
        assert_eq!(r.text(39), Some("68"));
        assert_eq!(
            r.text(90),
            Some("020000004211211015300000012345600000000000")
        );
        assert_eq!(r.text(4), original.text(4));
        encode(&r, Spec::iso1987_ascii()).unwrap();
    }

    #[test]
    fn private_data_round_trips_and_keeps_unknown_tags() {
        let text = "0103Q-10208ALIPAYHK9902zz0404RL-1";
        let p = PrivateData::parse(text).unwrap();
        assert_eq!(p.quote_id.as_deref(), Some("Q-1"));
        assert_eq!(p.reference_label.as_deref(), Some("RL-1"));
        assert_eq!(p.other, vec![("99".to_owned(), "zz".to_owned())]);
        assert!(PrivateData::parse("0105abc").is_err());
    }

    #[test]
    fn answers_map_to_outcomes() {
        let req = purchase_request(&purchase(), &terminal(), &trace()).unwrap();
        let ok = response_to(&req, &ResponseCode::APPROVED).with(38, "A1B2C3");
        assert!(
            matches!(read_answer(&req, &ok), Answer::Approved(a) if a.auth_code.as_deref() == Some("A1B2C3"))
        );
        let no = response_to(&req, &ResponseCode::parse(b"51").unwrap());
        assert!(matches!(
            read_answer(&req, &no),
            Answer::Declined(Decline {
                reason: DeclineReason::InsufficientFunds,
                ..
            })
        ));
        let unknown = response_to(&req, &ResponseCode::parse(b"91").unwrap());
        assert!(matches!(read_answer(&req, &unknown), Answer::Unusable(_)));
        let other_amount = response_to(&req, &ResponseCode::APPROVED).with(4, "000000000001");
        assert!(matches!(
            read_answer(&req, &other_amount),
            Answer::Unusable(_)
        ));
    }
}
