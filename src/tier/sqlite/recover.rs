//! Damaged databases: which errors mean damage, setting the file aside, and keeping the rows that
//! can still be read.
//!
//! Only `SQLITE_CORRUPT` ("database disk image is malformed") and `SQLITE_NOTADB` mean damage.
//! Busy, locked, read-only, full, cannot-open and other I/O errors pass or need a person, and a
//! file is never set aside for them.
//!
//! Damage shows in two places. When opening, SQLite reports it on the first page it reads: a file
//! that is not a database, a file shorter than its header says (truncated). At run time, a read
//! or write meets a damaged page while the opening went fine; the tier then marks its path as
//! suspect ([`suspect`]) and stops serving, and when the manager opens it again, the open runs
//! `PRAGMA quick_check` on that path ([`check_if_suspect`]). A sound database is never scanned.
//!
//! [`rebuild`] sets a damaged file aside as `<name>.corrupt-<unix-time>` with its `-wal`, `-shm`
//! and `-journal`, creates a fresh database in its place and copies into it what can still be
//! read of the old one ([`salvage`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::config::DbConfig;
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::stats::{Counter, TierCounters};

use super::Schema;
use super::schema::column_names;

/// Whether SQLite says the database itself is damaged (not busy, full, unreadable, ...).
pub(super) fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// Paths where a tier met damage at run time, checked when next opened.
static SUSPECTS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn suspects() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    SUSPECTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Marks the database at `path` for an integrity check when it is next opened.
pub(super) fn suspect(path: &Path) {
    let mut suspects = suspects();
    if !suspects.iter().any(|p| p == path) {
        suspects.push(path.to_path_buf());
    }
}

fn take_suspicion(path: &Path) -> bool {
    let mut suspects = suspects();
    let before = suspects.len();
    suspects.retain(|p| p != path);
    suspects.len() != before
}

/// For a database opened at a suspect path: `PRAGMA quick_check`, and `Some(what is wrong)` when
/// it is damaged. `None` for a path nobody suspects, without reading anything. An error that is
/// not damage (busy, I/O) leaves the path suspect for the next open.
pub(super) fn check_if_suspect(path: &Path, conn: &Connection) -> rusqlite::Result<Option<String>> {
    if !take_suspicion(path) {
        return Ok(None);
    }
    match conn.query_row("PRAGMA quick_check(1)", [], |r| r.get::<_, String>(0)) {
        Ok(verdict) if verdict == "ok" => {
            log::info!("{} passed its integrity check", path.display());
            Ok(None)
        }
        Ok(problem) => Ok(Some(problem)),
        Err(e) if is_damage(&e) => Ok(Some(e.to_string())),
        Err(e) => {
            suspect(path);
            Err(e)
        }
    }
}

/// Closing the last connection to a WAL database checkpoints the WAL into the file and deletes
/// `<path>-wal` and `-shm` by name. After this, `conn` closes without doing either: for a
/// damaged file (its WAL is kept for the salvage) and for a file no longer at its path (the
/// names may belong to another database by now).
pub(super) fn keep_wal_on_close(conn: &Connection) {
    if let Err(e) = conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true) {
        log::warn!("cannot turn the checkpoint on close off: {e}");
    }
}

/// Sets the damaged database at `path` aside, opens a fresh one there with `open_fresh`, copies
/// into it the rows still readable in the old one, counts one `evictions_corruption` and logs
/// what happened. `why` says what is wrong, for the log.
pub(super) fn rebuild(
    path: &Path,
    schema: Schema,
    why: &str,
    counters: &TierCounters,
    open_fresh: impl FnOnce() -> Result<Connection>,
) -> Result<Connection> {
    let aside = move_aside(path)?;
    // Whatever was suspected of the old file, the new one starts trusted.
    take_suspicion(path);
    counters.add(Counter::EvictionsCorruption, 1);
    fsutil::touch_private(path)?;
    let mut conn = open_fresh()?;
    let kept = salvage(&aside, &mut conn, schema);
    let skipped = match kept.damaged_stretches {
        0 => String::new(),
        n => format!(", {n} damaged stretches skipped"),
    };
    let unread = kept
        .unread
        .map(|e| format!(" (stopped reading it: {e})"))
        .unwrap_or_default();
    log::warn!(
        "{} is damaged ({why}): moved it to {} and created a fresh database with the {} rows \
         that could still be read{skipped}{unread}",
        path.display(),
        aside.display(),
        kept.rows
    );
    Ok(conn)
}

/// Renames the file at `path` and its companions to `<name>.corrupt-<unix-time>` (`-1`, `-2`, ...
/// appended when taken); returns the new name.
fn move_aside(path: &Path) -> Result<PathBuf> {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut aside = path.with_file_name(format!("{name}.corrupt-{seconds}"));
    let mut n = 1;
    while aside.exists() {
        aside = path.with_file_name(format!("{name}.corrupt-{seconds}-{n}"));
        n += 1;
    }
    fs::rename(path, &aside).map_err(|e| Error::io("cannot move aside", path, e))?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let companion = path.with_file_name(format!("{name}{suffix}"));
        if companion.exists() {
            let target = aside.with_file_name(format!(
                "{}{suffix}",
                aside.file_name().unwrap_or_default().to_string_lossy()
            ));
            fs::rename(&companion, &target)
                .map_err(|e| Error::io("cannot move aside", &companion, e))?;
        }
    }
    Ok(aside)
}

/// What [`salvage`] kept.
#[derive(Debug, Default)]
struct Salvage {
    rows: u64,
    /// Stretches of rowids that could not be read and were stepped over.
    damaged_stretches: u64,
    /// Why reading stopped before the end, if it did.
    unread: Option<String>,
    probes: u32,
}

/// At most this many probes for readable rows past damage, per salvage: a salvage ends in
/// bounded time however the file is damaged (a probe is one seek and one row).
const PROBE_BUDGET: u32 = 20_000;

/// The tables a salvage copies, parents first (the L2 side table's rows follow their entries).
fn tables(schema: Schema) -> &'static [&'static str] {
    match schema {
        Schema::L2 => &["l2_cache", "pwcache_l2_health"],
        Schema::L3 => &["cache_entries", "health_history"],
    }
}

/// Copies the rows still readable in the set-aside database `aside` into `into` (fresh, with the
/// tables created), in one transaction. When writing the copy fails, nothing is copied; the
/// rows stay in `aside` for a person to recover.
fn salvage(aside: &Path, into: &mut Connection, schema: Schema) -> Salvage {
    let mut kept = Salvage::default();
    let source = match open_damaged(aside) {
        Ok(source) => source,
        Err(e) => {
            kept.unread = Some(e.to_string());
            return kept;
        }
    };
    let copied = into
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .and_then(|tx| {
            for table in tables(schema) {
                copy_table(&source, &tx, table, &mut kept)?;
            }
            if schema == Schema::L2 {
                tx.execute(
                    "DELETE FROM pwcache_l2_health WHERE key NOT IN (SELECT key FROM l2_cache)",
                    [],
                )?;
            }
            tx.commit()
        });
    if let Err(e) = copied {
        kept.rows = 0;
        kept.unread = Some(format!("writing the copy failed: {e}"));
    }
    kept
}

/// A read-only connection to a damaged database. `writable_schema` makes SQLite read a file
/// shorter than its header says (instead of refusing it whole, it treats the missing pages as
/// damaged); `cell_size_check` makes it notice damaged cells sooner.
fn open_damaged(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    keep_wal_on_close(&conn);
    conn.pragma_update(None, "writable_schema", true)?;
    conn.pragma_update(None, "cell_size_check", true)?;
    Ok(conn)
}

/// Copies the readable rows of `table` from `source` into `dest`, walking by rowid and stepping
/// over damaged stretches. Errors of `source` are damage, counted in `kept`; errors of `dest`
/// are returned.
fn copy_table(
    source: &Connection,
    dest: &Connection,
    table: &str,
    kept: &mut Salvage,
) -> rusqlite::Result<()> {
    let source_columns = match column_names(source, table) {
        Ok(columns) => columns,
        Err(e) => {
            kept.unread.get_or_insert_with(|| format!("{table}: {e}"));
            return Ok(());
        }
    };
    let columns: Vec<String> = column_names(dest, table)?
        .into_iter()
        .filter(|c| source_columns.contains(c))
        .collect();
    if columns.is_empty() {
        return Ok(()); // not in the old file
    }
    let list = columns.join(", ");
    let walk = Walk {
        source,
        table,
        columns: columns.len(),
        from: format!("SELECT rowid, {list} FROM {table} WHERE rowid >= ?1 ORDER BY rowid"),
    };
    let placeholders = vec!["?"; columns.len()].join(", ");
    let mut insert = dest.prepare(&format!(
        "INSERT OR IGNORE INTO {table} ({list}) VALUES ({placeholders})"
    ))?;
    let mut next = Some(i64::MIN);
    while let Some(start) = next {
        next = None;
        let mut stmt = match source.prepare_cached(&walk.from) {
            Ok(stmt) => stmt,
            Err(e) => {
                kept.unread.get_or_insert_with(|| format!("{table}: {e}"));
                break;
            }
        };
        let mut rows = stmt.query([start])?;
        let mut last_read = None;
        loop {
            let floor = last_read.map_or(start, |r: i64| r.saturating_add(1));
            match walk.row(rows.next(), floor) {
                Ok(Some((rowid, values))) => {
                    kept.rows += insert.execute(rusqlite::params_from_iter(values))? as u64;
                    last_read = Some(rowid);
                }
                Ok(None) => break,
                Err(_) => {
                    kept.damaged_stretches += 1;
                    next = walk.next_readable(last_read.unwrap_or(start), kept);
                    break;
                }
            }
        }
    }
    Ok(())
}

/// A walk over one table of a damaged database, by rowid.
struct Walk<'a> {
    source: &'a Connection,
    table: &'a str,
    columns: usize,
    /// The rows from rowid `?1` on, in order.
    from: String,
}

/// What a probe at one rowid found.
enum Probe {
    /// The first row at or after it, read whole.
    Readable,
    /// Reading went fine and found no row at or after it.
    End,
    Damaged,
}

impl Walk<'_> {
    /// A row of the walk's query: its rowid and values, or the damage met reading it. A rowid
    /// below `floor` is damage too: a damaged b-tree can hand rows out of order, and the walk
    /// only moves forward.
    fn row(
        &self,
        row: rusqlite::Result<Option<&rusqlite::Row<'_>>>,
        floor: i64,
    ) -> rusqlite::Result<Option<(i64, Vec<Value>)>> {
        let Some(row) = row? else { return Ok(None) };
        let rowid: i64 = row.get(0)?;
        if rowid < floor {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(format!("rowid {rowid} out of order in {}", self.table)),
            ));
        }
        let values = (1..=self.columns)
            .map(|i| row.get::<_, Value>(i))
            .collect::<rusqlite::Result<Vec<Value>>>()?;
        Ok(Some((rowid, values)))
    }

    /// Whether the walk can start at `at`: the same query, reading its first row whole (a probe
    /// that only found a rowid could land on a row whose contents are damaged).
    fn probe(&self, at: i64, kept: &mut Salvage) -> Option<Probe> {
        if kept.probes >= PROBE_BUDGET {
            kept.unread
                .get_or_insert_with(|| format!("{}: too damaged to read further", self.table));
            return None;
        }
        kept.probes += 1;
        let first = self.source.prepare_cached(&self.from).and_then(|mut stmt| {
            self.row(stmt.query([at])?.next(), at)
                .map(|row| row.is_some())
        });
        Some(match first {
            Ok(true) => Probe::Readable,
            Ok(false) => Probe::End,
            Err(_) => Probe::Damaged,
        })
    }

    /// The first rowid after `failed_at` from which the walk can go on, if one is found.
    ///
    /// Gallops (steps of 1, 2, 4, ...) until a probe is not damaged, then bisects back towards
    /// `failed_at` for the first readable one. Damage need not be contiguous, so this can step
    /// over readable rows between damaged ones: it finds rows, not every row. A readable probe
    /// reads at least one row, so each stretch moves the walk forward.
    fn next_readable(&self, failed_at: i64, kept: &mut Salvage) -> Option<i64> {
        // `lo`: not a place to resume from. `hi`: the first probe past it that was not damaged.
        let mut lo = failed_at;
        let mut step: i64 = 1;
        let (mut hi, mut found) = loop {
            let at = lo.saturating_add(step);
            if at == lo {
                return None;
            }
            match self.probe(at, kept)? {
                Probe::Damaged => {
                    lo = at;
                    step = step.saturating_mul(2);
                }
                Probe::Readable => break (at, Some(at)),
                Probe::End => break (at, None),
            }
        };
        while i128::from(hi) - i128::from(lo) > 1 {
            let mid = ((i128::from(lo) + i128::from(hi)) / 2) as i64;
            match self.probe(mid, kept)? {
                Probe::Damaged => lo = mid,
                Probe::Readable => {
                    found = Some(mid);
                    hi = mid;
                }
                Probe::End => hi = mid,
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_corrupt_and_not_a_database_are_damage() {
        let error =
            |code: i32| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        assert!(is_damage(&error(rusqlite::ffi::SQLITE_CORRUPT)));
        assert!(is_damage(&error(rusqlite::ffi::SQLITE_NOTADB)));
        for passing in [
            rusqlite::ffi::SQLITE_BUSY,
            rusqlite::ffi::SQLITE_LOCKED,
            rusqlite::ffi::SQLITE_FULL,
            rusqlite::ffi::SQLITE_IOERR,
            rusqlite::ffi::SQLITE_CANTOPEN,
            rusqlite::ffi::SQLITE_PERM,
            rusqlite::ffi::SQLITE_READONLY,
        ] {
            assert!(!is_damage(&error(passing)), "{passing}");
        }
    }

    #[test]
    fn a_suspicion_is_taken_once() {
        let path = Path::new("/nonexistent/suspect-test.db");
        assert!(!take_suspicion(path));
        suspect(path);
        suspect(path);
        assert!(take_suspicion(path));
        assert!(!take_suspicion(path));
    }

    /// A table whose rows 40 to 59 or so sit on pages overwritten with garbage: the walk steps
    /// over them and keeps the others.
    #[test]
    fn a_salvage_steps_over_a_damaged_stretch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let page_size = 1024;
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "PRAGMA page_size = {page_size}; CREATE TABLE cache_entries (key TEXT, v BLOB);"
            ))
            .unwrap();
            for i in 0..100 {
                conn.execute(
                    "INSERT INTO cache_entries VALUES (?1, zeroblob(900))",
                    [format!("k{i}")],
                )
                .unwrap();
            }
        }
        // Each row fills a leaf page of its own (900-byte blobs on 1 KiB pages), written in
        // order after the schema page and the root: the pages from 2/5 to 3/5 of the file hold
        // about rows 40 to 59.
        let mut bytes = fs::read(&path).unwrap();
        let pages = bytes.len() / page_size;
        let (from, to) = (pages * 2 / 5, pages * 3 / 5);
        bytes[from * page_size..to * page_size].fill(0xA5);
        fs::write(&path, &bytes).unwrap();

        let mut fresh = Connection::open_in_memory().unwrap();
        fresh
            .execute_batch("CREATE TABLE cache_entries (key TEXT, v BLOB)")
            .unwrap();
        let kept = salvage(&path, &mut fresh, Schema::L3);
        let n: i64 = fresh
            .query_row("SELECT COUNT(*) FROM cache_entries", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n as u64, kept.rows);
        assert!(kept.damaged_stretches >= 1, "{kept:?}");
        assert!(
            (60..100).contains(&n),
            "the rows outside the damage are kept: {n} ({kept:?})"
        );
        let last: String = fresh
            .query_row(
                "SELECT key FROM cache_entries ORDER BY rowid DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(last, "k99", "the walk went on past the damage");
    }
}
