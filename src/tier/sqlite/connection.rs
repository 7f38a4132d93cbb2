//! The connections of a SQLite tier: opening one (flags, statement cache), the busy wait on
//! another connection's lock, and the writer's set-up (WAL, `synchronous`, page size, schema).

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::{Schema, TierContext, schema};
use crate::config::Durability;

/// How long a statement on L3 waits for another connection's lock before failing.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a statement on L2 waits. A put or a removal holds L2's write lock while it writes
/// L3 (`Tier::put_many_around`), where it may itself wait up to [`BUSY_TIMEOUT`]; a wait for L2
/// must outlast that, or a writer of L2 gives up while the holder is only waiting its turn below.
pub(super) const BUSY_TIMEOUT_ABOVE_L3: Duration = Duration::from_secs(11);
const STATEMENT_CACHE: usize = 32;

/// A connection to an existing file, with the busy wait of its tier and the statement cache.
pub(super) fn connect(path: &Path, schema: Schema) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_handler(Some(match schema {
        Schema::L2 => wait_for_lock_above_l3,
        Schema::L3 => wait_for_lock,
    }))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// SQLite's busy handler: retries a lock another connection holds until [`BUSY_TIMEOUT`] has
/// passed. SQLite's own (`busy_timeout`) sleeps 1, 2, 5, 10 ... 100 ms between tries, while a
/// write transaction here holds the lock for tens of microseconds, so processes writing one
/// store took turns at the pace of those sleeps. This one tries again every 50 µs for the first
/// 100 tries, then every millisecond.
fn wait_for_lock(tries: i32) -> bool {
    wait_for_lock_up_to(tries, BUSY_TIMEOUT)
}

/// [`wait_for_lock`] for L2, up to [`BUSY_TIMEOUT_ABOVE_L3`].
fn wait_for_lock_above_l3(tries: i32) -> bool {
    wait_for_lock_up_to(tries, BUSY_TIMEOUT_ABOVE_L3)
}

fn wait_for_lock_up_to(tries: i32, limit: Duration) -> bool {
    thread_local! {
        static SINCE: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
    }
    let now = Instant::now();
    if tries == 0 {
        SINCE.with(|s| s.set(Some(now)));
    }
    let since = SINCE.with(|s| s.get()).unwrap_or(now);
    if now.duration_since(since) >= limit {
        return false;
    }
    std::thread::sleep(pause_before_try(tries));
    true
}

/// How long to wait before try `tries + 1` of a lock: 50 µs for the first 100 tries, then 1 ms.
fn pause_before_try(tries: i32) -> Duration {
    if tries < 100 {
        Duration::from_micros(50)
    } else {
        Duration::from_millis(1)
    }
}

/// Runs `f` again while it fails with `SQLITE_BUSY`, at the pace of [`wait_for_lock`], for up
/// to [`BUSY_TIMEOUT`]: for the statements that return `SQLITE_BUSY` without calling the busy
/// handler.
fn retry_while_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    // A deadline of its own: `f` may call the busy handler too, which restarts its clock.
    let deadline = Instant::now() + BUSY_TIMEOUT;
    let mut tries = 0;
    loop {
        match f() {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(pause_before_try(tries));
                tries = tries.saturating_add(1);
            }
            other => return other,
        }
    }
}

/// Why the writer could not be opened.
pub(super) enum OpenError {
    Sqlite(rusqlite::Error),
    /// The table exists with other columns: these are missing.
    Columns(Vec<String>),
}

impl From<rusqlite::Error> for OpenError {
    fn from(e: rusqlite::Error) -> Self {
        OpenError::Sqlite(e)
    }
}

/// The page size of databases pwcache creates.
pub(super) const NEW_DATABASE_PAGE_SIZE: i64 = 2048;

/// The writer: WAL, the durability's `synchronous`, and the schema created or migrated.
pub(super) fn open_writer(
    path: &Path,
    schema: Schema,
    ctx: &TierContext,
) -> Result<Connection, OpenError> {
    let mut conn = connect(path, schema)?;
    // A new database gets 2 KiB pages (an existing one keeps its own; the setting is ignored
    // once the file has content). A put commits every page it touched to the WAL, checksums
    // included, so smaller pages make each commit cheaper: 2 KiB took a single-row L3 put from
    // ~37 to ~30 µs on the development machine while a credentialed row (~500 bytes) still fits
    // several to a leaf (`cargo run --release --example put_profile`).
    conn.pragma_update(None, "page_size", NEW_DATABASE_PAGE_SIZE)?;
    // Switching a new database to WAL takes an exclusive lock without calling the busy
    // handler: a process that opens the store while another is setting it up gets
    // `database is locked` at once. It is a wait like any other.
    let mode: String = retry_while_busy(|| {
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
    })?;
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!(
            "{} stays in journal mode {mode}: WAL is not available there",
            path.display()
        );
    }
    let synchronous = match ctx.durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    schema::create_tables(&tx, schema)?;
    let missing = schema::missing_columns(&tx, schema)?;
    if !missing.is_empty() {
        return Err(OpenError::Columns(missing));
    }
    schema::create_indexes(&tx, schema, ctx.max_entries.map(|_| ctx.eviction_policy))?;
    tx.commit()?;
    Ok(conn)
}
