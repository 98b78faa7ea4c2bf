//! The two durable writes on a payment's critical path (spec/journal.md §6a).
//!
//! ```text
//! open_payment   idempotency record (in flight) + intent (QUOTED, daily limits) + SENT with the
//!                trace of the 0200 about to leave          ─ one transaction, before the 0200
//! finish_payment the outcome event(s) + the stored answer (the request done)
//!                                                          ─ one transaction, before the answer
//! ```
//!
//! Each is one op of the group-commit writer, so concurrent payments still share their fsyncs;
//! each checks everything before its first write, so a refusal (a repeat, a limit, an illegal
//! transition) writes nothing at all.

use std::fmt;

use super::idempotency::{Begin, BodyHash, IdempotencyKey, StoredResponse};
use super::ids::PaymentId;
use super::payment::{AcquirerData, NewPayment, Payment, PaymentEvent};

/// The first write of a payment: everything that must be durable before its 0200 leaves.
#[derive(Debug, Clone)]
pub struct OpenPayment {
    /// The wallet request (kind `payment`): stored in flight in the same transaction.
    pub request: IdempotencyKey,
    /// SHA-256 of its body.
    pub body: BodyHash,
    /// The intent (recorded as QUOTED, daily limits checked and used).
    pub payment: NewPayment,
    /// The trace of the 0200 about to be handed to the link (STAN, DE7, RRN): the payment is
    /// SENT when the write returns.
    pub sent: AcquirerData,
    /// The quote was shared through the journal (several instances): this write consumes it
    /// (single use across instances) and is refused with [`JournalError::QuoteUsed`] when it was
    /// used or has expired, [`JournalError::QuoteNotShared`] when there is no record of it.
    ///
    /// [`JournalError::QuoteUsed`]: super::JournalError::QuoteUsed
    /// [`JournalError::QuoteNotShared`]: super::JournalError::QuoteNotShared
    pub shared_quote: bool,
}

/// What [`open_payment`](super::Journal::open_payment) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// Recorded: the payment in SENT (its history has QUOTED and SENT), the request in flight.
    Sent(Box<Payment>),
    /// The request was seen before: what [`Begin`] says about it (never `Begin::New`). Nothing
    /// was written.
    Repeat(Begin),
}

/// The stored answer of a request, rendered from the record the same transaction writes (so it
/// says exactly what the wallet is told).
pub struct Render(Box<dyn FnOnce(&Payment) -> StoredResponse + Send>);

impl Render {
    /// Renders with `f`.
    pub fn new(f: impl FnOnce(&Payment) -> StoredResponse + Send + 'static) -> Self {
        Render(Box::new(f))
    }

    pub(crate) fn render(self, p: &Payment) -> StoredResponse {
        (self.0)(p)
    }
}

impl fmt::Debug for Render {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Render(..)")
    }
}

/// The second write of a payment: its outcome and the answer, before the wallet is answered.
#[derive(Debug)]
pub struct FinishPayment {
    /// The payment (in SENT).
    pub id: PaymentId,
    /// The events, applied in order (`Approved`; `Declined`; `NotSent`; `Unknown` then
    /// `Reversing` or `ManualReview`). All or none: one refused event refuses the write.
    pub events: Vec<PaymentEvent>,
    /// The wallet request, completed (must be in flight).
    pub request: IdempotencyKey,
    /// Its answer, from the payment as the events leave it.
    pub answer: Render,
}

/// The first write of a payment order's authorisation (a debits-first scheme, Alipay+ MPP): the
/// wallet debited its user, so the order moves ORDERED → SENT with the trace of the 0200 about to
/// leave, and the wallet's request is stored in flight, in one transaction. It ends with
/// [`FinishPayment`] as a pay does.
#[derive(Debug, Clone)]
pub struct DebitOrder {
    /// The order's request (kind `payment`, the order's request id): stored in flight.
    pub request: IdempotencyKey,
    /// SHA-256 of what the wallet said.
    pub body: BodyHash,
    /// The scheme's reference with the wallet's payment id (replaces the order's), if any.
    pub scheme_ref: Option<String>,
    /// The trace of the 0200 about to be handed to the link.
    pub sent: AcquirerData,
}
