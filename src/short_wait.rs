//! Waiting for something another thread finishes within microseconds: a lock held for one
//! SQLite write, or the commit of the group a writer joined.
//!
//! A waiter that sleeps on a futex costs the thread that wakes it a system call and an
//! inter-processor interrupt, and costs itself a context switch: on the 2-vCPU virtual machine of
//! docs/benchmarks.md that is more than the SQLite write it waits for (about 10–20 µs). With
//! every waiter asleep, 2 threads putting on one handle reached half the throughput of one. So a
//! waiter first yields its CPU in a loop, for at most [`YIELD_FOR`], and only then sleeps. A
//! yield lets any runnable thread run (the holder among them when there are more threads than
//! cores), and returns at once on an idle core.
//!
//! parking_lot already spins before it sleeps, but for about ten yields only, fewer than one
//! write lasts.

use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

/// How long a waiter yields before it sleeps: several times the longest write that groups of
/// writers make on one SQLite tier, so that a waiter sleeps only when the holder is slow (the
/// disk, another process holding the database) and a sleep costs little against the wait.
pub(crate) const YIELD_FOR: Duration = Duration::from_micros(200);

/// Polls `ready` until it gives a value, yielding the CPU between polls, for at most
/// [`YIELD_FOR`]; `None` when it gave none in that time.
pub(crate) fn poll<T>(mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    loop {
        if let Some(value) = ready() {
            return Some(value);
        }
        if started.elapsed() >= YIELD_FOR {
            return None;
        }
        std::thread::yield_now();
    }
}

/// Locks `mutex`, yielding while another thread holds it for at most [`YIELD_FOR`], then
/// sleeping until it is free.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match poll(|| mutex.try_lock()) {
        Some(guard) => guard,
        None => mutex.lock(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[test]
    fn the_lock_is_taken_only_once_the_holder_lets_go_whether_it_holds_briefly_or_long() {
        let mutex = Arc::new(Mutex::new(0));
        for (before, hold) in [Duration::from_micros(20), YIELD_FOR * 5]
            .into_iter()
            .enumerate()
        {
            let held = Arc::new(AtomicBool::new(false));
            let holder = {
                let (mutex, held) = (mutex.clone(), held.clone());
                std::thread::spawn(move || {
                    let mut guard = mutex.lock();
                    held.store(true, Ordering::SeqCst);
                    std::thread::sleep(hold);
                    *guard += 1;
                })
            };
            while !held.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            // The holder's increment is seen: the lock was taken only after it let go.
            assert_eq!(*lock(&mutex), before + 1);
            holder.join().unwrap();
        }
    }

    #[test]
    fn poll_gives_up_after_the_bound_and_returns_a_value_at_once() {
        let started = Instant::now();
        assert_eq!(poll(|| None::<()>), None);
        assert!(started.elapsed() >= YIELD_FOR);
        assert_eq!(poll(|| Some(7)), Some(7));
    }
}
