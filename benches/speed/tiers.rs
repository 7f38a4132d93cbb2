//! The SQLite L2 backend against the JSONL backend and L3, and the limits, per operation.
//!
//! - `put/<backend>`: a write-through put of a new key, default configuration (L1 of 1,000,
//!   L2 bounded at 5,000, L3), so L1 and L2 evict throughout.
//! - `l2_hit/<backend>`, `l3_hit`: a get served by that tier, with its promotion into L1 (a fresh
//!   handle per round with an unbounded, empty L1, over 5,000 stored keys; opening and closing,
//!   which writes the read counters back, untimed). `l3_hit` runs with L2 disabled.
//!
//! Every entry has a username and a password (encrypted in every tier).
//! - `miss/<backend>`: a get of a key no tier holds (L1, L2 and L3 asked).
//! - `raw_txn`: one IMMEDIATE rusqlite transaction upserting the same L3 row (the limit of one
//!   SQLite commit); `raw_append`: one `write(2)` of a record line (the limit of a JSONL append);
//!   `raw_select`: a rusqlite `SELECT` of the 21 entry columns by key.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use pwcache::{CacheConfig, CacheManager, EntryInput, L2Backend};
use rusqlite::{Connection, OpenFlags};

use crate::common::{config, url};
use crate::measure::{Case, alternate, print_ratio, print_times};

const STORED: usize = 5000;

/// The `i`-th entry, with credentials (encrypted in every tier, as users store them).
fn input(i: usize) -> EntryInput {
    EntryInput {
        username: Some(format!("user{i}")),
        password: Some(format!("p@ss:wörd/{i}")),
        ..EntryInput::with_url(url(i))
    }
}

fn backend_name(b: L2Backend) -> &'static str {
    match b {
        L2Backend::Jsonl => "jsonl",
        L2Backend::Sqlite => "sqlite",
    }
}

/// A store of `STORED` keys `k0..` and the configuration of a reader over it.
fn stored(dir: &Path, backend: L2Backend, l2: bool) -> CacheConfig {
    let mut cfg = config(dir, backend);
    cfg.l2.enabled = l2;
    let cache = CacheManager::open(cfg.clone()).unwrap();
    let items = (0..STORED).map(|i| (format!("k{i}"), input(i))).collect();
    cache.put_many(items).unwrap();
    drop(cache);
    cfg.l1.max_entries = None;
    cfg
}

fn raw_connection(path: &Path) -> Connection {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn
}

pub const RAW_UPSERT: &str = "INSERT INTO cache_entries (key, proxy_url, source, fetch_time, \
    last_accessed, access_count, ttl_seconds, expires_at, health_status, failure_count, \
    created_at, updated_at) VALUES (?1, ?2, 'bench', ?3, ?3, 0, 3600, ?4, 'unknown', 0, ?3, ?3) \
    ON CONFLICT(key) DO UPDATE SET proxy_url = excluded.proxy_url, \
    fetch_time = excluded.fetch_time, expires_at = excluded.expires_at, \
    updated_at = excluded.updated_at";

pub fn run(rounds: usize, quick: bool) {
    let ops = if quick { 500 } else { 2000 };
    let hits = if quick { 2000 } else { STORED };
    let dirs: Vec<tempfile::TempDir> = (0..8).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut cases = Vec::new();

    for (d, backend) in [L2Backend::Jsonl, L2Backend::Sqlite]
        .into_iter()
        .enumerate()
    {
        let cache = CacheManager::open(config(dirs[d].path(), backend)).unwrap();
        let mut next = 0usize;
        cases.push(Case::new(
            format!("put/{}", backend_name(backend)),
            move || {
                let started = Instant::now();
                for _ in 0..ops {
                    cache.put(&format!("k{next}"), input(next)).unwrap();
                    next += 1;
                }
                started.elapsed() / ops as u32
            },
        ));
    }
    for (d, backend, l2) in [
        (2, L2Backend::Jsonl, true),
        (3, L2Backend::Sqlite, true),
        (4, L2Backend::Jsonl, false),
    ] {
        let reader = stored(dirs[d].path(), backend, l2);
        let name = if l2 {
            format!("l2_hit/{}", backend_name(backend))
        } else {
            "l3_hit".to_string()
        };
        cases.push(Case::new(name, move || {
            let cache = CacheManager::open(reader.clone()).unwrap();
            let started = Instant::now();
            for i in 0..hits {
                std::hint::black_box(cache.get(&format!("k{i}")).unwrap().unwrap());
            }
            let got = started.elapsed();
            drop(cache);
            got / hits as u32
        }));
        if d != 4 {
            let cache = CacheManager::open(stored(dirs[d + 3].path(), backend, true)).unwrap();
            let mut next = 0usize;
            cases.push(Case::new(
                format!("miss/{}", backend_name(backend)),
                move || {
                    let started = Instant::now();
                    for _ in 0..ops {
                        assert!(cache.get(&format!("absent{next}")).unwrap().is_none());
                        next += 1;
                    }
                    started.elapsed() / ops as u32
                },
            ));
        }
    }
    // The limits, on files laid out by the tier (the L3 database of the `l3_hit` store).
    let l3 = dirs[4].path().join("l3.db");
    let conn = std::rc::Rc::new(raw_connection(&l3));
    let mut next = 0usize;
    let raw = conn.clone();
    cases.push(Case::new("raw_txn", move || {
        let started = Instant::now();
        for _ in 0..ops {
            raw.execute_batch("BEGIN IMMEDIATE").unwrap();
            let now = 1.8e9 + next as f64;
            raw.prepare_cached(RAW_UPSERT)
                .unwrap()
                .execute(rusqlite::params![
                    format!("raw{next}"),
                    url(next),
                    now,
                    now + 3600.0
                ])
                .unwrap();
            raw.execute_batch("COMMIT").unwrap();
            next += 1;
        }
        started.elapsed() / ops as u32
    }));
    let select = format!(
        "SELECT {} FROM cache_entries WHERE key = ?1",
        pwcache::tier::sqlite::ENTRY_COLUMNS.join(", ")
    );
    let raw = conn.clone();
    let record_use = "UPDATE cache_entries SET access_count = ?2, last_accessed = ?3, \
        evicted_from_l1 = 0, updated_at = ?3 WHERE key = ?1";
    let mut round = 0i64;
    cases.push(Case::new("raw_update", move || {
        round += 1;
        let started = Instant::now();
        raw.execute_batch("BEGIN IMMEDIATE").unwrap();
        {
            let mut stmt = raw.prepare_cached(record_use).unwrap();
            for i in 0..hits {
                stmt.execute(rusqlite::params![
                    format!("k{i}"),
                    round,
                    1.8e9 + round as f64
                ])
                .unwrap();
            }
        }
        raw.execute_batch("COMMIT").unwrap();
        started.elapsed() / hits as u32
    }));
    let mut i = 0usize;
    let raw = conn;
    cases.push(Case::new("raw_select", move || {
        let started = Instant::now();
        for _ in 0..hits {
            let mut stmt = raw.prepare_cached(&select).unwrap();
            let mut rows = stmt.query([format!("k{}", i % STORED)]).unwrap();
            let row = rows.next().unwrap().unwrap();
            std::hint::black_box((
                row.get::<_, String>(0).unwrap(),
                row.get::<_, String>(1).unwrap(),
            ));
            i += 1;
        }
        started.elapsed() / hits as u32
    }));
    // A record line of the JSONL store, appended as it is.
    let line = std::fs::read_dir(dirs[2].path().join("l2"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .find_map(|e| {
            std::fs::read_to_string(e.path())
                .ok()
                .and_then(|t| t.lines().next().map(|l| format!("{l}\n")))
        })
        .expect("a JSONL shard with a record");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dirs[7].path().join("append.jsonl"))
        .unwrap();
    cases.push(Case::new("raw_append", move || {
        let started = Instant::now();
        for _ in 0..ops {
            file.write_all(line.as_bytes()).unwrap();
        }
        started.elapsed() / ops as u32
    }));

    let results = alternate("tiers", "tiers: µs per operation", rounds, &mut cases);
    print_times(&results);
    println!();
    print_ratio(&results, "l2_hit/sqlite", "l3_hit", Some(1.3));
    print_ratio(&results, "put/sqlite", "put/jsonl", Some(1.3));
    print_ratio(&results, "miss/sqlite", "miss/jsonl", Some(1.3));
    print_ratio(&results, "l2_hit/sqlite", "l2_hit/jsonl", None);
    print_ratio(&results, "l3_hit", "raw_select", None);
    print_ratio(&results, "put/jsonl", "raw_txn", None);
    print_ratio(&results, "put/sqlite", "raw_txn", None);
    print_ratio(&results, "raw_append", "raw_txn", None);
}
