//! The write transaction of a SQLite tier: one IMMEDIATE transaction per write, or a place in
//! the group of writers that joined an open one ([`super::group`]), and the check after each
//! commit that the file is still the one at the path.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rusqlite::Connection;

use super::checkpointer;
use super::group::{Group, MAX_MEMBERS, Outcome};
use super::{RowCount, SqliteTier};
use crate::error::{Error, Result};
use crate::short_wait;

impl SqliteTier {
    /// Runs `f` in an IMMEDIATE transaction of the writer and returns once that transaction is
    /// committed: its own, or the one of the group it joins ([`group`]). When `f` fails, only
    /// its statements are undone. A commit into a file no longer at the path is an error: nobody
    /// would read it.
    pub(super) fn write<T>(
        &self,
        what: &str,
        f: impl FnOnce(&Connection, &mut RowCount) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.serving()?;
        self.concurrency.arrive();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut guard = short_wait::lock(&self.writer);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let writer = &mut *guard;
        let joined = writer.open.take();
        let conn = &writer.conn;
        let rows = &mut writer.rows;
        // BEGIN, COMMIT and the savepoints as cached statements: rusqlite's `Transaction` parses
        // them on every write, a visible share of a single-row put.
        let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| match &joined {
            None => run("BEGIN IMMEDIATE").and_then(|_| {
                f(conn, rows).inspect_err(|_| {
                    if !conn.is_autocommit()
                        && let Err(e) = conn.execute_batch("ROLLBACK")
                    {
                        log::warn!("{}: rollback failed: {e}", self.path.display());
                    }
                })
            }),
            Some(_) => run("SAVEPOINT pwcache_member").and_then(|_| match f(conn, rows) {
                Ok(value) => run("RELEASE pwcache_member").map(|_| value),
                Err(e) => {
                    if let Err(undo) =
                        conn.execute_batch("ROLLBACK TO pwcache_member; RELEASE pwcache_member")
                    {
                        log::warn!("{}: rollback failed: {undo}", self.path.display());
                    }
                    Err(e)
                }
            }),
        }));
        let result = match ran {
            Ok(result) => result,
            Err(panic) => {
                // Nothing of the transaction is known to be whole: undo it for every member.
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                writer.rows.known = None;
                writer.members = 0;
                if let Some(group) = joined {
                    group.finish(Outcome::Failed("a writer of the group panicked".into()));
                }
                drop(guard);
                std::panic::resume_unwind(panic);
            }
        };
        if result.is_err() {
            writer.rows.known = None;
        }
        if joined.is_none() && result.is_err() || conn.is_autocommit() {
            // The first member failed and rolled the transaction back (or could not begin it):
            // nobody else is in it.
            writer.members = 0;
            drop(guard);
            return result.map_err(|e| self.failed(what, e));
        }
        writer.members += 1;
        let mine = joined.unwrap_or_default();
        let mut lingered = false;
        loop {
            let writer = &mut *guard;
            let pass = self.waiting.load(Ordering::SeqCst) > 0 && writer.members < MAX_MEMBERS;
            let linger = !pass && !lingered && self.concurrency.recent();
            if !pass && !linger {
                break;
            }
            // Leave the transaction open for the writers that wait (or, lingering, for those
            // that run on the other threads of this process and are about to write).
            writer.open = Some(mine.clone());
            drop(guard);
            if pass {
                return self.member_outcome(what, &mine, result);
            }
            lingered = true;
            std::thread::yield_now();
            guard = short_wait::lock(&self.writer);
            match &guard.open {
                // Still open: nobody committed it meanwhile; this writer decides again.
                Some(open) if Arc::ptr_eq(open, &mine) => guard.open = None,
                // Another writer joined and committed the group, or is committing it.
                _ => {
                    drop(guard);
                    return self.member_outcome(what, &mine, result);
                }
            }
        }
        let writer = &mut *guard;
        let conn = &writer.conn;
        let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
        let committed = run("COMMIT");
        if committed.is_err() && !conn.is_autocommit() {
            // A failed COMMIT leaves the transaction open: end it.
            if let Err(e) = conn.execute_batch("ROLLBACK") {
                log::warn!("{}: rollback failed: {e}", self.path.display());
            }
        }
        writer.members = 0;
        let committed = match committed {
            Ok(_) => {
                checkpointer::after_commit(self.checkpointer.as_ref(), conn);
                Ok(())
            }
            Err(e) => {
                writer.rows.known = None;
                Err(self.failed(what, e))
            }
        };
        mine.finish(match &committed {
            Ok(()) => Outcome::Committed,
            Err(e) => Outcome::Failed(e.to_string()),
        });
        drop(guard);
        committed?;
        let value = result.map_err(|e| self.failed(what, e))?;
        self.check_identity()?;
        Ok(value)
    }

    /// What a writer that left its transaction to the group returns: its own error, or once
    /// the group is committed its value, or the group's failure.
    fn member_outcome<T>(
        &self,
        what: &str,
        group: &Group,
        result: rusqlite::Result<T>,
    ) -> Result<T> {
        let outcome = group.wait();
        let value = result.map_err(|e| self.failed(what, e))?;
        match outcome {
            Outcome::Committed => self.check_identity().map(|()| value),
            Outcome::Failed(message) => Err(Error::Storage(message)),
        }
    }
}
