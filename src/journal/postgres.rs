//! The PostgreSQL engine: the journal's tables as `journal_<name> (k bytea primary key, v bytea)`
//! on a server several gateway instances share (spec/journal.md §11).
//!
//! The journal's logic is the engine's (`writer.rs` ops, `Snapshot` reads over [`Kv`]); this file
//! only stores bytes. Writes: the same group-commit writer thread as redb, each batch one
//! transaction that first takes the transaction-scoped advisory lock [`WRITE_LOCK`], so write
//! transactions of every instance on the database are serialised exactly as redb's one writer
//! serialises them (every guarantee of spec/journal.md — idempotency, daily limits, refund
//! limits, the outbox in the state change's transaction — holds across instances). Reads: a
//! `REPEATABLE READ READ ONLY` transaction per [`Snapshot`] on a bounded pool of connections.
//!
//! The `postgres` client is synchronous (it drives its own small runtime); a query made from a
//! tokio task runs outside the async runtime (`off_runtime`: `block_in_place` on the server's
//! multi-threaded runtime, a scoped thread on a current-thread one), never inside it.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use postgres::{Client, GenericClient, NoTls};

use super::JournalError;
use super::embedded::Snapshot;
use super::kv::{Entry, Kv, KvRead, Tbl};
use super::writer::Store;

/// The advisory lock key every write transaction takes (`pg_advisory_xact_lock`): ASCII "qrbj".
pub const WRITE_LOCK: i64 = 0x7172_626a;
/// The advisory lock key migrations take: ASCII "qrbm".
const MIGRATE_LOCK: i64 = 0x7172_626d;

/// Schema migrations shipped in the binary: (version, name, SQL). Applied in order, each once,
/// recorded in `journal_schema`.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "journal tables", MIGRATION_1),
    (2, "instance leases, shared decodes and quotes", MIGRATION_2),
];

const MIGRATION_1: &str = "
CREATE TABLE journal_payments (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE journal_payment_requests (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE journal_refunds (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE journal_refund_requests (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE journal_payment_refunds (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE journal_open (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE journal_reversals (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE journal_idempotency (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE journal_idempotency_expiry (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE journal_daily_usage (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE journal_notices (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE journal_notices_due (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE journal_notices_parked (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE journal_meta (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE journal_merchant_refunds (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE journal_payment_refs (k bytea PRIMARY KEY, v bytea NOT NULL);
";

const MIGRATION_2: &str = "
CREATE TABLE journal_instances (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE journal_shared (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE journal_shared_expiry (k bytea PRIMARY KEY, v bytea NOT NULL);
";

/// The default lease of an instance on its records: 15 s.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

/// How to reach the database. The password is kept apart from the URL and never printed.
#[derive(Clone)]
pub struct PgConfig {
    /// A libpq-style URL or key=value DSN without the password (`postgresql://qrbridge@db:5432/qrbridge`).
    pub url: String,
    /// The password, if the server asks for one (from an env var or a file, see `config.rs`).
    pub password: Option<String>,
    /// Read connections at most (snapshots wait for a free one); the writer has one more.
    pub readers: usize,
    /// Connect timeout; also the longest a snapshot waits for a free read connection.
    pub connect_timeout: Duration,
    /// This instance's name, which owns the unresolved records it works (spec/journal.md §12):
    /// unique per running process; a process restarted under the same name recovers its own
    /// records at once. `None`: a random name (`gw-` + 8 hex digits), so a restart's records
    /// are taken over like a dead instance's, after the lease.
    pub instance: Option<String>,
    /// How long an instance's records stay its own without a heartbeat (default 15 s; it beats
    /// every third of it).
    pub lease: Duration,
}

impl PgConfig {
    /// A config for `url`, no password, 4 readers, 5 s connect timeout.
    pub fn new(url: impl Into<String>) -> Self {
        PgConfig {
            url: url.into(),
            password: None,
            readers: 4,
            connect_timeout: Duration::from_secs(5),
            instance: None,
            lease: DEFAULT_LEASE,
        }
    }

    /// The URL with any password in it replaced by `***`, for logs.
    pub fn redacted(&self) -> String {
        redact(&self.url)
    }

    pub(crate) fn connect(&self) -> Result<Client, JournalError> {
        let mut config: postgres::Config = self
            .url
            .parse()
            .map_err(|e| JournalError::storage("parse postgres url", e))?;
        if let Some(p) = &self.password {
            config.password(p);
        }
        config.connect_timeout(self.connect_timeout);
        config
            .connect(NoTls)
            .map_err(|e| JournalError::storage("connect to postgres", e))
    }
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &self.redacted())
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("readers", &self.readers)
            .field("instance", &self.instance)
            .field("lease", &self.lease)
            .finish()
    }
}

/// `url` with the password of a `scheme://user:password@host` URL or a `password=` DSN pair
/// replaced by `***`.
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (auth, tail) = match rest.find('@') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => return url.to_owned(),
        };
        return match auth.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{tail}"),
            None => url.to_owned(),
        };
    }
    url.split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn pg(op: &'static str) -> impl Fn(postgres::Error) -> JournalError {
    move |e| JournalError::storage(op, e)
}

/// Column `i` of a row read for `op`: a column of another type than ours (a table altered by
/// hand) is a `Storage` error naming the op, not a panic (`Row::get` panics).
fn col<'a, T: postgres::types::FromSql<'a>>(
    op: &'static str,
    r: &'a postgres::Row,
    i: usize,
) -> Result<T, JournalError> {
    r.try_get(i).map_err(pg(op))
}

/// Runs `f` where the synchronous client may block (it drives a runtime of its own, which must
/// not start inside another): directly on a plain thread; on a multi-threaded tokio runtime (the
/// server's) through [`tokio::task::block_in_place`], which hands this worker's other tasks to
/// another thread and leaves the runtime for the call, so no thread is created per query; on a
/// current-thread runtime (tests, one-shot CLI commands), where `block_in_place` is not allowed,
/// on a short-lived scoped thread, one at a time since the runtime's only thread waits for it.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => f(),
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|s| match s.spawn(f).join() {
            Ok(t) => t,
            Err(p) => std::panic::resume_unwind(p),
        }),
    }
}

/// Applies every migration this build knows and the database lacks; returns the versions
/// applied. Concurrent migrators are serialised by an advisory lock. A database migrated by a
/// newer build (a version this one does not know) is refused.
pub fn migrate(config: &PgConfig) -> Result<Vec<i32>, JournalError> {
    off_runtime(|| {
        let mut client = config.connect()?;
        let mut txn = client.transaction().map_err(pg("begin migration"))?;
        txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
            .map_err(pg("lock migrations"))?;
        txn.batch_execute(
            "CREATE TABLE IF NOT EXISTS journal_schema (version integer PRIMARY KEY, \
             name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .map_err(pg("create journal_schema"))?;
        let applied = txn
            .query("SELECT version FROM journal_schema ORDER BY version", &[])
            .map_err(pg("read journal_schema"))?
            .iter()
            .map(|r| col::<i32>("read journal_schema", r, 0))
            .collect::<Result<Vec<_>, _>>()?;
        let newest = MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0);
        if let Some(&v) = applied.iter().find(|&&v| v > newest) {
            return Err(JournalError::UnsupportedFormat {
                found: u64::try_from(v).unwrap_or(0),
                supported: u64::try_from(newest).unwrap_or(0),
            });
        }
        let mut done = Vec::new();
        for (version, name, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            txn.batch_execute(sql).map_err(pg("apply migration"))?;
            txn.execute(
                "INSERT INTO journal_schema (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .map_err(pg("record migration"))?;
            done.push(*version);
        }
        txn.commit().map_err(pg("commit migration"))?;
        Ok(done)
    })
}

/// The schema versions applied to the database (empty when never migrated).
pub fn schema_versions(client: &mut Client) -> Result<Vec<i32>, JournalError> {
    let row = client
        .query_one("SELECT to_regclass('journal_schema') IS NOT NULL", &[])
        .map_err(pg("read journal_schema"))?;
    if !col::<bool>("read journal_schema", &row, 0)? {
        return Ok(Vec::new());
    }
    client
        .query("SELECT version FROM journal_schema ORDER BY version", &[])
        .map_err(pg("read journal_schema"))?
        .iter()
        .map(|r| col("read journal_schema", r, 0))
        .collect()
}

/// One transaction's tables on PostgreSQL.
struct PgKv<C> {
    c: Mutex<C>,
}

impl<C: GenericClient + Send> PgKv<C> {
    fn with<T: Send>(&self, f: impl FnOnce(&mut C) -> T + Send) -> T {
        off_runtime(|| {
            let mut c = self.c.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut c)
        })
    }
}

fn table(t: Tbl) -> String {
    format!("journal_{}", t.name())
}

fn kv_get(c: &mut impl GenericClient, t: Tbl, key: &[u8]) -> Result<Option<Vec<u8>>, JournalError> {
    let sql = format!("SELECT v FROM {} WHERE k = $1", table(t));
    c.query_opt(sql.as_str(), &[&key])
        .map_err(pg("read"))?
        .map(|r| col("read", &r, 0))
        .transpose()
}

fn kv_scan(
    c: &mut impl GenericClient,
    t: Tbl,
    from: Option<&[u8]>,
    to: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<Entry>, JournalError> {
    let lo = from.unwrap_or_default();
    let mut sql = format!("SELECT k, v FROM {} WHERE k >= $1", table(t));
    if to.is_some() {
        sql.push_str(" AND k < $2");
    }
    sql.push_str(" ORDER BY k");
    if limit != usize::MAX {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    let rows = match to {
        Some(hi) => c.query(sql.as_str(), &[&lo, &hi]),
        None => c.query(sql.as_str(), &[&lo]),
    }
    .map_err(pg("read range"))?;
    rows.iter()
        .map(|r| Ok((col("read range", r, 0)?, col("read range", r, 1)?)))
        .collect()
}

impl<C: GenericClient + Send> KvRead for PgKv<C> {
    fn get(&self, t: Tbl, key: &[u8]) -> Result<Option<Vec<u8>>, JournalError> {
        self.with(|c| kv_get(c, t, key))
    }

    fn scan(
        &self,
        t: Tbl,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, JournalError> {
        self.with(|c| kv_scan(c, t, from, to, limit))
    }
}

impl<C: GenericClient + Send> Kv for PgKv<C> {
    fn put(&self, t: Tbl, key: &[u8], value: &[u8]) -> Result<(), JournalError> {
        let sql = format!(
            "INSERT INTO {} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
            table(t)
        );
        self.with(|c| {
            c.execute(sql.as_str(), &[&key, &value])
                .map_err(pg("write"))
                .map(drop)
        })
    }

    fn delete(&self, t: Tbl, key: &[u8]) -> Result<bool, JournalError> {
        let sql = format!("DELETE FROM {} WHERE k = $1", table(t));
        self.with(|c| Ok(c.execute(sql.as_str(), &[&key]).map_err(pg("write"))? > 0))
    }
}

/// The writer thread's connection: each batch one transaction under [`WRITE_LOCK`].
pub(crate) struct PgStore {
    config: PgConfig,
    client: Option<Client>,
}

impl PgStore {
    pub(crate) fn new(config: PgConfig, client: Client) -> Self {
        PgStore {
            config,
            client: Some(client),
        }
    }
}

impl Store for PgStore {
    fn write(
        &mut self,
        f: &mut dyn FnMut(&dyn Kv) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            // A lost connection: reconnect for this batch (the last one failed with it).
            self.client = Some(self.config.connect()?);
        }
        let Some(client) = self.client.as_mut() else {
            return Err(JournalError::Closed);
        };
        let mut txn = client.transaction().map_err(pg("begin write"))?;
        txn.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
            .map_err(pg("lock journal"))?;
        let kv = PgKv { c: Mutex::new(txn) };
        f(&kv)?;
        let txn = kv.c.into_inner().unwrap_or_else(|p| p.into_inner());
        txn.commit().map_err(pg("commit"))
    }
}

/// The read connections: at most `readers` open, each lent to one snapshot at a time.
pub(crate) struct PgReaders {
    config: PgConfig,
    idle: Mutex<(Vec<Client>, usize)>,
    freed: Condvar,
}

impl PgReaders {
    pub(crate) fn new(config: PgConfig) -> Arc<Self> {
        Arc::new(PgReaders {
            config,
            idle: Mutex::new((Vec::new(), 0)),
            freed: Condvar::new(),
        })
    }

    /// A free connection, a new one while fewer than `readers` are open, or else the first one
    /// given back within `connect_timeout` (after that, `Storage`: the wait is bounded, and a
    /// caller waiting here holds a thread).
    fn take(&self) -> Result<Client, JournalError> {
        let deadline = std::time::Instant::now() + self.config.connect_timeout;
        let mut g = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(c) = g.0.pop() {
                if c.is_closed() {
                    g.1 = g.1.saturating_sub(1);
                    continue;
                }
                return Ok(c);
            }
            if g.1 < self.config.readers.max(1) {
                g.1 += 1;
                drop(g);
                return self.config.connect().inspect_err(|_| {
                    let mut g = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                    g.1 = g.1.saturating_sub(1);
                    self.freed.notify_one();
                });
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    readers = self.config.readers,
                    "journal: no free PostgreSQL read connection within {:?}",
                    self.config.connect_timeout
                );
                return Err(JournalError::storage(
                    "take a read connection",
                    format!(
                        "all {} busy for {:?}",
                        self.config.readers.max(1),
                        self.config.connect_timeout
                    ),
                ));
            }
            g = self
                .freed
                .wait_timeout(g, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    fn give_back(&self, c: Option<Client>) {
        let mut g = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        match c {
            Some(c) if !c.is_closed() => g.0.push(c),
            _ => g.1 = g.1.saturating_sub(1),
        }
        self.freed.notify_one();
    }

    /// A snapshot: one `REPEATABLE READ READ ONLY` transaction on a pooled connection.
    pub(crate) fn snapshot(self: &Arc<Self>) -> Result<Snapshot, JournalError> {
        let pool = Arc::clone(self);
        let client = off_runtime(move || {
            let mut c = pool.take()?;
            match c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") {
                Ok(()) => Ok(c),
                Err(e) => {
                    pool.give_back(None);
                    Err(JournalError::storage("begin read", e))
                }
            }
        })?;
        Ok(Snapshot::over(Box::new(PgRead {
            c: Mutex::new(Some(client)),
            pool: Arc::clone(self),
        })))
    }
}

/// A read snapshot; ends its transaction and returns its connection when dropped.
struct PgRead {
    c: Mutex<Option<Client>>,
    pool: Arc<PgReaders>,
}

impl PgRead {
    fn with<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, JournalError> + Send,
    ) -> Result<T, JournalError> {
        off_runtime(|| {
            let mut g = self.c.lock().unwrap_or_else(|p| p.into_inner());
            f(g.as_mut().ok_or(JournalError::Closed)?)
        })
    }
}

impl KvRead for PgRead {
    fn get(&self, t: Tbl, key: &[u8]) -> Result<Option<Vec<u8>>, JournalError> {
        self.with(|c| kv_get(c, t, key))
    }

    fn scan(
        &self,
        t: Tbl,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, JournalError> {
        self.with(|c| kv_scan(c, t, from, to, limit))
    }
}

impl Drop for PgRead {
    fn drop(&mut self) {
        let client = self.c.get_mut().unwrap_or_else(|p| p.into_inner()).take();
        let pool = Arc::clone(&self.pool);
        off_runtime(move || {
            let back = client.and_then(|mut c| c.batch_execute("ROLLBACK").ok().map(|()| c));
            pool.give_back(back);
        });
    }
}

impl Drop for PgReaders {
    fn drop(&mut self) {
        // Closing a client blocks on its own runtime: never on a runtime thread.
        let idle = std::mem::take(&mut self.idle.get_mut().unwrap_or_else(|p| p.into_inner()).0);
        off_runtime(move || drop(idle));
    }
}
