//! Field types shared by the requests and responses: ids, the payer's customer id (a payer
//! identifier: its `Debug` is redacted), the scanned code, and money as `{"currency","value"}`.

use serde::{Deserialize, Serialize};

use crate::money::{Amount, Currency};

fn check_id(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 64 {
        return Err(format!(
            "{what} must be 1 to 64 characters, got {}",
            s.len()
        ));
    }
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        Some(c) => Err(format!(
            "{what} may contain only A-Z a-z 0-9 - _ . : (found {c:?})"
        )),
        None => Ok(()),
    }
}

/// Serializes string newtypes as their text, borrowed (`serde(into = "String")` copies the
/// string before writing it: an allocation per id in every answer).
macro_rules! serialize_as_str {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    )*};
}

serialize_as_str!(RequestId, CustomerId, CodeValue);

/// A wallet's idempotent request id, or one of our ids (decode, quote, payment, refund):
/// 1–64 characters of `A-Z a-z 0-9 - _ . :`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct RequestId(String);

impl RequestId {
    /// Checks `s`.
    pub fn new(s: impl Into<String>) -> Result<Self, String> {
        let s = s.into();
        check_id("an id", &s)?;
        Ok(RequestId(s))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RequestId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        RequestId::new(s)
    }
}

impl From<RequestId> for String {
    fn from(id: RequestId) -> String {
        id.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The payer's id at the wallet (1–64 printable ASCII characters). A payer identifier: `Debug`
/// prints it redacted; use [`CustomerId::expose`] deliberately.
#[derive(Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct CustomerId(String);

impl CustomerId {
    /// Checks `s`.
    pub fn new(s: impl Into<String>) -> Result<Self, String> {
        let s = s.into();
        if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("must be 1 to 64 printable ASCII characters".to_owned());
        }
        Ok(CustomerId(s))
    }

    /// The id, for the journal and the limits (never for logs).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for CustomerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerId(<redacted>)")
    }
}

impl TryFrom<String> for CustomerId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        CustomerId::new(s)
    }
}

impl From<CustomerId> for String {
    fn from(id: CustomerId) -> String {
        id.0
    }
}

/// The scanned QR payload, 1–512 characters (the EMV maximum). Its content is the parser's job.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct CodeValue(String);

impl CodeValue {
    /// The scanned text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CodeValue {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let n = s.chars().count();
        if n == 0 || n > 512 {
            return Err(format!("must be 1 to 512 characters, got {n}"));
        }
        Ok(CodeValue(s))
    }
}

impl From<CodeValue> for String {
    fn from(c: CodeValue) -> String {
        c.0
    }
}

/// Free text from the wallet (a refund reason): at most 256 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text(String);

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Text {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.chars().count() > 256 || s.chars().any(char::is_control) {
            return Err("must be at most 256 characters without control characters".to_owned());
        }
        Ok(Text(s))
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.0
    }
}

/// Money on the wire: `{"currency":"SGD","value":"1250"}`: ISO 4217 alpha code, value in integer
/// minor units as a string of digits (no sign, no decimal point, no leading zeros except "0").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money(pub Amount);

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyWire {
    currency: String,
    value: String,
}

impl Serialize for Money {
    /// The same object as [`MoneyWire`], without a string of its own for either field.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        /// The minor units as a JSON string, written straight from the integer.
        struct Digits(u64);
        impl Serialize for Digits {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }
        let mut wire = s.serialize_struct("MoneyWire", 2)?;
        wire.serialize_field("currency", self.0.currency().code())?;
        wire.serialize_field("value", &Digits(self.0.minor()))?;
        wire.end()
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let w = MoneyWire::deserialize(d)?;
        let currency = Currency::from_code(&w.currency)
            .map_err(|e| D::Error::custom(format!("currency: {e}")))?;
        let v = &w.value;
        if v.is_empty() || v.len() > 18 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(D::Error::custom(format!(
                "value: must be integer minor units as a string of 1 to 18 digits, got {v:?}"
            )));
        }
        if v.len() > 1 && v.starts_with('0') {
            return Err(D::Error::custom(format!(
                "value: no leading zeros, got {v:?}"
            )));
        }
        let minor: u64 = v
            .parse()
            .map_err(|e| D::Error::custom(format!("value: {e}")))?;
        let amount = Amount::from_minor(minor, currency)
            .map_err(|e| D::Error::custom(format!("value: {e}")))?;
        Ok(Money(amount))
    }
}

/// A currency on the wire: ISO 4217 alpha-3.
pub(crate) mod currency_code {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::money::Currency;

    pub(crate) fn serialize<S: Serializer>(c: &Currency, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(c.code())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Currency, D::Error> {
        let s = String::deserialize(d)?;
        Currency::from_code(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_round_trips_as_minor_units_in_a_string() {
        let m: Money = serde_json::from_str(r#"{"currency":"SGD","value":"1250"}"#).unwrap();
        assert_eq!(m.0.minor(), 1250);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"currency":"SGD","value":"1250"}"#
        );
    }

    #[test]
    fn money_refuses_decimals_numbers_signs_and_unknown_currencies() {
        for bad in [
            r#"{"currency":"SGD","value":"12.50"}"#,
            r#"{"currency":"SGD","value":1250}"#,
            r#"{"currency":"SGD","value":"-1"}"#,
            r#"{"currency":"SGD","value":"01"}"#,
            r#"{"currency":"XXQ","value":"1"}"#,
            r#"{"currency":"SGD","value":"1","x":1}"#,
        ] {
            assert!(serde_json::from_str::<Money>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn customer_id_debug_is_redacted() {
        let c = CustomerId::new("alice@example").unwrap();
        assert!(!format!("{c:?}").contains("alice"));
    }
}
