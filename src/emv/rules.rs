//! The one pass: framing, the CRC and every semantic rule of EMVCo MPM v1.1 (`spec/emv.md`), in
//! one walk over the payload. Each root data object is framed and checked where it stands;
//! templates are framed and checked as their sub-elements are read, nested sub-templates too.
//!
//! Errors keep the precedence of the layered checks they replace — a framing fault of the root
//! wins over the CRC, which wins over a template's framing fault, which wins over a semantic
//! error — so the pass returns at once only on a root fault and holds the first template fault
//! and the first semantic error back until the CRC has been checked. Deviations the default mode
//! accepts become warnings at once; the one rule only a profile may relax (`pfi_02`) waits until
//! the merchant accounts have picked the profile. Offsets here are byte offsets; `mpm.rs`
//! converts them.

use super::error::{Detail, EmvError, ErrorKind, Path, Rule, Warning, WarningCode};
use super::ids;
use super::mpm::{MerchantQr, Tip};
use super::profiles::{NationalScheme, RuleSet, registry};
use super::tlv::{Element, Tokens};
use crate::money::{Currency, CurrencyError};

fn err(kind: ErrorKind, path: Path, at: usize, detail: Detail) -> EmvError {
    EmvError::new(kind, path, at, detail)
}

/// A semantic error held until the CRC is checked; `rule` names the deviation it is, if any (its
/// detail then depends on the profile, known only at the end).
#[derive(Clone, Copy)]
struct Held {
    err: EmvError,
    rule: Option<Rule>,
}

/// A merchant account that may pick the profile, in payload order.
#[derive(Clone, Copy)]
enum Candidate<'a> {
    /// Recognised while framing (a GUID or a primitive ID).
    Known(&'static NationalScheme),
    /// Recognisable only by the shape of its sub-ID 00 and the country (58, read later).
    ByShape { template: u8, guid: &'a str },
}

/// At most this many candidate accounts are kept; a payload with more has its profile picked by
/// reading the accounts again (no real code comes close).
const CANDIDATES: usize = 8;

/// The root data objects the checks after the pass read.
#[derive(Default)]
struct Kept<'a> {
    amount: Option<Element<'a>>,
    tip: Option<&'a str>,
    fee_fixed: Option<Element<'a>>,
    fee_percentage: Option<Element<'a>>,
    country: Option<&'a str>,
    crc: Option<Element<'a>>,
    name: bool,
    city: bool,
}

/// What a template's framing concluded.
enum Framed {
    /// Well-formed.
    Ok,
    /// Not TLV, kept as raw text (default mode, templates with a GUID).
    Opaque,
    /// A framing fault (held until the CRC is checked).
    Fault(EmvError),
}

struct Scan<'q, 'a> {
    q: &'q mut MerchantQr<'a>,
    strict: bool,
    /// The first framing fault inside a template.
    template_fault: Option<EmvError>,
    /// The first semantic error.
    held: Option<Held>,
    /// The `pfi_02` deviation, waiting for the profile (default mode).
    pfi02: Option<(Path, usize)>,
    has_account: bool,
    mcc_malformed: bool,
    /// Root data objects the rules after the pass need (kept as the pass meets them).
    kept: Kept<'a>,
    candidates: [Option<Candidate<'a>>; CANDIDATES],
    n_candidates: usize,
    candidates_overflow: bool,
}

/// Runs the pass over `q.payload` (size and characters already checked), filling `q`.
pub(crate) fn scan(q: &mut MerchantQr<'_>, strict: bool) -> Result<(), EmvError> {
    let mut s = Scan {
        q,
        strict,
        template_fault: None,
        held: None,
        pfi02: None,
        has_account: false,
        mcc_malformed: false,
        kept: Kept::default(),
        candidates: [None; CANDIDATES],
        n_candidates: 0,
        candidates_overflow: false,
    };
    s.run()
}

impl<'a> Scan<'_, 'a> {
    fn run(&mut self) -> Result<(), EmvError> {
        let payload = self.q.payload;
        let ascii = self.q.ascii;
        let mut tokens = Tokens::new(payload, 0, ascii);
        let (mut first, mut last, mut count) = (0u8, 0u8, 0usize);
        loop {
            let el = match tokens.fast() {
                Some(el) => el,
                None => match tokens.next() {
                    None => break,
                    Some(Ok(el)) => el,
                    Some(Err(f)) => {
                        return Err(err(
                            f.kind,
                            f.id.map_or(Path::ROOT, Path::id),
                            f.at,
                            f.detail,
                        ));
                    }
                },
            };
            // An ID is < 100; ≤ 512 bytes, so the offset fits. 0 means absent.
            if let Some(a) = self.q.at.get_mut(el.id as usize) {
                if *a != 0 {
                    return Err(err(
                        ErrorKind::Duplicate,
                        Path::id(el.id),
                        el.at,
                        Detail::Repeated,
                    ));
                }
                *a = el.at as u16 + 1;
            }
            if count == 0 {
                first = el.id;
            }
            count += 1;
            last = el.id;
            if el.id == ids::CRC {
                // Kept whatever else happens: the CRC is checked before a template's fault is
                // reported.
                self.kept.crc = Some(el);
            }
            if self.template_fault.is_none() {
                self.element(el);
            }
        }
        if count == 0 {
            return Err(err(ErrorKind::Truncated, Path::ROOT, 0, Detail::Empty));
        }
        if first != ids::PAYLOAD_FORMAT {
            let (kind, detail) = if self.q.at[0] != 0 {
                (ErrorKind::Order, Detail::NotFirst)
            } else {
                (ErrorKind::MissingMandatory, Detail::Missing)
            };
            return Err(err(kind, Path::id(ids::PAYLOAD_FORMAT), 0, detail));
        }
        self.check_crc(last)?;
        if let Some(e) = self.template_fault {
            return Err(e);
        }
        self.pick_scheme();
        let relax = self.q.scheme.map(|s| s.profile().relax).unwrap_or_default();
        if let Some(held) = self.held {
            let mut e = held.err;
            if self.strict
                && let Some(rule) = held.rule
                && relax.contains(rule)
            {
                e.detail = Detail::Broke { rule };
            }
            // 00 comes first, so a `pfi_02` the profile does not allow precedes any held error.
            if let Some((path, at)) = self.pfi02
                && !relax.contains(Rule::Pfi02)
            {
                return Err(err(ErrorKind::BadValue, path, at, PFI_EXPECTED));
            }
            return Err(e);
        }
        if let Some((path, at)) = self.pfi02 {
            if !relax.contains(Rule::Pfi02) {
                return Err(err(ErrorKind::BadValue, path, at, PFI_EXPECTED));
            }
            self.warn(WarningCode::Deviation(Rule::Pfi02), path, at);
        }
        self.end(relax)
    }

    // ---- held errors and warnings -----------------------------------------------------------

    fn hold(&mut self, e: EmvError, rule: Option<Rule>) {
        if self.held.is_none() {
            self.held = Some(Held { err: e, rule });
        }
    }

    fn warn(&mut self, code: WarningCode, path: Path, at: usize) {
        self.q.warnings.push(Warning {
            code,
            path,
            offset: at,
        });
    }

    /// A deviation found during the pass: a warning in the default mode (lenient rules), held as
    /// an error in strict mode.
    fn deviate(&mut self, rule: Rule, kind: ErrorKind, path: Path, at: usize, detail: Detail) {
        if self.strict {
            self.hold(err(kind, path, at, detail), Some(rule));
        } else {
            self.warn(WarningCode::Deviation(rule), path, at);
        }
    }

    /// A deviation found after the pass (the profile is known): a warning, or an error now.
    fn deviate_now(
        &mut self,
        relax: RuleSet,
        rule: Rule,
        kind: ErrorKind,
        path: Path,
        at: usize,
        detail: Detail,
    ) -> Result<(), EmvError> {
        let profile = relax.contains(rule);
        if self.strict {
            let detail = if profile {
                Detail::Broke { rule }
            } else {
                detail
            };
            return Err(err(kind, path, at, detail));
        }
        if profile || rule.is_lenient() {
            self.warn(WarningCode::Deviation(rule), path, at);
            return Ok(());
        }
        Err(err(kind, path, at, detail))
    }

    #[inline]
    fn chars(&self, s: &str) -> usize {
        if self.q.ascii {
            s.len()
        } else {
            s.chars().count()
        }
    }

    /// Printable ASCII only (control characters were refused for the whole payload already).
    #[inline]
    fn ascii_only(&mut self, path: Path, el: Element<'_>) {
        if self.q.ascii {
            return;
        }
        if let Some((i, ch)) = el.value.char_indices().find(|(_, c)| !c.is_ascii()) {
            self.hold(
                err(
                    ErrorKind::BadChar,
                    path,
                    el.value_at() + i,
                    Detail::NonAscii { ch },
                ),
                None,
            );
        }
    }

    /// 59 and 60: a visible non-ASCII character (a letter, an accent) is a deviation
    /// (`non_ascii_text`); spaces and invisible characters outside ASCII (NBSP, zero-width) stay errors.
    #[inline]
    fn text(&mut self, path: Path, el: Element<'_>) {
        if self.q.ascii {
            return;
        }
        let Some((i, ch)) = el.value.char_indices().find(|(_, c)| !c.is_ascii()) else {
            return;
        };
        // Strict mode reports the first non-ASCII character, as it always did.
        if !self.strict
            && let Some((j, bad)) = el
                .value
                .char_indices()
                .find(|(_, c)| !c.is_ascii() && is_invisible(*c))
        {
            self.hold(
                err(
                    ErrorKind::BadChar,
                    path,
                    el.value_at() + j,
                    Detail::NonAscii { ch: bad },
                ),
                None,
            );
            return;
        }
        self.deviate(
            Rule::NonAsciiText,
            ErrorKind::BadChar,
            path,
            el.value_at() + i,
            Detail::NonAscii { ch },
        );
    }

    /// A hard maximum (amounts, percentages): over it is an error in every mode.
    #[inline]
    fn max_len(&mut self, path: Path, el: Element<'_>, max: usize) {
        let len = self.chars(el.value);
        if len > max {
            self.hold(
                err(
                    ErrorKind::TooLong,
                    path,
                    el.value_at(),
                    Detail::Longer { len, max },
                ),
                None,
            );
        }
    }

    /// A text maximum: over it is a deviation (`text_too_long`).
    #[inline]
    fn text_max(&mut self, path: Path, el: Element<'_>, max: usize) {
        let len = self.chars(el.value);
        if len > max {
            self.deviate(
                Rule::TextTooLong,
                ErrorKind::TooLong,
                path,
                el.value_at(),
                Detail::Longer { len, max },
            );
        }
    }

    // ---- root data objects --------------------------------------------------------------------

    /// Frames (templates) and checks one root data object where it stands.
    fn element(&mut self, el: Element<'a>) {
        let path = Path::id(el.id);
        match el.id {
            ids::PAYLOAD_FORMAT => {
                self.ascii_only(path, el);
                match el.value {
                    "01" => {}
                    "02" if self.strict => self.hold(
                        err(ErrorKind::BadValue, path, el.value_at(), PFI_EXPECTED),
                        Some(Rule::Pfi02),
                    ),
                    "02" => self.pfi02 = Some((path, el.value_at())),
                    _ => self.hold(
                        err(ErrorKind::BadValue, path, el.value_at(), PFI_EXPECTED),
                        None,
                    ),
                }
            }
            ids::INITIATION => {
                self.ascii_only(path, el);
                if el.value != "11" && el.value != "12" {
                    self.hold(
                        err(
                            ErrorKind::BadValue,
                            path,
                            el.value_at(),
                            Detail::Expected {
                                what: "\"11\" (static) or \"12\" (dynamic)",
                            },
                        ),
                        None,
                    );
                }
            }
            2..=25 => {
                self.ascii_only(path, el);
                self.has_account = true;
                if let Some(s) = registry().match_primitive(el.id) {
                    self.candidate(Candidate::Known(s));
                }
            }
            26..=51 | 80..=99 => self.guid_root(el),
            ids::MCC => {
                self.ascii_only(path, el);
                match digits_exact(el, 4, path, "4 digits") {
                    Ok(m) => self.q.sem.mcc = Some(m),
                    Err(e) => {
                        self.deviate(Rule::MccFormat, e.kind, e.path, e.offset, e.detail);
                        self.mcc_malformed = true;
                    }
                }
            }
            ids::CURRENCY => {
                self.ascii_only(path, el);
                match self.currency(el, path) {
                    Ok(c) => self.q.sem.currency = Some(c),
                    Err(e) => self.hold(e, None),
                }
            }
            ids::AMOUNT | ids::FEE_FIXED => {
                if el.id == ids::AMOUNT {
                    self.kept.amount = Some(el);
                } else {
                    self.kept.fee_fixed = Some(el);
                }
                self.ascii_only(path, el);
                self.max_len(path, el, 13);
            }
            ids::TIP_INDICATOR => {
                self.kept.tip = Some(el.value);
                self.ascii_only(path, el);
                if !matches!(el.value, "01" | "02" | "03") {
                    self.hold(
                        err(
                            ErrorKind::BadValue,
                            path,
                            el.value_at(),
                            Detail::Expected {
                                what: "\"01\" (prompt), \"02\" (fixed fee) or \"03\" (percentage fee)",
                            },
                        ),
                        None,
                    );
                }
            }
            ids::FEE_PERCENTAGE => {
                self.kept.fee_percentage = Some(el);
                self.ascii_only(path, el);
                self.max_len(path, el, 5);
            }
            ids::COUNTRY => {
                self.kept.country = Some(el.value);
                self.ascii_only(path, el);
                if let Err(e) = check_country(el, path) {
                    self.hold(e, None);
                }
            }
            ids::NAME => {
                self.kept.name = true;
                self.text(path, el);
                self.text_max(path, el, 25);
            }
            ids::CITY => {
                self.kept.city = true;
                self.text(path, el);
                self.text_max(path, el, 15);
            }
            ids::POSTAL_CODE => {
                self.ascii_only(path, el);
                self.text_max(path, el, 10);
            }
            ids::ADDITIONAL_DATA => self.additional_data(el),
            ids::LANGUAGE => self.language(el),
            _ => self.ascii_only(path, el),
        }
    }

    /// 63: length 04, 4 hex digits (either case), last, and equal to the CRC of everything before
    /// its value.
    fn check_crc(&mut self, last: u8) -> Result<(), EmvError> {
        let path = Path::id(ids::CRC);
        let payload = self.q.payload;
        let Some(crc) = self.kept.crc else {
            return Err(err(ErrorKind::Crc, path, payload.len(), Detail::CrcMissing));
        };
        let (at, value_at, value) = (crc.at, crc.value_at(), crc.value);
        if last != ids::CRC {
            return Err(err(ErrorKind::Order, path, at, Detail::CrcNotLast));
        }
        let chars = self.chars(value);
        if chars != 4 {
            return Err(err(
                ErrorKind::Crc,
                path,
                at + 2,
                Detail::CrcLength { len: chars },
            ));
        }
        let Some((found, lower)) = super::crc::from_hex(value) else {
            return Err(err(ErrorKind::Crc, path, value_at, Detail::CrcNotHex));
        };
        let expected = super::crc::checksum(payload.as_bytes().get(..value_at).unwrap_or_default());
        if expected != found {
            return Err(err(
                ErrorKind::Crc,
                path,
                value_at,
                Detail::CrcMismatch { expected, found },
            ));
        }
        if lower {
            self.warn(WarningCode::CrcLowercase, path, value_at);
        }
        Ok(())
    }

    // ---- templates ----------------------------------------------------------------------------

    /// Frames a template's value, calling `each` for every sub-element in order (duplicates are
    /// faults). A fault of a template with a GUID that does not begin with a well-formed sub-ID 00
    /// makes it opaque in the default mode; `each`'s findings are then undone by the caller.
    fn frame(
        &mut self,
        path: Path,
        el: Element<'a>,
        may_be_opaque: bool,
        mut each: impl FnMut(&mut Self, Element<'a>),
    ) -> Framed {
        let mut seen: u128 = 0;
        let mut tokens = Tokens::new(el.value, el.value_at(), self.q.ascii);
        let fault = loop {
            let sub = match tokens.fast() {
                Some(sub) => sub,
                None => match tokens.next() {
                    None => return Framed::Ok,
                    Some(Ok(sub)) => sub,
                    Some(Err(f)) => {
                        let at = f.id.map_or(path, |id| path.child(id));
                        break err(f.kind, at, f.at, f.detail);
                    }
                },
            };
            let bit = 1u128 << sub.id;
            if seen & bit != 0 {
                break err(
                    ErrorKind::Duplicate,
                    path.child(sub.id),
                    sub.at,
                    Detail::Repeated,
                );
            }
            seen |= bit;
            each(self, sub);
        };
        if may_be_opaque && !self.strict && !starts_with_00(el, self.q.ascii) {
            return Framed::Opaque;
        }
        Framed::Fault(fault)
    }

    /// Findings to undo if a template turns out opaque.
    fn mark(&self) -> (bool, (u8, u16)) {
        (self.held.is_some(), self.q.warnings.mark())
    }

    fn undo(&mut self, mark: (bool, (u8, u16))) {
        if !mark.0 {
            self.held = None;
        }
        self.q.warnings.truncate(mark.1);
    }

    /// A root template with a GUID in 00: a merchant account (26–51) or an unreserved template
    /// (80–99).
    fn guid_root(&mut self, el: Element<'a>) {
        let path = Path::id(el.id);
        let account = ids::is_merchant_account(el.id);
        if account {
            self.has_account = true;
        }
        let mark = self.mark();
        let mut guid: Option<Element<'a>> = None;
        let mut known: Option<(&'static NationalScheme, bool)> = None;
        let mut nested_fault: Option<EmvError> = None;
        let mut nested: u128 = 0;
        let framed = self.frame(path, el, true, |s, sub| {
            let sub_path = path.child(sub.id);
            if sub.id == 0 {
                guid = Some(sub);
                if account {
                    known = registry().match_guid(sub.value);
                    nested = known.map_or(0, |(k, _)| k.nested_mask());
                }
            }
            if nested != 0 && sub.id < 100 && nested & (1u128 << sub.id) != 0 {
                match s.frame(sub_path, sub, false, |s, inner| {
                    s.ascii_only(sub_path.child(inner.id), inner)
                }) {
                    Framed::Ok | Framed::Opaque => {}
                    Framed::Fault(e) => {
                        nested_fault.get_or_insert(e);
                    }
                }
            } else {
                s.ascii_only(sub_path, sub);
            }
        });
        match framed {
            Framed::Ok => {}
            Framed::Opaque => {
                self.undo(mark);
                self.q.opaque |= 1u128 << el.id;
                self.warn(
                    WarningCode::Deviation(Rule::OpaqueTemplate),
                    path,
                    el.value_at(),
                );
                self.ascii_only(path, el);
                return;
            }
            Framed::Fault(e) => {
                self.template_fault = Some(e);
                return;
            }
        }
        if let Some(e) = nested_fault {
            self.template_fault = Some(e);
            return;
        }
        self.guid_checks(path, el, guid, known.map(|(_, shaped)| shaped));
        if account {
            match (known, guid) {
                (Some((scheme, _)), _) => self.candidate(Candidate::Known(scheme)),
                (None, Some(g)) if registry().matches_accounts_in(el.id) => {
                    self.candidate(Candidate::ByShape {
                        template: el.id,
                        guid: g.value,
                    })
                }
                _ => {}
            }
        }
    }

    /// 00 of a template with a GUID: present, ≤ 32 characters, GUID-shaped (each a deviation).
    /// `shaped` is known when the GUID is a registered one.
    fn guid_checks(
        &mut self,
        path: Path,
        el: Element<'a>,
        guid: Option<Element<'a>>,
        shaped: Option<bool>,
    ) {
        let gpath = path.child(0);
        let Some(g) = guid else {
            self.deviate(
                Rule::GuidAbsent,
                ErrorKind::MissingMandatory,
                gpath,
                el.value_at(),
                Detail::Missing,
            );
            return;
        };
        self.text_max(gpath, g, 32);
        if !shaped.unwrap_or_else(|| is_guid_shaped(g.value)) {
            self.deviate(
                Rule::AccountIdAsGuid,
                ErrorKind::BadValue,
                gpath,
                g.value_at(),
                Detail::Expected {
                    what: "a GUID: an AID (10-32 hex digits starting A, D or F), a UUID or a reverse domain name",
                },
            );
        }
    }

    fn candidate(&mut self, c: Candidate<'a>) {
        match self.candidates.get_mut(self.n_candidates) {
            Some(slot) => {
                *slot = Some(c);
                self.n_candidates += 1;
            }
            None => self.candidates_overflow = true,
        }
    }

    /// Picks the profile: a scheme domestic to the payload's country (58) beats a scheme domestic
    /// elsewhere, which beats an international one (UnionPay co-badging a national code); among
    /// equals, the first in payload order.
    fn pick_scheme(&mut self) {
        let country = self.kept.country;
        let reg = registry();
        let mut best: Option<&'static NationalScheme> = None;
        let rank = |s: &NationalScheme| match &s.country {
            Some(c) if Some(c.as_str()) == country => 0,
            Some(_) => 1,
            None => 2,
        };
        let mut consider = |c: Option<&'static NationalScheme>| {
            if let Some(c) = c
                && best.is_none_or(|cur| rank(c) < rank(cur))
            {
                best = Some(c);
            }
        };
        if self.candidates_overflow {
            // More candidate accounts than kept: read the accounts again (payload order).
            for e in Tokens::new(self.q.payload, 0, self.q.ascii).valid() {
                if (2..=25).contains(&e.id) {
                    consider(reg.match_primitive(e.id));
                } else if (26..=51).contains(&e.id) && !self.q.is_opaque(e.id) {
                    let g = Tokens::new(e.value, e.value_at(), self.q.ascii)
                        .valid()
                        .find(|s| s.id == 0);
                    consider(g.and_then(|g| reg.match_template(e.id, g.value, country)));
                }
            }
        } else {
            for c in self.candidates.iter().take(self.n_candidates).flatten() {
                consider(match *c {
                    Candidate::Known(s) => Some(s),
                    Candidate::ByShape { template, guid } => {
                        reg.match_account(template, guid, country)
                    }
                });
            }
        }
        self.q.scheme = best;
    }

    /// 62: framing, nested payment-system templates 50–99, and the sub-IDs' rules.
    fn additional_data(&mut self, el: Element<'a>) {
        let root = Path::id(el.id);
        let mut nested_fault: Option<EmvError> = None;
        let framed = self.frame(root, el, false, |s, sub| {
            let path = root.child(sub.id);
            if sub.id >= 50 {
                let mark = s.mark();
                let mut guid = None;
                match s.frame(path, sub, true, |s, inner| {
                    if inner.id == 0 {
                        guid = Some(inner);
                    }
                    s.ascii_only(path.child(inner.id), inner);
                }) {
                    Framed::Ok => s.guid_checks(path, sub, guid, None),
                    Framed::Opaque => {
                        s.undo(mark);
                        s.q.opaque_ad |= 1u128 << sub.id;
                        s.warn(
                            WarningCode::Deviation(Rule::OpaqueTemplate),
                            path,
                            sub.value_at(),
                        );
                        s.ascii_only(path, sub);
                    }
                    Framed::Fault(e) => {
                        nested_fault.get_or_insert(e);
                    }
                }
                return;
            }
            s.ascii_only(path, sub);
            if let (Some(max), 1..=8 | 10) = (ids::additional_data_max(sub.id), sub.id) {
                s.text_max(path, sub, max);
            }
            match sub.id {
                0 => s.deviate(
                    Rule::AdditionalData00,
                    ErrorKind::BadValue,
                    path,
                    sub.at,
                    Detail::Expected {
                        what: "sub-IDs 01-99; 00 is not defined",
                    },
                ),
                9 => {
                    if let Some(e) = consumer_data_request(sub, path) {
                        s.deviate(
                            Rule::ConsumerDataRequest,
                            e.kind,
                            e.path,
                            e.offset,
                            e.detail,
                        );
                    }
                }
                11 => {
                    if let Some(e) = merchant_channel(sub, path) {
                        s.deviate(Rule::ChannelUndefined, e.kind, e.path, e.offset, e.detail);
                    }
                }
                _ => {}
            }
        });
        match framed {
            Framed::Fault(e) => self.template_fault = Some(e),
            Framed::Ok | Framed::Opaque => {
                if let Some(e) = nested_fault {
                    self.template_fault = Some(e);
                }
            }
        }
    }

    /// 64: framing, 00 a two-letter language code, 01 present, the text maxima.
    fn language(&mut self, el: Element<'a>) {
        let root = Path::id(el.id);
        let mut has = [false; 2];
        let framed = self.frame(root, el, false, |s, sub| {
            let path = root.child(sub.id);
            match sub.id {
                0 => {
                    has[0] = true;
                    let b = sub.value.as_bytes();
                    if b.len() != 2 || !b.iter().all(u8::is_ascii_alphabetic) {
                        s.hold(
                            err(
                                ErrorKind::BadValue,
                                path,
                                sub.value_at(),
                                Detail::Expected {
                                    what: "an ISO 639-1 two-letter language code",
                                },
                            ),
                            None,
                        );
                    }
                }
                1 => {
                    has[1] = true;
                    s.text_max(path, sub, 25);
                }
                2 => s.text_max(path, sub, 15),
                _ => {}
            }
        });
        if let Framed::Fault(e) = framed {
            self.template_fault = Some(e);
            return;
        }
        for (i, present) in has.into_iter().enumerate() {
            if !present {
                self.hold(
                    err(
                        ErrorKind::MissingMandatory,
                        root.child(i as u8),
                        el.value_at(),
                        Detail::Missing,
                    ),
                    None,
                );
            }
        }
    }

    // ---- after the pass -------------------------------------------------------------------------

    /// The rules that need the whole payload: presence, the amount (needs 53), the tip (55–57),
    /// the country of the scheme.
    fn end(&mut self, relax: RuleSet) -> Result<(), EmvError> {
        let end = self.q.payload.len();
        let missing = |id: u8| {
            err(
                ErrorKind::MissingMandatory,
                Path::id(id),
                end,
                Detail::Missing,
            )
        };
        if !self.has_account {
            return Err(err(
                ErrorKind::MissingMandatory,
                Path::ROOT,
                end,
                Detail::Missing,
            ));
        }
        if self.q.sem.mcc.is_none() && !self.mcc_malformed {
            self.deviate_now(
                relax,
                Rule::MccAbsent,
                ErrorKind::MissingMandatory,
                Path::id(ids::MCC),
                end,
                Detail::Missing,
            )?;
        }
        let Some(currency) = self.q.sem.currency else {
            return Err(missing(ids::CURRENCY));
        };
        if self.kept.country.is_none() {
            return Err(missing(ids::COUNTRY));
        }
        if !self.kept.name {
            self.deviate_now(
                relax,
                Rule::NameAbsent,
                ErrorKind::MissingMandatory,
                Path::id(ids::NAME),
                end,
                Detail::Missing,
            )?;
        }
        if !self.kept.city {
            self.deviate_now(
                relax,
                Rule::CityAbsent,
                ErrorKind::MissingMandatory,
                Path::id(ids::CITY),
                end,
                Detail::Missing,
            )?;
        }
        if let Some(el) = self.kept.amount {
            match self.amount(relax, el, currency, true)? {
                Ok(minor) => self.q.sem.amount = Some(minor),
                Err(decimals) => self.q.sem.too_precise = Some((decimals, currency.exponent())),
            }
        }
        self.q.sem.tip = self.tip(relax, currency)?;
        if let (Some(scheme), Some(c)) = (self.q.scheme, self.kept.country)
            && let Some(home) = &scheme.country
            && home != c
        {
            let at = self.q.offset_of(ids::COUNTRY).unwrap_or(0);
            self.warn(WarningCode::CountryMismatch, Path::id(ids::COUNTRY), at);
        }
        Ok(())
    }

    /// 53: three digits naming an ISO 4217 currency with a minor unit; three upper-case letters
    /// naming one are a deviation (`currency_alpha`), mapped to that currency.
    fn currency(&mut self, el: Element<'a>, path: Path) -> Result<Currency, EmvError> {
        let b = el.value.as_bytes();
        let from_numeric = |numeric: u16| {
            Currency::from_numeric(numeric).map_err(|e| {
                let detail = match e {
                    CurrencyError::NoMinorUnit(code) => Detail::NoMinorUnit { code },
                    _ => Detail::UnknownCurrency { numeric },
                };
                err(ErrorKind::BadValue, path, el.value_at(), detail)
            })
        };
        if let [a @ b'0'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] = *b {
            return from_numeric(
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'),
            );
        }
        if b.len() == 3
            && b.iter().all(u8::is_ascii_uppercase)
            && let Some(iso) = iso_currency::Currency::from_code(el.value)
        {
            let c = from_numeric(iso.numeric())?;
            self.deviate(
                Rule::CurrencyAlpha,
                ErrorKind::BadValue,
                path,
                el.value_at(),
                Detail::Expected {
                    what: "3 digits (ISO 4217 numeric)",
                },
            );
            return Ok(c);
        }
        Err(err(
            ErrorKind::BadValue,
            path,
            el.value_at(),
            Detail::Expected {
                what: "3 digits (ISO 4217 numeric)",
            },
        ))
    }

    /// 54 or 56: digits with at most one '.', no sign, ≤ 13; exact in minor units. `Ok(Err(d))`:
    /// 54 with `d` decimals whose digits below the minor unit are not zero (a deviation; the gateway
    /// refuses to pay it). For 56 (a fee: `nonzero` false) that is an error in every mode.
    fn amount(
        &mut self,
        relax: RuleSet,
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
                self.deviate_now(
                    relax,
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

    fn tip(&mut self, relax: RuleSet, currency: Currency) -> Result<Option<Tip>, EmvError> {
        let indicator = self.kept.tip;
        let fixed = self.kept.fee_fixed;
        let pct = self.kept.fee_percentage;
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
        let end = self.q.payload.len();
        Ok(match indicator {
            None => None,
            Some("01") => Some(Tip::Prompt),
            Some("02") => match fixed {
                Some(f) => match self.amount(relax, f, currency, false)? {
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

const PFI_EXPECTED: Detail = Detail::Expected { what: "\"01\"" };

/// A template that begins with a well-formed sub-ID 00 (ID "00", a length 01–99 that fits) is TLV
/// that broke, never opaque text.
fn starts_with_00(el: Element<'_>, ascii: bool) -> bool {
    let b = el.value.as_bytes();
    match b {
        [b'0', b'0', l0 @ b'0'..=b'9', l1 @ b'0'..=b'9', ..] => {
            let len = ((l0 - b'0') * 10 + (l1 - b'0')) as usize;
            let avail = if ascii {
                b.len() - 4
            } else {
                el.value.get(4..).map_or(0, |r| r.chars().count())
            };
            len > 0 && len <= avail
        }
        _ => false,
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
