//! Group commit: the one thread that writes.
//!
//! Every write is a [`Request`] (an [`Op`] and where to send the answer) on a channel. The writer
//! thread takes the first request, then whatever else is already queued (up to `max_batch`), runs
//! them in order in **one** redb write transaction with [`Durability::Immediate`], commits once,
//! and only then answers each caller. N concurrent writers therefore share one fsync; a lone writer
//! pays one fsync, as it would anyway.
//!
//! Each op checks everything it needs (reads) before it writes, so an op refused for a logical
//! reason (illegal transition, refund too large, ...) leaves the transaction untouched and the
//! rest of the batch commits. A storage failure aborts the whole batch: every caller in it gets
//! the error, and nothing of it was acknowledged. Later ops in a batch see the writes of earlier
//! ones, which is what serialises concurrent refunds and concurrent idempotency `begin`s.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use redb::{Database, Durability, TableDefinition, WriteTransaction};
use ring::rand::SystemRandom;

use super::codec::{self, composite};
use super::critical::{DebitOrder, FinishPayment, OpenPayment};
use super::idempotency::{
    Begin, BodyHash, IdempotencyKey, IdempotencyRecord, IdempotencyState, StoredResponse,
};
use super::ids::{PaymentId, RefundId};
use super::kv::{H, Kv, RedbTables, Tbl};
use super::lease::{
    Instance, InstanceRecord, Lease, SharedKey, shared_expiry_key, shared_value, split_shared,
};
use super::outbox::{
    NoticeDraft, NoticeOutcome, NoticeRules, NoticeState, Origin, OutboxNotice, due_key,
};
use super::payment::{
    DailyUsage, NewPayment, Payment, PaymentEvent, PaymentState, counts_against_limits,
};
use super::refund::{
    Initiator, MerchantRefundRecorded, NewMerchantRefund, NewRefund, Refund, RefundEvent,
    RefundState, payer_share,
};
use super::reversal::{StoredReversal, StoredState};
use super::{JournalError, RecordKind};
use crate::acquirer::reversal::{Attempt, NewReversal, ReversalState};
use crate::money::Amount;
use crate::time::Clock;

type Bytes = &'static [u8];

pub(crate) const PAYMENTS: TableDefinition<Bytes, Bytes> = TableDefinition::new("payments");
pub(crate) const PAYMENT_REQUESTS: TableDefinition<Bytes, Bytes> =
    TableDefinition::new("payment_requests");
pub(crate) const REFUNDS: TableDefinition<Bytes, Bytes> = TableDefinition::new("refunds");
pub(crate) const REFUND_REQUESTS: TableDefinition<Bytes, Bytes> =
    TableDefinition::new("refund_requests");
/// payment id ‖ refund id → ().
pub(crate) const PAYMENT_REFUNDS: TableDefinition<Bytes, ()> =
    TableDefinition::new("payment_refunds");
/// Everything recovery must look at: `P`‖payment id, `R`‖refund id, `I`‖idempotency key,
/// `V`‖reversal id (u64 big-endian) → ().
pub(crate) const OPEN: TableDefinition<Bytes, ()> = TableDefinition::new("open");
pub(crate) const REVERSALS: TableDefinition<u64, Bytes> = TableDefinition::new("reversals");
pub(crate) const IDEMPOTENCY: TableDefinition<Bytes, Bytes> = TableDefinition::new("idempotency");
/// completed-at ms (u64 big-endian) ‖ idempotency key → (): what retention purges, oldest first.
pub(crate) const IDEMPOTENCY_EXPIRY: TableDefinition<Bytes, ()> =
    TableDefinition::new("idempotency_expiry");
/// (client id, customer id, currency, UTC day) → daily usage.
pub(crate) const DAILY_USAGE: TableDefinition<Bytes, Bytes> = TableDefinition::new("daily_usage");
/// notice id → outbox notice.
pub(crate) const NOTICES: TableDefinition<Bytes, Bytes> = TableDefinition::new("notices");
/// next attempt ms (u64 big-endian) ‖ notice id → (): PENDING notices, soonest first.
pub(crate) const NOTICES_DUE: TableDefinition<Bytes, ()> = TableDefinition::new("notices_due");
/// notice id → (): PARKED notices, for operators.
pub(crate) const NOTICES_PARKED: TableDefinition<Bytes, ()> =
    TableDefinition::new("notices_parked");
pub(crate) const META: TableDefinition<&'static str, u64> = TableDefinition::new("meta");
/// (acquirer, acquirer's refund reference) → refund id: merchant refunds, deduplicated.
pub(crate) const MERCHANT_REFUNDS: TableDefinition<Bytes, Bytes> =
    TableDefinition::new("merchant_refunds");
/// (acquirer, RRN of the payment's 0200) and (acquirer, its STAN ‖ DE7) → payment id: how an
/// acquirer's advice (DE90, or an operator with the RRN) finds a payment.
pub(crate) const PAYMENT_REFS: TableDefinition<Bytes, Bytes> = TableDefinition::new("payment_refs");
/// instance name → its lease record (`lease.rs`): who works the journal (shared engines only).
pub(crate) const INSTANCES: TableDefinition<Bytes, Bytes> = TableDefinition::new("instances");
/// `D`‖decode id, `Q`‖quote id → expiry ms (8 bytes big-endian) ‖ payload: decodes and quotes
/// any instance may use (shared engines only).
pub(crate) const SHARED: TableDefinition<Bytes, Bytes> = TableDefinition::new("shared");
/// expiry ms (8 bytes big-endian) ‖ shared key → (): what purge removes, oldest first.
pub(crate) const SHARED_EXPIRY: TableDefinition<Bytes, ()> = TableDefinition::new("shared_expiry");

pub(crate) const OPEN_PAYMENT: u8 = b'P';
pub(crate) const OPEN_REFUND: u8 = b'R';
pub(crate) const OPEN_REQUEST: u8 = b'I';
pub(crate) const OPEN_REVERSAL: u8 = b'V';

const NEXT_REVERSAL: &str = "next_reversal";

pub(crate) fn usage_key(
    client_id: &str,
    customer: &str,
    currency: &str,
    day: u64,
) -> Result<Vec<u8>, JournalError> {
    composite(&[client_id, customer, currency, &day.to_string()])
}

pub(crate) fn open_key(tag: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(rest.len() + 1);
    k.push(tag);
    k.extend_from_slice(rest);
    k
}

/// A write.
#[derive(Debug)]
pub(crate) enum Op {
    Intent(Box<NewPayment>),
    /// A payment order (ORDERED) and its inquiry notice, due at the given ms.
    Order(Box<NewPayment>, u64),
    /// ORDERED → SENT + idempotency in flight (`critical.rs`).
    DebitOrder(Box<DebitOrder>),
    Payment(PaymentId, PaymentEvent),
    /// Idempotency begin + intent + SENT (`critical.rs`).
    OpenPayment(Box<OpenPayment>),
    /// Outcome events + idempotency complete (`critical.rs`).
    FinishPayment(Box<FinishPayment>),
    Refund(NewRefund),
    RefundEvent(RefundId, RefundEvent),
    Begin(IdempotencyKey, BodyHash),
    Complete(IdempotencyKey, StoredResponse),
    Abandon(IdempotencyKey),
    Purge {
        limit: usize,
    },
    Enqueue(NewReversal),
    Attempt(u64, Attempt),
    Resolve(u64, ReversalState),
    Late(u64, String),
    Notice(String, NoticeOutcome),
    Requeue(String),
    /// Message numbers (STANs) for a link scope on a UTC day: `(scope, day, count)`.
    Stans(String, u64, u32),
    /// A refund that started at the merchant (journal §4b).
    MerchantRefund(Box<NewMerchantRefund>),
    /// This instance's lease record, created or replaced (`lease.rs`).
    Register,
    /// This instance's lease renewed, if it is still its own.
    Heartbeat,
    /// Every unresolved record of `owner` becomes this instance's, if the owner's lease record
    /// still shows what the caller saw (token, seq) — or is still absent.
    TakeOver(String, Option<(String, u64)>),
    /// This instance's lease record removed (a clean stop): its records may be taken at once.
    Retire,
    /// A due PENDING notice leased to this instance until `until_ms` (its next attempt time
    /// moves there, so no other instance finds it due meanwhile).
    ClaimNotice(String, u64),
    /// A shared decode or quote: (key, expiry ms, payload).
    Share(Vec<u8>, u64, Vec<u8>),
}

/// What a write produced.
#[derive(Debug)]
pub(crate) enum Done {
    Payment(Box<Payment>),
    /// A payment after each of the states one op moved it through, in order (each is logged).
    Steps(Vec<Payment>),
    Refund(Box<Refund>),
    Begin(Begin),
    Unit,
    Flag(bool),
    Count(usize),
    Reversal(u64),
    Notice(Box<OutboxNotice>),
    MerchantRefund(Box<MerchantRefundRecorded>),
    Lease(Box<Lease>),
    /// `open` keys.
    Keys(Vec<Vec<u8>>),
    MaybeNotice(Option<Box<OutboxNotice>>),
}

impl Done {
    /// The variant's name, for an "unexpected answer" error: formatting the whole answer with
    /// `Debug` before every pick cost each journal write a full rendering of its payment
    /// (issue 16: ≈ 3 % of the gateway's CPU under 64 payment flows).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Done::Payment(_) => "Payment",
            Done::Steps(_) => "Steps",
            Done::Refund(_) => "Refund",
            Done::Begin(_) => "Begin",
            Done::Unit => "Unit",
            Done::Flag(_) => "Flag",
            Done::Count(_) => "Count",
            Done::Reversal(_) => "Reversal",
            Done::Notice(_) => "Notice",
            Done::MerchantRefund(_) => "MerchantRefund",
            Done::Lease(_) => "Lease",
            Done::Keys(_) => "Keys",
            Done::MaybeNotice(_) => "MaybeNotice",
        }
    }
}

/// Where to send the answer: an async caller awaits a oneshot, a blocking caller a channel.
pub(crate) enum Reply {
    Async(tokio::sync::oneshot::Sender<Result<Done, JournalError>>),
    Blocking(SyncSender<Result<Done, JournalError>>),
}

impl Reply {
    fn send(self, result: Result<Done, JournalError>) {
        // The caller may have gone away (a cancelled request): the write stands regardless.
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(result);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

/// One queued write.
pub(crate) struct Request {
    pub(crate) op: Op,
    pub(crate) reply: Reply,
}

/// What the writer needs besides the database.
pub(crate) struct WriterConfig {
    pub(crate) max_batch: usize,
    pub(crate) retention: Duration,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) counters: Arc<Counters>,
    /// The pipeline's notice rules, once installed.
    pub(crate) rules: Arc<Mutex<Option<Arc<dyn NoticeRules>>>>,
    /// Signalled after a commit that created a notice.
    pub(crate) noticed: Arc<tokio::sync::Notify>,
    /// This process on a shared journal (`None` on redb: no owners, no leases).
    pub(crate) instance: Option<Instance>,
}

/// The writer's counters (read through `RedbJournal::stats`).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) writes: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) failed_batches: AtomicU64,
    pub(crate) largest_batch: AtomicU64,
}

/// The writer loop; returns when every sender is gone and the queue is drained.
pub(crate) fn run(mut store: Box<dyn Store>, rx: Receiver<Request>, config: WriterConfig) {
    let rng = SystemRandom::new();
    let max = config.max_batch.max(1);
    let mut batch: Vec<Request> = Vec::with_capacity(max);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < max {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let now = config.clock.now();
        let rules = config
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut ctx = Ctx {
            now,
            now_ms: super::unix_ms(now),
            rng: &rng,
            retention: config.retention,
            rules,
            noticed: Cell::new(false),
            instance: config.instance.as_ref(),
        };
        let (ops, replies): (Vec<Op>, Vec<Reply>) =
            batch.drain(..).map(|r| (r.op, r.reply)).unzip();
        let n = u64::try_from(replies.len()).unwrap_or(u64::MAX);
        let m = crate::telemetry::metrics::global();
        let timer = crate::telemetry::metrics::Timer::start(&m.journal_commit);
        let committed = commit_batch(store.as_mut(), ops, &mut ctx);
        drop(timer);
        match committed {
            Ok(results) => {
                let c = &config.counters;
                c.writes.fetch_add(n, Ordering::Relaxed);
                c.commits.fetch_add(1, Ordering::Relaxed);
                c.largest_batch.fetch_max(n, Ordering::Relaxed);
                m.journal_batch
                    .observe(f64::from(u32::try_from(n).unwrap_or(u32::MAX)));
                for (reply, result) in replies.into_iter().zip(results) {
                    // Each durable state change is logged (and counted) once, here.
                    match &result {
                        Ok(Done::Payment(p)) => crate::journal::events::payment_changed(p),
                        Ok(Done::Steps(steps)) => {
                            steps
                                .iter()
                                .for_each(crate::journal::events::payment_changed);
                        }
                        Ok(Done::Refund(r)) => crate::journal::events::refund_changed(r),
                        Ok(Done::Notice(n)) => crate::journal::events::notice_changed(n),
                        _ => {}
                    }
                    reply.send(result);
                }
                if ctx.noticed.get() {
                    config.noticed.notify_one();
                }
            }
            Err(e) => {
                config
                    .counters
                    .failed_batches
                    .fetch_add(1, Ordering::Relaxed);
                m.journal_failed_batches.inc();
                tracing::error!(
                    "journal: batch of {} writes not committed: {e}",
                    replies.len()
                );
                for reply in replies {
                    reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Registers the writer's instance (`Op::Register`) in a transaction of its own, before the
/// writer thread starts (not counted in the writer's statistics).
pub(crate) fn register(store: &mut dyn Store, config: &WriterConfig) -> Result<(), JournalError> {
    let rng = SystemRandom::new();
    let now = config.clock.now();
    let mut ctx = Ctx {
        now,
        now_ms: super::unix_ms(now),
        rng: &rng,
        retention: config.retention,
        rules: None,
        noticed: Cell::new(false),
        instance: config.instance.as_ref(),
    };
    let mut results = commit_batch(store, vec![Op::Register], &mut ctx)?;
    results.pop().unwrap_or(Err(JournalError::Closed)).map(drop)
}

struct Ctx<'a> {
    now: SystemTime,
    now_ms: u64,
    rng: &'a SystemRandom,
    retention: Duration,
    rules: Option<Arc<dyn NoticeRules>>,
    /// Whether this batch created a notice.
    noticed: Cell<bool>,
    instance: Option<&'a Instance>,
}

fn commit_batch(
    store: &mut dyn Store,
    ops: Vec<Op>,
    ctx: &mut Ctx<'_>,
) -> Result<Vec<Result<Done, JournalError>>, JournalError> {
    let mut results = Vec::with_capacity(ops.len());
    let mut ops = Some(ops);
    let owner = ctx.instance.map_or(&[][..], |i| i.name.as_bytes());
    store.write(&mut |kv| {
        let ops = ops.take().unwrap_or_default();
        if kv.prefetches() {
            let reads: Vec<(Tbl, Vec<u8>)> =
                ops.iter().flat_map(|op| op.reads(ctx.now_ms)).collect();
            if !reads.is_empty() {
                kv.prefetch(&reads)?;
            }
        }
        let mut t = Tables::over(kv, owner);
        for op in ops {
            let result = t.apply(op, ctx);
            if let Err(e) = &result
                && e.is_unavailable()
            {
                // The transaction may hold half an op: drop it all.
                return Err(e.clone());
            }
            results.push(result);
        }
        Ok(())
    })?;
    Ok(results)
}

/// An engine's write transactions: what the writer thread needs of it.
pub(crate) trait Store: Send {
    /// Runs `f` in one write transaction and commits it durably when `f` returns `Ok` (the
    /// commit is durable when this returns `Ok`); otherwise nothing of it is kept.
    fn write(
        &mut self,
        f: &mut dyn FnMut(&dyn Kv) -> Result<(), JournalError>,
    ) -> Result<(), JournalError>;
}

/// redb: one write transaction, `Durability::Immediate`.
pub(crate) struct RedbStore(pub(crate) Arc<Database>);

impl Store for RedbStore {
    fn write(
        &mut self,
        f: &mut dyn FnMut(&dyn Kv) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let mut txn = self
            .0
            .begin_write()
            .map_err(|e| JournalError::storage("begin write", e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| JournalError::storage("set durability", e))?;
        {
            let tables = RedbTables::open(&txn)?;
            f(&tables)?;
        }
        txn.commit().map_err(|e| JournalError::storage("commit", e))
    }
}

/// Creates every table (in a fresh file) inside `txn`.
pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<(), JournalError> {
    RedbTables::open(txn).map(drop)
}

pub(crate) fn meta_table(
    txn: &WriteTransaction,
) -> Result<redb::Table<'_, &'static str, u64>, JournalError> {
    txn.open_table(META)
        .map_err(|e| JournalError::storage("open table meta", e))
}

/// A checked payment intent, not written yet.
struct Intent {
    payment: Payment,
    /// (client id, request id).
    request: Vec<u8>,
    usage_key: Vec<u8>,
    /// The customer's daily usage with this payment added.
    usage_bytes: Vec<u8>,
}

/// A payment's checked state change(s), not written yet.
struct Transition {
    /// The payment after each event.
    steps: Vec<Payment>,
    notices: Vec<OutboxNotice>,
    /// The daily usage to write back: (key, encoded usage).
    release: Option<(Vec<u8>, Vec<u8>)>,
}

/// A payment intent's key in `payment_requests`: client id ‖ request id.
fn request_key(new: &NewPayment) -> Result<Vec<u8>, JournalError> {
    composite(&[&new.client_id, &new.request_id])
}

/// The `daily_usage` key an intent made at `now_ms` counts against.
fn intent_usage_key(new: &NewPayment, now_ms: u64) -> Result<Vec<u8>, JournalError> {
    usage_key(
        &new.client_id,
        new.customer.expose(),
        new.quote.merchant_amount.currency().code(),
        now_ms / 86_400_000,
    )
}

impl Op {
    /// The keys the op reads before it writes, for an engine that fetches a batch's reads in
    /// one go ([`Kv::prefetch`]): only a payment's two writes, the hot path, say; a key left
    /// out (or a wrong one) only costs its own read later, never correctness.
    fn reads(&self, now_ms: u64) -> Vec<(Tbl, Vec<u8>)> {
        let mut keys = Vec::new();
        match self {
            Op::OpenPayment(open) => {
                keys.extend(open.request.to_bytes().ok().map(|k| (Tbl::Idempotency, k)));
                if open.shared_quote {
                    let quote = SharedKey::Quote(open.payment.quote.quote_id.clone());
                    keys.push((Tbl::Shared, quote.bytes()));
                }
                keys.extend(
                    request_key(&open.payment)
                        .ok()
                        .map(|k| (Tbl::PaymentRequests, k)),
                );
                keys.extend(
                    intent_usage_key(&open.payment, now_ms)
                        .ok()
                        .map(|k| (Tbl::Usage, k)),
                );
            }
            Op::FinishPayment(finish) => {
                keys.extend(
                    finish
                        .request
                        .to_bytes()
                        .ok()
                        .map(|k| (Tbl::Idempotency, k)),
                );
                keys.push((Tbl::Payments, finish.id.key().to_vec()));
            }
            _ => {}
        }
        keys
    }
}

/// What an existing idempotency record says to a request with body `hash`.
pub(crate) fn seen(rec: IdempotencyRecord, hash: BodyHash) -> Begin {
    match rec {
        rec if rec.body_hash != hash.0 => Begin::Inconsistent,
        IdempotencyRecord {
            state: IdempotencyState::InFlight,
            ..
        } => Begin::InFlight,
        IdempotencyRecord {
            state: IdempotencyState::Done { response, .. },
            ..
        } => Begin::Replay(response),
    }
}

struct Tables<'k> {
    payments: H<'k, Bytes>,
    payment_requests: H<'k, Bytes>,
    refunds: H<'k, Bytes>,
    refund_requests: H<'k, Bytes>,
    payment_refunds: H<'k, ()>,
    open: H<'k, ()>,
    reversals: H<'k, Bytes>,
    idempotency: H<'k, Bytes>,
    expiry: H<'k, ()>,
    usage: H<'k, Bytes>,
    notices: H<'k, Bytes>,
    notices_due: H<'k, ()>,
    notices_parked: H<'k, ()>,
    meta: H<'k, u64>,
    merchant_refunds: H<'k, Bytes>,
    payment_refs: H<'k, Bytes>,
    instances: H<'k, Bytes>,
    shared: H<'k, Bytes>,
    shared_expiry: H<'k, ()>,
    /// The value of every `open` entry written: this instance's name (empty on redb).
    owner: &'k [u8],
}

/// Names the op that failed in a storage error.
fn st(op: &'static str) -> impl Fn(JournalError) -> JournalError {
    move |e| match e {
        JournalError::Storage { detail, .. } => JournalError::Storage { op, detail },
        other => other,
    }
}

impl<'k> Tables<'k> {
    /// The journal's tables in the transaction `kv` (any engine).
    fn over(kv: &'k dyn Kv, owner: &'k [u8]) -> Self {
        Tables {
            payments: H::new(kv, Tbl::Payments),
            payment_requests: H::new(kv, Tbl::PaymentRequests),
            refunds: H::new(kv, Tbl::Refunds),
            refund_requests: H::new(kv, Tbl::RefundRequests),
            payment_refunds: H::new(kv, Tbl::PaymentRefunds),
            open: H::new(kv, Tbl::Open),
            reversals: H::new(kv, Tbl::Reversals),
            idempotency: H::new(kv, Tbl::Idempotency),
            expiry: H::new(kv, Tbl::Expiry),
            usage: H::new(kv, Tbl::Usage),
            notices: H::new(kv, Tbl::Notices),
            notices_due: H::new(kv, Tbl::NoticesDue),
            notices_parked: H::new(kv, Tbl::NoticesParked),
            meta: H::new(kv, Tbl::Meta),
            merchant_refunds: H::new(kv, Tbl::MerchantRefunds),
            payment_refs: H::new(kv, Tbl::PaymentRefs),
            instances: H::new(kv, Tbl::Instances),
            shared: H::new(kv, Tbl::Shared),
            shared_expiry: H::new(kv, Tbl::SharedExpiry),
            owner,
        }
    }

    /// Marks `key` unresolved in `open`, owned by this instance.
    fn open_insert(&mut self, key: &[u8]) -> Result<(), JournalError> {
        let owner = self.owner;
        self.open.insert(key, owner).map_err(st("write open"))
    }

    fn apply(&mut self, op: Op, ctx: &mut Ctx<'_>) -> Result<Done, JournalError> {
        match op {
            Op::Intent(new) => self.intent(*new, ctx).map(|p| Done::Payment(Box::new(p))),
            Op::Order(new, inquire_at_ms) => self
                .order(*new, inquire_at_ms, ctx)
                .map(|p| Done::Payment(Box::new(p))),
            Op::DebitOrder(debit) => self.debit_order(*debit, ctx),
            Op::Payment(id, event) => self
                .payment_event(id, event, ctx)
                .map(|p| Done::Payment(Box::new(p))),
            Op::OpenPayment(open) => self.open_payment(*open, ctx),
            Op::FinishPayment(finish) => self.finish_payment(*finish, ctx).map(Done::Steps),
            Op::Refund(new) => self.refund(new, ctx).map(|r| Done::Refund(Box::new(r))),
            Op::RefundEvent(id, event) => self
                .refund_event(id, event, ctx)
                .map(|r| Done::Refund(Box::new(r))),
            Op::Begin(key, hash) => self.begin(&key, hash, ctx).map(Done::Begin),
            Op::Complete(key, response) => self.complete(&key, response, ctx).map(|()| Done::Unit),
            Op::Abandon(key) => self.abandon(&key).map(Done::Flag),
            Op::Purge { limit } => self.purge(limit, ctx).map(Done::Count),
            Op::Enqueue(r) => self.enqueue(r).map(Done::Reversal),
            Op::Stans(scope, day, count) => {
                self.reserve_stans(&scope, day, count).map(Done::Reversal)
            }
            Op::Attempt(id, a) => self
                .update_reversal(id, |r| r.record_attempt(a))
                .map(|_| Done::Unit),
            Op::Resolve(id, state) => self.resolve(id, state).map(Done::Flag),
            Op::Late(id, code) => self
                .update_reversal(id, |r| r.note_late(code))
                .map(|_| Done::Unit),
            Op::Notice(id, outcome) => self
                .notice_attempt(&id, &outcome, ctx)
                .map(|n| Done::Notice(Box::new(n))),
            Op::Requeue(id) => self
                .requeue_notice(&id, ctx)
                .map(|n| Done::Notice(Box::new(n))),
            Op::MerchantRefund(new) => self
                .merchant_refund(*new, ctx)
                .map(|r| Done::MerchantRefund(Box::new(r))),
            Op::Register => self.register(ctx).map(|r| Done::Lease(Box::new(r))),
            Op::Heartbeat => self.heartbeat(ctx).map(|r| Done::Lease(Box::new(r))),
            Op::TakeOver(owner, seen) => self.take_over(&owner, seen, ctx).map(Done::Keys),
            Op::Retire => self.retire(ctx).map(Done::Flag),
            Op::ClaimNotice(id, until) => self
                .claim_notice(&id, until, ctx)
                .map(|n| Done::MaybeNotice(n.map(Box::new))),
            Op::Share(key, expires, payload) => {
                self.share(&key, expires, &payload).map(|()| Done::Unit)
            }
        }
    }

    // ---- payments -------------------------------------------------------------------------

    fn load_payment(&self, id: PaymentId) -> Result<Payment, JournalError> {
        let key = id.key();
        let guard = self
            .payments
            .get(key.as_slice())
            .map_err(st("read payment"))?
            .ok_or_else(|| JournalError::NotFound {
                kind: RecordKind::Payment,
                key: id.to_string(),
            })?;
        codec::decode(RecordKind::Payment, &key, guard.value())
    }

    fn store_payment(&mut self, p: &Payment) -> Result<(), JournalError> {
        let bytes = codec::encode(RecordKind::Payment, p)?;
        self.put_payment(p, &bytes)?;
        self.mark_open(OPEN_PAYMENT, &p.id.key(), p.state.is_unresolved())
    }

    /// Every write of a payment record goes through here: the record (`bytes`, encoded by the
    /// caller before its first write) and its acquirer references, indexed as soon as the
    /// payment carries them (an intent written already SENT carries its trace) so an acquirer's
    /// advice finds it.
    fn put_payment(&mut self, p: &Payment, bytes: &[u8]) -> Result<(), JournalError> {
        self.payments
            .insert(p.id.key().as_slice(), bytes)
            .map_err(st("write payment"))?;
        self.index_refs(p)
    }

    /// Keeps the index of unresolved records in step with a record's state.
    fn mark_open(&mut self, prefix: u8, key: &[u8], unresolved: bool) -> Result<(), JournalError> {
        let open = open_key(prefix, key);
        if unresolved {
            self.open_insert(&open)?;
        } else {
            self.open
                .remove(open.as_slice())
                .map_err(st("write open"))?;
        }
        Ok(())
    }

    fn intent(&mut self, new: NewPayment, ctx: &Ctx<'_>) -> Result<Payment, JournalError> {
        let intent = self.check_intent(new, ctx)?;
        self.write_intent(&intent, &intent.payment)?;
        Ok(intent.payment)
    }

    /// A payment order: checked as an intent (duplicate, zero amount, daily limits), recorded
    /// ORDERED, with the notice the rules make for it due at `inquire_at_ms`.
    fn order(
        &mut self,
        new: NewPayment,
        inquire_at_ms: u64,
        ctx: &Ctx<'_>,
    ) -> Result<Payment, JournalError> {
        let mut intent = self.check_intent(new, ctx)?;
        intent.payment = intent.payment.into_ordered();
        let order = intent.payment.clone();
        let notice = match ctx.rules.as_ref().and_then(|r| r.order(&order)) {
            Some(draft) => self
                .draft_notice(
                    draft,
                    &order.client_id,
                    &order.origin,
                    order.id.to_string(),
                    ctx,
                )?
                .map(|mut n| {
                    n.next_attempt_at_ms = inquire_at_ms.max(ctx.now_ms);
                    n
                }),
            None => None,
        };
        self.write_intent(&intent, &order)?;
        if let Some(n) = &notice {
            self.insert_notice(n, ctx)?;
        }
        Ok(order)
    }

    /// The wallet debited its user for an order: ORDERED → SENT (with the notices the rules
    /// make) and the request in flight, or what an earlier request with this key says.
    fn debit_order(&mut self, debit: DebitOrder, ctx: &Ctx<'_>) -> Result<Done, JournalError> {
        let kb = debit.request.to_bytes()?;
        if let Some(rec) = self.load_request(&kb)? {
            return Ok(Done::Begin(seen(rec, debit.body)));
        }
        let request = composite(&[&debit.request.client_id, &debit.request.request_id])?;
        let id = match self
            .payment_requests
            .get(request.as_slice())
            .map_err(st("read payment request"))?
        {
            Some(g) => PaymentId::from_key(g.value()).ok_or_else(|| JournalError::Corrupt {
                kind: RecordKind::Payment,
                key: codec::key_text(&request),
                detail: "payment request index names no payment id".to_owned(),
            })?,
            None => {
                return Err(JournalError::NotFound {
                    kind: RecordKind::Payment,
                    key: debit.request.to_string(),
                });
            }
        };
        let before = self.load_payment(id)?;
        let change = self.transition(
            &before,
            vec![PaymentEvent::Debited {
                scheme_ref: debit.scheme_ref,
                acquirer: debit.sent,
            }],
            ctx,
        )?;
        let rec = IdempotencyRecord {
            body_hash: debit.body.0.to_vec(),
            created_at_ms: ctx.now_ms,
            state: IdempotencyState::InFlight,
        };
        let rec_bytes = codec::encode(RecordKind::Idempotency, &rec)?;
        self.write_transition(&change, ctx)?;
        self.idempotency
            .insert(kb.as_slice(), rec_bytes.as_slice())
            .map_err(st("write idempotency"))?;
        self.open
            .insert(open_key(OPEN_REQUEST, &kb).as_slice(), ())
            .map_err(st("write open"))?;
        Ok(Done::Steps(change.steps))
    }

    /// Everything `record_intent` checks and computes, before any write: a duplicate request,
    /// a zero amount, the daily limits; the new payment in QUOTED.
    fn check_intent(&self, new: NewPayment, ctx: &Ctx<'_>) -> Result<Intent, JournalError> {
        let request = request_key(&new)?;
        if new.quote.merchant_amount.is_zero() {
            return Err(JournalError::Invalid {
                what: "payment",
                detail: "the merchant amount is zero".to_owned(),
            });
        }
        if self
            .payment_requests
            .get(request.as_slice())
            .map_err(st("read payment request"))?
            .is_some()
        {
            return Err(JournalError::Duplicate {
                kind: RecordKind::Payment,
                key: format!("{}/{}", new.client_id, new.request_id),
            });
        }
        let usage_key = intent_usage_key(&new, ctx.now_ms)?;
        let mut usage = self.load_usage(&usage_key)?;
        let minor = new.quote.merchant_amount.minor();
        if let Some(max) = new.limits.max_count
            && usage.count >= max
        {
            return Err(JournalError::LimitExceeded {
                limit: "count",
                used: u64::from(usage.count),
                requested: 1,
                max: u64::from(max),
            });
        }
        if let Some(max) = new.limits.max_amount
            && usage.amount.saturating_add(minor) > max
        {
            return Err(JournalError::LimitExceeded {
                limit: "amount",
                used: usage.amount,
                requested: minor,
                max,
            });
        }
        usage.count = usage.count.saturating_add(1);
        usage.amount = usage.amount.saturating_add(minor);
        let usage_bytes = codec::encode(RecordKind::Payment, &usage)?;
        let id = PaymentId::generate(ctx.now, ctx.rng)?;
        Ok(Intent {
            payment: Payment::new(id, new, ctx.now_ms),
            request,
            usage_key,
            usage_bytes,
        })
    }

    /// Writes a checked intent with `record` as the payment's record (the intent itself, or the
    /// intent already moved on to SENT).
    fn write_intent(&mut self, intent: &Intent, record: &Payment) -> Result<(), JournalError> {
        // Encode before the first write, so a refusal leaves nothing behind.
        let bytes = codec::encode(RecordKind::Payment, record)?;
        let key = record.id.key();
        self.put_payment(record, &bytes)?;
        self.payment_requests
            .insert(intent.request.as_slice(), key.as_slice())
            .map_err(st("write payment request"))?;
        self.mark_open(OPEN_PAYMENT, &key, record.state.is_unresolved())?;
        self.usage
            .insert(intent.usage_key.as_slice(), intent.usage_bytes.as_slice())
            .map_err(st("write daily usage"))?;
        Ok(())
    }

    /// The first write of a payment (`critical.rs`): the request in flight, the intent and SENT,
    /// or what an earlier request with this key says (nothing written).
    fn open_payment(&mut self, open: OpenPayment, ctx: &Ctx<'_>) -> Result<Done, JournalError> {
        let kb = open.request.to_bytes()?;
        if let Some(rec) = self.load_request(&kb)? {
            return Ok(Done::Begin(seen(rec, open.body)));
        }
        let quote = SharedKey::Quote(open.payment.quote.quote_id.clone()).bytes();
        let shared_quote = if open.shared_quote {
            let found = self
                .shared
                .get(quote.as_slice())
                .map_err(st("read shared"))?;
            let Some(found) = found else {
                return Err(JournalError::QuoteNotShared {
                    quote_id: open.payment.quote.quote_id.clone(),
                });
            };
            let expires = split_shared(found.value())
                .filter(|(at, payload)| *at > ctx.now_ms && !payload.is_empty())
                .map(|(at, _)| at)
                .ok_or_else(|| JournalError::QuoteUsed {
                    quote_id: open.payment.quote.quote_id.clone(),
                })?;
            Some(expires)
        } else {
            None
        };
        let intent = self.check_intent(open.payment, ctx)?;
        if let Some(expires) = shared_quote {
            // Single use across instances: the first payment's write consumes it (an empty
            // payload until it expires, so a second pay hears "used", not "unknown").
            self.shared
                .insert(quote.as_slice(), shared_value(expires, &[]).as_slice())
                .map_err(st("write shared"))?;
        }
        let quoted = intent.payment.clone();
        let change = self.transition(
            &quoted,
            vec![PaymentEvent::Sent {
                acquirer: open.sent,
            }],
            ctx,
        )?;
        let rec = IdempotencyRecord {
            body_hash: open.body.0.to_vec(),
            created_at_ms: ctx.now_ms,
            state: IdempotencyState::InFlight,
        };
        let rec_bytes = codec::encode(RecordKind::Idempotency, &rec)?;
        let sent = change
            .steps
            .last()
            .cloned()
            .unwrap_or_else(|| quoted.clone());
        self.write_intent(&intent, &sent)?;
        self.write_effects(&change, ctx)?;
        self.idempotency
            .insert(kb.as_slice(), rec_bytes.as_slice())
            .map_err(st("write idempotency"))?;
        self.open_insert(&open_key(OPEN_REQUEST, &kb))?;
        let mut steps = vec![quoted];
        steps.extend(change.steps);
        Ok(Done::Steps(steps))
    }

    /// The second write of a payment (`critical.rs`): its outcome event(s) and the request
    /// completed with the answer rendered from the new record.
    fn finish_payment(
        &mut self,
        finish: FinishPayment,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Payment>, JournalError> {
        let kb = finish.request.to_bytes()?;
        let mut rec = match self.load_request(&kb)? {
            Some(rec) if rec.state == IdempotencyState::InFlight => rec,
            _ => {
                return Err(JournalError::NotInFlight {
                    key: finish.request.to_string(),
                });
            }
        };
        let before = self.load_payment(finish.id)?;
        let change = self.transition(&before, finish.events, ctx)?;
        let after = change.steps.last().unwrap_or(&before);
        rec.state = IdempotencyState::Done {
            response: finish.answer.render(after),
            completed_at_ms: ctx.now_ms,
        };
        let rec_bytes = codec::encode(RecordKind::Idempotency, &rec)?;
        self.write_transition(&change, ctx)?;
        self.write_done(&kb, &rec_bytes, ctx)?;
        Ok(change.steps)
    }

    fn load_usage(&self, key: &[u8]) -> Result<DailyUsage, JournalError> {
        match self.usage.get(key).map_err(st("read daily usage"))? {
            Some(g) => codec::decode(RecordKind::Payment, key, g.value()),
            None => Ok(DailyUsage::default()),
        }
    }

    fn payment_event(
        &mut self,
        id: PaymentId,
        event: PaymentEvent,
        ctx: &Ctx<'_>,
    ) -> Result<Payment, JournalError> {
        let before = self.load_payment(id)?;
        let change = self.transition(&before, vec![event], ctx)?;
        self.write_transition(&change, ctx)?;
        change
            .steps
            .into_iter()
            .last()
            .ok_or_else(|| JournalError::Invalid {
                what: "payment event",
                detail: "no event".to_owned(),
            })
    }

    /// `events` applied to `before` in order, with the notices each step creates and the daily
    /// limits given back if the payment stops counting against them; nothing written yet.
    fn transition(
        &self,
        before: &Payment,
        events: Vec<PaymentEvent>,
        ctx: &Ctx<'_>,
    ) -> Result<Transition, JournalError> {
        let mut steps: Vec<Payment> = Vec::with_capacity(events.len());
        let mut notices = Vec::new();
        for event in events {
            let from = steps.last().unwrap_or(before);
            let next = from.apply(event, ctx.now_ms)?;
            if let Some(draft) = ctx.rules.as_ref().and_then(|r| r.payment(from, &next))
                && let Some(n) = self.draft_notice(
                    draft,
                    &next.client_id,
                    &next.origin,
                    next.id.to_string(),
                    ctx,
                )?
                && !notices
                    .iter()
                    .any(|m: &OutboxNotice| m.notice_id == n.notice_id)
            {
                notices.push(n);
            }
            steps.push(next);
        }
        let last = steps.last().unwrap_or(before);
        // A payment that ends without moving money gives its share of the daily limits back.
        let release = if counts_against_limits(before.state) && !counts_against_limits(last.state) {
            let key = usage_key(
                &last.client_id,
                last.customer.expose(),
                last.quote.merchant_amount.currency().code(),
                last.created_at_ms / 86_400_000,
            )?;
            let mut usage = self.load_usage(&key)?;
            usage.count = usage.count.saturating_sub(1);
            usage.amount = usage
                .amount
                .saturating_sub(last.quote.merchant_amount.minor());
            Some((key, codec::encode(RecordKind::Payment, &usage)?))
        } else {
            None
        };
        Ok(Transition {
            steps,
            notices,
            release,
        })
    }

    fn write_transition(&mut self, t: &Transition, ctx: &Ctx<'_>) -> Result<(), JournalError> {
        if let Some(last) = t.steps.last() {
            self.store_payment(last)?;
        }
        self.write_effects(t, ctx)
    }

    /// What a state change writes besides the payment: the daily usage given back, notices.
    fn write_effects(&mut self, t: &Transition, ctx: &Ctx<'_>) -> Result<(), JournalError> {
        if let Some((key, bytes)) = &t.release {
            self.usage
                .insert(key.as_slice(), bytes.as_slice())
                .map_err(st("write daily usage"))?;
        }
        for n in &t.notices {
            self.insert_notice(n, ctx)?;
        }
        Ok(())
    }

    // ---- refunds --------------------------------------------------------------------------

    fn load_refund(&self, id: RefundId) -> Result<Refund, JournalError> {
        let key = id.key();
        let guard = self
            .refunds
            .get(key.as_slice())
            .map_err(st("read refund"))?
            .ok_or_else(|| JournalError::NotFound {
                kind: RecordKind::Refund,
                key: id.to_string(),
            })?;
        codec::decode(RecordKind::Refund, &key, guard.value())
    }

    fn refund(&mut self, new: NewRefund, ctx: &Ctx<'_>) -> Result<Refund, JournalError> {
        let request = composite(&[&new.client_id, &new.request_id])?;
        if self
            .refund_requests
            .get(request.as_slice())
            .map_err(st("read refund request"))?
            .is_some()
        {
            return Err(JournalError::Duplicate {
                kind: RecordKind::Refund,
                key: format!("{}/{}", new.client_id, new.request_id),
            });
        }
        let mut payment = self.load_payment(new.payment_id)?;
        if payment.client_id != new.client_id {
            // Another client's payment does not exist for this one.
            return Err(JournalError::NotFound {
                kind: RecordKind::Payment,
                key: new.payment_id.to_string(),
            });
        }
        if !matches!(
            payment.state,
            PaymentState::Success | PaymentState::PartiallyRefunded
        ) {
            return Err(JournalError::NotRefundable {
                payment: payment.id,
                state: payment.state,
            });
        }
        let payer_amount = reserve_refund_amount(&mut payment, new.amount)?;
        payment.updated_at_ms = ctx.now_ms;
        let id = RefundId::generate(ctx.now, ctx.rng)?;
        let refund = Refund {
            id,
            client_id: new.client_id,
            request_id: new.request_id,
            payment_id: payment.id,
            amount: new.amount,
            payer_amount,
            reason: new.reason,
            origin: new.origin,
            state: RefundState::Pending,
            acquirer: new.trace,
            note: None,
            created_at_ms: ctx.now_ms,
            updated_at_ms: ctx.now_ms,
            initiator: Initiator::Wallet,
        };
        let bytes = codec::encode(RecordKind::Refund, &refund)?;
        let payment_bytes = codec::encode(RecordKind::Payment, &payment)?;
        let key = id.key();
        let pkey = payment.id.key();
        self.refunds
            .insert(key.as_slice(), bytes.as_slice())
            .map_err(st("write refund"))?;
        self.refund_requests
            .insert(request.as_slice(), key.as_slice())
            .map_err(st("write refund request"))?;
        self.payment_refunds
            .insert([pkey, key].concat().as_slice(), ())
            .map_err(st("write payment refunds"))?;
        self.open_insert(&open_key(OPEN_REFUND, &key))?;
        self.put_payment(&payment, &payment_bytes)?;
        Ok(refund)
    }

    fn refund_event(
        &mut self,
        id: RefundId,
        event: RefundEvent,
        ctx: &Ctx<'_>,
    ) -> Result<Refund, JournalError> {
        let refund = self.load_refund(id)?;
        let next = refund.apply(event, ctx.now_ms)?;
        let notice = match ctx.rules.as_ref().and_then(|r| r.refund(&refund, &next)) {
            Some(draft) => self.draft_notice(
                draft,
                &next.client_id,
                &next.origin,
                next.id.to_string(),
                ctx,
            )?,
            None => None,
        };
        let mut payment = self.load_payment(refund.payment_id)?;
        match next.state {
            RefundState::Success => {
                if !matches!(
                    payment.state,
                    PaymentState::Success | PaymentState::PartiallyRefunded
                ) {
                    return Err(JournalError::IllegalTransition {
                        payment: payment.id,
                        from: payment.state,
                        event: "RefundApproved",
                    });
                }
                add_refunded(&mut payment, refund.amount, ctx.now_ms)?;
            }
            RefundState::Failed => {
                payment.refunds_reserved = payment
                    .refunds_reserved
                    .checked_sub(refund.amount)
                    .map_err(refund_amount_invalid)?;
            }
            RefundState::Pending | RefundState::Unknown => {}
        }
        payment.updated_at_ms = ctx.now_ms;
        let bytes = codec::encode(RecordKind::Refund, &next)?;
        self.store_payment(&payment)?;
        let key = id.key();
        self.refunds
            .insert(key.as_slice(), bytes.as_slice())
            .map_err(st("write refund"))?;
        self.mark_open(OPEN_REFUND, &key, next.state.is_unresolved())?;
        if let Some(n) = notice {
            self.insert_notice(&n, ctx)?;
        }
        Ok(next)
    }

    // ---- idempotency ----------------------------------------------------------------------

    fn load_request(&self, key: &[u8]) -> Result<Option<IdempotencyRecord>, JournalError> {
        match self.idempotency.get(key).map_err(st("read idempotency"))? {
            Some(g) => codec::decode(RecordKind::Idempotency, key, g.value()).map(Some),
            None => Ok(None),
        }
    }

    fn begin(
        &mut self,
        key: &IdempotencyKey,
        hash: BodyHash,
        ctx: &Ctx<'_>,
    ) -> Result<Begin, JournalError> {
        let kb = key.to_bytes()?;
        match self.load_request(&kb)? {
            Some(rec) => Ok(seen(rec, hash)),
            None => {
                let rec = IdempotencyRecord {
                    body_hash: hash.0.to_vec(),
                    created_at_ms: ctx.now_ms,
                    state: IdempotencyState::InFlight,
                };
                let bytes = codec::encode(RecordKind::Idempotency, &rec)?;
                self.idempotency
                    .insert(kb.as_slice(), bytes.as_slice())
                    .map_err(st("write idempotency"))?;
                self.open_insert(&open_key(OPEN_REQUEST, &kb))?;
                Ok(Begin::New)
            }
        }
    }

    fn complete(
        &mut self,
        key: &IdempotencyKey,
        response: StoredResponse,
        ctx: &Ctx<'_>,
    ) -> Result<(), JournalError> {
        let kb = key.to_bytes()?;
        let mut rec = match self.load_request(&kb)? {
            Some(rec) if rec.state == IdempotencyState::InFlight => rec,
            _ => {
                return Err(JournalError::NotInFlight {
                    key: key.to_string(),
                });
            }
        };
        rec.state = IdempotencyState::Done {
            response,
            completed_at_ms: ctx.now_ms,
        };
        let bytes = codec::encode(RecordKind::Idempotency, &rec)?;
        self.write_done(&kb, &bytes, ctx)
    }

    /// Stores a completed request record (`bytes`), schedules its expiry, closes it in `open`.
    fn write_done(&mut self, kb: &[u8], bytes: &[u8], ctx: &Ctx<'_>) -> Result<(), JournalError> {
        self.idempotency
            .insert(kb, bytes)
            .map_err(st("write idempotency"))?;
        let expiry = [ctx.now_ms.to_be_bytes().as_slice(), kb].concat();
        self.expiry
            .insert(expiry.as_slice(), ())
            .map_err(st("write idempotency expiry"))?;
        self.open
            .remove(open_key(OPEN_REQUEST, kb).as_slice())
            .map_err(st("write open"))?;
        Ok(())
    }

    fn abandon(&mut self, key: &IdempotencyKey) -> Result<bool, JournalError> {
        let kb = key.to_bytes()?;
        match self.load_request(&kb)? {
            None => Ok(false),
            Some(rec) if rec.state == IdempotencyState::InFlight => {
                self.idempotency
                    .remove(kb.as_slice())
                    .map_err(st("write idempotency"))?;
                self.open
                    .remove(open_key(OPEN_REQUEST, &kb).as_slice())
                    .map_err(st("write open"))?;
                Ok(true)
            }
            Some(_) => Err(JournalError::NotInFlight {
                key: key.to_string(),
            }),
        }
    }

    /// Stores a shared decode or quote until `expires_at_ms`.
    fn share(
        &mut self,
        key: &[u8],
        expires_at_ms: u64,
        payload: &[u8],
    ) -> Result<(), JournalError> {
        self.shared
            .insert(key, shared_value(expires_at_ms, payload).as_slice())
            .map_err(st("write shared"))?;
        self.shared_expiry
            .insert(shared_expiry_key(expires_at_ms, key).as_slice(), ())
            .map_err(st("write shared expiry"))
    }

    /// Removes shared decodes and quotes past their expiry, at most `limit`.
    fn purge_shared(&mut self, limit: usize, ctx: &Ctx<'_>) -> Result<usize, JournalError> {
        let end = ctx.now_ms.to_be_bytes();
        let expired = self
            .shared_expiry
            .scan(None, Some(end.as_slice()), limit)
            .map_err(st("read shared expiry"))?;
        for (k, _) in &expired {
            self.shared_expiry
                .remove(k.as_slice())
                .map_err(st("write shared expiry"))?;
            if let Some(key) = k.get(8..) {
                self.shared.remove(key).map_err(st("write shared"))?;
            }
        }
        Ok(expired.len())
    }

    fn purge(&mut self, limit: usize, ctx: &Ctx<'_>) -> Result<usize, JournalError> {
        let shared = self.purge_shared(limit, ctx)?;
        if shared == limit {
            return Ok(shared);
        }
        let limit = limit - shared;
        let retention_ms = u64::try_from(ctx.retention.as_millis()).unwrap_or(u64::MAX);
        let cutoff = ctx.now_ms.saturating_sub(retention_ms);
        let end = cutoff.to_be_bytes();
        let expired: Vec<Vec<u8>> = self
            .expiry
            .scan(None, Some(end.as_slice()), limit)
            .map_err(st("read idempotency expiry"))?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for k in &expired {
            self.expiry
                .remove(k.as_slice())
                .map_err(st("write idempotency expiry"))?;
            if let Some(kb) = k.get(8..) {
                self.idempotency
                    .remove(kb)
                    .map_err(st("write idempotency"))?;
            }
        }
        Ok(shared + expired.len())
    }

    // ---- leases (lease.rs) ----------------------------------------------------------------

    fn me<'c>(&self, ctx: &Ctx<'c>) -> Result<&'c Instance, JournalError> {
        ctx.instance.ok_or_else(|| JournalError::Invalid {
            what: "lease",
            detail: "this journal is not shared: it has no instances".to_owned(),
        })
    }

    fn load_instance(&self, name: &str) -> Result<Option<InstanceRecord>, JournalError> {
        match self
            .instances
            .get(name.as_bytes())
            .map_err(st("read instance"))?
        {
            Some(g) => codec::decode(RecordKind::Meta, name.as_bytes(), g.value()).map(Some),
            None => Ok(None),
        }
    }

    fn store_instance(&mut self, r: &InstanceRecord) -> Result<(), JournalError> {
        let bytes = codec::encode(RecordKind::Meta, r)?;
        self.instances
            .insert(r.name.as_bytes(), bytes.as_slice())
            .map_err(st("write instance"))
    }

    /// Creates (or replaces: a restart under the same name) this instance's lease record. The
    /// records its name owns stay its own: a restarted instance recovers them at once.
    fn register(&mut self, ctx: &Ctx<'_>) -> Result<Lease, JournalError> {
        let me = self.me(ctx)?;
        let seq = self
            .load_instance(&me.name)?
            .map_or(0, |r| r.seq)
            .saturating_add(1);
        let rec = InstanceRecord {
            name: me.name.clone(),
            token: me.token.clone(),
            seq,
            lease_ms: me.lease_ms,
            started_at_ms: ctx.now_ms,
            heartbeat_at_ms: ctx.now_ms,
            pid: std::process::id(),
        };
        self.store_instance(&rec)?;
        Ok(Lease::Held(rec))
    }

    fn heartbeat(&mut self, ctx: &Ctx<'_>) -> Result<Lease, JournalError> {
        let me = self.me(ctx)?;
        match self.load_instance(&me.name)? {
            Some(mut rec) if rec.token == me.token => {
                rec.seq = rec.seq.saturating_add(1);
                rec.heartbeat_at_ms = ctx.now_ms;
                rec.lease_ms = me.lease_ms;
                self.store_instance(&rec)?;
                Ok(Lease::Held(rec))
            }
            other => Ok(Lease::Lost(other)),
        }
    }

    fn retire(&mut self, ctx: &Ctx<'_>) -> Result<bool, JournalError> {
        let me = self.me(ctx)?;
        match self.load_instance(&me.name)? {
            Some(rec) if rec.token == me.token => self
                .instances
                .remove(me.name.as_bytes())
                .map(|()| true)
                .map_err(st("write instance")),
            _ => Ok(false),
        }
    }

    /// Takes every `open` entry of `owner` if its lease record still shows `seen` (the (token,
    /// seq) the caller watched for longer than its lease), or is absent as the caller saw it.
    /// Returns the keys taken (none when the owner proved alive).
    fn take_over(
        &mut self,
        owner: &str,
        seen: Option<(String, u64)>,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Vec<u8>>, JournalError> {
        let me = self.me(ctx)?;
        if owner == me.name {
            return Ok(Vec::new());
        }
        let now = self.load_instance(owner)?.map(|r| (r.token, r.seq));
        if now.is_some() && now != seen {
            return Ok(Vec::new());
        }
        let mut taken = Vec::new();
        for (k, v) in self
            .open
            .scan(None, None, usize::MAX)
            .map_err(st("read open"))?
        {
            if v == owner.as_bytes() {
                self.open_insert(&k)?;
                taken.push(k);
            }
        }
        if now.is_some() {
            self.instances
                .remove(owner.as_bytes())
                .map_err(st("write instance"))?;
        }
        Ok(taken)
    }

    /// Leases a due PENDING notice until `until_ms`; `None` when it is not due (another instance
    /// holds it, or it was delivered meanwhile).
    fn claim_notice(
        &mut self,
        id: &str,
        until_ms: u64,
        ctx: &Ctx<'_>,
    ) -> Result<Option<OutboxNotice>, JournalError> {
        let Some(before) = self.load_notice(id)? else {
            return Ok(None);
        };
        if before.state != NoticeState::Pending || before.next_attempt_at_ms > ctx.now_ms {
            return Ok(None);
        }
        let mut next = before.clone();
        next.next_attempt_at_ms = until_ms.max(ctx.now_ms);
        self.store_notice(&next, Some(&before))?;
        Ok(Some(next))
    }

    // ---- reversals ------------------------------------------------------------------------

    fn enqueue(&mut self, r: NewReversal) -> Result<u64, JournalError> {
        let id = self
            .meta
            .get(NEXT_REVERSAL)
            .map_err(st("read meta"))?
            .map_or(1, |g| g.value());
        let rec = StoredReversal::new(id, r);
        let bytes = codec::encode(RecordKind::Reversal, &rec)?;
        self.reversals
            .insert(id, bytes.as_slice())
            .map_err(st("write reversal"))?;
        self.meta
            .insert(NEXT_REVERSAL, id.saturating_add(1))
            .map_err(st("write meta"))?;
        self.open_insert(&open_key(OPEN_REVERSAL, &id.to_be_bytes()))?;
        Ok(id)
    }

    /// The next block of `count` message numbers of `scope` on `day` (see
    /// `ReversalStore::reserve_stans`); kept in `meta` under `stans:<scope>` as
    /// `day << 32 | next`, one key per scope.
    fn reserve_stans(&mut self, scope: &str, day: u64, count: u32) -> Result<u64, JournalError> {
        let key = format!("stans:{scope}");
        let packed = self
            .meta
            .get(key.as_str())
            .map_err(st("read meta"))?
            .map(|g| g.value());
        let mut slot = packed.map_or((day, 1), |v| (v >> 32, v & 0xFFFF_FFFF));
        let first = crate::acquirer::reversal::next_block(&mut slot, day, count);
        let next = slot.1.min(0xFFFF_FFFF);
        self.meta
            .insert(key.as_str(), (day << 32) | next)
            .map_err(st("write meta"))?;
        Ok(first)
    }

    fn load_reversal(&self, id: u64) -> Result<StoredReversal, JournalError> {
        let guard = self
            .reversals
            .get(id)
            .map_err(st("read reversal"))?
            .ok_or_else(|| JournalError::NotFound {
                kind: RecordKind::Reversal,
                key: id.to_string(),
            })?;
        codec::decode(RecordKind::Reversal, &id.to_be_bytes(), guard.value())
    }

    fn update_reversal(
        &mut self,
        id: u64,
        change: impl FnOnce(&mut StoredReversal),
    ) -> Result<StoredReversal, JournalError> {
        let mut rec = self.load_reversal(id)?;
        change(&mut rec);
        let bytes = codec::encode(RecordKind::Reversal, &rec)?;
        self.reversals
            .insert(id, bytes.as_slice())
            .map_err(st("write reversal"))?;
        Ok(rec)
    }

    fn resolve(&mut self, id: u64, state: ReversalState) -> Result<bool, JournalError> {
        if self.load_reversal(id)?.state != StoredState::Pending {
            return Ok(false);
        }
        let next = StoredState::of(state);
        let still_pending = next == StoredState::Pending;
        self.update_reversal(id, |r| r.state = next)?;
        if !still_pending {
            self.open
                .remove(open_key(OPEN_REVERSAL, &id.to_be_bytes()).as_slice())
                .map_err(st("write open"))?;
        }
        Ok(true)
    }

    // ---- notice outbox --------------------------------------------------------------------

    fn load_notice(&self, id: &str) -> Result<Option<OutboxNotice>, JournalError> {
        match self.notices.get(id.as_bytes()).map_err(st("read notice"))? {
            Some(g) => codec::decode(RecordKind::Notice, id.as_bytes(), g.value()).map(Some),
            None => Ok(None),
        }
    }

    /// The notice a state change creates (checked before anything is written); `None` when a
    /// notice with its id exists already (the state change is not refused for it).
    fn draft_notice(
        &self,
        draft: NoticeDraft,
        client_id: &str,
        origin: &Origin,
        subject: String,
        ctx: &Ctx<'_>,
    ) -> Result<Option<OutboxNotice>, JournalError> {
        if draft.notice_id.is_empty() || draft.notice_id.len() > 200 {
            return Err(JournalError::Invalid {
                what: "notice",
                detail: format!("notice id of {} bytes (1 to 200)", draft.notice_id.len()),
            });
        }
        if self.load_notice(&draft.notice_id)?.is_some() {
            tracing::warn!(
                "journal: notice {} exists already; not created again",
                draft.notice_id
            );
            return Ok(None);
        }
        let notice = OutboxNotice {
            notice_id: draft.notice_id,
            scheme: origin.scheme.clone(),
            client_id: client_id.to_owned(),
            scheme_ref: origin.scheme_ref.clone(),
            kind: draft.kind,
            subject,
            event: draft.event,
            state: NoticeState::Pending,
            attempts: 0,
            next_attempt_at_ms: ctx.now_ms,
            last_error: None,
            created_at_ms: ctx.now_ms,
            updated_at_ms: ctx.now_ms,
            request_id: origin.request_id.clone(),
        };
        // Encodes now so that a refusal comes before any write.
        codec::encode(RecordKind::Notice, &notice)?;
        Ok(Some(notice))
    }

    fn insert_notice(&mut self, n: &OutboxNotice, ctx: &Ctx<'_>) -> Result<(), JournalError> {
        self.store_notice(n, None)?;
        ctx.noticed.set(true);
        Ok(())
    }

    /// Writes a notice and keeps the due and parked indexes in step with its state.
    fn store_notice(
        &mut self,
        n: &OutboxNotice,
        before: Option<&OutboxNotice>,
    ) -> Result<(), JournalError> {
        let bytes = codec::encode(RecordKind::Notice, n)?;
        let id = n.notice_id.as_bytes();
        self.notices
            .insert(id, bytes.as_slice())
            .map_err(st("write notice"))?;
        if let Some(b) = before {
            match b.state {
                NoticeState::Pending => {
                    self.notices_due
                        .remove(due_key(b.next_attempt_at_ms, &b.notice_id).as_slice())
                        .map_err(st("write notice due"))?;
                }
                NoticeState::Parked => {
                    self.notices_parked
                        .remove(id)
                        .map_err(st("write notice parked"))?;
                }
                NoticeState::Sent | NoticeState::NotNeeded => {}
            }
        }
        match n.state {
            NoticeState::Pending => {
                self.notices_due
                    .insert(due_key(n.next_attempt_at_ms, &n.notice_id).as_slice(), ())
                    .map_err(st("write notice due"))?;
            }
            NoticeState::Parked => {
                self.notices_parked
                    .insert(id, ())
                    .map_err(st("write notice parked"))?;
            }
            NoticeState::Sent | NoticeState::NotNeeded => {}
        }
        Ok(())
    }

    fn requeue_notice(&mut self, id: &str, ctx: &Ctx<'_>) -> Result<OutboxNotice, JournalError> {
        let before = self
            .load_notice(id)?
            .ok_or_else(|| JournalError::NotFound {
                kind: RecordKind::Notice,
                key: id.to_owned(),
            })?;
        let next = before
            .requeued(ctx.now_ms)
            .map_err(|detail| JournalError::Invalid {
                what: "notice re-queue",
                detail,
            })?;
        self.store_notice(&next, Some(&before))?;
        ctx.noticed.set(true);
        Ok(next)
    }

    fn notice_attempt(
        &mut self,
        id: &str,
        outcome: &NoticeOutcome,
        ctx: &Ctx<'_>,
    ) -> Result<OutboxNotice, JournalError> {
        let before = self
            .load_notice(id)?
            .ok_or_else(|| JournalError::NotFound {
                kind: RecordKind::Notice,
                key: id.to_owned(),
            })?;
        let next = before
            .after(outcome, ctx.now_ms)
            .map_err(|detail| JournalError::Invalid {
                what: "notice attempt",
                detail,
            })?;
        self.store_notice(&next, Some(&before))?;
        Ok(next)
    }
}

// ---- merchant refunds (spec/journal.md §4b) -----------------------------------------------

impl Tables<'_> {
    /// Indexes a payment by (acquirer, RRN of its 0200) and (acquirer, STAN ‖ DE7 of its 0200)
    /// once its trace is known, so an acquirer's advice (DE90 names the original by STAN and DE7)
    /// or an operator (with the RRN) finds it.
    fn index_refs(&mut self, p: &Payment) -> Result<(), JournalError> {
        let a = &p.acquirer;
        let trace = match (a.stan.as_deref(), a.transmitted.as_deref()) {
            (Some(stan), Some(de7)) if !stan.is_empty() && !de7.is_empty() => {
                Some(format!("{stan}{de7}"))
            }
            _ => None,
        };
        let refs = a.rrn.iter().filter(|r| !r.is_empty()).chain(trace.iter());
        for r in refs {
            let key = composite(&[&p.routing.acquirer, r])?;
            self.payment_refs
                .insert(key.as_slice(), p.id.key().as_slice())
                .map_err(st("write payment ref"))?;
        }
        Ok(())
    }

    fn load_refund_key(&self, key: &[u8]) -> Result<Refund, JournalError> {
        let guard = self
            .refunds
            .get(key)
            .map_err(st("read refund"))?
            .ok_or_else(|| JournalError::Corrupt {
                kind: RecordKind::Refund,
                key: codec::key_text(key),
                detail: "indexed as a merchant refund but missing".to_owned(),
            })?;
        codec::decode(RecordKind::Refund, key, guard.value())
    }

    /// Journals a refund the merchant made at its acquirer: SUCCESS at once (the domestic side did
    /// it), the payment's refunded total and state, and the `RefundCredit` notice to the payment's
    /// wallet, in one transaction. A repeat of (acquirer, reference) with the same payment and
    /// amount returns the first refund and changes nothing; with another payment or amount it is
    /// `Duplicate`.
    fn merchant_refund(
        &mut self,
        new: NewMerchantRefund,
        ctx: &Ctx<'_>,
    ) -> Result<MerchantRefundRecorded, JournalError> {
        crate::payment::RequestId::new(new.reference.as_str()).map_err(|detail| {
            JournalError::Invalid {
                what: "merchant refund reference",
                detail,
            }
        })?;
        let index = composite(&[&new.acquirer, &new.reference])?;
        let found = self
            .merchant_refunds
            .get(index.as_slice())
            .map_err(st("read merchant refund"))?
            .map(|g| g.value().to_vec());
        if let Some(key) = found {
            let refund = self.load_refund_key(&key)?;
            if refund.payment_id != new.payment_id || refund.amount != new.amount {
                return Err(JournalError::Duplicate {
                    kind: RecordKind::Refund,
                    key: format!("{}/{}", new.acquirer, new.reference),
                });
            }
            return Ok(MerchantRefundRecorded {
                refund,
                repeat: true,
            });
        }
        let mut payment = self.load_payment(new.payment_id)?;
        let other_merchant = new
            .merchant_id
            .as_deref()
            .is_some_and(|m| m.trim() != payment.routing.merchant_id.trim());
        if payment.routing.acquirer != new.acquirer || other_merchant {
            // Another acquirer's (or merchant's) payment does not exist for this one.
            return Err(JournalError::NotFound {
                kind: RecordKind::Payment,
                key: new.payment_id.to_string(),
            });
        }
        if !matches!(
            payment.state,
            PaymentState::Success | PaymentState::PartiallyRefunded | PaymentState::Refunded
        ) {
            return Err(JournalError::NotRefundable {
                payment: payment.id,
                state: payment.state,
            });
        }
        let payer_amount = reserve_refund_amount(&mut payment, new.amount)?;
        add_refunded(&mut payment, new.amount, ctx.now_ms)?;
        payment.updated_at_ms = ctx.now_ms;
        let id = RefundId::generate(ctx.now, ctx.rng)?;
        let refund = Refund {
            id,
            client_id: payment.client_id.clone(),
            request_id: new.reference.clone(),
            payment_id: payment.id,
            amount: new.amount,
            payer_amount,
            reason: new.reason,
            origin: Origin::new(
                payment.origin.scheme.clone(),
                payment.origin.scheme_ref.clone(),
            ),
            state: RefundState::Success,
            acquirer: new.trace,
            note: None,
            created_at_ms: ctx.now_ms,
            updated_at_ms: ctx.now_ms,
            initiator: Initiator::Merchant {
                acquirer: new.acquirer,
                reference: new.reference,
            },
        };
        // The credit to the wallet is the point of the record: without the rules (or with rules
        // that make no notice) nothing is journaled, so the acquirer is not told "accepted".
        let draft = ctx
            .rules
            .as_ref()
            .and_then(|r| r.refund_credit(&payment, &refund))
            .ok_or_else(|| JournalError::Invalid {
                what: "merchant refund",
                detail: "no RefundCredit notice: the pipeline's notice rules are not installed"
                    .to_owned(),
            })?;
        let notice = self
            .draft_notice(
                draft,
                &refund.client_id,
                &refund.origin,
                refund.id.to_string(),
                ctx,
            )?
            .ok_or_else(|| JournalError::Invalid {
                what: "merchant refund",
                detail: "its RefundCredit notice id exists already".to_owned(),
            })?;
        let bytes = codec::encode(RecordKind::Refund, &refund)?;
        let key = id.key();
        let pkey = payment.id.key();
        self.refunds
            .insert(key.as_slice(), bytes.as_slice())
            .map_err(st("write refund"))?;
        self.merchant_refunds
            .insert(index.as_slice(), key.as_slice())
            .map_err(st("write merchant refund"))?;
        self.payment_refunds
            .insert([pkey, key].concat().as_slice(), ())
            .map_err(st("write payment refunds"))?;
        self.store_payment(&payment)?;
        self.insert_notice(&notice, ctx)?;
        Ok(MerchantRefundRecorded {
            refund,
            repeat: false,
        })
    }
}

/// Reserves `amount` of `payment` for a refund, wallet or merchant: checked against what is left
/// ([`check_refund_amount`]); returns the payer's share of it, in the payer's currency.
fn reserve_refund_amount(payment: &mut Payment, amount: Amount) -> Result<Amount, JournalError> {
    check_refund_amount(payment, amount)?;
    let merchant = payment.quote.merchant_amount;
    let payer = payment.quote.payer_amount;
    let before = payment.refunds_reserved.minor();
    let payer_minor = payer_share(merchant.minor(), payer.minor(), before, amount.minor())
        .ok_or_else(|| JournalError::Invalid {
            what: "refund amount",
            detail: "payer share out of range".to_owned(),
        })?;
    let payer_amount =
        Amount::from_minor(payer_minor, payer.currency()).map_err(refund_amount_invalid)?;
    payment.refunds_reserved = payment
        .refunds_reserved
        .checked_add(amount)
        .map_err(refund_amount_invalid)?;
    Ok(payer_amount)
}

/// A refund of `amount` done: the payment's refunded total grows, and it enters REFUNDED once
/// all of it is refunded, PARTIALLY_REFUNDED before.
fn add_refunded(payment: &mut Payment, amount: Amount, now_ms: u64) -> Result<(), JournalError> {
    payment.refunded = payment
        .refunded
        .checked_add(amount)
        .map_err(refund_amount_invalid)?;
    let state = if payment.refunded.minor() >= payment.quote.merchant_amount.minor() {
        PaymentState::Refunded
    } else {
        PaymentState::PartiallyRefunded
    };
    if state != payment.state {
        payment.enter(state, now_ms);
    }
    Ok(())
}

fn refund_amount_invalid(e: crate::money::AmountError) -> JournalError {
    JournalError::Invalid {
        what: "refund amount",
        detail: e.to_string(),
    }
}

/// A refund's amount against its payment, for wallet and merchant refunds alike: the payment's
/// currency, not zero, within what is left after every non-failed refund.
fn check_refund_amount(payment: &Payment, amount: Amount) -> Result<(), JournalError> {
    let merchant = payment.quote.merchant_amount;
    if amount.currency() != merchant.currency() {
        return Err(JournalError::Invalid {
            what: "refund amount",
            detail: format!(
                "{} is not the payment's currency {}",
                amount.currency(),
                merchant.currency()
            ),
        });
    }
    if amount.is_zero() {
        return Err(JournalError::Invalid {
            what: "refund amount",
            detail: "zero".to_owned(),
        });
    }
    let remaining = payment.refundable();
    if amount.minor() > remaining {
        return Err(JournalError::RefundExceedsPayment {
            payment: payment.id,
            requested: amount.minor(),
            remaining,
        });
    }
    Ok(())
}
