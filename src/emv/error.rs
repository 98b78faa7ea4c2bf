//! Errors and warnings of the EMV room. Both carry a kind, the ID path ("62.05") and a character
//! offset; neither allocates, so the parser stays allocation-free even on bad input.

use std::fmt;

use super::ids;

/// Where in the payload a data object sits: root ID, then sub-IDs ("62.05", "38.01.00").
/// The empty path means the payload as a whole.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Path {
    ids: [u8; 3],
    depth: u8,
}

impl Path {
    /// The payload as a whole.
    pub const ROOT: Path = Path {
        ids: [0; 3],
        depth: 0,
    };

    /// A root data object.
    pub const fn id(id: u8) -> Path {
        Path {
            ids: [id, 0, 0],
            depth: 1,
        }
    }

    /// A data object inside a template ("62.05").
    pub const fn sub(id: u8, sub: u8) -> Path {
        Path {
            ids: [id, sub, 0],
            depth: 2,
        }
    }

    /// This path extended by one more level; paths deeper than three levels stay at three.
    pub fn child(self, id: u8) -> Path {
        let mut p = self;
        if (p.depth as usize) < p.ids.len() {
            p.ids[p.depth as usize] = id;
            p.depth += 1;
        }
        p
    }

    /// The IDs from the root down.
    pub fn ids(&self) -> &[u8] {
        &self.ids[..self.depth as usize]
    }

    /// The root ID, if the path is not the whole payload.
    pub fn root(&self) -> Option<u8> {
        self.ids().first().copied()
    }

    /// The innermost ID, if any.
    pub fn last(&self) -> Option<u8> {
        self.ids().last().copied()
    }

    /// Parses "62.05" back into a path; each part must be two digits, at most three levels.
    pub fn parse(s: &str) -> Option<Path> {
        if s.is_empty() {
            return Some(Path::ROOT);
        }
        let mut p = Path::ROOT;
        for part in s.split('.') {
            let b = part.as_bytes();
            if b.len() != 2 || !b[0].is_ascii_digit() || !b[1].is_ascii_digit() || p.depth == 3 {
                return None;
            }
            p = p.child((b[0] - b'0') * 10 + (b[1] - b'0'));
        }
        Some(p)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, id) in self.ids().iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{id:02}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Path({self})")
    }
}

/// The class of a parse failure (the `error.kind` of `qrbridge decode --json`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ErrorKind {
    /// CRC (ID 63) missing, malformed or wrong.
    Crc,
    /// A length runs past the end of the payload or of its template.
    Truncated,
    /// An ID or a length that is not two digits, or a length of 00 (a framing error).
    BadLength,
    /// 00 is not the first data object, or 63 is not the last.
    Order,
    /// The same ID twice at one level.
    Duplicate,
    /// A mandatory data object is absent.
    MissingMandatory,
    /// A value of the wrong format or outside its allowed set.
    BadValue,
    /// A character not allowed there (control characters anywhere; non-ASCII outside template 64).
    BadChar,
    /// The payload is over 512 characters, or a value is longer than its data object allows.
    TooLong,
}

impl ErrorKind {
    /// The wire name used by the CLI and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Crc => "crc",
            ErrorKind::Truncated => "truncated",
            ErrorKind::BadLength => "bad_length",
            ErrorKind::Order => "order",
            ErrorKind::Duplicate => "duplicate",
            ErrorKind::MissingMandatory => "missing_mandatory",
            ErrorKind::BadValue => "bad_value",
            ErrorKind::BadChar => "bad_char",
            ErrorKind::TooLong => "too_long",
        }
    }

    /// True for failures of the structural layer (framing, CRC, order, duplicates, size, line breaks),
    /// which no profile can relax.
    pub fn is_structural(self) -> bool {
        !matches!(
            self,
            ErrorKind::MissingMandatory | ErrorKind::BadValue | ErrorKind::TooLong
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A semantic rule of EMVCo MPM v1.1 that real national codes deviate from. Under the default mode
/// a deviation is a warning whose code is the rule's name; under `--strict` it is an error. The one
/// exception is [`Rule::Pfi02`], which only a national profile that allows it turns into a warning
/// (the payload format indicator is part of the payment terms). See `spec/emv.md` §3 and §7.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Rule {
    /// 52 (merchant category code) absent.
    MccAbsent,
    /// 59 (merchant name) absent.
    NameAbsent,
    /// 60 (merchant city) absent.
    CityAbsent,
    /// Payload format indicator "02" instead of "01".
    Pfi02,
    /// Sub-ID 62.00 present.
    AdditionalData00,
    /// Sub-ID 00 of a template is not GUID-shaped (an account id, a timestamp).
    AccountIdAsGuid,
    /// A template (26–51, 80–99, 62.50–99) whose content is not TLV: kept as raw text.
    OpaqueTemplate,
    /// A template (26–51, 80–99, 62.50–99) without sub-ID 00.
    GuidAbsent,
    /// A text value longer than its EMVCo maximum (59, 60, 61, 62.01–08, 62.10, 64.01, 64.02, a GUID).
    TextTooLong,
    /// A letter outside ASCII in 59 or 60 (accented city names).
    NonAsciiText,
    /// 52 is not four digits.
    MccFormat,
    /// 53 is an ISO 4217 alphabetic code instead of the numeric one.
    CurrencyAlpha,
    /// 54 has non-zero digits below the currency's minor unit (the gateway refuses to pay it).
    AmountTooPrecise,
    /// 62.09 holds something other than the letters A, M, E (each at most once).
    ConsumerDataRequest,
    /// 62.11 is not three characters with defined values at each position.
    ChannelUndefined,
}

impl Rule {
    /// Every rule, for registries and documentation.
    pub const ALL: [Rule; 15] = [
        Rule::MccAbsent,
        Rule::NameAbsent,
        Rule::CityAbsent,
        Rule::Pfi02,
        Rule::AdditionalData00,
        Rule::AccountIdAsGuid,
        Rule::OpaqueTemplate,
        Rule::GuidAbsent,
        Rule::TextTooLong,
        Rule::NonAsciiText,
        Rule::MccFormat,
        Rule::CurrencyAlpha,
        Rule::AmountTooPrecise,
        Rule::ConsumerDataRequest,
        Rule::ChannelUndefined,
    ];

    /// The rule's name in `profiles.toml` and in warning codes.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::MccAbsent => "mcc_absent",
            Rule::NameAbsent => "name_absent",
            Rule::CityAbsent => "city_absent",
            Rule::Pfi02 => "pfi_02",
            Rule::AdditionalData00 => "additional_data_00",
            Rule::AccountIdAsGuid => "account_id_as_guid",
            Rule::OpaqueTemplate => "opaque_template",
            Rule::GuidAbsent => "guid_absent",
            Rule::TextTooLong => "text_too_long",
            Rule::NonAsciiText => "non_ascii_text",
            Rule::MccFormat => "mcc_format",
            Rule::CurrencyAlpha => "currency_alpha",
            Rule::AmountTooPrecise => "amount_too_precise",
            Rule::ConsumerDataRequest => "consumer_data_request",
            Rule::ChannelUndefined => "channel_undefined",
        }
    }

    /// Looks a rule up by its name.
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// True if the default mode warns about this deviation whatever the profile; false for the rule
    /// only a profile may relax ([`Rule::Pfi02`]).
    pub fn is_lenient(self) -> bool {
        self != Rule::Pfi02
    }

    pub(crate) fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// What exactly was wrong; rendered into the error message. Plain data, no allocation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Detail {
    /// The payload has this many characters (more than 512).
    PayloadTooLong { chars: usize },
    /// The payload is empty.
    Empty,
    /// A control character (CR, LF, tab, ...).
    ControlChar { ch: char },
    /// Bytes that are not UTF-8 (the payload arrived as raw bytes).
    InvalidUtf8 { byte: u8 },
    /// A non-ASCII character where EMV allows only printable ASCII.
    NonAscii { ch: char },
    /// The two ID characters are not digits.
    IdNotDigits,
    /// The two length characters are not digits.
    LengthNotDigits,
    /// A length of 00.
    LengthZero,
    /// Fewer than 4 characters remain for an ID and a length.
    HeaderCut,
    /// The declared length runs past the end of the payload or template.
    RunsPast { declared: usize, available: usize },
    /// The ID occurred before.
    Repeated,
    /// The first data object is not 00.
    NotFirst,
    /// 63 is followed by more data.
    CrcNotLast,
    /// No CRC data object.
    CrcMissing,
    /// The CRC value is not 4 characters.
    CrcLength { len: usize },
    /// The CRC value is not hexadecimal.
    CrcNotHex,
    /// The CRC does not match the payload.
    CrcMismatch { expected: u16, found: u16 },
    /// A mandatory data object is absent.
    Missing,
    /// A value longer than its data object allows.
    Longer { len: usize, max: usize },
    /// A value shorter than its data object requires.
    Shorter { len: usize, min: usize },
    /// The value must be one of / shaped like this.
    Expected { what: &'static str },
    /// An ISO 4217 numeric code that does not exist.
    UnknownCurrency { numeric: u16 },
    /// An ISO 4217 currency without a minor unit.
    NoMinorUnit { code: &'static str },
    /// An ISO 3166 alpha-2 code that is not assigned.
    UnknownCountry,
    /// More decimals than the currency has, and the extra ones are not zeros.
    TooPrecise { decimals: usize, exponent: u8 },
    /// An amount of zero.
    Zero,
    /// A data object present that requires another (56 needs 55 = 02).
    Requires { other: Path, value: &'static str },
    /// A relaxable rule broken under `--strict` (or outside a profile that relaxes it).
    Broke { rule: Rule },
}

/// A parse failure: kind, path, character offset and what was wrong.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EmvError {
    /// The class of failure.
    pub kind: ErrorKind,
    /// The data object concerned; empty for the payload as a whole.
    pub path: Path,
    /// Character (Unicode code point) offset from the start of the payload, counting from 0.
    pub offset: usize,
    /// What exactly was wrong.
    pub detail: Detail,
}

impl EmvError {
    pub(crate) fn new(kind: ErrorKind, path: Path, offset: usize, detail: Detail) -> Self {
        EmvError {
            kind,
            path,
            offset,
            detail,
        }
    }
}

impl fmt::Display for EmvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path != Path::ROOT {
            write!(f, "{} ({}): ", self.path, ids::name(self.path))?;
        }
        match self.detail {
            Detail::PayloadTooLong { chars } => {
                write!(
                    f,
                    "payload has {chars} characters, more than the 512 allowed"
                )
            }
            Detail::Empty => f.write_str("empty payload"),
            Detail::ControlChar { ch } => {
                write!(f, "control character U+{:04X} not allowed", ch as u32)
            }
            Detail::NonAscii { ch } => write!(
                f,
                "character {ch:?} (U+{:04X}) not allowed: only printable ASCII outside template 64",
                ch as u32
            ),
            Detail::InvalidUtf8 { byte } => write!(f, "byte 0x{byte:02X} is not valid UTF-8"),
            Detail::IdNotDigits => f.write_str("ID is not two digits"),
            Detail::LengthNotDigits => f.write_str("length is not two digits"),
            Detail::LengthZero => f.write_str("length 00 is not allowed"),
            Detail::HeaderCut => f.write_str("data ends inside an ID or length"),
            Detail::RunsPast {
                declared,
                available,
            } => write!(
                f,
                "length {declared:02} runs past the end: only {available} characters remain"
            ),
            Detail::Repeated => f.write_str("ID occurs more than once"),
            Detail::NotFirst => {
                f.write_str("the payload must start with 00 (payload format indicator)")
            }
            Detail::CrcNotLast => f.write_str("CRC (63) must be the last data object"),
            Detail::CrcMissing => f.write_str("CRC (63) is missing"),
            Detail::CrcLength { len } => write!(f, "CRC length must be 04, found {len:02}"),
            Detail::CrcNotHex => f.write_str("CRC is not 4 hexadecimal digits"),
            Detail::CrcMismatch { expected, found } => {
                write!(
                    f,
                    "CRC {found:04X} does not match the payload (computed {expected:04X})"
                )
            }
            Detail::Missing => f.write_str("mandatory data object is missing"),
            Detail::Longer { len, max } => {
                write!(f, "value has {len} characters, more than the {max} allowed")
            }
            Detail::Shorter { len, min } => write!(
                f,
                "value has {len} characters, fewer than the {min} required"
            ),
            Detail::Expected { what } => write!(f, "expected {what}"),
            Detail::UnknownCurrency { numeric } => {
                write!(f, "{numeric:03} is not an ISO 4217 currency")
            }
            Detail::NoMinorUnit { code } => {
                write!(f, "{code} has no minor unit and cannot carry an amount")
            }
            Detail::UnknownCountry => {
                f.write_str("not an assigned ISO 3166-1 alpha-2 country code")
            }
            Detail::TooPrecise { decimals, exponent } => write!(
                f,
                "{decimals} decimal places, but the currency has {exponent}; the extra digits are not zero"
            ),
            Detail::Zero => f.write_str("amount must not be zero"),
            Detail::Requires { other, value } => write!(f, "only allowed when {other} is {value}"),
            Detail::Broke { rule } => write!(
                f,
                "{} (allowed only by a national profile, not in strict EMVCo v1.1)",
                rule_text(rule)
            ),
        }
    }
}

impl std::error::Error for EmvError {}

fn rule_text(rule: Rule) -> &'static str {
    match rule {
        Rule::MccAbsent => "merchant category code (52) is missing",
        Rule::NameAbsent => "merchant name (59) is missing",
        Rule::CityAbsent => "merchant city (60) is missing",
        Rule::Pfi02 => "payload format indicator is \"02\", EMVCo v1.1 requires \"01\"",
        Rule::AdditionalData00 => "sub-ID 00 is not defined in the additional data template",
        Rule::AccountIdAsGuid => "sub-ID 00 is not a GUID (AID, UUID or reverse domain name)",
        Rule::OpaqueTemplate => "template content is not TLV data objects; kept as raw text",
        Rule::GuidAbsent => "template has no sub-ID 00 (globally unique identifier)",
        Rule::TextTooLong => "value is longer than EMVCo allows",
        Rule::NonAsciiText => "letters outside ASCII; EMVCo allows them only in template 64",
        Rule::MccFormat => "merchant category code is not 4 digits",
        Rule::CurrencyAlpha => {
            "currency written as the ISO 4217 alphabetic code; EMVCo requires the numeric one"
        }
        Rule::AmountTooPrecise => {
            "amount has non-zero digits below the currency's minor unit; it cannot be paid exactly"
        }
        Rule::ConsumerDataRequest => {
            "additional consumer data request is not the letters A, M, E (each at most once)"
        }
        Rule::ChannelUndefined => {
            "merchant channel is not 3 characters with defined values (media 0-7, location 0-3, presence 0-3)"
        }
    }
}

/// The class of a warning (the `warnings[].code` of `qrbridge decode --json`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum WarningCode {
    /// A deviation from EMVCo v1.1 (the default mode accepts it; `--strict` refuses it).
    Deviation(Rule),
    /// The CRC was written in lower-case hex (accepted; we always emit upper case).
    CrcLowercase,
    /// The amount's decimal places differ from the currency's ISO 4217 exponent (value still exact).
    AmountDecimals,
    /// The country (58) differs from the country of the matched domestic scheme.
    CountryMismatch,
}

impl WarningCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningCode::Deviation(rule) => rule.as_str(),
            WarningCode::CrcLowercase => "crc_lowercase",
            WarningCode::AmountDecimals => "amount_decimals",
            WarningCode::CountryMismatch => "country_mismatch",
        }
    }
}

/// A deviation that does not make the payload invalid.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Warning {
    /// What kind of deviation.
    pub code: WarningCode,
    /// The data object concerned.
    pub path: Path,
    /// Character offset of the data object (or of where it would have been).
    pub offset: usize,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            WarningCode::Deviation(rule) => f.write_str(rule_text(rule)),
            WarningCode::CrcLowercase => {
                f.write_str("CRC written in lower-case hex; encoders emit upper case")
            }
            WarningCode::AmountDecimals => {
                f.write_str("amount decimal places differ from the currency's ISO 4217 exponent")
            }
            WarningCode::CountryMismatch => f.write_str(
                "country code differs from the domestic country of the recognised scheme",
            ),
        }
    }
}

/// Up to [`Warnings::CAPACITY`] warnings, kept inline; more are counted, not stored.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Warnings {
    items: [Option<Warning>; Warnings::CAPACITY],
    len: u8,
    dropped: u16,
}

impl Default for Warnings {
    fn default() -> Self {
        Warnings {
            items: [None; Warnings::CAPACITY],
            len: 0,
            dropped: 0,
        }
    }
}

impl Warnings {
    /// How many warnings are stored.
    pub const CAPACITY: usize = 8;

    pub(crate) fn push(&mut self, w: Warning) {
        match self.items.get_mut(self.len as usize) {
            Some(slot) => {
                *slot = Some(w);
                self.len += 1;
            }
            None => self.dropped = self.dropped.saturating_add(1),
        }
    }

    /// The stored warnings, in the order they were found.
    pub fn iter(&self) -> impl Iterator<Item = &Warning> {
        self.items.iter().flatten()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many are stored and dropped (a mark to [`truncate`](Self::truncate) back to).
    pub(crate) fn mark(&self) -> (u8, u16) {
        (self.len, self.dropped)
    }

    /// Forgets the warnings pushed after `mark`.
    pub(crate) fn truncate(&mut self, mark: (u8, u16)) {
        for slot in self.items.iter_mut().skip(mark.0 as usize) {
            *slot = None;
        }
        (self.len, self.dropped) = mark;
    }

    pub(crate) fn add_dropped(&mut self, n: usize) {
        self.dropped = self
            .dropped
            .saturating_add(u16::try_from(n).unwrap_or(u16::MAX));
    }

    /// Warnings found beyond the capacity.
    pub fn dropped(&self) -> usize {
        self.dropped as usize
    }
}
