//! How records are stored: one byte of schema version, then the record as JSON.
//!
//! ```text
//! value = version (1 byte, currently 0x04) ‖ JSON of the record (serde_json)
//! money = {"currency":"SGD","minor":1250}     integer minor units + ISO 4217 alpha code
//! rate  = "1.0452"                            decimal string (rust_decimal), never a float
//! time  = 1763721600000                       milliseconds since the Unix epoch, UTC
//! ```
//!
//! Why JSON behind a version byte: records are small (a few hundred bytes) and written once or
//! a few times, so the encoding is nowhere near the cost of a durable commit; JSON needs no new
//! dependency, can be read by a person or a script during an incident, and new optional fields
//! are added with `#[serde(default)]` without a migration. The version byte is for the day a
//! change cannot be made that way: a reader refuses versions it does not know instead of
//! misreading them.
//!
//! Keys are binary and ordered: ids are their 16 UUID bytes (UUIDv7, so time-ordered), composite
//! keys are length-prefixed strings (`u16` big-endian length, then UTF-8).

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};

use super::{JournalError, RecordKind};
use crate::money::{Amount, Currency};

/// The record schema version this build writes. Version 2 added `origin` to payments and refunds
/// and the notice outbox; version 3 added the payment's `merchant` (name, city, country, MCC);
/// version 4 the refund's `initiator` (a refund that started at the merchant). Older records still decode (their `origin` is the native scheme, their merchant empty). A build
/// that knows an older version refuses newer records instead of rewriting them without the fields
/// it does not know.
pub const RECORD_VERSION: u8 = 4;

/// The oldest record schema version this build reads.
pub const OLDEST_RECORD_VERSION: u8 = 1;

/// Encodes a record.
pub(crate) fn encode<T: Serialize>(kind: RecordKind, record: &T) -> Result<Vec<u8>, JournalError> {
    let mut out = Vec::with_capacity(512);
    out.push(RECORD_VERSION);
    serde_json::to_writer(&mut out, record).map_err(|e| JournalError::Invalid {
        what: "record",
        detail: format!("{kind} does not encode: {e}"),
    })?;
    Ok(out)
}

/// Decodes a record stored under `key`; any damage is [`JournalError::Corrupt`] naming the key.
pub(crate) fn decode<T: DeserializeOwned>(
    kind: RecordKind,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, JournalError> {
    let corrupt = |detail: String| JournalError::Corrupt {
        kind,
        key: key_text(key),
        detail,
    };
    match bytes.split_first() {
        Some((v, body)) if (OLDEST_RECORD_VERSION..=RECORD_VERSION).contains(v) => {
            serde_json::from_slice(body).map_err(|e| corrupt(e.to_string()))
        }
        Some((v, _)) => Err(corrupt(format!("unknown record version {v}"))),
        None => Err(corrupt("empty value".to_owned())),
    }
}

/// A key for messages: printable ASCII as is, anything else as hex.
pub(crate) fn key_text(key: &[u8]) -> String {
    if key.len() == 16
        && let Ok(u) = uuid::Uuid::from_slice(key)
    {
        return u.hyphenated().to_string();
    }
    if key.iter().all(|b| (0x20..0x7f).contains(b)) {
        String::from_utf8_lossy(key).into_owned()
    } else {
        hex::encode(key)
    }
}

/// `u16` big-endian length ‖ bytes, for each part. Parts longer than 65 535 bytes are refused.
pub(crate) fn composite(parts: &[&str]) -> Result<Vec<u8>, JournalError> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 2).sum());
    for part in parts {
        let len = u16::try_from(part.len()).map_err(|_| JournalError::Invalid {
            what: "key",
            detail: format!("a key part is {} bytes long (at most 65535)", part.len()),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    Ok(out)
}

/// Splits a [`composite`] key back into its parts.
pub(crate) fn split_composite(mut key: &[u8]) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    while !key.is_empty() {
        let (len, rest) = key.split_at_checked(2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (part, rest) = rest.split_at_checked(len)?;
        parts.push(String::from_utf8(part.to_vec()).ok()?);
        key = rest;
    }
    Some(parts)
}

/// Serde for [`Amount`]: `{"currency":"SGD","minor":1250}`.
pub(crate) mod amount {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Stored<'a> {
        currency: std::borrow::Cow<'a, str>,
        minor: u64,
    }

    pub(crate) fn serialize<S: Serializer>(a: &Amount, s: S) -> Result<S::Ok, S::Error> {
        Stored {
            currency: a.currency().code().into(),
            minor: a.minor(),
        }
        .serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Amount, D::Error> {
        let stored = Stored::deserialize(d)?;
        let currency = Currency::from_code(&stored.currency).map_err(serde::de::Error::custom)?;
        Amount::from_minor(stored.minor, currency).map_err(serde::de::Error::custom)
    }
}

/// Serde for [`Decimal`]: its exact decimal string.
pub(crate) mod decimal {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        text.parse::<Decimal>().map_err(serde::de::Error::custom)
    }
}

/// Lower-case hex, the journal's one encoding of bytes as text: serde for byte strings in
/// records, `bytea` literals and output on PostgreSQL, keys in error texts, lease tokens.
pub(crate) mod hex {
    use super::*;

    /// Serde: `b` as lower-case hex. (Each byte was a `format!` and a `String`: a stored
    /// reversal's 0400 is ≈ 200 bytes, written with every payment, ≈ 2 % of the gateway's CPU
    /// under 64 payment flows; issue 16.)
    pub(crate) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(b))
    }

    /// `b` as lower-case hex digits, two a byte.
    pub(crate) fn encode(b: &[u8]) -> String {
        let mut out = String::with_capacity(b.len() * 2);
        push(&mut out, b);
        out
    }

    /// Appends `b` to `out` as lower-case hex digits.
    pub(crate) fn push(out: &mut String, b: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        out.reserve(b.len() * 2);
        for &byte in b {
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
    }

    /// The bytes of an even number of hex digits (either case); `None` for anything else.
    pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        text.as_bytes()
            .chunks(2)
            .map(|p| match p {
                [h, l] => Some(digit(*h)? << 4 | digit(*l)?),
                _ => None,
            })
            .collect()
    }

    /// Serde: bytes from hex text.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        if text.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd number of hex digits"));
        }
        decode(&text).ok_or_else(|| serde::de::Error::custom("not hex"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_two_lower_case_digits_a_byte_and_reads_back() {
        let all: Vec<u8> = (0..=255).collect();
        let text = hex::encode(&all);
        let formatted: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(text, formatted);
        let json = serde_json::to_string(&Wrapped { b: all.clone() }).unwrap();
        assert_eq!(json, format!("{{\"b\":\"{formatted}\"}}"));
        let back: Wrapped = serde_json::from_str(&json).unwrap();
        assert_eq!(back.b, all);
        assert_eq!(hex::encode(&[]), "");
    }

    #[derive(Serialize, Deserialize)]
    struct Wrapped {
        #[serde(with = "hex")]
        b: Vec<u8>,
    }

    #[test]
    fn composite_keys_split_back_into_their_parts() {
        let key = composite(&["wallet-a", "", "req\u{e9}1"]).unwrap();
        assert_eq!(
            split_composite(&key).unwrap(),
            vec![
                "wallet-a".to_owned(),
                String::new(),
                "req\u{e9}1".to_owned()
            ]
        );
        assert!(split_composite(&key[..key.len() - 1]).is_none());
    }

    #[test]
    fn composite_keys_do_not_collide_on_separators() {
        assert_ne!(
            composite(&["ab", "c"]).unwrap(),
            composite(&["a", "bc"]).unwrap()
        );
    }

    #[test]
    fn unknown_versions_and_garbage_are_corrupt_not_panics() {
        for bytes in [&b""[..], b"\x05{}", b"\x00{}", b"\x01{not json", b"\x01"] {
            let e = decode::<u64>(RecordKind::Payment, b"k1", bytes).unwrap_err();
            assert!(e.is_corrupt(), "{e}");
            assert!(e.to_string().contains("k1"), "{e}");
        }
    }

    #[test]
    fn older_records_still_decode_and_new_ones_are_version_4() {
        for old in [b"\x017", b"\x027", b"\x037", b"\x047"] {
            assert_eq!(decode::<u64>(RecordKind::Payment, b"k", old).unwrap(), 7);
        }
        assert_eq!(encode(RecordKind::Payment, &7u64).unwrap(), b"\x047");
    }
}
