//! Durable payment journal: payments and their state machine, refunds, the reversal queue,
//! idempotency records and the notice outbox, behind the [`Journal`] trait; embedded default
//! [`RedbJournal`] on redb.
//!
//! In: payment intents ([`NewPayment`], with a [`QuoteSnapshot`] and [`Routing`]), payment and
//! refund events, refund requests, idempotency keys with body hashes, reversals (through
//! [`ReversalStore`](crate::acquirer::reversal::ReversalStore)). Out: [`Payment`], [`Refund`],
//! [`Begin`] (new / replay / inconsistent / in flight), [`Unresolved`] for start-up recovery; the
//! notice outbox ([`OutboxNotice`]): notices written by [`NoticeRules`] in the transaction of the
//! state change that causes them, read through [`Snapshot`], their attempts recorded with
//! [`RedbJournal::notice_attempt`].
//! Per-customer [`DailyLimits`] are checked atomically with the intent.
//! Errors: [`JournalError`] names the record and the transition; ask `is_conflict()`,
//! `is_refund_exceeded()`, `is_limit_exceeded()`, `is_not_found()`, `is_corrupt()`,
//! `is_unavailable()`.
//! Spec: `spec/journal.md`.
//!
//! Every write returns only once it is committed durably (redb, `Durability::Immediate`).
//! Concurrent writes share one commit (group commit, `writer.rs`): one writer thread drains the
//! queue into a single transaction, so durability does not cap throughput. Async callers await a
//! oneshot and never block the runtime; the `ReversalStore` methods (a synchronous trait) block
//! their thread for one commit.
//!
//! ```text
//! mod.rs        the Journal trait, Unresolved
//! critical.rs   a payment's two writes on the critical path: OpenPayment, FinishPayment
//! payment.rs    Payment, PaymentState, PaymentEvent: the state machine (pure)
//! refund.rs     Refund, RefundState, RefundEvent, payer_share (pure)
//! idempotency.rs keys, body hashes, Begin, stored responses
//! reversal.rs   stored reversals; ReversalStore for RedbJournal
//! outbox.rs     Origin (scheme + reference), the notice outbox, NoticeRules
//! lease.rs      instances and their leases on a shared journal; shared decodes and quotes
//! ids.rs        PaymentId, RefundId (UUIDv7), CustomerId (redacted)
//! codec.rs      record encoding (version byte + JSON), key layout
//! writer.rs     tables; the group-commit writer thread and every write op
//! embedded.rs   RedbJournal: open, snapshots (reads), the trait impl
//! error.rs      JournalError
//! ```
//!
//! ```
//! # use qrbridge::journal::*;
//! # use qrbridge::money::{Amount, Currency};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("qrbridge-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let journal = RedbJournal::open(JournalConfig::new(dir.join("journal.redb")))?;
//! let rt = tokio::runtime::Builder::new_current_thread().build()?;
//! rt.block_on(async {
//!     let key = IdempotencyKey::new("wallet-1", RequestKind::Payment, "req-1");
//!     let hash = BodyHash::of(br#"{"quoteId":"..."}"#);
//!     assert_eq!(journal.begin(key.clone(), hash).await?, Begin::New);
//!     assert_eq!(journal.begin(key.clone(), hash).await?, Begin::InFlight);
//!     let other = BodyHash::of(b"{}");
//!     assert_eq!(journal.begin(key, other).await?, Begin::Inconsistent);
//!     Ok::<_, JournalError>(())
//! })?;
//! # drop(journal);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

#![deny(
    clippy::float_arithmetic,
    clippy::float_cmp,
    clippy::cast_precision_loss
)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) mod codec;
mod critical;
mod embedded;
mod error;
pub mod events;
mod idempotency;
mod ids;
mod kv;
mod lease;
mod outbox;
mod payment;
pub mod postgres;
mod refund;
mod reversal;
mod writer;

pub use codec::{OLDEST_RECORD_VERSION, RECORD_VERSION};
pub use critical::{DebitOrder, FinishPayment, OpenPayment, Opened, Render};
pub use embedded::{
    DEFAULT_CACHE_BYTES, FORMAT_VERSION, JournalConfig, JournalStats, PURGE_LIMIT, RedbJournal,
    Snapshot,
};
pub use error::{JournalError, RecordKind};
pub use idempotency::{Begin, BodyHash, IdempotencyKey, RequestKind, StoredResponse};
pub use ids::{CustomerId, PaymentId, RefundId};
pub use lease::{Instance, InstanceRecord, Lease, Owners, SharedKey};
pub use outbox::{
    NATIVE_SCHEME, NoticeDraft, NoticeKind, NoticeOutcome, NoticeRules, NoticeState, Origin,
    OutboxNotice, Retry,
};
pub use payment::{
    AcquirerData, DailyLimits, DailyUsage, NewPayment, Payment, PaymentEvent, PaymentState,
    QuoteSnapshot, ReversalLink, ReversalPurpose, Routing, StateChange, utc_day,
};
pub use refund::{
    Initiator, MerchantRefundRecorded, NewMerchantRefund, NewRefund, Refund, RefundEvent,
    RefundState, payer_share,
};

use crate::acquirer::reversal::ReversalRecord;

/// A journal operation in progress. Boxed so [`Journal`] can be used as `dyn Journal`.
pub type JournalFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, JournalError>> + Send + 'a>>;

/// What recovery must act on at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unresolved {
    /// Payments in QUOTED (nothing sent: mark failed), SENT or UNKNOWN (queue a reversal), or
    /// REVERSING (make sure the reversal is queued), in id order (by creation millisecond).
    pub payments: Vec<Payment>,
    /// Refunds in PENDING or UNKNOWN, in id order (by creation millisecond).
    pub refunds: Vec<Refund>,
    /// Wallet requests begun and never completed or abandoned.
    pub in_flight: Vec<IdempotencyKey>,
    /// Reversals still pending (what `ReversalStore::pending` returns), in id order.
    pub reversals: Vec<ReversalRecord>,
}

impl Unresolved {
    /// Whether there is nothing to recover.
    pub fn is_empty(&self) -> bool {
        self.payments.is_empty()
            && self.refunds.is_empty()
            && self.in_flight.is_empty()
            && self.reversals.is_empty()
    }
}

/// The durable journal. Every write resolves only after it is durably committed; a refused write
/// (an `Err` that is not `is_unavailable()`) changed nothing.
///
/// A write is queued when its future is first polled; once queued it is carried out even if the
/// future is dropped (a request timeout does not withdraw it), so after a timeout read the record
/// back to learn what happened.
///
/// Every engine is also the acquirer links' durable reversal store ([`ReversalStore`]: the
/// store-and-forward queue and STAN blocks) and keeps the notice outbox: the pipeline and the
/// deliverer hold an `Arc<dyn Journal>`, so a second engine plugs in behind this trait.
pub trait Journal: crate::acquirer::reversal::ReversalStore + Send + Sync + 'static {
    /// Records a payment intent (state QUOTED) before anything is sent. One payment per
    /// (client id, request id): a second is [`JournalError::Duplicate`]. The customer's daily
    /// limits are checked and used in the same transaction ([`JournalError::LimitExceeded`]).
    fn record_intent(&self, new: NewPayment) -> JournalFuture<'_, Payment>;
    /// Records a payment order (state ORDERED) for a wallet that debits its user first and pays
    /// later (Alipay+ MPP): one per (client id, request id), daily limits checked and used as
    /// for an intent; the notice the rules make for it ([`NoticeRules::order`], an inquiry) is
    /// committed with it, due at `inquire_at_ms`.
    fn record_order(&self, new: NewPayment, inquire_at_ms: u64) -> JournalFuture<'_, Payment>;
    /// The wallet debited its user for an ORDERED payment: ORDERED → SENT and the request in
    /// flight, in one transaction ([`DebitOrder`]); finished by [`Journal::finish_payment`]. A
    /// request seen before is [`Opened::Repeat`] (nothing written); no order is `NotFound`; an
    /// order no longer ORDERED is `IllegalTransition`.
    fn debit_order(&self, debit: DebitOrder) -> JournalFuture<'_, Opened>;
    /// The first of a payment's two durable writes on the critical path (spec/journal.md §6a):
    /// the wallet request in flight, the intent (as [`Journal::record_intent`]: duplicate and
    /// daily limits checked) and SENT with the 0200's trace, in one transaction. A request seen
    /// before is [`Opened::Repeat`] and writes nothing; a refused intent writes nothing either.
    fn open_payment(&self, open: OpenPayment) -> JournalFuture<'_, Opened>;
    /// The second: the outcome event(s) and the request completed with the answer rendered from
    /// the new record, in one transaction. The request must be in flight
    /// ([`JournalError::NotInFlight`]); any refused event refuses the whole write.
    fn finish_payment(&self, finish: FinishPayment) -> JournalFuture<'_, Payment>;
    /// What a wallet request's idempotency record says to a request with `body`, or `None`
    /// without one. A read: nothing is stored (a pay looks before it consumes its quote).
    fn request<'a>(
        &'a self,
        key: &'a IdempotencyKey,
        body: BodyHash,
    ) -> JournalFuture<'a, Option<Begin>>;
    /// Applies a state-machine event to a payment.
    fn update_payment(&self, id: PaymentId, event: PaymentEvent) -> JournalFuture<'_, Payment>;
    /// Reserves a refund (state PENDING) if the payment's non-failed refunds plus this one stay
    /// within the original amount; computes its payer amount at the original quote.
    fn reserve_refund(&self, new: NewRefund) -> JournalFuture<'_, Refund>;
    /// Journals a refund the merchant made at its acquirer (SUCCESS at once, the payment's
    /// refunded total and state, and a `RefundCredit` notice to the payment's wallet, in one
    /// transaction). One per (acquirer, reference): a repeat returns the first with `repeat`.
    /// Refused like a wallet refund (`NotFound`, `NotRefundable`, `RefundExceedsPayment`,
    /// `Invalid` for the currency) and `Duplicate` for a reference reused with other content.
    fn record_merchant_refund(
        &self,
        new: NewMerchantRefund,
    ) -> JournalFuture<'_, MerchantRefundRecorded>;
    /// The payment whose 0200 on `acquirer`'s link carried `reference`: its RRN (DE37), or its
    /// STAN ‖ DE7 (16 digits, as an advice's DE90 names the original).
    fn payment_by_acquirer_ref<'a>(
        &'a self,
        acquirer: &'a str,
        reference: &'a str,
    ) -> JournalFuture<'a, Option<Payment>>;
    /// Applies an event to a refund (and to its payment's refunded total and state).
    fn update_refund(&self, id: RefundId, event: RefundEvent) -> JournalFuture<'_, Refund>;
    /// Starts a wallet request, or says why not (replay, inconsistent, in flight).
    fn begin(&self, key: IdempotencyKey, body: BodyHash) -> JournalFuture<'_, Begin>;
    /// Stores the response of a request begun with [`Journal::begin`].
    fn complete(&self, key: IdempotencyKey, response: StoredResponse) -> JournalFuture<'_, ()>;
    /// Forgets an in-flight request that had no effect, so the wallet may retry it; false if
    /// there was none.
    fn abandon(&self, key: IdempotencyKey) -> JournalFuture<'_, bool>;
    /// Removes completed idempotency records older than the retention; returns how many (at
    /// most [`PURGE_LIMIT`] per call: call again while it returns the limit).
    fn purge_expired(&self) -> JournalFuture<'_, usize>;
    /// A payment.
    fn payment(&self, id: PaymentId) -> JournalFuture<'_, Option<Payment>>;
    /// The payment made for a wallet's payment request.
    fn payment_by_request<'a>(
        &'a self,
        client_id: &'a str,
        request_id: &'a str,
    ) -> JournalFuture<'a, Option<Payment>>;
    /// A refund.
    fn refund(&self, id: RefundId) -> JournalFuture<'_, Option<Refund>>;
    /// The refund made for a wallet's refund request.
    fn refund_by_request<'a>(
        &'a self,
        client_id: &'a str,
        request_id: &'a str,
    ) -> JournalFuture<'a, Option<Refund>>;
    /// Every refund of a payment, in id order (UUIDv7: by creation millisecond; refunds made in the
    /// same millisecond in no particular order).
    fn refunds_of(&self, payment: PaymentId) -> JournalFuture<'_, Vec<Refund>>;
    /// What a customer used of their daily limits on a UTC day ([`utc_day`]).
    fn daily_usage<'a>(
        &'a self,
        client_id: &'a str,
        customer: &'a CustomerId,
        currency: crate::money::Currency,
        day: u64,
    ) -> JournalFuture<'a, DailyUsage>;
    /// What recovery must act on.
    fn unresolved(&self) -> JournalFuture<'_, Unresolved>;

    // ---- the outbox (§10): notices written with the state change that causes them ----------

    /// Installs the rules that decide, inside each state change's transaction, which notices it
    /// creates (the gateway's; none until installed).
    fn set_notice_rules(&self, rules: Arc<dyn NoticeRules>);
    /// Woken whenever a notice was committed (the deliverer waits on it).
    fn notice_signal(&self) -> Arc<tokio::sync::Notify>;
    /// PENDING notices due at or before `now_ms`, soonest first, at most `limit`.
    fn due_notices(&self, now_ms: u64, limit: usize) -> JournalFuture<'_, Vec<OutboxNotice>>;
    /// When the first PENDING notice after `now_ms` is due, if any.
    fn next_notice_due_after(&self, now_ms: u64) -> JournalFuture<'_, Option<u64>>;
    /// Records the end of one delivery attempt (SENT, NOT_NEEDED, a retry time or PARKED).
    fn notice_attempt<'a>(
        &'a self,
        notice_id: &'a str,
        outcome: NoticeOutcome,
    ) -> JournalFuture<'a, OutboxNotice>;
    /// Puts a PARKED notice back to PENDING, due now (an operator's decision).
    fn requeue_notice<'a>(&'a self, notice_id: &'a str) -> JournalFuture<'a, OutboxNotice>;

    // ---- several instances on one journal (§12, `lease.rs`) --------------------------------

    /// This process's instance on a shared journal (PostgreSQL); `None` when one process owns
    /// the journal (redb), which then has no leases, owners or shared decodes.
    fn instance(&self) -> Option<&Instance>;
    /// What start-up recovery acts on: [`Journal::unresolved`] on redb; on a shared journal only
    /// the records this instance's name owns (others' are taken over when their lease expires).
    fn unresolved_mine(&self) -> JournalFuture<'_, Unresolved>;
    /// Creates or replaces this instance's lease record (a restart under the same name).
    fn register(&self) -> JournalFuture<'_, Lease>;
    /// Renews this instance's lease, or says it was lost.
    fn heartbeat(&self) -> JournalFuture<'_, Lease>;
    /// Removes this instance's lease record (a clean stop): others may take its records at once.
    fn retire(&self) -> JournalFuture<'_, bool>;
    /// Who owns the unresolved records; the instances' lease records.
    fn owners(&self) -> JournalFuture<'_, Owners>;
    /// Takes every unresolved record of `owner` over if its lease record still shows `seen`
    /// (token, seq) — or is still absent — and returns them for recovery; nothing when the owner
    /// proved alive meanwhile.
    fn take_over<'a>(
        &'a self,
        owner: &'a str,
        seen: Option<(String, u64)>,
    ) -> JournalFuture<'a, Unresolved>;
    /// Leases a due PENDING notice to this instance until `until_ms` before it is sent; `None`
    /// when it is not due any more (another instance holds it). On redb: the notice as it is.
    fn claim_notice<'a>(
        &'a self,
        notice_id: &'a str,
        until_ms: u64,
    ) -> JournalFuture<'a, Option<OutboxNotice>>;
    /// Stores a decode or quote for every instance until `expires_at_ms` (durable on return).
    fn share(&self, key: SharedKey, payload: Vec<u8>, expires_at_ms: u64) -> JournalFuture<'_, ()>;
    /// A shared decode or quote not yet expired at `now_ms` (nor consumed, for a quote).
    fn shared<'a>(&'a self, key: &'a SharedKey, now_ms: u64) -> JournalFuture<'a, Option<Vec<u8>>>;
}

/// Milliseconds since the Unix epoch (0 before it, saturating far after it).
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
