//! One idempotency helper for the operations that change money: pay, refund and cancel.
//!
//! ```text
//! begin(client, kind, request id, body hash)
//!   New           → run the operation → complete (answer stored) | abandon (nothing happened)
//!                                                 | keep in flight (journaled: recovery ends it)
//!   Replay        → the answer rebuilt from the journaled record, as it stands now
//!   Inconsistent  → REPEAT_REQ_INCONSISTENT
//!   InFlight      → RETRY_LATER
//! ```
//!
//! A replay is never the stored text turned back into an error: every operation answers a
//! repeat from its record (the payment, or the refund) with the same typed mapping it answers the
//! first time with, so a U answered once turns into the final state on a later repeat, and the three
//! operations replay alike. The stored response marks the request done (and keeps what was sent,
//! for an operator).

use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;

use serde::Serialize;

use crate::journal::{Begin, BodyHash, IdempotencyKey, RequestKind, StoredResponse};
use crate::payment::{Answer, ApiError, Handled, RequestContext};

use super::{Gateway, errors};

/// How a first request ended, for its idempotency record.
pub(super) enum Ran<T> {
    /// Answered: the answer is stored and replayed (from the record) for repeats.
    Answered(Answer<T>),
    /// Answered, but the request may be made again to try again (nothing was changed for good:
    /// a cancel refused now may be allowed later): the key is released.
    Retryable(Answer<T>),
    /// Refused before anything was journaled: the key is released.
    Refused(ApiError),
    /// Failed after the operation was journaled: the key stays in flight and recovery ends it.
    Journaled(ApiError),
}

/// The stored form of an answer: its result code and message beside the body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stored<'a, T> {
    result_code: &'static str,
    result_message: String,
    body: &'a T,
}

pub(super) fn store<T: Serialize>(answer: &Answer<T>) -> StoredResponse {
    let (code, message) = match &answer.outcome {
        None => ("SUCCESS", String::new()),
        Some(e) => (e.code().as_str(), e.to_string()),
    };
    let status = answer
        .outcome
        .as_ref()
        .map_or(200, |e| e.code().http_status().as_u16());
    stored(status, code, message, &answer.body)
}

/// The stored form of an answer given as its parts.
pub(super) fn stored<T: Serialize>(
    status: u16,
    result_code: &'static str,
    result_message: String,
    body: &T,
) -> StoredResponse {
    let stored = Stored {
        result_code,
        result_message,
        body,
    };
    StoredResponse {
        status,
        body: serde_json::to_vec(&stored).unwrap_or_default(),
    }
}

/// A wallet request id held by one request of this process (see [`Gateway::claim`]).
pub(super) struct Claim<'a> {
    held: &'a Mutex<HashSet<IdempotencyKey>>,
    key: IdempotencyKey,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        super::lock(self.held).remove(&self.key);
    }
}

impl Gateway {
    /// Holds `key` for one request of this process until the claim is dropped; `None` while
    /// another request holds it. A pay reads its idempotency record instead of writing it
    /// first (the record is written with the intent, `journal::OpenPayment`), so two
    /// concurrent copies of one request are told apart here: the second is RETRY_LATER
    /// instead of finding its quote consumed. At most one entry per request in progress.
    pub(super) fn claim(&self, key: &IdempotencyKey) -> Option<Claim<'_>> {
        let held = &self.inner.claims;
        super::lock(held).insert(key.clone()).then(|| Claim {
            held,
            key: key.clone(),
        })
    }

    /// Runs `first` once per (client, `kind`, `request_id`); repeats get `replay`, which rebuilds
    /// the answer from the journaled record.
    pub(super) async fn once<T, F, R>(
        &self,
        ctx: &RequestContext,
        kind: RequestKind,
        request_id: &str,
        first: F,
        replay: R,
    ) -> Handled<T>
    where
        T: Serialize,
        F: Future<Output = Ran<T>>,
        R: AsyncFnOnce() -> Handled<T>,
    {
        let j = &self.inner.journal;
        let key = IdempotencyKey::new(ctx.client_id.as_str(), kind, request_id);
        let hash = BodyHash::of(ctx.body_sha256.as_bytes());
        match j.begin(key.clone(), hash).await.map_err(errors::journal)? {
            Begin::New => {}
            Begin::Replay(_) => return replay().await,
            Begin::Inconsistent => {
                return Err(ApiError::RepeatRequestInconsistent {
                    request_id: request_id.to_owned(),
                });
            }
            Begin::InFlight => {
                return Err(ApiError::RetryLater {
                    request_id: request_id.to_owned(),
                });
            }
        }
        let what = kind.as_str();
        match first.await {
            Ran::Answered(answer) => {
                if let Err(e) = j.complete(key, store(&answer)).await {
                    tracing::error!("{what} {request_id}: storing the answer: {e}");
                }
                Ok(answer)
            }
            Ran::Retryable(answer) => {
                if let Err(e) = j.abandon(key).await {
                    tracing::error!("{what} {request_id}: releasing the request id: {e}");
                }
                Ok(answer)
            }
            Ran::Refused(error) => {
                if let Err(e) = j.abandon(key).await {
                    tracing::error!("{what} {request_id}: releasing the request id: {e}");
                }
                Err(error)
            }
            Ran::Journaled(error) => Err(error),
        }
    }
}
