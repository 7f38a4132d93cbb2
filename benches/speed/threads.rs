//! Writers on one handle: puts of new keys and failed health reports (below the threshold) from
//! 1, 2, 4, 8 and 64 threads, default configuration (JSONL L2 and L3) and with the SQLite L2
//! backend. Each figure is wall time over all threads' operations (the inverse of the combined
//! throughput); the ratios are throughput against one thread.
//!
//! The limit of grouping commits: `raw_txn/rows1` and `raw_txn/rows8`, one rusqlite IMMEDIATE
//! transaction per row against one per 8 rows (the L3 layout, time per row), on one thread.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pwcache::{CacheConfig, CacheManager, EntryInput, L2Backend};

use crate::common::{KEY, url};
use crate::measure::{Case, alternate, of, print_times};
use crate::tiers::RAW_UPSERT;

const THREADS: [usize; 5] = [1, 2, 4, 8, 64];

fn config(dir: &Path, backend: L2Backend) -> CacheConfig {
    let mut cfg = CacheConfig {
        l2_cache_dir: dir.join("l2"),
        l3_database_path: dir.join("l3.db"),
        encryption_key: Some(KEY.into()),
        l2_backend: backend,
        ..CacheConfig::default()
    };
    cfg.failure_threshold = i64::MAX;
    cfg
}

/// Runs `ops` operations split over `threads` threads, `op(i)` for distinct `i`; the wall time
/// per operation.
fn spread(threads: usize, ops: usize, op: &(dyn Fn(usize) + Sync)) -> Duration {
    let next = AtomicUsize::new(0);
    let per = ops.div_ceil(threads);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per {
                    op(next.fetch_add(1, Ordering::Relaxed));
                }
            });
        }
    });
    started.elapsed() / (per * threads) as u32
}

pub fn run(rounds: usize, quick: bool) {
    let ops = if quick { 512 } else { 2048 };
    let health_keys = 1000;
    let mut dirs = Vec::new();
    let mut cases = Vec::new();
    for backend in [L2Backend::Jsonl, L2Backend::Sqlite] {
        let b = match backend {
            L2Backend::Jsonl => "jsonl",
            L2Backend::Sqlite => "sqlite",
        };
        let dir = tempfile::tempdir().unwrap();
        let cache = std::sync::Arc::new(CacheManager::open(config(dir.path(), backend)).unwrap());
        let items = (0..health_keys)
            .map(|i| (format!("h{i}"), EntryInput::with_url(url(i))))
            .collect();
        cache.put_many(items).unwrap();
        dirs.push(dir);
        let base = std::sync::Arc::new(AtomicUsize::new(0));
        for t in THREADS {
            let (cache, base) = (cache.clone(), base.clone());
            cases.push(Case::new(format!("put/{b}/t{t}"), move || {
                let start = base.fetch_add(ops * 2, Ordering::Relaxed);
                spread(t, ops, &|i| {
                    let i = start + i;
                    cache
                        .put(&format!("k{i}"), EntryInput::with_url(url(i)))
                        .unwrap();
                })
            }));
        }
        for t in THREADS {
            let cache = cache.clone();
            cases.push(Case::new(format!("health/{b}/t{t}"), move || {
                spread(t, ops, &|i| {
                    cache
                        .invalidate_by_health(&format!("h{}", i % health_keys))
                        .unwrap();
                })
            }));
        }
    }
    // The limit: one transaction per row against one per 8 rows, in a file laid out by the tier.
    let raw_dir = tempfile::tempdir().unwrap();
    drop(CacheManager::open(config(raw_dir.path(), L2Backend::Jsonl)).unwrap());
    let conn = std::rc::Rc::new(rusqlite::Connection::open(raw_dir.path().join("l3.db")).unwrap());
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    let raw_next = std::rc::Rc::new(std::cell::Cell::new(0usize));
    for rows in [1usize, 8] {
        let (conn, raw_next) = (conn.clone(), raw_next.clone());
        cases.push(Case::new(format!("raw_txn/rows{rows}"), move || {
            let started = Instant::now();
            for _ in 0..ops / rows {
                conn.execute_batch("BEGIN IMMEDIATE").unwrap();
                for _ in 0..rows {
                    let i = raw_next.get();
                    raw_next.set(i + 1);
                    let now = 1.8e9 + i as f64;
                    conn.prepare_cached(RAW_UPSERT)
                        .unwrap()
                        .execute(rusqlite::params![
                            format!("raw{i}"),
                            url(i),
                            now,
                            now + 3600.0
                        ])
                        .unwrap();
                }
                conn.execute_batch("COMMIT").unwrap();
            }
            started.elapsed() / (ops / rows * rows) as u32
        }));
    }
    let results = alternate(
        "threads",
        "threads: µs per operation (all threads)",
        rounds,
        &mut cases,
    );
    print_times(&results);
    println!("\nthroughput against one thread (target for 8 threads: ≥ 3×):\n");
    println!(
        "| operation | {} |",
        THREADS.map(|t| format!("{t} threads")).join(" | ")
    );
    println!("|---|{}", "--:|".repeat(THREADS.len()));
    for op in ["put/jsonl", "put/sqlite", "health/jsonl", "health/sqlite"] {
        if !results.iter().any(|(n, _)| n == &format!("{op}/t1")) {
            continue;
        }
        let one = of(&results, &format!("{op}/t1")).as_secs_f64();
        let cells: Vec<String> = THREADS
            .iter()
            .map(|t| {
                format!(
                    "{:.2}×",
                    one / of(&results, &format!("{op}/t{t}")).as_secs_f64()
                )
            })
            .collect();
        println!("| {op} | {} |", cells.join(" | "));
    }
    println!("\nthe limit of grouping 8 commits into one:\n");
    crate::measure::print_ratio(&results, "raw_txn/rows1", "raw_txn/rows8", None);
}
