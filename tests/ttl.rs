//! The TTL manager: stopped when new, sweeps every tier in the background, stops at once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use pwcache::{CacheManager, Clock, EntryInput, ErrorKind, ManualClock, Timestamp, TtlManager};

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

/// The longest cleanup interval accepted: 365 days.
const LONGEST_INTERVAL: f64 = 31_536_000.0;

#[test]
fn the_longest_interval_is_a_year() {
    assert_eq!(pwcache::ttl::MAX_CLEANUP_INTERVAL_SECONDS, LONGEST_INTERVAL);
}

/// Intervals past the bound: some used to be accepted and then overflowed the sweeper's clock
/// arithmetic (`1e19`, `9.3e18`, `2^63`), others were refused already (`1e300`).
const TOO_LONG: [(f64, &str); 6] = [
    (1e19, "10000000000000000000"),
    (9.3e18, "9300000000000000000"),
    (9_223_372_036_854_775_808.0, "9223372036854775808"),
    (1e300, "1e300"),
    (LONGEST_INTERVAL + 1.0, "31536001"),
    (LONGEST_INTERVAL + 0.001, "31536000.001"),
];

#[test]
fn intervals_past_a_year_are_refused_with_the_bound_named() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheManager::open(config_in(dir.path())).unwrap();
    for (seconds, json) in TOO_LONG {
        let err = TtlManager::new(&cache, seconds).err().unwrap_or_else(|| {
            panic!("TtlManager::new accepted {json} s");
        });
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{json}");
        assert!(err.to_string().contains("31536000"), "{json}: {err}");

        let text =
            format!(r#"{{"enable_background_cleanup":true,"cleanup_interval_seconds":{json}}}"#);
        let err = pwcache::CacheConfig::from_json(&text)
            .err()
            .unwrap_or_else(|| panic!("the config accepted {json} s"));
        assert_eq!(err.kind(), ErrorKind::InvalidJson, "{json}");
        assert!(
            err.to_string().contains("cleanup_interval_seconds"),
            "{json}: {err}"
        );
        assert!(err.to_string().contains("31536000"), "{json}: {err}");
    }
}

#[test]
fn the_longest_interval_is_accepted_and_its_sweeper_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheManager::open(config_in(dir.path())).unwrap();
    let ttl = TtlManager::new(&cache, LONGEST_INTERVAL).unwrap();
    ttl.start();
    std::thread::sleep(Duration::from_millis(100));
    assert!(ttl.is_running(), "waiting out a year does not overflow");
    ttl.stop();

    let mut config = config_in(dir.path());
    config.enable_background_cleanup = true;
    config.cleanup_interval_seconds = LONGEST_INTERVAL;
    drop(cache);
    let cache = CacheManager::open(config).unwrap();
    short_lived(&cache, "a");
    drop(cache);
}

/// A clock that panics while told to, and counts how often it is read.
struct PanickingClock {
    inner: ManualClock,
    panicking: AtomicBool,
    reads: AtomicU64,
}

impl Clock for PanickingClock {
    fn now(&self) -> Timestamp {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.panicking.load(Ordering::SeqCst) {
            panic!("the test clock was told to panic");
        }
        self.inner.now()
    }
}

#[test]
fn a_sweep_that_panics_does_not_end_the_sweeper() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(PanickingClock {
        inner: ManualClock::new(t0()),
        panicking: AtomicBool::new(false),
        reads: AtomicU64::new(0),
    });
    let cache = CacheManager::open_with_clock(config_in(dir.path()), clock.clone()).unwrap();
    short_lived(&cache, "a");
    let ttl = TtlManager::new(&cache, 0.02).unwrap();
    clock.panicking.store(true, Ordering::SeqCst);
    let before = clock.reads.load(Ordering::SeqCst);
    ttl.start();
    assert!(
        wait_for(|| clock.reads.load(Ordering::SeqCst) >= before + 3),
        "the sweeper goes on sweeping after a sweep panicked"
    );
    assert!(ttl.is_running());
    clock.panicking.store(false, Ordering::SeqCst);
    clock.inner.set(t0().plus_seconds(10));
    assert!(
        wait_for(|| cache.statistics().l3_stats.evictions_ttl == 1),
        "and sweeps again once sweeping works"
    );
    assert!(ttl.is_running());
}
