//! A stale L1 copy in another handle must not resurrect a deleted key or an old value (issue 10,
//! part 2), deterministically: one process, two handles A and B on the same files, an L1 of two
//! entries, both L2 backends.
//!
//! B reads `k`, so B's L1 holds a copy; A then deletes `k` (or puts a new value). When B's copy
//! leaves B's L1, evicted by three puts (and written back once B's puts complete a batch of
//! write-backs, or when B reads `k` again) or because B is freed, what goes below may record B's
//! usage counters on the entry the tier holds, if it is the same entry, and nothing else: it
//! must not bring `k` back, nor replace a newer value. L2 and L3 are read by handles that have
//! only that tier enabled, and the counters straight from the files.
//!
//! The same holds for a handle's own copy: a health report that updates L1's copy while another
//! thread's put evicts it must not be undone by that copy's write-back
//! ([`failure_counts_survive_a_concurrent_eviction`]).

mod common;
mod harness;

use std::sync::Arc;

use pwcache::{CacheConfig, CacheManager, EntryInput, L2Backend, ManualClock, WRITE_BACK_BATCH};

use common::{clock, config_in, one_lower_tier, open};
use harness::store;

const K: &str = "k";

/// How B's copy of `k` leaves B's L1.
#[derive(Clone, Copy, Debug)]
enum Leaves {
    /// Three puts of other keys push it out of the two-entry L1.
    Evicted,
    /// B is freed (its L1's changed entries are written back at close).
    Freed,
}

/// One of the two L2 backends, with an L1 of two entries.
fn small_l1(dir: &std::path::Path, backend: L2Backend) -> CacheConfig {
    let mut config = config_in(dir);
    config.l2_backend = backend;
    config.l1.max_entries = Some(2);
    config
}

/// Value `n`: URL `n` and a password derived from that URL, so a reader can tell whether the
/// password it found belongs to the URL without a password in any message.
fn value(n: usize) -> EntryInput {
    EntryInput {
        password: Some(password_for(&common::url(n))),
        ..common::input(n)
    }
}

fn password_for(url: &str) -> String {
    format!("secret-for-{url}")
}

/// The URL under `k` as `cache` reads it (`None` when absent), after checking that the password
/// is the one stored with that URL.
fn read(cache: &CacheManager, case: &str) -> Option<String> {
    cache.get(K).unwrap().map(|e| {
        let password = e.password.as_ref().map(|p| p.expose());
        assert!(
            password == Some(password_for(&e.proxy_url).as_str()),
            "{case}: the password under k is not the one stored with {}",
            e.proxy_url
        );
        e.proxy_url
    })
}

fn url(n: usize) -> Option<String> {
    Some(common::url(n))
}

/// Checks what L2 alone and L3 alone read under `k`: value `want`, or nothing.
fn assert_below(config: &CacheConfig, want: Option<usize>, case: &str) {
    let clock = clock();
    for (tier, l2) in [("L2", true), ("L3", false)] {
        let found = read(&open(one_lower_tier(config, l2), &clock), case);
        assert_eq!(
            found,
            want.map(common::url),
            "{case}: {tier} holds the wrong entry under k (None = absent)"
        );
    }
}

/// Puts through `b` until a batch of write-backs completes: every victim waiting in `b`'s L1,
/// B's old copy of `k` among them, is then written back (reading the statistics writes none).
fn complete_a_write_back_batch(b: &CacheManager) {
    for n in 0..WRITE_BACK_BATCH {
        b.put(&format!("y{n}"), value(200 + n)).unwrap();
    }
}

/// B's copy of `k` leaves B's L1; `b` is `None` afterwards when it was freed.
fn leave(b: CacheManager, how: Leaves) -> Option<CacheManager> {
    match how {
        Leaves::Evicted => {
            for n in 1..=3 {
                b.put(&format!("x{n}"), value(100 + n)).unwrap();
            }
            Some(b)
        }
        Leaves::Freed => {
            drop(b);
            None
        }
    }
}

/// A started scenario: see [`start`].
type Start = (
    tempfile::TempDir,
    CacheConfig,
    String,
    Arc<ManualClock>,
    CacheManager,
    CacheManager,
);

/// What every scenario starts from: A and B open on the same files, A has put value 1 under
/// `k`, and B has read it `reads` times, so B's L1 holds a copy. Returns the directory (first,
/// so that it is dropped last), the configuration, the case's name, the clock, A and B.
fn start(backend: L2Backend, how: Leaves, reads: usize) -> Start {
    let dir = tempfile::tempdir().unwrap();
    let config = small_l1(dir.path(), backend);
    let case = format!("{backend:?}, B's copy {how:?}");
    let clock = clock();
    let a = open(config.clone(), &clock);
    let b = open(config.clone(), &clock);
    a.put(K, value(1)).unwrap();
    for _ in 0..reads {
        assert_eq!(read(&b, &case), url(1), "{case}: B reads k");
    }
    (dir, config, case, clock, a, b)
}

/// A: put k; B: get k; A: delete k; B's copy leaves B's L1. k must stay deleted everywhere.
fn a_deleted_key_stays_deleted(backend: L2Backend, how: Leaves) {
    let (_dir, config, case, clock, a, b) = start(backend, how, 1);
    a.delete(K).unwrap();
    assert_below(&config, None, &format!("{case}, after A's delete"));

    let b = leave(b, how);
    assert_below(&config, None, &format!("{case}, once k left B's L1"));
    if let Some(b) = &b {
        assert_eq!(read(b, &case), None, "{case}: B reads the deleted k");
    }
    assert_eq!(read(&a, &case), None, "{case}: A reads the deleted k");
    if let Some(b) = &b {
        complete_a_write_back_batch(b);
    }
    assert_below(&config, None, &format!("{case}, after B's write-backs"));

    drop((a, b));
    assert_below(&config, None, &format!("{case}, every handle freed"));
    assert_eq!(
        read(&open(config, &clock), &case),
        None,
        "{case}: a fresh handle"
    );
}

/// A: put k = v1; B: get k; A: put k = v2; B's copy of v1 leaves B's L1. v2 must stay.
fn a_newer_value_stays(backend: L2Backend, how: Leaves) {
    let (_dir, config, case, clock, a, b) = start(backend, how, 1);
    a.put(K, value(2)).unwrap();
    assert_below(&config, Some(2), &format!("{case}, after A's re-put"));

    let b = leave(b, how);
    if let Some(b) = &b {
        complete_a_write_back_batch(b);
        assert_eq!(read(b, &case), url(2), "{case}: B reads k below");
    }
    assert_below(&config, Some(2), &format!("{case}, once k left B's L1"));
    assert_eq!(read(&a, &case), url(2), "{case}: A reads k");

    drop((a, b));
    assert_below(&config, Some(2), &format!("{case}, every handle freed"));
    assert_eq!(read(&open(config, &clock), &case), url(2), "{case}: fresh");
}

/// As [`a_newer_value_stays`], B having read v1 three times: the counters of v2 in the files
/// (`access_count`, `evicted_from_l1`) must not take those of B's copy of v1.
fn an_old_copys_counters_stay_off_a_newer_value(backend: L2Backend, how: Leaves) {
    let (_dir, config, case, _, a, b) = start(backend, how, 3);
    a.put(K, value(2)).unwrap();
    let counters = |when: &str| {
        [
            ("L2", store::read_l2(&config)),
            ("L3", store::read_l3(&config)),
        ]
        .map(|(tier, contents)| {
            assert!(contents.problems.is_empty(), "{:?}", contents.problems);
            let held = contents.entries.get(K).cloned();
            let held = held.unwrap_or_else(|| panic!("{case}, {when}: {tier} lost k"));
            assert_eq!(held.proxy_url, common::url(2), "{case}, {when}: {tier}");
            (tier, held.access_count, held.evicted_from_l1)
        })
    };
    let put = counters("after A's re-put");
    let b = leave(b, how);
    if let Some(b) = &b {
        complete_a_write_back_batch(b);
    }
    assert_eq!(
        counters("once k left B's L1"),
        put,
        "{case}: (tier, access_count, evicted_from_l1) of the newer value changed by the \
         write-back of B's copy of the older one"
    );
}

#[test]
fn jsonl_delete_then_copy_evicted() {
    a_deleted_key_stays_deleted(L2Backend::Jsonl, Leaves::Evicted);
}

#[test]
fn jsonl_delete_then_copy_freed() {
    a_deleted_key_stays_deleted(L2Backend::Jsonl, Leaves::Freed);
}

#[test]
fn sqlite_delete_then_copy_evicted() {
    a_deleted_key_stays_deleted(L2Backend::Sqlite, Leaves::Evicted);
}

#[test]
fn sqlite_delete_then_copy_freed() {
    a_deleted_key_stays_deleted(L2Backend::Sqlite, Leaves::Freed);
}

#[test]
fn jsonl_re_put_then_copy_evicted() {
    a_newer_value_stays(L2Backend::Jsonl, Leaves::Evicted);
}

#[test]
fn jsonl_re_put_then_copy_freed() {
    a_newer_value_stays(L2Backend::Jsonl, Leaves::Freed);
}

#[test]
fn sqlite_re_put_then_copy_evicted() {
    a_newer_value_stays(L2Backend::Sqlite, Leaves::Evicted);
}

#[test]
fn sqlite_re_put_then_copy_freed() {
    a_newer_value_stays(L2Backend::Sqlite, Leaves::Freed);
}

#[test]
fn jsonl_counters_of_a_copy_evicted() {
    an_old_copys_counters_stay_off_a_newer_value(L2Backend::Jsonl, Leaves::Evicted);
}

#[test]
fn jsonl_counters_of_a_copy_freed() {
    an_old_copys_counters_stay_off_a_newer_value(L2Backend::Jsonl, Leaves::Freed);
}

#[test]
fn sqlite_counters_of_a_copy_evicted() {
    an_old_copys_counters_stay_off_a_newer_value(L2Backend::Sqlite, Leaves::Evicted);
}

#[test]
fn sqlite_counters_of_a_copy_freed() {
    an_old_copys_counters_stay_off_a_newer_value(L2Backend::Sqlite, Leaves::Freed);
}

/// A health report on `k` records the failure on L1's copy and below; if another thread's put
/// evicts `k` from L1 while the report reads the lower tiers, the copy waiting for its
/// write-back still has the old failure count, and its write-back must not put it back below.
/// One handle, a thread churning L1 with puts, rounds of put + two reports + get on fresh keys.
fn failure_counts_survive_a_concurrent_eviction(backend: L2Backend) {
    const ROUNDS: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let config = small_l1(dir.path(), backend);
    let cache = std::sync::Arc::new(open(config, &clock()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (cache, stop) = (cache.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                cache.put(&format!("x{}", n % 8), value(n % 8)).unwrap();
                n += 1;
            }
        })
    };
    let mut backwards = Vec::new();
    for round in 0..ROUNDS {
        let key = format!("h{round}");
        cache.put(&key, value(round)).unwrap();
        assert!(!cache.invalidate_by_health(&key).unwrap());
        assert!(!cache.invalidate_by_health(&key).unwrap());
        let failures = cache.get(&key).unwrap().map(|e| e.failure_count);
        if failures != Some(2) {
            backwards.push(format!("{key}: {failures:?}"));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().unwrap();
    assert!(
        backwards.is_empty(),
        "{backend:?}: after two acknowledged health reports, get returned another failure count \
         in {} of {ROUNDS} rounds: {:?}",
        backwards.len(),
        &backwards[..backwards.len().min(10)]
    );
}

#[test]
fn jsonl_failure_counts_survive_a_concurrent_eviction() {
    failure_counts_survive_a_concurrent_eviction(L2Backend::Jsonl);
}

#[test]
fn sqlite_failure_counts_survive_a_concurrent_eviction() {
    failure_counts_survive_a_concurrent_eviction(L2Backend::Sqlite);
}
