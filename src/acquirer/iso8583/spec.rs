//! The field layout as data: one [`FieldSpec`] per data element, collected in a [`Spec`].
//!
//! The built-in [`Spec::iso1987_ascii`] is our ISO 8583:1987 ASCII profile (lengths and length types
//! agree with the default ASCII specification of the pyiso8583 peer). Another acquirer's layout can be
//! loaded from TOML with [`Spec::from_toml`]; see `spec/acquirer-iso8583.md`.

use serde::{Deserialize, Serialize};

/// Highest data element number (secondary bitmap present).
pub const MAX_FIELD: u8 = 128;

/// Character class of a data element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Numeric: ASCII digits `0-9`.
    N,
    /// Alphanumeric: ASCII letters and digits.
    An,
    /// Alphanumeric and special: printable ASCII `0x20..=0x7E`.
    Ans,
    /// Binary carried as ASCII hexadecimal digits (`0-9`, `A-F`, `a-f`), as in ASCII profiles.
    H,
    /// Raw bytes on the wire, shown as hexadecimal by the CLI.
    B,
}

impl Format {
    /// Whether `byte` may appear in a field of this format.
    pub fn allows(self, byte: u8) -> bool {
        match self {
            Format::N => byte.is_ascii_digit(),
            Format::An => byte.is_ascii_alphanumeric(),
            Format::Ans => (0x20..=0x7E).contains(&byte),
            Format::H => byte.is_ascii_hexdigit(),
            Format::B => true,
        }
    }

    /// Index of the first byte of `value` this format does not allow (one tight loop per format).
    pub fn first_invalid(self, value: &[u8]) -> Option<usize> {
        match self {
            Format::N => value.iter().position(|b| !b.is_ascii_digit()),
            Format::An => value.iter().position(|b| !b.is_ascii_alphanumeric()),
            Format::Ans => value.iter().position(|b| !(0x20..=0x7E).contains(b)),
            Format::H => value.iter().position(|b| !b.is_ascii_hexdigit()),
            Format::B => None,
        }
    }

    /// Short name used in error messages and the written spec.
    pub fn name(self) -> &'static str {
        match self {
            Format::N => "n",
            Format::An => "an",
            Format::Ans => "ans",
            Format::H => "h",
            Format::B => "b",
        }
    }
}

/// How a data element's length is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "len")]
pub enum Length {
    /// Always exactly this many characters (bytes for `b`).
    Fixed(u16),
    /// Two ASCII digits of length, then up to this many characters.
    Llvar(u16),
    /// Three ASCII digits of length, then up to this many characters.
    Lllvar(u16),
}

impl Length {
    /// Number of ASCII length digits in front of the value (0 for fixed fields).
    pub fn prefix_digits(self) -> usize {
        match self {
            Length::Fixed(_) => 0,
            Length::Llvar(_) => 2,
            Length::Lllvar(_) => 3,
        }
    }

    /// Largest allowed value length.
    pub fn max(self) -> usize {
        match self {
            Length::Fixed(n) | Length::Llvar(n) | Length::Lllvar(n) => usize::from(n),
        }
    }
}

/// How bitmaps are carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BitmapEncoding {
    /// 16 upper-case hexadecimal ASCII characters per bitmap (the ASCII profile).
    #[default]
    Hex,
    /// 8 raw bytes per bitmap.
    Binary,
}

/// One data element's layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSpec {
    /// Data element number, 2..=128.
    pub number: u8,
    /// Character class.
    pub format: Format,
    /// Fixed or variable length.
    pub length: Length,
    /// Short human-readable name.
    pub name: String,
}

/// A complete message layout: bitmap encoding plus the data elements 2..=128 it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    name: String,
    bitmap: BitmapEncoding,
    fields: Vec<Option<FieldSpec>>,
}

/// A spec file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The TOML text did not parse.
    #[error("spec file is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    /// A field number outside 2..=128.
    #[error("field {0}: number must be 2..=128 (1 is the secondary bitmap)")]
    BadNumber(u8),
    /// The same field listed twice.
    #[error("field {0}: listed twice")]
    Duplicate(u8),
    /// A length that the length prefix cannot express.
    #[error("field {number}: length {len} does not fit its length type")]
    BadLength {
        /// Field number.
        number: u8,
        /// Offending length.
        len: u16,
    },
}

#[derive(Deserialize)]
struct SpecFile {
    name: String,
    #[serde(default)]
    bitmap: BitmapEncoding,
    fields: Vec<FieldSpec>,
}

impl Spec {
    /// Builds a spec from field definitions, checking numbers and lengths.
    pub fn new(
        name: impl Into<String>,
        bitmap: BitmapEncoding,
        defs: impl IntoIterator<Item = FieldSpec>,
    ) -> Result<Self, SpecError> {
        let mut fields: Vec<Option<FieldSpec>> = vec![None; usize::from(MAX_FIELD) + 1];
        for def in defs {
            if !(2..=MAX_FIELD).contains(&def.number) {
                return Err(SpecError::BadNumber(def.number));
            }
            let ok = match def.length {
                Length::Fixed(n) => n > 0 && n <= 9999,
                Length::Llvar(n) => n <= 99,
                Length::Lllvar(n) => n <= 999,
            };
            if !ok {
                let (Length::Fixed(len) | Length::Llvar(len) | Length::Lllvar(len)) = def.length;
                return Err(SpecError::BadLength {
                    number: def.number,
                    len,
                });
            }
            let slot = &mut fields[usize::from(def.number)];
            if slot.is_some() {
                return Err(SpecError::Duplicate(def.number));
            }
            *slot = Some(def);
        }
        Ok(Spec {
            name: name.into(),
            bitmap,
            fields,
        })
    }

    /// Loads a layout from TOML: `name = "..."`, optional `bitmap = "hex"|"binary"`, and
    /// `[[fields]]` tables with `number`, `format` (`n|an|ans|h|b`), `length = { type = "fixed"|"llvar"|"lllvar", len = N }`, `name`.
    pub fn from_toml(text: &str) -> Result<Self, SpecError> {
        let file: SpecFile = toml::from_str(text)?;
        Spec::new(file.name, file.bitmap, file.fields)
    }

    /// The layout's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How bitmaps are carried.
    pub fn bitmap(&self) -> BitmapEncoding {
        self.bitmap
    }

    /// The layout of data element `number`, if this spec knows it.
    pub fn field(&self, number: u8) -> Option<&FieldSpec> {
        self.fields
            .get(usize::from(number))
            .and_then(Option::as_ref)
    }

    /// Every data element this spec knows, in ascending order.
    pub fn fields(&self) -> impl Iterator<Item = &FieldSpec> {
        self.fields.iter().flatten()
    }

    /// Our ISO 8583:1987 ASCII profile: all data elements 2..=128 with the 1987 formats, lengths as in
    /// the pyiso8583 default ASCII specification.
    pub fn iso1987_ascii() -> &'static Spec {
        static SPEC: std::sync::OnceLock<Spec> = std::sync::OnceLock::new();
        SPEC.get_or_init(|| {
            let defs = ISO1987_ASCII
                .iter()
                .map(|&(number, format, length, name)| FieldSpec {
                    number,
                    format,
                    length,
                    name: name.to_owned(),
                });
            // The table below is checked by a unit test; an inconsistent table is a programming error
            // that the test catches, so fall back to an empty layout rather than panic.
            Spec::new("iso8583-1987-ascii", BitmapEncoding::Hex, defs).unwrap_or_else(|_| Spec {
                name: "invalid built-in table".to_owned(),
                bitmap: BitmapEncoding::Hex,
                fields: vec![None; usize::from(MAX_FIELD) + 1],
            })
        })
    }
}

use Format::{An, Ans, H, N};
use Length::{Fixed as F, Lllvar as LLL, Llvar as LL};

/// ISO 8583:1987 data elements 2..=128 (number, format, length, name).
#[rustfmt::skip]
const ISO1987_ASCII: &[(u8, Format, Length, &str)] = &[
    (2, N, LL(19), "Primary account number"),
    (3, N, F(6), "Processing code"),
    (4, N, F(12), "Amount, transaction"),
    (5, N, F(12), "Amount, settlement"),
    (6, N, F(12), "Amount, cardholder billing"),
    (7, N, F(10), "Transmission date and time"),
    (8, N, F(8), "Amount, cardholder billing fee"),
    (9, N, F(8), "Conversion rate, settlement"),
    (10, N, F(8), "Conversion rate, cardholder billing"),
    (11, N, F(6), "System trace audit number"),
    (12, N, F(6), "Time, local transaction"),
    (13, N, F(4), "Date, local transaction"),
    (14, N, F(4), "Date, expiration"),
    (15, N, F(4), "Date, settlement"),
    (16, N, F(4), "Date, conversion"),
    (17, N, F(4), "Date, capture"),
    (18, N, F(4), "Merchant type"),
    (19, N, F(3), "Acquiring institution country code"),
    (20, N, F(3), "PAN extended country code"),
    (21, N, F(3), "Forwarding institution country code"),
    (22, N, F(3), "Point of service entry mode"),
    (23, N, F(3), "Card sequence number"),
    (24, N, F(3), "Network international identifier"),
    (25, N, F(2), "Point of service condition code"),
    (26, N, F(2), "Point of service PIN capture code"),
    (27, N, F(1), "Authorisation identification response length"),
    (28, Ans, F(9), "Amount, transaction fee"),
    (29, Ans, F(9), "Amount, settlement fee"),
    (30, Ans, F(9), "Amount, transaction processing fee"),
    (31, Ans, F(9), "Amount, settlement processing fee"),
    (32, N, LL(11), "Acquiring institution identification code"),
    (33, N, LL(11), "Forwarding institution identification code"),
    (34, Ans, LL(28), "Primary account number, extended"),
    (35, Ans, LL(37), "Track 2 data"),
    (36, Ans, LLL(104), "Track 3 data"),
    (37, An, F(12), "Retrieval reference number"),
    (38, An, F(6), "Authorisation identification response"),
    (39, An, F(2), "Response code"),
    (40, An, F(3), "Service restriction code"),
    (41, Ans, F(8), "Card acceptor terminal identification"),
    (42, Ans, F(15), "Card acceptor identification code"),
    (43, Ans, F(40), "Card acceptor name/location"),
    (44, Ans, LL(25), "Additional response data"),
    (45, Ans, LL(76), "Track 1 data"),
    (46, Ans, LLL(999), "Additional data, ISO"),
    (47, Ans, LLL(999), "Additional data, national"),
    (48, Ans, LLL(999), "Additional data, private"),
    (49, N, F(3), "Currency code, transaction"),
    (50, N, F(3), "Currency code, settlement"),
    (51, N, F(3), "Currency code, cardholder billing"),
    (52, H, F(16), "Personal identification number data"),
    (53, N, F(16), "Security related control information"),
    (54, Ans, LLL(240), "Additional amounts"),
    (55, Ans, LLL(510), "ICC data"),
    (56, Ans, LLL(999), "Reserved, ISO"),
    (57, Ans, LLL(999), "Reserved, national"),
    (58, Ans, LLL(999), "Reserved, national"),
    (59, Ans, LLL(999), "Reserved, national"),
    (60, Ans, LLL(999), "Reserved, national"),
    (61, Ans, LLL(999), "Reserved, private"),
    (62, Ans, LLL(999), "Reserved, private"),
    (63, Ans, LLL(999), "Reserved, private"),
    (64, H, F(16), "Message authentication code"),
    (65, H, F(16), "Extended bitmap indicator"),
    (66, N, F(1), "Settlement code"),
    (67, N, F(2), "Extended payment code"),
    (68, N, F(3), "Receiving institution country code"),
    (69, N, F(3), "Settlement institution country code"),
    (70, N, F(3), "Network management information code"),
    (71, N, F(4), "Message number"),
    (72, N, F(4), "Message number, last"),
    (73, N, F(6), "Date, action"),
    (74, N, F(10), "Credits, number"),
    (75, N, F(10), "Credits, reversal number"),
    (76, N, F(10), "Debits, number"),
    (77, N, F(10), "Debits, reversal number"),
    (78, N, F(10), "Transfer, number"),
    (79, N, F(10), "Transfer, reversal number"),
    (80, N, F(10), "Inquiries, number"),
    (81, N, F(10), "Authorisations, number"),
    (82, N, F(12), "Credits, processing fee amount"),
    (83, N, F(12), "Credits, transaction fee amount"),
    (84, N, F(12), "Debits, processing fee amount"),
    (85, N, F(12), "Debits, transaction fee amount"),
    (86, N, F(16), "Credits, amount"),
    (87, N, F(16), "Credits, reversal amount"),
    (88, N, F(16), "Debits, amount"),
    (89, N, F(16), "Debits, reversal amount"),
    (90, N, F(42), "Original data elements"),
    (91, An, F(1), "File update code"),
    (92, An, F(2), "File security code"),
    (93, An, F(5), "Response indicator"),
    (94, An, F(7), "Service indicator"),
    (95, An, F(42), "Replacement amounts"),
    (96, H, F(16), "Message security code"),
    (97, Ans, F(17), "Amount, net settlement"),
    (98, Ans, F(25), "Payee"),
    (99, N, LL(11), "Settlement institution identification code"),
    (100, N, LL(11), "Receiving institution identification code"),
    (101, Ans, LL(17), "File name"),
    (102, Ans, LL(28), "Account identification 1"),
    (103, Ans, LL(28), "Account identification 2"),
    (104, Ans, LLL(100), "Transaction description"),
    (105, Ans, LLL(999), "Reserved, ISO"),
    (106, Ans, LLL(999), "Reserved, ISO"),
    (107, Ans, LLL(999), "Reserved, ISO"),
    (108, Ans, LLL(999), "Reserved, ISO"),
    (109, Ans, LLL(999), "Reserved, ISO"),
    (110, Ans, LLL(999), "Reserved, ISO"),
    (111, Ans, LLL(999), "Reserved, ISO"),
    (112, Ans, LLL(999), "Reserved, national"),
    (113, Ans, LLL(999), "Reserved, national"),
    (114, Ans, LLL(999), "Reserved, national"),
    (115, Ans, LLL(999), "Reserved, national"),
    (116, Ans, LLL(999), "Reserved, national"),
    (117, Ans, LLL(999), "Reserved, national"),
    (118, Ans, LLL(999), "Reserved, national"),
    (119, Ans, LLL(999), "Reserved, national"),
    (120, Ans, LLL(999), "Reserved, private"),
    (121, Ans, LLL(999), "Reserved, private"),
    (122, Ans, LLL(999), "Reserved, private"),
    (123, Ans, LLL(999), "Reserved, private"),
    (124, Ans, LLL(999), "Reserved, private"),
    (125, Ans, LLL(999), "Reserved, private"),
    (126, Ans, LLL(999), "Reserved, private"),
    (127, Ans, LLL(999), "Reserved, private"),
    (128, H, F(16), "Message authentication code"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_table_covers_every_field_once() {
        let defs = ISO1987_ASCII
            .iter()
            .map(|&(number, format, length, name)| FieldSpec {
                number,
                format,
                length,
                name: name.to_owned(),
            });
        let spec = Spec::new("t", BitmapEncoding::Hex, defs).unwrap();
        assert_eq!(spec.fields().count(), 127);
        assert_eq!(Spec::iso1987_ascii().name(), "iso8583-1987-ascii");
    }

    #[test]
    fn loads_a_layout_from_toml() {
        let spec = Spec::from_toml(
            r#"
            name = "tiny"
            bitmap = "binary"
            [[fields]]
            number = 3
            format = "n"
            length = { type = "fixed", len = 6 }
            name = "Processing code"
            [[fields]]
            number = 48
            format = "ans"
            length = { type = "lllvar", len = 999 }
            name = "Private"
            "#,
        )
        .unwrap();
        assert_eq!(spec.bitmap(), BitmapEncoding::Binary);
        assert_eq!(spec.field(48).unwrap().length, Length::Lllvar(999));
        assert!(spec.field(4).is_none());
    }

    #[test]
    fn refuses_a_variable_length_its_prefix_cannot_carry() {
        let err = Spec::new(
            "t",
            BitmapEncoding::Hex,
            [FieldSpec {
                number: 2,
                format: N,
                length: LL(100),
                name: String::new(),
            }],
        )
        .unwrap_err();
        assert!(matches!(
            err,
            SpecError::BadLength {
                number: 2,
                len: 100
            }
        ));
    }
}
