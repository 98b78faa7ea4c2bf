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

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use postgres::{Client, NoTls, Statement};

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

/// The statements the engine prepares, one of each per table and connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Stmt {
    /// `SELECT v … WHERE k = $1`.
    Get,
    /// `SELECT k, v … WHERE k >= $1 ORDER BY k LIMIT $2`.
    ScanFrom,
    /// `SELECT k, v … WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3`.
    ScanRange,
}

/// A connection and the statements prepared on it (each prepared on first use, then one round
/// trip per read instead of a parse and an execute).
pub(crate) struct Conn {
    client: Client,
    prepared: HashMap<(Tbl, Stmt), Statement>,
}

impl Conn {
    pub(crate) fn new(client: Client) -> Self {
        Conn {
            client,
            prepared: HashMap::new(),
        }
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    fn statement(&mut self, t: Tbl, s: Stmt) -> Result<Statement, JournalError> {
        if let Some(st) = self.prepared.get(&(t, s)) {
            return Ok(st.clone());
        }
        let sql = match s {
            Stmt::Get => format!("SELECT v FROM {} WHERE k = $1", table(t)),
            Stmt::ScanFrom => format!(
                "SELECT k, v FROM {} WHERE k >= $1 ORDER BY k LIMIT $2",
                table(t)
            ),
            Stmt::ScanRange => format!(
                "SELECT k, v FROM {} WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3",
                table(t)
            ),
        };
        let st = self.client.prepare(&sql).map_err(pg("prepare"))?;
        self.prepared.insert((t, s), st.clone());
        Ok(st)
    }

    fn get(&mut self, t: Tbl, key: &[u8]) -> Result<Option<Vec<u8>>, JournalError> {
        let st = self.statement(t, Stmt::Get)?;
        let row = self.client.query_opt(&st, &[&key]);
        self.forget_on_error(row, "read")?
            .map(|r| col("read", &r, 0))
            .transpose()
    }

    /// `r`'s error as `Storage` for `op`; a failed statement also empties the cache of prepared
    /// ones, so a table changed under them (by hand) costs one failed batch, not every later one.
    fn forget_on_error<T>(
        &mut self,
        r: Result<T, postgres::Error>,
        op: &'static str,
    ) -> Result<T, JournalError> {
        r.map_err(|e| {
            self.prepared.clear();
            JournalError::storage(op, e)
        })
    }

    fn scan(
        &mut self,
        t: Tbl,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, JournalError> {
        let lo = from.unwrap_or_default();
        // LIMIT NULL is no limit.
        let n: Option<i64> = i64::try_from(limit).ok();
        let rows = match to {
            Some(hi) => {
                let st = self.statement(t, Stmt::ScanRange)?;
                self.client.query(&st, &[&lo, &hi, &n])
            }
            None => {
                let st = self.statement(t, Stmt::ScanFrom)?;
                self.client.query(&st, &[&lo, &n])
            }
        };
        let rows = self.forget_on_error(rows, "read range")?;
        rows.iter()
            .map(|r| Ok((col("read range", r, 0)?, col("read range", r, 1)?)))
            .collect()
    }
}

fn table(t: Tbl) -> String {
    format!("journal_{}", t.name())
}

/// One table's writes in a batch not sent yet: key → `Some(value)` (put) or `None` (delete).
type Pending = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// What a batch prefetched: (table, key) → value, `None` for absent.
type Fetched = HashMap<(Tbl, Vec<u8>), Option<Vec<u8>>>;

/// One write transaction (a writer batch) on PostgreSQL.
///
/// Round trips are what a batch costs here, so: the transaction and its lock start with the
/// batch's first read (`BEGIN` and the lock in one simple query), reads are prepared statements,
/// and writes are kept in memory (later reads of the batch see them) and sent at the end with
/// the `COMMIT`, all in one simple query. A batch is thus 2 round trips plus one per read (a
/// batch without reads, such as a shared decode, is 1).
struct PgKv<'c> {
    c: Mutex<&'c mut Conn>,
    /// Whether `BEGIN` and the lock were sent.
    begun: Mutex<bool>,
    pending: Mutex<HashMap<Tbl, Pending>>,
    /// What [`Kv::prefetch`] read under the lock: key → value, or `None` for absent.
    fetched: Mutex<Fetched>,
}

/// The `BEGIN` of a write transaction and its lock, in one simple query.
fn begin_sql() -> String {
    format!("BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({WRITE_LOCK})")
}

impl PgKv<'_> {
    fn with<T: Send>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, JournalError> + Send,
    ) -> Result<T, JournalError> {
        off_runtime(|| {
            let mut c = self.c.lock().unwrap_or_else(|p| p.into_inner());
            let mut begun = self.begun.lock().unwrap_or_else(|p| p.into_inner());
            if !*begun {
                c.client
                    .batch_execute(&begin_sql())
                    .map_err(pg("lock journal"))?;
                *begun = true;
            }
            f(&mut c)
        })
    }

    fn pending<T>(&self, f: impl FnOnce(&mut HashMap<Tbl, Pending>) -> T) -> T {
        f(&mut self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Sends the batch's writes and `COMMIT` (with `BEGIN` and the lock first when no read
    /// sent them) in one simple query.
    fn commit(self) -> Result<(), JournalError> {
        let begun = self.begun.into_inner().unwrap_or_else(|p| p.into_inner());
        let pending = self.pending.into_inner().unwrap_or_else(|p| p.into_inner());
        let mut sql = if begun {
            String::new()
        } else {
            begin_sql() + ";"
        };
        writes_sql(&mut sql, pending);
        sql.push_str("COMMIT");
        let c = self.c.into_inner().unwrap_or_else(|p| p.into_inner());
        off_runtime(|| c.client.batch_execute(&sql).map_err(pg("commit")))
    }
}

/// Appends `b` as an escape-string hex literal, `E'\\x…'::bytea`: hex digits only, so nothing
/// in a value can end the literal, whatever `standard_conforming_strings` says.
fn bytea_lit(sql: &mut String, b: &[u8]) {
    sql.push_str("E'\\\\x");
    super::codec::hex::push(sql, b);
    sql.push_str("'::bytea");
}

/// Appends every table's writes as SQL (tables in name order).
fn writes_sql(sql: &mut String, pending: HashMap<Tbl, Pending>) {
    let mut tables: Vec<(Tbl, Pending)> = pending.into_iter().collect();
    tables.sort_by_key(|(t, _)| t.name());
    for (t, writes) in &tables {
        write_sql(sql, *t, writes);
    }
}

/// Appends `t`'s writes as SQL: one `INSERT … ON CONFLICT DO UPDATE` for the puts, one
/// `DELETE … WHERE k IN (…)` for the deletes, bytes as [`bytea_lit`] literals.
fn write_sql(sql: &mut String, t: Tbl, writes: &Pending) {
    use std::fmt::Write as _;
    let puts: Vec<(&Vec<u8>, &Vec<u8>)> = writes
        .iter()
        .filter_map(|(k, v)| Some((k, v.as_ref()?)))
        .collect();
    if !puts.is_empty() {
        let _ = write!(sql, "INSERT INTO {} (k, v) VALUES ", table(t));
        for (i, (k, v)) in puts.into_iter().enumerate() {
            sql.push_str(if i == 0 { "(" } else { ",(" });
            bytea_lit(sql, k);
            sql.push(',');
            bytea_lit(sql, v);
            sql.push(')');
        }
        sql.push_str(" ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;");
    }
    let deletes: Vec<&Vec<u8>> = writes
        .iter()
        .filter_map(|(k, v)| v.is_none().then_some(k))
        .collect();
    if !deletes.is_empty() {
        let _ = write!(sql, "DELETE FROM {} WHERE k IN (", table(t));
        for (i, k) in deletes.into_iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            bytea_lit(sql, k);
        }
        sql.push_str(");");
    }
}

/// Column `i` of a simple query's row as text (`None` for NULL or no such column: `get`
/// panics on the latter).
fn text<I: postgres::row::RowIndex + fmt::Display>(
    r: &postgres::SimpleQueryRow,
    i: I,
) -> Option<&str> {
    r.try_get(i).ok().flatten()
}

/// Bytes from PostgreSQL's hex text output (`\x` then two hex digits a byte).
fn unhex(text: Option<&str>) -> Result<Vec<u8>, JournalError> {
    let bad = || JournalError::storage("read", "a bytea value not in hex output format");
    let hex = text.and_then(|t| t.strip_prefix("\\x")).ok_or_else(bad)?;
    super::codec::hex::decode(hex).ok_or_else(bad)
}

impl KvRead for PgKv<'_> {
    fn get(&self, t: Tbl, key: &[u8]) -> Result<Option<Vec<u8>>, JournalError> {
        if let Some(v) = self.pending(|p| p.get(&t).and_then(|w| w.get(key)).cloned()) {
            return Ok(v);
        }
        let fetched = self.fetched.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = fetched.get(&(t, key.to_vec())) {
            return Ok(v.clone());
        }
        drop(fetched);
        self.with(|c| c.get(t, key))
    }

    fn scan(
        &self,
        t: Tbl,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, JournalError> {
        let lo = from.unwrap_or_default();
        let in_range = |k: &[u8]| k >= lo && to.is_none_or(|hi| k < hi);
        // The batch's own writes in the range: each delete may hide one stored row of the first
        // `limit`, so read that many more.
        let mine: Vec<(Vec<u8>, Option<Vec<u8>>)> = self.pending(|p| {
            p.get(&t).map_or_else(Vec::new, |w| {
                w.range(lo.to_vec()..)
                    .take_while(|(k, _)| in_range(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
        });
        let hidden = mine.iter().filter(|(_, v)| v.is_none()).count();
        let stored = self.with(|c| c.scan(t, from, to, limit.saturating_add(hidden)))?;
        if mine.is_empty() {
            return Ok(stored);
        }
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = stored.into_iter().collect();
        for (k, v) in mine {
            match v {
                Some(v) => merged.insert(k, v),
                None => merged.remove(&k),
            };
        }
        Ok(merged.into_iter().take(limit).collect())
    }
}

impl Kv for PgKv<'_> {
    fn put(&self, t: Tbl, key: &[u8], value: &[u8]) -> Result<(), JournalError> {
        self.pending(|p| {
            p.entry(t)
                .or_default()
                .insert(key.to_vec(), Some(value.to_vec()))
        });
        Ok(())
    }

    fn delete(&self, t: Tbl, key: &[u8]) -> Result<(), JournalError> {
        self.pending(|p| p.entry(t).or_default().insert(key.to_vec(), None));
        Ok(())
    }

    /// Reads every key in one simple query — with `BEGIN` and the lock in front when this is
    /// the batch's first statement, so a batch that only prefetches is one round trip before
    /// its commit. The values read under the lock stay valid for the batch: every other write
    /// to these tables takes the same lock (a shared decode or quote, written without it, is a
    /// fresh key no batch reads before its writer has answered).
    fn prefetches(&self) -> bool {
        true
    }

    fn prefetch(&self, keys: &[(Tbl, Vec<u8>)]) -> Result<(), JournalError> {
        use std::fmt::Write as _;
        let mut by_table: BTreeMap<&'static str, (Tbl, Vec<&[u8]>)> = BTreeMap::new();
        for (t, k) in keys {
            by_table
                .entry(t.name())
                .or_insert((*t, Vec::new()))
                .1
                .push(k);
        }
        let tables: Vec<(Tbl, Vec<&[u8]>)> = by_table.into_values().collect();
        let mut select = String::new();
        for (i, (t, ks)) in tables.iter().enumerate() {
            if i > 0 {
                select.push_str(" UNION ALL ");
            }
            let _ = write!(
                select,
                "SELECT {i} AS journal_table, k, v FROM {} WHERE k IN (",
                table(*t)
            );
            for (j, k) in ks.iter().enumerate() {
                if j > 0 {
                    select.push(',');
                }
                bytea_lit(&mut select, k);
            }
            select.push(')');
        }
        let rows = off_runtime(|| {
            let mut c = self.c.lock().unwrap_or_else(|p| p.into_inner());
            let mut begun = self.begun.lock().unwrap_or_else(|p| p.into_inner());
            let mut sql = if *begun {
                String::new()
            } else {
                begin_sql() + ";"
            };
            sql.push_str("SET LOCAL bytea_output = 'hex';");
            sql.push_str(&select);
            *begun = true;
            c.client.simple_query(&sql).map_err(pg("read"))
        })?;
        let mut fetched = self.fetched.lock().unwrap_or_else(|p| p.into_inner());
        for (t, ks) in &tables {
            for k in ks {
                fetched.insert((*t, k.to_vec()), None);
            }
        }
        for row in rows {
            // The lock's row (a `void` column) comes back too.
            let postgres::SimpleQueryMessage::Row(r) = row else {
                continue;
            };
            if r.columns().first().map(|c| c.name()) != Some("journal_table") {
                continue;
            }
            let i: Option<usize> = text(&r, 0).and_then(|i| i.parse().ok());
            let Some((t, _)) = i.and_then(|i| tables.get(i)) else {
                return Err(JournalError::storage(
                    "read",
                    "a prefetched row of no table",
                ));
            };
            fetched.insert((*t, unhex(text(&r, 1))?), Some(unhex(text(&r, 2))?));
        }
        Ok(())
    }
}

/// The writer thread's connection: each batch one transaction under [`WRITE_LOCK`].
pub(crate) struct PgStore {
    config: PgConfig,
    conn: Option<Conn>,
}

impl PgStore {
    pub(crate) fn new(config: PgConfig, client: Client) -> Self {
        PgStore {
            config,
            conn: Some(Conn::new(client)),
        }
    }
}

impl Store for PgStore {
    fn write(
        &mut self,
        f: &mut dyn FnMut(&dyn Kv) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        if self.conn.as_ref().is_none_or(Conn::is_closed) {
            // A lost connection: reconnect for this batch (the last one failed with it).
            self.conn = Some(Conn::new(self.config.connect()?));
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(JournalError::Closed);
        };
        let done = {
            let kv = PgKv {
                c: Mutex::new(&mut *conn),
                begun: Mutex::new(false),
                pending: Mutex::new(HashMap::new()),
                fetched: Mutex::new(HashMap::new()),
            };
            match f(&kv) {
                Ok(()) => kv.commit(),
                Err(e) => Err(e),
            }
        };
        if done.is_err() {
            // Undo whatever was sent (on a transaction never begun, or already ended by a
            // failed COMMIT, this is a warning in the server's log, nothing more).
            off_runtime(|| {
                let _ = conn.client.batch_execute("ROLLBACK");
            });
        }
        done
    }
}

/// The read connections: at most `readers` open, each lent to one snapshot at a time.
pub(crate) struct PgReaders {
    config: PgConfig,
    idle: Mutex<(Vec<Conn>, usize)>,
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
    fn take(&self) -> Result<Conn, JournalError> {
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
                return self.config.connect().map(Conn::new).inspect_err(|_| {
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

    fn give_back(&self, c: Option<Conn>) {
        let mut g = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        match c {
            Some(c) if !c.is_closed() => g.0.push(c),
            _ => g.1 = g.1.saturating_sub(1),
        }
        self.freed.notify_one();
    }

    /// Stores a shared decode or quote (`shared[key]` and its `shared_expiry` entry, as the
    /// writer's `Share` op does) in one transaction of its own on a pooled connection: one round
    /// trip, outside the writer's queue and lock, committed with `synchronous_commit = off`
    /// (spec/journal.md §12.3 says why both are safe: a blind write of a fresh random key, and
    /// one a database crash may lose without harm — every durable commit that could depend on
    /// it flushes the log past it first).
    pub(crate) fn share(
        self: &Arc<Self>,
        key: &[u8],
        expires_at_ms: u64,
        payload: &[u8],
    ) -> Result<(), JournalError> {
        let mut pending: HashMap<Tbl, Pending> = HashMap::new();
        pending.entry(Tbl::Shared).or_default().insert(
            key.to_vec(),
            Some(super::lease::shared_value(expires_at_ms, payload)),
        );
        pending.entry(Tbl::SharedExpiry).or_default().insert(
            super::lease::shared_expiry_key(expires_at_ms, key),
            Some(Vec::new()),
        );
        let mut sql = String::from("BEGIN; SET LOCAL synchronous_commit = off;");
        writes_sql(&mut sql, pending);
        sql.push_str("COMMIT");
        let pool = Arc::clone(self);
        off_runtime(move || {
            let mut c = pool.take()?;
            match c.client.batch_execute(&sql) {
                Ok(()) => {
                    pool.give_back(Some(c));
                    Ok(())
                }
                Err(e) => {
                    let back = c.client.batch_execute("ROLLBACK").ok().map(|()| c);
                    pool.give_back(back);
                    Err(JournalError::storage("write shared", e))
                }
            }
        })
    }

    /// A snapshot: one `REPEATABLE READ READ ONLY` transaction on a pooled connection, begun
    /// with its first read (PostgreSQL takes the snapshot at a transaction's first statement
    /// anyway, so this is the same point in time, one round trip sooner); a snapshot never read
    /// costs no round trip.
    pub(crate) fn snapshot(self: &Arc<Self>) -> Result<Snapshot, JournalError> {
        let pool = Arc::clone(self);
        let conn = off_runtime(move || pool.take())?;
        Ok(Snapshot::over(Box::new(PgRead {
            c: Mutex::new((Some(conn), false)),
            pool: Arc::clone(self),
        })))
    }
}

/// A read snapshot; ends its transaction (if a read began it) and returns its connection when
/// dropped.
struct PgRead {
    /// The connection, and whether the transaction was begun.
    c: Mutex<(Option<Conn>, bool)>,
    pool: Arc<PgReaders>,
}

/// What begins a snapshot's transaction, in front of its first read.
const BEGIN_READ: &str =
    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL bytea_output = 'hex';";

impl PgRead {
    /// Runs `later` on the connection, or — the snapshot's first read — sends `BEGIN` with the
    /// read `first` makes (a simple query's text, its result columns named `journal_key` /
    /// `journal_value`) in one round trip.
    fn read<T: Send>(
        &self,
        first: impl FnOnce() -> String + Send,
        parse: impl FnOnce(Vec<postgres::SimpleQueryRow>) -> Result<T, JournalError> + Send,
        later: impl FnOnce(&mut Conn) -> Result<T, JournalError> + Send,
    ) -> Result<T, JournalError> {
        off_runtime(|| {
            let mut g = self.c.lock().unwrap_or_else(|p| p.into_inner());
            let (conn, begun) = &mut *g;
            let c = conn.as_mut().ok_or(JournalError::Closed)?;
            if *begun {
                return later(c);
            }
            // Set first: whatever happens to the query, the drop ends the transaction.
            *begun = true;
            let rows = c
                .client
                .simple_query(&(BEGIN_READ.to_owned() + &first()))
                .map_err(pg("begin read"))?
                .into_iter()
                .filter_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(r) => Some(r),
                    _ => None,
                })
                .collect();
            parse(rows)
        })
    }
}

impl KvRead for PgRead {
    fn get(&self, t: Tbl, key: &[u8]) -> Result<Option<Vec<u8>>, JournalError> {
        self.read(
            || {
                let mut sql = format!("SELECT v AS journal_value FROM {} WHERE k = ", table(t));
                bytea_lit(&mut sql, key);
                sql
            },
            |rows| match rows.first() {
                Some(r) => unhex(text(r, "journal_value")).map(Some),
                None => Ok(None),
            },
            |c| c.get(t, key),
        )
    }

    fn scan(
        &self,
        t: Tbl,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, JournalError> {
        self.read(
            || {
                let mut sql = format!(
                    "SELECT k AS journal_key, v AS journal_value FROM {} WHERE k >= ",
                    table(t)
                );
                bytea_lit(&mut sql, from.unwrap_or_default());
                if let Some(hi) = to {
                    sql.push_str(" AND k < ");
                    bytea_lit(&mut sql, hi);
                }
                sql.push_str(" ORDER BY k");
                if let Ok(n) = i64::try_from(limit) {
                    sql.push_str(&format!(" LIMIT {n}"));
                }
                sql
            },
            |rows| {
                rows.iter()
                    .map(|r| {
                        Ok((
                            unhex(text(r, "journal_key"))?,
                            unhex(text(r, "journal_value"))?,
                        ))
                    })
                    .collect()
            },
            |c| c.scan(t, from, to, limit),
        )
    }
}

impl Drop for PgRead {
    fn drop(&mut self) {
        let (conn, begun) = std::mem::take(self.c.get_mut().unwrap_or_else(|p| p.into_inner()));
        let pool = Arc::clone(&self.pool);
        off_runtime(move || {
            let back = match conn {
                Some(mut c) if begun => c.client.batch_execute("ROLLBACK").ok().map(|()| c),
                other => other,
            };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A migrated schema of its own on the test server, or `None` (with a notice) without one.
    fn store(test: &str) -> Option<PgStore> {
        let Some(url) = std::env::var("QRBRIDGE_TEST_PG_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            assert!(
                std::env::var("QRBRIDGE_REQUIRE_PEERS").as_deref() != Ok("1"),
                "QRBRIDGE_REQUIRE_PEERS=1 but QRBRIDGE_TEST_PG_URL is not set"
            );
            eprintln!("notice: {test} skipped: no PostgreSQL (set QRBRIDGE_TEST_PG_URL)");
            return None;
        };
        let schema = format!("u_{test}_{}", std::process::id());
        let mut admin = PgConfig::new(url.clone()).connect().ok()?;
        admin
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))
            .ok()?;
        let sep = if url.contains('?') { '&' } else { '?' };
        let config = PgConfig::new(format!("{url}{sep}options=-c%20search_path%3D{schema}"));
        migrate(&config).ok()?;
        let client = config.connect().ok()?;
        Some(PgStore::new(config, client))
    }

    /// A shared decode or quote written outside the writer is the writer's `Share`: the entry
    /// and its expiry entry, byte for byte, seen by the next write batch.
    #[test]
    fn a_direct_share_writes_what_the_share_op_writes() {
        let Some(mut s) = store("direct_share") else {
            return;
        };
        let readers = PgReaders::new(s.config.clone());
        let payload = b"{\"q\":\"it's\"}\\\0".to_vec();
        readers.share(b"Qabc", 7, &payload).unwrap();
        s.write(&mut |kv| {
            let want = super::super::lease::shared_value(7, &payload);
            assert_eq!(kv.get(Tbl::Shared, b"Qabc")?, Some(want));
            let exp = super::super::lease::shared_expiry_key(7, b"Qabc");
            assert_eq!(kv.get(Tbl::SharedExpiry, &exp)?, Some(Vec::new()));
            Ok(())
        })
        .unwrap();
    }

    fn put_all(s: &mut PgStore, keys: &[&[u8]]) {
        s.write(&mut |kv| keys.iter().try_for_each(|k| kv.put(Tbl::Open, k, b"v")))
            .unwrap();
    }

    fn keys(entries: Vec<Entry>) -> Vec<Vec<u8>> {
        entries.into_iter().map(|(k, _)| k).collect()
    }

    /// A batch's reads see its own writes, which reach the server only with its COMMIT: a scan
    /// with a limit still returns the first entries when the batch deleted some of them.
    #[test]
    fn a_batch_reads_its_own_buffered_writes() {
        let Some(mut s) = store("own_writes") else {
            return;
        };
        put_all(&mut s, &[b"a", b"b", b"c", b"d"]);
        s.write(&mut |kv| {
            kv.delete(Tbl::Open, b"a")?;
            kv.delete(Tbl::Open, b"b")?;
            kv.put(Tbl::Open, b"bb", b"new")?;
            assert_eq!(kv.get(Tbl::Open, b"a")?, None);
            assert_eq!(kv.get(Tbl::Open, b"bb")?, Some(b"new".to_vec()));
            assert_eq!(kv.get(Tbl::Open, b"c")?, Some(b"v".to_vec()));
            let first2 = keys(kv.scan(Tbl::Open, None, None, 2)?);
            assert_eq!(first2, vec![b"bb".to_vec(), b"c".to_vec()]);
            let range = keys(kv.scan(Tbl::Open, Some(b"b"), Some(b"d"), usize::MAX)?);
            assert_eq!(range, vec![b"bb".to_vec(), b"c".to_vec()]);
            Ok(())
        })
        .unwrap();
        s.write(&mut |kv| {
            let all = keys(kv.scan(Tbl::Open, None, None, usize::MAX)?);
            assert_eq!(all, vec![b"bb".to_vec(), b"c".to_vec(), b"d".to_vec()]);
            Ok(())
        })
        .unwrap();
    }

    /// Keys and values of any bytes (quotes, backslashes, NUL, empty) survive the commit's
    /// literals unchanged.
    #[test]
    fn any_bytes_round_trip_through_the_commit() {
        let Some(mut s) = store("any_bytes") else {
            return;
        };
        let odd: Vec<u8> = (0..=255).collect();
        let quoty = b"'); DROP TABLE journal_open; --\\".to_vec();
        s.write(&mut |kv| {
            kv.put(Tbl::Shared, &odd, &quoty)?;
            kv.put(Tbl::Shared, &quoty, b"")
        })
        .unwrap();
        s.write(&mut |kv| {
            assert_eq!(kv.get(Tbl::Shared, &odd)?, Some(quoty.clone()));
            assert_eq!(kv.get(Tbl::Shared, &quoty)?, Some(Vec::new()));
            Ok(())
        })
        .unwrap();
    }

    /// Prefetched keys answer the batch's reads (present, absent, any bytes), its own writes
    /// still come first, and a prefetch as the batch's first statement takes the lock.
    #[test]
    fn prefetched_reads_answer_like_the_table() {
        let Some(mut s) = store("prefetch") else {
            return;
        };
        let odd: Vec<u8> = (0..=255).rev().collect();
        s.write(&mut |kv| {
            kv.put(Tbl::Open, b"a", &odd)?;
            kv.put(Tbl::Shared, &odd, b"")
        })
        .unwrap();
        s.write(&mut |kv| {
            kv.prefetch(&[
                (Tbl::Open, b"a".to_vec()),
                (Tbl::Open, b"absent".to_vec()),
                (Tbl::Shared, odd.clone()),
            ])?;
            assert_eq!(kv.get(Tbl::Open, b"a")?, Some(odd.clone()));
            assert_eq!(kv.get(Tbl::Open, b"absent")?, None);
            assert_eq!(kv.get(Tbl::Shared, &odd)?, Some(Vec::new()));
            kv.delete(Tbl::Open, b"a")?;
            kv.put(Tbl::Open, b"absent", b"now")?;
            assert_eq!(kv.get(Tbl::Open, b"a")?, None);
            assert_eq!(kv.get(Tbl::Open, b"absent")?, Some(b"now".to_vec()));
            Ok(())
        })
        .unwrap();
        let mut c = s.config.connect().unwrap();
        let locks = c
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0);
        assert_eq!(locks, 0, "the batch's lock ends with it");
        s.write(&mut |kv| {
            assert_eq!(kv.get(Tbl::Open, b"a")?, None);
            assert_eq!(kv.get(Tbl::Open, b"absent")?, Some(b"now".to_vec()));
            Ok(())
        })
        .unwrap();
    }

    /// A snapshot begins its transaction with its first read (a get or a scan), sees one point
    /// in time from there on, and a snapshot never read gives its connection back unused.
    #[test]
    fn a_snapshot_begins_with_its_first_read_and_stays_put() {
        let Some(mut s) = store("snapshot") else {
            return;
        };
        put_all(&mut s, &[b"a", b"b"]);
        let readers = PgReaders::new(s.config.clone());
        let read = || PgRead {
            c: Mutex::new((Some(readers.take().unwrap()), false)),
            pool: Arc::clone(&readers),
        };
        drop(read());
        for first_scan in [false, true] {
            let r = read();
            if first_scan {
                let got = keys(r.scan(Tbl::Open, Some(b"a"), Some(b"c"), 5).unwrap());
                assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec()]);
            } else {
                assert_eq!(r.get(Tbl::Open, b"a").unwrap(), Some(b"v".to_vec()));
                assert_eq!(r.get(Tbl::Open, b"zz").unwrap(), None);
            }
            // Written after the snapshot's first read: not in it.
            s.write(&mut |kv| {
                kv.delete(Tbl::Open, b"a")?;
                kv.put(Tbl::Open, b"c", b"v")
            })
            .unwrap();
            assert_eq!(r.get(Tbl::Open, b"a").unwrap(), Some(b"v".to_vec()));
            assert_eq!(
                keys(r.scan(Tbl::Open, None, None, 1).unwrap()),
                vec![b"a".to_vec()]
            );
            assert_eq!(r.get(Tbl::Open, b"c").unwrap(), None);
            drop(r);
            put_all(&mut s, &[b"a"]);
            s.write(&mut |kv| kv.delete(Tbl::Open, b"c")).unwrap();
        }
        let g = readers.idle.lock().unwrap();
        assert_eq!((g.0.len(), g.1), (1, 1), "one connection, back in the pool");
    }

    /// A statement that fails empties the connection's cache of prepared statements, so a
    /// table changed under them by hand is prepared afresh by the next read.
    #[test]
    fn a_failed_read_forgets_the_prepared_statements() {
        let Some(s) = store("forget") else {
            return;
        };
        let mut c = Conn::new(s.config.connect().unwrap());
        assert_eq!(c.get(Tbl::Open, b"a").unwrap(), None);
        assert_eq!(c.prepared.len(), 1);
        c.client
            .batch_execute("ALTER TABLE journal_open ALTER COLUMN v TYPE text USING ''")
            .unwrap();
        assert!(
            c.get(Tbl::Open, b"a").is_err(),
            "cached plan must not change result type"
        );
        assert!(c.prepared.is_empty());
        c.client
            .batch_execute("ALTER TABLE journal_open ALTER COLUMN v TYPE bytea USING ''")
            .unwrap();
        assert_eq!(c.get(Tbl::Open, b"a").unwrap(), None);
    }

    #[test]
    fn unhex_reads_hex_output_and_refuses_anything_else() {
        assert_eq!(unhex(Some("\\x00ff7A")).unwrap(), vec![0, 255, 122]);
        assert_eq!(unhex(Some("\\x")).unwrap(), Vec::<u8>::new());
        for bad in [
            None,
            Some("00ff"),
            Some("\\x0"),
            Some("\\xzz"),
            Some("\\000"),
        ] {
            assert!(unhex(bad).is_err(), "{bad:?}");
        }
    }

    /// A batch that fails leaves nothing behind, and the connection serves the next batch.
    #[test]
    fn a_failed_batch_writes_nothing() {
        let Some(mut s) = store("failed_batch") else {
            return;
        };
        let err = s.write(&mut |kv| {
            kv.put(Tbl::Open, b"x", b"v")?;
            let _ = kv.get(Tbl::Open, b"y")?;
            Err(JournalError::Closed)
        });
        assert!(err.is_err());
        s.write(&mut |kv| {
            assert_eq!(kv.get(Tbl::Open, b"x")?, None);
            Ok(())
        })
        .unwrap();
    }
}
