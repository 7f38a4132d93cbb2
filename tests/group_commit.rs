//! Group commit in the SQLite tier: writers on many threads share transactions, and each call
//! still returns only after the commit that holds its own rows (another connection sees them the
//! moment the call returns). With a bound, the count stays exact across the group's members.
//! And the handle's own group of single puts (`src/manager/put_group.rs`) returns each put only
//! once it is in both tiers.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pwcache::crypto::Crypto;
use pwcache::stats::TierCounters;
use pwcache::tier::sqlite::{Schema, SqliteTier};
use pwcache::tier::{Tier, TierContext};
use pwcache::{CacheEntry, Clock, Durability, EvictionPolicy, SystemClock};
use rusqlite::{Connection, OpenFlags};

const KEY: &str = "dGVzdC1rZXktZm9yLXB3Y2FjaGUtZml4dHVyZXMtMDE=";
const THREADS: usize = 8;
const PUTS: usize = 60;

fn tier(path: &Path, schema: Schema, max_entries: Option<u64>) -> Arc<SqliteTier> {
    let ctx = TierContext {
        max_entries,
        eviction_policy: EvictionPolicy::Fifo,
        durability: Durability::Normal,
        crypto: Arc::new(Crypto::new(Some(KEY), path.parent().unwrap()).unwrap()),
        counters: Arc::new(TierCounters::new(true)),
    };
    Arc::new(SqliteTier::open(path, schema, ctx).unwrap())
}

/// A connection of its own, as another handle or process would read the file.
fn observer(path: &Path) -> Connection {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

fn failure_count(conn: &Connection, table: &str, key: &str) -> Option<i64> {
    conn.query_row(
        &format!("SELECT failure_count FROM {table} WHERE key = ?1"),
        [key],
        |r| r.get(0),
    )
    .ok()
}

/// Each thread puts its keys one by one and reports a failed check on each; after every call
/// its own connection must see the row, and the count the call returned.
fn writers_see_their_own_commits(schema: Schema, table: &str, max_entries: Option<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("group.db");
    let tier = tier(&path, schema, max_entries);
    let now = SystemClock.now();
    let deadline = Instant::now() + Duration::from_secs(60);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (tier, path) = (tier.clone(), path.clone());
            s.spawn(move || {
                let conn = observer(&path);
                for i in 0..PUTS {
                    assert!(Instant::now() < deadline, "the writers took over a minute");
                    let key = format!("t{t}-{i}");
                    let entry = CacheEntry::new(
                        key.clone(),
                        format!("http://10.0.{t}.{i}:1"),
                        "test",
                        now,
                        3600,
                    );
                    tier.put_many(std::slice::from_ref(&entry)).unwrap();
                    assert_eq!(
                        failure_count(&conn, table, &key),
                        Some(0),
                        "{key} not visible to another connection when put returned"
                    );
                    let failures = tier.record_failure(&key).unwrap().expect("the key is held");
                    assert_eq!(failures.failure_count, 1);
                    assert_eq!(
                        failure_count(&conn, table, &key),
                        Some(1),
                        "the failure on {key} not visible when record_failure returned"
                    );
                }
            });
        }
    });
    let total = (THREADS * PUTS) as u64;
    let held = tier.len().unwrap();
    match max_entries {
        None => assert_eq!(held, total),
        // A full tier evicts down to 99 % of its bound.
        Some(max) => assert!((max - max / 100..=max).contains(&held), "{held} rows"),
    }
}

#[test]
fn l3_writers_on_eight_threads_see_their_own_commits() {
    writers_see_their_own_commits(Schema::L3, "cache_entries", None);
}

#[test]
fn bounded_l2_writers_on_eight_threads_keep_the_bound_exact() {
    // Bounded above the 8 keys in flight at once, so a key is never evicted before it is read.
    writers_see_their_own_commits(Schema::L2, "l2_cache", Some(100));
}

/// The handle's own group (single puts of several threads stored as one batch, with the SQLite
/// L2 backend): each put returns only once its entry is committed in L2 and L3, and with the
/// outcome of its own batch.
#[test]
fn puts_on_one_handle_are_in_both_tiers_when_they_return() {
    use pwcache::{CacheConfig, CacheManager, EntryInput, L2Backend};
    let dir = tempfile::tempdir().unwrap();
    let config = CacheConfig {
        l2_cache_dir: dir.path().join("l2"),
        l3_database_path: dir.path().join("l3.db"),
        encryption_key: Some(KEY.into()),
        l2_backend: L2Backend::Sqlite,
        ..CacheConfig::default()
    };
    let cache = CacheManager::open(config.clone()).unwrap();
    let l2 = config.l2_cache_dir.join("l2_cache.db");
    let deadline = Instant::now() + Duration::from_secs(60);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (cache, l2, l3) = (&cache, l2.clone(), config.l3_database_path.clone());
            s.spawn(move || {
                let (in_l2, in_l3) = (observer(&l2), observer(&l3));
                for i in 0..PUTS {
                    assert!(Instant::now() < deadline, "the writers took over a minute");
                    let key = format!("t{t}-{i}");
                    cache
                        .put(&key, EntryInput::with_url(format!("http://10.0.{t}.{i}:1")))
                        .unwrap();
                    for (conn, table) in [(&in_l2, "l2_cache"), (&in_l3, "cache_entries")] {
                        assert_eq!(
                            failure_count(conn, table, &key),
                            Some(0),
                            "{key} not in {table} when put returned"
                        );
                    }
                }
            });
        }
    });
}
