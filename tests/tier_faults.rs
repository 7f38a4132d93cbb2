//! Faults under the SQLite tiers, and how each tier heals: a database damaged before it is
//! opened, damaged, replaced or truncated while it is open, a directory removed under an open
//! tier (also with writers racing the re-opening), and a busy database that must not be taken
//! for a damaged one. Every back-off is passed with the manager's clock; the one real wait is
//! SQLite's busy timeout (5 s) in the busy-database test.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use pwcache::{CacheConfig, CacheManager, EntryInput, ManualClock};
use rusqlite::Connection;

/// Past the longest back-off a slot schedules after a few failures.
const PAST_BACKOFF_SECS: i64 = 120;

/// The files beside `path` that hold its set-aside copies (`<name>.corrupt-<time>`).
fn set_aside(path: &Path) -> Vec<PathBuf> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut found: Vec<PathBuf> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(&format!("{name}.corrupt-"))
                && !n.ends_with("-wal")
                && !n.ends_with("-shm")
        })
        .collect();
    found.sort();
    found
}

/// Moves everything in the WAL into the database file and empties the WAL, from a connection of
/// its own, as `sqlite3 db 'PRAGMA wal_checkpoint(TRUNCATE)'` would.
fn checkpoint(path: &Path) {
    let conn = Connection::open(path).unwrap();
    let (busy, _, _): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(busy, 0, "the checkpoint completed");
}

/// Cuts the database file to half its size, in place (the same inode).
fn truncate_to_half(path: &Path) {
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(len / 2).unwrap();
}

/// Replaces the database file by another file full of garbage (a new inode at the path).
fn replace_by_garbage(path: &Path) {
    let garbage = path.with_extension("garbage");
    fs::write(&garbage, vec![0x5au8; 16384]).unwrap();
    fs::rename(&garbage, path).unwrap();
}

fn url_of(cache: &CacheManager, key: &str) -> Option<String> {
    cache.get(key).unwrap().map(|e| e.proxy_url)
}

fn with_url(url: String) -> EntryInput {
    EntryInput::with_url(url)
}

/// The new value `k<i>` gets during a fault.
fn new_url(i: usize) -> String {
    url(1000 + i)
}

/// A cache of L3 alone, to read what L3 holds.
fn l3_alone(config: &CacheConfig, clock: &Arc<ManualClock>) -> CacheManager {
    open(one_lower_tier(config, false), clock)
}

/// An entry with a health field that L2 keeps in its side table (`pwcache_l2_health`).
fn checked_input(i: usize) -> EntryInput {
    let mut e = input(i);
    e.total_health_checks = Some(i as i64 + 1);
    e
}

#[test]
fn a_truncated_database_is_set_aside_at_open_its_readable_rows_kept() {
    for l2 in [false, true] {
        let name = if l2 { "L2 (sqlite)" } else { "L3" };
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        let config = sqlite_l2(config_in(dir.path()));
        let db = if l2 {
            config.l2_cache_dir.join("l2_cache.db")
        } else {
            config.l3_database_path.clone()
        };
        let stats_of = |cache: &CacheManager| {
            let s = cache.statistics();
            if l2 {
                (s.l2_degraded, s.l2_stats)
            } else {
                (s.l3_degraded, s.l3_stats)
            }
        };
        const ROWS: usize = 400;
        {
            let cache = open(config.clone(), &clock);
            for i in 0..ROWS {
                cache.put(&key(i), checked_input(i)).unwrap();
            }
        }
        checkpoint(&db);
        truncate_to_half(&db);

        let cache = open(config.clone(), &clock);
        let (degraded, stats) = stats_of(&cache);
        assert!(!degraded, "{name} is usable after the open");
        assert_eq!(stats.evictions_corruption, 1, "{name}: counted once");
        assert_eq!(
            set_aside(&db).len(),
            1,
            "{name}: the damaged file is kept aside"
        );
        let salvaged = stats.current_size;
        cache.put("new", input(ROWS)).unwrap();
        drop(cache);

        let alone = open(one_lower_tier(&config, l2), &clock);
        let kept = (0..ROWS)
            .filter(|&i| match alone.get(&key(i)).unwrap() {
                Some(e) => {
                    assert_eq!(e.proxy_url, url(i), "{name}: a salvaged row is as written");
                    assert_eq!(
                        e.total_health_checks,
                        i as i64 + 1,
                        "{name}: with its health"
                    );
                    true
                }
                None => false,
            })
            .count();
        eprintln!("{name}: salvaged {salvaged} rows, {kept} of {ROWS} read after the reopen");
        assert_eq!(kept as u64, salvaged, "{name}");
        assert!(
            kept >= ROWS / 4,
            "{name}: the rows in the surviving half are kept: {kept} of {ROWS}"
        );
        assert_eq!(
            url_of(&alone, "new"),
            Some(url(ROWS)),
            "{name}: a put after the repair reached the tier"
        );
        let (degraded, stats) = stats_of(&alone);
        assert!(!degraded, "{name}");
        assert_eq!(
            stats.evictions_corruption, 0,
            "{name}: the fresh database is sound"
        );
        assert_eq!(set_aside(&db).len(), 1, "{name}");
    }
}

/// Overwrites the pages between 40% and 50% of the database file with garbage, in place: the
/// first page (the header and schema) is intact, so opening finds nothing wrong.
fn damage_the_middle(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let len = bytes.len();
    let page = 2048;
    let (from, to) = (len * 2 / 5 / page * page, len / 2 / page * page);
    assert!(to > from && from >= page, "{from}..{to} of {len}");
    bytes[from..to].fill(0xA5);
    fs::write(path, &bytes).unwrap();
}

#[test]
fn damage_a_read_meets_is_checked_and_repaired_when_the_tier_is_opened_again() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = one_lower_tier(&config_in(dir.path()), false);
    let db = config.l3_database_path.clone();
    const ROWS: usize = 400;
    {
        let cache = open(config.clone(), &clock);
        for i in 0..ROWS {
            cache.put(&key(i), input(i)).unwrap();
        }
    }
    checkpoint(&db);
    damage_the_middle(&db);

    let cache = open(config.clone(), &clock);
    let mut served_before = 0;
    for i in 0..ROWS {
        // L3 is the only tier: once it fails, a read is a storage error, not a miss.
        let read = cache.get(&key(i));
        if let Err(e) = &read {
            assert_eq!(e.kind(), pwcache::ErrorKind::Storage, "{e}");
        }
        if let Some(u) = read.ok().flatten().map(|e| e.proxy_url) {
            assert_eq!(u, url(i));
            served_before += 1;
        }
    }
    assert!(served_before < ROWS, "the damage is met by some reads");
    assert!(
        cache.statistics().l3_degraded,
        "L3 is skipped after failing"
    );

    clock.set(t0().plus_seconds(PAST_BACKOFF_SECS));
    let _ = cache.get(&key(0)).unwrap();
    let s = cache.statistics();
    assert!(!s.l3_degraded, "L3 recovered on a fresh database");
    assert_eq!(s.l3_stats.evictions_corruption, 1, "counted once");
    assert_eq!(set_aside(&db).len(), 1, "the damaged file is kept aside");
    let kept = (0..ROWS)
        .filter(|&i| match url_of(&cache, &key(i)) {
            Some(u) => {
                assert_eq!(u, url(i), "a salvaged row holds what was written");
                true
            }
            None => false,
        })
        .count();
    eprintln!("{served_before} of {ROWS} served before the repair, {kept} after it");
    assert!(
        kept >= ROWS / 2,
        "the rows outside the damage are kept: {kept} of {ROWS}"
    );
    assert!(
        !cache.statistics().l3_degraded,
        "every read of the fresh database works"
    );
    cache.put("new", input(ROWS)).unwrap();
    drop(cache);
    let cache = open(config, &clock);
    assert_eq!(url_of(&cache, "new"), Some(url(ROWS)));
    let s = cache.statistics();
    assert_eq!(
        s.l3_stats.evictions_corruption, 0,
        "the fresh database is sound"
    );
    assert_eq!(set_aside(&db).len(), 1);
}

#[test]
fn a_malformed_l3_found_while_open_is_set_aside_and_the_tier_recovers() {
    type Fault = fn(&Path);
    let faults: [(&str, Fault); 3] = [
        ("replaced by garbage", replace_by_garbage),
        // Checkpointed first, so that the pages are read from the file, not from the WAL.
        ("checkpointed and overwritten with garbage in place", |db| {
            checkpoint(db);
            fs::write(db, vec![0x5au8; 16384]).unwrap()
        }),
        ("checkpointed and truncated", |db| {
            checkpoint(db);
            truncate_to_half(db);
        }),
    ];
    for (fault, damage) in faults {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        // L2 (JSONL) acknowledges the writes while L3 is down; no L1, so reads reach L3.
        let mut config = config_in(dir.path());
        config.l1.enabled = false;
        let db = config.l3_database_path.clone();
        let cache = open(config.clone(), &clock);
        for i in 0..200 {
            cache.put(&key(i), input(i)).unwrap();
        }
        damage(&db);

        // Writes over keys L3 held: acknowledged by L2, failed (and remembered) by L3.
        for i in 0..5 {
            cache.put(&key(i), with_url(new_url(i))).unwrap();
        }
        assert!(
            cache.statistics().l3_degraded,
            "{fault}: L3 is skipped after failing"
        );

        clock.set(t0().plus_seconds(PAST_BACKOFF_SECS));
        for i in 5..10 {
            cache.put(&key(i), with_url(new_url(i))).unwrap();
        }
        let s = cache.statistics();
        assert!(!s.l3_degraded, "{fault}: L3 recovered on a fresh database");
        assert_eq!(s.l3_stats.evictions_corruption, 1, "{fault}: counted once");
        assert_eq!(
            set_aside(&db).len(),
            1,
            "{fault}: the damaged file is kept aside"
        );
        drop(cache);

        let l3 = l3_alone(&config, &clock);
        for i in 0..5 {
            assert_eq!(
                url_of(&l3, &key(i)),
                None,
                "{fault}: a write L3 missed is not served stale from what was salvaged"
            );
        }
        for i in 5..10 {
            assert_eq!(
                url_of(&l3, &key(i)),
                Some(new_url(i)),
                "{fault}: acknowledged after the recovery, found after a reopen"
            );
        }
        assert!(!l3.statistics().l3_degraded, "{fault}");
        drop(l3);
        let whole = open(config.clone(), &clock);
        for i in 0..10 {
            assert_eq!(
                url_of(&whole, &key(i)),
                Some(new_url(i)),
                "{fault}: the latest value"
            );
        }
    }
}

#[test]
fn a_sqlite_tier_whose_directory_is_removed_degrades_and_recovers() {
    for l2 in [true, false] {
        let name = if l2 { "L2 (sqlite)" } else { "L3" };
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        let config = sqlite_l2(config_in(dir.path()));
        let tier_dir = if l2 {
            config.l2_cache_dir.clone()
        } else {
            config.l3_database_path.parent().unwrap().to_path_buf()
        };
        let degraded = |cache: &CacheManager| {
            let s = cache.statistics();
            if l2 { s.l2_degraded } else { s.l3_degraded }
        };
        let cache = open(config.clone(), &clock);
        cache.put("a", input(1)).unwrap();
        cache.put("b", input(2)).unwrap();

        fs::remove_dir_all(&tier_dir).unwrap();
        fs::create_dir(&tier_dir).unwrap();
        cache.put("b", input(3)).unwrap();
        for i in 0..3 {
            cache.put(&key(i), input(i)).unwrap();
        }
        assert!(degraded(&cache), "{name}: degraded once its file is gone");

        clock.set(t0().plus_seconds(PAST_BACKOFF_SECS));
        cache.put("c", input(4)).unwrap();
        assert!(!degraded(&cache), "{name}: recovered on a new file");
        assert!(
            dir.path()
                .join(&tier_dir)
                .read_dir()
                .unwrap()
                .next()
                .is_some(),
            "{name}: the new database is in the directory"
        );
        drop(cache);

        // What the tier holds alone: the put after the recovery; `b`, written while the file
        // was gone, failed there and is not in the new file (never its old value).
        let alone = open(one_lower_tier(&config, l2), &clock);
        assert_eq!(
            url_of(&alone, "c"),
            Some(url(4)),
            "{name}: acknowledged after recovery"
        );
        assert_eq!(
            url_of(&alone, "b"),
            None,
            "{name}: the missed write is not served stale"
        );
        assert_eq!(
            url_of(&alone, "a"),
            None,
            "{name}: removed with its directory"
        );
        drop(alone);
        // The whole cache serves `b`'s latest value from the other tier.
        let whole = open(config.clone(), &clock);
        assert_eq!(
            url_of(&whole, "b"),
            Some(url(3)),
            "{name}: the latest value of b"
        );
    }
}

#[test]
fn a_busy_database_is_not_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = config_in(dir.path());
    let db = config.l3_database_path.clone();
    {
        let cache = open(config.clone(), &clock);
        for i in 0..10 {
            cache.put(&key(i), input(i)).unwrap();
        }
    }
    // Another connection holds the write lock for longer than the busy timeout (5 s).
    let holder = Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let cache = open(config.clone(), &clock);
    let s = cache.statistics();
    assert!(s.l3_degraded, "L3 could not be opened while locked");
    assert_eq!(s.l3_stats.evictions_corruption, 0, "busy is not damage");
    assert!(set_aside(&db).is_empty(), "the file stays where it is");
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);

    clock.set(t0().plus_seconds(PAST_BACKOFF_SECS));
    cache.put("after", input(99)).unwrap();
    assert!(
        !cache.statistics().l3_degraded,
        "recovered once the lock was released"
    );
    drop(cache);
    let l3 = l3_alone(&config, &clock);
    for i in 0..10 {
        assert_eq!(
            url_of(&l3, &key(i)),
            Some(url(i)),
            "every row is still there"
        );
    }
    assert_eq!(url_of(&l3, "after"), Some(url(99)));
}

#[test]
fn writers_racing_a_removed_directory_never_leave_a_stale_value() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::time::{Duration, Instant};
    const THREADS: usize = 4;
    const KEYS: usize = 25;
    const ROUNDS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = sqlite_l2(config_in(dir.path()));
    let cache = Arc::new(open(config.clone(), &clock));
    let rounds_done = Arc::new(AtomicUsize::new(0));
    // The last round waits for L2 to have been degraded and back, so that it lands in the new
    // file; the rounds before race the removal and the re-opening.
    let healed = Arc::new(AtomicBool::new(false));
    let the_key = |t: usize, j: usize| format!("t{t}-{j}");
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (cache, rounds_done, healed) = (cache.clone(), rounds_done.clone(), healed.clone());
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    if round == ROUNDS - 1 {
                        let until = Instant::now() + Duration::from_secs(10);
                        while !healed.load(SeqCst) && Instant::now() < until {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                    for j in 0..KEYS {
                        cache.put(&the_key(t, j), input(round)).unwrap();
                    }
                    rounds_done.fetch_add(1, SeqCst);
                }
            })
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(10);
    while rounds_done.load(SeqCst) < THREADS * ROUNDS / 4 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
    fs::remove_dir_all(&config.l2_cache_dir).unwrap();
    fs::create_dir(&config.l2_cache_dir).unwrap();
    // Until L2 is seen degraded the clock stands still, so a degraded L2 stays degraded until
    // this loop has seen it (sampling while the back-off passed could miss a short outage on a
    // loaded machine). Then the back-off is let pass now and then, until L2 is back.
    let mut seen_degraded = false;
    while !healed.load(SeqCst) && Instant::now() < until {
        if seen_degraded {
            clock.advance_micros(PAST_BACKOFF_SECS * 1_000_000);
        }
        std::thread::sleep(Duration::from_millis(5));
        let degraded = cache.statistics().l2_degraded;
        seen_degraded |= degraded;
        healed.store(seen_degraded && !degraded, SeqCst);
    }
    healed.store(true, SeqCst);
    for writer in writers {
        writer.join().unwrap();
    }
    assert!(seen_degraded, "L2 was degraded once its file was gone");
    assert!(!cache.statistics().l2_degraded, "L2 is back");
    drop(cache);

    let l2 = open(one_lower_tier(&config, true), &clock);
    let whole = open(config.clone(), &clock);
    for t in 0..THREADS {
        for j in 0..KEYS {
            let key = the_key(t, j);
            assert_eq!(
                url_of(&l2, &key),
                Some(url(ROUNDS - 1)),
                "{key}: L2, after a reopen"
            );
            assert_eq!(
                url_of(&whole, &key),
                Some(url(ROUNDS - 1)),
                "{key}: the cache"
            );
        }
    }
}
