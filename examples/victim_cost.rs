use pwcache::{CacheConfig, CacheManager, EntryInput};
use std::time::Instant;
fn main() {
    for (name, l1max) in [
        ("L3, no victims", None),
        ("L3, a victim per put", Some(1000)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut c = CacheConfig {
            l2_cache_dir: dir.path().join("l2"),
            l3_database_path: dir.path().join("l3.db"),
            ..Default::default()
        };
        c.l2.enabled = false;
        c.l1.max_entries = l1max;
        let cache = CacheManager::open(c).unwrap();
        let n = 20000;
        let t = Instant::now();
        for i in 0..n {
            cache
                .put(
                    &format!("k{i}"),
                    EntryInput::with_url(format!("http://h{i}:1")),
                )
                .unwrap();
        }
        println!(
            "{name:24} {:6.1} µs/put",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}
