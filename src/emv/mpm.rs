//! `MerchantQr`: a parsed, validated EMVCo merchant-presented QR payload, and the parse pipeline.
//!
//! Parse, don't validate: the only way to obtain a `MerchantQr` is [`MerchantQr::parse`] (or
//! [`parse`](super::parse)), which runs every check in `spec/emv.md`:
//!
//! 1. size and characters: ≤ 512 characters, no control characters (CR/LF included);
//! 2. root framing: IDs and lengths two digits, lengths 01–99, no length past the end, no duplicate,
//!    00 first, 63 last;
//! 3. CRC: 63 has length 04, 4 hex digits (either case), and equals CRC-16/CCITT-FALSE of the UTF-8
//!    bytes through "6304";
//! 4. template framing (26–51, 62, 64, 80–99, 62.50–99 and a scheme's nested sub-templates), and
//!    recognition of the national scheme, which picks the profile;
//! 5. semantic rules of EMVCo MPM v1.1 (`rules.rs`), some relaxed to warnings by the profile.
//!
//! The parser borrows from the payload and does not allocate.

use super::error::{Detail, EmvError, ErrorKind, Path, Rule, Warning, WarningCode, Warnings};
use super::ids;
use super::profiles::{NationalScheme, Profile, registry};
use super::rules;
use super::templates::{AdditionalData, LanguageTemplate, MerchantAccount, Template};
use super::tlv::{Element, Tokens};
use crate::money::Currency;

/// Maximum payload length in characters.
pub const MAX_CHARS: usize = 512;

/// Which semantic rules apply.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Mode {
    /// EMVCo v1.1, with the deviations the recognised national profile allows turned into warnings.
    #[default]
    Profiles,
    /// Pure EMVCo v1.1: every deviation is an error, whatever the profile.
    Strict,
}

/// Point of initiation method (ID 01).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Initiation {
    /// "11": the same code for many payments; the payer usually enters the amount.
    Static,
    /// "12": a code for one payment.
    Dynamic,
}

/// Tip or convenience fee (IDs 55–57).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tip {
    /// "01": the app prompts the payer for a tip.
    Prompt,
    /// "02": a fixed convenience fee, in minor units of the transaction currency.
    Fixed(u64),
    /// "03": a percentage convenience fee, in hundredths of a percent (3.5 % → 350).
    Percentage(u16),
}

/// A root element's place: byte offset of its ID, byte length of its value, its ID. No padding
/// (`_pad` is explicit), so the array of 100 zero-initialises as one memset.
#[derive(Clone, Copy, Default, Debug)]
struct Slot {
    at: u16,
    len: u16,
    id: u8,
    _pad: u8,
}

/// A valid EMVCo MPM payload, borrowed from its text.
#[derive(Clone, Debug)]
pub struct MerchantQr<'a> {
    frame: Frame<'a>,
    sem: Semantics,
}

/// The part of the parse that precedes the semantic layer: root slots, CRC checked.
#[derive(Clone, Debug)]
pub(crate) struct Frame<'a> {
    pub payload: &'a str,
    pub ascii: bool,
    slots: [Slot; 100],
    count: u8,
    index: [u8; 100],
    pub scheme: Option<&'static NationalScheme>,
    pub warnings: Warnings,
    /// Root templates (26–51, 80–99) whose content is not TLV, kept as raw text (default mode).
    pub opaque: u128,
    /// Sub-templates 62.50–99 whose content is not TLV.
    pub opaque_ad: u128,
    strict: bool,
}

/// What the semantic layer adds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Semantics {
    pub currency: Currency,
    pub amount: Option<u64>,
    pub tip: Option<Tip>,
    pub mcc: Option<u16>,
    /// 54 had non-zero digits below the minor unit: (decimals written, currency exponent).
    pub too_precise: Option<(u8, u8)>,
}

impl<'a> MerchantQr<'a> {
    /// Parses and validates `payload` under `mode`.
    pub fn parse(payload: &'a str, mode: Mode) -> Result<MerchantQr<'a>, EmvError> {
        let ascii = payload.is_ascii();
        let to_chars = |mut e: EmvError| {
            if !ascii {
                e.offset = char_offset(payload, e.offset);
            }
            e
        };
        // Built in place and moved once: the frame is most of a MerchantQr's size.
        let mut frame = Frame::new(payload, ascii, mode == Mode::Strict);
        frame.read().map_err(to_chars)?;
        let sem = rules::check(&mut frame, mode).map_err(to_chars)?;
        if !ascii {
            let mut converted = Warnings::default();
            for w in frame.warnings.iter() {
                converted.push(Warning {
                    offset: char_offset(payload, w.offset),
                    ..*w
                });
            }
            frame.warnings = converted;
        }
        Ok(MerchantQr { frame, sem })
    }

    /// The payload text.
    pub fn as_str(&self) -> &'a str {
        self.frame.payload
    }

    /// The raw value of root ID `id`, exactly as in the payload.
    pub fn raw(&self, id: u8) -> Option<&'a str> {
        self.frame.raw(id)
    }

    /// Root data objects in payload order, 63 included.
    pub fn elements(&self) -> impl Iterator<Item = Element<'a>> + '_ {
        self.frame.slots[..self.frame.count as usize]
            .iter()
            .map(|s| Element {
                id: s.id,
                value: value_of(self.frame.payload, *s),
                at: s.at as usize,
            })
    }

    /// Tokens inside a template value (validated, so they never fail).
    pub(crate) fn subs_of(
        &self,
        value: &'a str,
        at: usize,
    ) -> impl Iterator<Item = Element<'a>> + use<'a> {
        Tokens::new(value, at, self.frame.ascii).valid()
    }

    /// True if root template `id` (26–51, 80–99) was kept as raw text because its content is not
    /// TLV (warning `opaque_template`).
    pub fn is_opaque(&self, id: u8) -> bool {
        id < 100 && self.frame.opaque & (1u128 << id) != 0
    }

    /// True if sub-template 62.`sub` (50–99) was kept as raw text.
    pub fn is_opaque_additional(&self, sub: u8) -> bool {
        sub < 100 && self.frame.opaque_ad & (1u128 << sub) != 0
    }

    /// True if the template at `path` (root, or 62.xx) is opaque.
    pub(crate) fn opaque_at(&self, root: u8, sub: Option<u8>) -> bool {
        match sub {
            None => self.is_opaque(root),
            Some(s) => root == ids::ADDITIONAL_DATA && self.is_opaque_additional(s),
        }
    }

    /// The national profile recognised from the merchant accounts, if any.
    pub fn profile(&self) -> Option<&'static Profile> {
        self.frame.scheme.map(NationalScheme::profile)
    }

    /// The scheme that picked the profile (see `spec/emv.md` §4: domestic first, then payload order).
    pub fn scheme(&self) -> Option<&'static NationalScheme> {
        self.frame.scheme
    }

    /// Warnings: deviations the profile allows, lower-case CRC, amount decimals, ...
    pub fn warnings(&self) -> &Warnings {
        &self.frame.warnings
    }

    /// Payload format indicator (00), "01" (or "02" where a profile allows it).
    pub fn format_indicator(&self) -> &'a str {
        self.raw(ids::PAYLOAD_FORMAT).unwrap_or_default()
    }

    /// Point of initiation method (01), if present.
    pub fn initiation(&self) -> Option<Initiation> {
        match self.raw(ids::INITIATION)? {
            "12" => Some(Initiation::Dynamic),
            _ => Some(Initiation::Static),
        }
    }

    /// Merchant accounts (02–51) in payload order.
    pub fn accounts(&self) -> impl Iterator<Item = MerchantAccount<'a>> + '_ {
        let country = self.raw(ids::COUNTRY);
        self.elements()
            .filter(|e| ids::is_merchant_account(e.id))
            .map(move |e| MerchantAccount::new(e, country, self.frame.ascii, self.is_opaque(e.id)))
    }

    /// Merchant category code (52); absent only where the profile allows it.
    pub fn mcc(&self) -> Option<u16> {
        self.sem.mcc
    }

    /// Transaction currency (53) with its ISO 4217 exponent.
    pub fn currency(&self) -> Currency {
        self.sem.currency
    }

    /// Transaction amount (54) in minor units of [`currency`](Self::currency); `None` when the payer
    /// enters the amount, and also when 54 is present but has non-zero digits below the minor unit
    /// (see [`amount_too_precise`](Self::amount_too_precise)).
    pub fn amount(&self) -> Option<u64> {
        self.sem.amount
    }

    /// `Some((decimals, exponent))` when 54 is present with non-zero digits below the currency's
    /// minor unit (warning `amount_too_precise`): the code cannot be paid exactly.
    pub fn amount_too_precise(&self) -> Option<(u8, u8)> {
        self.sem.too_precise
    }

    /// Tip or convenience fee (55–57).
    pub fn tip(&self) -> Option<Tip> {
        self.sem.tip
    }

    /// Country code (58), ISO 3166-1 alpha-2.
    pub fn country(&self) -> &'a str {
        self.raw(ids::COUNTRY).unwrap_or_default()
    }

    /// Merchant name (59); absent only where the profile allows it.
    pub fn name(&self) -> Option<&'a str> {
        self.raw(ids::NAME)
    }

    /// Merchant city (60); absent only where the profile allows it.
    pub fn city(&self) -> Option<&'a str> {
        self.raw(ids::CITY)
    }

    /// Postal code (61).
    pub fn postal_code(&self) -> Option<&'a str> {
        self.raw(ids::POSTAL_CODE)
    }

    /// Additional data field template (62).
    pub fn additional_data(&self) -> Option<AdditionalData<'a>> {
        let s = self.frame.slot(ids::ADDITIONAL_DATA)?;
        Some(AdditionalData::new(
            value_of(self.frame.payload, s),
            s.at as usize + 4,
            self.frame.ascii,
            self.frame.opaque_ad,
        ))
    }

    /// Merchant information — language template (64).
    pub fn language(&self) -> Option<LanguageTemplate<'a>> {
        let s = self.frame.slot(ids::LANGUAGE)?;
        Some(LanguageTemplate::new(
            value_of(self.frame.payload, s),
            s.at as usize + 4,
            self.frame.ascii,
        ))
    }

    /// Unreserved templates (80–99) in payload order.
    pub fn unreserved(&self) -> impl Iterator<Item = Template<'a>> + '_ {
        self.elements()
            .filter(|e| (80..=99).contains(&e.id))
            .map(|e| Template::new(e, self.frame.ascii, self.is_opaque(e.id)))
    }

    /// RFU data objects (65–79), kept as they are.
    pub fn rfu(&self) -> impl Iterator<Item = Element<'a>> + '_ {
        self.elements().filter(|e| (65..=79).contains(&e.id))
    }

    /// The CRC value (63) as written.
    pub fn crc(&self) -> &'a str {
        self.raw(ids::CRC).unwrap_or_default()
    }

    /// Every data object in payload order with its path, descending into templates (26–51, 62,
    /// 64, 80–99), 62.50–99 and a scheme's nested sub-templates. Templates appear with their raw value
    /// before their contents.
    pub fn fields(&self) -> Vec<(Path, &'a str)> {
        let mut out = Vec::with_capacity(32);
        let country = self.raw(ids::COUNTRY);
        for e in self.elements() {
            out.push((Path::id(e.id), e.value));
            if !ids::is_root_template(e.id) || self.is_opaque(e.id) {
                continue;
            }
            let scheme = if ids::is_merchant_account(e.id) {
                MerchantAccount::new(e, country, self.frame.ascii, false).scheme()
            } else {
                None
            };
            for sub in self.subs_of(e.value, e.value_at()) {
                let path = Path::sub(e.id, sub.id);
                out.push((path, sub.value));
                if is_nested(e.id, sub.id, scheme) && !self.opaque_at(e.id, Some(sub.id)) {
                    for inner in self.subs_of(sub.value, sub.value_at()) {
                        out.push((path.child(inner.id), inner.value));
                    }
                }
            }
        }
        out
    }
}

/// True if sub-ID `sub` of root template `id` is itself a template.
pub(crate) fn is_nested(id: u8, sub: u8, scheme: Option<&NationalScheme>) -> bool {
    (id == ids::ADDITIONAL_DATA && sub >= 50)
        || (ids::is_merchant_account(id) && scheme.is_some_and(|s| s.is_nested(sub)))
}

fn slot_of(index: &[u8; 100], slots: &[Slot; 100], id: u8) -> Option<Slot> {
    let i = *index.get(id as usize)?;
    if i == 0 {
        return None;
    }
    slots.get(i as usize - 1).copied()
}

fn value_of(payload: &str, s: Slot) -> &str {
    let start = s.at as usize + 4;
    payload
        .get(start..start + s.len as usize)
        .unwrap_or_default()
}

/// Character offset of byte offset `byte` in `payload`.
pub(crate) fn char_offset(payload: &str, byte: usize) -> usize {
    match payload.get(..byte) {
        Some(prefix) => prefix.chars().count(),
        None => payload
            .char_indices()
            .take_while(|(i, _)| *i < byte)
            .count(),
    }
}

fn err(kind: ErrorKind, path: Path, at: usize, detail: Detail) -> EmvError {
    EmvError::new(kind, path, at, detail)
}

impl<'a> Frame<'a> {
    fn new(payload: &'a str, ascii: bool, strict: bool) -> Frame<'a> {
        Frame {
            payload,
            ascii,
            slots: [Slot::default(); 100],
            count: 0,
            index: [0; 100],
            scheme: None,
            warnings: Warnings::default(),
            opaque: 0,
            opaque_ad: 0,
            strict,
        }
    }

    /// Steps 1–4 of the pipeline. Offsets in errors are byte offsets.
    fn read(&mut self) -> Result<(), EmvError> {
        check_size_and_characters(self.payload, self.ascii)?;
        self.read_root()?;
        self.check_crc()?;
        self.read_templates()
    }

    fn read_root(&mut self) -> Result<(), EmvError> {
        let mut seen: u128 = 0;
        let mut tokens = Tokens::new(self.payload, 0, self.ascii);
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
            let bit = 1u128 << el.id;
            if seen & bit != 0 {
                return Err(err(
                    ErrorKind::Duplicate,
                    Path::id(el.id),
                    el.at,
                    Detail::Repeated,
                ));
            }
            seen |= bit;
            let n = self.count as usize;
            // ≤ 100 distinct IDs, so n < 100 here; the `get_mut` keeps that a non-panicking fact.
            if let (Some(slot), Some(ix)) =
                (self.slots.get_mut(n), self.index.get_mut(el.id as usize))
            {
                *slot = Slot {
                    at: el.at as u16,
                    len: el.value.len() as u16,
                    id: el.id,
                    _pad: 0,
                };
                *ix = n as u8 + 1;
                self.count += 1;
            }
        }
        match self.slots[..self.count as usize].first() {
            None => Err(err(ErrorKind::Truncated, Path::ROOT, 0, Detail::Empty)),
            Some(first) if first.id != ids::PAYLOAD_FORMAT => {
                if self.index[0] != 0 {
                    Err(err(
                        ErrorKind::Order,
                        Path::id(ids::PAYLOAD_FORMAT),
                        0,
                        Detail::NotFirst,
                    ))
                } else {
                    Err(err(
                        ErrorKind::MissingMandatory,
                        Path::id(ids::PAYLOAD_FORMAT),
                        0,
                        Detail::Missing,
                    ))
                }
            }
            Some(_) => Ok(()),
        }
    }

    fn check_crc(&mut self) -> Result<(), EmvError> {
        let path = Path::id(ids::CRC);
        let Some(crc) = self.slot(ids::CRC) else {
            return Err(err(
                ErrorKind::Crc,
                path,
                self.payload.len(),
                Detail::CrcMissing,
            ));
        };
        if self.slots[..self.count as usize].last().map(|s| s.id) != Some(ids::CRC) {
            return Err(err(
                ErrorKind::Order,
                path,
                crc.at as usize,
                Detail::CrcNotLast,
            ));
        }
        let value_at = crc.at as usize + 4;
        let value = value_of(self.payload, crc);
        let chars = if self.ascii {
            value.len()
        } else {
            value.chars().count()
        };
        if chars != 4 {
            return Err(err(
                ErrorKind::Crc,
                path,
                crc.at as usize + 2,
                Detail::CrcLength { len: chars },
            ));
        }
        let Some((found, lower)) = super::crc::from_hex(value) else {
            return Err(err(ErrorKind::Crc, path, value_at, Detail::CrcNotHex));
        };
        let expected =
            super::crc::checksum(self.payload.as_bytes().get(..value_at).unwrap_or_default());
        if expected != found {
            return Err(err(
                ErrorKind::Crc,
                path,
                value_at,
                Detail::CrcMismatch { expected, found },
            ));
        }
        if lower {
            self.warnings.push(Warning {
                code: WarningCode::CrcLowercase,
                path,
                offset: value_at,
            });
        }
        Ok(())
    }

    /// Frames every template and recognises the scheme of the first recognisable merchant account.
    /// In the default mode a template with a GUID (26–51, 80–99, 62.50–99) whose content does not
    /// frame as TLV, and does not begin with a well-formed sub-ID 00, is kept as raw text (warning
    /// `opaque_template`); one that begins with a well-formed 00 and then breaks is a framing error.
    fn read_templates(&mut self) -> Result<(), EmvError> {
        let country = self.raw(ids::COUNTRY);
        let reg = registry();
        for i in 0..self.count as usize {
            let s = self.slots[i];
            let el = Element {
                id: s.id,
                value: value_of(self.payload, s),
                at: s.at as usize,
            };
            if (2..=25).contains(&el.id) {
                self.consider(reg.match_primitive(el.id), country);
                continue;
            }
            if !ids::is_root_template(el.id) {
                continue;
            }
            let mut scheme = None;
            let mut nested: u128 = 0;
            let framed = self.frame_template(Path::id(el.id), el, |sub| {
                if sub.id == 0 && ids::is_merchant_account(el.id) {
                    scheme = reg.match_template(el.id, sub.value, country);
                }
                if is_nested(el.id, sub.id, scheme) {
                    nested |= 1u128 << sub.id;
                }
            });
            if let Err(e) = framed {
                if ids::has_guid(el.id) && self.may_be_opaque(el) {
                    self.opaque |= 1u128 << el.id;
                    self.push_opaque(Path::id(el.id), el.value_at());
                    continue;
                }
                return Err(e);
            }
            if nested != 0 {
                for sub in Tokens::new(el.value, el.value_at(), self.ascii).valid() {
                    if nested & (1u128 << sub.id) == 0 {
                        continue;
                    }
                    let path = Path::sub(el.id, sub.id);
                    if let Err(e) = self.frame_template(path, sub, |_| {}) {
                        if el.id == ids::ADDITIONAL_DATA && self.may_be_opaque(sub) {
                            self.opaque_ad |= 1u128 << sub.id;
                            self.push_opaque(path, sub.value_at());
                            continue;
                        }
                        return Err(e);
                    }
                }
            }
            self.consider(scheme, country);
        }
        Ok(())
    }

    /// Default mode only: a template that does not begin with a well-formed sub-ID 00 (ID "00", a
    /// length 01–99 that fits) may be opaque text. One that does begin so is TLV that broke.
    fn may_be_opaque(&self, el: Element<'a>) -> bool {
        if self.strict {
            return false;
        }
        let b = el.value.as_bytes();
        let starts_with_00 = match b {
            [b'0', b'0', l0 @ b'0'..=b'9', l1 @ b'0'..=b'9', ..] => {
                let len = ((l0 - b'0') * 10 + (l1 - b'0')) as usize;
                let avail = if self.ascii {
                    b.len() - 4
                } else {
                    el.value.get(4..).map_or(0, |r| r.chars().count())
                };
                len > 0 && len <= avail
            }
            _ => false,
        };
        !starts_with_00
    }

    fn push_opaque(&mut self, path: Path, at: usize) {
        self.warnings.push(Warning {
            code: WarningCode::Deviation(Rule::OpaqueTemplate),
            path,
            offset: at,
        });
    }

    /// Picks the profile: a scheme domestic to the payload's country (58) beats a scheme domestic
    /// elsewhere, which beats an international one (UnionPay co-badging a national code); among
    /// equals, the first in payload order.
    fn consider(&mut self, candidate: Option<&'static NationalScheme>, country: Option<&str>) {
        let rank = |s: &NationalScheme| match &s.country {
            Some(c) if Some(c.as_str()) == country => 0,
            Some(_) => 1,
            None => 2,
        };
        if let Some(c) = candidate
            && self.scheme.is_none_or(|cur| rank(c) < rank(cur))
        {
            self.scheme = Some(c);
        }
    }

    /// Checks that `el`'s value is a well-formed template without duplicate IDs.
    fn frame_template(
        &self,
        path: Path,
        el: Element<'a>,
        mut each: impl FnMut(Element<'a>),
    ) -> Result<(), EmvError> {
        let mut seen: u128 = 0;
        let mut tokens = Tokens::new(el.value, el.value_at(), self.ascii);
        loop {
            let sub = match tokens.fast() {
                Some(sub) => sub,
                None => match tokens.next() {
                    None => break,
                    Some(Ok(sub)) => sub,
                    Some(Err(f)) => {
                        let at = f.id.map_or(path, |id| path.child(id));
                        return Err(err(f.kind, at, f.at, f.detail));
                    }
                },
            };
            let bit = 1u128 << sub.id;
            if seen & bit != 0 {
                return Err(err(
                    ErrorKind::Duplicate,
                    path.child(sub.id),
                    sub.at,
                    Detail::Repeated,
                ));
            }
            seen |= bit;
            each(sub);
        }
        Ok(())
    }

    fn slot(&self, id: u8) -> Option<Slot> {
        slot_of(&self.index, &self.slots, id)
    }

    /// True if root template `id` is opaque.
    pub fn opaque(&self, id: u8) -> bool {
        id < 100 && self.opaque & (1u128 << id) != 0
    }

    /// The raw value of root ID `id`.
    pub fn raw(&self, id: u8) -> Option<&'a str> {
        self.slot(id).map(|s| value_of(self.payload, s))
    }

    /// Byte offset of root ID `id`'s element.
    pub fn at(&self, id: u8) -> Option<usize> {
        self.slot(id).map(|s| s.at as usize)
    }

    /// Number of root elements.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// The `i`-th root element in payload order.
    pub fn element_at(&self, i: usize) -> Option<Element<'a>> {
        let s = *self.slots[..self.count as usize].get(i)?;
        Some(Element {
            id: s.id,
            value: value_of(self.payload, s),
            at: s.at as usize,
        })
    }
}

/// Step 1: ≤ 512 characters, no control characters anywhere.
fn check_size_and_characters(payload: &str, ascii: bool) -> Result<(), EmvError> {
    let bytes = payload.as_bytes();
    if bytes.len() > MAX_CHARS {
        let chars = if ascii {
            bytes.len()
        } else {
            payload.chars().count()
        };
        if chars > MAX_CHARS {
            let at = payload
                .char_indices()
                .nth(MAX_CHARS)
                .map_or(bytes.len(), |(i, _)| i);
            return Err(err(
                ErrorKind::TooLong,
                Path::ROOT,
                at,
                Detail::PayloadTooLong { chars },
            ));
        }
    }
    // Branch-free per 16-byte chunk so the compiler vectorises it; locate only on failure.
    let control = |b: u8| b < 0x20 || b == 0x7F;
    let any = bytes
        .chunks(16)
        .any(|c| c.iter().fold(false, |acc, &b| acc | control(b)));
    if any
        && let Some((at, ch)) = payload
            .char_indices()
            .find(|(_, c)| (*c as u32) < 0x20 || *c == '\u{7f}')
    {
        return Err(err(
            ErrorKind::BadChar,
            locate(payload, at, ascii),
            at,
            Detail::ControlChar { ch },
        ));
    }
    Ok(())
}

/// The path of the innermost data object (root or template level) whose value holds byte `at`,
/// as far as the payload frames; the whole payload if none does.
fn locate(payload: &str, at: usize, ascii: bool) -> Path {
    let holds = |e: &Element<'_>| (e.value_at()..e.value_at() + e.value.len()).contains(&at);
    let Some(el) = Tokens::new(payload, 0, ascii).valid().find(holds) else {
        return Path::ROOT;
    };
    let path = Path::id(el.id);
    if !ids::is_root_template(el.id) {
        return path;
    }
    match Tokens::new(el.value, el.value_at(), ascii)
        .valid()
        .find(holds)
    {
        Some(sub) => path.child(sub.id),
        None => path,
    }
}
