//! The L3 SQLite tier against raw rusqlite on the same database layout: the limit for our design.
//!
//! Both sides write `cache_entries` in a file made by `SqliteTier::open` (so the tables, the
//! indexes and the page size, 2 KiB, are identical), in WAL mode with `synchronous = NORMAL`. The
//! raw side is one `rusqlite::Connection` with the same pragmas (busy timeout included) running
//! the tier's statements as prepared, cached statements with parameters bound straight from the
//! entry: the same `INSERT ... ON CONFLICT(key) DO UPDATE` of 23 columns in one IMMEDIATE
//! transaction per single put or per batch, and the same `SELECT` of the 21 entry columns by
//! primary key, decoded into a `CacheEntry`.
//!
//! - `sqlite_put_single`: one new key per call (`Tier::put` against one insert + commit).
//! - `sqlite_put_batch_1000`: 1,000 new keys per call (`Tier::put_many` against one transaction).
//! - `sqlite_get`: hits by primary key over 10,000 rows, keys in a shuffled order.
//! - `warm_l3_10k`: warm of a 10,000-line JSONL file into a cache with L3 only (parse, key
//!   digest, batches of 1,000) against parsing the same file and inserting the same rows raw in
//!   batches of 1,000.
//!
//! In each group the functions are `pwcache` and `raw_rusqlite`; the ratio asked is pwcache's
//! throughput over raw's. `cargo bench --bench sqlite_limit`

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pwcache::config::{Durability, EvictionPolicy};
use pwcache::crypto::Crypto;
use pwcache::stats::TierCounters;
use pwcache::tier::Tier;
use pwcache::tier::TierContext;
use pwcache::tier::sqlite::{ENTRY_COLUMNS, Schema, SqliteTier};
use pwcache::{
    CacheConfig, CacheEntry, CacheManager, Clock, HealthStatus, SystemClock, Timestamp,
    generate_cache_key,
};
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};

mod common;

use common::{KEY, url};

/// The 21 entry columns, in `CacheEntry` order (the tier's own list).
const COLUMNS: [&str; 21] = ENTRY_COLUMNS;

fn upsert_sql() -> String {
    let values: Vec<String> = (1..=21).map(|i| format!("?{i}")).collect();
    let updates: Vec<String> = COLUMNS[1..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO cache_entries ({}, created_at, updated_at) VALUES ({}, ?22, ?22) \
         ON CONFLICT(key) DO UPDATE SET {}, updated_at = excluded.updated_at",
        COLUMNS.join(", "),
        values.join(", "),
        updates.join(", ")
    )
}

fn select_sql() -> String {
    format!(
        "SELECT {} FROM cache_entries WHERE key = ?1",
        COLUMNS.join(", ")
    )
}

fn context(dir: &Path) -> TierContext {
    TierContext {
        max_entries: None,
        eviction_policy: EvictionPolicy::Lru,
        durability: Durability::Normal,
        crypto: Arc::new(Crypto::new(Some(KEY), dir).unwrap()),
        counters: Arc::new(TierCounters::new(true)),
    }
}

fn tier(dir: &Path, name: &str) -> SqliteTier {
    SqliteTier::open(&dir.join(name), Schema::L3, context(dir)).unwrap()
}

/// A raw connection to a database laid out by the tier, with the tier's pragmas.
fn raw_connection(dir: &Path, name: &str) -> Connection {
    let path: PathBuf = dir.join(name);
    drop(tier(dir, name));
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.set_prepared_statement_cache_capacity(32);
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    let page: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    assert_eq!(page, 2048);
    conn
}

fn opt_secs(t: Option<Timestamp>) -> Option<f64> {
    t.map(Timestamp::as_epoch_seconds)
}

/// Binds the entry's 21 columns and `now` and runs the prepared upsert.
fn raw_insert(stmt: &mut rusqlite::Statement<'_>, e: &CacheEntry, now: f64) {
    stmt.execute(params![
        e.key,
        e.proxy_url,
        None::<Vec<u8>>,
        None::<Vec<u8>>,
        e.source,
        e.fetch_time.as_epoch_seconds(),
        e.last_accessed.as_epoch_seconds(),
        e.access_count,
        e.ttl_seconds,
        e.expires_at.as_epoch_seconds(),
        e.health_status.as_str(),
        e.failure_count,
        i64::from(e.evicted_from_l1),
        opt_secs(e.last_health_check),
        e.consecutive_health_failures,
        e.consecutive_health_successes,
        e.recovery_attempt,
        opt_secs(e.next_check_time),
        e.last_health_error,
        e.total_health_checks,
        e.total_health_check_failures,
        now,
    ])
    .unwrap();
}

fn raw_insert_batch(conn: &mut Connection, sql: &str, entries: &[CacheEntry]) {
    let now = SystemClock.now().as_epoch_seconds();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    {
        // Prepared (taken from the cache) once per transaction, as the tier does.
        let mut stmt = tx.prepare_cached(sql).unwrap();
        for e in entries {
            raw_insert(&mut stmt, e, now);
        }
    }
    tx.commit().unwrap();
}

fn time(row: &rusqlite::Row<'_>, i: usize) -> Timestamp {
    Timestamp::from_epoch_seconds(row.get::<_, f64>(i).unwrap()).unwrap()
}

fn opt_time(row: &rusqlite::Row<'_>, i: usize) -> Option<Timestamp> {
    row.get::<_, Option<f64>>(i)
        .unwrap()
        .and_then(Timestamp::from_epoch_seconds)
}

/// The row of `key` as an entry (no credentials are stored in these benchmarks).
fn raw_get(conn: &Connection, sql: &str, key: &str) -> Option<CacheEntry> {
    let mut stmt = conn.prepare_cached(sql).unwrap();
    let mut rows = stmt.query([key]).unwrap();
    let row = rows.next().unwrap()?;
    Some(CacheEntry {
        key: row.get(0).unwrap(),
        proxy_url: row.get(1).unwrap(),
        username: None,
        password: None,
        source: row.get(4).unwrap(),
        fetch_time: time(row, 5),
        last_accessed: time(row, 6),
        access_count: row.get(7).unwrap(),
        ttl_seconds: row.get(8).unwrap(),
        expires_at: time(row, 9),
        health_status: HealthStatus::parse(&row.get::<_, String>(10).unwrap()).unwrap(),
        failure_count: row.get(11).unwrap(),
        evicted_from_l1: row.get::<_, i64>(12).unwrap() != 0,
        last_health_check: opt_time(row, 13),
        consecutive_health_failures: row.get(14).unwrap(),
        consecutive_health_successes: row.get(15).unwrap(),
        recovery_attempt: row.get(16).unwrap(),
        next_check_time: opt_time(row, 17),
        last_health_error: row.get(18).unwrap(),
        total_health_checks: row.get(19).unwrap(),
        total_health_check_failures: row.get(20).unwrap(),
    })
}

fn entry(i: u64, now: Timestamp) -> CacheEntry {
    // Sequential keys (not `common::key`): rows arrive in key order, as the figures were taken.
    CacheEntry::new(format!("{i:016x}"), url(i as usize), "bench", now, 3600)
}

fn bench_put_single(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let tier = tier(dir.path(), "tier.db");
    let raw = raw_connection(dir.path(), "raw.db");
    let sql = upsert_sql();
    let now = SystemClock.now();
    let mut group = c.benchmark_group("sqlite_put_single");
    group.throughput(Throughput::Elements(1));
    let mut next = 0u64;
    group.bench_function("pwcache", |b| {
        b.iter_batched_ref(
            || {
                next += 1;
                entry(next, now)
            },
            |e| tier.put(e).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let mut next = 0u64;
    group.bench_function("raw_rusqlite", |b| {
        b.iter_batched_ref(
            || {
                next += 1;
                entry(next, now)
            },
            |e| {
                // One IMMEDIATE transaction per insert, as the tier's put.
                raw.execute_batch("BEGIN IMMEDIATE").unwrap();
                let mut stmt = raw.prepare_cached(&sql).unwrap();
                raw_insert(&mut stmt, e, SystemClock.now().as_epoch_seconds());
                drop(stmt);
                raw.execute_batch("COMMIT").unwrap();
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn bench_put_batch(c: &mut Criterion) {
    const BATCH: u64 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let tier = tier(dir.path(), "tier.db");
    let mut raw = raw_connection(dir.path(), "raw.db");
    let sql = upsert_sql();
    let now = SystemClock.now();
    let mut group = c.benchmark_group("sqlite_put_batch_1000");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(20);
    let batches = |next: &mut u64| {
        let first = *next;
        *next += BATCH;
        (first..first + BATCH)
            .map(|i| entry(i, now))
            .collect::<Vec<_>>()
    };
    let mut next = 0u64;
    group.bench_function("pwcache", |b| {
        b.iter_batched_ref(
            || batches(&mut next),
            |entries| tier.put_many(entries).unwrap(),
            BatchSize::PerIteration,
        )
    });
    let mut next = 0u64;
    group.bench_function("raw_rusqlite", |b| {
        b.iter_batched_ref(
            || batches(&mut next),
            |entries| raw_insert_batch(&mut raw, &sql, entries),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn bench_get(c: &mut Criterion) {
    const ROWS: u64 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let tier = tier(dir.path(), "tier.db");
    let mut raw = raw_connection(dir.path(), "raw.db");
    let now = SystemClock.now();
    let entries: Vec<CacheEntry> = (0..ROWS).map(|i| entry(i, now)).collect();
    tier.put_many(&entries).unwrap();
    raw_insert_batch(&mut raw, &upsert_sql(), &entries);
    // A shuffled order of the keys (a multiplier coprime with ROWS).
    let keys: Vec<String> = (0..ROWS)
        .map(|i| entries[(i * 7919 % ROWS) as usize].key.clone())
        .collect();
    let select = select_sql();
    let mut group = c.benchmark_group("sqlite_get");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("pwcache", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(tier.get(&keys[i]).unwrap().unwrap())
        })
    });
    let mut i = 0;
    group.bench_function("raw_rusqlite", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(raw_get(&raw, &select, &keys[i]).unwrap())
        })
    });
    group.finish();
}

/// The raw equivalent of a warm: parse each line, digest the URL into the key, insert in
/// batches of 1,000.
fn raw_warm(conn: &mut Connection, sql: &str, path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let now = SystemClock.now();
    let mut batch = Vec::with_capacity(1000);
    let mut n = 0;
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let url = value["proxy_url"].as_str().unwrap();
        let source = value["source"].as_str().unwrap_or("warmed");
        batch.push(CacheEntry::new(
            generate_cache_key(url),
            url,
            source,
            now,
            3600,
        ));
        if batch.len() == 1000 {
            raw_insert_batch(conn, sql, &batch);
            n += batch.len();
            batch.clear();
        }
    }
    raw_insert_batch(conn, sql, &batch);
    n + batch.len()
}

fn bench_warm(c: &mut Criterion) {
    const LINES: u64 = 10_000;
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("proxies.jsonl");
    let text: String = (0..LINES)
        .map(|i| {
            format!(
                "{{\"proxy_url\":\"{}\",\"source\":\"list\"}}\n",
                url(i as usize)
            )
        })
        .collect();
    std::fs::write(&path, text).unwrap();
    let sql = upsert_sql();
    let mut group = c.benchmark_group("warm_l3_10k");
    group.throughput(Throughput::Elements(LINES));
    group.sample_size(10);
    group.bench_function("pwcache", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let mut config = CacheConfig {
                    l2_cache_dir: dir.path().join("l2"),
                    l3_database_path: dir.path().join("l3.db"),
                    encryption_key: Some(KEY.into()),
                    ..CacheConfig::default()
                };
                config.l1.enabled = false;
                config.l2.enabled = false;
                (dir, CacheManager::open(config).unwrap())
            },
            |(dir, cache)| {
                assert_eq!(
                    cache.warm_from_file(&path, None).unwrap().counts.loaded,
                    LINES
                );
                (dir, cache)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("raw_rusqlite", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let conn = raw_connection(dir.path(), "l3.db");
                (dir, conn)
            },
            |(dir, mut conn)| {
                assert_eq!(raw_warm(&mut conn, &sql, &path), LINES as usize);
                (dir, conn)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_put_single,
    bench_put_batch,
    bench_get,
    bench_warm
);
criterion_main!(benches);
