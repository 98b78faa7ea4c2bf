//! The rate cache: a moka cache of per-pair rates in front of one [`RateSource`].
//!
//! - **TTL**: a fetched rate is fresh for `ttl`. After that the next lookup refreshes it
//!   synchronously (one caller per pair does the work; moka serialises computations per key).
//! - **Refresh ahead**: a lookup in the last `refresh_ahead` of the TTL returns the cached rate at
//!   once and refreshes it on a background thread, so a busy pair never waits for the source.
//! - **No stampede**: concurrent misses for a pair share one load (`try_get_with`); all pairs share
//!   one table fetch (the last table is kept and reused while fresh), so a cold start fetches the
//!   feed once, not once per pair or per caller.
//! - **Last good rate**: when a refresh fails the cached rate keeps serving, and the source is not
//!   asked again before `retry_after` (a dead source does not add a timeout to every lookup).
//! - **Staleness**: a rate whose *as-of* time (the feed's date, not our fetch time) is older than
//!   `max_age` is refused with [`FxError::RateStale`], whatever the cache holds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moka::ops::compute::{CompResult, Op};

use super::FxError;
use super::rate::{Pair, Rate, RateTable};
use super::source::RateSource;
use crate::time::{Clock, elapsed};

/// The longest a pair nobody asks for stays cached.
const MAX_IDLE: Duration = Duration::from_secs(30 * 86_400);

/// Timings of a [`RateCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long a fetched rate is fresh.
    pub ttl: Duration,
    /// How long before the end of the TTL a lookup triggers a background refresh.
    pub refresh_ahead: Duration,
    /// The staleness limit: the oldest as-of time we quote from.
    pub max_age: Duration,
    /// After a failed fetch, how long before the source is asked again.
    pub retry_after: Duration,
    /// The most pairs kept.
    pub capacity: u64,
}

impl CacheConfig {
    /// For a once-a-day reference feed such as the ECB's: fresh for an hour, refreshed five minutes
    /// ahead, quotable for 4 days after the feed's date (a weekend plus one holiday).
    pub fn daily_feed() -> Self {
        CacheConfig {
            ttl: Duration::from_secs(3600),
            refresh_ahead: Duration::from_secs(300),
            max_age: Duration::from_secs(4 * 86_400),
            retry_after: Duration::from_secs(30),
            capacity: 10_000,
        }
    }

    /// For a live feed: fresh for 30 s, refreshed 10 s ahead, quotable for 5 minutes.
    pub fn live_feed() -> Self {
        CacheConfig {
            ttl: Duration::from_secs(30),
            refresh_ahead: Duration::from_secs(10),
            max_age: Duration::from_secs(300),
            retry_after: Duration::from_secs(5),
            capacity: 10_000,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self::daily_feed()
    }
}

/// A cached, quotable source of rates. Cheap to clone (shared state).
#[derive(Clone)]
pub struct RateCache {
    inner: Arc<Inner>,
}

struct Inner {
    source: Box<dyn RateSource>,
    source_name: Arc<str>,
    clock: Arc<dyn Clock>,
    config: CacheConfig,
    pairs: moka::sync::Cache<Pair, Arc<Cached>>,
    table: Mutex<TableState>,
    fetches: AtomicU64,
}

/// The last table fetched (shared by all pairs) and the last failure.
#[derive(Default)]
struct TableState {
    last: Option<(Arc<RateTable>, SystemTime)>,
    failure: Option<(SystemTime, FxError)>,
}

/// One pair's cached rate.
struct Cached {
    rate: Rate,
    fetched_at: SystemTime,
    /// No background refresh before this time (nanoseconds since the epoch): set by the one caller
    /// that starts a refresh, so concurrent lookups start one, and a failing source is retried
    /// only every `retry_after`.
    refresh_not_before: AtomicU64,
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl RateCache {
    /// A cache in front of `source`, reading time from `clock`.
    pub fn new(
        source: impl RateSource + 'static,
        clock: Arc<dyn Clock>,
        config: CacheConfig,
    ) -> Self {
        let source_name: Arc<str> = source.name().into();
        let pairs = moka::sync::Cache::builder()
            .max_capacity(config.capacity)
            // Pairs nobody asked for during a whole staleness period are dropped. Clamped: moka
            // panics on idle times beyond 1000 years, and "no staleness limit" is Duration::MAX.
            .time_to_idle(config.max_age.max(config.ttl).min(MAX_IDLE))
            .build();
        RateCache {
            inner: Arc::new(Inner {
                source: Box::new(source),
                source_name,
                clock,
                config,
                pairs,
                table: Mutex::new(TableState::default()),
                fetches: AtomicU64::new(0),
            }),
        }
    }

    /// The rate for `pair` (merchant currency → payer currency): from the cache when fresh,
    /// refreshed as described in the module docs; an error when no rate can be had or the best
    /// one is stale.
    pub fn rate(&self, pair: Pair) -> Result<Rate, FxError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let cached = match inner.pairs.get(&pair) {
            Some(cached) => cached,
            None => inner
                .pairs
                .try_get_with(pair, || inner.load(pair, None, now).map(Arc::new))
                .map_err(|e| (*e).clone())?,
        };
        let cached = self.freshen(pair, cached, now);
        inner.check_age(&cached, now)
    }

    /// How many times the source was asked for a table (successfully or not).
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// The source's name.
    pub fn source_name(&self) -> &str {
        &self.inner.source_name
    }

    /// The timings in force.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    fn freshen(&self, pair: Pair, cached: Arc<Cached>, now: SystemTime) -> Arc<Cached> {
        let inner = &self.inner;
        let age = elapsed(cached.fetched_at, now);
        if age >= inner.config.ttl {
            // Expired: refresh now (one caller per pair; on failure keep the last good rate and
            // let `check_age` decide whether it may still serve).
            inner
                .refresh(pair, cached.fetched_at, now)
                .unwrap_or(cached)
        } else {
            if age.saturating_add(inner.config.refresh_ahead) >= inner.config.ttl {
                self.refresh_in_background(pair, &cached, now);
            }
            cached
        }
    }

    fn refresh_in_background(&self, pair: Pair, cached: &Arc<Cached>, now: SystemTime) {
        let now_ns = nanos(now);
        let not_before = cached.refresh_not_before.load(Ordering::Acquire);
        if now_ns < not_before {
            return;
        }
        let next = nanos(
            now.checked_add(self.inner.config.retry_after)
                .unwrap_or(now),
        );
        if cached
            .refresh_not_before
            .compare_exchange(not_before, next, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return; // another caller won the race and refreshes
        }
        let inner = Arc::clone(&self.inner);
        let observed = cached.fetched_at;
        // If the thread cannot be started, the next lookup after `retry_after` tries again.
        let _ = std::thread::Builder::new()
            .name("fx-rate-refresh".into())
            .spawn(move || {
                let now = inner.clock.now();
                inner.refresh(pair, observed, now);
            });
    }
}

impl Inner {
    /// Replaces `pair`'s entry fetched at `observed` by a freshly loaded one. moka runs one
    /// computation per key at a time, so concurrent refreshers of a pair queue up and the later
    /// ones find the entry already replaced. Returns the entry now cached (the old one when the
    /// load failed), or `None` if the pair is no longer cached.
    fn refresh(&self, pair: Pair, observed: SystemTime, now: SystemTime) -> Option<Arc<Cached>> {
        let result = self
            .pairs
            .entry(pair)
            .and_compute_with(|current| match current {
                Some(c) if c.value().fetched_at > observed => Op::Nop,
                _ => match self.load(pair, Some(observed), now) {
                    Ok(fresh) => Op::Put(Arc::new(fresh)),
                    Err(_) => Op::Nop,
                },
            });
        match result {
            CompResult::Inserted(e) | CompResult::ReplacedWith(e) | CompResult::Unchanged(e) => {
                Some(e.into_value())
            }
            CompResult::Removed(_) | CompResult::StillNone(_) => None,
        }
    }

    fn state(&self) -> MutexGuard<'_, TableState> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A table fresher than `newer_than` (any fresh one when `None`): the shared last table if it
    /// qualifies, else one fetch under the lock (so concurrent callers share it).
    fn table(
        &self,
        newer_than: Option<SystemTime>,
        now: SystemTime,
    ) -> Result<(Arc<RateTable>, SystemTime), FxError> {
        let mut state = self.state();
        if let Some((table, at)) = &state.last
            && elapsed(*at, now) < self.config.ttl
            && newer_than.is_none_or(|t| *at > t)
        {
            return Ok((Arc::clone(table), *at));
        }
        if let Some((at, error)) = &state.failure
            && elapsed(*at, now) < self.config.retry_after
        {
            return Err(error.clone());
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.source.fetch() {
            Ok(table) => {
                let table = Arc::new(table);
                state.last = Some((Arc::clone(&table), now));
                state.failure = None;
                Ok((table, now))
            }
            Err(error) => {
                state.failure = Some((now, error.clone()));
                Err(error)
            }
        }
    }

    fn load(
        &self,
        pair: Pair,
        newer_than: Option<SystemTime>,
        now: SystemTime,
    ) -> Result<Cached, FxError> {
        let (table, fetched_at) = self.table(newer_than, now)?;
        Ok(Cached {
            rate: table.rate(pair)?,
            fetched_at,
            refresh_not_before: AtomicU64::new(0),
        })
    }

    fn check_age(&self, cached: &Cached, now: SystemTime) -> Result<Rate, FxError> {
        let age = elapsed(cached.rate.as_of, now);
        if age > self.config.max_age {
            let last_error = self.state().failure.as_ref().map(|(_, e)| e.to_string());
            return Err(FxError::stale(
                cached.rate.pair,
                &cached.rate.source,
                cached.rate.as_of,
                age,
                self.config.max_age,
                last_error,
            ));
        }
        Ok(cached.rate.clone())
    }
}
