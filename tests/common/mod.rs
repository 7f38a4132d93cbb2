//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod tiers;

use std::path::Path;
use std::sync::Arc;

use pwcache::{CacheConfig, CacheManager, EntryInput, L2Backend, ManualClock, Timestamp};

pub const KEY: &str = "dGVzdC1rZXktZm9yLXB3Y2FjaGUtZml4dHVyZXMtMDE=";

/// A configuration whose files all live under `dir`, with a fixed encryption key.
pub fn config_in(dir: &Path) -> CacheConfig {
    CacheConfig {
        l2_cache_dir: dir.join("l2"),
        l3_database_path: dir.join("db").join("l3.db"),
        encryption_key: Some(KEY.to_string()),
        ..CacheConfig::default()
    }
}

pub fn sqlite_l2(mut config: CacheConfig) -> CacheConfig {
    config.l2_backend = L2Backend::Sqlite;
    config
}

/// `config` with L2 alone (`l2 = true`) or L3 alone enabled: to read what one lower tier holds.
pub fn one_lower_tier(config: &CacheConfig, l2: bool) -> CacheConfig {
    let mut one = config.clone();
    one.l1.enabled = false;
    one.l2.enabled = l2;
    one.l3.enabled = !l2;
    one
}

pub fn t0() -> Timestamp {
    Timestamp::parse("2026-11-24T00:00:00Z").unwrap()
}

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(t0()))
}

pub fn open(config: CacheConfig, clock: &Arc<ManualClock>) -> CacheManager {
    CacheManager::open_with_clock(config, clock.clone()).unwrap()
}

pub fn url(i: usize) -> String {
    format!("http://10.0.{}.{}:8080", i / 250, i % 250)
}

pub fn input(i: usize) -> EntryInput {
    EntryInput::with_url(url(i))
}

pub fn key(i: usize) -> String {
    format!("k{i}")
}

/// Checks the output of this test binary re-run as a child process on one test (`--exact NAME
/// --nocapture`): prints what the child printed, and fails unless it passed that one test.
/// `what` names the scenario in the messages.
pub fn assert_child_test_passed(out: &std::process::Output, what: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("child ({what}):\n{stdout}{stderr}");
    assert!(
        out.status.success(),
        "{what} failed in its child: {}",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran {what}: {stdout}"
    );
}

/// The URL `cache` serves under `key`, if any.
pub fn url_of(cache: &CacheManager, key: &str) -> Option<String> {
    cache.get(key).unwrap().map(|e| e.proxy_url)
}

/// Polls `cond` every millisecond for at most `limit`; the time it took to hold.
pub fn time_until(
    limit: std::time::Duration,
    mut cond: impl FnMut() -> bool,
) -> Option<std::time::Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return Some(start.elapsed());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    None
}
