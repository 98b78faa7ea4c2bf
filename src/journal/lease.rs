//! Leases on a shared journal (spec/journal.md §12): which instance works which unresolved record,
//! and how another instance takes the records of a dead one over.
//!
//! ```text
//! instances  name → InstanceRecord {token, seq, lease_ms, …}: one per running instance,
//!            its seq bumped by every heartbeat (every lease_ms / 3)
//! open       the index of unresolved records (§8); on a shared engine each entry's value is
//!            the name of the instance that last changed the record: its owner
//! ```
//!
//! An owner's lease on its records is its instance record: while its `seq` keeps moving, nobody
//! else touches them. Another instance that sees the same (token, seq) for longer than the owner's
//! `lease_ms` — measured on its *own* monotonic clock, so the hosts' clocks need not agree — takes
//! the owner over ([`Op::TakeOver`](super::writer::Op)): under the journal's one write lock it
//! checks the (token, seq) once more, rewrites every `open` entry of the owner to itself and
//! deletes the owner's record, then recovers those records as a restart would. A heartbeat that
//! finds its record gone or carrying another token is [`Lease::Lost`]: the instance's work was
//! taken over (or another process runs under its name), it is logged and counted.
//!
//! Every write here goes through the same group-commit writer as every other write, so redb (one
//! process, no instance) is unchanged: it writes no instance records and its `open` entries stay
//! empty.

use serde::{Deserialize, Serialize};

/// This process on a shared journal: its name (its records' owner) and a token that tells its
/// incarnation apart from an earlier or concurrent process of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The configured name (`[journal] instance`), or a random one (`gw-` + 8 hex digits).
    pub name: String,
    /// 16 random hex digits, new for every process.
    pub token: String,
    /// How long its records stay its own without a heartbeat.
    pub lease_ms: u64,
}

/// An instance's lease, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// Its name.
    pub name: String,
    /// Its process's token.
    pub token: String,
    /// Heartbeats so far (a moving `seq` is a live instance).
    pub seq: u64,
    /// How long its records stay its own after its last heartbeat.
    pub lease_ms: u64,
    /// When it registered (its host's clock; informational).
    pub started_at_ms: u64,
    /// Its last heartbeat (its host's clock; informational: takeover decisions use the observer's
    /// monotonic clock, not this).
    pub heartbeat_at_ms: u64,
    /// Its process id.
    pub pid: u32,
}

/// What a heartbeat found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// The lease is this process's and was renewed.
    Held(InstanceRecord),
    /// The record is gone (another instance took this one's records over) or carries another
    /// token (another process registered under this name): what it found.
    Lost(Option<InstanceRecord>),
}

/// Who owns the journal's unresolved records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owners {
    /// Every registered instance.
    pub instances: Vec<InstanceRecord>,
    /// Owner name → how many unresolved records it owns (`""`: records written before leases
    /// or by an unshared engine).
    pub open: std::collections::BTreeMap<String, usize>,
}

/// A decode or a quote any instance of a shared journal may use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SharedKey {
    /// A decode id.
    Decode(String),
    /// A quote id (single use: the payment's first write consumes it).
    Quote(String),
}

impl SharedKey {
    pub(crate) fn bytes(&self) -> Vec<u8> {
        let (tag, id) = match self {
            SharedKey::Decode(id) => (b'D', id),
            SharedKey::Quote(id) => (b'Q', id),
        };
        let mut k = Vec::with_capacity(id.len() + 1);
        k.push(tag);
        k.extend_from_slice(id.as_bytes());
        k
    }
}

/// A shared value: its expiry (ms since the Unix epoch) ‖ the payload.
pub(crate) fn shared_value(expires_at_ms: u64, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&expires_at_ms.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// (expiry, payload) of a stored shared value; `None` for one shorter than 8 bytes.
pub(crate) fn split_shared(v: &[u8]) -> Option<(u64, &[u8])> {
    let (at, payload) = v.split_at_checked(8)?;
    Some((u64::from_be_bytes(at.try_into().ok()?), payload))
}

/// The expiry index key of a shared key.
pub(crate) fn shared_expiry_key(expires_at_ms: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&expires_at_ms.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// 16 random hex digits.
pub(crate) fn random_hex(rng: &ring::rand::SystemRandom) -> String {
    let mut b = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(rng, &mut b);
    super::codec::hex::encode(&b)
}
