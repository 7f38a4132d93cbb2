//! One key's writes never interleave across L2 and L3: a put holds L2's write lock while it
//! writes L3, so a promotion from L3 into L2 (which asks L3 under that lock) never copies a value
//! that a put in flight is about to replace below.
//!
//! The case the processes test found under load (docs/reliability.md, "A put and a delete of one
//! key in two orders"), made deterministic with a lock the test holds itself: L3 holds v1 and L2
//! nothing; the test takes L3's write lock (`BEGIN IMMEDIATE` on its own connection), so handle
//! A's put of v2 stalls in its L3 write; handle B then removes the key from L2 alone (the L2 half
//! of a delete that removed L3 earlier, as a delete stalled between its two tiers does) and reads
//! it: L2 misses, L3 still holds v1, and the read copies v1 into L2. Then the test lets A's put
//! finish. Whatever B read meanwhile, once A's put has returned every reader must get v2: a copy
//! of v1 left in L2 above v2 in L3 would be served from then on.
//!
//! Without the lock spanning both tiers, A's put had written L2 before it stalled, B's removal and
//! copy ran at once, and the fresh handle read v1. With it, B's removal waits for A's put.

mod common;

use std::time::Duration;

use pwcache::{CacheConfig, ErrorKind, L2Backend, TierLevel};

use common::{clock, config_in, one_lower_tier, open, url, url_of};

const K: &str = "k";

/// How long the test waits for A's put to reach L3, and then for B's removal and read, before it
/// lets the put go on.
const STALL: Duration = Duration::from_millis(400);

fn config(dir: &std::path::Path, backend: L2Backend) -> CacheConfig {
    let mut config = config_in(dir);
    config.l2_backend = backend;
    // No L1: every read goes below, as in the processes test's `*_without_l1` runs.
    config.l1.enabled = false;
    config
}

/// Holds L3's write lock until dropped (rolled back: nothing is written).
fn lock_l3(config: &CacheConfig) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(&config.l3_database_path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn
}

fn a_put_stalled_in_l3_leaves_no_older_copy_in_l2(backend: L2Backend) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), backend);
    let clock = clock();
    let a = open(config.clone(), &clock);
    let b = open(config.clone(), &clock);
    let l2_alone = open(one_lower_tier(&config, true), &clock);
    // v1 in L3 only (as after L2 evicted it).
    open(one_lower_tier(&config, false), &clock)
        .put(K, common::input(1))
        .unwrap();

    let l3_lock = lock_l3(&config);
    let putter = std::thread::spawn(move || a.put(K, common::input(2)));
    // Before the fix the put writes L2 here and then waits for L3; with it, L2 stays untouched
    // until L3 is written.
    let l2_written_first =
        common::time_until(STALL, || url_of(&l2_alone, K) == Some(url(2))).is_some();
    let reader = std::thread::spawn(move || {
        match b.tier_delete(TierLevel::L2, K) {
            Ok(()) => {}
            Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "B's removal from L2: {e}"),
        }
        url_of(&b, K)
    });
    let reader_done_during_put = common::time_until(STALL, || reader.is_finished()).is_some();
    drop(l3_lock);
    putter.join().unwrap().expect("A's put of v2");
    let read_by_b = reader.join().unwrap();
    eprintln!(
        "{backend:?}: L2 written before L3: {l2_written_first}; B's removal and read done while \
         A's put waited for L3: {reader_done_during_put}; B read {read_by_b:?}"
    );

    // A's put returned last: v2 everywhere a reader looks, or nothing in L2 (the copy removed).
    let fresh = open(config.clone(), &clock);
    assert_eq!(
        url_of(&fresh, K),
        Some(url(2)),
        "{backend:?}: a fresh handle reads an older value than the put that returned last"
    );
    let in_l3 = url_of(&open(one_lower_tier(&config, false), &clock), K);
    assert_eq!(in_l3, Some(url(2)), "{backend:?}: L3 under k");
    let in_l2 = url_of(&open(one_lower_tier(&config, true), &clock), K);
    assert!(
        in_l2.is_none() || in_l2 == Some(url(2)),
        "{backend:?}: L2 holds {in_l2:?} above L3's v2"
    );
}

#[test]
fn jsonl_a_put_stalled_in_l3_leaves_no_older_copy_in_l2() {
    a_put_stalled_in_l3_leaves_no_older_copy_in_l2(L2Backend::Jsonl);
}

#[test]
fn sqlite_a_put_stalled_in_l3_leaves_no_older_copy_in_l2() {
    a_put_stalled_in_l3_leaves_no_older_copy_in_l2(L2Backend::Sqlite);
}
