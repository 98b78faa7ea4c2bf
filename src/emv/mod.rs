//! EMVCo merchant-presented QR codes (MPM v1.1) with national profiles.
//!
//! - **In**: the scanned payload text (`&str`).
//! - **Out**: [`MerchantQr`], a validated zero-copy view (initiation, merchant accounts with their
//!   scheme, MCC, currency with its ISO 4217 exponent, amount in minor units, tip/fee, country, name,
//!   city, additional data, language template, unreserved templates), plus warnings; and the encoder
//!   [`encode`] from the owned model [`QrData`].
//! - **Errors**: [`EmvError`] — a kind (`crc`, `truncated`, `bad_length`, `order`, `duplicate`,
//!   `missing_mandatory`, `bad_value`, `bad_char`, `too_long`), the ID path ("62.05") and the
//!   character offset.
//! - **Spec**: `spec/emv.md` (every rule we enforce, and which profile relaxes what); the national
//!   registry is data in `profiles.toml`.
//!
//! Lengths count characters (Unicode code points), not bytes. Parsing does not allocate.

pub mod arbitrary;
pub mod crc;
mod encode;
mod error;
pub mod ids;
mod mpm;
pub mod profiles;
mod rules;
mod templates;
pub mod tlv;

pub use encode::{DataObject, EncodeError, QrData, Value, encode, encode_with};
pub use error::{Detail, EmvError, ErrorKind, Path, Rule, Warning, WarningCode, Warnings};
pub use mpm::{Initiation, MAX_CHARS, MerchantQr, Mode, Tip};
pub use profiles::{NationalScheme, Profile, Role};
pub use templates::{
    AdditionalData, ConsumerDataRequest, DataValue, LanguageTemplate, MerchantAccount, Template,
};

/// Parses a payload under the default rules: EMVCo v1.1 with the recognised profile's deviations
/// allowed as warnings.
pub fn parse(payload: &str) -> Result<MerchantQr<'_>, EmvError> {
    MerchantQr::parse(payload, Mode::Profiles)
}

/// Parses a payload that arrived as bytes: invalid UTF-8 is a `bad_char` error at the character
/// offset where the valid text ends.
pub fn parse_bytes(payload: &[u8], mode: Mode) -> Result<MerchantQr<'_>, EmvError> {
    match std::str::from_utf8(payload) {
        Ok(s) => MerchantQr::parse(s, mode),
        Err(e) => {
            let valid = e.valid_up_to();
            let offset =
                std::str::from_utf8(&payload[..valid]).map_or(valid, |s| s.chars().count());
            let byte = payload.get(valid).copied().unwrap_or_default();
            Err(EmvError::new(
                ErrorKind::BadChar,
                Path::ROOT,
                offset,
                Detail::InvalidUtf8 { byte },
            ))
        }
    }
}

/// Parses a payload under pure EMVCo v1.1 (`--strict`).
pub fn parse_strict(payload: &str) -> Result<MerchantQr<'_>, EmvError> {
    MerchantQr::parse(payload, Mode::Strict)
}
