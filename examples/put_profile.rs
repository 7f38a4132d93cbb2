//! Where a put's time goes: 20,000 puts through each combination of tiers, as µs per put.
//! `cargo run --release --example put_profile [case [n]]`: every case, or the ones whose name
//! contains `case`, with `n` puts each (default 20,000) (for a profiler: `perf record ... put_profile default`).

use std::time::Instant;

use pwcache::{CacheConfig, CacheManager, EntryInput, L2Backend};

fn main() {
    let cases = [
        ("L1 only", false, false, L2Backend::Jsonl),
        ("L1 + JSONL L2", true, false, L2Backend::Jsonl),
        ("L1 + SQLite L2", true, false, L2Backend::Sqlite),
        ("L1 + L3", false, true, L2Backend::Jsonl),
        ("default", true, true, L2Backend::Jsonl),
    ];
    let only = std::env::args().nth(1).unwrap_or_default();
    let n: usize = std::env::args()
        .nth(2)
        .map(|n| n.parse().expect("n is a number of puts"))
        .unwrap_or(20_000);
    for (name, l2, l3, backend) in cases {
        if !name.contains(only.as_str()) {
            continue;
        }
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut config = CacheConfig {
            l2_cache_dir: dir.path().join("l2"),
            l3_database_path: dir.path().join("l3.db"),
            encryption_key: Some("dGVzdC1rZXktZm9yLXB3Y2FjaGUtZml4dHVyZXMtMDE=".into()),
            l2_backend: backend,
            ..CacheConfig::default()
        };
        config.l2.enabled = l2;
        config.l3.enabled = l3;
        let cache = CacheManager::open(config).expect("the cache opens");
        let started = Instant::now();
        for i in 0..n {
            let input = EntryInput::with_url(format!("http://10.0.{}.{}:1", i / 250, i % 250));
            cache.put(&format!("k{i}"), input).expect("put");
        }
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "{name:16} {:8.1} µs/put {:9.0} puts/s",
            elapsed * 1e6 / n as f64,
            n as f64 / elapsed
        );
    }
}
