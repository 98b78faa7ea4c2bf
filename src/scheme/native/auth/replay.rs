//! Replay guard: every accepted signature is remembered for longer than the time window, so a
//! captured request cannot be sent again while its `request-time` is still acceptable.
//!
//! Bounded by bytes and by time (spec/auth.md §4): a signature is remembered as a 128-bit keyed
//! hash of (client id, signature bytes) — 16 bytes whatever the algorithm (an RSA-2048 signature is
//! 256) — in one of a ring of time slots that together span the lifetime; a slot older than the
//! lifetime is dropped whole. When the bound is reached the guard does **not** forget a signature
//! that is still inside its lifetime (that would let its request be replayed): it refuses the new
//! one ([`Seen::Full`]), and the scheme answers "service unavailable, retry later". That state needs
//! an operator (the bound is too small for the traffic, or a signed client floods us): it is logged
//! (at most once a second per guard) and counted.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Bytes one remembered signature costs, with the hash set's spare capacity: a `u128` key (16) and
/// its control byte, at a load factor between 7/16 and 7/8 after the table grows.
pub const ENTRY_BYTES: u64 = 40;

/// Slots in the ring: a slot holds the signatures accepted during 1/`SLOTS` of the lifetime.
const SLOTS: u32 = 12;

/// Shards (each its own lock and share of the bound).
const SHARDS: usize = 16;

/// The default bound, bytes (32 MiB ≈ 840,000 signatures: 1,270 signed requests a second
/// sustained over the 11-minute lifetime of the default ±5-minute window).
pub const DEFAULT_BYTES: u64 = 32 << 20;

/// What [`ReplayGuard::first_use`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not seen before: remembered now.
    First,
    /// Accepted before, inside its lifetime: a replay.
    Replay,
    /// Not seen before, but the guard is full: it cannot be remembered, so it must be refused.
    Full,
}

/// The keys are already uniformly random (keyed SipHash): the set hashes them by their low bits.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by u128 keys; a plain fold keeps the trait total.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, k: u128) {
        self.0 = k as u64;
    }
}

type KeySet = HashSet<u128, BuildHasherDefault<KeyHasher>>;

#[derive(Default)]
struct Shard {
    /// (slot number, keys accepted in it), oldest first.
    slots: VecDeque<(u64, KeySet)>,
    len: usize,
}

/// Remembers accepted signatures (keyed by client id and signature bytes).
pub struct ReplayGuard {
    shards: Vec<Mutex<Shard>>,
    keys: (std::hash::RandomState, std::hash::RandomState),
    start: Instant,
    slot: Duration,
    /// Slots a key is kept: the lifetime, rounded up, plus the slot it was accepted in.
    keep: u64,
    per_shard: usize,
    /// Seconds since `start` of the last "full" warning (rate limit), +1; 0 = never.
    warned: AtomicU64,
    full: AtomicU64,
    label: &'static str,
}

impl std::fmt::Debug for ReplayGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayGuard")
            .field("scheme", &self.label)
            .field("remembered", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl ReplayGuard {
    /// A guard for a `window` of ± `window`: entries live `2 × window` plus a minute, which covers
    /// the whole span in which the same `request-time` stays acceptable. `bytes` bounds memory
    /// (at [`ENTRY_BYTES`] a signature); `scheme` labels its log lines and metric.
    pub fn new(window: Duration, bytes: u64, scheme: &'static str) -> Self {
        let lifetime = window
            .saturating_mul(2)
            .saturating_add(Duration::from_secs(60));
        Self::with_lifetime(lifetime, bytes, scheme)
    }

    /// A guard whose entries live `lifetime` (at least that, at most one slot more).
    pub fn with_lifetime(lifetime: Duration, bytes: u64, scheme: &'static str) -> Self {
        let slot = (lifetime / SLOTS).max(Duration::from_millis(1));
        let keep = lifetime.as_nanos().div_ceil(slot.as_nanos().max(1));
        let entries = usize::try_from(bytes / ENTRY_BYTES).unwrap_or(usize::MAX);
        ReplayGuard {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            keys: Default::default(),
            start: Instant::now(),
            slot,
            keep: u64::try_from(keep).unwrap_or(u64::MAX).saturating_add(1),
            per_shard: (entries / SHARDS).max(1),
            warned: AtomicU64::new(0),
            full: AtomicU64::new(0),
            label: scheme,
        }
    }

    /// How many signatures the guard can hold.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    /// Signatures remembered now (expired slots are dropped lazily).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.len))
            .sum()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Signatures refused because the guard was full, since it was made.
    pub fn refused_full(&self) -> u64 {
        self.full.load(Ordering::Relaxed)
    }

    /// Records the signature if it is new and there is room. Atomic per key.
    pub fn first_use(&self, client_id: &str, signature: &[u8]) -> Seen {
        self.first_use_at(Instant::now(), client_id, signature)
    }

    fn key(&self, client_id: &str, signature: &[u8]) -> u128 {
        let half = |s: &std::hash::RandomState| {
            let mut h = s.build_hasher();
            h.write(client_id.as_bytes());
            h.write_u8(0xff);
            h.write(signature);
            h.finish()
        };
        (u128::from(half(&self.keys.0)) << 64) | u128::from(half(&self.keys.1))
    }

    fn first_use_at(&self, now: Instant, client_id: &str, signature: &[u8]) -> Seen {
        let key = self.key(client_id, signature);
        let slot_nanos = self.slot.as_nanos().max(1);
        let current =
            u64::try_from(now.saturating_duration_since(self.start).as_nanos() / slot_nanos)
                .unwrap_or(u64::MAX);
        let Some(shard) = self.shards.get((key >> 124) as usize % SHARDS) else {
            return Seen::Full;
        };
        // A poisoned lock (a panic while holding it) still guards a consistent set: every
        // mutation below completes or leaves the set as it was.
        let mut s = shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some((n, keys)) = s.slots.front() {
            if n.saturating_add(self.keep) > current {
                break;
            }
            let dropped = keys.len();
            s.slots.pop_front();
            s.len -= dropped;
        }
        if s.slots.iter().any(|(_, keys)| keys.contains(&key)) {
            return Seen::Replay;
        }
        if s.len >= self.per_shard {
            drop(s);
            self.refuse(now);
            return Seen::Full;
        }
        match s.slots.back_mut() {
            Some((n, keys)) if *n == current => {
                keys.insert(key);
            }
            _ => {
                let mut keys = KeySet::default();
                keys.insert(key);
                s.slots.push_back((current, keys));
            }
        }
        s.len += 1;
        Seen::First
    }

    fn refuse(&self, now: Instant) {
        self.full.fetch_add(1, Ordering::Relaxed);
        crate::telemetry::metrics::global().replay_memory_full(self.label);
        let second = now.saturating_duration_since(self.start).as_secs() + 1;
        let last = self.warned.load(Ordering::Relaxed);
        if last != second
            && self
                .warned
                .compare_exchange(last, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                scheme = self.label,
                capacity = self.capacity(),
                refused_total = self.refused_full(),
                "replay guard full: signed requests are refused (503) until remembered signatures \
                 expire; raise [memory] replay_mib or find the client flooding us"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_of_a_signature_is_a_replay() {
        let g = ReplayGuard::new(Duration::from_secs(300), 1 << 20, "test");
        assert_eq!(g.first_use("a", b"sig"), Seen::First);
        assert_eq!(g.first_use("a", b"sig"), Seen::Replay);
        assert_eq!(g.first_use("b", b"sig"), Seen::First, "per client");
        assert_eq!(g.first_use("a", b"sig2"), Seen::First);
        assert_eq!(g.len(), 3);
    }

    #[test]
    fn client_and_signature_do_not_run_together() {
        let g = ReplayGuard::new(Duration::from_secs(300), 1 << 20, "test");
        assert_eq!(g.first_use("ab", b"c"), Seen::First);
        assert_eq!(g.first_use("a", b"bc"), Seen::First);
    }

    #[test]
    fn a_signature_is_remembered_for_its_lifetime_then_forgotten() {
        let life = Duration::from_secs(120);
        let g = ReplayGuard::with_lifetime(life, 1 << 20, "test");
        let t0 = g.start;
        assert_eq!(g.first_use_at(t0, "a", b"s"), Seen::First);
        // Still a replay at the very end of its lifetime.
        assert_eq!(g.first_use_at(t0 + life, "a", b"s"), Seen::Replay);
        // Forgotten one slot (lifetime / 12) after that, with its whole slot.
        let later = t0 + life + life / SLOTS + Duration::from_millis(1);
        assert_eq!(g.first_use_at(later, "a", b"s"), Seen::First);
        assert_eq!(
            g.len(),
            1,
            "the expired slot's entry was dropped, the new one kept"
        );
    }

    #[test]
    fn a_full_guard_refuses_new_signatures_and_forgets_none() {
        // 16 shards × 4 entries.
        let g = ReplayGuard::with_lifetime(Duration::from_secs(60), 64 * ENTRY_BYTES, "test");
        assert_eq!(g.capacity(), 64);
        let t0 = g.start;
        let mut accepted = Vec::new();
        let mut full = 0;
        for i in 0..1000u32 {
            match g.first_use_at(t0, "a", &i.to_be_bytes()) {
                Seen::First => accepted.push(i),
                Seen::Full => full += 1,
                Seen::Replay => panic!("{i} was never used"),
            }
        }
        assert_eq!(accepted.len(), 64, "every shard filled to its share");
        assert_eq!(full, 1000 - 64);
        assert_eq!(g.refused_full(), 1000 - 64);
        // Nothing accepted was forgotten to make room: each is still a replay.
        for i in &accepted {
            assert_eq!(g.first_use_at(t0, "a", &i.to_be_bytes()), Seen::Replay);
        }
        // Once their lifetime has passed there is room again.
        let later = t0 + Duration::from_secs(61) + Duration::from_secs(60) / SLOTS;
        assert_eq!(g.first_use_at(later, "a", b"new"), Seen::First);
    }
}
