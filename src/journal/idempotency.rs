//! Idempotency records: one per (client id, kind, request id), holding the hash of the request
//! body and, once answered, the response to replay.
//!
//! ```text
//! begin(key, hash):  no record            → insert InFlight, New      (exactly one caller wins)
//!                    record, other hash   → Inconsistent              (REPEAT_REQ_INCONSISTENT)
//!                    record InFlight      → InFlight                  (retry later)
//!                    record Done          → Replay(stored response)
//! complete(key, response): InFlight → Done      abandon(key): InFlight → (removed)
//! ```
//!
//! Done records are kept for the configured retention after completion and then purged by
//! [`Journal::purge_expired`](super::Journal::purge_expired); InFlight records are never purged
//! (recovery lists them in [`Unresolved`](super::Unresolved)).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::JournalError;
use super::codec;

/// What kind of request a key belongs to (request ids are unique per client and kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// `POST /v1/payments`.
    Payment,
    /// `POST /v1/payments/cancel`.
    Cancel,
    /// `POST /v1/refunds`.
    Refund,
    /// `POST /v1/quotes`.
    Quote,
    /// `POST /v1/qr/decode`.
    Decode,
}

impl RequestKind {
    /// The name stored in keys.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Payment => "payment",
            RequestKind::Cancel => "cancel",
            RequestKind::Refund => "refund",
            RequestKind::Quote => "quote",
            RequestKind::Decode => "decode",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            RequestKind::Payment,
            RequestKind::Cancel,
            RequestKind::Refund,
            RequestKind::Quote,
            RequestKind::Decode,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Identifies one wallet request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdempotencyKey {
    /// The wallet client.
    pub client_id: String,
    /// What kind of request.
    pub kind: RequestKind,
    /// The wallet's request id.
    pub request_id: String,
}

impl IdempotencyKey {
    /// A key.
    pub fn new(
        client_id: impl Into<String>,
        kind: RequestKind,
        request_id: impl Into<String>,
    ) -> Self {
        IdempotencyKey {
            client_id: client_id.into(),
            kind,
            request_id: request_id.into(),
        }
    }

    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>, JournalError> {
        codec::composite(&[&self.client_id, self.kind.as_str(), &self.request_id])
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        match codec::split_composite(bytes)?.as_slice() {
            [client, kind, request] => Some(IdempotencyKey {
                client_id: client.clone(),
                kind: RequestKind::parse(kind)?,
                request_id: request.clone(),
            }),
            _ => None,
        }
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.client_id,
            self.kind.as_str(),
            self.request_id
        )
    }
}

/// SHA-256 of a request body (as received, or of a canonical form the caller chooses).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BodyHash(pub [u8; 32]);

impl BodyHash {
    /// SHA-256 of `body` (`ring::digest`).
    pub fn of(body: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, body);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        BodyHash(out)
    }
}

impl fmt::Debug for BodyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BodyHash(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// The response sent for a request, replayed byte for byte on a repeat.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// The response body.
    #[serde(with = "codec::hex")]
    pub body: Vec<u8>,
}

impl fmt::Debug for StoredResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Bodies can hold customer data: show only their size.
        f.debug_struct("StoredResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// What [`begin`](super::Journal::begin) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// First time: the caller owns the request and must `complete` (or `abandon`) it.
    New,
    /// Already answered with the same body: send this again.
    Replay(StoredResponse),
    /// Same key, different body: REPEAT_REQ_INCONSISTENT.
    Inconsistent,
    /// Same key and body, still being processed: ask the wallet to retry later.
    InFlight,
}

/// Where a request stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub(crate) enum IdempotencyState {
    InFlight,
    Done {
        response: StoredResponse,
        completed_at_ms: u64,
    },
}

/// The stored record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdempotencyRecord {
    #[serde(with = "codec::hex")]
    pub(crate) body_hash: Vec<u8>,
    pub(crate) created_at_ms: u64,
    #[serde(flatten)]
    pub(crate) state: IdempotencyState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_differ_by_kind() {
        let k = IdempotencyKey::new("w1", RequestKind::Refund, "r-1");
        assert_eq!(
            IdempotencyKey::from_bytes(&k.to_bytes().unwrap()),
            Some(k.clone())
        );
        let p = IdempotencyKey::new("w1", RequestKind::Payment, "r-1");
        assert_ne!(k.to_bytes().unwrap(), p.to_bytes().unwrap());
    }

    #[test]
    fn body_hash_is_sha256() {
        // FIPS 180-2 test vector for "abc".
        let h = BodyHash::of(b"abc");
        assert_eq!(
            h.0[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(abc) starts ba7816bf"
        );
    }

    #[test]
    fn stored_response_debug_hides_the_body() {
        let r = StoredResponse {
            status: 200,
            body: b"{\"customerId\":\"c-9\"}".to_vec(),
        };
        assert!(!format!("{r:?}").contains("c-9"));
    }
}
