//! `MerchantQr`: a parsed, validated EMVCo merchant-presented QR payload.
//!
//! Parse, don't validate: the only way to obtain a `MerchantQr` is [`MerchantQr::parse`] (or
//! [`parse`](super::parse)), which checks the size and characters (≤ 512 characters, no control
//! characters) in one vectorised pass over the bytes and then runs the one pass of `rules.rs`:
//! root framing, the CRC, template framing, scheme recognition and every semantic rule of
//! `spec/emv.md`, reporting as if they ran in that order (spec §6).
//!
//! The parser borrows from the payload and does not allocate.

use super::error::{Detail, EmvError, ErrorKind, Path, Warning, Warnings};
use super::ids;
use super::profiles::{NationalScheme, Profile};
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

/// A valid EMVCo MPM payload, borrowed from its text. Built in one pass over the payload
/// (`rules.rs`): it keeps where each root data object is, what the pass computed, and the warnings.
#[derive(Clone, Debug)]
pub struct MerchantQr<'a> {
    pub(crate) payload: &'a str,
    pub(crate) ascii: bool,
    /// Byte offset + 1 of each root data object's ID (index = ID); 0 when absent.
    pub(crate) at: [u16; 100],
    pub(crate) scheme: Option<&'static NationalScheme>,
    pub(crate) warnings: Warnings,
    /// Root templates (26–51, 80–99) whose content is not TLV, kept as raw text (default mode).
    pub(crate) opaque: u128,
    /// Sub-templates 62.50–99 whose content is not TLV.
    pub(crate) opaque_ad: u128,
    pub(crate) sem: Semantics,
}

/// The typed values the pass computes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Semantics {
    pub currency: Option<Currency>,
    pub amount: Option<u64>,
    pub tip: Option<Tip>,
    pub mcc: Option<u16>,
    /// 54 had non-zero digits below the minor unit: (decimals written, currency exponent).
    pub too_precise: Option<(u8, u8)>,
}

impl<'a> MerchantQr<'a> {
    /// Parses and validates `payload` under `mode`.
    pub fn parse(payload: &'a str, mode: Mode) -> Result<MerchantQr<'a>, EmvError> {
        let ascii = check_size_and_characters(payload)?;
        // Built in the return slot (a local returned as it is), so the ~400-byte value is not
        // copied on the way out.
        let mut out: Result<MerchantQr<'a>, EmvError> = Ok(MerchantQr {
            payload,
            ascii,
            at: [0; 100],
            scheme: None,
            warnings: Warnings::default(),
            opaque: 0,
            opaque_ad: 0,
            sem: Semantics {
                currency: None,
                amount: None,
                tip: None,
                mcc: None,
                too_precise: None,
            },
        });
        let failed = match &mut out {
            Ok(q) => rules::scan(q, mode == Mode::Strict).err(),
            Err(_) => None,
        };
        if let Some(mut e) = failed {
            if !ascii {
                e.offset = char_offset(payload, e.offset);
            }
            out = Err(e);
        } else if !ascii && let Ok(q) = &mut out {
            let mut converted = Warnings::default();
            for w in q.warnings.iter() {
                converted.push(Warning {
                    offset: char_offset(payload, w.offset),
                    ..*w
                });
            }
            converted.add_dropped(q.warnings.dropped());
            q.warnings = converted;
        }
        out
    }

    /// The payload text.
    pub fn as_str(&self) -> &'a str {
        self.payload
    }

    /// The raw value of root ID `id`, exactly as in the payload.
    pub fn raw(&self, id: u8) -> Option<&'a str> {
        let at = self.offset_of(id)?;
        let b = self.payload.as_bytes();
        let len = match b.get(at + 2..at + 4)? {
            [l0 @ b'0'..=b'9', l1 @ b'0'..=b'9'] => ((l0 - b'0') * 10 + (l1 - b'0')) as usize,
            _ => return None,
        };
        let start = at + 4;
        if self.ascii {
            return self.payload.get(start..start + len);
        }
        let rest = self.payload.get(start..)?;
        let end = rest.char_indices().nth(len).map_or(rest.len(), |(i, _)| i);
        rest.get(..end)
    }

    /// Byte offset of root data object `id`'s ID, if present.
    pub(crate) fn offset_of(&self, id: u8) -> Option<usize> {
        match self.at.get(id as usize) {
            Some(&a) if a > 0 => Some(a as usize - 1),
            _ => None,
        }
    }

    /// Root data objects in payload order, 63 included.
    pub fn elements(&self) -> impl Iterator<Item = Element<'a>> + '_ {
        Tokens::new(self.payload, 0, self.ascii).valid()
    }

    /// Tokens inside a template value (validated, so they never fail).
    pub(crate) fn subs_of(
        &self,
        value: &'a str,
        at: usize,
    ) -> impl Iterator<Item = Element<'a>> + use<'a> {
        Tokens::new(value, at, self.ascii).valid()
    }

    /// True if root template `id` (26–51, 80–99) was kept as raw text because its content is not
    /// TLV (warning `opaque_template`).
    pub fn is_opaque(&self, id: u8) -> bool {
        id < 100 && self.opaque & (1u128 << id) != 0
    }

    /// True if sub-template 62.`sub` (50–99) was kept as raw text.
    pub fn is_opaque_additional(&self, sub: u8) -> bool {
        sub < 100 && self.opaque_ad & (1u128 << sub) != 0
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
        self.scheme.map(NationalScheme::profile)
    }

    /// The scheme that picked the profile (see `spec/emv.md` §4: domestic first, then payload order).
    pub fn scheme(&self) -> Option<&'static NationalScheme> {
        self.scheme
    }

    /// Warnings: deviations the profile allows, lower-case CRC, amount decimals, ...
    pub fn warnings(&self) -> &Warnings {
        &self.warnings
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
            .map(move |e| MerchantAccount::new(e, country, self.ascii, self.is_opaque(e.id)))
    }

    /// Merchant category code (52); absent only where the profile allows it.
    pub fn mcc(&self) -> Option<u16> {
        self.sem.mcc
    }

    /// Transaction currency (53) with its ISO 4217 exponent.
    pub fn currency(&self) -> Currency {
        // The pass refuses a payload without a valid 53, so a parsed code always has one; the
        // fallback is never observed.
        self.sem.currency.unwrap_or(Currency::USD)
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
        Some(AdditionalData::new(
            self.raw(ids::ADDITIONAL_DATA)?,
            self.offset_of(ids::ADDITIONAL_DATA)? + 4,
            self.ascii,
            self.opaque_ad,
        ))
    }

    /// Merchant information — language template (64).
    pub fn language(&self) -> Option<LanguageTemplate<'a>> {
        Some(LanguageTemplate::new(
            self.raw(ids::LANGUAGE)?,
            self.offset_of(ids::LANGUAGE)? + 4,
            self.ascii,
        ))
    }

    /// Unreserved templates (80–99) in payload order.
    pub fn unreserved(&self) -> impl Iterator<Item = Template<'a>> + '_ {
        self.elements()
            .filter(|e| (80..=99).contains(&e.id))
            .map(|e| Template::new(e, self.ascii, self.is_opaque(e.id)))
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
                MerchantAccount::new(e, country, self.ascii, false).scheme()
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

/// Step 1: ≤ 512 characters, no control characters anywhere. Returns whether the payload is all
/// ASCII (found in the same pass over the bytes).
fn check_size_and_characters(payload: &str) -> Result<bool, EmvError> {
    let bytes = payload.as_bytes();
    // One test per byte, which the compiler vectorises: is it printable ASCII (0x20–0x7E)? Only a
    // payload with some other byte is looked at again, to tell control characters from letters.
    let odd = bytes
        .iter()
        .fold(0u8, |acc, &b| acc | u8::from(b.wrapping_sub(0x20) > 0x5E));
    let (control, ascii) = if odd == 0 {
        (false, true)
    } else {
        (
            bytes.iter().any(|&b| b < 0x20 || b == 0x7F),
            bytes.is_ascii(),
        )
    };
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
                char_offset(payload, at),
                Detail::PayloadTooLong { chars },
            ));
        }
    }
    if control
        && let Some((at, ch)) = payload
            .char_indices()
            .find(|(_, c)| (*c as u32) < 0x20 || *c == '\u{7f}')
    {
        return Err(err(
            ErrorKind::BadChar,
            locate(payload, at, ascii),
            char_offset(payload, at),
            Detail::ControlChar { ch },
        ));
    }
    Ok(ascii)
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
