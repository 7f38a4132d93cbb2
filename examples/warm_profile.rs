//! Where a warm of 10,000 JSONL lines spends its time, tier by tier.
//! `cargo run --release --example warm_profile`.

use std::time::Instant;

use pwcache::{CacheConfig, CacheManager};

fn main() {
    let files = tempfile::tempdir().expect("a temp dir");
    let path = files.path().join("proxies.jsonl");
    let mut text = String::new();
    for i in 0..10_000 {
        text.push_str(&format!(
            "{{\"proxy_url\":\"http://10.0.{}.{}:8080\",\"source\":\"list\"}}\n",
            i / 250,
            i % 250
        ));
    }
    std::fs::write(&path, text).expect("the file is written");
    let cases = [
        ("L1 only", false, false),
        ("L1 + JSONL L2", true, false),
        ("L1 + L3", false, true),
        ("default", true, true),
    ];
    for (name, l2, l3) in cases {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut config = CacheConfig {
            l2_cache_dir: dir.path().join("l2"),
            l3_database_path: dir.path().join("l3.db"),
            ..CacheConfig::default()
        };
        config.l2.enabled = l2;
        config.l3.enabled = l3;
        let cache = CacheManager::open(config).expect("the cache opens");
        let started = Instant::now();
        let counts = cache.warm_from_file(&path, None).expect("warm").counts;
        println!(
            "{name:14} {:7.1} ms for {} lines",
            started.elapsed().as_secs_f64() * 1e3,
            counts.loaded
        );
    }
}
