//! Criterion benchmarks of the engine on the default configuration (JSONL L2, durability
//! normal): put, get from each tier, a miss, and warm of 10,000 lines. Run with
//! `cargo bench --bench cache`; each figure is per operation (or per warm).

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pwcache::{CacheConfig, CacheManager, EntryInput, L2Backend};

fn config(dir: &Path, backend: L2Backend) -> CacheConfig {
    CacheConfig {
        l2_cache_dir: dir.join("l2"),
        l3_database_path: dir.join("l3.db"),
        encryption_key: Some("dGVzdC1rZXktZm9yLXB3Y2FjaGUtZml4dHVyZXMtMDE=".into()),
        l2_backend: backend,
        ..CacheConfig::default()
    }
}

fn url(i: usize) -> String {
    format!(
        "http://10.{}.{}.{}:8080",
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255
    )
}

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

    // Lower-tier hits: a handle without L1 (each read is served, and recorded, by that tier)
    // would measure a write too; instead, read each key once through a fresh handle whose L1
    // does not hold it. 5,000 keys in L2 and L3; the handle is rebuilt when the keys run out.
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
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let mut reader = cfg.clone();
                    reader.l1.max_entries = None;
                    CacheManager::open(reader).unwrap()
                },
                |cache| {
                    for i in 0..1000 {
                        black_box(cache.get(&format!("k{}", i * 5)).unwrap().unwrap());
                    }
                    cache
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn bench_warm(c: &mut Criterion) {
    let mut group = c.benchmark_group("warm");
    group.sample_size(10);
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("proxies.jsonl");
    let mut text = String::new();
    for i in 0..10_000 {
        text.push_str(&format!(
            "{{\"proxy_url\":\"{}\",\"source\":\"list\"}}\n",
            url(i)
        ));
    }
    std::fs::write(&path, text).unwrap();
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("jsonl_10k_lines", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let cache = CacheManager::open(config(dir.path(), L2Backend::Jsonl)).unwrap();
                (dir, cache)
            },
            |(dir, cache)| {
                assert_eq!(cache.warm_from_file(&path, None).unwrap().loaded, 10_000);
                (dir, cache)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_put, bench_get, bench_warm);
criterion_main!(benches);
