//! The TTL manager: stopped when new, sweeps every tier in the background, stops at once.

mod common;

use std::time::{Duration, Instant};

use common::*;
use pwcache::{CacheManager, EntryInput, ErrorKind, TtlManager};

fn short_lived(cache: &CacheManager, key: &str) {
    let mut e = EntryInput::with_url("http://10.0.0.1:1");
    e.ttl_seconds = Some(1);
    cache.put(key, e).unwrap();
}

fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn sweeps_every_tier_and_counts_ttl_evictions() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheManager::open(config_in(dir.path())).unwrap();
    short_lived(&cache, "a");
    cache.put("b", input(2)).unwrap();
    let ttl = TtlManager::new(&cache, 0.05).unwrap();
    assert!(!ttl.is_running(), "a new manager is stopped");
    ttl.start();
    ttl.start();
    assert!(ttl.is_running());
    assert!(
        wait_for(|| cache.statistics().l3_stats.evictions_ttl == 1),
        "swept"
    );
    let s = cache.statistics();
    assert_eq!((s.l1_stats.evictions_ttl, s.l2_stats.evictions_ttl), (1, 1));
    assert_eq!(s.l3_stats.current_size, 1, "the live entry stays");
    ttl.stop();
    ttl.stop();
    assert!(!ttl.is_running());
    short_lived(&cache, "c");
    ttl.start();
    assert!(
        wait_for(|| cache.statistics().l3_stats.evictions_ttl == 2),
        "start after stop runs again"
    );
}

#[test]
fn stop_returns_at_once_without_sleeping_out_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheManager::open(config_in(dir.path())).unwrap();
    let ttl = TtlManager::new(&cache, 3600.0).unwrap();
    ttl.start();
    std::thread::sleep(Duration::from_millis(50));
    let asked = Instant::now();
    ttl.stop();
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "stop woke the thread"
    );
    assert!(!ttl.is_running());
}

#[test]
fn keeps_working_after_the_cache_handle_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheManager::open(config_in(dir.path())).unwrap();
    short_lived(&cache, "a");
    let ttl = TtlManager::new(&cache, 0.05).unwrap();
    drop(cache);
    ttl.start();
    std::thread::sleep(Duration::from_millis(1300));
    ttl.stop();
    drop(ttl);
    let mut no_l1 = config_in(dir.path());
    no_l1.l1.enabled = false;
    let reopened = CacheManager::open(no_l1).unwrap();
    assert_eq!(
        reopened.statistics().l3_stats.current_size,
        0,
        "swept after the handle went"
    );
}

#[test]
fn background_cleanup_from_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    config.enable_background_cleanup = true;
    config.cleanup_interval_seconds = 0.05;
    let cache = CacheManager::open(config).unwrap();
    short_lived(&cache, "a");
    assert!(wait_for(|| cache.statistics().l3_stats.current_size == 0));
}

#[test]
fn bad_intervals_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheManager::open(config_in(dir.path())).unwrap();
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = TtlManager::new(&cache, bad).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
    }
}
