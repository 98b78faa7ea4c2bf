//! The semantic layer: EMVCo MPM v1.1 formats, presence and dependency rules, applied after the
//! structure is known to be sound. A rule the recognised profile relaxes becomes a warning
//! (unless the mode is strict). Offsets here are byte offsets; `mpm.rs` converts them.

use super::error::{Detail, EmvError, ErrorKind, Path, Rule, Warning, WarningCode};
use super::ids;
use super::mpm::{Frame, Mode, Semantics, Tip, is_nested};
use super::profiles::{NationalScheme, RuleSet, registry};
use super::tlv::{Element, Tokens};
use crate::money::{Currency, CurrencyError};

struct Ctx<'f, 'a> {
    frame: &'f mut Frame<'a>,
    strict: bool,
    relax: RuleSet,
}

fn err(kind: ErrorKind, path: Path, at: usize, detail: Detail) -> EmvError {
    EmvError::new(kind, path, at, detail)
}

/// Runs every semantic rule; returns the typed values the rules computed.
pub(crate) fn check(frame: &mut Frame<'_>, mode: Mode) -> Result<Semantics, EmvError> {
    let relax = frame.scheme.map(|s| s.profile().relax).unwrap_or_default();
    let mut cx = Ctx {
        frame,
        strict: mode == Mode::Strict,
        relax,
    };
    cx.run()
}

impl<'a> Ctx<'_, 'a> {
    /// A deviation: a warning if the profile relaxes `rule` (and the mode is not strict), else an error.
    fn deviate(
        &mut self,
        rule: Rule,
        kind: ErrorKind,
        path: Path,
        at: usize,
        detail: Detail,
    ) -> Result<(), EmvError> {
        let profile = self.relax.contains(rule);
        if self.strict {
            let detail = if profile {
                Detail::Broke { rule }
            } else {
                detail
            };
            return Err(err(kind, path, at, detail));
        }
        if profile || rule.is_lenient() {
            self.frame.warnings.push(Warning {
                code: WarningCode::Deviation(rule),
                path,
                offset: at,
            });
            return Ok(());
        }
        Err(err(kind, path, at, detail))
    }

    fn warn(&mut self, code: WarningCode, path: Path, at: usize) {
        self.frame.warnings.push(Warning {
            code,
            path,
            offset: at,
        });
    }

    fn chars(&self, s: &str) -> usize {
        if self.frame.ascii {
            s.len()
        } else {
            s.chars().count()
        }
    }

    /// Printable ASCII only (control characters were refused for the whole payload already).
    fn ascii_only(&self, path: Path, el: Element<'_>) -> Result<(), EmvError> {
        if self.frame.ascii {
            return Ok(());
        }
        match el.value.char_indices().find(|(_, c)| !c.is_ascii()) {
            Some((i, ch)) => Err(err(
                ErrorKind::BadChar,
                path,
                el.value_at() + i,
                Detail::NonAscii { ch },
            )),
            None => Ok(()),
        }
    }

    /// 59 and 60: a visible non-ASCII character (a letter, an accent) is a deviation
    /// (`non_ascii_text`); spaces and invisible characters outside ASCII (NBSP, zero-width) stay errors.
    fn text(&mut self, path: Path, el: Element<'_>) -> Result<(), EmvError> {
        if self.frame.ascii {
            return Ok(());
        }
        let Some((i, ch)) = el.value.char_indices().find(|(_, c)| !c.is_ascii()) else {
            return Ok(());
        };
        let at = el.value_at() + i;
        // Strict mode reports the first non-ASCII character, as it always did.
        if !self.strict
            && let Some((j, bad)) = el
                .value
                .char_indices()
                .find(|(_, c)| !c.is_ascii() && is_invisible(*c))
        {
            return Err(err(
                ErrorKind::BadChar,
                path,
                el.value_at() + j,
                Detail::NonAscii { ch: bad },
            ));
        }
        self.deviate(
            Rule::NonAsciiText,
            ErrorKind::BadChar,
            path,
            at,
            Detail::NonAscii { ch },
        )
    }

    /// A hard maximum (amounts, percentages): over it is an error in every mode.
    fn max_len(&self, path: Path, el: Element<'_>, max: usize) -> Result<(), EmvError> {
        let len = self.chars(el.value);
        if len > max {
            return Err(err(
                ErrorKind::TooLong,
                path,
                el.value_at(),
                Detail::Longer { len, max },
            ));
        }
        Ok(())
    }

    /// A text maximum: over it is a deviation (`text_too_long`).
    fn text_max(&mut self, path: Path, el: Element<'_>, max: usize) -> Result<(), EmvError> {
        let len = self.chars(el.value);
        if len > max {
            return self.deviate(
                Rule::TextTooLong,
                ErrorKind::TooLong,
                path,
                el.value_at(),
                Detail::Longer { len, max },
            );
        }
        Ok(())
    }

    fn run(&mut self) -> Result<Semantics, EmvError> {
        let mut currency = None;
        let mut mcc = None;
        let mut has_account = false;
        let mut mcc_malformed = false;
        let country = self.frame.raw(ids::COUNTRY);
        for i in 0..self.frame.len() {
            let Some(el) = self.frame.element_at(i) else {
                break;
            };
            let path = Path::id(el.id);
            if matches!(el.id, ids::NAME | ids::CITY) {
                self.text(path, el)?;
            } else if !ids::is_root_template(el.id) || self.frame.opaque(el.id) {
                self.ascii_only(path, el)?;
            }
            match (ids::root_max(el.id), el.id) {
                (Some(max), ids::NAME | ids::CITY | ids::POSTAL_CODE) => {
                    self.text_max(path, el, max)?
                }
                (Some(max), _) => self.max_len(path, el, max)?,
                (None, _) => {}
            }
            match el.id {
                ids::PAYLOAD_FORMAT => match el.value {
                    "01" => {}
                    "02" => self.deviate(
                        Rule::Pfi02,
                        ErrorKind::BadValue,
                        path,
                        el.value_at(),
                        Detail::Expected { what: "\"01\"" },
                    )?,
                    _ => {
                        return Err(err(
                            ErrorKind::BadValue,
                            path,
                            el.value_at(),
                            Detail::Expected { what: "\"01\"" },
                        ));
                    }
                },
                ids::INITIATION if el.value != "11" && el.value != "12" => {
                    return Err(err(
                        ErrorKind::BadValue,
                        path,
                        el.value_at(),
                        Detail::Expected {
                            what: "\"11\" (static) or \"12\" (dynamic)",
                        },
                    ));
                }
                2..=25 => has_account = true,
                26..=51 => {
                    has_account = true;
                    if !self.frame.opaque(el.id) {
                        self.guid_template(path, el, country)?;
                    }
                }
                80..=99 if !self.frame.opaque(el.id) => self.guid_template(path, el, country)?,
                ids::MCC => match digits_exact(el, 4, path, "4 digits") {
                    Ok(m) => mcc = Some(m),
                    Err(e) => {
                        self.deviate(Rule::MccFormat, e.kind, e.path, e.offset, e.detail)?;
                        mcc_malformed = true;
                    }
                },
                ids::CURRENCY => currency = Some(self.currency(el, path)?),
                ids::TIP_INDICATOR if !matches!(el.value, "01" | "02" | "03") => {
                    return Err(err(
                        ErrorKind::BadValue,
                        path,
                        el.value_at(),
                        Detail::Expected {
                            what: "\"01\" (prompt), \"02\" (fixed fee) or \"03\" (percentage fee)",
                        },
                    ));
                }
                ids::COUNTRY => check_country(el, path)?,
                ids::ADDITIONAL_DATA => self.additional_data(el)?,
                ids::LANGUAGE => self.language(el)?,
                _ => {}
            }
        }

        let end = self.frame.payload.len();
        let missing = |id: u8| {
            err(
                ErrorKind::MissingMandatory,
                Path::id(id),
                end,
                Detail::Missing,
            )
        };
        if !has_account {
            return Err(err(
                ErrorKind::MissingMandatory,
                Path::ROOT,
                end,
                Detail::Missing,
            ));
        }
        if mcc.is_none() && !mcc_malformed {
            self.deviate(
                Rule::MccAbsent,
                ErrorKind::MissingMandatory,
                Path::id(ids::MCC),
                end,
                Detail::Missing,
            )?;
        }
        let Some(currency) = currency else {
            return Err(missing(ids::CURRENCY));
        };
        if country.is_none() {
            return Err(missing(ids::COUNTRY));
        }
        if self.frame.raw(ids::NAME).is_none() {
            self.deviate(
                Rule::NameAbsent,
                ErrorKind::MissingMandatory,
                Path::id(ids::NAME),
                end,
                Detail::Missing,
            )?;
        }
        if self.frame.raw(ids::CITY).is_none() {
            self.deviate(
                Rule::CityAbsent,
                ErrorKind::MissingMandatory,
                Path::id(ids::CITY),
                end,
                Detail::Missing,
            )?;
        }

        let mut too_precise = None;
        let amount = match self.element(ids::AMOUNT) {
            Some(el) => match self.amount(el, currency, true)? {
                Ok(minor) => Some(minor),
                Err(decimals) => {
                    too_precise = Some((decimals, currency.exponent()));
                    None
                }
            },
            None => None,
        };
        let tip = self.tip(currency)?;

        if let (Some(scheme), Some(c)) = (self.frame.scheme, country)
            && let Some(home) = &scheme.country
            && home != c
        {
            let at = self.frame.at(ids::COUNTRY).unwrap_or(0);
            self.warn(WarningCode::CountryMismatch, Path::id(ids::COUNTRY), at);
        }
        Ok(Semantics {
            currency,
            amount,
            tip,
            mcc,
            too_precise,
        })
    }

    /// 53: three digits naming an ISO 4217 currency with a minor unit; three upper-case letters
    /// naming one are a deviation (`currency_alpha`), mapped to that currency.
    fn currency(&mut self, el: Element<'a>, path: Path) -> Result<Currency, EmvError> {
        let b = el.value.as_bytes();
        if b.len() == 3
            && b.iter().all(u8::is_ascii_uppercase)
            && let Some(iso) = iso_currency::Currency::from_code(el.value)
        {
            let numeric = iso.numeric();
            let c = Currency::from_numeric(numeric).map_err(|e| {
                let detail = match e {
                    CurrencyError::NoMinorUnit(code) => Detail::NoMinorUnit { code },
                    _ => Detail::UnknownCurrency { numeric },
                };
                err(ErrorKind::BadValue, path, el.value_at(), detail)
            })?;
            self.deviate(
                Rule::CurrencyAlpha,
                ErrorKind::BadValue,
                path,
                el.value_at(),
                Detail::Expected {
                    what: "3 digits (ISO 4217 numeric)",
                },
            )?;
            return Ok(c);
        }
        let numeric = digits_exact(el, 3, path, "3 digits (ISO 4217 numeric)")?;
        Currency::from_numeric(numeric).map_err(|e| {
            let detail = match e {
                CurrencyError::NoMinorUnit(code) => Detail::NoMinorUnit { code },
                _ => Detail::UnknownCurrency { numeric },
            };
            err(ErrorKind::BadValue, path, el.value_at(), detail)
        })
    }

    fn element(&self, id: u8) -> Option<Element<'a>> {
        let at = self.frame.at(id)?;
        Some(Element {
            id,
            value: self.frame.raw(id)?,
            at,
        })
    }

    fn subs(&self, el: Element<'a>) -> impl Iterator<Item = Element<'a>> + use<'a> {
        Tokens::new(el.value, el.value_at(), self.frame.ascii).valid()
    }

    /// A template with a GUID in 00 (26–51, 80–99, 62.50–99): 00 present, ≤ 32, GUID-shaped
    /// (each a deviation when broken); every value printable ASCII, inside a recognised scheme's
    /// nested sub-templates too. One pass over the sub-elements.
    fn guid_template(
        &mut self,
        path: Path,
        el: Element<'a>,
        country: Option<&str>,
    ) -> Result<(), EmvError> {
        // Only merchant accounts (26–51) belong to a scheme that may nest; and nesting matters here
        // only for the character check, which an all-ASCII payload has passed already.
        let look_up = !self.frame.ascii && path.ids().len() == 1 && ids::is_merchant_account(el.id);
        let mut scheme: Option<&NationalScheme> = None;
        let mut guid = None;
        for sub in self.subs(el) {
            let sub_path = path.child(sub.id);
            if sub.id == 0 {
                guid = Some(sub);
                if look_up {
                    scheme = registry().match_template(el.id, sub.value, country);
                }
            }
            if look_up && is_nested(el.id, sub.id, scheme) {
                for inner in self.subs(sub) {
                    self.ascii_only(sub_path.child(inner.id), inner)?;
                }
            } else {
                self.ascii_only(sub_path, sub)?;
            }
        }
        let Some(g) = guid else {
            return self.deviate(
                Rule::GuidAbsent,
                ErrorKind::MissingMandatory,
                path.child(0),
                el.value_at(),
                Detail::Missing,
            );
        };
        let gpath = path.child(0);
        self.text_max(gpath, g, 32)?;
        if !is_guid_shaped(g.value) {
            self.deviate(
                Rule::AccountIdAsGuid,
                ErrorKind::BadValue,
                gpath,
                g.value_at(),
                Detail::Expected {
                    what: "a GUID: an AID (10-32 hex digits starting A, D or F), a UUID or a reverse domain name",
                },
            )?;
        }
        Ok(())
    }

    fn additional_data(&mut self, el: Element<'a>) -> Result<(), EmvError> {
        let root = Path::id(el.id);
        for sub in self.subs(el) {
            let path = root.child(sub.id);
            if sub.id >= 50 {
                if self.frame.opaque_ad & (1u128 << sub.id) != 0 {
                    self.ascii_only(path, sub)?;
                } else {
                    self.guid_template(path, sub, None)?;
                }
                continue;
            }
            self.ascii_only(path, sub)?;
            if let (Some(max), 1..=8 | 10) = (ids::additional_data_max(sub.id), sub.id) {
                self.text_max(path, sub, max)?;
            }
            match sub.id {
                0 => self.deviate(
                    Rule::AdditionalData00,
                    ErrorKind::BadValue,
                    path,
                    sub.at,
                    Detail::Expected {
                        what: "sub-IDs 01-99; 00 is not defined",
                    },
                )?,
                9 => {
                    if let Some(e) = consumer_data_request(sub, path) {
                        self.deviate(
                            Rule::ConsumerDataRequest,
                            e.kind,
                            e.path,
                            e.offset,
                            e.detail,
                        )?;
                    }
                }
                11 => {
                    if let Some(e) = merchant_channel(sub, path) {
                        self.deviate(Rule::ChannelUndefined, e.kind, e.path, e.offset, e.detail)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn language(&mut self, el: Element<'a>) -> Result<(), EmvError> {
        let root = Path::id(el.id);
        let mut has = [false; 2];
        for sub in self.subs(el) {
            let path = root.child(sub.id);
            match sub.id {
                0 => {
                    has[0] = true;
                    let b = sub.value.as_bytes();
                    if b.len() != 2 || !b.iter().all(u8::is_ascii_alphabetic) {
                        return Err(err(
                            ErrorKind::BadValue,
                            path,
                            sub.value_at(),
                            Detail::Expected {
                                what: "an ISO 639-1 two-letter language code",
                            },
                        ));
                    }
                }
                1 => {
                    has[1] = true;
                    self.text_max(path, sub, 25)?;
                }
                2 => self.text_max(path, sub, 15)?,
                _ => {}
            }
        }
        for (i, present) in has.into_iter().enumerate() {
            if !present {
                return Err(err(
                    ErrorKind::MissingMandatory,
                    root.child(i as u8),
                    el.value_at(),
                    Detail::Missing,
                ));
            }
        }
        Ok(())
    }

    /// 54 or 56: digits with at most one '.', no sign, ≤ 13; exact in minor units. `Ok(Err(d))`:
    /// 54 with `d` decimals whose digits below the minor unit are not zero (a deviation; the gateway
    /// refuses to pay it). For 56 (a fee: `nonzero` false) that is an error in every mode.
    fn amount(
        &mut self,
        el: Element<'a>,
        currency: Currency,
        nonzero: bool,
    ) -> Result<Result<u64, u8>, EmvError> {
        let path = Path::id(el.id);
        let bad = |what| {
            err(
                ErrorKind::BadValue,
                path,
                el.value_at(),
                Detail::Expected { what },
            )
        };
        let (minor, decimals) = match parse_decimal(el.value, currency.exponent()) {
            Ok(v) => v,
            Err(DecimalError::Syntax) => {
                return Err(bad("digits with at most one '.' as decimal mark"));
            }
            Err(DecimalError::TooPrecise(decimals)) => {
                let detail = Detail::TooPrecise {
                    decimals,
                    exponent: currency.exponent(),
                };
                if !nonzero {
                    return Err(err(ErrorKind::BadValue, path, el.value_at(), detail));
                }
                self.deviate(
                    Rule::AmountTooPrecise,
                    ErrorKind::BadValue,
                    path,
                    el.value_at(),
                    detail,
                )?;
                // ≤ 13 characters, so the count fits a u8.
                return Ok(Err(decimals.min(u8::MAX as usize) as u8));
            }
        };
        if nonzero && minor == 0 {
            return Err(err(ErrorKind::BadValue, path, el.value_at(), Detail::Zero));
        }
        if decimals.unwrap_or(0) != currency.exponent() as usize {
            self.warn(WarningCode::AmountDecimals, path, el.value_at());
        }
        Ok(Ok(minor))
    }

    fn tip(&mut self, currency: Currency) -> Result<Option<Tip>, EmvError> {
        let indicator = self.frame.raw(ids::TIP_INDICATOR);
        let fixed = self.element(ids::FEE_FIXED);
        let pct = self.element(ids::FEE_PERCENTAGE);
        let requires = |el: Element<'_>, value| {
            err(
                ErrorKind::BadValue,
                Path::id(el.id),
                el.at,
                Detail::Requires {
                    other: Path::id(ids::TIP_INDICATOR),
                    value,
                },
            )
        };
        if let Some(f) = fixed
            && indicator != Some("02")
        {
            return Err(requires(f, "\"02\""));
        }
        if let Some(p) = pct
            && indicator != Some("03")
        {
            return Err(requires(p, "\"03\""));
        }
        let end = self.frame.payload.len();
        Ok(match indicator {
            None => None,
            Some("01") => Some(Tip::Prompt),
            Some("02") => match fixed {
                Some(f) => match self.amount(f, currency, false)? {
                    Ok(minor) => Some(Tip::Fixed(minor)),
                    // Not reached: a fee's excess precision is an error in `amount`.
                    Err(_) => None,
                },
                None => {
                    return Err(err(
                        ErrorKind::MissingMandatory,
                        Path::id(ids::FEE_FIXED),
                        end,
                        Detail::Missing,
                    ));
                }
            },
            Some(_) => match pct {
                Some(p) => Some(Tip::Percentage(percentage(p)?)),
                None => {
                    return Err(err(
                        ErrorKind::MissingMandatory,
                        Path::id(ids::FEE_PERCENTAGE),
                        end,
                        Detail::Missing,
                    ));
                }
            },
        })
    }
}

fn digits_exact(
    el: Element<'_>,
    n: usize,
    path: Path,
    what: &'static str,
) -> Result<u16, EmvError> {
    let b = el.value.as_bytes();
    if b.len() != n || !b.iter().all(u8::is_ascii_digit) {
        return Err(err(
            ErrorKind::BadValue,
            path,
            el.value_at(),
            Detail::Expected { what },
        ));
    }
    Ok(b.iter().fold(0u16, |acc, d| acc * 10 + (d - b'0') as u16))
}

/// Characters outside ASCII that are not visible text: spaces other than U+0020, zero-width and
/// direction marks, soft hyphen, byte-order mark.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(c, '\u{AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

/// 62.09: only the letters A, M, E, each at most once; `Some(error)` otherwise.
fn consumer_data_request(sub: Element<'_>, path: Path) -> Option<EmvError> {
    let len = sub.value.chars().count();
    if len > 3 {
        return Some(err(
            ErrorKind::TooLong,
            path,
            sub.value_at(),
            Detail::Longer { len, max: 3 },
        ));
    }
    let mut seen = 0u8;
    for (i, c) in sub.value.bytes().enumerate() {
        let bit = match c {
            b'A' => 1,
            b'M' => 2,
            b'E' => 4,
            _ => 0,
        };
        if bit == 0 || seen & bit != 0 {
            return Some(err(
                ErrorKind::BadValue,
                path,
                sub.value_at() + i,
                Detail::Expected {
                    what: "the letters A, M, E, each at most once",
                },
            ));
        }
        seen |= bit;
    }
    None
}

/// 62.11 merchant channel (EMVCo MPM v1.1): three characters by position — media ("0" sticker,
/// "1" bill/invoice, "2" magazine/poster, "3" other print, "4" merchant POS/POI screen, "5" website,
/// "6" app, "7" other screen), transaction location ("0" at the premises, "1" not at the premises,
/// "2" remote commerce, "3" other), merchant presence ("0" attended, "1" unattended,
/// "2" semi-attended, "3" other). `Some(error)` when the length or a position is not defined.
fn merchant_channel(sub: Element<'_>, path: Path) -> Option<EmvError> {
    let b = sub.value.as_bytes();
    let len = sub.value.chars().count();
    if len > 3 {
        return Some(err(
            ErrorKind::TooLong,
            path,
            sub.value_at(),
            Detail::Longer { len, max: 3 },
        ));
    }
    if len < 3 {
        return Some(err(
            ErrorKind::BadValue,
            path,
            sub.value_at(),
            Detail::Shorter { len, min: 3 },
        ));
    }
    const WHAT: [&str; 3] = [
        "media \"0\"-\"7\" (print or screen)",
        "transaction location \"0\"-\"3\"",
        "merchant presence \"0\"-\"3\"",
    ];
    for (i, (&c, max)) in b.iter().zip([b'7', b'3', b'3']).enumerate() {
        if !(b'0'..=max).contains(&c) {
            return Some(err(
                ErrorKind::BadValue,
                path,
                sub.value_at() + i,
                Detail::Expected { what: WHAT[i] },
            ));
        }
    }
    None
}

/// ISO 3166-1 alpha-2 codes from the `iso_country` table as a 26×26 bitmap (bit (a-'A')*26+(b-'A')),
/// built once: the parse path then never allocates and looks a code up in O(1).
static ASSIGNED_COUNTRIES: std::sync::LazyLock<[u64; 11]> = std::sync::LazyLock::new(|| {
    let mut bits = [0u64; 11];
    for c in iso_country::data::all() {
        if let &[a @ b'A'..=b'Z', b @ b'A'..=b'Z'] = c.alpha2.as_bytes() {
            let i = (a - b'A') as usize * 26 + (b - b'A') as usize;
            bits[i / 64] |= 1 << (i % 64);
        }
    }
    bits
});

fn is_assigned_country(a: u8, b: u8) -> bool {
    let i = a.wrapping_sub(b'A') as usize * 26 + b.wrapping_sub(b'A') as usize;
    ASSIGNED_COUNTRIES
        .get(i / 64)
        .is_some_and(|w| w & (1 << (i % 64)) != 0)
}

fn check_country(el: Element<'_>, path: Path) -> Result<(), EmvError> {
    let b = el.value.as_bytes();
    if b.len() != 2 || !b.iter().all(u8::is_ascii_uppercase) {
        return Err(err(
            ErrorKind::BadValue,
            path,
            el.value_at(),
            Detail::Expected {
                what: "an upper-case ISO 3166-1 alpha-2 code",
            },
        ));
    }
    if !is_assigned_country(b[0], b[1]) {
        return Err(err(
            ErrorKind::BadValue,
            path,
            el.value_at(),
            Detail::UnknownCountry,
        ));
    }
    Ok(())
}

/// 57: a percentage 0.01–99.99 with at most two decimals, in hundredths.
fn percentage(el: Element<'_>) -> Result<u16, EmvError> {
    let bad = || {
        err(
            ErrorKind::BadValue,
            Path::id(el.id),
            el.value_at(),
            Detail::Expected {
                what: "a percentage from 0.01 to 99.99",
            },
        )
    };
    let (hundredths, _) = parse_decimal(el.value, 2).map_err(|_| bad())?;
    if !(1..=9999).contains(&hundredths) {
        return Err(bad());
    }
    Ok(hundredths as u16)
}

/// Why a decimal string was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DecimalError {
    /// Not digits with at most one '.'.
    Syntax,
    /// More decimals than `exponent`, and the extra ones are not zeros.
    TooPrecise(usize),
}

/// Parses EMV amount syntax ("35", "35.00", "35.5", "0.5") into units of 10^-`exponent`.
/// Returns the value and the number of decimals written (`None` without a '.').
pub(crate) fn parse_decimal(s: &str, exponent: u8) -> Result<(u64, Option<usize>), DecimalError> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let frac_str = frac.unwrap_or("");
    if !digits(int) || !digits(frac_str) || int.len() + frac_str.len() == 0 || int.len() > 18 {
        return Err(DecimalError::Syntax);
    }
    let exp = exponent as usize;
    if frac_str.len() > exp && frac_str.bytes().skip(exp).any(|b| b != b'0') {
        return Err(DecimalError::TooPrecise(frac_str.len()));
    }
    let mut v: u64 = 0;
    for b in int.bytes() {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((b - b'0') as u64))
            .ok_or(DecimalError::Syntax)?;
    }
    let frac_bytes = frac_str.as_bytes();
    for i in 0..exp {
        let d = frac_bytes.get(i).map_or(0, |b| (b - b'0') as u64);
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(d))
            .ok_or(DecimalError::Syntax)?;
    }
    Ok((v, frac.map(str::len)))
}

/// An AID (10–32 hex digits starting with a RID category A, D or F), a UUID without hyphens
/// (32 hex digits), or a
/// reverse domain name (labels of letters, digits, '-' or '_' separated by '.', at least two labels).
pub(crate) fn is_guid_shaped(g: &str) -> bool {
    let b = g.as_bytes();
    if b.iter().all(u8::is_ascii_hexdigit) {
        // An AID's RID is registered internationally ('A'), nationally ('D') or proprietary ('F'):
        // an all-digit account id or timestamp is not an AID. 32 hex digits: a UUID.
        let rid = matches!(b.first(), Some(b'A' | b'a' | b'D' | b'd' | b'F' | b'f'));
        return b.len() == 32 || (rid && (10..=32).contains(&b.len()));
    }
    b.contains(&b'.')
        && g.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_scale_exactly_at_every_exponent() {
        assert_eq!(parse_decimal("35", 2), Ok((3500, None)));
        assert_eq!(parse_decimal("35.5", 2), Ok((3550, Some(1))));
        assert_eq!(parse_decimal("100.00", 0), Ok((100, Some(2))));
        assert_eq!(parse_decimal("1.234", 3), Ok((1234, Some(3))));
        assert_eq!(parse_decimal("0.0001", 4), Ok((1, Some(4))));
        assert_eq!(parse_decimal("1.235", 2), Err(DecimalError::TooPrecise(3)));
        for bad in ["", ".", "1.2.3", "-1", "+1", "1,00", " 1"] {
            assert_eq!(parse_decimal(bad, 2), Err(DecimalError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn country_codes_come_from_the_iso_3166_table() {
        for assigned in ["TH", "SG", "KH", "GB", "ZW", "AD"] {
            assert!(
                is_assigned_country(assigned.as_bytes()[0], assigned.as_bytes()[1]),
                "{assigned}"
            );
        }
        for unassigned in ["UK", "XX", "ZZ", "AA"] {
            assert!(
                !is_assigned_country(unassigned.as_bytes()[0], unassigned.as_bytes()[1]),
                "{unassigned}"
            );
        }
    }

    #[test]
    fn guid_shapes() {
        for good in [
            "A000000677010111",
            "SG.PAYNOW",
            "br.gov.bcb.pix",
            "ID.CO.QRIS.WWW",
            "COM.GO-JEK.WWW",
        ] {
            assert!(is_guid_shaped(good), "{good}");
        }
        for bad in [
            "john_smith@devb",
            "1700000000000x",
            "A0000",
            "SG..PAYNOW",
            "PAYNOW",
        ] {
            assert!(!is_guid_shaped(bad), "{bad}");
        }
    }
}
