//! Group commit: writers that arrive while another writer holds the connection join its
//! transaction, and one `COMMIT` ends the transaction of the whole group (RocksDB's write group
//! is the model).
//!
//! A writer that has run its statements looks at how many writers wait for the connection. None:
//! it commits, alone or for the group it joined. Some (and the group is below [`MAX_MEMBERS`]):
//! it leaves the transaction open for the next writer and waits on the group's [`Group`] until the
//! writer that commits says how the commit went. Each writer thus returns only after the `COMMIT`
//! that holds its rows (with the `synchronous` of the tier's durability), and a failed `COMMIT` is
//! reported to every member. A member whose own statements fail runs them in a savepoint: only its
//! part is undone, and the group goes on. The first writer of a group runs without a savepoint:
//! when it fails, nobody has joined yet and the whole transaction is rolled back.
//!
//! Writers only wait for the connection when the writer holding it is slow or descheduled. With
//! `durability: "normal"` a commit does not sleep on the disk, so on a machine with fewer cores
//! than writer threads the holder usually finishes its whole commit before another thread runs,
//! and groups would rarely form. So while writers on several threads have used the tier in the
//! last [`WINDOW_MICROS`] ([`Concurrency`]), a writer about to commit alone first leaves the
//! transaction open and yields its CPU once: the threads that run meanwhile join the group (one
//! of them may commit it). A single writer thread never lingers.
//!
//! Waiting for the connection and for the group's commit both yield the CPU for a while before
//! they sleep ([`short_wait`]): both last about one SQLite write, less than the wake-up of a
//! sleeping thread costs.
//!
//! The IMMEDIATE transaction holds SQLite's write lock from the first member to the commit, so
//! other connections and processes see the group's rows all at once, or none of them.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::short_wait;

/// Members of one transaction at most: bounds the wait of the first member under a steady
/// stream of writers.
pub(super) const MAX_MEMBERS: usize = 64;

/// How a group's commit went.
#[derive(Clone, Debug)]
pub(super) enum Outcome {
    Committed,
    /// The commit failed (or a member panicked): the whole transaction was rolled back. The text
    /// is the committing writer's error message.
    Failed(String),
}

/// The open transaction that waiting members belong to, and its outcome once committed.
#[derive(Default)]
pub(super) struct Group {
    outcome: Mutex<Option<Outcome>>,
    done: Condvar,
}

impl Group {
    /// Tells every waiting member how the commit went.
    pub(super) fn finish(&self, outcome: Outcome) {
        *self.outcome.lock() = Some(outcome);
        self.done.notify_all();
    }

    /// Waits until the group is committed or rolled back: yielding first, as a commit takes
    /// microseconds ([`short_wait`]), then asleep.
    pub(super) fn wait(&self) -> Outcome {
        if let Some(o) = short_wait::poll(|| self.outcome.lock().clone()) {
            return o;
        }
        let mut outcome = self.outcome.lock();
        loop {
            if let Some(o) = &*outcome {
                return o.clone();
            }
            self.done.wait(&mut outcome);
        }
    }
}

/// How recently a writer on another thread than the one before used the tier, for a writer to
/// linger before committing alone.
pub(super) const WINDOW_MICROS: u64 = 5_000;

/// Tells whether writers on several threads use the tier now: the last writer's thread, and when
/// the writing thread last changed.
pub(super) struct Concurrency {
    last_thread: AtomicU64,
    /// Microseconds since [`epoch`] of the last change of thread; `u64::MAX` when never.
    changed_at: AtomicU64,
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency {
            last_thread: AtomicU64::new(0),
            changed_at: AtomicU64::new(u64::MAX),
        }
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn micros_now() -> u64 {
    epoch().elapsed().as_micros() as u64
}

/// A number for the calling thread, unique in the process (never 0).
fn thread_tag() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static TAG: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TAG.with(|t| *t)
}

impl Concurrency {
    /// A writer arrives.
    pub(super) fn arrive(&self) {
        let me = thread_tag();
        let before = self.last_thread.swap(me, Ordering::Relaxed);
        // The first writer of the tier (before = 0) is no change of thread.
        if before != me && before != 0 {
            self.changed_at.store(micros_now(), Ordering::Relaxed);
        }
    }

    /// Whether writers on another thread used the tier within the window.
    pub(super) fn recent(&self) -> bool {
        let at = self.changed_at.load(Ordering::Relaxed);
        at != u64::MAX && micros_now().saturating_sub(at) < WINDOW_MICROS
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn one_thread_is_never_concurrent_and_two_are() {
        let c = Arc::new(Concurrency::default());
        for _ in 0..3 {
            c.arrive();
        }
        assert!(!c.recent());
        let other = c.clone();
        std::thread::spawn(move || other.arrive()).join().unwrap();
        c.arrive();
        assert!(c.recent());
    }

    #[test]
    fn every_member_hears_the_outcome() {
        let group = Arc::new(Group::default());
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let g = group.clone();
                std::thread::spawn(move || g.wait())
            })
            .collect();
        group.finish(Outcome::Failed("disk full".into()));
        for w in waiters {
            assert!(matches!(w.join().unwrap(), Outcome::Failed(m) if m == "disk full"));
        }
        assert!(matches!(group.wait(), Outcome::Failed(_)));
    }
}
