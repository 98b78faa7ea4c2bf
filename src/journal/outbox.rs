//! The notice outbox: what the wallet must still be told, written in the same transaction as the
//! state change that causes it, and the record of every delivery attempt.
//!
//! ```text
//!            ┌── attempt failed, retry at T (attempts + 1, last error) ──┐
//!            ▼                                                            │
//! state change ──► PENDING ───────────────────────────────────────────────┘
//!                     ├── acknowledged by the wallet ────────► SENT
//!                     ├── the client takes no notifications ─► NOT_NEEDED
//!                     └── still failing at the maximum age ──► PARKED   (an operator looks)
//! ```
//!
//! Which state changes create a notice is not the journal's business: the pipeline installs
//! [`NoticeRules`] ([`RedbJournal::set_notice_rules`](super::RedbJournal::set_notice_rules)), and the
//! journal's writer asks them inside the write transaction of every payment and refund event. A
//! notice therefore exists if and only if its state change committed.

use serde::{Deserialize, Serialize};

use super::payment::Payment;
use super::refund::Refund;

/// The scheme of records written before schemes were recorded.
pub const NATIVE_SCHEME: &str = "native";

/// Where a payment or refund request came in: the scheme (notifications go back in it) and what
/// the scheme asked to keep with the record (opaque here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// `native`, `aplus`, `iso20022`.
    pub scheme: String,
    /// The scheme's reference (e.g. a pacs.008 MsgId).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme_ref: Option<String>,
    /// The HTTP request id (`x-request-id`, spec/operations.md §2) of the request that created
    /// the record, to find its log lines. Absent in records from before request ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Default for Origin {
    /// The native scheme without a reference: what records from before schemes decode as.
    fn default() -> Self {
        Origin {
            scheme: NATIVE_SCHEME.to_owned(),
            scheme_ref: None,
            request_id: None,
        }
    }
}

impl Origin {
    /// A request that came in `scheme`.
    pub fn new(scheme: impl Into<String>, scheme_ref: Option<String>) -> Self {
        Origin {
            scheme: scheme.into(),
            scheme_ref,
            request_id: None,
        }
    }

    /// The same, with the HTTP request id that created the record.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }
}

/// Where a notice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NoticeState {
    /// Not yet acknowledged: due at `next_attempt_at_ms`.
    Pending,
    /// The wallet acknowledged it.
    Sent,
    /// The client takes no notifications: nothing was sent and nothing will be.
    NotNeeded,
    /// Still unacknowledged at the maximum age: no more attempts; an operator decides.
    Parked,
}

impl NoticeState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeState::Pending => "PENDING",
            NoticeState::Sent => "SENT",
            NoticeState::NotNeeded => "NOT_NEEDED",
            NoticeState::Parked => "PARKED",
        }
    }
}

impl std::fmt::Display for NoticeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A payment's final state; `event` is the canonical payment response (JSON).
    Payment,
    /// A refund's final state; `event` is the canonical refund response (JSON).
    Refund,
    /// Credit a refund to the payer; `event` is the canonical refund response (JSON).
    RefundCredit,
    /// Ask the wallet for a payment's status; `event` is the canonical payment response (JSON).
    PaymentInquiry,
    /// Ask the wallet to cancel a payment; `event` is the canonical payment response (JSON).
    PaymentCancel,
}

/// What the rules ask the journal to store with a state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeDraft {
    /// The notice id, stable for this state change (the wallet dedupes on it).
    pub notice_id: String,
    /// What it is about.
    pub kind: NoticeKind,
    /// The canonical response the wallet is told, serialised (JSON).
    pub event: String,
}

/// Decides, inside the journal's write transaction, whether a state change creates a notice.
/// Must be pure and quick: it runs on the writer thread.
pub trait NoticeRules: Send + Sync + 'static {
    /// A payment moved from `before` to `after`.
    fn payment(&self, before: &Payment, after: &Payment) -> Option<NoticeDraft>;
    /// A refund moved from `before` to `after`.
    fn refund(&self, before: &Refund, after: &Refund) -> Option<NoticeDraft>;
    /// A refund that started at the merchant was journaled (SUCCESS) against `payment` (as it is
    /// after the refund): the wallet must credit the payer. The journal refuses a merchant refund
    /// for which this makes no notice (the default), so the credit is never silently lost.
    fn refund_credit(&self, _payment: &Payment, _refund: &Refund) -> Option<NoticeDraft> {
        None
    }
    /// A payment order was recorded (ORDERED): the notice to send when its expiry passes
    /// (none by default). It is committed with the order, due at the order's inquiry time.
    fn order(&self, _order: &Payment) -> Option<NoticeDraft> {
        None
    }
}

/// A notice in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxNotice {
    /// The notice id.
    pub notice_id: String,
    /// The scheme it goes back in.
    pub scheme: String,
    /// The wallet client.
    pub client_id: String,
    /// The scheme's reference from the original request.
    #[serde(default)]
    pub scheme_ref: Option<String>,
    /// What it is about.
    pub kind: NoticeKind,
    /// The payment or refund id.
    pub subject: String,
    /// The canonical response (JSON).
    pub event: String,
    /// Where it stands.
    pub state: NoticeState,
    /// Delivery attempts that failed so far.
    pub attempts: u32,
    /// When the next attempt is due (PENDING only), ms since the Unix epoch.
    pub next_attempt_at_ms: u64,
    /// Why the last attempt failed.
    #[serde(default)]
    pub last_error: Option<String>,
    /// When the state change committed, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// Last change, ms since the Unix epoch.
    pub updated_at_ms: u64,
    /// The HTTP request id of the request that created the payment or refund (to find its log
    /// lines); absent in notices from before request ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The end of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeOutcome {
    /// The wallet acknowledged it: SENT.
    Sent,
    /// The client takes no notifications: NOT_NEEDED.
    NotNeeded,
    /// The attempt failed.
    Failed {
        /// Why (no secrets, no payer identifiers).
        error: String,
        /// What next.
        retry: Retry,
    },
}

/// After a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again at this time, ms since the Unix epoch.
    At(u64),
    /// Stop: PARKED.
    Park,
}

/// The due-index key: next attempt time (u64 big-endian) ‖ notice id.
pub(crate) fn due_key(at_ms: u64, notice_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + notice_id.len());
    k.extend_from_slice(&at_ms.to_be_bytes());
    k.extend_from_slice(notice_id.as_bytes());
    k
}

impl OutboxNotice {
    /// The notice after `outcome`, or why it does not apply (only PENDING notices change).
    pub(crate) fn after(&self, outcome: &NoticeOutcome, now_ms: u64) -> Result<Self, String> {
        if self.state != NoticeState::Pending {
            return Err(format!(
                "notice {} is {} and takes no more attempts",
                self.notice_id, self.state
            ));
        }
        let mut next = self.clone();
        next.updated_at_ms = now_ms;
        match outcome {
            NoticeOutcome::Sent => next.state = NoticeState::Sent,
            NoticeOutcome::NotNeeded => next.state = NoticeState::NotNeeded,
            NoticeOutcome::Failed { error, retry } => {
                next.attempts = next.attempts.saturating_add(1);
                next.last_error = Some(error.clone());
                match retry {
                    Retry::At(at) => next.next_attempt_at_ms = *at,
                    Retry::Park => next.state = NoticeState::Parked,
                }
            }
        }
        Ok(next)
    }
}

impl OutboxNotice {
    /// A PARKED notice put back to PENDING, due at `now_ms` (an operator's decision: the wallet's
    /// endpoint is fixed). Its attempts and last error are kept.
    pub(crate) fn requeued(&self, now_ms: u64) -> Result<Self, String> {
        if self.state != NoticeState::Parked {
            return Err(format!(
                "notice {} is {}; only PARKED notices are re-queued",
                self.notice_id, self.state
            ));
        }
        let mut next = self.clone();
        next.state = NoticeState::Pending;
        next.next_attempt_at_ms = now_ms;
        next.updated_at_ms = now_ms;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> OutboxNotice {
        OutboxNotice {
            notice_id: "N-1".to_owned(),
            scheme: "native".to_owned(),
            client_id: "w".to_owned(),
            scheme_ref: None,
            kind: NoticeKind::Payment,
            subject: "p".to_owned(),
            event: "{}".to_owned(),
            state: NoticeState::Pending,
            attempts: 0,
            next_attempt_at_ms: 10,
            last_error: None,
            created_at_ms: 10,
            updated_at_ms: 10,
            request_id: None,
        }
    }

    #[test]
    fn a_failed_attempt_counts_and_reschedules() {
        let n = pending()
            .after(
                &NoticeOutcome::Failed {
                    error: "HTTP 500".to_owned(),
                    retry: Retry::At(2_000),
                },
                1_000,
            )
            .unwrap();
        assert_eq!(
            (n.state, n.attempts, n.next_attempt_at_ms),
            (NoticeState::Pending, 1, 2_000)
        );
        assert_eq!(n.last_error.as_deref(), Some("HTTP 500"));
    }

    #[test]
    fn only_pending_notices_change() {
        let sent = pending().after(&NoticeOutcome::Sent, 5).unwrap();
        assert_eq!(sent.state, NoticeState::Sent);
        assert!(sent.after(&NoticeOutcome::NotNeeded, 6).is_err());
        let parked = pending()
            .after(
                &NoticeOutcome::Failed {
                    error: "x".to_owned(),
                    retry: Retry::Park,
                },
                7,
            )
            .unwrap();
        assert_eq!((parked.state, parked.attempts), (NoticeState::Parked, 1));
        assert!(parked.after(&NoticeOutcome::Sent, 8).is_err());
    }

    #[test]
    fn records_without_an_origin_decode_as_native() {
        #[derive(Deserialize)]
        struct Old {
            #[serde(default)]
            origin: Origin,
        }
        let old: Old = serde_json::from_str("{}").unwrap();
        assert_eq!(old.origin.scheme, "native");
        assert_eq!(old.origin.scheme_ref, None);
    }
}
