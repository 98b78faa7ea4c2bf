//! The pipeline's in-memory stores, each bounded by bytes and by time (DESIGN §3 "Bounded").
//!
//! ```text
//! decodes    decode id → decoded merchant      ≤ MemoryBounds::decodes_bytes,   decode_ttl
//! quoted     quote id → the merchant it prices ≤ MemoryBounds::quoted_bytes,    quote lifetime + 60 s
//! approvals  payment id → its approved 0200    ≤ MemoryBounds::approvals_bytes, cancel_window
//! ```
//!
//! Each entry weighs what it holds on the heap plus a fixed allowance for the cache's own
//! bookkeeping ([`ENTRY_OVERHEAD`]); moka evicts least-recently-used entries once a store's weight
//! passes its bound (LRU, not moka's default TinyLFU admission: a fresh decode id must always be
//! admitted, it is about to be quoted). What is evicted early answers as expired would
//! (ORDER_NOT_FOUND for a decode or quote id; a cancel rebuilds its 0200 from the journal).

use std::mem::size_of;
use std::sync::Arc;
use std::time::Duration;

use moka::policy::EvictionPolicy;
use moka::sync::Cache;

use crate::acquirer::message::Approval;
use crate::journal::PaymentId;

use super::decode::Decoded;

/// Bytes counted per entry for moka's own structures (hash table slot, access-order and
/// write-order deque nodes, timer node, the entry's `Arc`s): an allowance, measured against RSS
/// in the soak (`scripts/load --soak`), not an exact figure.
pub const ENTRY_OVERHEAD: usize = 256;

/// Byte bounds of the pipeline's in-memory stores. Entries also expire by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBounds {
    /// Decoded merchants under their decode id.
    pub decodes_bytes: u64,
    /// The decoded merchant of each quote id.
    pub quoted_bytes: u64,
    /// Approvals kept for a cancel inside the cancel window.
    pub approvals_bytes: u64,
}

impl Default for MemoryBounds {
    fn default() -> Self {
        MemoryBounds {
            decodes_bytes: 48 << 20,
            quoted_bytes: 16 << 20,
            approvals_bytes: 16 << 20,
        }
    }
}

fn weight(bytes: usize) -> u32 {
    u32::try_from(bytes.saturating_add(ENTRY_OVERHEAD)).unwrap_or(u32::MAX)
}

fn opt(s: Option<&String>) -> usize {
    s.map_or(0, String::capacity)
}

/// What a decoded merchant holds.
pub fn decoded_bytes(d: &Decoded) -> usize {
    let r = &d.routed;
    size_of::<Decoded>()
        + d.client_id.capacity()
        + d.name.capacity()
        + d.city.capacity()
        + d.country.capacity()
        + d.mcc.capacity()
        + opt(d.reference_label.as_ref())
        + r.acquirer.capacity()
        + r.merchant_id.capacity()
        + opt(r.terminal_id.as_ref())
        + r.scheme.capacity()
        + r.matched.capacity()
}

/// What an approval holds (its 0200 above all).
pub fn approval_bytes(a: &Approval) -> usize {
    size_of::<Approval>() + opt(a.auth_code.as_ref()) + a.rrn.capacity() + a.request.heap_bytes()
}

/// The caches' hasher: foldhash, seeded per cache. Once a cache is full, every insert evicts, and
/// moka's hash table rehashes all its keys whenever a tenth of its slots are tombstones; with the
/// standard SipHash that was a fifth of the server's CPU in a decode load run (perf, issue 16) and
/// made decodes slower than before the caches were bounded. The keys are ids the gateway made
/// (random), and a lookup with a wallet's id inserts nothing, so a fast seeded hash is enough.
pub type Hasher = foldhash::fast::RandomState;

/// Decoded merchants by id (decode ids, quote ids).
pub type Merchants = Cache<String, Arc<Decoded>, Hasher>;

/// Approvals by payment id.
pub type Approvals = Cache<PaymentId, Approval, Hasher>;

/// Decoded merchants by id (decode ids, quote ids).
pub fn merchants(max_bytes: u64, ttl: Duration) -> Merchants {
    Cache::builder()
        .max_capacity(max_bytes)
        .weigher(|k: &String, d: &Arc<Decoded>| weight(k.capacity() + decoded_bytes(d)))
        .eviction_policy(EvictionPolicy::lru())
        .time_to_live(ttl)
        .build_with_hasher(Hasher::default())
}

/// Approvals by payment id.
pub fn approvals(max_bytes: u64, ttl: Duration) -> Approvals {
    Cache::builder()
        .max_capacity(max_bytes)
        .weigher(|_: &PaymentId, a: &Approval| weight(size_of::<PaymentId>() + approval_bytes(a)))
        .eviction_policy(EvictionPolicy::lru())
        .time_to_live(ttl)
        .build_with_hasher(Hasher::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::Routed;
    use crate::payment::CodeType;

    fn decoded(i: usize) -> Arc<Decoded> {
        Arc::new(Decoded {
            client_id: "wallet-my".to_owned(),
            code_type: CodeType::Dynamic,
            routed: Routed {
                acquirer: "sg".to_owned(),
                merchant_id: format!("M{i:08}"),
                terminal_id: None,
                scheme: "PayNow".to_owned(),
                matched: "SG.PAYNOW".to_owned(),
            },
            name: "KOPI STALL".to_owned(),
            city: "SINGAPORE".to_owned(),
            country: "SG".to_owned(),
            mcc: "5812".to_owned(),
            amount: None,
            reference_label: Some("INV-42".to_owned()),
            fee: None,
        })
    }

    #[test]
    fn the_decode_store_stays_within_its_bytes_and_keeps_the_newest() {
        let bound: u64 = 256 << 10;
        let cache = merchants(bound, Duration::from_secs(600));
        let one = u64::from(weight(32 + decoded_bytes(&decoded(0))));
        assert!(one > 300, "an entry weighs what it holds: {one}");
        for i in 0..20_000 {
            cache.insert(format!("decode-id-{i:022}"), decoded(i));
        }
        cache.run_pending_tasks();
        assert!(
            cache.weighted_size() <= bound,
            "{} > {bound}",
            cache.weighted_size()
        );
        assert!(cache.entry_count() <= bound / one + 1);
        // LRU: the freshest decode ids are admitted (TinyLFU would refuse new keys once full).
        for i in 19_990..20_000 {
            assert!(cache.contains_key(&format!("decode-id-{i:022}")), "{i}");
        }
        assert!(!cache.contains_key(&format!("decode-id-{:022}", 0)));
    }

    #[test]
    fn entries_expire_by_time_too() {
        let cache = merchants(1 << 20, Duration::from_millis(50));
        cache.insert("d".to_owned(), decoded(1));
        assert!(cache.contains_key("d"));
        std::thread::sleep(Duration::from_millis(120));
        assert!(cache.get("d").is_none());
    }
}
