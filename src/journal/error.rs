//! [`JournalError`]: everything the journal can refuse or fail at, with the record and transition
//! concerned. Logical refusals (illegal transition, refund beyond the original, duplicate request)
//! change nothing; storage failures mean the write was not acknowledged and may be retried.

use super::ids::{PaymentId, RefundId};
use super::payment::PaymentState;
use super::refund::RefundState;

/// Which kind of record an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A payment.
    Payment,
    /// A refund.
    Refund,
    /// A queued reversal.
    Reversal,
    /// An idempotency record.
    Idempotency,
    /// A notice in the outbox.
    Notice,
    /// The journal's own metadata.
    Meta,
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecordKind::Payment => "payment",
            RecordKind::Refund => "refund",
            RecordKind::Reversal => "reversal",
            RecordKind::Idempotency => "idempotency record",
            RecordKind::Notice => "notice",
            RecordKind::Meta => "journal metadata",
        })
    }
}

/// Why the journal refused or failed a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// No such record.
    #[error("{kind} {key} not found")]
    NotFound {
        /// The kind of record.
        kind: RecordKind,
        /// Its key, as text.
        key: String,
    },
    /// A record with this request id already exists (another payment or refund was made under it).
    #[error("{kind} for request {key} already exists")]
    Duplicate {
        /// The kind of record.
        kind: RecordKind,
        /// Client id and request id.
        key: String,
    },
    /// A shared quote (several instances on one journal) is no longer there to be used: a
    /// payment used it already, or it expired (wallet result QUOTE_CONSUMED).
    #[error("quote {quote_id} was used already or has expired")]
    QuoteUsed {
        /// The quote.
        quote_id: String,
    },
    /// A quote this write should consume from the shared journal is not there at all: it
    /// expired and was purged, or (PostgreSQL, spec/journal.md §12.3) the database lost it in a
    /// crash before its unflushed share reached the disk. Nothing was paid with it (wallet
    /// result ORDER_NOT_FOUND: quote again).
    #[error(
        "quote {quote_id} is not in the shared journal (expired and purged, or lost in a \
         database crash before it was flushed): quote again"
    )]
    QuoteNotShared {
        /// The quote.
        quote_id: String,
    },
    /// The payment is not in a state where `event` applies.
    #[error("payment {payment}: {event} is not allowed in state {from}")]
    IllegalTransition {
        /// The payment.
        payment: PaymentId,
        /// Its current state.
        from: PaymentState,
        /// What was attempted.
        event: &'static str,
    },
    /// The refund is not in a state where `event` applies.
    #[error("refund {refund}: {event} is not allowed in state {from}")]
    IllegalRefundTransition {
        /// The refund.
        refund: RefundId,
        /// Its current state.
        from: RefundState,
        /// What was attempted.
        event: &'static str,
    },
    /// The payment cannot be refunded in its state (only SUCCESS and PARTIALLY_REFUNDED can).
    #[error("payment {payment} cannot be refunded in state {state}")]
    NotRefundable {
        /// The payment.
        payment: PaymentId,
        /// Its state.
        state: PaymentState,
    },
    /// The refund would take the refunds of a payment beyond its original amount.
    #[error(
        "payment {payment}: refund of {requested} minor units exceeds the {remaining} minor units left"
    )]
    RefundExceedsPayment {
        /// The payment.
        payment: PaymentId,
        /// The refund asked for, merchant minor units.
        requested: u64,
        /// What is left to refund (original minus non-failed refunds), merchant minor units.
        remaining: u64,
    },
    /// A daily limit of the customer would be exceeded (wallet result AMOUNT_EXCEED_LIMIT).
    #[error("daily {limit} limit: {used} used + {requested} requested exceeds {max}")]
    LimitExceeded {
        /// `count` or `amount`.
        limit: &'static str,
        /// Already used today.
        used: u64,
        /// This payment's share (1 for count, its merchant minor units for amount).
        requested: u64,
        /// The limit.
        max: u64,
    },
    /// The idempotency record is not in flight (never begun, or already completed).
    #[error("request {key} is not in flight")]
    NotInFlight {
        /// The idempotency key, as text.
        key: String,
    },
    /// A value given to the journal is unusable (zero refund, wrong currency, ...).
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// What was given.
        what: &'static str,
        /// Why it is refused.
        detail: String,
    },
    /// A stored record does not decode: the file was damaged or written by an incompatible version.
    #[error("corrupt {kind} at key {key}: {detail}")]
    Corrupt {
        /// The kind of record.
        kind: RecordKind,
        /// Its key, as text (hex for binary keys).
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// The journal file has a format version this build does not know.
    #[error("journal format {found} is not supported (this build reads {supported})")]
    UnsupportedFormat {
        /// The version in the file.
        found: u64,
        /// The version this build writes.
        supported: u64,
    },
    /// The storage engine failed (I/O, lock, commit). Nothing in the batch was acknowledged.
    #[error("journal storage failed during {op}: {detail}")]
    Storage {
        /// What was being done.
        op: &'static str,
        /// The engine's message.
        detail: String,
    },
    /// The journal's writer has stopped (the journal is closing or its thread died).
    #[error("journal writer is not running")]
    Closed,
}

impl JournalError {
    /// The request conflicts with the record's current state: an illegal transition, a duplicate
    /// request id, a refund beyond the original, a refund of an unrefundable payment.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            JournalError::Duplicate { .. }
                | JournalError::IllegalTransition { .. }
                | JournalError::IllegalRefundTransition { .. }
                | JournalError::NotRefundable { .. }
                | JournalError::RefundExceedsPayment { .. }
                | JournalError::NotInFlight { .. }
                | JournalError::QuoteUsed { .. }
                | JournalError::QuoteNotShared { .. }
        )
    }

    /// The refund would exceed the payment's original amount (wallet result REFUND_AMOUNT_EXCEED).
    pub fn is_refund_exceeded(&self) -> bool {
        matches!(self, JournalError::RefundExceedsPayment { .. })
    }

    /// A customer's daily limit would be exceeded.
    pub fn is_limit_exceeded(&self) -> bool {
        matches!(self, JournalError::LimitExceeded { .. })
    }

    /// The record does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, JournalError::NotFound { .. })
    }

    /// A stored record or the file itself is unreadable: a person must look.
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self,
            JournalError::Corrupt { .. } | JournalError::UnsupportedFormat { .. }
        )
    }

    /// The write was not acknowledged because storage failed or the journal is closed; nothing was
    /// promised, and the caller may retry or fail the request.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, JournalError::Storage { .. } | JournalError::Closed)
    }

    pub(crate) fn storage(op: &'static str, e: impl std::fmt::Display) -> Self {
        JournalError::Storage {
            op,
            detail: e.to_string(),
        }
    }
}
