//! Store-and-forward reversals.
//!
//! Once a 0200 may have reached the acquirer, any failure (timeout, connection lost, unusable answer)
//! makes the payment's outcome *unknown* and a reversal is queued here: first sent as 0400, then
//! repeated as 0401 with exponential backoff until a 0410 arrives, up to a bound after which the
//! reversal is flagged for manual review. Every attempt and its result is recorded.
//!
//! The queue sits behind [`ReversalStore`] so the durable payment journal can implement it;
//! [`MemoryReversalStore`] is the in-memory implementation. The link (`link/saf.rs`) drives the attempts.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use super::message::ReversalReason;

/// Identifies a queued reversal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ReversalId(pub u64);

/// Where a reversal stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ReversalState {
    /// Not yet acknowledged; attempts continue.
    Pending,
    /// A 0410 arrived (any response code: the acquirer has seen the reversal).
    Acknowledged {
        /// DE39 of the 0410.
        code: String,
    },
    /// The attempt bound was reached without a 0410: a person must look.
    ManualReview,
}

/// Result of one transmission of a 0400/0401.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result", content = "detail")]
pub enum AttemptResult {
    /// The 0410 arrived with this DE39.
    Acknowledged(String),
    /// Sent; no 0410 within the deadline.
    NoAnswer,
    /// Sent; the connection dropped before the 0410.
    ConnectionLost,
    /// Could not be sent (link down): counted, retried.
    NotSent(String),
    /// Something other than a usable 0410 came back.
    Unusable(String),
    /// A 0410 arrived after the attempt's deadline (recorded when it arrives).
    LateAcknowledged(String),
}

/// One transmission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// 1 for the 0400, 2.. for the 0401 repeats.
    pub number: u32,
    /// `0400` or `0401`.
    pub mti: String,
    /// Milliseconds since the Unix epoch when it was sent.
    pub at_unix_ms: u64,
    /// What happened.
    pub result: AttemptResult,
}

/// What is needed to queue a reversal.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct NewReversal {
    /// Why.
    pub reason: ReversalReason,
    /// The encoded 0400 (without frame); repeats change only its MTI.
    pub request: Vec<u8>,
    /// DE11 of the original 0200.
    pub original_stan: String,
    /// DE37 of the original 0200.
    pub original_rrn: String,
}

impl std::fmt::Debug for NewReversal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewReversal")
            .field("reason", &self.reason)
            .field("request", &String::from_utf8_lossy(&self.request))
            .field("original_stan", &self.original_stan)
            .field("original_rrn", &self.original_rrn)
            .finish()
    }
}

/// A queued reversal with its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReversalRecord {
    /// Id.
    pub id: ReversalId,
    /// What was queued.
    #[serde(flatten)]
    pub reversal: NewReversal,
    /// Current state.
    pub state: ReversalState,
    /// Every transmission, in order.
    pub attempts: Vec<Attempt>,
    /// DE39 of responses to the original 0200 that arrived after the reversal started; recorded,
    /// never acted on (a late approval does not make the payment approved).
    pub late_responses: Vec<String>,
}

impl serde::Serialize for ReversalReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            ReversalReason::Timeout => "timeout",
            ReversalReason::ConnectionLost => "connection_lost",
            ReversalReason::UnusableAnswer => "unusable_answer",
            ReversalReason::Cancelled => "cancelled",
        })
    }
}

/// The store failed (ours).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No such reversal.
    #[error("reversal {0:?} not found")]
    NotFound(ReversalId),
    /// The backing store failed.
    #[error("reversal store: {0}")]
    Backend(String),
}

/// The store-and-forward queue. Implemented in memory here and by the durable journal later.
///
/// Contract: `enqueue` is durable before it returns (the wallet is told "unknown" right after);
/// `resolve` changes only a Pending reversal; `pending` returns what a restarted link must resume.
/// Methods are called from async tasks (including the link's reader when a late response arrives), so
/// they must return quickly; a durable implementation batches or hands its fsync to a blocking pool.
pub trait ReversalStore: Send + Sync + 'static {
    /// Queues a reversal (state Pending).
    fn enqueue(&self, reversal: NewReversal) -> Result<ReversalId, StoreError>;
    /// Appends an attempt.
    fn record_attempt(&self, id: ReversalId, attempt: Attempt) -> Result<(), StoreError>;
    /// Moves a Pending reversal to `state`; returns false (and changes nothing) if it was already
    /// resolved.
    fn resolve(&self, id: ReversalId, state: ReversalState) -> Result<bool, StoreError>;
    /// Records a late response to the original request.
    fn note_late_response(&self, id: ReversalId, code: String) -> Result<(), StoreError>;
    /// One reversal.
    fn get(&self, id: ReversalId) -> Result<Option<ReversalRecord>, StoreError>;
    /// Whether this process may transmit the reversal now (default: yes). A store shared by
    /// several processes says no once another owns it (it took the reversal over); the link
    /// asks before every attempt and stops driving one it does not own.
    fn may_drive(&self, _id: ReversalId) -> bool {
        true
    }
    /// Every Pending reversal (resumed at link start).
    fn pending(&self) -> Result<Vec<ReversalRecord>, StoreError>;
    /// Reserves `count` message numbers of UTC day `day` (days since 1970-01-01) for `scope` (a
    /// link's DE32 + DE41): returns the first, counting from 1; the block is `[first, first +
    /// count)`. Each call's block follows the previous one of the same scope and day, also across
    /// restarts for a durable store, so STANs (DE11, and the RRNs built from them) stay unique per
    /// link per UTC day when the process restarts.
    fn reserve_stans(&self, scope: &str, day: u64, count: u32) -> Result<u64, StoreError>;
}

/// In-memory [`ReversalStore`]; lost on restart (the durable journal replaces it).
#[derive(Debug, Default)]
pub struct MemoryReversalStore {
    inner: Mutex<BTreeMap<ReversalId, ReversalRecord>>,
    changes: Changes,
    /// Scope → (day, next message number).
    stans: Mutex<BTreeMap<String, (u64, u64)>>,
}

#[derive(Debug)]
struct Changes(tokio::sync::watch::Sender<u64>);

impl Default for Changes {
    fn default() -> Self {
        Changes(tokio::sync::watch::Sender::new(0))
    }
}

impl MemoryReversalStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<ReversalId, ReversalRecord>) -> T,
    ) -> Result<T, StoreError> {
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| StoreError::Backend("lock poisoned".to_owned()))?;
        let out = f(&mut guard);
        drop(guard);
        self.changes.0.send_modify(|n| *n += 1);
        Ok(out)
    }

    /// Every reversal, in id order.
    pub fn all(&self) -> Vec<ReversalRecord> {
        self.inner
            .lock()
            .map(|g| g.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Waits (at most `limit`) until reversal `id` satisfies `pred`; returns the record if it did.
    pub async fn wait_for(
        &self,
        id: ReversalId,
        limit: Duration,
        pred: impl Fn(&ReversalRecord) -> bool,
    ) -> Option<ReversalRecord> {
        let mut rx = self.changes.0.subscribe();
        let check = || self.get(id).ok().flatten().filter(|r| pred(r));
        tokio::time::timeout(limit, async {
            loop {
                if let Some(r) = check() {
                    return Some(r);
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await
        .ok()
        .flatten()
    }
}

impl ReversalStore for MemoryReversalStore {
    fn enqueue(&self, reversal: NewReversal) -> Result<ReversalId, StoreError> {
        self.with(|m| {
            let id = ReversalId(m.keys().next_back().map_or(1, |k| k.0 + 1));
            m.insert(
                id,
                ReversalRecord {
                    id,
                    reversal,
                    state: ReversalState::Pending,
                    attempts: Vec::new(),
                    late_responses: Vec::new(),
                },
            );
            id
        })
    }

    fn record_attempt(&self, id: ReversalId, attempt: Attempt) -> Result<(), StoreError> {
        self.with(|m| m.get_mut(&id).map(|r| r.attempts.push(attempt)))?
            .ok_or(StoreError::NotFound(id))
    }

    fn resolve(&self, id: ReversalId, state: ReversalState) -> Result<bool, StoreError> {
        self.with(|m| {
            m.get_mut(&id).map(|r| {
                let pending = r.state == ReversalState::Pending;
                if pending {
                    r.state = state;
                }
                pending
            })
        })?
        .ok_or(StoreError::NotFound(id))
    }

    fn note_late_response(&self, id: ReversalId, code: String) -> Result<(), StoreError> {
        self.with(|m| m.get_mut(&id).map(|r| r.late_responses.push(code)))?
            .ok_or(StoreError::NotFound(id))
    }

    fn get(&self, id: ReversalId) -> Result<Option<ReversalRecord>, StoreError> {
        let g = self
            .inner
            .lock()
            .map_err(|_| StoreError::Backend("lock poisoned".to_owned()))?;
        Ok(g.get(&id).cloned())
    }

    fn pending(&self) -> Result<Vec<ReversalRecord>, StoreError> {
        let g = self
            .inner
            .lock()
            .map_err(|_| StoreError::Backend("lock poisoned".to_owned()))?;
        Ok(g.values()
            .filter(|r| r.state == ReversalState::Pending)
            .cloned()
            .collect())
    }

    fn reserve_stans(&self, scope: &str, day: u64, count: u32) -> Result<u64, StoreError> {
        let mut g = self
            .stans
            .lock()
            .map_err(|_| StoreError::Backend("lock poisoned".to_owned()))?;
        Ok(next_block(
            g.entry(scope.to_owned()).or_insert((day, 1)),
            day,
            count,
        ))
    }
}

/// Takes `count` numbers from `slot` (its day and next number) on `day`; returns the first.
pub(crate) fn next_block(slot: &mut (u64, u64), day: u64, count: u32) -> u64 {
    if slot.0 != day {
        *slot = (day, 1);
    }
    let first = slot.1;
    slot.1 = first.saturating_add(u64::from(count));
    first
}

/// When to repeat and when to give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait for a 0410 after each transmission.
    pub answer_timeout: Duration,
    /// Pause after the first unanswered attempt; doubles after each further one.
    pub first_backoff: Duration,
    /// Longest pause.
    pub max_backoff: Duration,
    /// Transmissions (0400 + 0401s) before manual review.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            answer_timeout: Duration::from_secs(10),
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// Pause after attempt `n` (1-based) failed: first_backoff × 2^(n-1), capped.
    pub fn backoff(&self, n: u32) -> Duration {
        let factor = 1u32
            .checked_shl(n.saturating_sub(1).min(31))
            .unwrap_or(u32::MAX);
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new() -> NewReversal {
        NewReversal {
            reason: ReversalReason::Timeout,
            request: b"0400".to_vec(),
            original_stan: "000001".to_owned(),
            original_rrn: "632510000001".to_owned(),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        let got: Vec<u64> = (1..=6).map(|n| p.backoff(n).as_millis() as u64).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.backoff(200), Duration::from_millis(1000));
    }

    #[test]
    fn a_resolved_reversal_stays_resolved() {
        let s = MemoryReversalStore::new();
        let id = s.enqueue(new()).unwrap();
        assert_eq!(s.pending().unwrap().len(), 1);
        assert!(
            s.resolve(id, ReversalState::Acknowledged { code: "00".into() })
                .unwrap()
        );
        assert!(!s.resolve(id, ReversalState::ManualReview).unwrap());
        assert_eq!(
            s.get(id).unwrap().unwrap().state,
            ReversalState::Acknowledged { code: "00".into() }
        );
        assert!(s.pending().unwrap().is_empty());
    }

    #[test]
    fn attempts_and_late_responses_are_recorded_in_order() {
        let s = MemoryReversalStore::new();
        let id = s.enqueue(new()).unwrap();
        for (n, mti) in [(1, "0400"), (2, "0401")] {
            s.record_attempt(
                id,
                Attempt {
                    number: n,
                    mti: mti.into(),
                    at_unix_ms: 0,
                    result: AttemptResult::NoAnswer,
                },
            )
            .unwrap();
        }
        s.note_late_response(id, "00".into()).unwrap();
        let r = s.get(id).unwrap().unwrap();
        assert_eq!(
            r.attempts
                .iter()
                .map(|a| a.mti.as_str())
                .collect::<Vec<_>>(),
            ["0400", "0401"]
        );
        assert_eq!(r.late_responses, vec!["00".to_owned()]);
        assert_eq!(
            s.record_attempt(ReversalId(99), r.attempts[0].clone()),
            Err(StoreError::NotFound(ReversalId(99)))
        );
    }
}
