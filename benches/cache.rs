//! Criterion benchmarks of the engine on the default configuration (JSONL L2, durability
//! normal): write-through put, get from each tier, a miss, `invalidate_by_health`, warm of
//! 10,000 and 100,000 lines and export of 10,000 entries. Run with `cargo bench --bench cache`;
//! each figure is per operation (the throughput is per entry for warm and export).

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pwcache::{CacheManager, EntryInput, L2Backend};

mod common;

use common::{config, url};

fn bench_put(c: &mut Criterion) {
    let mut group = c.benchmark_group("put");
    group.throughput(Throughput::Elements(1));
    for (name, backend) in [("jsonl", L2Backend::Jsonl), ("sqlite", L2Backend::Sqlite)] {
        let dir = tempfile::tempdir().unwrap();
        let cache = CacheManager::open(config(dir.path(), backend)).unwrap();
        let next = AtomicUsize::new(0);
        group.bench_function(format!("write_through_{name}"), |b| {
            b.iter(|| {
                let i = next.fetch_add(1, Ordering::Relaxed);
                cache
                    .put(&format!("k{i}"), EntryInput::with_url(url(i)))
                    .unwrap();
            })
        });
    }
    group.finish();
}

fn bench_get(c: &mut Criterion) {
    let mut group = c.benchmark_group("get");
    group.throughput(Throughput::Elements(1));
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheManager::open(config(dir.path(), L2Backend::Jsonl)).unwrap();
    for i in 0..1000 {
        cache
            .put(&format!("k{i}"), EntryInput::with_url(url(i)))
            .unwrap();
    }
    let n = AtomicUsize::new(0);
    group.bench_function("l1_hit", |b| {
        b.iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed) % 1000;
            black_box(cache.get(&format!("k{i}")).unwrap().unwrap());
        })
    });
    group.bench_function("miss", |b| {
        b.iter(|| black_box(cache.get("absent").unwrap()));
    });
    drop(cache);

    // Lower-tier hits: 5,000 keys in L2 and L3 (or in L3 alone, L2 disabled), read through a
    // handle whose L1 starts empty and is unbounded, each key once per handle, so every timed get
    // is a hit of that tier with its promotion into L1. Opening a handle is not
    // timed; closing it (the write-back of the read counters) is.
    for (name, l2) in [("l2_hit", true), ("l3_hit", false)] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path(), L2Backend::Jsonl);
        cfg.l2.enabled = l2;
        {
            let cache = CacheManager::open(cfg.clone()).unwrap();
            let items = (0..5000)
                .map(|i| (format!("k{i}"), EntryInput::with_url(url(i))))
                .collect();
            cache.put_many(items).unwrap();
        }
        let mut reader = cfg.clone();
        reader.l1.max_entries = None;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters as usize;
                while left > 0 {
                    let cache = CacheManager::open(reader.clone()).unwrap();
                    let count = left.min(5000);
                    let started = Instant::now();
                    for i in 0..count {
                        black_box(cache.get(&format!("k{i}")).unwrap().unwrap());
                    }
                    drop(cache);
                    total += started.elapsed();
                    left -= count;
                }
                total
            })
        });
    }
    group.finish();
}

fn warm_file(dir: &Path, lines: usize) -> std::path::PathBuf {
    let path = dir.join(format!("proxies-{lines}.jsonl"));
    let mut text = String::new();
    for i in 0..lines {
        text.push_str(&format!(
            "{{\"proxy_url\":\"{}\",\"source\":\"list\"}}\n",
            url(i)
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn bench_warm(c: &mut Criterion) {
    let mut group = c.benchmark_group("warm");
    group.sample_size(10);
    let files = tempfile::tempdir().unwrap();
    for (name, lines) in [("jsonl_10k_lines", 10_000), ("jsonl_100k_lines", 100_000)] {
        let path = warm_file(files.path(), lines);
        group.throughput(Throughput::Elements(lines as u64));
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().unwrap();
                    let cache = CacheManager::open(config(dir.path(), L2Backend::Jsonl)).unwrap();
                    (dir, cache)
                },
                |(dir, cache)| {
                    assert_eq!(
                        cache.warm_from_file(&path, None).unwrap().counts.loaded,
                        lines as u64
                    );
                    (dir, cache)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// A failed health check: one that only counts it (threshold not reached), and one that removes
/// the key from every tier (threshold 1). Both on keys held in L1, L2 and L3.
fn bench_invalidate(c: &mut Criterion) {
    let mut group = c.benchmark_group("invalidate_by_health");
    group.throughput(Throughput::Elements(1));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), L2Backend::Jsonl);
    cfg.failure_threshold = i64::MAX;
    let cache = CacheManager::open(cfg).unwrap();
    let items = (0..1000)
        .map(|i| (format!("k{i}"), EntryInput::with_url(url(i))))
        .collect();
    cache.put_many(items).unwrap();
    let n = AtomicUsize::new(0);
    group.bench_function("record_failure", |b| {
        b.iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed) % 1000;
            black_box(cache.invalidate_by_health(&format!("k{i}")).unwrap())
        })
    });
    drop(cache);

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), L2Backend::Jsonl);
    cfg.failure_threshold = 1;
    let cache = CacheManager::open(cfg).unwrap();
    let next = AtomicUsize::new(0);
    group.bench_function("remove", |b| {
        b.iter_batched(
            || {
                // Untimed: the key is put (write-through) before it is invalidated.
                let i = next.fetch_add(1, Ordering::Relaxed);
                let key = format!("k{i}");
                cache.put(&key, EntryInput::with_url(url(i))).unwrap();
                key
            },
            |key| assert!(cache.invalidate_by_health(&key).unwrap()),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// Export of 10,000 entries (in L1, L2 and L3 of the default configuration) to a JSONL file.
fn bench_export(c: &mut Criterion) {
    let mut group = c.benchmark_group("export");
    group.sample_size(10);
    group.throughput(Throughput::Elements(10_000));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), L2Backend::Jsonl);
    cfg.l2.max_entries = None;
    let cache = CacheManager::open(cfg).unwrap();
    let items = (0..10_000)
        .map(|i| (format!("k{i}"), EntryInput::with_url(url(i))))
        .collect();
    cache.put_many(items).unwrap();
    let out = dir.path().join("export.jsonl");
    group.bench_function("jsonl_10k_entries", |b| {
        b.iter(|| {
            let counts = cache.export_to_file(&out, false).unwrap();
            assert_eq!(counts.exported, 10_000);
            black_box(counts)
        })
    });
    group.finish();
}

/// The JSON that `pw_cache_get` returns: most of the cost of an L1 hit from C.
fn bench_entry_json(c: &mut Criterion) {
    let mut group = c.benchmark_group("json");
    group.throughput(Throughput::Elements(1));
    let now = pwcache::Timestamp::parse("2026-11-24T01:45:44.854045+00:00").unwrap();
    let mut entry = pwcache::CacheEntry::new("84d7754142f9018a", url(1), "user", now, 3600);
    entry.username = pwcache::Secret::new("user0");
    entry.password = pwcache::Secret::new("p@ss:wörd/0");
    group.bench_function("entry_to_json", |b| {
        b.iter(|| black_box(entry.to_json(pwcache::Credentials::Plain)))
    });
    group.bench_function("timestamp_to_rfc3339", |b| {
        b.iter(|| black_box(now.to_rfc3339()))
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_put,
    bench_get,
    bench_invalidate,
    bench_warm,
    bench_export,
    bench_entry_json
);
criterion_main!(benches);
