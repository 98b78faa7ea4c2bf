//! [`RedbJournal`]: the embedded journal, one redb file, one writer thread (group commit), reads
//! from any thread through consistent [`Snapshot`]s.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable};

use super::kv::{Entry, KvRead, RedbRead, Tbl};
use super::lease::{Instance, InstanceRecord, Lease, Owners, SharedKey};
use super::postgres::{PgConfig, PgReaders, PgStore};

use super::codec;
use super::critical::{DebitOrder, FinishPayment, OpenPayment, Opened};
use super::idempotency::{Begin, BodyHash, IdempotencyKey, StoredResponse};
use super::ids::{CustomerId, PaymentId, RefundId};
use super::outbox::{NoticeOutcome, NoticeRules, OutboxNotice};
use super::payment::{DailyUsage, NewPayment, Payment, PaymentEvent};
use super::refund::{MerchantRefundRecorded, NewMerchantRefund, NewRefund, Refund, RefundEvent};
use super::reversal::StoredReversal;
use super::writer::{self, Done, Op, Reply, Request, WriterConfig};
use super::{Journal, JournalError, JournalFuture, RecordKind, Unresolved};
use crate::acquirer::reversal::ReversalRecord;
use crate::money::Currency;
use crate::time::{Clock, SystemClock};

/// The file format version this build writes (stored in the `meta` table as `format`).
pub const FORMAT_VERSION: u64 = 1;

/// How many idempotency records one [`Journal::purge_expired`] call removes at most, so one purge
/// never holds the writer for long.
pub const PURGE_LIMIT: usize = 10_000;

/// How to open a [`RedbJournal`].
#[derive(Clone)]
pub struct JournalConfig {
    /// The redb file (created if missing).
    pub path: PathBuf,
    /// Most writes committed in one transaction (default 256). `1` turns group commit off: one
    /// transaction, one fsync per write (the benchmark's baseline).
    pub max_batch: usize,
    /// How long a completed idempotency record is kept after its response was stored (default
    /// 7 days). A wallet retrying later than this gets a new request, so it must be longer than
    /// any wallet's retry horizon.
    pub idempotency_retention: Duration,
    /// Where timestamps come from.
    pub clock: Arc<dyn Clock>,
    /// redb's page cache, bytes (default 32 MiB; redb's own default is 1 GiB). Reads of pages not
    /// cached go to the file (the OS page cache).
    pub cache_bytes: usize,
}

/// The default size of redb's page cache: 32 MiB.
pub const DEFAULT_CACHE_BYTES: usize = 32 << 20;

impl JournalConfig {
    /// Defaults for a journal at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JournalConfig {
            path: path.into(),
            max_batch: 256,
            idempotency_retention: Duration::from_secs(7 * 24 * 3600),
            clock: Arc::new(SystemClock),
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

impl std::fmt::Debug for JournalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalConfig")
            .field("path", &self.path)
            .field("max_batch", &self.max_batch)
            .field("idempotency_retention", &self.idempotency_retention)
            .field("cache_bytes", &self.cache_bytes)
            .finish_non_exhaustive()
    }
}

/// What the writer has done since the journal was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Writes committed (acknowledged), including refused ones (a refusal is an answer too).
    pub writes: u64,
    /// Durable transactions committed: `writes / commits` is the mean group size.
    pub commits: u64,
    /// Batches that failed to commit (every write in them was answered with the error).
    pub failed_batches: u64,
    /// The most writes committed in one transaction.
    pub largest_batch: u64,
}

/// The journal: the embedded redb file by default ([`RedbJournal::open`]), or a PostgreSQL
/// database several instances share ([`RedbJournal::open_postgres`], spec/journal.md §11). The
/// logic (the writer's ops and the snapshot reads) is the same for both; only the storage under
/// [`Kv`](super::kv) differs. (The name is historical: the PostgreSQL engine is this type too.)
pub struct RedbJournal {
    engine: Engine,
    counters: Arc<writer::Counters>,
    path: PathBuf,
    tx: Option<Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    rules: Arc<Mutex<Option<Arc<dyn NoticeRules>>>>,
    noticed: Arc<tokio::sync::Notify>,
    /// This process on a shared journal (PostgreSQL); `None` on redb.
    instance: Option<Instance>,
}

/// Where the journal's tables live.
enum Engine {
    Redb(Arc<Database>),
    Postgres(Arc<PgReaders>),
}

impl std::fmt::Debug for RedbJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbJournal")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RedbJournal {
    /// Opens (or creates) the journal file and starts its writer thread. Refuses a file written in
    /// an unknown format version. redb recovers an interrupted file on open (its commit protocol
    /// never exposes a half-written transaction).
    pub fn open(config: JournalConfig) -> Result<Self, JournalError> {
        create_private(&config.path)?;
        let db = Database::builder()
            .set_cache_size(config.cache_bytes)
            .create(&config.path)
            .map_err(|e| JournalError::storage("open", e))?;
        let txn = db
            .begin_write()
            .map_err(|e| JournalError::storage("begin write", e))?;
        {
            writer::create_tables(&txn)?;
            let mut meta = writer::meta_table(&txn)?;
            let found = meta
                .get("format")
                .map_err(|e| JournalError::storage("read meta", e))?
                .map(|g| g.value());
            match found {
                None => {
                    meta.insert("format", FORMAT_VERSION)
                        .map_err(|e| JournalError::storage("write meta", e))?;
                }
                Some(FORMAT_VERSION) => {}
                Some(other) => {
                    return Err(JournalError::UnsupportedFormat {
                        found: other,
                        supported: FORMAT_VERSION,
                    });
                }
            }
        }
        txn.commit()
            .map_err(|e| JournalError::storage("commit", e))?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel();
        let writer_db = Arc::clone(&db);
        let counters = Arc::new(writer::Counters::default());
        let rules = Arc::new(Mutex::new(None));
        let noticed = Arc::new(tokio::sync::Notify::new());
        let writer_config = WriterConfig {
            max_batch: config.max_batch,
            retention: config.idempotency_retention,
            clock: config.clock,
            counters: Arc::clone(&counters),
            rules: Arc::clone(&rules),
            noticed: Arc::clone(&noticed),
            instance: None,
        };
        let writer = std::thread::Builder::new()
            .name("journal-writer".to_owned())
            .spawn(move || writer::run(Box::new(writer::RedbStore(writer_db)), rx, writer_config))
            .map_err(|e| JournalError::storage("start writer thread", e))?;
        Ok(RedbJournal {
            engine: Engine::Redb(db),
            counters,
            path: config.path,
            tx: Some(tx),
            writer: Some(writer),
            rules,
            noticed,
            instance: None,
        })
    }

    /// Opens the journal on a PostgreSQL database migrated to this build's schema
    /// ([`migrate`](super::postgres::migrate); with `migrate` true it is applied first) and starts
    /// its writer thread. `journal` supplies the writer's settings (batch size, retention, clock);
    /// its path is only a label.
    pub fn open_postgres(
        pg: PgConfig,
        journal: JournalConfig,
        migrate: bool,
    ) -> Result<Self, JournalError> {
        if migrate {
            super::postgres::migrate(&pg)?;
        }
        let store_pg = pg.clone();
        let (client, versions) = super::postgres::off_runtime(|| -> Result<_, JournalError> {
            let mut client = store_pg.connect()?;
            let versions = super::postgres::schema_versions(&mut client)?;
            Ok((client, versions))
        })?;
        let newest = super::postgres::MIGRATIONS
            .iter()
            .map(|m| m.0)
            .max()
            .unwrap_or(0);
        if versions.last() != Some(&newest) {
            return Err(JournalError::Invalid {
                what: "postgres journal",
                detail: format!(
                    "the database schema is at version {:?}, this build needs {newest}: run `qrbridge journal migrate`",
                    versions.last()
                ),
            });
        }
        let (tx, rx) = mpsc::channel();
        let counters = Arc::new(writer::Counters::default());
        let rules = Arc::new(Mutex::new(None));
        let noticed = Arc::new(tokio::sync::Notify::new());
        let rng = ring::rand::SystemRandom::new();
        let instance = Instance {
            name: pg
                .instance
                .clone()
                .unwrap_or_else(|| format!("gw-{}", &super::lease::random_hex(&rng)[..8])),
            token: super::lease::random_hex(&rng),
            lease_ms: u64::try_from(pg.lease.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        };
        let writer_config = WriterConfig {
            max_batch: journal.max_batch,
            retention: journal.idempotency_retention,
            clock: journal.clock,
            counters: Arc::clone(&counters),
            rules: Arc::clone(&rules),
            noticed: Arc::clone(&noticed),
            instance: Some(instance.clone()),
        };
        let mut store = PgStore::new(pg.clone(), client);
        // Registered before anything else is written: the lease record exists from the start.
        super::postgres::off_runtime(|| writer::register(&mut store, &writer_config))?;
        let writer = std::thread::Builder::new()
            .name("journal-writer".to_owned())
            .spawn(move || writer::run(Box::new(store), rx, writer_config))
            .map_err(|e| JournalError::storage("start writer thread", e))?;
        Ok(RedbJournal {
            engine: Engine::Postgres(PgReaders::new(pg.clone())),
            counters,
            path: PathBuf::from(pg.redacted()),
            tx: Some(tx),
            writer: Some(writer),
            rules,
            noticed,
            instance: Some(instance),
        })
    }

    /// This process on a shared journal (its name owns the records it works); `None` on redb.
    pub fn instance(&self) -> Option<&Instance> {
        self.instance.as_ref()
    }

    /// Installs the rules that decide which payment and refund state changes create a notice
    /// (replacing any installed before). Every later state change asks them inside its own write
    /// transaction, so a notice exists if and only if its state change committed.
    pub fn set_notice_rules(&self, rules: Arc<dyn NoticeRules>) {
        *self.rules.lock().unwrap_or_else(|p| p.into_inner()) = Some(rules);
    }

    /// Signalled (a stored permit if nobody waits) after every commit that created a notice.
    pub fn notice_signal(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.noticed)
    }

    /// Records how a delivery attempt ended; only a PENDING notice changes (otherwise
    /// [`JournalError::Invalid`]). Mark a notice SENT only after the wallet acknowledged it.
    pub async fn notice_attempt(
        &self,
        notice_id: &str,
        outcome: NoticeOutcome,
    ) -> Result<OutboxNotice, JournalError> {
        expect(
            self.write(Op::Notice(notice_id.to_owned(), outcome))
                .await?,
            |d| match d {
                Done::Notice(n) => Some(*n),
                _ => None,
            },
        )
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The writer's counters.
    pub fn stats(&self) -> JournalStats {
        let c = &self.counters;
        JournalStats {
            writes: c.writes.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            failed_batches: c.failed_batches.load(Ordering::Relaxed),
            largest_batch: c.largest_batch.load(Ordering::Relaxed),
        }
    }

    /// Stops the writer after the queued writes and releases the file.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }

    fn submit(&self, op: Op, reply: Reply) -> Result<(), JournalError> {
        let tx = self.tx.as_ref().ok_or(JournalError::Closed)?;
        tx.send(Request { op, reply })
            .map_err(|_| JournalError::Closed)
    }

    /// Queues a write and awaits its commit without blocking the runtime.
    pub(crate) async fn write(&self, op: Op) -> Result<Done, JournalError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(op, Reply::Async(tx))?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Queues a write and blocks the calling thread until it is committed.
    pub(crate) fn write_blocking(&self, op: Op) -> Result<Done, JournalError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(op, Reply::Blocking(tx))?;
        rx.recv().map_err(|_| JournalError::Closed)?
    }

    /// Puts a PARKED notice back to PENDING, due now (for an operator, once the wallet's endpoint
    /// works again); any other state is [`JournalError::Invalid`]. The deliverer is signalled.
    pub async fn requeue_notice(&self, notice_id: &str) -> Result<OutboxNotice, JournalError> {
        expect(
            self.write(Op::Requeue(notice_id.to_owned())).await?,
            |d| match d {
                Done::Notice(n) => Some(*n),
                _ => None,
            },
        )
    }

    /// A consistent view of everything committed so far.
    pub fn snapshot(&self) -> Result<Snapshot, JournalError> {
        match &self.engine {
            Engine::Redb(db) => {
                let txn = db
                    .begin_read()
                    .map_err(|e| JournalError::storage("begin read", e))?;
                Ok(Snapshot::over(Box::new(RedbRead { txn })))
            }
            Engine::Postgres(readers) => readers.snapshot(),
        }
    }

    /// One reversal (the `ReversalStore` view).
    pub(crate) fn reversal(&self, id: u64) -> Result<Option<ReversalRecord>, JournalError> {
        self.snapshot()?.reversal(id)
    }

    /// Every pending reversal, in id order.
    /// On a shared journal, only this instance's (others' are taken over through their leases).
    pub(crate) fn pending_reversals(&self) -> Result<Vec<ReversalRecord>, JournalError> {
        Ok(self.unresolved_mine_now()?.reversals)
    }

    /// Everything unresolved this process must act on: all of it on redb, the records its
    /// instance name owns on a shared journal.
    fn unresolved_mine_now(&self) -> Result<Unresolved, JournalError> {
        let snapshot = self.snapshot()?;
        match &self.instance {
            None => snapshot.unresolved(),
            Some(me) => snapshot.unresolved_where(|_, owner| owner == me.name.as_bytes()),
        }
    }

    /// Whether this process may work the reversal `id` now: always on redb; on a shared journal
    /// while its instance owns it.
    pub(crate) fn owns_reversal(&self, id: u64) -> Result<bool, JournalError> {
        let Some(me) = &self.instance else {
            return Ok(true);
        };
        let key = writer::open_key(writer::OPEN_REVERSAL, &id.to_be_bytes());
        Ok(self
            .snapshot()?
            .kv
            .get(Tbl::Open, &key)?
            .is_some_and(|owner| owner == me.name.as_bytes()))
    }

    fn lease_write(&self, op: Op) -> JournalFuture<'_, Lease> {
        Box::pin(async move {
            expect(self.write(op).await?, |d| match d {
                Done::Lease(l) => Some(*l),
                _ => None,
            })
        })
    }
}

impl Drop for RedbJournal {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A read transaction: every read through one snapshot sees the same committed state.
pub struct Snapshot {
    kv: Box<dyn KvRead + Send>,
}

impl Snapshot {
    /// A snapshot over any engine's read transaction.
    pub(crate) fn over(kv: Box<dyn KvRead + Send>) -> Self {
        Snapshot { kv }
    }

    fn all(&self, t: Tbl) -> Result<Vec<Entry>, JournalError> {
        self.kv.scan(t, None, None, usize::MAX)
    }

    fn record<T: serde::de::DeserializeOwned>(
        &self,
        def: Tbl,
        kind: RecordKind,
        key: &[u8],
    ) -> Result<Option<T>, JournalError> {
        match self.kv.get(def, key)? {
            Some(g) => codec::decode(kind, key, &g).map(Some),
            None => Ok(None),
        }
    }

    fn by_request<T: serde::de::DeserializeOwned>(
        &self,
        index: Tbl,
        records: Tbl,
        kind: RecordKind,
        client_id: &str,
        request_id: &str,
    ) -> Result<Option<T>, JournalError> {
        let key = codec::composite(&[client_id, request_id])?;
        let id = match self.kv.get(index, &key)? {
            Some(g) => g,
            None => return Ok(None),
        };
        // An index entry without its record is damage, not absence.
        self.record(records, kind, &id)?
            .map(Some)
            .ok_or_else(|| corrupt_key(kind, &id))
    }

    /// Every payment, in id order (UUIDv7 ids: creation order). A scan, for operators' tools.
    pub fn payments(&self) -> Result<Vec<Payment>, JournalError> {
        let mut out = Vec::new();
        for (k, v) in self.all(Tbl::Payments)? {
            out.push(codec::decode(RecordKind::Payment, &k, &v)?);
        }
        Ok(out)
    }

    /// Every refund, in id order (UUIDv7 ids: creation order). A scan, for operators' tools
    /// (reconciliation).
    pub fn refunds(&self) -> Result<Vec<Refund>, JournalError> {
        let mut out = Vec::new();
        for (k, v) in self.all(Tbl::Refunds)? {
            out.push(codec::decode(RecordKind::Refund, &k, &v)?);
        }
        Ok(out)
    }

    /// The payment whose 0200 on this acquirer's link carried `rrn`: its RRN (DE37), or its
    /// STAN ‖ DE7 (16 digits).
    pub fn payment_by_acquirer_ref(
        &self,
        acquirer: &str,
        rrn: &str,
    ) -> Result<Option<Payment>, JournalError> {
        self.by_request(
            Tbl::PaymentRefs,
            Tbl::Payments,
            RecordKind::Payment,
            acquirer,
            rrn,
        )
    }

    /// The merchant refund an acquirer reported under `reference`.
    pub fn merchant_refund(
        &self,
        acquirer: &str,
        reference: &str,
    ) -> Result<Option<Refund>, JournalError> {
        self.by_request(
            Tbl::MerchantRefunds,
            Tbl::Refunds,
            RecordKind::Refund,
            acquirer,
            reference,
        )
    }

    /// Every notice, in notice id order. A scan, for operators' tools.
    pub fn notices(&self) -> Result<Vec<OutboxNotice>, JournalError> {
        let mut out = Vec::new();
        for (k, v) in self.all(Tbl::Notices)? {
            out.push(codec::decode(RecordKind::Notice, &k, &v)?);
        }
        Ok(out)
    }

    /// A payment.
    pub fn payment(&self, id: PaymentId) -> Result<Option<Payment>, JournalError> {
        self.record(Tbl::Payments, RecordKind::Payment, &id.key())
    }

    /// The payment made for a wallet's payment request.
    pub fn payment_by_request(
        &self,
        client_id: &str,
        request_id: &str,
    ) -> Result<Option<Payment>, JournalError> {
        self.by_request(
            Tbl::PaymentRequests,
            Tbl::Payments,
            RecordKind::Payment,
            client_id,
            request_id,
        )
    }

    /// A refund.
    pub fn refund(&self, id: RefundId) -> Result<Option<Refund>, JournalError> {
        self.record(Tbl::Refunds, RecordKind::Refund, &id.key())
    }

    /// The refund made for a wallet's refund request.
    pub fn refund_by_request(
        &self,
        client_id: &str,
        request_id: &str,
    ) -> Result<Option<Refund>, JournalError> {
        self.by_request(
            Tbl::RefundRequests,
            Tbl::Refunds,
            RecordKind::Refund,
            client_id,
            request_id,
        )
    }

    /// Every refund of a payment, in id order (UUIDv7: by creation millisecond; refunds made in the
    /// same millisecond in no particular order).
    pub fn refunds_of(&self, payment: PaymentId) -> Result<Vec<Refund>, JournalError> {
        let start = payment.key();
        let mut end = [0xffu8; 33];
        end[..16].copy_from_slice(&start);
        let mut out = Vec::new();
        for (k, _) in self
            .kv
            .scan(Tbl::PaymentRefunds, Some(&start), Some(&end), usize::MAX)?
        {
            let id = k
                .get(16..)
                .and_then(RefundId::from_key)
                .ok_or_else(|| corrupt_key(RecordKind::Refund, &k))?;
            let refund = self
                .refund(id)?
                .ok_or_else(|| corrupt_key(RecordKind::Refund, &k))?;
            out.push(refund);
        }
        Ok(out)
    }

    /// A reversal.
    pub fn reversal(&self, id: u64) -> Result<Option<ReversalRecord>, JournalError> {
        let key = id.to_be_bytes();
        match self.kv.get(Tbl::Reversals, &key)? {
            Some(g) => codec::decode::<StoredReversal>(RecordKind::Reversal, &key, &g)?
                .into_record(&key)
                .map(Some),
            None => Ok(None),
        }
    }

    /// A notice in the outbox.
    pub fn notice(&self, notice_id: &str) -> Result<Option<OutboxNotice>, JournalError> {
        self.record(Tbl::Notices, RecordKind::Notice, notice_id.as_bytes())
    }

    /// PENDING notices due at or before `now_ms`, soonest first, at most `limit`.
    pub fn due_notices(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<OutboxNotice>, JournalError> {
        let end = now_ms.saturating_add(1).to_be_bytes();
        let mut out = Vec::new();
        for (k, _) in self
            .kv
            .scan(Tbl::NoticesDue, None, Some(end.as_slice()), limit)?
        {
            let id = k.get(8..).unwrap_or_default();
            out.push(
                self.record(Tbl::Notices, RecordKind::Notice, id)?
                    .ok_or_else(|| corrupt_key(RecordKind::Notice, &k))?,
            );
        }
        Ok(out)
    }

    /// When the first PENDING notice due after `after_ms` is due (ms since the Unix epoch).
    pub fn next_notice_due_after(&self, after_ms: u64) -> Result<Option<u64>, JournalError> {
        let start = after_ms.saturating_add(1).to_be_bytes();
        match self
            .kv
            .scan(Tbl::NoticesDue, Some(start.as_slice()), None, 1)?
            .into_iter()
            .next()
        {
            None => Ok(None),
            Some((k, _)) => {
                let at = k
                    .get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| corrupt_key(RecordKind::Notice, &k))?;
                Ok(Some(at))
            }
        }
    }

    /// Every PENDING notice, soonest first.
    pub fn pending_notices(&self) -> Result<Vec<OutboxNotice>, JournalError> {
        self.due_notices(u64::MAX - 1, usize::MAX)
    }

    /// Every PARKED notice, by notice id: what an operator must look at.
    pub fn parked_notices(&self) -> Result<Vec<OutboxNotice>, JournalError> {
        let mut out = Vec::new();
        for (k, _) in self.all(Tbl::NoticesParked)? {
            out.push(
                self.notice_by_key(&k)?
                    .ok_or_else(|| corrupt_key(RecordKind::Notice, &k))?,
            );
        }
        Ok(out)
    }

    fn notice_by_key(&self, key: &[u8]) -> Result<Option<OutboxNotice>, JournalError> {
        self.record(Tbl::Notices, RecordKind::Notice, key)
    }

    /// Whether a wallet request was begun and not yet completed or abandoned.
    pub fn is_in_flight(&self, key: &IdempotencyKey) -> Result<bool, JournalError> {
        let open = writer::open_key(writer::OPEN_REQUEST, &key.to_bytes()?);
        Ok(self.kv.get(Tbl::Open, &open)?.is_some())
    }

    /// What the idempotency record of `key` says to a request with body `body` (replay,
    /// inconsistent, in flight), or `None` when there is none: a read, nothing is stored.
    pub fn request(
        &self,
        key: &IdempotencyKey,
        body: BodyHash,
    ) -> Result<Option<Begin>, JournalError> {
        let rec: Option<super::idempotency::IdempotencyRecord> =
            self.record(Tbl::Idempotency, RecordKind::Idempotency, &key.to_bytes()?)?;
        Ok(rec.map(|r| writer::seen(r, body)))
    }

    /// Whether an idempotency record exists for `key` (in flight or completed, not purged).
    pub fn has_request(&self, key: &IdempotencyKey) -> Result<bool, JournalError> {
        Ok(self.kv.get(Tbl::Idempotency, &key.to_bytes()?)?.is_some())
    }

    /// What a customer used of their daily limits on `day` (see [`utc_day`](super::utc_day)) in
    /// merchant `currency`.
    pub fn daily_usage(
        &self,
        client_id: &str,
        customer: &CustomerId,
        currency: Currency,
        day: u64,
    ) -> Result<DailyUsage, JournalError> {
        let key = writer::usage_key(client_id, customer.expose(), currency.code(), day)?;
        match self.kv.get(Tbl::Usage, &key)? {
            Some(g) => codec::decode(RecordKind::Payment, &key, &g),
            None => Ok(DailyUsage::default()),
        }
    }

    /// Everything recovery must act on, from the `open` index (not a scan of all records).
    pub fn unresolved(&self) -> Result<Unresolved, JournalError> {
        self.unresolved_where(|_, _| true)
    }

    /// Who owns the unresolved records, and the instances' lease records (shared journal).
    pub fn owners(&self) -> Result<Owners, JournalError> {
        let mut out = Owners::default();
        for (k, v) in self.all(Tbl::Instances)? {
            out.instances
                .push(codec::decode::<InstanceRecord>(RecordKind::Meta, &k, &v)?);
        }
        for (_, v) in self.all(Tbl::Open)? {
            *out.open
                .entry(String::from_utf8_lossy(&v).into_owned())
                .or_default() += 1;
        }
        Ok(out)
    }

    /// A shared decode or quote still before its expiry at `now_ms`: its payload.
    pub fn shared(&self, key: &SharedKey, now_ms: u64) -> Result<Option<Vec<u8>>, JournalError> {
        Ok(self.kv.get(Tbl::Shared, &key.bytes())?.and_then(|v| {
            super::lease::split_shared(&v)
                .filter(|(at, _)| *at > now_ms)
                .map(|(_, p)| p.to_vec())
        }))
    }

    /// What [`Snapshot::unresolved`] gives, for the `open` entries `keep(key, owner)` accepts.
    pub(crate) fn unresolved_where(
        &self,
        keep: impl Fn(&[u8], &[u8]) -> bool,
    ) -> Result<Unresolved, JournalError> {
        let mut out = Unresolved::default();
        for (k, v) in self.all(Tbl::Open)? {
            if !keep(&k, &v) {
                continue;
            }
            let key = k.as_slice();
            let bad = || corrupt_key(RecordKind::Meta, key);
            match key.split_first() {
                Some((&writer::OPEN_PAYMENT, id)) => {
                    let id = PaymentId::from_key(id).ok_or_else(bad)?;
                    out.payments.push(self.payment(id)?.ok_or_else(bad)?);
                }
                Some((&writer::OPEN_REFUND, id)) => {
                    let id = RefundId::from_key(id).ok_or_else(bad)?;
                    out.refunds.push(self.refund(id)?.ok_or_else(bad)?);
                }
                Some((&writer::OPEN_REQUEST, rest)) => {
                    out.in_flight
                        .push(IdempotencyKey::from_bytes(rest).ok_or_else(bad)?);
                }
                Some((&writer::OPEN_REVERSAL, id)) => {
                    let id = <[u8; 8]>::try_from(id)
                        .map(u64::from_be_bytes)
                        .map_err(|_| bad())?;
                    out.reversals.push(self.reversal(id)?.ok_or_else(bad)?);
                }
                _ => return Err(bad()),
            }
        }
        Ok(out)
    }
}

/// Creates the file readable and writable by its owner only (it holds payer identifiers); an
/// existing file is left as it is.
fn create_private(path: &Path) -> Result<(), JournalError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(JournalError::storage("create file", e)),
    }
}

fn corrupt_key(kind: RecordKind, key: &[u8]) -> JournalError {
    JournalError::Corrupt {
        kind,
        key: codec::key_text(key),
        detail: "index entry without a valid record".to_owned(),
    }
}

fn expect<T>(done: Done, pick: impl FnOnce(Done) -> Option<T>) -> Result<T, JournalError> {
    let kind = done.kind();
    pick(done).ok_or_else(|| JournalError::Storage {
        op: "writer answer",
        detail: format!("unexpected answer {kind}"),
    })
}

impl Journal for RedbJournal {
    fn record_intent(&self, new: NewPayment) -> JournalFuture<'_, Payment> {
        Box::pin(async move {
            expect(self.write(Op::Intent(Box::new(new))).await?, |d| match d {
                Done::Payment(p) => Some(*p),
                _ => None,
            })
        })
    }

    fn record_order(&self, new: NewPayment, inquire_at_ms: u64) -> JournalFuture<'_, Payment> {
        Box::pin(async move {
            expect(
                self.write(Op::Order(Box::new(new), inquire_at_ms)).await?,
                |d| match d {
                    Done::Payment(p) => Some(*p),
                    _ => None,
                },
            )
        })
    }

    fn debit_order(&self, debit: DebitOrder) -> JournalFuture<'_, Opened> {
        Box::pin(async move {
            expect(
                self.write(Op::DebitOrder(Box::new(debit))).await?,
                |d| match d {
                    Done::Steps(mut steps) => steps.pop().map(|p| Opened::Sent(Box::new(p))),
                    Done::Begin(b) => Some(Opened::Repeat(b)),
                    _ => None,
                },
            )
        })
    }

    fn open_payment(&self, open: OpenPayment) -> JournalFuture<'_, Opened> {
        Box::pin(async move {
            expect(
                self.write(Op::OpenPayment(Box::new(open))).await?,
                |d| match d {
                    Done::Steps(mut steps) => steps.pop().map(|p| Opened::Sent(Box::new(p))),
                    Done::Begin(b) => Some(Opened::Repeat(b)),
                    _ => None,
                },
            )
        })
    }

    fn finish_payment(&self, finish: FinishPayment) -> JournalFuture<'_, Payment> {
        Box::pin(async move {
            expect(
                self.write(Op::FinishPayment(Box::new(finish))).await?,
                |d| match d {
                    Done::Steps(mut steps) => steps.pop(),
                    _ => None,
                },
            )
        })
    }

    fn request<'a>(
        &'a self,
        key: &'a IdempotencyKey,
        body: BodyHash,
    ) -> JournalFuture<'a, Option<Begin>> {
        Box::pin(std::future::ready(
            self.snapshot().and_then(|s| s.request(key, body)),
        ))
    }

    fn update_payment(&self, id: PaymentId, event: PaymentEvent) -> JournalFuture<'_, Payment> {
        Box::pin(async move {
            expect(self.write(Op::Payment(id, event)).await?, |d| match d {
                Done::Payment(p) => Some(*p),
                _ => None,
            })
        })
    }

    fn reserve_refund(&self, new: NewRefund) -> JournalFuture<'_, Refund> {
        Box::pin(async move {
            expect(self.write(Op::Refund(new)).await?, |d| match d {
                Done::Refund(r) => Some(*r),
                _ => None,
            })
        })
    }

    fn record_merchant_refund(
        &self,
        new: NewMerchantRefund,
    ) -> JournalFuture<'_, MerchantRefundRecorded> {
        Box::pin(async move {
            expect(
                self.write(Op::MerchantRefund(Box::new(new))).await?,
                |d| match d {
                    Done::MerchantRefund(r) => Some(*r),
                    _ => None,
                },
            )
        })
    }

    fn payment_by_acquirer_ref<'a>(
        &'a self,
        acquirer: &'a str,
        rrn: &'a str,
    ) -> JournalFuture<'a, Option<Payment>> {
        Box::pin(std::future::ready(
            self.snapshot()
                .and_then(|s| s.payment_by_acquirer_ref(acquirer, rrn)),
        ))
    }

    fn update_refund(&self, id: RefundId, event: RefundEvent) -> JournalFuture<'_, Refund> {
        Box::pin(async move {
            expect(self.write(Op::RefundEvent(id, event)).await?, |d| match d {
                Done::Refund(r) => Some(*r),
                _ => None,
            })
        })
    }

    fn begin(&self, key: IdempotencyKey, body: BodyHash) -> JournalFuture<'_, Begin> {
        Box::pin(async move {
            expect(self.write(Op::Begin(key, body)).await?, |d| match d {
                Done::Begin(b) => Some(b),
                _ => None,
            })
        })
    }

    fn complete(&self, key: IdempotencyKey, response: StoredResponse) -> JournalFuture<'_, ()> {
        Box::pin(async move {
            expect(
                self.write(Op::Complete(key, response)).await?,
                |d| match d {
                    Done::Unit => Some(()),
                    _ => None,
                },
            )
        })
    }

    fn abandon(&self, key: IdempotencyKey) -> JournalFuture<'_, bool> {
        Box::pin(async move {
            expect(self.write(Op::Abandon(key)).await?, |d| match d {
                Done::Flag(b) => Some(b),
                _ => None,
            })
        })
    }

    fn purge_expired(&self) -> JournalFuture<'_, usize> {
        Box::pin(async move {
            expect(
                self.write(Op::Purge { limit: PURGE_LIMIT }).await?,
                |d| match d {
                    Done::Count(n) => Some(n),
                    _ => None,
                },
            )
        })
    }

    fn payment(&self, id: PaymentId) -> JournalFuture<'_, Option<Payment>> {
        Box::pin(std::future::ready(
            self.snapshot().and_then(|s| s.payment(id)),
        ))
    }

    fn payment_by_request<'a>(
        &'a self,
        client_id: &'a str,
        request_id: &'a str,
    ) -> JournalFuture<'a, Option<Payment>> {
        Box::pin(std::future::ready(
            self.snapshot()
                .and_then(|s| s.payment_by_request(client_id, request_id)),
        ))
    }

    fn refund(&self, id: RefundId) -> JournalFuture<'_, Option<Refund>> {
        Box::pin(std::future::ready(
            self.snapshot().and_then(|s| s.refund(id)),
        ))
    }

    fn refund_by_request<'a>(
        &'a self,
        client_id: &'a str,
        request_id: &'a str,
    ) -> JournalFuture<'a, Option<Refund>> {
        Box::pin(std::future::ready(
            self.snapshot()
                .and_then(|s| s.refund_by_request(client_id, request_id)),
        ))
    }

    fn refunds_of(&self, payment: PaymentId) -> JournalFuture<'_, Vec<Refund>> {
        Box::pin(std::future::ready(
            self.snapshot().and_then(|s| s.refunds_of(payment)),
        ))
    }

    fn daily_usage<'a>(
        &'a self,
        client_id: &'a str,
        customer: &'a CustomerId,
        currency: Currency,
        day: u64,
    ) -> JournalFuture<'a, DailyUsage> {
        Box::pin(std::future::ready(
            self.snapshot()
                .and_then(|s| s.daily_usage(client_id, customer, currency, day)),
        ))
    }

    fn unresolved(&self) -> JournalFuture<'_, Unresolved> {
        Box::pin(std::future::ready(
            self.snapshot().and_then(|s| s.unresolved()),
        ))
    }

    fn set_notice_rules(&self, rules: Arc<dyn NoticeRules>) {
        RedbJournal::set_notice_rules(self, rules);
    }

    fn notice_signal(&self) -> Arc<tokio::sync::Notify> {
        RedbJournal::notice_signal(self)
    }

    fn due_notices(&self, now_ms: u64, limit: usize) -> JournalFuture<'_, Vec<OutboxNotice>> {
        Box::pin(async move { self.snapshot()?.due_notices(now_ms, limit) })
    }

    fn next_notice_due_after(&self, now_ms: u64) -> JournalFuture<'_, Option<u64>> {
        Box::pin(async move { self.snapshot()?.next_notice_due_after(now_ms) })
    }

    fn notice_attempt<'a>(
        &'a self,
        notice_id: &'a str,
        outcome: NoticeOutcome,
    ) -> JournalFuture<'a, OutboxNotice> {
        Box::pin(RedbJournal::notice_attempt(self, notice_id, outcome))
    }

    fn requeue_notice<'a>(&'a self, notice_id: &'a str) -> JournalFuture<'a, OutboxNotice> {
        Box::pin(RedbJournal::requeue_notice(self, notice_id))
    }

    fn instance(&self) -> Option<&Instance> {
        self.instance.as_ref()
    }

    fn unresolved_mine(&self) -> JournalFuture<'_, Unresolved> {
        Box::pin(std::future::ready(self.unresolved_mine_now()))
    }

    fn heartbeat(&self) -> JournalFuture<'_, Lease> {
        self.lease_write(Op::Heartbeat)
    }

    fn register(&self) -> JournalFuture<'_, Lease> {
        self.lease_write(Op::Register)
    }

    fn retire(&self) -> JournalFuture<'_, bool> {
        Box::pin(async move {
            expect(self.write(Op::Retire).await?, |d| match d {
                Done::Flag(b) => Some(b),
                _ => None,
            })
        })
    }

    fn owners(&self) -> JournalFuture<'_, Owners> {
        Box::pin(std::future::ready(self.snapshot().and_then(|s| s.owners())))
    }

    fn take_over<'a>(
        &'a self,
        owner: &'a str,
        seen: Option<(String, u64)>,
    ) -> JournalFuture<'a, Unresolved> {
        Box::pin(async move {
            let keys = expect(
                self.write(Op::TakeOver(owner.to_owned(), seen)).await?,
                |d| match d {
                    Done::Keys(k) => Some(k),
                    _ => None,
                },
            )?;
            if keys.is_empty() {
                return Ok(Unresolved::default());
            }
            let keys: std::collections::HashSet<Vec<u8>> = keys.into_iter().collect();
            self.snapshot()?.unresolved_where(|k, _| keys.contains(k))
        })
    }

    fn claim_notice<'a>(
        &'a self,
        notice_id: &'a str,
        until_ms: u64,
    ) -> JournalFuture<'a, Option<OutboxNotice>> {
        Box::pin(async move {
            if self.instance.is_none() {
                // One process: nobody to share the outbox with.
                return self.snapshot()?.notice(notice_id);
            }
            expect(
                self.write(Op::ClaimNotice(notice_id.to_owned(), until_ms))
                    .await?,
                |d| match d {
                    Done::MaybeNotice(n) => Some(n.map(|n| *n)),
                    _ => None,
                },
            )
        })
    }

    fn share(&self, key: SharedKey, payload: Vec<u8>, expires_at_ms: u64) -> JournalFuture<'_, ()> {
        if let Engine::Postgres(readers) = &self.engine {
            // Not through the writer: a blind write of a fresh key needs neither its lock nor
            // its fsync (spec/journal.md §12.3).
            if self.tx.is_none() {
                return Box::pin(std::future::ready(Err(JournalError::Closed)));
            }
            return Box::pin(std::future::ready(readers.share(
                &key.bytes(),
                expires_at_ms,
                &payload,
            )));
        }
        Box::pin(async move {
            expect(
                self.write(Op::Share(key.bytes(), expires_at_ms, payload))
                    .await?,
                |d| match d {
                    Done::Unit => Some(()),
                    _ => None,
                },
            )
        })
    }

    fn shared<'a>(&'a self, key: &'a SharedKey, now_ms: u64) -> JournalFuture<'a, Option<Vec<u8>>> {
        Box::pin(std::future::ready(
            self.snapshot().and_then(|s| s.shared(key, now_ms)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unexpected_writer_answer_is_named_not_rendered() {
        let picked = expect(Done::Count(3), |d| match d {
            Done::Flag(f) => Some(f),
            _ => None,
        });
        match picked {
            Err(JournalError::Storage { op, detail }) => {
                assert_eq!(op, "writer answer");
                assert_eq!(detail, "unexpected answer Count");
            }
            other => panic!("wanted a storage error, got {other:?}"),
        }
        let picked = expect(Done::Flag(true), |d| match d {
            Done::Flag(f) => Some(f),
            _ => None,
        });
        assert!(matches!(picked, Ok(true)));
    }
}
