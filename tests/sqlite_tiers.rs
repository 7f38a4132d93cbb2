//! The SQLite tiers (L2 `l2_cache`, L3 `cache_entries`): upstream's files, upstream's schemas,
//! capacity and eviction order, damaged data and the modes of the WAL files. What every
//! persistent tier does (round trips, handles, expiry, clear, scan, keys, modes) is in
//! tests/tier_contract.rs.
//!
//! Over 700 lines, one idea: what only the SQLite tiers do, one test per behaviour.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod common;
#[path = "common/upstream_names.rs"]
mod upstream_names;

use common::KEY;
use common::tiers::{TierOptions, tier_context};
use pwcache::crypto::Crypto;
use pwcache::stats::{Counter, TierCounters};
use pwcache::tier::sqlite::{Schema, SqliteTier};
use pwcache::tier::{Tier, TierContext};
use pwcache::{CacheEntry, EntryInput, ErrorKind, EvictionPolicy, HealthStatus, Timestamp};
use rusqlite::Connection;
use upstream_names::{l2_columns, l3_columns};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/proxywhirl-0.3.3"
);

fn ctx_with(
    key: &str,
    max: Option<u64>,
    policy: EvictionPolicy,
    dir: &Path,
) -> (TierContext, Arc<TierCounters>) {
    let options = TierOptions {
        key,
        max,
        policy,
        ..TierOptions::default()
    };
    tier_context(dir, &options)
}

fn open(path: &Path, schema: Schema) -> (SqliteTier, Arc<TierCounters>) {
    open_bounded(path, schema, None, EvictionPolicy::Lru)
}

fn open_bounded(
    path: &Path,
    schema: Schema,
    max: Option<u64>,
    policy: EvictionPolicy,
) -> (SqliteTier, Arc<TierCounters>) {
    let (ctx, counters) = ctx_with(KEY, max, policy, path.parent().unwrap());
    (SqliteTier::open(path, schema, ctx).unwrap(), counters)
}

/// A new tier of `schema` in a directory of its own (dropped last), holding at most `max`
/// entries, evicting by `policy`.
fn fresh_bounded(
    schema: Schema,
    name: &str,
    max: Option<u64>,
    policy: EvictionPolicy,
) -> (tempfile::TempDir, SqliteTier, Arc<TierCounters>) {
    let dir = tempfile::tempdir().unwrap();
    let (tier, counters) = open_bounded(&dir.path().join(name), schema, max, policy);
    (dir, tier, counters)
}

fn t(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn t0() -> Timestamp {
    t("2026-11-24T01:00:00.123456Z")
}

/// `s` seconds after [`t0`].
fn at(s: i64) -> Timestamp {
    t0().plus_seconds(s)
}

fn entry(key: &str, last_accessed: Timestamp, access_count: i64) -> CacheEntry {
    let mut e = CacheEntry::new(
        key,
        format!("http://{key}.example:8080"),
        "test",
        t0(),
        3600,
    );
    e.last_accessed = last_accessed;
    e.access_count = access_count;
    e
}

fn full_entry() -> CacheEntry {
    common::tiers::full_entry("full", t0())
}

fn schemas() -> [(Schema, &'static str); 2] {
    [(Schema::L2, "l2_cache.db"), (Schema::L3, "proxywhirl.db")]
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

fn column_names(conn: &Connection, table: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({table})"))
        .unwrap();
    stmt.query_map([], |r| r.get::<_, String>(1))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn l2_health_fields_follow_puts_and_deletes_and_upstream_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l2_cache.db");
    let (tier, _) = open(&path, Schema::L2);
    let side_rows = || -> i64 {
        raw(&path)
            .query_row("SELECT COUNT(*) FROM pwcache_l2_health", [], |r| r.get(0))
            .unwrap()
    };
    tier.put(&full_entry()).unwrap();
    assert_eq!(side_rows(), 1);
    // Written again with default health fields: the side row goes.
    let mut plain = full_entry();
    plain.last_health_check = None;
    plain.consecutive_health_failures = 0;
    plain.consecutive_health_successes = 0;
    plain.recovery_attempt = 0;
    plain.next_check_time = None;
    plain.last_health_error = None;
    plain.total_health_checks = 0;
    plain.total_health_check_failures = 0;
    tier.put(&plain).unwrap();
    assert_eq!(side_rows(), 0);
    assert_eq!(tier.get("full").unwrap(), Some(plain));
    tier.put(&full_entry()).unwrap();
    assert!(tier.delete("full").unwrap());
    assert!(!tier.delete("full").unwrap());
    assert_eq!(side_rows(), 0);
    // proxywhirl's INSERT OR REPLACE means "health fields at their defaults".
    tier.put(&full_entry()).unwrap();
    raw(&path)
        .execute(
            "INSERT OR REPLACE INTO l2_cache VALUES ('full', 'http://up:1', NULL, NULL, 'up', \
             1795486134.5, 1795486134.5, 0, 60, 4070908800.0, 'healthy', 0, 0)",
            [],
        )
        .unwrap();
    let got = tier.get("full").unwrap().unwrap();
    assert_eq!(got.proxy_url, "http://up:1");
    assert_eq!(got.total_health_checks, 0);
    assert_eq!(got.last_health_check, None);
    assert_eq!(side_rows(), 0);
    tier.put(&full_entry()).unwrap();
    assert_eq!(tier.clear().unwrap(), vec!["full".to_string()]);
    assert_eq!(side_rows(), 0);
}

/// The entries of expected.json as `CacheEntry` values, with their `expired` flags.
fn expected_entries() -> Vec<(CacheEntry, bool)> {
    let text = fs::read_to_string(format!("{FIXTURES}/expected.json")).unwrap();
    let values: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    values
        .into_iter()
        .map(|mut v| {
            let object = v.as_object_mut().unwrap();
            let expired = object.remove("expired").unwrap().as_bool().unwrap();
            let key = object["key"].as_str().unwrap().to_string();
            let input = EntryInput::from_json(&v.to_string()).unwrap();
            (input.resolve(&key, t0(), |_| 1).unwrap(), expired)
        })
        .collect()
}

/// Equal, datetimes as instants within the float seconds → microsecond rounding.
fn assert_same_entry(got: &CacheEntry, want: &CacheEntry) {
    let near = |a: Timestamp, b: Timestamp| (a.as_micros() - b.as_micros()).abs() <= 1;
    let mut got = got.clone();
    for (g, w) in [
        (&mut got.fetch_time, want.fetch_time),
        (&mut got.last_accessed, want.last_accessed),
        (&mut got.expires_at, want.expires_at),
    ] {
        assert!(near(*g, w), "{}: {g} vs {w}", want.key);
        *g = w;
    }
    for (g, w) in [
        (&mut got.last_health_check, want.last_health_check),
        (&mut got.next_check_time, want.next_check_time),
    ] {
        match (*g, w) {
            (Some(a), Some(b)) => {
                assert!(near(a, b));
                *g = w;
            }
            (a, b) => assert_eq!(a, b),
        }
    }
    assert_eq!(&got, want);
}

#[test]
fn upstream_fixture_databases_read_as_expected() {
    let expected = expected_entries();
    assert_eq!(expected.len(), 40);
    assert!(expected.iter().any(|(e, _)| e.password.is_some()));
    for (schema, fixture) in [
        (Schema::L3, "l3/proxywhirl.db"),
        (Schema::L2, "l2_sqlite/l2_cache.db"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(Path::new(fixture).file_name().unwrap());
        fs::copy(format!("{FIXTURES}/{fixture}"), &path).unwrap();
        let key = fs::read_to_string(format!("{FIXTURES}/key.txt")).unwrap();
        let (ctx, counters) = ctx_with(key.trim(), None, EvictionPolicy::Lru, dir.path());
        let tier = SqliteTier::open(&path, schema, ctx).unwrap();
        assert_eq!(tier.len().unwrap(), 40, "{fixture}");
        for (want, _) in &expected {
            let got = tier
                .get(&want.key)
                .unwrap()
                .unwrap_or_else(|| panic!("{}", want.key));
            assert_same_entry(&got, want);
        }
        let mut scanned = 0;
        tier.scan(&mut |r| {
            r.unwrap();
            scanned += 1;
        })
        .unwrap();
        assert_eq!(scanned, 40);
        assert_eq!(counters.get(Counter::EvictionsCorruption), 0);
        let journal: String = raw(&path)
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(journal, "wal", "{fixture}");
        // Upstream's column list is untouched.
        let columns = column_names(&raw(&path), schema.table());
        match schema {
            Schema::L2 => assert_eq!(columns, l2_columns()),
            Schema::L3 => assert_eq!(columns, l3_columns()),
        }
        let mut removed = tier.remove_expired(t("2050-01-01T00:00:00Z")).unwrap();
        removed.sort();
        let mut want: Vec<String> = expected
            .iter()
            .filter(|(_, expired)| *expired)
            .map(|(e, _)| e.key.clone())
            .collect();
        want.sort();
        assert_eq!(removed, want);
        assert_eq!(tier.len().unwrap(), 36);
    }
}

#[test]
fn pwcache_databases_have_upstreams_columns_for_positional_reads() {
    for (schema, name) in schemas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let (tier, _) = open(&path, schema);
        let e = full_entry();
        tier.put(&e).unwrap();
        let conn = raw(&path);
        let table = schema.table();
        let columns = column_names(&conn, table);
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let mut rows = stmt.query([]).unwrap();
        let row = rows.next().unwrap().unwrap();
        assert_eq!(row.get::<_, String>(0).unwrap(), "full");
        assert_eq!(row.get::<_, String>(1).unwrap(), e.proxy_url);
        let token: Vec<u8> = row.get(2).unwrap(); // a BLOB, as upstream writes
        assert!(token.starts_with(b"gAAAAA"));
        let crypto = Crypto::new(Some(KEY), dir.path()).unwrap();
        let user = crypto
            .decrypt(std::str::from_utf8(&token).unwrap())
            .unwrap();
        assert_eq!(user.unwrap().expose(), "alice-user");
        assert_eq!(row.get::<_, String>(4).unwrap(), "fetched");
        assert_eq!(
            row.get::<_, f64>(5).unwrap(),
            e.fetch_time.as_epoch_seconds()
        );
        assert_eq!(
            row.get::<_, f64>(6).unwrap(),
            e.last_accessed.as_epoch_seconds()
        );
        assert_eq!(row.get::<_, i64>(7).unwrap(), 7);
        assert_eq!(row.get::<_, i64>(8).unwrap(), 7200);
        assert_eq!(
            row.get::<_, f64>(9).unwrap(),
            e.expires_at.as_epoch_seconds()
        );
        assert_eq!(row.get::<_, String>(10).unwrap(), "degraded");
        assert_eq!(row.get::<_, i64>(11).unwrap(), 2);
        match schema {
            Schema::L2 => {
                assert_eq!(columns, l2_columns());
                assert_eq!(row.get::<_, i64>(12).unwrap(), 1);
            }
            Schema::L3 => {
                assert_eq!(columns, l3_columns());
                let created: f64 = row.get(12).unwrap();
                assert!(created > 1.7e9, "created_at is a Unix time: {created}");
                assert_eq!(
                    row.get::<_, f64>(14).unwrap(),
                    e.last_health_check.unwrap().as_epoch_seconds()
                );
                assert_eq!(row.get::<_, i64>(15).unwrap(), 3);
                assert_eq!(
                    row.get::<_, String>(19).ok(),
                    e.last_health_error,
                    "the error text as it is"
                );
                assert_eq!(row.get::<_, i64>(21).unwrap(), 6);
                assert_eq!(row.get::<_, i64>(22).unwrap(), 1);
            }
        }
        let journal: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        // Of upstream's indexes, a new database gets the ones pwcache queries; the others only
        // slow every put down, and proxywhirl adds them itself when it opens the file.
        let (queried, unqueried): (&[&str], &[&str]) = match schema {
            Schema::L2 => (&["idx_l2_expires_at"], &["idx_l2_source"]),
            Schema::L3 => (
                &[
                    "idx_expires_at",
                    "idx_health_history_proxy",
                    "idx_health_history_time",
                ],
                &["idx_source", "idx_health_status", "idx_last_accessed"],
            ),
        };
        for name in queried {
            assert!(indexes.iter().any(|i| i == name), "{name} in {indexes:?}");
        }
        for name in unqueried {
            assert!(!indexes.iter().any(|i| i == name), "{name} in {indexes:?}");
        }
        if schema == Schema::L3 {
            assert_eq!(
                column_names(&conn, "health_history"),
                [
                    "id",
                    "proxy_key",
                    "check_time",
                    "status",
                    "response_time_ms",
                    "error_message",
                    "check_url"
                ]
            );
        }
    }
}

#[test]
fn l3_update_keeps_created_at_and_moves_updated_at() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l3.db");
    let (tier, _) = open(&path, Schema::L3);
    let times = || -> (f64, f64) {
        raw(&path)
            .query_row(
                "SELECT created_at, updated_at FROM cache_entries",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    tier.put(&entry("k", t0(), 0)).unwrap();
    let (created, updated) = times();
    assert_eq!(created, updated);
    std::thread::sleep(std::time::Duration::from_millis(20));
    tier.put(&entry("k", t0(), 5)).unwrap();
    let (created2, updated2) = times();
    assert_eq!(created2, created);
    assert!(updated2 > updated);
    assert_eq!(tier.get("k").unwrap().unwrap().access_count, 5);
}

#[test]
fn the_capacity_holds_when_another_handle_writes_too() {
    for (schema, name) in schemas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let (a, ca) = open_bounded(&path, schema, Some(3), EvictionPolicy::Lru);
        let (b, _) = open_bounded(&path, schema, Some(3), EvictionPolicy::Lru);
        a.put_many(&[entry("k1", t0(), 0), entry("k2", t0(), 0)])
            .unwrap();
        b.put_many(&[entry("k3", t0(), 0), entry("k4", t0(), 0)])
            .unwrap();
        assert_eq!(a.len().unwrap(), 3);
        a.put(&entry("k5", t0(), 0)).unwrap();
        assert_eq!(
            a.len().unwrap(),
            3,
            "{schema:?}: a's count must see b's rows"
        );
        assert_eq!(ca.get(Counter::EvictionsLru), 1);
        b.clear().unwrap();
        a.put(&entry("k6", t0(), 0)).unwrap();
        a.put(&entry("k7", t0(), 0)).unwrap();
        assert_eq!(
            a.len().unwrap(),
            2,
            "{schema:?}: a's count must see b's clear"
        );
        assert_eq!(ca.get(Counter::EvictionsLru), 1);
    }
}

fn keys(tier: &SqliteTier) -> Vec<String> {
    let mut keys = Vec::new();
    tier.scan(&mut |r| keys.push(r.unwrap().key)).unwrap();
    keys.sort();
    keys
}

/// Puts, one at a time, an entry for each `(key, last accessed at(s), access count)`.
fn put_each(tier: &SqliteTier, puts: &[(&str, i64, i64)]) {
    for &(key, s, access_count) in puts {
        tier.put(&entry(key, at(s), access_count)).unwrap();
    }
}

#[test]
fn lru_evicts_the_least_recently_used() {
    for (schema, name) in schemas() {
        let (_dir, tier, counters) = fresh_bounded(schema, name, Some(3), EvictionPolicy::Lru);
        // The last is an update: no eviction.
        put_each(&tier, &[("a", 1, 9), ("b", 2, 9), ("c", 3, 0), ("a", 4, 9)]);
        assert_eq!(counters.get(Counter::EvictionsLru), 0);
        tier.put(&entry("d", at(5), 0)).unwrap();
        assert_eq!(keys(&tier), ["a", "c", "d"], "{schema:?}");
        assert_eq!(counters.get(Counter::EvictionsLru), 1);
    }
}

#[test]
fn lfu_evicts_the_least_used_then_the_oldest() {
    for (schema, name) in schemas() {
        let (_dir, tier, counters) = fresh_bounded(schema, name, Some(3), EvictionPolicy::Lfu);
        put_each(&tier, &[("a", 1, 5), ("b", 3, 1), ("c", 2, 1), ("d", 4, 3)]);
        assert_eq!(
            keys(&tier),
            ["a", "b", "d"],
            "{schema:?}: c is least used and older"
        );
        tier.put(&entry("e", at(5), 2)).unwrap();
        assert_eq!(keys(&tier), ["a", "d", "e"], "{schema:?}");
        assert_eq!(counters.get(Counter::EvictionsLru), 2);
    }
}

#[test]
fn fifo_evicts_the_first_inserted_whatever_its_use() {
    for (schema, name) in schemas() {
        let (_dir, tier, counters) = fresh_bounded(schema, name, Some(3), EvictionPolicy::Fifo);
        // a is updated, still first in.
        put_each(
            &tier,
            &[
                ("a", 1, 0),
                ("b", 2, 0),
                ("c", 3, 0),
                ("a", 9, 99),
                ("d", 4, 0),
            ],
        );
        assert_eq!(keys(&tier), ["b", "c", "d"], "{schema:?}");
        assert_eq!(counters.get(Counter::EvictionsLru), 1);
    }
}

#[test]
fn a_full_tier_of_200_evicts_down_to_99_percent_at_once() {
    for (schema, name) in schemas() {
        let (_dir, tier, counters) = fresh_bounded(schema, name, Some(200), EvictionPolicy::Fifo);
        let batch: Vec<CacheEntry> = (0..200)
            .map(|i| entry(&format!("k{i:03}"), t0(), 0))
            .collect();
        tier.put_many(&batch).unwrap();
        assert_eq!(tier.len().unwrap(), 200, "{schema:?}: full, not over");
        tier.put(&entry("new", t0(), 0)).unwrap();
        // 201 rows: down to 198 in one step, the oldest three, the new key kept.
        assert_eq!(tier.len().unwrap(), 198, "{schema:?}");
        assert_eq!(counters.get(Counter::EvictionsLru), 3);
        let left = keys(&tier);
        assert!(left.contains(&"new".to_string()) && !left.contains(&"k002".to_string()));
        assert!(left.contains(&"k003".to_string()));
        // The next puts fit without evicting.
        tier.put(&entry("newer", t0(), 0)).unwrap();
        assert_eq!(counters.get(Counter::EvictionsLru), 3);
    }
}

/// A reopened handle counts the rows already in the file against its capacity. (What a batch
/// larger than the capacity leaves is in the tier contract.)
#[test]
fn a_reopened_handle_counts_the_rows_already_there() {
    for (schema, name) in schemas() {
        let dir = tempfile::tempdir().unwrap();
        let open_two = || {
            open_bounded(
                &dir.path().join(name),
                schema,
                Some(2),
                EvictionPolicy::Fifo,
            )
        };
        let (tier, _) = open_two();
        let batch: Vec<CacheEntry> = (0..5).map(|i| entry(&format!("k{i}"), t0(), 0)).collect();
        tier.put_many(&batch).unwrap();
        drop(tier);
        let (tier, _) = open_two();
        tier.put(&entry("k5", t0(), 0)).unwrap();
        assert_eq!(keys(&tier), ["k4", "k5"]);
    }
}

#[test]
fn corrupt_rows_are_dropped_counted_and_read_as_misses() {
    for (schema, name) in schemas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let (tier, counters) = open(&path, schema);
        let names = [
            "status",
            "text_time",
            "huge_time",
            "text_count",
            "blob_url",
            "good",
        ];
        let batch: Vec<CacheEntry> = names.iter().map(|k| entry(k, t0(), 0)).collect();
        tier.put_many(&batch).unwrap();
        let table = schema.table();
        let conn = raw(&path);
        for sql in [
            "UPDATE {t} SET health_status = 'bogus' WHERE key = 'status'",
            "UPDATE {t} SET fetch_time = 'yesterday' WHERE key = 'text_time'",
            "UPDATE {t} SET expires_at = 1e300 WHERE key = 'huge_time'",
            "UPDATE {t} SET access_count = 'many' WHERE key = 'text_count'",
            "UPDATE {t} SET proxy_url = x'ff00' WHERE key = 'blob_url'",
        ] {
            conn.execute(&sql.replace("{t}", table), []).unwrap();
        }
        // scan reports them without changing anything.
        let (mut ok, mut bad) = (0, 0);
        tier.scan(&mut |r| match r {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Storage);
                bad += 1;
            }
        })
        .unwrap();
        assert_eq!((ok, bad), (1, 5));
        assert_eq!(tier.len().unwrap(), 6);
        assert_eq!(counters.get(Counter::EvictionsCorruption), 0);
        for key in &names[..5] {
            assert_eq!(tier.get(key).unwrap(), None, "{schema:?} {key}");
        }
        assert_eq!(counters.get(Counter::EvictionsCorruption), 5);
        assert_eq!(tier.len().unwrap(), 1);
        assert!(tier.get("good").unwrap().is_some());
    }
}

#[test]
fn a_file_that_is_not_a_database_is_moved_aside_and_replaced() {
    for garbage in [&b"not a database"[..], &[0xA5u8; 8192][..]] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l2_cache.db");
        fs::write(&path, garbage).unwrap();
        let (tier, counters) = open(&path, Schema::L2);
        assert_eq!(counters.get(Counter::EvictionsCorruption), 1);
        tier.put(&entry("k", t0(), 0)).unwrap();
        assert!(tier.get("k").unwrap().is_some());
        let aside: Vec<PathBuf> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("l2_cache.db.corrupt-")
            })
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert_eq!(fs::read(&aside[0]).unwrap(), garbage);
    }
}

#[test]
fn a_directory_at_the_path_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l3.db");
    fs::create_dir(&path).unwrap();
    let (ctx, _) = ctx_with(KEY, None, EvictionPolicy::Lru, dir.path());
    assert!(SqliteTier::open(&path, Schema::L3, ctx).is_err());
    // A regular file where a parent directory belongs, too.
    let file = dir.path().join("file");
    fs::write(&file, "x").unwrap();
    let (ctx, _) = ctx_with(KEY, None, EvictionPolicy::Lru, dir.path());
    assert!(SqliteTier::open(&file.join("l3.db"), Schema::L3, ctx).is_err());
}

#[test]
fn a_table_of_that_name_with_other_columns_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l2_cache.db");
    raw(&path)
        .execute_batch("CREATE TABLE l2_cache (key TEXT PRIMARY KEY, something TEXT)")
        .unwrap();
    let (ctx, _) = ctx_with(KEY, None, EvictionPolicy::Lru, dir.path());
    let err = SqliteTier::open(&path, Schema::L2, ctx).unwrap_err();
    assert!(err.to_string().contains("proxy_url"), "{err}");
}

#[test]
fn a_legacy_l3_table_gets_the_health_columns_in_upstreams_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy.db");
    raw(&path)
        .execute_batch(
            "CREATE TABLE cache_entries (
                key TEXT PRIMARY KEY, proxy_url TEXT NOT NULL, username_encrypted BLOB,
                password_encrypted BLOB, source TEXT NOT NULL, fetch_time REAL NOT NULL,
                last_accessed REAL NOT NULL, access_count INTEGER DEFAULT 0,
                ttl_seconds INTEGER NOT NULL, expires_at REAL NOT NULL,
                health_status TEXT DEFAULT 'unknown', failure_count INTEGER DEFAULT 0,
                created_at REAL NOT NULL, updated_at REAL NOT NULL);
             INSERT INTO cache_entries VALUES ('old', 'http://old:1', NULL, NULL, 'legacy',
                1795486134.25, 1795486135.5, 4, 60, 4070908800.0, 'healthy', 1,
                1795486134.25, 1795486134.25);",
        )
        .unwrap();
    let (tier, _) = open(&path, Schema::L3);
    assert_eq!(column_names(&raw(&path), "cache_entries"), l3_columns());
    let old = tier.get("old").unwrap().unwrap();
    assert_eq!(old.source, "legacy");
    assert_eq!(old.access_count, 4);
    assert_eq!(old.health_status, HealthStatus::Healthy);
    assert_eq!(
        old.fetch_time,
        Timestamp::from_epoch_seconds(1795486134.25).unwrap()
    );
    assert_eq!(old.total_health_checks, 0);
    assert!(!old.evicted_from_l1);
    tier.put(&full_entry()).unwrap();
    assert_eq!(tier.get("full").unwrap(), Some(full_entry()));
}

/// The modes of the database and the directories a tier creates are in the tier contract
/// (tests/tier_contract.rs), which looks after the last handle closed; while one is open, the
/// write-ahead log and its shared-memory index exist, and they are 0600 too.
#[test]
fn the_wal_and_shm_files_of_an_open_database_are_0600() {
    for (schema, name) in schemas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let (tier, _) = open(&path, schema);
        tier.put(&entry("k", t0(), 0)).unwrap();
        let _ = tier.get("k").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for suffix in ["-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{suffix}", path.display()));
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
}

#[test]
fn new_databases_get_2k_pages_and_existing_ones_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let page_size = |path: &Path| -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    };
    let fresh = dir.path().join("fresh.db");
    drop(open(&fresh, Schema::L3));
    assert_eq!(page_size(&fresh), 2048);
    let upstream = dir.path().join("upstream.db");
    std::fs::copy(Path::new(FIXTURES).join("l3/proxywhirl.db"), &upstream).unwrap();
    let before = page_size(&upstream);
    drop(open(&upstream, Schema::L3));
    assert_eq!(page_size(&upstream), before);
}
