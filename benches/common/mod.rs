//! Inputs shared by the benchmarks (and `examples/memory_per_entry.rs`): keys shaped like the
//! cache's own (16 hex digits), proxy URLs and entries, each determined by an index, so every
//! benchmark and its peers see the same data.
#![allow(dead_code)]

use std::path::Path;

use pwcache::{CacheConfig, CacheEntry, L2Backend, Timestamp};

/// The Fernet key of the benchmark caches.
pub const KEY: &str = "dGVzdC1rZXktZm9yLXB3Y2FjaGUtZml4dHVyZXMtMDE=";

/// A mixer (splitmix64) for keys that look like the cache's own (hex digests).
pub fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `i`-th key: 16 hex digits.
pub fn key(i: usize) -> String {
    format!("{:016x}", mix(i as u64))
}

/// The `i`-th proxy URL, `http://10.a.b.c:8080`.
pub fn url(i: usize) -> String {
    format!(
        "http://10.{}.{}.{}:8080",
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255
    )
}

/// The `i`-th entry: [`key`], [`url`], source `bench`, a TTL of an hour from `now`.
pub fn entry(i: usize, now: Timestamp) -> CacheEntry {
    CacheEntry::new(key(i), url(i), "bench", now, 3600)
}

/// The default configuration (durability normal, every tier on) with its files under `dir`, the
/// benchmark key and the given L2 backend.
pub fn config(dir: &Path, backend: L2Backend) -> CacheConfig {
    CacheConfig {
        l2_cache_dir: dir.join("l2"),
        l3_database_path: dir.join("l3.db"),
        encryption_key: Some(KEY.into()),
        l2_backend: backend,
        ..CacheConfig::default()
    }
}
