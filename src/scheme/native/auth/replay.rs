//! Replay guard: every accepted signature is remembered for longer than the time window, so a
//! captured request cannot be sent again while its `request-time` is still acceptable.

use std::time::Duration;

use moka::policy::EvictionPolicy;
use moka::sync::Cache;

/// Remembers accepted signatures (keyed by client id and signature bytes).
pub struct ReplayGuard {
    seen: Cache<(String, Vec<u8>), ()>,
}

impl std::fmt::Debug for ReplayGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayGuard")
            .field("remembered", &self.seen.entry_count())
            .finish()
    }
}

impl ReplayGuard {
    /// A guard for a `window` of ± `window`: entries live `2 × window` plus a minute, which covers
    /// the whole span in which the same `request-time` stays acceptable. `capacity` bounds memory;
    /// size it above the peak request rate × that lifetime (LRU: a fresh entry is always admitted).
    pub fn new(window: Duration, capacity: u64) -> Self {
        let ttl = window
            .saturating_mul(2)
            .saturating_add(Duration::from_secs(60));
        ReplayGuard {
            seen: Cache::builder()
                .max_capacity(capacity)
                .eviction_policy(EvictionPolicy::lru())
                .time_to_live(ttl)
                .build(),
        }
    }

    /// Records the signature; `false` when it was already seen (a replay). Atomic per key.
    pub fn first_use(&self, client_id: &str, signature: &[u8]) -> bool {
        self.seen
            .entry((client_id.to_owned(), signature.to_vec()))
            .or_insert(())
            .is_fresh()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_of_a_signature_is_a_replay() {
        let g = ReplayGuard::new(Duration::from_secs(300), 1000);
        assert!(g.first_use("a", b"sig"));
        assert!(!g.first_use("a", b"sig"));
        assert!(g.first_use("b", b"sig"), "per client");
    }
}
