//! The quote store: issued quotes by id, each usable once until it expires (moka, per-entry expiry).
//!
//! [`QuoteStore::consume`] is atomic: of any number of concurrent calls for one quote exactly one
//! gets it; later calls get [`FxError::QuoteConsumed`], calls after the lifetime
//! [`FxError::QuoteExpired`]. Expired and consumed ids are remembered for a grace period so those
//! answers stay precise; after it the id is forgotten ([`FxError::QuoteNotFound`]).
//! The store is for the pre-payment window only: the payment journal keeps the consumed quote
//! (its rate is needed again for refunds).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::FxError;
use super::quote::{Quote, QuoteId};
use crate::time::{Clock, elapsed, format_rfc3339};

/// How long an expired or consumed quote is still recognised: 10 minutes.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(600);

/// The longest any quote is held, whatever its lifetime says.
const MAX_HOLD: Duration = Duration::from_secs(7 * 86_400);

struct Slot {
    quote: Arc<Quote>,
    consumed: AtomicBool,
}

struct UntilExpiry {
    clock: Arc<dyn Clock>,
    grace: Duration,
}

impl moka::Expiry<QuoteId, Arc<Slot>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _id: &QuoteId,
        slot: &Arc<Slot>,
        _created_at: Instant,
    ) -> Option<Duration> {
        let left = elapsed(self.clock.now(), slot.quote.expires_at);
        // Clamped: moka refuses expiry times beyond 1000 years.
        Some(left.saturating_add(self.grace).min(MAX_HOLD))
    }
}

/// Bytes counted per quote beyond the quote itself (moka's entry bookkeeping, the slot's `Arc`s,
/// the shared rate source name): an allowance, checked against RSS in the soak.
pub const QUOTE_OVERHEAD: usize = 320;

/// What one stored quote weighs against the store's byte bound.
fn quote_weight(_id: &QuoteId, _slot: &Arc<Slot>) -> u32 {
    let bytes = std::mem::size_of::<Quote>() + std::mem::size_of::<Slot>() + QUOTE_OVERHEAD;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// Issued quotes, single use.
pub struct QuoteStore {
    /// foldhash: quote ids are ours (random); moka rehashes every key as it evicts once full.
    quotes: moka::sync::Cache<QuoteId, Arc<Slot>, foldhash::fast::RandomState>,
    clock: Arc<dyn Clock>,
}

impl QuoteStore {
    /// A store holding at most `max_bytes` of quotes (`QUOTE_OVERHEAD` plus the quote's size each; the least recently
    /// used go first once full), remembering used and expired ones for [`DEFAULT_GRACE`].
    pub fn new(clock: Arc<dyn Clock>, max_bytes: u64) -> Self {
        Self::with_grace(clock, max_bytes, DEFAULT_GRACE)
    }

    /// As [`QuoteStore::new`], with another grace period.
    pub fn with_grace(clock: Arc<dyn Clock>, max_bytes: u64, grace: Duration) -> Self {
        let quotes = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(quote_weight)
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .expire_after(UntilExpiry {
                clock: Arc::clone(&clock),
                grace,
            })
            .build_with_hasher(foldhash::fast::RandomState::default());
        QuoteStore { quotes, clock }
    }

    /// Stores `quote` and hands it back shared.
    pub fn insert(&self, quote: Quote) -> Arc<Quote> {
        let quote = Arc::new(quote);
        self.quotes.insert(
            quote.id,
            Arc::new(Slot {
                quote: Arc::clone(&quote),
                consumed: AtomicBool::new(false),
            }),
        );
        quote
    }

    /// The quote if it is still usable (not used, not expired), without using it.
    pub fn get(&self, id: &QuoteId) -> Result<Arc<Quote>, FxError> {
        let slot = self.usable_slot(id)?;
        if slot.consumed.load(Ordering::Acquire) {
            return Err(FxError::QuoteConsumed { id: id.to_string() });
        }
        Ok(Arc::clone(&slot.quote))
    }

    /// Uses the quote: succeeds once, and only before it expires.
    pub fn consume(&self, id: &QuoteId) -> Result<Arc<Quote>, FxError> {
        let slot = self.usable_slot(id)?;
        if slot.consumed.swap(true, Ordering::AcqRel) {
            return Err(FxError::QuoteConsumed { id: id.to_string() });
        }
        Ok(Arc::clone(&slot.quote))
    }

    /// Quotes held (used and expired ones within their grace period included); approximate.
    pub fn len(&self) -> u64 {
        self.quotes.run_pending_tasks();
        self.quotes.entry_count()
    }

    /// Whether the store holds no quote.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn usable_slot(&self, id: &QuoteId) -> Result<Arc<Slot>, FxError> {
        let slot = self
            .quotes
            .get(id)
            .ok_or_else(|| FxError::QuoteNotFound { id: id.to_string() })?;
        if slot.quote.is_expired_at(self.clock.now()) {
            return Err(FxError::QuoteExpired {
                id: id.to_string(),
                expired_at: format_rfc3339(slot.quote.expires_at),
            });
        }
        Ok(slot)
    }
}
