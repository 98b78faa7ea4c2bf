//! Drives one reversal: 0400, then 0401 repeats with exponential backoff until a 0410 arrives or the
//! attempt bound is reached (→ manual review). Every attempt is recorded in the store before the next.
//! Each attempt goes out on any signed-on connection of the pool (the acquirer matches a reversal by
//! DE90 / DE11 / DE41, not by connection), so a dead connection never holds a reversal back.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::{Exchange, LateKind, Route, Shared, UnknownCause};
use crate::acquirer::iso8583::{Message, Mti};
use crate::acquirer::reversal::{Attempt, AttemptResult, ReversalId, ReversalState};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn still_pending(shared: &Shared, id: ReversalId) -> bool {
    let pending = matches!(shared.store.get(id), Ok(Some(r)) if r.state == ReversalState::Pending);
    if pending && !shared.store.may_drive(id) {
        tracing::warn!(
            reversal_id = id.0,
            "reversal owned by another instance now (it took this one's work over): not sent from here"
        );
        return false;
    }
    pending
}

/// Whether an attempt put bytes on the wire (only those count toward the attempt bound).
pub(super) fn transmitted(result: &AttemptResult) -> bool {
    !matches!(result, AttemptResult::NotSent(_))
}

/// Runs the reversal `id` (its 0400 is `request`), `sent` transmissions having been made already.
///
/// The first transmission is the 0400, later ones 0401. Attempts that could not be sent (link down)
/// are recorded and retried but do not use up the bound: only transmissions do.
pub(super) async fn drive(shared: Arc<Shared>, id: ReversalId, request: Message, mut sent: u32) {
    let policy = shared.config.reversal;
    let mut down = shared.shutdown.subscribe();
    let mut failures = 0u32;
    while sent < policy.max_attempts {
        if shared.is_shut_down() || !still_pending(&shared, id) {
            return;
        }
        let mut msg = request.clone();
        if sent > 0 {
            msg.set_mti(Mti::REVERSAL_REPEAT);
        }
        let at_unix_ms = now_ms();
        let deadline = Instant::now() + policy.answer_timeout;
        let result = match shared
            .exchange(
                &msg,
                deadline,
                Route::Any { wait: true },
                LateKind::Reversal,
            )
            .await
        {
            Exchange::Answer(r) if r.mti() == Mti::REVERSAL_RESPONSE => {
                AttemptResult::Acknowledged(r.text(39).unwrap_or("--").to_owned())
            }
            Exchange::Answer(r) => AttemptResult::Unusable(format!("{} instead of 0410", r.mti())),
            Exchange::NotSent(e) => AttemptResult::NotSent(e.to_string()),
            Exchange::Lost(UnknownCause::Timeout, slot) => {
                shared.mark_late(&slot, id);
                AttemptResult::NoAnswer
            }
            Exchange::Lost(_, _) => AttemptResult::ConnectionLost,
        };
        if transmitted(&result) {
            sent += 1;
        }
        let acknowledged = match &result {
            AttemptResult::Acknowledged(code) => Some(code.clone()),
            _ => None,
        };
        tracing::info!(
            reversal_id = id.0,
            attempt = sent.max(1),
            mti = msg.mti().as_str(),
            result = ?result,
            "reversal attempt"
        );
        let number = if transmitted(&result) { sent } else { sent + 1 };
        record(&shared, id, number, msg.mti(), at_unix_ms, result);
        if let Some(code) = acknowledged {
            resolve(&shared, id, ReversalState::Acknowledged { code });
            return;
        }
        if sent >= policy.max_attempts {
            break;
        }
        failures += 1;
        tokio::select! {
            _ = tokio::time::sleep(policy.backoff(failures)) => {}
            _ = super::until(&mut down, true) => return,
        }
    }
    if !shared.is_shut_down() && still_pending(&shared, id) {
        tracing::error!(
            reversal_id = id.0,
            transmissions = policy.max_attempts,
            action = "the reversal bound is reached: ask the acquirer whether the original \
                      authorisation stands, then resolve the payment with `qrbridge admin review`",
            "reversal bound reached without a 0410: MANUAL REVIEW"
        );
        resolve(&shared, id, ReversalState::ManualReview);
    }
}

/// A 0410 arrived after its attempt's deadline: it still acknowledges the reversal (and is
/// recorded), unless another attempt's 0410 already acknowledged it (with a pool, the attempts may
/// have gone out on different connections, so both answers can come back).
pub(super) fn late_acknowledgement(shared: &Shared, id: ReversalId, code: String) {
    let number = match shared.store.get(id) {
        Ok(Some(r)) if matches!(r.state, ReversalState::Acknowledged { .. }) => {
            tracing::debug!(
                reversal_id = id.0,
                "late 0410 for a reversal already acknowledged"
            );
            return;
        }
        Ok(Some(r)) => r.attempts.len() as u32,
        _ => 0,
    };
    record(
        shared,
        id,
        number,
        Mti::REVERSAL_RESPONSE,
        now_ms(),
        AttemptResult::LateAcknowledged(code.clone()),
    );
    resolve(shared, id, ReversalState::Acknowledged { code });
}

fn record(
    shared: &Shared,
    id: ReversalId,
    number: u32,
    mti: Mti,
    at_unix_ms: u64,
    result: AttemptResult,
) {
    let attempt = Attempt {
        number,
        mti: mti.as_str().to_owned(),
        at_unix_ms,
        result,
    };
    if let Err(e) = shared.store.record_attempt(id, attempt) {
        tracing::error!("reversal {id:?}: attempt not recorded: {e}");
    }
}

fn resolve(shared: &Shared, id: ReversalId, state: ReversalState) {
    if let Err(e) = shared.store.resolve(id, state) {
        tracing::error!("reversal {id:?}: not resolved: {e}");
    }
}
