//! The durable reversal queue: the stored form of [`ReversalRecord`] and the
//! [`ReversalStore`](crate::acquirer::reversal::ReversalStore) implementation on [`RedbJournal`].
//!
//! The stored form is our own (not the acquirer's Rust types) so the file format does not change
//! when those types do. Semantics are exactly those of `MemoryReversalStore`: ids count up from 1,
//! `resolve` changes only a Pending reversal, unknown ids are `NotFound`, `pending` is in id order.
//!
//! The trait is synchronous; its writes wait for the group commit (one fsync shared with whatever
//! else is being written, a few milliseconds) on the calling thread. The link calls them only when
//! an outcome is unknown, never on the approval path.

use serde::{Deserialize, Serialize};

use super::JournalError;
use super::codec;
use super::embedded::RedbJournal;
use super::writer::{Done, Op};
use crate::acquirer::message::ReversalReason;
use crate::acquirer::reversal::{
    Attempt, AttemptResult, NewReversal, ReversalId, ReversalRecord, ReversalState, ReversalStore,
    StoreError,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub(crate) enum StoredState {
    Pending,
    Acknowledged { code: String },
    ManualReview,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "result", content = "detail")]
pub(crate) enum StoredResult {
    Acknowledged(String),
    NoAnswer,
    ConnectionLost,
    NotSent(String),
    Unusable(String),
    LateAcknowledged(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredAttempt {
    number: u32,
    mti: String,
    at_unix_ms: u64,
    #[serde(flatten)]
    result: StoredResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredReversal {
    pub(crate) id: u64,
    reason: String,
    #[serde(with = "codec::hex")]
    request: Vec<u8>,
    original_stan: String,
    original_rrn: String,
    #[serde(flatten)]
    pub(crate) state: StoredState,
    attempts: Vec<StoredAttempt>,
    late_responses: Vec<String>,
}

fn reason_name(r: ReversalReason) -> &'static str {
    match r {
        ReversalReason::Timeout => "timeout",
        ReversalReason::ConnectionLost => "connection_lost",
        ReversalReason::UnusableAnswer => "unusable_answer",
        ReversalReason::Cancelled => "cancelled",
    }
}

fn reason_parse(s: &str) -> Option<ReversalReason> {
    [
        ReversalReason::Timeout,
        ReversalReason::ConnectionLost,
        ReversalReason::UnusableAnswer,
        ReversalReason::Cancelled,
    ]
    .into_iter()
    .find(|r| reason_name(*r) == s)
}

impl StoredState {
    pub(crate) fn of(s: ReversalState) -> Self {
        match s {
            ReversalState::Pending => StoredState::Pending,
            ReversalState::Acknowledged { code } => StoredState::Acknowledged { code },
            ReversalState::ManualReview => StoredState::ManualReview,
        }
    }

    fn into_state(self) -> ReversalState {
        match self {
            StoredState::Pending => ReversalState::Pending,
            StoredState::Acknowledged { code } => ReversalState::Acknowledged { code },
            StoredState::ManualReview => ReversalState::ManualReview,
        }
    }
}

impl StoredAttempt {
    pub(crate) fn of(a: Attempt) -> Self {
        StoredAttempt {
            number: a.number,
            mti: a.mti,
            at_unix_ms: a.at_unix_ms,
            result: match a.result {
                AttemptResult::Acknowledged(c) => StoredResult::Acknowledged(c),
                AttemptResult::NoAnswer => StoredResult::NoAnswer,
                AttemptResult::ConnectionLost => StoredResult::ConnectionLost,
                AttemptResult::NotSent(c) => StoredResult::NotSent(c),
                AttemptResult::Unusable(c) => StoredResult::Unusable(c),
                AttemptResult::LateAcknowledged(c) => StoredResult::LateAcknowledged(c),
            },
        }
    }

    fn into_attempt(self) -> Attempt {
        Attempt {
            number: self.number,
            mti: self.mti,
            at_unix_ms: self.at_unix_ms,
            result: match self.result {
                StoredResult::Acknowledged(c) => AttemptResult::Acknowledged(c),
                StoredResult::NoAnswer => AttemptResult::NoAnswer,
                StoredResult::ConnectionLost => AttemptResult::ConnectionLost,
                StoredResult::NotSent(c) => AttemptResult::NotSent(c),
                StoredResult::Unusable(c) => AttemptResult::Unusable(c),
                StoredResult::LateAcknowledged(c) => AttemptResult::LateAcknowledged(c),
            },
        }
    }
}

impl StoredReversal {
    pub(crate) fn new(id: u64, r: NewReversal) -> Self {
        StoredReversal {
            id,
            reason: reason_name(r.reason).to_owned(),
            request: r.request,
            original_stan: r.original_stan,
            original_rrn: r.original_rrn,
            state: StoredState::Pending,
            attempts: Vec::new(),
            late_responses: Vec::new(),
        }
    }

    pub(crate) fn record_attempt(&mut self, a: Attempt) {
        self.attempts.push(StoredAttempt::of(a));
    }

    pub(crate) fn note_late(&mut self, code: String) {
        self.late_responses.push(code);
    }

    /// The acquirer's form; an unknown reason is corruption of the record stored under `key`.
    pub(crate) fn into_record(self, key: &[u8]) -> Result<ReversalRecord, JournalError> {
        let reason = reason_parse(&self.reason).ok_or_else(|| JournalError::Corrupt {
            kind: super::RecordKind::Reversal,
            key: codec::key_text(key),
            detail: format!("unknown reversal reason {:?}", self.reason),
        })?;
        Ok(ReversalRecord {
            id: ReversalId(self.id),
            reversal: NewReversal {
                reason,
                request: self.request,
                original_stan: self.original_stan,
                original_rrn: self.original_rrn,
            },
            state: self.state.into_state(),
            attempts: self
                .attempts
                .into_iter()
                .map(StoredAttempt::into_attempt)
                .collect(),
            late_responses: self.late_responses,
        })
    }
}

fn store_error(e: JournalError) -> StoreError {
    match e {
        JournalError::NotFound { key, .. } => key
            .parse::<u64>()
            .map(|n| StoreError::NotFound(ReversalId(n)))
            .unwrap_or_else(|_| StoreError::Backend(format!("reversal {key} not found"))),
        other => StoreError::Backend(other.to_string()),
    }
}

fn unexpected(d: &Done) -> StoreError {
    StoreError::Backend(format!("journal writer answered {d:?}"))
}

impl ReversalStore for RedbJournal {
    fn enqueue(&self, reversal: NewReversal) -> Result<ReversalId, StoreError> {
        match self
            .write_blocking(Op::Enqueue(reversal))
            .map_err(store_error)?
        {
            Done::Reversal(id) => Ok(ReversalId(id)),
            other => Err(unexpected(&other)),
        }
    }

    fn record_attempt(&self, id: ReversalId, attempt: Attempt) -> Result<(), StoreError> {
        match self
            .write_blocking(Op::Attempt(id.0, attempt))
            .map_err(store_error)?
        {
            Done::Unit => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    fn resolve(&self, id: ReversalId, state: ReversalState) -> Result<bool, StoreError> {
        match self
            .write_blocking(Op::Resolve(id.0, state))
            .map_err(store_error)?
        {
            Done::Flag(changed) => Ok(changed),
            other => Err(unexpected(&other)),
        }
    }

    fn note_late_response(&self, id: ReversalId, code: String) -> Result<(), StoreError> {
        match self
            .write_blocking(Op::Late(id.0, code))
            .map_err(store_error)?
        {
            Done::Unit => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    fn get(&self, id: ReversalId) -> Result<Option<ReversalRecord>, StoreError> {
        self.reversal(id.0).map_err(store_error)
    }

    fn pending(&self) -> Result<Vec<ReversalRecord>, StoreError> {
        self.pending_reversals().map_err(store_error)
    }

    fn may_drive(&self, id: ReversalId) -> bool {
        match self.owns_reversal(id.0) {
            Ok(mine) => mine,
            Err(e) => {
                // Unknown: keep driving (a reversal sent twice is a repeat the acquirer expects;
                // one not sent is a payment left open).
                tracing::warn!("reversal {}: reading its owner: {e}", id.0);
                true
            }
        }
    }

    fn reserve_stans(&self, scope: &str, day: u64, count: u32) -> Result<u64, StoreError> {
        match self
            .write_blocking(Op::Stans(scope.to_owned(), day, count))
            .map_err(store_error)?
        {
            Done::Reversal(first) => Ok(first),
            other => Err(unexpected(&other)),
        }
    }
}
