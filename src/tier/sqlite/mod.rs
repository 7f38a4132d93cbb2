//! L2 (`l2_cache`, backend `sqlite`) and L3 (`cache_entries`) in SQLite, in upstream's schemas.
//!
//! # Files
//! The tables are proxywhirl 0.3.3's, column for column and in the same order (upstream reads
//! rows with `SELECT *` by position), so a proxywhirl database opens here and a pwcache database
//! opens in proxywhirl. Datetimes are REAL Unix epoch seconds, credentials the Fernet token's
//! ASCII as a BLOB ([`crate::crypto`]), `NULL` when absent. A legacy `cache_entries` without the
//! nine health columns gets them appended in upstream's order. The eight health fields that
//! `l2_cache` has no column for live in a table of ours, `pwcache_l2_health`, kept in step by
//! triggers (see [`schema`]); a row without a side row reads the defaults. L3 keeps `created_at`
//! when a key is written again and sets `updated_at`; `health_history` is created and left alone,
//! as upstream does.
//!
//! Every database is put in WAL mode, with a 5 s busy timeout and `synchronous` `NORMAL` (or
//! `FULL` for [`Durability::Full`]). The database file is created 0600 before SQLite opens it, so
//! the `-wal` and `-shm` files SQLite creates beside it are 0600 too.
//!
//! # Concurrency
//! One writer connection behind a mutex runs every write in an IMMEDIATE transaction (`put_many`
//! is one transaction, whatever the batch size), with statements prepared once per connection.
//! Writers on several threads share transactions ([`group`]): one that arrives while another's
//! transaction is still open joins it, in a savepoint of its own, and one `COMMIT` ends the
//! group; every writer returns only after that `COMMIT`.
//! Reads take a connection from a small pool of readers, so under WAL they never wait for the
//! writer, and other handles and processes on the same file see each other's writes.
//!
//! # Capacity
//! With `max_entries`, a put that leaves more rows than the bound evicts, inside its own
//! transaction, down to 99 % of the bound (to the bound itself below 100 rows), by the policy:
//! LRU the smallest `last_accessed`; LFU the smallest `access_count`, then the oldest
//! `last_accessed`; FIFO the oldest insertion (the rowid: an update keeps it, since writes are
//! upserts, not replaces). Each victim counts one `evictions_lru`. The policy's `ORDER BY` is served by an index (ours when
//! upstream has none, named `pwcache_idx_*`).
//!
//! The row count needed to decide is kept in memory, not counted per put: it is counted once,
//! then moved by each of our own writes (a put checks its keys' existence by primary key, the
//! deletes count what they return). `PRAGMA data_version`, read at the start of each put's
//! transaction, changes exactly when another connection has committed; only then is the count
//! taken again with `COUNT(*)`. A put thus costs O(log n) for the bookkeeping, and the count is
//! exact even with other writers, because the IMMEDIATE transaction holds the write lock from the
//! check to the commit. A failed transaction forgets the count.
//!
//! # Damaged data
//! A damaged database (SQLite says `SQLITE_NOTADB` or `SQLITE_CORRUPT`) is renamed aside
//! (`<name>.corrupt-<unix-time>`, with its `-wal`/`-shm`/`-journal`), replaced by a fresh
//! database holding the rows that could still be read, and counted once in
//! `evictions_corruption` ([`recover`]). Damage met at run time stops this instance and marks the
//! path for an integrity check at the next open, which the manager does when it retries the
//! tier. A row that cannot be decoded ([`codec`]) is deleted by `get`, counted in
//! `evictions_corruption` and read as a miss; a credential the key cannot decrypt is an
//! [`Error::Crypto`] and the row is kept. A path that is a directory, or that cannot be opened,
//! is an error (the manager marks the tier degraded).
//!
//! # A file removed or replaced while open
//! The connections would go on using the old file, gone from the path ([`identity`]). Each write
//! transaction compares the file at the path with the one opened, after its commit, and a read
//! does when it fails: a difference stops this instance (that write fails, so the manager
//! records its keys as missed), and every later call fails until the manager opens the tier
//! again, on whatever file is at the path then.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use rusqlite::Connection;
use rusqlite::types::Value;

use crate::entry::CacheEntry;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::stats::Counter;
use crate::time::{Clock, SystemClock, Timestamp};

use super::{CopyOutcome, Failures, Scanned, Tier, TierContext, Unreadable, Usage, Version};

mod checkpointer;
mod codec;
mod connection;
mod group;
mod identity;
pub mod library;
mod recover;
mod schema;
mod transaction;

pub use schema::ENTRY_COLUMNS;

use checkpointer::Checkpointer;
use codec::Undecodable;
use connection::{OpenError, connect, open_writer};
use group::{Concurrency, Group};
use identity::OpenedFiles;
use schema::Sql;

/// Reader connections kept open between reads.
const IDLE_READERS: usize = 4;

/// Which of upstream's tables a database holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    /// `l2_cache` (upstream's `DiskCacheTier`, `<l2_cache_dir>/l2_cache.db`).
    L2,
    /// `cache_entries` and `health_history` (upstream's `SQLiteCacheTier`).
    L3,
}

impl Schema {
    /// The table that holds the entries.
    pub fn table(self) -> &'static str {
        match self {
            Schema::L2 => "l2_cache",
            Schema::L3 => "cache_entries",
        }
    }
}

/// The row count of the writer's view, see the module docs.
struct RowCount {
    known: Option<u64>,
    data_version: i64,
}

impl RowCount {
    /// The exact count inside a write transaction.
    fn sync(&mut self, conn: &Connection, sql: &Sql) -> rusqlite::Result<u64> {
        let version: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        match self.known {
            Some(n) if version == self.data_version => Ok(n),
            _ => {
                let n: i64 = conn
                    .prepare_cached(&sql.count)?
                    .query_row([], |r| r.get(0))?;
                self.known = Some(n.max(0) as u64);
                self.data_version = version;
                Ok(n.max(0) as u64)
            }
        }
    }

    fn removed(&mut self, n: usize) {
        if let Some(known) = &mut self.known {
            *known = known.saturating_sub(n as u64);
        }
    }
}

struct Writer {
    conn: Connection,
    rows: RowCount,
    /// The group whose transaction is open, left for the next writer to join ([`group`]).
    open: Option<Arc<Group>>,
    /// Writers whose statements ran in the open transaction.
    members: usize,
}

/// A persistent tier in one SQLite database. See the module docs.
pub struct SqliteTier {
    path: PathBuf,
    schema: Schema,
    ctx: TierContext,
    sql: Sql,
    /// Declared before `writer`, so its thread stops and its connection closes first.
    checkpointer: Option<Checkpointer>,
    writer: Mutex<Writer>,
    /// Writers blocked on `writer`: while there are some, a writer leaves its transaction open
    /// for them to join ([`group`]).
    waiting: AtomicUsize,
    /// Whether writers on several threads use this tier now ([`group`]).
    concurrency: Concurrency,
    readers: Mutex<Vec<Connection>>,
    /// The files the writer opened, to notice them removed or replaced.
    files: OpenedFiles,
    /// Why this instance stopped serving (its file removed, replaced or damaged); every call
    /// fails with it from then on, so the manager degrades the tier and opens it again.
    stopped: OnceLock<String>,
}

impl std::fmt::Debug for SqliteTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteTier")
            .field("path", &self.path)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl SqliteTier {
    /// Opens (creating when missing) the database at `path` with the tables of `schema`.
    ///
    /// Missing parent directories are created 0700 and a missing file 0600. A path that is a
    /// directory, cannot be opened or created, or holds a table of that name with other columns
    /// is an error. A damaged database is moved aside and replaced (module docs).
    pub fn open(path: &Path, schema: Schema, ctx: TierContext) -> Result<SqliteTier> {
        if path.is_dir() {
            return Err(Error::Storage(format!(
                "{} is a directory, not a SQLite database",
                path.display()
            )));
        }
        fsutil::create_parent_dirs(path)?;
        fsutil::touch_private(path)?;
        let failed = |e: OpenError| match e {
            OpenError::Sqlite(e) => {
                Error::sqlite(format!("cannot open SQLite database {}", path.display()), e)
            }
            OpenError::Columns(missing) => Error::Storage(format!(
                "{}: table {} is not proxywhirl's: it lacks the columns {}",
                path.display(),
                schema.table(),
                missing.join(", ")
            )),
        };
        let rebuild = |why: &str| {
            recover::rebuild(path, schema, why, &ctx.counters, || {
                open_writer(path, schema, &ctx).map_err(failed)
            })
        };
        let conn = match open_writer(path, schema, &ctx) {
            Ok(conn) => match recover::check_if_suspect(path, &conn) {
                Ok(None) => conn,
                Ok(Some(why)) => {
                    recover::keep_wal_on_close(&conn);
                    drop(conn);
                    rebuild(&why)?
                }
                Err(e) => return Err(failed(e.into())),
            },
            Err(OpenError::Sqlite(e)) if recover::is_damage(&e) => rebuild(&e.to_string())?,
            Err(e) => return Err(failed(e)),
        };
        let checkpointer = Checkpointer::start(path, schema, &conn);
        let files =
            OpenedFiles::of(path).map_err(|e| Error::io("cannot read the metadata of", path, e))?;
        let sql = Sql::new(schema, ctx.eviction_policy);
        Ok(SqliteTier {
            path: path.to_path_buf(),
            schema,
            ctx,
            sql,
            checkpointer,
            writer: Mutex::new(Writer {
                conn,
                rows: RowCount {
                    known: None,
                    data_version: 0,
                },
                open: None,
                members: 0,
            }),
            waiting: AtomicUsize::new(0),
            concurrency: Concurrency::default(),
            readers: Mutex::new(Vec::new()),
            files,
            stopped: OnceLock::new(),
        })
    }

    fn error(&self, what: &str, e: rusqlite::Error) -> Error {
        Error::sqlite(
            format!(
                "{what} in {} ({})",
                self.schema.table(),
                self.path.display()
            ),
            e,
        )
    }

    /// `Ok` while this instance serves, else why it stopped.
    fn serving(&self) -> Result<()> {
        match self.stopped.get() {
            None => Ok(()),
            Some(why) => Err(Error::Storage(format!(
                "{} {why}: the tier is opened again on the next retry",
                self.path.display()
            ))),
        }
    }

    /// Stops this instance for good (the first reason wins), and says so once in the log.
    fn stop_serving(&self, why: String) {
        let message = format!("{} {why}", self.path.display());
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.stop();
        }
        if self.stopped.set(why).is_ok() {
            log::warn!("{message}");
        }
    }

    /// Stops this instance when its file is no longer at its path, removing the WAL it leaves
    /// behind ([`identity`]).
    fn check_identity(&self) -> Result<()> {
        if let Some(why) = self.files.lost_at(&self.path) {
            if self.stopped.get().is_none() {
                self.files.remove_companions_left_behind();
            }
            self.stop_serving(why.to_string());
        }
        self.serving()
    }

    /// The error of a failed SQLite call, after stopping this instance when the call met damage
    /// (the path is then checked when next opened) or a file no longer at its path.
    fn failed(&self, what: &str, e: rusqlite::Error) -> Error {
        if recover::is_damage(&e) {
            recover::suspect(&self.path);
            self.stop_serving(format!("is damaged ({e})"));
        } else {
            let _ = self.check_identity();
        }
        self.error(what, e)
    }

    /// Runs `f` on a reader connection (from the pool, or a new one).
    fn read<T>(&self, what: &str, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.serving()?;
        let idle = self.readers.lock().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => connect(&self.path, self.schema)
                .and_then(|conn| conn.pragma_update(None, "query_only", true).map(|_| conn))
                .map_err(|e| self.failed("cannot open a reader", e))?,
        };
        let result = f(&conn);
        if result.is_ok() {
            let mut idle = self.readers.lock();
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
        }
        result.map_err(|e| self.failed(what, e))
    }

    /// The row of `key`, decoded.
    fn lookup(
        &self,
        conn: &Connection,
        key: &str,
    ) -> rusqlite::Result<Option<std::result::Result<CacheEntry, Undecodable>>> {
        let mut stmt = conn.prepare_cached(&self.sql.get)?;
        let mut rows = stmt.query([key])?;
        Ok(rows.next()?.map(|row| codec::decode(row, &self.ctx.crypto)))
    }

    /// Deletes the row of `key` if it is still corrupt when the write lock is held (another
    /// writer may have replaced it since it was read), and reads what is there then.
    fn drop_corrupt(&self, key: &str) -> Result<Option<CacheEntry>> {
        let (outcome, dropped) = self.write("dropping a corrupt row", |tx, rows| {
            match self.lookup(tx, key)? {
                Some(Err(Undecodable::Corrupt(reason))) => {
                    tx.prepare_cached(&self.sql.delete)?.execute([key])?;
                    rows.removed(1);
                    Ok((None, Some(reason)))
                }
                other => Ok((other, None)),
            }
        })?;
        if let Some(reason) = dropped {
            self.ctx.counters.add(Counter::EvictionsCorruption, 1);
            log::warn!(
                "dropped a corrupt row of {} in {}: {reason}",
                self.schema.table(),
                self.path.display()
            );
        }
        match outcome {
            None => Ok(None),
            Some(Ok(entry)) => Ok(Some(entry)),
            Some(Err(Undecodable::Crypto(e))) => Err(e),
            // Corrupt again after a rewrite in between: a miss; the next read drops it.
            Some(Err(Undecodable::Corrupt(_))) => Ok(None),
        }
    }

    /// Stores `entries` whole in one transaction; with `only_if_absent`, an entry only where its key
    /// holds nothing and the check, asked inside the transaction, allows it. `below` runs first
    /// inside the transaction, with the write lock held ([`Tier::put_many_around`]). Returns how
    /// many were stored.
    fn write_batch(
        &self,
        entries: &[CacheEntry],
        mut only_if_absent: Option<&mut dyn FnMut() -> bool>,
        below: &mut dyn FnMut(),
    ) -> Result<u64> {
        if entries.is_empty() {
            return Ok(0);
        }
        // Encryption is the slow part: done before the write lock is taken.
        let encoded = entries
            .iter()
            .map(|e| codec::encode(e, &self.ctx.crypto))
            .collect::<Result<Vec<Vec<Value>>>>()?;
        let now = Value::Real(SystemClock.now().as_epoch_seconds());
        let max = self.ctx.max_entries;
        let (stored, evicted) = self.write("put", |tx, rows| {
            below();
            let mut count = match max {
                Some(_) => Some(rows.sync(tx, &self.sql)?),
                None => None,
            };
            let mut upsert = tx.prepare_cached(&self.sql.upsert)?;
            let mut exists = tx.prepare_cached(&self.sql.exists)?;
            let mut stored = Vec::with_capacity(entries.len());
            for (entry, values) in entries.iter().zip(&encoded) {
                if count.is_some() || only_if_absent.is_some() {
                    let held = exists.exists([&entry.key])?;
                    if let Some(allowed) = only_if_absent.as_mut()
                        && (held || !allowed())
                    {
                        continue;
                    }
                    if let Some(n) = &mut count
                        && !held
                    {
                        *n += 1;
                    }
                }
                stored.push(entry.key.as_str());
                match self.schema {
                    Schema::L3 => {
                        upsert.execute(rusqlite::params_from_iter(
                            values.iter().chain(std::iter::once(&now)),
                        ))?;
                    }
                    Schema::L2 => {
                        upsert.execute(rusqlite::params_from_iter(&values[..13]))?;
                        if codec::health_fields_are_default(entry) {
                            tx.prepare_cached(self.sql.side_delete)?
                                .execute([&entry.key])?;
                        } else {
                            tx.prepare_cached(self.sql.side_upsert)?.execute(
                                rusqlite::params_from_iter(
                                    std::iter::once(&values[0]).chain(&values[13..]),
                                ),
                            )?;
                        }
                    }
                }
            }
            let mut evicted = 0;
            if let (Some(max), Some(n)) = (max, count) {
                if n > max {
                    // Down to 99 % of the bound (a tier of 100 or more), as the JSONL tier does:
                    // one eviction of a few neighbouring rows serves the next puts too, which
                    // then write only their own row and its index entries.
                    let target = max - max / 100;
                    // The keys just written are the last candidates: under LFU a new key has the
                    // fewest uses, and evicting it on arrival would keep every new key out.
                    let written = serde_json::Value::from(stored.clone()).to_string();
                    let others = Self::returned_keys(
                        tx,
                        &self.sql.evict_others,
                        rusqlite::params![(n - target) as i64, written],
                    )?;
                    evicted = others.len();
                    if n - (evicted as u64) > target {
                        let rest = n - evicted as u64 - target;
                        evicted += Self::returned_keys(tx, &self.sql.evict, [rest as i64])?.len();
                    }
                }
                rows.known = Some(n - evicted as u64);
            }
            Ok((stored.len() as u64, evicted))
        })?;
        if evicted > 0 {
            self.ctx.counters.add(Counter::EvictionsLru, evicted as u64);
            log::debug!(
                "evicted {evicted} entries from {} ({:?}, max {})",
                self.schema.table(),
                self.ctx.eviction_policy,
                max.unwrap_or(0)
            );
        }
        Ok(stored)
    }

    /// Collects the keys a `... RETURNING key` statement gives.
    fn returned_keys(
        conn: &Connection,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare_cached(sql)?;
        let keys = stmt.query_map(params, |row| row.get::<_, String>(0))?;
        keys.collect()
    }
}

/// The parameters `?5`..`?7` of a version check.
fn version_params(version: &Version) -> [Value; 3] {
    [
        Value::Real(version.fetch_time.as_epoch_seconds()),
        Value::Real(version.expires_at.as_epoch_seconds()),
        Value::Text(version.proxy_url.clone()),
    ]
}

impl Drop for SqliteTier {
    /// An instance whose file is damaged or gone from its path closes without the checkpoint and
    /// the deletion of `<path>-wal`/`-shm` that closing the last connection does: those names may
    /// belong to the database that replaced it ([`recover::keep_wal_on_close`]).
    fn drop(&mut self) {
        let lost = self.files.lost_at(&self.path).is_some();
        if self.stopped.get().is_none() && !lost {
            return;
        }
        if lost {
            self.files.remove_companions_left_behind();
        }
        recover::keep_wal_on_close(&self.writer.get_mut().conn);
        for reader in self.readers.get_mut().iter() {
            recover::keep_wal_on_close(reader);
        }
    }
}

impl Tier for SqliteTier {
    fn get(&self, key: &str) -> Result<Option<CacheEntry>> {
        match self.read("get", |conn| self.lookup(conn, key))? {
            None => Ok(None),
            Some(Ok(entry)) => Ok(Some(entry)),
            Some(Err(Undecodable::Crypto(e))) => Err(e),
            Some(Err(Undecodable::Corrupt(_))) => self.drop_corrupt(key),
        }
    }

    fn put_many(&self, entries: &[CacheEntry]) -> Result<()> {
        self.write_batch(entries, None, &mut || {}).map(|_| ())
    }

    // `below` runs inside the write transaction (`BEGIN IMMEDIATE`, or the open transaction of
    // the group this writer joins), before the upserts.
    fn put_many_around(&self, entries: &[CacheEntry], below: &mut dyn FnMut()) -> Result<()> {
        self.write_batch(entries, None, below).map(|_| ())
    }

    fn put_if_absent(&self, entry: &CacheEntry) -> Result<bool> {
        self.write_batch(std::slice::from_ref(entry), Some(&mut || true), &mut || {})
            .map(|n| n > 0)
    }

    // The question is asked inside the write transaction (`BEGIN IMMEDIATE`), which every change
    // of the database waits for.
    fn put_if_absent_while_current(
        &self,
        entry: &CacheEntry,
        still_current: &mut dyn FnMut() -> bool,
    ) -> Result<CopyOutcome> {
        let mut refused = false;
        let mut allowed = || {
            refused = !still_current();
            !refused
        };
        let stored =
            self.write_batch(std::slice::from_ref(entry), Some(&mut allowed), &mut || {})?;
        Ok(match (stored, refused) {
            (1.., _) => CopyOutcome::Stored,
            (0, true) => CopyOutcome::NoLongerCurrent,
            (0, false) => CopyOutcome::Occupied,
        })
    }

    fn record_usage(&self, usage: &[Usage]) -> Result<u64> {
        if usage.is_empty() {
            return Ok(0);
        }
        let now = Value::Real(SystemClock.now().as_epoch_seconds());
        self.write("recording usage", |tx, _| {
            let mut record = tx.prepare_cached(&self.sql.record_use)?;
            let mut recorded = 0;
            for u in usage {
                let mut params = vec![
                    Value::Text(u.key.clone()),
                    Value::Integer(u.access_count),
                    Value::Real(u.last_accessed.as_epoch_seconds()),
                    Value::Integer(i64::from(u.evicted_from_l1)),
                ];
                params.extend(version_params(&u.version));
                if self.schema == Schema::L3 {
                    params.push(now.clone());
                }
                recorded += record.execute(rusqlite::params_from_iter(&params))? as u64;
            }
            Ok(recorded)
        })
    }

    fn record_failure(&self, key: &str) -> Result<Option<Failures>> {
        let now = SystemClock.now().as_epoch_seconds();
        let recorded = self.write("recording a health failure", |tx, _| {
            let mut stmt = tx.prepare_cached(&self.sql.record_failure)?;
            let mut rows = match self.schema {
                Schema::L2 => stmt.query(rusqlite::params![key])?,
                Schema::L3 => stmt.query(rusqlite::params![key, now])?,
            };
            match rows.next()? {
                Some(row) => Ok(Some((row.get::<_, i64>(0)?, row.get::<_, f64>(1)?))),
                None => Ok(None),
            }
        })?;
        Ok(recorded.map(|(failure_count, expires_at)| Failures {
            failure_count,
            // A row whose expiry cannot be read is expired: the manager then removes it.
            expires_at: Timestamp::from_epoch_seconds(expires_at).unwrap_or(Timestamp::MIN),
        }))
    }

    fn delete_if_version(&self, key: &str, version: &Version) -> Result<bool> {
        self.write("delete", |tx, rows| {
            let params = std::iter::once(Value::Text(key.to_string()))
                .chain([Value::Null, Value::Null, Value::Null])
                .chain(version_params(version));
            let n = tx
                .prepare_cached(&self.sql.delete_if_version)?
                .execute(rusqlite::params_from_iter(params))?;
            rows.removed(n);
            Ok(n > 0)
        })
    }

    fn delete(&self, key: &str) -> Result<bool> {
        self.delete_around(&[key], &mut || {}).map(|n| n > 0)
    }

    // `below` runs inside the write transaction, before the deletes.
    fn delete_around(&self, keys: &[&str], below: &mut dyn FnMut()) -> Result<u64> {
        self.write("delete", |tx, rows| {
            below();
            let mut delete = tx.prepare_cached(&self.sql.delete)?;
            let mut removed = 0;
            for key in keys {
                let n = delete.execute([key])?;
                rows.removed(n);
                removed += n as u64;
            }
            Ok(removed)
        })
    }

    fn clear(&self) -> Result<Vec<String>> {
        self.write("clear", |tx, rows| {
            let keys = Self::returned_keys(tx, &self.sql.clear, [])?;
            if self.schema == Schema::L2 {
                tx.prepare_cached("DELETE FROM pwcache_l2_health")?
                    .execute([])?;
            }
            rows.removed(keys.len());
            Ok(keys)
        })
    }

    fn len(&self) -> Result<u64> {
        self.read("len", |conn| {
            let n: i64 = conn
                .prepare_cached(&self.sql.count)?
                .query_row([], |r| r.get(0))?;
            Ok(n.max(0) as u64)
        })
    }

    fn remove_expired(&self, now: Timestamp) -> Result<Vec<String>> {
        // A stored REAL reads back as the microsecond it rounds to; `expires_at <= now` in those
        // microseconds is `expires_at < now + 0.5 µs` in seconds.
        let bound = (now.as_micros() as f64 + 0.5) / 1e6;
        self.write("remove_expired", |tx, rows| {
            let keys = Self::returned_keys(tx, &self.sql.expire, [bound])?;
            rows.removed(keys.len());
            Ok(keys)
        })
    }

    fn scan(&self, visit: &mut dyn FnMut(Scanned)) -> Result<()> {
        self.read("scan", |conn| {
            let mut stmt = conn.prepare_cached(&self.sql.scan)?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                visit(codec::decode(row, &self.ctx.crypto).map_err(|bad| {
                    // The key column alone may still be readable.
                    let key = row.get::<_, String>(0).ok();
                    Unreadable::new(
                        key,
                        match bad {
                            Undecodable::Crypto(e) => e,
                            Undecodable::Corrupt(reason) => Error::Storage(format!(
                                "corrupt row in {} ({}): {reason}",
                                self.schema.table(),
                                self.path.display()
                            )),
                        },
                    )
                }));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
