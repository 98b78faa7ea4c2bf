//! The EMVCo MPM v1.1 data-object IDs: names, which IDs are templates, and value limits.
//! Field facts from EMVCo QR Code Specification for Payment Systems, Merchant-Presented Mode v1.1.

use super::error::Path;

/// Payload format indicator (N2, "01").
pub const PAYLOAD_FORMAT: u8 = 0;
/// Point of initiation method (N2, "11" static / "12" dynamic).
pub const INITIATION: u8 = 1;
/// Merchant category code (N4).
pub const MCC: u8 = 52;
/// Transaction currency (N3, ISO 4217 numeric).
pub const CURRENCY: u8 = 53;
/// Transaction amount (ans ..13).
pub const AMOUNT: u8 = 54;
/// Tip or convenience indicator (N2).
pub const TIP_INDICATOR: u8 = 55;
/// Value of convenience fee, fixed (ans ..13).
pub const FEE_FIXED: u8 = 56;
/// Value of convenience fee, percentage (ans ..5).
pub const FEE_PERCENTAGE: u8 = 57;
/// Country code (ans 2, ISO 3166-1 alpha-2).
pub const COUNTRY: u8 = 58;
/// Merchant name (ans ..25).
pub const NAME: u8 = 59;
/// Merchant city (ans ..15).
pub const CITY: u8 = 60;
/// Postal code (ans ..10).
pub const POSTAL_CODE: u8 = 61;
/// Additional data field template.
pub const ADDITIONAL_DATA: u8 = 62;
/// CRC (ans 4).
pub const CRC: u8 = 63;
/// Merchant information — language template.
pub const LANGUAGE: u8 = 64;

/// Root IDs whose value is a template of nested data objects.
pub fn is_root_template(id: u8) -> bool {
    matches!(id, 26..=51 | 62 | 64 | 80..=99)
}

/// Merchant account information, primitive (02–25) or template (26–51).
pub fn is_merchant_account(id: u8) -> bool {
    (2..=51).contains(&id)
}

/// Templates whose sub-ID 00 is a globally unique identifier.
pub fn has_guid(id: u8) -> bool {
    matches!(id, 26..=51 | 80..=99)
}

/// Human name of the data object at `path`.
pub fn name(path: Path) -> &'static str {
    match *path.ids() {
        [] => "payload",
        [id] => root_name(id),
        [62, sub] => additional_data_name(sub),
        [64, sub] => language_name(sub),
        [t, 0] if has_guid(t) => "globally unique identifier",
        [62, t, 0] if t >= 50 => "globally unique identifier",
        [_, _] | [_, _, _] => "template data",
        _ => "data object",
    }
}

/// Name of a root ID.
pub fn root_name(id: u8) -> &'static str {
    match id {
        0 => "payload format indicator",
        1 => "point of initiation method",
        2 | 3 => "merchant account (Visa)",
        4 | 5 => "merchant account (Mastercard)",
        6..=8 => "merchant account (EMVCo reserved)",
        9 | 10 => "merchant account (Discover)",
        11 | 12 => "merchant account (Amex)",
        13 | 14 => "merchant account (JCB)",
        15 | 16 => "merchant account (UnionPay)",
        17..=25 => "merchant account (EMVCo reserved)",
        26..=51 => "merchant account template",
        52 => "merchant category code",
        53 => "transaction currency",
        54 => "transaction amount",
        55 => "tip or convenience indicator",
        56 => "convenience fee, fixed",
        57 => "convenience fee, percentage",
        58 => "country code",
        59 => "merchant name",
        60 => "merchant city",
        61 => "postal code",
        62 => "additional data template",
        63 => "CRC",
        64 => "merchant information, language template",
        65..=79 => "RFU for EMVCo",
        80..=99 => "unreserved template",
        _ => "unknown",
    }
}

/// Name of a sub-ID of the additional data template (62).
pub fn additional_data_name(sub: u8) -> &'static str {
    match sub {
        1 => "bill number",
        2 => "mobile number",
        3 => "store label",
        4 => "loyalty number",
        5 => "reference label",
        6 => "customer label",
        7 => "terminal label",
        8 => "purpose of transaction",
        9 => "additional consumer data request",
        10 => "merchant tax ID",
        11 => "merchant channel",
        12..=49 => "RFU for EMVCo",
        50..=99 => "payment system specific template",
        _ => "not defined by EMVCo",
    }
}

/// Name of a sub-ID of the language template (64).
pub fn language_name(sub: u8) -> &'static str {
    match sub {
        0 => "language preference",
        1 => "merchant name, alternate language",
        2 => "merchant city, alternate language",
        _ => "RFU for EMVCo",
    }
}

/// Maximum length (characters) of a root primitive, where EMVCo sets one below 99.
pub fn root_max(id: u8) -> Option<usize> {
    match id {
        AMOUNT | FEE_FIXED => Some(13),
        FEE_PERCENTAGE => Some(5),
        NAME => Some(25),
        CITY => Some(15),
        POSTAL_CODE => Some(10),
        _ => None,
    }
}

/// Maximum length of a sub-ID of 62.
pub fn additional_data_max(sub: u8) -> Option<usize> {
    match sub {
        1..=8 => Some(25),
        9 => Some(3),
        10 => Some(20),
        _ => None,
    }
}
