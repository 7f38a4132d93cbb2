//! Per-operation cost of a get as the cache grows: 1k, 10k, 100k and 1M entries (1M is left out
//! with `PWCACHE_BENCH_QUICK=1`). Keys are read in a shuffled order over all N keys, so a
//! larger cache also means fewer CPU-cache hits, as in real use.
//!
//! - `scaling_l1_get/N`: `MemoryTier` of capacity N holding N entries.
//! - `scaling_manager_get_l1_unbounded/N`: `CacheManager::get` with an unbounded L1 (L2 and L3
//!   off) holding N entries: every get is an L1 hit through the manager.
//! - `scaling_manager_get_default/N`: the default configuration (L1 1,000, JSONL L2 5,000, L3
//!   unbounded) filled with N entries, then reopened: each get reads a key not read since the
//!   handle was opened, so it is an L2 or L3 hit with its promotion (and the write-back of the
//!   L1 victims it causes). A handle serves 2,000 gets; closing it (which writes back the
//!   counters of the entries still in L1) is timed too, opening it is not.
//!
//! Resident memory per entry is measured by `cargo run --release --example memory_per_entry`.
//! `cargo bench --bench scaling`

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pwcache::config::EvictionPolicy;
use pwcache::tier::memory::{MemoryTier, Read};
use pwcache::{CacheConfig, CacheManager, Clock, EntryInput, SystemClock};

mod common;

use common::{KEY, entry, key, url};

fn sizes() -> Vec<usize> {
    let quick = std::env::var("PWCACHE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let mut sizes = vec![1_000, 10_000, 100_000];
    if !quick {
        sizes.push(1_000_000);
    }
    sizes
}

/// The N keys in a shuffled order (7919 is prime and divides no N used here).
fn shuffled_keys(n: usize) -> Vec<String> {
    (0..n).map(|i| key(i * 7919 % n)).collect()
}

/// Puts N entries through the manager in batches of 10,000.
fn fill(cache: &CacheManager, n: usize) {
    for start in (0..n).step_by(10_000) {
        let items = (start..(start + 10_000).min(n))
            .map(|i| (key(i), EntryInput::with_url(url(i))))
            .collect();
        cache.put_many(items).unwrap();
    }
}

fn config(dir: &Path) -> CacheConfig {
    CacheConfig {
        l2_cache_dir: dir.join("l2"),
        l3_database_path: dir.join("l3.db"),
        encryption_key: Some(KEY.into()),
        ..CacheConfig::default()
    }
}

/// Fewer samples for the larger sizes, so the whole run stays within minutes.
fn configure(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    n: usize,
) {
    if n >= 1_000_000 {
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(5));
    } else {
        group.sample_size(30);
    }
}

fn bench_l1(c: &mut Criterion) {
    let mut group = c.benchmark_group("scaling_l1_get");
    group.throughput(Throughput::Elements(1));
    let now = SystemClock.now();
    for n in sizes() {
        configure(&mut group, n);
        let l1 = MemoryTier::new(Some(n as u64), EvictionPolicy::Lru);
        for i in 0..n {
            l1.insert(entry(i, now), false);
        }
        let keys = shuffled_keys(n);
        let mut i = 0;
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                i = (i + 1) % n;
                match l1.read(&keys[i], now) {
                    Read::Hit(entry) => black_box(entry),
                    _ => unreachable!("every key is held"),
                }
            })
        });
    }
    group.finish();
}

fn bench_manager_l1(c: &mut Criterion) {
    let mut group = c.benchmark_group("scaling_manager_get_l1_unbounded");
    group.throughput(Throughput::Elements(1));
    for n in sizes() {
        configure(&mut group, n);
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.l1.max_entries = None;
        cfg.l2.enabled = false;
        cfg.l3.enabled = false;
        let cache = CacheManager::open(cfg).unwrap();
        fill(&cache, n);
        let keys = shuffled_keys(n);
        let mut i = 0;
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                i = (i + 1) % n;
                black_box(cache.get(&keys[i]).unwrap().unwrap())
            })
        });
    }
    group.finish();
}

fn bench_manager_default(c: &mut Criterion) {
    const PER_HANDLE: usize = 2_000;
    let mut group = c.benchmark_group("scaling_manager_get_default");
    group.throughput(Throughput::Elements(1));
    for n in sizes() {
        configure(&mut group, n);
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        {
            let started = Instant::now();
            let cache = CacheManager::open(cfg.clone()).unwrap();
            fill(&cache, n);
            eprintln!(
                "scaling: filled the default configuration with {n} entries in {:?}",
                started.elapsed()
            );
        }
        let keys = shuffled_keys(n);
        let mut next = 0usize;
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters as usize;
                while left > 0 {
                    let cache = CacheManager::open(cfg.clone()).unwrap();
                    let count = left.min(PER_HANDLE).min(n);
                    let started = Instant::now();
                    for _ in 0..count {
                        black_box(cache.get(&keys[next]).unwrap().unwrap());
                        next = (next + 1) % n;
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

criterion_group!(benches, bench_l1, bench_manager_l1, bench_manager_default);
criterion_main!(benches);
