//! The storage seam under the journal's logic: ordered byte tables in one transaction.
//!
//! Every journal op (`writer.rs`) and every read (`embedded.rs` `Snapshot`) is written against
//! [`Kv`]: get, put, delete and ordered scans over the journal's named tables, inside one
//! transaction the engine provides. redb implements it with its tables ([`RedbTables`],
//! [`RedbRead`]); PostgreSQL with one `(k bytea primary key, v bytea)` table per journal table
//! (`postgres.rs`). Keys compare as bytes on both engines (redb's byte-slice keys; PostgreSQL's
//! `bytea` ordering is `memcmp`), so ranges mean the same thing. Reversal ids (`u64`) are keyed
//! by their 8 big-endian bytes; `meta` maps a UTF-8 name to a `u64` stored as 8 big-endian bytes.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::ops::Bound;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, Table, WriteTransaction};

use super::JournalError;
use super::writer::{
    DAILY_USAGE, IDEMPOTENCY, IDEMPOTENCY_EXPIRY, INSTANCES, MERCHANT_REFUNDS, META, NOTICES,
    NOTICES_DUE, NOTICES_PARKED, OPEN, PAYMENT_REFS, PAYMENT_REFUNDS, PAYMENT_REQUESTS, PAYMENTS,
    REFUND_REQUESTS, REFUNDS, REVERSALS, SHARED, SHARED_EXPIRY,
};

type Bytes = &'static [u8];

/// The journal's tables (spec/journal.md §2); the same names on every engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Tbl {
    Payments,
    PaymentRequests,
    Refunds,
    RefundRequests,
    PaymentRefunds,
    Open,
    Reversals,
    Idempotency,
    Expiry,
    Usage,
    Notices,
    NoticesDue,
    NoticesParked,
    Meta,
    MerchantRefunds,
    PaymentRefs,
    Instances,
    Shared,
    SharedExpiry,
}

impl Tbl {
    /// The table's name (redb's table name; PostgreSQL's is `journal_<name>`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tbl::Payments => "payments",
            Tbl::PaymentRequests => "payment_requests",
            Tbl::Refunds => "refunds",
            Tbl::RefundRequests => "refund_requests",
            Tbl::PaymentRefunds => "payment_refunds",
            Tbl::Open => "open",
            Tbl::Reversals => "reversals",
            Tbl::Idempotency => "idempotency",
            Tbl::Expiry => "idempotency_expiry",
            Tbl::Usage => "daily_usage",
            Tbl::Notices => "notices",
            Tbl::NoticesDue => "notices_due",
            Tbl::NoticesParked => "notices_parked",
            Tbl::Meta => "meta",
            Tbl::MerchantRefunds => "merchant_refunds",
            Tbl::PaymentRefs => "payment_refs",
            Tbl::Instances => "instances",
            Tbl::Shared => "shared",
            Tbl::SharedExpiry => "shared_expiry",
        }
    }
}

/// One entry of a scan: key and value bytes.
pub(crate) type Entry = (Vec<u8>, Vec<u8>);

/// Reads inside one transaction.
pub(crate) trait KvRead {
    /// The value under `key`.
    fn get(&self, t: Tbl, key: &[u8]) -> Result<Option<Vec<u8>>, JournalError>;
    /// Entries with `from <= key < to` (either end open), in key order, at most `limit`.
    fn scan(
        &self,
        t: Tbl,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, JournalError>;
}

/// Reads and writes inside one write transaction.
pub(crate) trait Kv: KvRead {
    /// Stores `value` under `key` (replacing any value).
    fn put(&self, t: Tbl, key: &[u8], value: &[u8]) -> Result<(), JournalError>;
    /// Removes `key` (if it is there).
    fn delete(&self, t: Tbl, key: &[u8]) -> Result<(), JournalError>;
    /// Whether [`Kv::prefetch`] does anything here: the writer builds a batch's read keys
    /// only for an engine that uses them (PostgreSQL), not on redb's hot path.
    fn prefetches(&self) -> bool {
        false
    }
    /// A hint: the batch is about to read these keys. An engine whose reads are round trips
    /// may fetch them all at once and answer the reads from what it fetched (PostgreSQL);
    /// redb's reads are local and ignore it.
    fn prefetch(&self, _keys: &[(Tbl, Vec<u8>)]) -> Result<(), JournalError> {
        Ok(())
    }
}

fn bounds<'a>(from: Option<&'a [u8]>, to: Option<&'a [u8]>) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    (
        from.map_or(Bound::Unbounded, Bound::Included),
        to.map_or(Bound::Unbounded, Bound::Excluded),
    )
}

fn u64_key(t: Tbl, key: &[u8]) -> Result<u64, JournalError> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| JournalError::Invalid {
            what: "journal key",
            detail: format!("{} keys are 8 bytes, got {}", t.name(), key.len()),
        })
}

fn meta_key(key: &[u8]) -> Result<&str, JournalError> {
    std::str::from_utf8(key).map_err(|_| JournalError::Invalid {
        what: "journal key",
        detail: "meta keys are UTF-8".to_owned(),
    })
}

fn st(op: &'static str) -> impl Fn(redb::StorageError) -> JournalError {
    move |e| JournalError::storage(op, e)
}

/// Every journal table of a redb write transaction, opened once per batch.
pub(crate) struct RedbTables<'t> {
    bytes: Vec<(Tbl, RefCell<Table<'t, Bytes, Bytes>>)>,
    units: Vec<(Tbl, RefCell<Table<'t, Bytes, ()>>)>,
    reversals: RefCell<Table<'t, u64, Bytes>>,
    meta: RefCell<Table<'t, &'static str, u64>>,
}

impl<'t> RedbTables<'t> {
    /// Opens (creating in a fresh file) every table in `txn`.
    pub(crate) fn open(txn: &'t WriteTransaction) -> Result<Self, JournalError> {
        let o = |e: redb::TableError| JournalError::storage("open table", e);
        let mut bytes = Vec::new();
        for (t, def) in [
            (Tbl::Payments, PAYMENTS),
            (Tbl::PaymentRequests, PAYMENT_REQUESTS),
            (Tbl::Refunds, REFUNDS),
            (Tbl::RefundRequests, REFUND_REQUESTS),
            (Tbl::Idempotency, IDEMPOTENCY),
            (Tbl::Usage, DAILY_USAGE),
            (Tbl::Notices, NOTICES),
            (Tbl::MerchantRefunds, MERCHANT_REFUNDS),
            (Tbl::PaymentRefs, PAYMENT_REFS),
            (Tbl::Instances, INSTANCES),
            (Tbl::Shared, SHARED),
        ] {
            bytes.push((t, RefCell::new(txn.open_table(def).map_err(o)?)));
        }
        let mut units = Vec::new();
        for (t, def) in [
            (Tbl::PaymentRefunds, PAYMENT_REFUNDS),
            (Tbl::Open, OPEN),
            (Tbl::Expiry, IDEMPOTENCY_EXPIRY),
            (Tbl::NoticesDue, NOTICES_DUE),
            (Tbl::NoticesParked, NOTICES_PARKED),
            (Tbl::SharedExpiry, SHARED_EXPIRY),
        ] {
            units.push((t, RefCell::new(txn.open_table(def).map_err(o)?)));
        }
        Ok(RedbTables {
            bytes,
            units,
            reversals: RefCell::new(txn.open_table(REVERSALS).map_err(o)?),
            meta: RefCell::new(txn.open_table(META).map_err(o)?),
        })
    }

    fn bytes(&self, t: Tbl) -> Option<&RefCell<Table<'t, Bytes, Bytes>>> {
        self.bytes.iter().find(|(x, _)| *x == t).map(|(_, r)| r)
    }

    fn units(&self, t: Tbl) -> Option<&RefCell<Table<'t, Bytes, ()>>> {
        self.units.iter().find(|(x, _)| *x == t).map(|(_, r)| r)
    }
}

fn scan_table<'a, K, V>(
    table: &impl ReadableTable<K, V>,
    range: (Bound<K::SelfType<'a>>, Bound<K::SelfType<'a>>),
    limit: usize,
    entry: impl Fn(K::SelfType<'_>, V::SelfType<'_>) -> Entry,
) -> Result<Vec<Entry>, JournalError>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
{
    let mut out = Vec::new();
    for item in table.range(range).map_err(st("read range"))?.take(limit) {
        let (k, v) = item.map_err(st("read range"))?;
        out.push(entry(k.value(), v.value()));
    }
    Ok(out)
}

fn scan_any<'a, T>(
    t: Tbl,
    (from, to): (Option<&'a [u8]>, Option<&'a [u8]>),
    limit: usize,
    bytes: Option<&T>,
    units: Option<&impl ReadableTable<Bytes, ()>>,
    reversals: &impl ReadableTable<u64, Bytes>,
    meta: &impl ReadableTable<&'static str, u64>,
) -> Result<Vec<Entry>, JournalError>
where
    T: ReadableTable<Bytes, Bytes>,
{
    if let Some(b) = bytes {
        return scan_table(b, bounds(from, to), limit, |k, v| (k.to_vec(), v.to_vec()));
    }
    if let Some(u) = units {
        return scan_table(u, bounds(from, to), limit, |k, ()| (k.to_vec(), Vec::new()));
    }
    match t {
        Tbl::Reversals => {
            let lo = from.map(|k| u64_key(t, k)).transpose()?;
            let hi = to.map(|k| u64_key(t, k)).transpose()?;
            let range = (
                lo.map_or(Bound::Unbounded, Bound::Included),
                hi.map_or(Bound::Unbounded, Bound::Excluded),
            );
            scan_table(reversals, range, limit, |k, v| {
                (k.to_be_bytes().to_vec(), v.to_vec())
            })
        }
        _ => {
            let lo = from.map(meta_key).transpose()?;
            let hi = to.map(meta_key).transpose()?;
            let range = (
                lo.map_or(Bound::Unbounded, Bound::Included),
                hi.map_or(Bound::Unbounded, Bound::Excluded),
            );
            scan_table(meta, range, limit, |k, v| {
                (k.as_bytes().to_vec(), v.to_be_bytes().to_vec())
            })
        }
    }
}

impl KvRead for RedbTables<'_> {
    fn get(&self, t: Tbl, key: &[u8]) -> Result<Option<Vec<u8>>, JournalError> {
        if let Some(b) = self.bytes(t) {
            return Ok(b
                .borrow()
                .get(key)
                .map_err(st("read"))?
                .map(|g| g.value().to_vec()));
        }
        if let Some(u) = self.units(t) {
            return Ok(u.borrow().get(key).map_err(st("read"))?.map(|_| Vec::new()));
        }
        match t {
            Tbl::Reversals => Ok(self
                .reversals
                .borrow()
                .get(u64_key(t, key)?)
                .map_err(st("read reversal"))?
                .map(|g| g.value().to_vec())),
            _ => Ok(self
                .meta
                .borrow()
                .get(meta_key(key)?)
                .map_err(st("read meta"))?
                .map(|g| g.value().to_be_bytes().to_vec())),
        }
    }

    fn scan(
        &self,
        t: Tbl,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, JournalError> {
        let bytes = self.bytes(t).map(RefCell::borrow);
        let units = self.units(t).map(RefCell::borrow);
        scan_any(
            t,
            (from, to),
            limit,
            bytes.as_deref(),
            units.as_deref(),
            &*self.reversals.borrow(),
            &*self.meta.borrow(),
        )
    }
}

impl Kv for RedbTables<'_> {
    fn put(&self, t: Tbl, key: &[u8], value: &[u8]) -> Result<(), JournalError> {
        if let Some(b) = self.bytes(t) {
            b.borrow_mut().insert(key, value).map_err(st("write"))?;
            return Ok(());
        }
        if let Some(u) = self.units(t) {
            u.borrow_mut().insert(key, ()).map_err(st("write"))?;
            return Ok(());
        }
        match t {
            Tbl::Reversals => {
                self.reversals
                    .borrow_mut()
                    .insert(u64_key(t, key)?, value)
                    .map_err(st("write reversal"))?;
            }
            _ => {
                self.meta
                    .borrow_mut()
                    .insert(meta_key(key)?, u64_key(t, value)?)
                    .map_err(st("write meta"))?;
            }
        }
        Ok(())
    }

    fn delete(&self, t: Tbl, key: &[u8]) -> Result<(), JournalError> {
        if let Some(b) = self.bytes(t) {
            return b.borrow_mut().remove(key).map(drop).map_err(st("write"));
        }
        if let Some(u) = self.units(t) {
            return u.borrow_mut().remove(key).map(drop).map_err(st("write"));
        }
        match t {
            Tbl::Reversals => self
                .reversals
                .borrow_mut()
                .remove(u64_key(t, key)?)
                .map(drop)
                .map_err(st("write reversal")),
            _ => self
                .meta
                .borrow_mut()
                .remove(meta_key(key)?)
                .map(drop)
                .map_err(st("write meta")),
        }
    }
}

/// A redb read transaction seen through [`KvRead`] (tables opened per read, as before).
pub(crate) struct RedbRead {
    pub(crate) txn: ReadTransaction,
}

fn open_ro<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    def: redb::TableDefinition<K, V>,
) -> Result<ReadOnlyTable<K, V>, JournalError> {
    txn.open_table(def)
        .map_err(|e| JournalError::storage("open table", e))
}

fn bytes_def(t: Tbl) -> Option<redb::TableDefinition<'static, Bytes, Bytes>> {
    Some(match t {
        Tbl::Payments => PAYMENTS,
        Tbl::PaymentRequests => PAYMENT_REQUESTS,
        Tbl::Refunds => REFUNDS,
        Tbl::RefundRequests => REFUND_REQUESTS,
        Tbl::Idempotency => IDEMPOTENCY,
        Tbl::Usage => DAILY_USAGE,
        Tbl::Notices => NOTICES,
        Tbl::MerchantRefunds => MERCHANT_REFUNDS,
        Tbl::PaymentRefs => PAYMENT_REFS,
        Tbl::Instances => INSTANCES,
        Tbl::Shared => SHARED,
        _ => return None,
    })
}

fn unit_def(t: Tbl) -> Option<redb::TableDefinition<'static, Bytes, ()>> {
    Some(match t {
        Tbl::PaymentRefunds => PAYMENT_REFUNDS,
        Tbl::Open => OPEN,
        Tbl::Expiry => IDEMPOTENCY_EXPIRY,
        Tbl::NoticesDue => NOTICES_DUE,
        Tbl::NoticesParked => NOTICES_PARKED,
        Tbl::SharedExpiry => SHARED_EXPIRY,
        _ => return None,
    })
}

impl KvRead for RedbRead {
    fn get(&self, t: Tbl, key: &[u8]) -> Result<Option<Vec<u8>>, JournalError> {
        if let Some(def) = bytes_def(t) {
            return Ok(open_ro(&self.txn, def)?
                .get(key)
                .map_err(st("read"))?
                .map(|g| g.value().to_vec()));
        }
        if let Some(def) = unit_def(t) {
            return Ok(open_ro(&self.txn, def)?
                .get(key)
                .map_err(st("read"))?
                .map(|_| Vec::new()));
        }
        match t {
            Tbl::Reversals => Ok(open_ro(&self.txn, REVERSALS)?
                .get(u64_key(t, key)?)
                .map_err(st("read reversal"))?
                .map(|g| g.value().to_vec())),
            _ => Ok(open_ro(&self.txn, META)?
                .get(meta_key(key)?)
                .map_err(st("read meta"))?
                .map(|g| g.value().to_be_bytes().to_vec())),
        }
    }

    fn scan(
        &self,
        t: Tbl,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, JournalError> {
        let bytes = bytes_def(t).map(|d| open_ro(&self.txn, d)).transpose()?;
        let units = unit_def(t).map(|d| open_ro(&self.txn, d)).transpose()?;
        scan_any(
            t,
            (from, to),
            limit,
            bytes.as_ref(),
            units.as_ref(),
            &open_ro(&self.txn, REVERSALS)?,
            &open_ro(&self.txn, META)?,
        )
    }
}

/// A handle on one table, shaped like a redb table so the journal's ops read the same on every
/// engine: `get` gives a guard whose `value()` is the table's value type.
pub(crate) struct H<'k, V> {
    kv: &'k dyn Kv,
    t: Tbl,
    v: PhantomData<V>,
}

impl<V> Clone for H<'_, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<V> Copy for H<'_, V> {}

impl<'k, V> H<'k, V> {
    pub(crate) fn new(kv: &'k dyn Kv, t: Tbl) -> Self {
        H {
            kv,
            t,
            v: PhantomData,
        }
    }

    /// Removes `key` (if it is there).
    pub(crate) fn remove(&mut self, key: impl KeyArg) -> Result<(), JournalError> {
        self.kv.delete(self.t, &key.bytes())
    }

    /// Entries with keys in `[from, to)`, in key order, at most `limit`.
    pub(crate) fn scan(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, JournalError> {
        self.kv.scan(self.t, from, to, limit)
    }
}

/// A value read through a handle.
pub(crate) struct Got<V> {
    bytes: Vec<u8>,
    v: PhantomData<V>,
}

impl Got<Bytes> {
    pub(crate) fn value(&self) -> &[u8] {
        &self.bytes
    }
}

impl Got<u64> {
    pub(crate) fn value(&self) -> u64 {
        <[u8; 8]>::try_from(self.bytes.as_slice()).map_or(0, u64::from_be_bytes)
    }
}

/// A key as the handle's table stores it.
pub(crate) trait KeyArg {
    fn bytes(&self) -> Vec<u8>;
}
impl KeyArg for &[u8] {
    fn bytes(&self) -> Vec<u8> {
        self.to_vec()
    }
}
impl KeyArg for &str {
    fn bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}
impl KeyArg for u64 {
    fn bytes(&self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
}

/// A value as the handle's table stores it.
pub(crate) trait ValArg {
    fn bytes(&self) -> Vec<u8>;
}
impl ValArg for &[u8] {
    fn bytes(&self) -> Vec<u8> {
        self.to_vec()
    }
}
impl ValArg for () {
    fn bytes(&self) -> Vec<u8> {
        Vec::new()
    }
}
impl ValArg for u64 {
    fn bytes(&self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
}

impl<V> H<'_, V> {
    pub(crate) fn get(&self, key: impl KeyArg) -> Result<Option<Got<V>>, JournalError> {
        Ok(self.kv.get(self.t, &key.bytes())?.map(|bytes| Got {
            bytes,
            v: PhantomData,
        }))
    }

    pub(crate) fn insert(
        &mut self,
        key: impl KeyArg,
        value: impl ValArg,
    ) -> Result<(), JournalError> {
        self.kv.put(self.t, &key.bytes(), &value.bytes())
    }
}
