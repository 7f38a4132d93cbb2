//! Group commit of single puts (RocksDB's write group is the model): puts that arrive on other
//! threads while groups are being stored on every core wait, and the first of them to run next
//! stores all of them as one batch, as `put_many` does (one append per JSONL shard, one SQLite transaction per tier,
//! one round trip to the shared tier). Each put returns only once the batch holding its entry is
//! stored, with the batch's outcome: acknowledged as `durability` says, or not at all.
//!
//! Why: a put's cost is mostly per batch, not per entry (the commits, the locks, the system
//! calls): a `put_many` costs about a quarter of a put per entry. Threads that each stored their
//! own entry took turns on the same locks and gained nothing over one thread
//! (docs/benchmarks.md); grouped, the turns are shared.
//!
//! The engine puts through a group with the SQLite L2 backend only (`Engine::put` says why). A
//! put stored alone (one thread, or nobody else waiting) runs as before, plus one uncontended
//! lock. Up to one group per core is stored at once. A group holds [`MAX_GROUP`] entries at
//! most, and never two of one key (a batch is one write per key): a second put of a key waits
//! for a later group. Two puts of one key in flight at once on two threads are stored in either
//! order, as without groups (the key's stripe lock decides); one thread's puts are stored in its
//! order, as it waits for each. A put made from inside a group's store on the same thread is
//! stored at once rather than queued behind the group it is part of, which would never end. Only
//! a log callback could do that, and the C API forbids it (`pw_log_fn`): the store may hold the
//! key's stripe already.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::entry::CacheEntry;
use crate::error::{Error, Result};
use crate::fast_hash::FastSet;

/// Entries in one group at most: bounds what the thread that stores a group waits for.
pub(super) const MAX_GROUP: usize = 64;

thread_local! {
    /// Whether this thread is storing a group now.
    static STORING: Cell<bool> = const { Cell::new(false) };
}

/// Where a waiting put finds its outcome.
#[derive(Default)]
struct Outcome(Mutex<Option<Result<()>>>);

impl Outcome {
    fn take(&self) -> Option<Result<()>> {
        self.0.lock().take()
    }
}

#[derive(Default)]
struct Queue {
    waiting: Vec<(CacheEntry, Arc<Outcome>)>,
    /// Threads storing a group now.
    storing: usize,
    /// Puts called and not yet returned.
    in_flight: usize,
}

/// The puts of one handle waiting to be stored.
pub(super) struct PutGroup {
    queue: Mutex<Queue>,
    stored: Condvar,
    /// Groups stored at once at most, while there are no more puts in flight than this: one per
    /// core. A single storing thread left the other core idle: with 2 threads on 2 cores, each
    /// put waited for the other's instead of being stored beside it, and 2 threads got less done
    /// than one (0.8×). With 8 threads, two groups at once made smaller batches than one.
    storers: usize,
}

impl Default for PutGroup {
    /// One group at once per core.
    fn default() -> Self {
        PutGroup::storing_at_once(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl PutGroup {
    fn storing_at_once(storers: usize) -> Self {
        PutGroup {
            queue: Mutex::default(),
            stored: Condvar::new(),
            storers: storers.max(1),
        }
    }
}

impl PutGroup {
    /// Stores `entry` with `store`, alone or in a group with the puts of other threads, and
    /// returns once it is stored (or is known not to be).
    pub(super) fn put(
        &self,
        entry: CacheEntry,
        store: &dyn Fn(Vec<CacheEntry>) -> Result<()>,
    ) -> Result<()> {
        if STORING.with(Cell::get) {
            return store(vec![entry]);
        }
        let mine = Arc::new(Outcome::default());
        let mut queue = self.queue.lock();
        queue.waiting.push((entry, mine.clone()));
        queue.in_flight += 1;
        loop {
            if let Some(outcome) = mine.take() {
                queue.in_flight -= 1;
                return outcome;
            }
            let still_waiting = queue.waiting.iter().any(|(_, o)| Arc::ptr_eq(o, &mine));
            // A second group at once only while there are no more puts than cores: then each is
            // stored beside the others, as without groups. With more, one group at a time
            // gathers them into the largest batches.
            let may_store = queue.storing == 0
                || (queue.storing < self.storers && queue.in_flight <= self.storers);
            if still_waiting && may_store {
                queue.storing += 1;
                let group = take_group(&mut queue.waiting);
                drop(queue);
                self.store_group(group, store, &mine);
                queue = self.queue.lock();
                queue.storing -= 1;
                self.stored.notify_all();
                continue;
            }
            // Asleep, not yielding as `short_wait` does: the threads storing groups need the
            // CPU, and with more writer threads than cores, yielding waiters took it from them
            // (`cargo bench --bench speed -- threads`, 8 threads on 2 cores).
            self.stored.wait(&mut queue);
        }
    }

    /// Stores one group and gives every member its outcome; `mine` is the calling thread's own
    /// put, which gets the error itself (the others a copy). A panic in `store` is every
    /// member's failure, and goes on unwinding in this thread.
    fn store_group(
        &self,
        group: Vec<(CacheEntry, Arc<Outcome>)>,
        store: &dyn Fn(Vec<CacheEntry>) -> Result<()>,
        mine: &Arc<Outcome>,
    ) {
        let (entries, outcomes): (Vec<_>, Vec<_>) = group.into_iter().unzip();
        STORING.with(|s| s.set(true));
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| store(entries)));
        STORING.with(|s| s.set(false));
        let (result, panic) = match result {
            Ok(result) => (result, None),
            Err(panic) => (
                Err(Error::Storage("a put of the same group panicked".into())),
                Some(panic),
            ),
        };
        for outcome in outcomes.iter().filter(|o| !Arc::ptr_eq(o, mine)) {
            *outcome.0.lock() = Some(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(e.for_another_caller()),
            });
        }
        if let Some(panic) = panic {
            // This thread leaves `put` by unwinding: it is no longer storing, nor in flight, and
            // its own put, when it was not in this group, is not stored later.
            let mut queue = self.queue.lock();
            queue.storing -= 1;
            queue.in_flight -= 1;
            queue.waiting.retain(|(_, o)| !Arc::ptr_eq(o, mine));
            self.stored.notify_all();
            drop(queue);
            std::panic::resume_unwind(panic);
        }
        if outcomes.iter().any(|o| Arc::ptr_eq(o, mine)) {
            *mine.0.lock() = Some(result);
        }
    }
}

/// Takes the next group from `waiting`, in arrival order: up to [`MAX_GROUP`] entries, no two
/// of one key. The others stay, in order, for the next group.
fn take_group(waiting: &mut Vec<(CacheEntry, Arc<Outcome>)>) -> Vec<(CacheEntry, Arc<Outcome>)> {
    let mut keys = FastSet::default();
    let mut group = Vec::new();
    let mut rest = Vec::new();
    for (entry, outcome) in waiting.drain(..) {
        if group.len() < MAX_GROUP && keys.insert(entry.key.clone()) {
            group.push((entry, outcome));
        } else {
            // A later put of a key already in the group stays behind it, and so does every put
            // after a full group.
            rest.push((entry, outcome));
        }
    }
    *waiting = rest;
    group
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::time::Timestamp;

    fn entry(key: &str) -> CacheEntry {
        CacheEntry::new(key, "http://10.0.0.1:8080", "t", Timestamp::MIN, 60)
    }

    #[test]
    fn a_group_never_holds_one_key_twice_and_keeps_the_order_of_arrival() {
        let outcome = Arc::new(Outcome::default());
        let mut waiting: Vec<_> = ["a", "b", "a", "c", "b"]
            .iter()
            .map(|k| (entry(k), outcome.clone()))
            .collect();
        let keys = |v: &Vec<(CacheEntry, Arc<Outcome>)>| {
            v.iter().map(|(e, _)| e.key.clone()).collect::<Vec<_>>()
        };
        let group = take_group(&mut waiting);
        assert_eq!(keys(&group), ["a", "b", "c"]);
        assert_eq!(keys(&waiting), ["a", "b"]);
    }

    /// A store that puts `inner` through the same group while it stores `outer`, as a log
    /// callback that puts would.
    struct Nested<'a> {
        group: &'a PutGroup,
        batches: Mutex<Vec<Vec<String>>>,
    }

    impl Nested<'_> {
        fn store(&self, entries: Vec<CacheEntry>) -> Result<()> {
            let keys: Vec<String> = entries.into_iter().map(|e| e.key).collect();
            self.batches.lock().push(keys.clone());
            if keys == ["outer"] {
                self.group.put(entry("inner"), &|e| self.store(e))?;
            }
            Ok(())
        }
    }

    #[test]
    fn a_put_made_inside_a_store_on_the_same_thread_is_stored_alone() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // One group at a time (one core): no second group could take the inner put.
            let group = PutGroup::storing_at_once(1);
            let nested = Nested {
                group: &group,
                batches: Mutex::new(Vec::new()),
            };
            nested
                .group
                .put(entry("outer"), &|e| nested.store(e))
                .unwrap();
            let _ = done.send(nested.batches.into_inner());
        });
        // Queued behind its own group, the inner put would wait for ever.
        let batches = finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the put made inside a store returned");
        assert_eq!(batches, [vec!["outer"], vec!["inner"]]);
    }

    #[test]
    fn a_panic_in_a_store_leaves_the_group_usable() {
        let group = PutGroup::default();
        let panicking = |_: Vec<CacheEntry>| -> Result<()> { panic!("a store that panics") };
        let unwound =
            std::panic::catch_unwind(AssertUnwindSafe(|| group.put(entry("a"), &panicking)));
        assert!(unwound.is_err());
        {
            let queue = group.queue.lock();
            assert_eq!((queue.storing, queue.in_flight), (0, 0));
        }
        group.put(entry("b"), &|_| Ok(())).unwrap();
    }

    #[test]
    fn concurrent_puts_are_stored_in_fewer_batches_and_each_hears_its_batchs_outcome() {
        const THREADS: usize = 8;
        const PUTS: usize = 200;
        let group = PutGroup::default();
        let batches = Mutex::new(Vec::<Vec<String>>::new());
        let store = |entries: Vec<CacheEntry>| -> Result<()> {
            // Long enough for the other threads to queue behind this batch.
            std::thread::sleep(std::time::Duration::from_micros(200));
            let keys: Vec<String> = entries.into_iter().map(|e| e.key).collect();
            let failing = keys.iter().any(|k| k.ends_with("-13"));
            batches.lock().push(keys);
            if failing {
                Err(Error::Storage("disk full".into()))
            } else {
                Ok(())
            }
        };
        let failed = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (group, store, failed) = (&group, &store, &failed);
                s.spawn(move || {
                    for i in 0..PUTS {
                        let key = format!("t{t}-{i}");
                        if let Err(e) = group.put(entry(&key), store) {
                            assert_eq!(e.to_string(), "disk full");
                            failed.lock().push(key);
                        }
                    }
                });
            }
        });
        let batches = batches.into_inner();
        let stored: Vec<&String> = batches.iter().flatten().collect();
        assert_eq!(stored.len(), THREADS * PUTS, "every put stored once");
        let distinct: FastSet<&String> = stored.iter().copied().collect();
        assert_eq!(distinct.len(), THREADS * PUTS);
        assert!(
            batches.len() < THREADS * PUTS / 2,
            "{} batches for {} puts",
            batches.len(),
            THREADS * PUTS
        );
        // The puts that failed are exactly those of the batches that failed.
        let mut expected: Vec<String> = batches
            .iter()
            .filter(|b| b.iter().any(|k| k.ends_with("-13")))
            .flatten()
            .cloned()
            .collect();
        let mut failed = failed.into_inner();
        expected.sort();
        failed.sort();
        assert_eq!(failed, expected);
    }
}
