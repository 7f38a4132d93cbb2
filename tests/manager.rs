//! The cache's behaviour through the Rust API, on real tiers: promotion, expiry, eviction and
//! write-back, health invalidation, delete and clear, statistics, degraded tiers, sharing
//! between handles, file modes, capacity, bad input and threads.
//!
//! Over 700 lines, one idea: the public contract of `CacheManager`, one test per behaviour a user
//! relies on (the C API's statuses are in tests/statuses.rs and tests/c/).

mod common;

use common::*;
use pwcache::{
    CacheManager, Clock, EntryInput, ErrorKind, EvictionPolicy, HealthStatus, Timestamp,
    WRITE_BACK_BATCH,
};

fn l1_only_counts(cache: &CacheManager) -> (u64, u64) {
    let s = cache.statistics();
    (s.l1_stats.hits, s.l1_stats.misses)
}

#[test]
fn l1_hit_counts_the_read_and_promotes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let cache = open(config_in(dir.path()), &clock);
    cache.put("a", input(1)).unwrap();
    for n in 1..=3 {
        let e = cache.get("a").unwrap().unwrap();
        assert_eq!(e.access_count, n, "consecutive hits count 1, 2, 3");
        assert_eq!(e.last_accessed, clock.now());
    }
    let s = cache.statistics();
    assert_eq!((s.l1_stats.hits, s.l1_stats.misses), (3, 0));
    assert_eq!(s.promotions, 0);
    assert_eq!((s.l2_stats.hits + s.l2_stats.misses), 0, "L2 not consulted");
}

#[test]
fn l2_hit_promotes_into_l1_and_counts_one_l1_miss() {
    for config in [config_in, |d: &std::path::Path| sqlite_l2(config_in(d))] {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        open(config(dir.path()), &clock).put("a", input(1)).unwrap();
        let second = open(config(dir.path()), &clock);
        let e = second.get("a").unwrap().unwrap();
        assert_eq!(e.proxy_url, url(1));
        assert_eq!(e.access_count, 1);
        let s = second.statistics();
        assert_eq!(
            (s.l1_stats.misses, s.l2_stats.hits, s.l3_stats.hits),
            (1, 1, 0)
        );
        assert_eq!(s.l3_stats.misses, 0, "L3 not consulted after an L2 hit");
        assert_eq!(s.promotions, 1);
        let e = second.get("a").unwrap().unwrap();
        assert_eq!(e.access_count, 2);
        assert_eq!(l1_only_counts(&second), (1, 1), "now an L1 hit");
    }
}

#[test]
fn l3_hit_promotes_into_l1_and_l2() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut l3_only = config_in(dir.path());
    l3_only.l2.enabled = false;
    open(l3_only, &clock).put("a", input(1)).unwrap();

    let second = open(config_in(dir.path()), &clock);
    assert_eq!(second.get("a").unwrap().unwrap().access_count, 1);
    let s = second.statistics();
    assert_eq!(
        (s.l1_stats.misses, s.l2_stats.misses, s.l3_stats.hits),
        (1, 1, 1)
    );
    assert_eq!(s.promotions, 2);
    assert_eq!(s.l2_stats.current_size, 1, "promoted into L2");

    // With L2 disabled, one promotion per tier written: L1 only.
    let mut no_l2 = config_in(dir.path());
    no_l2.l2.enabled = false;
    let third = open(no_l2, &clock);
    third.get("a").unwrap().unwrap();
    assert_eq!(third.statistics().promotions, 1);
}

#[test]
fn a_full_miss_counts_one_miss_per_enabled_tier() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(config_in(dir.path()), &clock());
    assert!(cache.get("nothing").unwrap().is_none());
    let s = cache.statistics();
    assert_eq!(
        (s.l1_stats.misses, s.l2_stats.misses, s.l3_stats.misses),
        (1, 1, 1)
    );
    assert_eq!(s.overall_hit_rate, 0.0);
    let mut no_l2 = config_in(dir.path());
    no_l2.l2.enabled = false;
    let cache = open(no_l2, &clock());
    cache.get("nothing").unwrap();
    let s = cache.statistics();
    assert_eq!(
        (s.l1_stats.misses, s.l2_stats.misses, s.l3_stats.misses),
        (1, 0, 1)
    );
    assert!(!s.l2_degraded, "a disabled tier is not degraded");
}

#[test]
fn expiry_boundary_is_now_at_or_after_expires_at_in_every_tier() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let cache = open(config_in(dir.path()), &clock);
    let mut e = input(1);
    e.ttl_seconds = Some(10);
    cache.put("a", e).unwrap();
    let expires = t0().plus_seconds(10);
    clock.set(Timestamp::from_micros(expires.as_micros() - 1).unwrap());
    assert!(
        cache.get("a").unwrap().is_some(),
        "one microsecond before: live"
    );
    clock.set(expires);
    assert!(cache.get("a").unwrap().is_none(), "at expires_at: expired");
    let s = cache.statistics();
    assert_eq!(s.l1_stats.evictions_ttl, 1);
    assert_eq!(s.total_size, 0, "removed from every tier");

    // Found expired in L2 by a second handle: counted on L2, removed everywhere.
    let mut e = input(2);
    e.ttl_seconds = Some(10);
    cache.put("b", e).unwrap();
    let second = open(config_in(dir.path()), &clock);
    clock.set(expires.plus_seconds(10));
    assert!(second.get("b").unwrap().is_none());
    let s = second.statistics();
    assert_eq!((s.l2_stats.evictions_ttl, s.l1_stats.misses), (1, 1));
    assert_eq!(s.l3_stats.current_size, 0);
}

#[test]
fn ttl_zero_expires_at_once_and_per_source_ttl_applies() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut config = config_in(dir.path());
    config.per_source_ttl.insert("slow".into(), 7);
    let cache = open(config, &clock);
    let mut e = input(1);
    e.ttl_seconds = Some(0);
    cache.put("zero", e).unwrap();
    assert!(cache.get("zero").unwrap().is_none());
    let mut e = input(2);
    e.source = Some("slow".into());
    cache.put("slow", e).unwrap();
    let got = cache.get("slow").unwrap().unwrap();
    assert_eq!(got.ttl_seconds, 7);
    assert_eq!(got.expires_at, t0().plus_seconds(7));
    cache.put("plain", input(3)).unwrap();
    assert_eq!(cache.get("plain").unwrap().unwrap().ttl_seconds, 3600);
}

#[test]
fn the_key_argument_wins_over_a_key_field() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(config_in(dir.path()), &clock());
    cache
        .put_json("arg", r#"{"key":"field","proxy_url":"http://h:1"}"#)
        .unwrap();
    assert_eq!(cache.get("arg").unwrap().unwrap().key, "arg");
    assert!(cache.get("field").unwrap().is_none());
}

/// Fills an L1 of 3 under `policy`, uses some keys, adds a fourth; returns the evicted key,
/// found through a second handle as the one entry written back marked `evicted_from_l1`.
fn victim_under(policy: EvictionPolicy, uses: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    config.l1.max_entries = Some(3);
    config.l1.eviction_policy = policy;
    let cache = open(config.clone(), &clock());
    for (i, k) in ["a", "b", "c"].iter().enumerate() {
        cache.put(k, input(i)).unwrap();
    }
    for k in uses {
        cache.get(k).unwrap().unwrap();
    }
    cache.put("d", input(4)).unwrap();
    let s = cache.statistics();
    assert_eq!(s.l1_stats.evictions_lru, 1);
    assert_eq!(s.demotions, 0, "the victim waits: statistics write nothing");
    assert_eq!(s.l1_stats.current_size, 3);
    drop(cache); // writes the waiting victim back
    let other = open(config, &clock());
    let evicted: Vec<&str> = ["a", "b", "c", "d"]
        .into_iter()
        .filter(|k| other.get(k).unwrap().unwrap().evicted_from_l1)
        .collect();
    assert_eq!(evicted.len(), 1, "{evicted:?}");
    evicted[0].to_string()
}

#[test]
fn each_l1_eviction_policy_picks_its_victim() {
    assert_eq!(victim_under(EvictionPolicy::Lru, &["a"]), "b");
    assert_eq!(victim_under(EvictionPolicy::Fifo, &["a"]), "a");
    assert_eq!(
        victim_under(EvictionPolicy::Lfu, &["a", "a", "b", "c", "c"]),
        "b"
    );
}

#[test]
fn evicted_entries_keep_their_counters_below() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut config = config_in(dir.path());
    config.l1.max_entries = Some(1);
    let cache = open(config.clone(), &clock);
    cache.put("a", input(1)).unwrap();
    cache.get("a").unwrap();
    cache.get("a").unwrap();
    cache.put("b", input(2)).unwrap();
    // The victim waits for a batch of write-backs; statistics write nothing, freeing writes it.
    assert_eq!(cache.statistics().demotions, 0);
    drop(cache);
    let other = open(config, &clock);
    let a = other.get("a").unwrap().unwrap();
    assert_eq!(a.access_count, 3, "two reads written back, plus this one");
    assert!(a.evicted_from_l1);
}

/// Opens a cache with an L1 of one entry, puts `n` keys through it, `a` first and read twice;
/// returns the cache and what handles with an empty L1 find under `a` in L2 and in L3.
fn first_victim_seen_by_another_handle(
    config: pwcache::CacheConfig,
    n: usize,
) -> (CacheManager, Vec<pwcache::CacheEntry>) {
    let mut small = config;
    small.l1.max_entries = Some(1);
    let cache = CacheManager::open(small.clone()).unwrap();
    cache.put("a", input(0)).unwrap();
    cache.get("a").unwrap();
    cache.get("a").unwrap();
    for i in 1..n {
        cache.put(&key(i), input(i)).unwrap();
    }
    let seen = [true, false]
        .into_iter()
        .map(|l2| {
            let below = CacheManager::open(one_lower_tier(&small, l2)).unwrap();
            below.get("a").unwrap().unwrap()
        })
        .collect();
    (cache, seen)
}

#[test]
fn victims_are_written_back_once_a_batch_of_them_waits() {
    for config in [config_in, |d: &std::path::Path| sqlite_l2(config_in(d))] {
        // One victim short of a batch: the lower tiers still hold `a` as it was put.
        let dir = tempfile::tempdir().unwrap();
        let (_, seen) = first_victim_seen_by_another_handle(config(dir.path()), WRITE_BACK_BATCH);
        for a in seen {
            assert!(!a.evicted_from_l1, "not written back yet");
            assert_eq!(a.access_count, 1, "only this read");
        }
        // The victim that completes the batch writes them all, in the same transactions as the
        // put that evicted it.
        let dir = tempfile::tempdir().unwrap();
        let (cache, seen) =
            first_victim_seen_by_another_handle(config(dir.path()), WRITE_BACK_BATCH + 1);
        for a in seen {
            assert!(a.evicted_from_l1, "written back");
            assert_eq!(a.access_count, 3, "two reads written back, plus this one");
        }
        let s = cache.statistics();
        assert_eq!(s.demotions, WRITE_BACK_BATCH as u64);
        assert_eq!(s.l1_stats.evictions_lru, WRITE_BACK_BATCH as u64);
    }
}

#[test]
fn a_waiting_victim_is_written_back_before_its_key_is_read_below() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut config = config_in(dir.path());
    config.l1.max_entries = Some(1);
    let cache = open(config, &clock);
    cache.put("a", input(1)).unwrap();
    cache.get("a").unwrap();
    cache.put("b", input(2)).unwrap(); // evicts a, which waits
    let a = cache.get("a").unwrap().unwrap();
    assert_eq!(a.access_count, 2, "the read in L1, then this one from L2");
    assert!(a.evicted_from_l1);
    let s = cache.statistics();
    assert_eq!((s.l1_stats.misses, s.l2_stats.hits), (1, 1));
    assert_eq!(
        s.demotions, 1,
        "a before its read; b, evicted by a's promotion, waits"
    );
}

#[test]
fn access_counters_survive_closing_the_handle() {
    for config in [config_in, |d: &std::path::Path| sqlite_l2(config_in(d))] {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        {
            let cache = open(config(dir.path()), &clock);
            cache.put("a", input(1)).unwrap();
            for _ in 0..3 {
                cache.get("a").unwrap();
            }
        }
        let cache = open(config(dir.path()), &clock);
        assert_eq!(cache.get("a").unwrap().unwrap().access_count, 4);
    }
}

#[test]
fn health_invalidation_removes_at_the_threshold_from_every_tier() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(config_in(dir.path()), &clock());
    cache.put("a", input(1)).unwrap();
    assert!(!cache.invalidate_by_health("a").unwrap());
    let e = cache.get("a").unwrap().unwrap();
    assert_eq!(
        (e.failure_count, e.health_status),
        (1, HealthStatus::Unhealthy)
    );
    assert!(!cache.invalidate_by_health("a").unwrap());
    assert!(
        cache.invalidate_by_health("a").unwrap(),
        "third failure: evicted"
    );
    assert!(cache.get("a").unwrap().is_none());
    let s = cache.statistics();
    assert_eq!(
        (
            s.l1_stats.evictions_health,
            s.l2_stats.evictions_health,
            s.l3_stats.evictions_health
        ),
        (1, 1, 1)
    );
    assert_eq!(s.total_size, 0);
    let err = cache.invalidate_by_health("a").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn health_failures_below_the_threshold_reach_the_lower_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let cache = open(config_in(dir.path()), &clock);
    cache.put("a", input(1)).unwrap();
    cache.invalidate_by_health("a").unwrap();
    let other = open(config_in(dir.path()), &clock);
    let e = other.get("a").unwrap().unwrap();
    assert_eq!(
        (e.failure_count, e.health_status),
        (1, HealthStatus::Unhealthy)
    );
}

#[test]
fn without_health_invalidation_failures_only_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    config.health_check_invalidation = false;
    let cache = open(config, &clock());
    cache.put("a", input(1)).unwrap();
    for _ in 0..5 {
        assert!(!cache.invalidate_by_health("a").unwrap());
    }
    assert_eq!(cache.get("a").unwrap().unwrap().failure_count, 5);
    assert_eq!(cache.statistics().l1_stats.evictions_health, 0);
}

#[test]
fn invalidating_an_expired_entry_removes_it_and_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let cache = open(config_in(dir.path()), &clock);
    let mut e = input(1);
    e.ttl_seconds = Some(5);
    cache.put("a", e).unwrap();
    clock.set(t0().plus_seconds(5));
    assert_eq!(
        cache.invalidate_by_health("a").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(cache.statistics().total_size, 0);
}

#[test]
fn delete_and_clear_reach_every_tier() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let cache = open(config_in(dir.path()), &clock);
    for i in 0..5 {
        cache.put(&key(i), input(i)).unwrap();
    }
    cache.get(&key(0)).unwrap();
    cache.delete(&key(1)).unwrap();
    assert_eq!(
        cache.delete(&key(1)).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(
        open(config_in(dir.path()), &clock)
            .get(&key(1))
            .unwrap()
            .is_none()
    );
    assert_eq!(cache.clear().unwrap(), 4, "distinct keys, not one per tier");
    let s = cache.statistics();
    assert_eq!(s.total_size, 0);
    assert_eq!(s.l1_stats.hits, 1, "counters other than sizes are kept");
    assert!(
        open(config_in(dir.path()), &clock)
            .get(&key(0))
            .unwrap()
            .is_none()
    );
}

#[test]
fn cleanup_removes_expired_entries_everywhere_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let cache = open(config_in(dir.path()), &clock);
    for i in 0..4 {
        let mut e = input(i);
        e.ttl_seconds = Some(if i < 3 { 10 } else { 100 });
        cache.put(&key(i), e).unwrap();
    }
    clock.set(t0().plus_seconds(10));
    assert_eq!(cache.cleanup_expired().unwrap(), 3);
    let s = cache.statistics();
    assert_eq!(
        (
            s.l1_stats.evictions_ttl,
            s.l2_stats.evictions_ttl,
            s.l3_stats.evictions_ttl
        ),
        (3, 3, 3)
    );
    assert_eq!(
        (
            s.l1_stats.current_size,
            s.l2_stats.current_size,
            s.l3_stats.current_size
        ),
        (1, 1, 1)
    );
}

#[test]
fn statistics_can_be_switched_off_but_sizes_remain() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    config.enable_statistics = false;
    let cache = open(config, &clock());
    cache.put("a", input(1)).unwrap();
    cache.get("a").unwrap();
    cache.get("zz").unwrap();
    let s = cache.statistics();
    assert_eq!(
        (s.l1_stats.hits, s.l1_stats.misses, s.promotions),
        (0, 0, 0)
    );
    assert_eq!(s.total_size, 3);
}

#[test]
fn statistics_json_has_upstreams_keys_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(config_in(dir.path()), &clock());
    let json = cache.statistics().to_json();
    let keys = [
        "l1_stats",
        "l2_stats",
        "l3_stats",
        "promotions",
        "demotions",
        "l1_degraded",
        "l2_degraded",
        "l3_degraded",
        "overall_hit_rate",
        "total_size",
    ];
    let mut at = 0;
    for k in keys {
        let pos = json[at..]
            .find(&format!("\"{k}\""))
            .unwrap_or_else(|| panic!("{k} in {json}"));
        at += pos;
    }
    assert!(json.contains(r#""l1_stats":{"hits":0,"misses":0,"current_size":0,"evictions_lru":0,"evictions_ttl":0,"evictions_health":0,"evictions_corruption":0,"hit_rate":0.0,"total_evictions":0}"#), "{json}");
}

#[test]
fn a_tier_unusable_at_open_starts_degraded_and_the_cache_serves() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    std::fs::write(
        dir.path().join("l2"),
        b"a file where the L2 directory belongs",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("l3.db")).unwrap();
    config.l3_database_path = dir.path().join("l3.db");
    let cache = open(config.clone(), &clock());
    let s = cache.statistics();
    assert!(s.l2_degraded && s.l3_degraded && !s.l1_degraded);
    // L1 alone does not acknowledge a put: the entry would be gone at the next restart.
    let err = cache.put("a", input(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
    let err = cache.get("a").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage, "not served from L1: {err}");
    // With L1 the only tier enabled, L1 acknowledges.
    let mut only_l1 = config.clone();
    only_l1.l2.enabled = false;
    only_l1.l3.enabled = false;
    let memory = open(only_l1, &clock());
    memory.put("a", input(1)).unwrap();
    assert!(memory.get("a").unwrap().is_some(), "served from L1");

    config.l1.enabled = false;
    let cache = open(config, &clock());
    let err = cache.put("a", input(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage, "no enabled tier usable");
    // A read that no tier answered is not a miss.
    let err = cache.get("a").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
    let err = cache.delete("a").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
    let err = cache.cleanup_expired().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
}

#[test]
fn a_failing_tier_degrades_after_three_failures_and_recovers_later() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let cache = open(config_in(dir.path()), &clock);
    cache.put("before", input(0)).unwrap();
    let l2 = dir.path().join("l2");
    std::fs::remove_dir_all(&l2).unwrap();
    std::fs::write(&l2, b"not a directory").unwrap();
    for i in 1..=4 {
        cache.put(&key(i), input(i)).unwrap();
    }
    let s = cache.statistics();
    assert!(s.l2_degraded, "L2 degraded after repeated failures");
    assert!(!s.l3_degraded);
    cache.delete(&key(1)).unwrap();
    assert!(cache.get(&key(2)).unwrap().is_some());

    std::fs::remove_file(&l2).unwrap();
    clock.set(t0().plus_seconds(120));
    cache.put(&key(5), input(5)).unwrap();
    cache.put(&key(6), input(6)).unwrap();
    let s = cache.statistics();
    assert!(!s.l2_degraded, "recovered after the back-off");
    let other = open(config_in(dir.path()), &clock);
    assert!(
        other.get(&key(1)).unwrap().is_none(),
        "the delete it missed is not undone"
    );
    assert!(other.get(&key(6)).unwrap().is_some());
}

#[test]
fn persistence_across_handles_for_both_l2_backends() {
    for config in [config_in, |d: &std::path::Path| sqlite_l2(config_in(d))] {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        let mut with_creds = input(1);
        with_creds.username = Some("alice".into());
        with_creds.password = Some("s3cr:t@/".into());
        open(config(dir.path()), &clock)
            .put("a", with_creds)
            .unwrap();
        let mut l2_only = config(dir.path());
        l2_only.l3.enabled = false;
        let e = open(l2_only, &clock).get("a").unwrap().unwrap();
        assert_eq!(e.username.unwrap().expose(), "alice");
        assert_eq!(e.password.unwrap().expose(), "s3cr:t@/");
    }
}

#[test]
fn two_live_handles_share_l2_and_l3() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let a = open(config_in(dir.path()), &clock);
    let b = open(config_in(dir.path()), &clock);
    a.put("x", input(1)).unwrap();
    assert_eq!(b.get("x").unwrap().unwrap().proxy_url, url(1));
    a.delete("x").unwrap();
    // b holds x in its own L1; once it is not there, b sees the delete.
    let mut no_l1 = config_in(dir.path());
    no_l1.l1.enabled = false;
    let c = open(no_l1, &clock);
    assert!(c.get("x").unwrap().is_none());
}

#[test]
fn files_are_0600_and_directories_0700() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    config.l2_cache_dir = dir.path().join("deep/er/l2");
    let cache = open(config, &clock());
    cache.put("a", input(1)).unwrap();
    cache
        .export_to_file(&dir.path().join("out/x.jsonl"), false)
        .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for d in ["deep", "deep/er", "deep/er/l2", "db", "out"] {
        assert_eq!(mode(&dir.path().join(d)), 0o700, "{d}");
    }
    for entry in walk(dir.path()) {
        if entry.is_file() {
            assert_eq!(mode(&entry), 0o600, "{}", entry.display());
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn put_rejects_bad_input_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(config_in(dir.path()), &clock());
    assert_eq!(
        cache.put("", input(1)).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    for bad in [
        "",
        "{",
        "[]",
        r#"{"proxy_url":""}"#,
        r#"{"proxy_url":"x","nope":1}"#,
        r#"{"proxy_url":"x","ttl_seconds":-1}"#,
        r#"{"proxy_url":"x","expires_at":"soon"}"#,
        r#"{"proxy_url":"x","health_status":"great"}"#,
    ] {
        assert_eq!(
            cache.put_json("k", bad).unwrap_err().kind(),
            ErrorKind::InvalidJson,
            "{bad}"
        );
    }
    assert_eq!(cache.statistics().total_size, 0, "nothing stored");
}

#[test]
fn put_many_stores_all_or_nothing_on_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(config_in(dir.path()), &clock());
    let items: Vec<(String, EntryInput)> = (0..2500).map(|i| (key(i), input(i))).collect();
    assert_eq!(cache.put_many(items).unwrap(), 2500);
    let s = cache.statistics();
    assert_eq!(
        (
            s.l1_stats.current_size,
            s.l2_stats.current_size,
            s.l3_stats.current_size
        ),
        (1000, 2500, 2500)
    );
    let bad = vec![(key(9000), input(9000)), (key(9001), EntryInput::default())];
    assert_eq!(
        cache.put_many(bad).unwrap_err().kind(),
        ErrorKind::InvalidJson
    );
    assert!(cache.get(&key(9000)).unwrap().is_none());
}

#[test]
fn put_many_json_names_the_bad_item_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(config_in(dir.path()), &clock());
    let good = r#"[{"key":"a","proxy_url":"http://a:1","username":"u","password":"p"},
                   {"key":"b","proxy_url":"http://b:1","ttl_seconds":60}]"#;
    assert_eq!(cache.put_many_json(good).unwrap(), 2);
    let a = cache.get("a").unwrap().unwrap();
    assert_eq!(a.password.unwrap().expose(), "p");
    assert_eq!(cache.get("b").unwrap().unwrap().ttl_seconds, 60);
    assert_eq!(cache.put_many_json("[]").unwrap(), 0);

    // Valid JSON whose third item fails resolution (a bound), and one missing its URL.
    for (bad, field) in [
        (
            r#"[{"key":"c","proxy_url":"http://x:1"},{"key":"d","proxy_url":"http://y:1"},
                {"key":"e","proxy_url":"http://z:1","failure_count":-1}]"#,
            "failure_count",
        ),
        (
            r#"[{"key":"c","proxy_url":"http://x:1"},{"key":"d","proxy_url":"http://y:1"},{"key":"e"}]"#,
            "proxy_url",
        ),
    ] {
        let err = cache.put_many_json(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidJson);
        let message = err.to_string();
        assert!(message.starts_with("item 2:"), "{message}");
        assert!(message.contains(field), "{message}");
    }
    assert!(
        cache.get("c").unwrap().is_none(),
        "nothing of a bad batch is stored"
    );
    let err = cache.put_many(vec![(key(1), input(1)), (String::new(), input(2))]);
    let err = err.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().starts_with("item 1:"), "{err}");
    let err = cache
        .put_many_json(r#"[{"key":"c","proxy_url":"http://x:1"},{"key":"d","proxy_url":"   "}]"#)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().starts_with("item 1:"), "{err}");
    assert!(cache.get("c").unwrap().is_none());
}

/// `proxy_url` is a URL with a scheme and a host: whitespace around it is trimmed, anything
/// else is refused with a message saying what is wrong, and nothing is stored.
#[test]
fn put_refuses_what_is_not_a_proxy_url() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(config_in(dir.path()), &clock());
    for bad in [
        "   ",
        "not a url",
        "10.0.0.1:8080",
        "http://",
        "http://h:99999",
        "http:/h",
    ] {
        let err = cache.put("k", EntryInput::with_url(bad)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad:?}: {err}");
        assert!(err.to_string().contains("proxy_url"), "{err}");
    }
    assert_eq!(cache.statistics().total_size, 0, "nothing stored");
    cache
        .put("k", EntryInput::with_url(" http://10.0.0.1:8080\n"))
        .unwrap();
    assert_eq!(
        cache.get("k").unwrap().unwrap().proxy_url,
        "http://10.0.0.1:8080"
    );
    // A credential in the URL and in its field must agree.
    let both = |password: &str| EntryInput {
        password: Some(password.into()),
        ..EntryInput::with_url("http://u:pw@10.0.0.2:80")
    };
    cache.put("same", both("pw")).unwrap();
    let e = cache.get("same").unwrap().unwrap();
    assert_eq!(
        (
            e.proxy_url.as_str(),
            e.username.unwrap().expose(),
            e.password.unwrap().expose()
        ),
        ("http://10.0.0.2:80", "u", "pw")
    );
    let err = cache.put("differ", both("other")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
}

#[test]
fn l2_capacity_is_honoured_with_the_configured_policy() {
    for backend in [config_in, |d: &std::path::Path| sqlite_l2(config_in(d))] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = backend(dir.path());
        config.l1.enabled = false;
        config.l2.max_entries = Some(10);
        config.l2.eviction_policy = EvictionPolicy::Fifo;
        let cache = open(config, &clock());
        for i in 0..25 {
            cache.put(&key(i), input(i)).unwrap();
        }
        let s = cache.statistics();
        assert_eq!(s.l2_stats.current_size, 10);
        assert_eq!(s.l2_stats.evictions_lru, 15);
        assert_eq!(s.l3_stats.current_size, 25, "L3 unbounded keeps everything");
    }
}

#[test]
fn l3_capacity_is_honoured_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    config.l3.max_entries = Some(5);
    let cache = open(config, &clock());
    for i in 0..12 {
        cache.put(&key(i), input(i)).unwrap();
    }
    assert_eq!(cache.statistics().l3_stats.current_size, 5);
}

#[test]
fn with_l1_disabled_reads_are_recorded_in_the_serving_tier() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    config.l1.enabled = false;
    let cache = open(config, &clock());
    cache.put("a", input(1)).unwrap();
    assert_eq!(cache.get("a").unwrap().unwrap().access_count, 1);
    assert_eq!(cache.get("a").unwrap().unwrap().access_count, 2);
    let s = cache.statistics();
    assert_eq!((s.l2_stats.hits, s.promotions), (2, 0));
}

#[test]
fn many_threads_on_one_handle_stay_consistent_per_key() {
    use std::collections::HashMap;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    config.l1.max_entries = Some(64);
    config.l2.max_entries = None;
    let cache = std::sync::Arc::new(CacheManager::open(config).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                // Each thread owns 40 keys (checked against a model) and shares 20 with all.
                let mut model: HashMap<String, Option<String>> = HashMap::new();
                let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ t as u64;
                for i in 0..50_000u64 {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let own = format!("t{t}-{}", state % 40);
                    let shared = format!("shared-{}", (state >> 8) % 20);
                    let url = format!("http://{t}.{i}:1");
                    match (state >> 16) % 20 {
                        0..=10 => {
                            let got = cache.get(&own).unwrap().map(|e| e.proxy_url);
                            assert_eq!(&got, model.get(&own).unwrap_or(&None), "{own}");
                        }
                        11..=14 => {
                            cache.put(&own, EntryInput::with_url(url.clone())).unwrap();
                            model.insert(own, Some(url));
                        }
                        15 => {
                            let r = cache.delete(&own);
                            match model.insert(own, None).flatten() {
                                Some(_) => r.unwrap(),
                                None => assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound),
                            }
                        }
                        16 | 17 => {
                            cache.get(&shared).unwrap();
                        }
                        18 => cache.put(&shared, EntryInput::with_url(url)).unwrap(),
                        _ => match cache.invalidate_by_health(&shared) {
                            Ok(_) => {}
                            Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound),
                        },
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = cache.statistics();
    assert!(!s.l2_degraded && !s.l3_degraded);
    assert_eq!(s.l2_stats.current_size, s.l3_stats.current_size);
}

#[test]
fn a_corrupt_database_file_is_set_aside_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    std::fs::create_dir_all(dir.path().join("db")).unwrap();
    std::fs::write(&config.l3_database_path, vec![0x5au8; 8192]).unwrap();
    let cache = open(config.clone(), &clock());
    let s = cache.statistics();
    assert!(!s.l3_degraded, "replaced by a fresh database");
    assert_eq!(s.l3_stats.evictions_corruption, 1);
    cache.put("a", input(1)).unwrap();
    assert_eq!(cache.statistics().l3_stats.current_size, 1);
    let aside = std::fs::read_dir(dir.path().join("db"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("l3.db.corrupt-")
        })
        .count();
    assert_eq!(aside, 1, "the damaged file is kept for inspection");
}

#[test]
fn corrupt_jsonl_lines_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut config = config_in(dir.path());
    config.l3.enabled = false;
    {
        let cache = open(config.clone(), &clock);
        for i in 0..20 {
            cache.put(&key(i), input(i)).unwrap();
        }
    }
    let shard = std::fs::read_dir(dir.path().join("l2"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let mut text = std::fs::read_to_string(&shard).unwrap();
    text.insert_str(0, "{this is not json\n");
    std::fs::write(&shard, text).unwrap();
    let cache = open(config, &clock);
    let found = (0..20)
        .filter(|i| cache.get(&key(*i)).unwrap().is_some())
        .count();
    assert_eq!(found, 20, "one bad line does not poison the tier");
    let s = cache.statistics();
    assert_eq!(s.l2_stats.evictions_corruption, 1);
    assert!(!s.l2_degraded);
}

#[test]
fn a_promotion_that_fills_l1_evicts_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut config = config_in(dir.path());
    config.l1.max_entries = Some(2);
    for i in 0..3 {
        open(config_in(dir.path()), &clock)
            .put(&key(i), input(i))
            .unwrap();
    }
    let cache = open(config, &clock);
    for i in 0..3 {
        cache.get(&key(i)).unwrap().unwrap();
    }
    let s = cache.statistics();
    assert_eq!(s.promotions, 3);
    assert_eq!(
        s.l1_stats.evictions_lru, 1,
        "the third promotion evicted one"
    );
    assert_eq!(s.demotions, 0, "which waits for a batch of write-backs");
    assert_eq!(s.l1_stats.current_size, 2);
}

#[test]
fn a_full_jsonl_l2_evicts_down_to_99_percent_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    config.l1.enabled = false;
    config.l3.enabled = false;
    config.l2.max_entries = Some(200);
    let cache = open(config, &clock());
    let items = (0..200).map(|i| (key(i), input(i))).collect();
    cache.put_many(items).unwrap();
    assert_eq!(
        cache.statistics().l2_stats.current_size,
        200,
        "full, not over"
    );
    cache.put(&key(200), input(200)).unwrap();
    let s = cache.statistics();
    assert_eq!(
        (s.l2_stats.current_size, s.l2_stats.evictions_lru),
        (198, 3)
    );
    assert!(cache.get(&key(200)).unwrap().is_some(), "the new key stays");
}

#[test]
fn a_write_back_of_an_older_entry_leaves_another_handles_newer_put_alone() {
    for config in [config_in, |d: &std::path::Path| sqlite_l2(config_in(d))] {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        let mut small = config(dir.path());
        small.l1.max_entries = Some(1);
        let a = open(small, &clock);
        a.put("k", input(1)).unwrap();
        a.get("k").unwrap();
        a.get("k").unwrap();
        // Another handle stores a newer entry under the same key.
        open(config(dir.path()), &clock).put("k", input(2)).unwrap();
        a.put("other", input(3)).unwrap(); // evicts k from a's L1: it waits for write-back
        drop(a); // writes it back now, rather than with a later batch
        for l2 in [true, false] {
            let e = open(one_lower_tier(&config(dir.path()), l2), &clock)
                .get("k")
                .unwrap()
                .unwrap();
            assert_eq!(
                e.proxy_url,
                url(2),
                "the newer put survives (L2 alone: {l2})"
            );
            // a's reads were of the older entry: they are not recorded on the newer one.
            assert!(!e.evicted_from_l1);
            assert_eq!(e.access_count, 1, "this read only");
        }
    }
}

#[test]
fn a_health_failure_missed_by_a_degraded_tier_is_not_undone_when_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let cache = open(config_in(dir.path()), &clock);
    cache.put("k", input(1)).unwrap();
    let l2 = dir.path().join("l2");
    let kept = dir.path().join("l2-kept");
    std::fs::rename(&l2, &kept).unwrap();
    std::fs::write(&l2, b"not a directory").unwrap();
    for i in 0..3 {
        cache.put(&key(i), input(i)).unwrap();
    }
    assert!(cache.statistics().l2_degraded);
    assert!(!cache.invalidate_by_health("k").unwrap());

    // L2 comes back with its old copy of k (failure_count 0), and recovers on the next write.
    std::fs::remove_file(&l2).unwrap();
    std::fs::rename(&kept, &l2).unwrap();
    clock.set(t0().plus_seconds(120));
    cache.put(&key(9), input(9)).unwrap();
    assert!(!cache.statistics().l2_degraded);

    let mut l2_first = config_in(dir.path());
    l2_first.l1.enabled = false;
    let e = open(l2_first, &clock).get("k").unwrap().unwrap();
    assert_eq!(
        e.failure_count, 1,
        "the recorded failure holds, L2's stale copy is gone"
    );
    assert_eq!(e.health_status, HealthStatus::Unhealthy);
}

#[test]
fn writes_a_degraded_tier_missed_are_not_undone_after_a_restart() {
    for config in [config_in, |d: &std::path::Path| sqlite_l2(config_in(d))] {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        let config = config(dir.path());
        let cache = open(config.clone(), &clock);
        cache.put("a", input(1)).unwrap();
        cache.put("b", input(1)).unwrap();
        drop(cache);
        // L2 cannot be used: its directory is a file now.
        let l2 = dir.path().join("l2");
        let kept = dir.path().join("l2-kept");
        std::fs::rename(&l2, &kept).unwrap();
        std::fs::write(&l2, b"not a directory").unwrap();
        let cache = open(config.clone(), &clock);
        assert!(cache.statistics().l2_degraded);
        cache.put("a", input(2)).unwrap();
        cache.delete("b").unwrap();
        drop(cache); // freed before L2 is back: what it missed must not be forgotten
        std::fs::remove_file(&l2).unwrap();
        std::fs::rename(&kept, &l2).unwrap();
        let cache = open(config.clone(), &clock);
        assert_eq!(cache.get("a").unwrap().unwrap().proxy_url, url(2));
        assert!(cache.get("b").unwrap().is_none(), "the delete stays");
        assert!(!cache.statistics().l2_degraded);
        // And L2 alone no longer holds the stale entries.
        let l2_only = open(one_lower_tier(&config, true), &clock);
        assert!(l2_only.get("b").unwrap().is_none());
        let a = l2_only.get("a").unwrap();
        assert!(a.as_ref().is_none_or(|a| a.proxy_url == url(2)), "{a:?}");
    }
}
