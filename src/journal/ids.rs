//! Identifiers: payment and refund ids (UUIDv7, unguessable) and the payer's customer id, whose
//! `Debug` and `Display` never show the value.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::JournalError;

/// A UUIDv7: 48-bit millisecond timestamp (ids sort by creation time) and 74 bits from the
/// operating system's CSPRNG, so one id says nothing about another.
fn uuid_v7(now: SystemTime, rng: &SystemRandom) -> Result<Uuid, JournalError> {
    let mut random = [0u8; 10];
    rng.fill(&mut random).map_err(|_| JournalError::Invalid {
        what: "random source",
        detail: "the operating system's random generator failed".to_owned(),
    })?;
    let millis = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Ok(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub(crate) fn generate(now: SystemTime, rng: &SystemRandom) -> Result<Self, JournalError> {
                uuid_v7(now, rng).map($name)
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// The 16 bytes used as the storage key.
            pub(crate) fn key(&self) -> [u8; 16] {
                *self.0.as_bytes()
            }

            pub(crate) fn from_key(bytes: &[u8]) -> Option<Self> {
                Uuid::from_slice(bytes).ok().map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = JournalError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(s).map($name).map_err(|_| JournalError::NotFound {
                    kind: $what,
                    key: s.chars().take(40).collect(),
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0.hyphenated())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<str>::deserialize(d)?;
                Uuid::try_parse(&text).map($name).map_err(serde::de::Error::custom)
            }
        }
    };
}

uuid_id!(
    /// A payment's id, given by the journal when the intent is recorded.
    PaymentId,
    super::RecordKind::Payment
);
uuid_id!(
    /// A refund's id, given by the journal when the refund is reserved.
    RefundId,
    super::RecordKind::Refund
);

/// The wallet's identifier of its customer (the payer). Stored as given; `Debug` and `Display`
/// redact it so it never reaches a log line by accident. Read it with [`CustomerId::expose`].
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomerId(String);

impl CustomerId {
    /// Wraps the wallet's customer id.
    pub fn new(id: impl Into<String>) -> Self {
        CustomerId(id.into())
    }

    /// The value itself (for limits and the wallet's own responses, never for logs).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CustomerId(<redacted>)")
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
