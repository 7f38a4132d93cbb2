//! Checkpoints off the writers' path: a thread per tier copies the WAL back into the database.
//!
//! SQLite checkpoints in the connection that commits once the WAL holds 1,000 pages, inside that
//! `COMMIT`: the writer copies the pages into the database file and waits for `fdatasync` while
//! it holds the tier's writer, so every other writer of the handle waits too. On the development
//! machine that was 16 % of a single thread's put time (`cargo bench --bench speed -- threads`,
//! `perf`: off the CPU in `sqlite3WalDefaultHook`), and the SQLite L2 backend pays it twice.
//!
//! Here the writer's connection reports the WAL's size after each commit (a WAL hook, which
//! turns SQLite's automatic checkpoint off for that connection), and past [`CHECKPOINT_PAGES`]
//! the writer asks the tier's [`Checkpointer`], a thread with a connection of its own, to run a
//! `PASSIVE` checkpoint: it never blocks a reader or a writer, and writers go on appending to the
//! WAL while it runs. SQLite starts the WAL over at the first write after a checkpoint that
//! copied every frame; under a steady stream of writes the thread's checkpoints never catch the
//! last frames, so the WAL grows to the writer's own mark (below) and starts over there, about
//! 16 MiB with 2 KiB pages. Durability does not change: a commit is as durable as `synchronous` makes it
//! before any checkpoint, and a checkpoint syncs the database as SQLite's own does.
//!
//! Should the thread fall behind or fail, the writer checkpoints itself once the WAL reaches
//! [`WRITER_CHECKPOINT_PAGES`], as SQLite would have, so the WAL stays bounded in every case:
//! near that mark, past it only by what is committed while a checkpoint of the thread still runs
//! (SQLite refuses a second checkpoint meanwhile, and the writer tries again at its next commit).
//! When the thread cannot be started, the writer keeps SQLite's automatic checkpoint.

use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use rusqlite::Connection;
use rusqlite::config::DbConfig;
use rusqlite::hooks::Wal;

use super::Schema;
use super::connection::connect;

/// WAL pages after which a commit asks for a checkpoint: SQLite's automatic checkpoint default.
pub(super) const CHECKPOINT_PAGES: i32 = 1000;

/// WAL pages after which the writer checkpoints itself (the checkpointer is behind, or fails).
pub(super) const WRITER_CHECKPOINT_PAGES: i32 = 8 * CHECKPOINT_PAGES;

thread_local! {
    /// The WAL's size after the last commit on this thread, set by [`note_wal_pages`].
    static WAL_PAGES: Cell<i32> = const { Cell::new(0) };
}

/// The WAL hook of a writer: a plain function (rusqlite passes no state to it), so it leaves the
/// page count where the committing thread reads it right after its `COMMIT`.
fn note_wal_pages(_wal: &Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// The WAL's size reported by the last commit on this thread, and forgets it: 0 when no commit
/// in WAL mode ran since.
pub(super) fn wal_pages_after_commit() -> i32 {
    WAL_PAGES.with(|p| p.replace(0))
}

#[derive(Default)]
struct State {
    requested: bool,
    /// Set when the tier closes or stops serving: no checkpoint runs after it.
    stop: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// The checkpoint thread of one SQLite tier; stopped and joined when dropped.
pub(super) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The WAL's size at the last commit, in [`CHECKPOINT_PAGES`]: a request is made each time
    /// it grows by one.
    wal_steps: AtomicI32,
}

impl Checkpointer {
    /// Opens the thread's connection to the database at `path` (right after the writer's, so
    /// both are on the file the tier checks its path against), starts the thread, and turns
    /// SQLite's automatic checkpoint off on `writer`, whose commits now report the WAL's size.
    /// `None`, and `writer` left as it was, when either cannot be done.
    pub(super) fn start(path: &Path, schema: Schema, writer: &Connection) -> Option<Checkpointer> {
        // It closes without the checkpoint and WAL removal of a last connection: the writer
        // outlives it, and decides that (`SqliteTier`'s `Drop`).
        let conn = connect(path, schema).and_then(|c| {
            c.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
                .map(|_| c)
        });
        let conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                log::debug!(
                    "{}: no checkpoint connection ({e}): SQLite checkpoints in the writer",
                    path.display()
                );
                return None;
            }
        };
        let shared = Arc::new(Shared::default());
        let in_thread = shared.clone();
        let shown = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name(format!("pwcache-ckpt-{}", schema.table()))
            .spawn(move || run(&conn, &shown, &in_thread));
        match thread {
            Ok(thread) => {
                writer.wal_hook(Some(note_wal_pages));
                Some(Checkpointer {
                    shared,
                    thread: Some(thread),
                    wal_steps: AtomicI32::new(0),
                })
            }
            Err(e) => {
                log::debug!("no checkpoint thread ({e}): SQLite checkpoints in the writer");
                None
            }
        }
    }

    /// Asks for a checkpoint; returns at once.
    pub(super) fn request(&self) {
        let mut state = self.shared.state.lock();
        if !state.requested {
            state.requested = true;
            self.shared.wake.notify_one();
        }
    }

    /// Runs no checkpoint from now on: the tier stopped serving (its file is damaged, or no
    /// longer at its path), and such a file is closed without one.
    pub(super) fn stop(&self) {
        self.shared.state.lock().stop = true;
        self.shared.wake.notify_one();
    }
}

#[cfg(test)]
impl Checkpointer {
    /// Whether the thread has ended.
    pub(super) fn ended(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs a `PASSIVE` checkpoint on `conn` per request until asked to stop.
fn run(conn: &Connection, shown: &str, shared: &Shared) {
    loop {
        {
            let mut state = shared.state.lock();
            while !state.requested && !state.stop {
                shared.wake.wait(&mut state);
            }
            if state.stop {
                return;
            }
            state.requested = false;
        }
        // As SQLite ignores a failed automatic checkpoint: the next request tries again, and
        // the writer checkpoints itself past WRITER_CHECKPOINT_PAGES.
        match checkpoint(conn) {
            Ok(true) => {}
            Ok(false) => log::debug!("{shown}: checkpoint busy (another checkpoint runs)"),
            Err(e) => log::debug!("{shown}: checkpoint failed: {e}"),
        }
    }
}

/// One `PASSIVE` checkpoint on `conn`: as many frames as no reader still needs, without waiting.
/// `false` when another connection was checkpointing (SQLite reports that in the result row,
/// not as an error).
pub(super) fn checkpoint(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        row.get::<_, i64>(0).map(|busy| busy == 0)
    })
}

/// After a commit on `writer`: asks `checkpointer` for a checkpoint each time the WAL grows by
/// [`CHECKPOINT_PAGES`], and checkpoints in `writer` past [`WRITER_CHECKPOINT_PAGES`]. Nothing
/// without a checkpointer: SQLite's automatic checkpoint is on then.
///
/// Once a request per [`CHECKPOINT_PAGES`], not after every commit past it: while writers keep
/// committing, a checkpoint in another thread never copies the frames appended meanwhile, so the
/// WAL does not start over after it and stays past the mark. SQLite starts the WAL over only at
/// the first write after a checkpoint that copied every frame, which the writer's own checkpoint
/// at [`WRITER_CHECKPOINT_PAGES`] is: it finds most frames copied already.
pub(super) fn after_commit(checkpointer: Option<&Checkpointer>, writer: &Connection) {
    let pages = wal_pages_after_commit();
    let Some(checkpointer) = checkpointer else {
        return;
    };
    if pages >= WRITER_CHECKPOINT_PAGES {
        match checkpoint(writer) {
            Ok(true) => {}
            Ok(false) => log::debug!("checkpoint in the writer busy: tried at the next commit"),
            Err(e) => log::debug!("checkpoint in the writer failed: {e}"),
        }
        return;
    }
    let steps = pages / CHECKPOINT_PAGES;
    if checkpointer.wal_steps.swap(steps, Ordering::Relaxed) < steps {
        checkpointer.request();
    }
}
