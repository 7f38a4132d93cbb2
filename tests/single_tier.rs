//! Operations on one tier alone (`CacheManager::tier_*`), through the Rust API, on real tiers.

mod common;

use common::*;
use pwcache::{CacheManager, Clock, ErrorKind, TierLevel};

const TIERS: [TierLevel; 3] = [TierLevel::L1, TierLevel::L2, TierLevel::L3];

fn holders(cache: &CacheManager, key: &str) -> Vec<TierLevel> {
    TIERS
        .into_iter()
        .filter(|&t| cache.tier_get(t, key).unwrap().is_some())
        .collect()
}

#[test]
fn a_put_into_one_tier_stays_there_until_a_get_promotes_it() {
    for config in [config_in, |d: &std::path::Path| sqlite_l2(config_in(d))] {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        let cache = open(config(dir.path()), &clock);
        cache.tier_put(TierLevel::L3, "a", input(1)).unwrap();
        assert_eq!(holders(&cache, "a"), [TierLevel::L3]);
        let s = cache.statistics();
        assert_eq!(s.l3_stats.current_size, 1);
        assert_eq!(
            s.l1_stats.hits + s.l1_stats.misses + s.l3_stats.hits + s.l3_stats.misses,
            0,
            "a tier get counts no read"
        );
        let e = cache.get("a").unwrap().unwrap();
        assert_eq!(e.access_count, 1);
        assert_eq!(
            holders(&cache, "a"),
            TIERS,
            "the get promoted it into L1 and L2"
        );
        assert_eq!(cache.statistics().promotions, 2);
    }
}

#[test]
fn a_tier_get_is_a_peek_and_returns_expired_entries() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let cache = open(config_in(dir.path()), &clock);
    let mut expiring = input(1);
    expiring.ttl_seconds = Some(10);
    cache.put("a", expiring).unwrap();
    clock.advance_micros(60_000_000);
    for tier in TIERS {
        let e = cache.tier_get(tier, "a").unwrap().expect("still stored");
        assert!(e.is_expired(clock.now()), "{tier:?}");
        assert_eq!(e.access_count, 0, "{tier:?}: no read counted");
    }
    assert_eq!(cache.tier_len(TierLevel::L1).unwrap(), 1);
    assert!(
        cache.get("a").unwrap().is_none(),
        "the cache's get expires it"
    );
    assert_eq!(holders(&cache, "a"), []);
}

#[test]
fn an_l1_victim_awaiting_its_write_back_reaches_l2_before_a_tier_get() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut config = config_in(dir.path());
    config.l1.max_entries = Some(3);
    let cache = open(config, &clock);
    for i in 0..3 {
        cache.put(&key(i), input(i)).unwrap();
    }
    cache.get(&key(0)).unwrap();
    cache.put(&key(1), input(1)).unwrap();
    cache.put("new", input(9)).unwrap(); // evicts k2 (LRU), whose write-back waits
    assert_eq!(cache.tier_len(TierLevel::L1).unwrap(), 3);
    assert!(cache.tier_get(TierLevel::L1, &key(2)).unwrap().is_none());
    let below = cache.tier_get(TierLevel::L2, &key(2)).unwrap().unwrap();
    assert!(below.evicted_from_l1, "written back with the eviction mark");
    assert_eq!(cache.statistics().l1_stats.evictions_lru, 1);
}

#[test]
fn a_cleared_lower_tier_stays_clear_after_the_write_backs() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut config = config_in(dir.path());
    config.l1.max_entries = Some(2);
    {
        let cache = open(config.clone(), &clock);
        for i in 0..5 {
            cache.put(&key(i), input(i)).unwrap(); // k0, k1, k2 wait for their write-back
        }
        cache.get(&key(4)).unwrap(); // L1's counters change too
        assert_eq!(cache.tier_clear(TierLevel::L2).unwrap(), 5);
    } // closing writes back L1's counters: they may not recreate anything in L2
    let cache = open(config, &clock);
    assert_eq!(cache.tier_len(TierLevel::L2).unwrap(), 0);
    assert_eq!(
        cache.tier_len(TierLevel::L3).unwrap(),
        5,
        "L3 kept everything"
    );
    let victim = cache.tier_get(TierLevel::L3, &key(0)).unwrap().unwrap();
    assert!(victim.evicted_from_l1);
    let read = cache.tier_get(TierLevel::L3, &key(4)).unwrap().unwrap();
    assert_eq!(read.access_count, 1);
}

#[test]
fn clearing_l1_writes_back_its_waiting_victims_and_drops_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut config = config_in(dir.path());
    config.l1.max_entries = Some(2);
    let cache = open(config, &clock);
    for i in 0..3 {
        cache.put(&key(i), input(i)).unwrap(); // k0 waits for its write-back
    }
    assert_eq!(cache.tier_clear(TierLevel::L1).unwrap(), 2);
    assert_eq!(cache.tier_len(TierLevel::L1).unwrap(), 0);
    assert!(
        cache
            .tier_get(TierLevel::L2, &key(0))
            .unwrap()
            .unwrap()
            .evicted_from_l1
    );
    // The cache still serves them from below.
    assert_eq!(cache.get(&key(2)).unwrap().unwrap().access_count, 1);
    assert_eq!(cache.statistics().l2_stats.hits, 1);
}

#[test]
fn a_tier_delete_removes_from_that_tier_only() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let cache = open(sqlite_l2(config_in(dir.path())), &clock);
    cache.put("a", input(1)).unwrap();
    cache.tier_delete(TierLevel::L2, "a").unwrap();
    assert_eq!(holders(&cache, "a"), [TierLevel::L1, TierLevel::L3]);
    let e = cache.tier_delete(TierLevel::L2, "a").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("L2"), "{e}");
    cache.tier_delete(TierLevel::L1, "a").unwrap();
    assert_eq!(holders(&cache, "a"), [TierLevel::L3]);
    assert_eq!(
        cache.tier_delete(TierLevel::L1, "").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn an_entry_put_into_l1_alone_is_gone_once_l1_evicts_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut config = config_in(dir.path());
    config.l1.max_entries = Some(1);
    let cache = open(config, &clock);
    cache.tier_put(TierLevel::L1, "a", input(1)).unwrap();
    cache.tier_put(TierLevel::L1, "b", input(2)).unwrap();
    assert_eq!(cache.tier_len(TierLevel::L1).unwrap(), 1);
    assert_eq!(cache.statistics().l1_stats.evictions_lru, 1);
    // A write-back records counters on the entries below and creates none.
    assert_eq!(holders(&cache, "a"), []);
    assert_eq!(holders(&cache, "b"), [TierLevel::L1]);
}

#[test]
fn disabled_and_degraded_tiers_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut config = config_in(dir.path());
    config.l2.enabled = false;
    std::fs::create_dir_all(&config.l3_database_path).unwrap(); // a directory: L3 degraded
    let cache = open(config, &clock);
    assert!(cache.tier_enabled(TierLevel::L1));
    assert!(!cache.tier_enabled(TierLevel::L2));
    assert!(!cache.tier_enabled(TierLevel::L3));
    let e = cache.tier_put(TierLevel::L2, "a", input(1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.to_string().contains("L2 is disabled"), "{e}");
    assert_eq!(
        cache.tier_len(TierLevel::L2).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    for e in [
        cache.tier_get(TierLevel::L3, "a").unwrap_err(),
        cache.tier_put(TierLevel::L3, "a", input(1)).unwrap_err(),
        cache.tier_clear(TierLevel::L3).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
    }
    let mut bad = input(1);
    bad.proxy_url = String::new();
    assert_eq!(
        cache.tier_put(TierLevel::L1, "a", bad).unwrap_err().kind(),
        ErrorKind::InvalidJson
    );
}
