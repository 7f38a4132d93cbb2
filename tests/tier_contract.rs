//! The contract of a persistent tier (`pwcache::tier::Tier`), run against every implementation:
//! the JSONL L2, the SQLite L2, the SQLite L3 and the shared tier on a real `redis-server` (one
//! per test thread, started on a free loopback port) and on a three-master Redis Cluster (one
//! for the whole suite, a namespace per test); skipped with a message when redis-server is not
//! installed, unless `PWCACHE_REQUIRE_REDIS` is set. A new tier joins by adding a `Kind`.
//! Times are in 2036: the shared tier's server expires entries by the real clock. What is
//! specific to one tier (file formats, upstream's files, which entry a policy evicts, capacity
//! across handles, corruption) stays in that tier's own test file.
//!
//! Over 700 lines, one idea: the `Tier` trait's contract, one test per rule of it.

mod common;
mod redis_server;

use std::cell::RefCell;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::tiers::{TierOptions, tier_context};
use pwcache::stats::{Counter, TierCounters};
use pwcache::tier::jsonl::JsonlTier;
use pwcache::tier::redis::RedisTier;
use pwcache::tier::sqlite::{Schema, SqliteTier};
use pwcache::tier::{CopyOutcome, Tier, Usage, Version};
use pwcache::{CacheEntry, ErrorKind, EvictionPolicy, HealthStatus, SharedConfig, Timestamp};

const OTHER_KEY: &str = "b3RoZXIta2V5LWZvci1wd2NhY2hlLXRlc3RzLTAwMDA=";

#[derive(Clone, Copy, Debug)]
enum Kind {
    JsonlL2,
    SqliteL2,
    SqliteL3,
    Redis,
    RedisCluster,
}

thread_local! {
    /// The server of this test (each test runs on a thread of its own).
    static SERVER: RefCell<Option<redis_server::RedisServer>> = const { RefCell::new(None) };
}

/// Every kind, the shared tier's only when a redis-server runs for this test.
fn kinds() -> Vec<Kind> {
    let mut kinds = vec![Kind::JsonlL2, Kind::SqliteL2, Kind::SqliteL3];
    let started = SERVER.with(|s| {
        let mut s = s.borrow_mut();
        if s.is_none() {
            *s = redis_server::RedisServer::start("tier_contract (shared tier)");
        }
        s.is_some()
    });
    if started {
        kinds.push(Kind::Redis);
    }
    if redis_server::shared_cluster("tier_contract (shared tier on a cluster)", |_| ()).is_some() {
        kinds.push(Kind::RedisCluster);
    }
    kinds
}

/// The shared tier of `dir`: a namespace of its own on this test's server or on the cluster.
fn shared_config(kind: Kind, dir: &Path) -> SharedConfig {
    let name: String = dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let cluster = matches!(kind, Kind::RedisCluster);
    let url = if cluster {
        redis_server::shared_cluster("tier_contract", |c| c.url()).unwrap()
    } else {
        SERVER.with(|s| s.borrow().as_ref().unwrap().url())
    };
    SharedConfig {
        enabled: true,
        url,
        cluster,
        namespace: format!("contract-{name}"),
        timeout_ms: 2000,
        ..SharedConfig::default()
    }
}

/// What a tier of `kind` stores for `dir`: its files' bytes, or the namespace's keys and values.
fn stored_bytes(kind: Kind, dir: &Path) -> Vec<u8> {
    match kind {
        Kind::Redis => {
            let pattern = format!("pwcache:{{{}}}:*", shared_config(kind, dir).namespace);
            SERVER.with(|s| s.borrow().as_ref().unwrap().dump(&pattern))
        }
        Kind::RedisCluster => {
            let pattern = format!("pwcache:{{{}}}:*", shared_config(kind, dir).namespace);
            redis_server::shared_cluster("tier_contract", |c| c.dump(&pattern)).unwrap()
        }
        _ => all_bytes(dir, &|_| true),
    }
}

/// `stored_bytes` without SQLite's shared-memory index (`*-shm`): every reader writes its read
/// mark there, and it holds no data (SQLite rebuilds it from the log). What a read must leave as
/// it was.
fn stored_data(kind: Kind, dir: &Path) -> Vec<u8> {
    match kind {
        Kind::Redis | Kind::RedisCluster => stored_bytes(kind, dir),
        _ => all_bytes(dir, &|p| !p.to_string_lossy().ends_with("-shm")),
    }
}

/// Where a tier of `kind` keeps its files under `dir`.
fn location(kind: Kind, dir: &Path) -> PathBuf {
    match kind {
        Kind::JsonlL2 => dir.join("l2"),
        Kind::SqliteL2 => dir.join("l2").join("l2_cache.db"),
        Kind::SqliteL3 => dir.join("db").join("l3.db"),
        Kind::Redis | Kind::RedisCluster => dir.to_path_buf(),
    }
}

/// A handle of `kind` on `dir`'s files (or namespace) opened with `options`, and the counters
/// it reports to.
fn open_with(kind: Kind, dir: &Path, options: TierOptions) -> (Box<dyn Tier>, Arc<TierCounters>) {
    let (ctx, counters) = tier_context(dir, &options);
    let at = location(kind, dir);
    let tier: Box<dyn Tier> = match kind {
        Kind::JsonlL2 => Box::new(JsonlTier::open(&at, ctx).unwrap()),
        Kind::SqliteL2 => Box::new(SqliteTier::open(&at, Schema::L2, ctx).unwrap()),
        Kind::SqliteL3 => Box::new(SqliteTier::open(&at, Schema::L3, ctx).unwrap()),
        Kind::Redis | Kind::RedisCluster => {
            Box::new(RedisTier::open(&shared_config(kind, dir), ctx, "contract").unwrap())
        }
    };
    (tier, counters)
}

fn open(kind: Kind, dir: &Path) -> Box<dyn Tier> {
    open_with(kind, dir, TierOptions::default()).0
}

/// A handle that holds at most `max` entries, evicting by `policy`.
fn open_bounded(
    kind: Kind,
    dir: &Path,
    max: u64,
    policy: EvictionPolicy,
) -> (Box<dyn Tier>, Arc<TierCounters>) {
    let options = TierOptions {
        max: Some(max),
        policy,
        ..TierOptions::default()
    };
    open_with(kind, dir, options)
}

/// The keys `tier` holds, sorted.
fn keys(tier: &dyn Tier) -> Vec<String> {
    let mut keys = Vec::new();
    tier.scan(&mut |r| keys.push(r.unwrap().key)).unwrap();
    keys.sort();
    keys
}

fn t(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn t0() -> Timestamp {
    t("2036-11-24T01:00:00.123456Z")
}

fn entry(key: &str, url_tag: u32) -> CacheEntry {
    CacheEntry::new(
        key,
        format!("http://10.0.0.{url_tag}:8080"),
        "test",
        t0(),
        3600,
    )
}

fn full_entry(key: &str) -> CacheEntry {
    common::tiers::full_entry(key, t0())
}

/// Every byte of every file under `dir` that `wanted` names, in a stable order.
fn all_bytes(dir: &Path, wanted: &dyn Fn(&Path) -> bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            out.extend(all_bytes(&path, wanted));
        } else if wanted(&path) {
            out.extend(std::fs::read(&path).unwrap());
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_full_entry_round_trips_across_reopen_without_plaintext_credentials() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let e = full_entry("full");
        let plain = entry("plain", 1);
        let tier = open(kind, dir.path());
        tier.put(&e).unwrap();
        assert_eq!(tier.get("full").unwrap(), Some(e.clone()), "{kind:?}");
        tier.put(&plain).unwrap();
        drop(tier);
        let again = open(kind, dir.path());
        assert_eq!(again.get("full").unwrap(), Some(e), "{kind:?}");
        assert_eq!(
            again.get("plain").unwrap(),
            Some(plain),
            "{kind:?}: no credentials read back as none"
        );
        assert_eq!(again.get("absent").unwrap(), None, "{kind:?}");
        assert_eq!(again.len().unwrap(), 2, "{kind:?}");
        let bytes = stored_bytes(kind, dir.path());
        assert!(
            contains(&bytes, "socks5://10.1.2.3:1080"),
            "{kind:?}: the bytes searched hold the entry"
        );
        // Whole secrets, and parts of one: no piece of a credential is stored in plain text.
        for secret in ["alice-user", "p@ss:wörd/secret", "p@ss", "wörd"] {
            assert!(!contains(&bytes, secret), "{kind:?}: {secret} stored");
        }
    }
}

#[test]
fn a_put_replaces_and_put_many_keeps_the_last_of_a_repeated_key() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let tier = open(kind, dir.path());
        tier.put(&entry("k", 1)).unwrap();
        tier.put(&entry("k", 2)).unwrap();
        assert_eq!(tier.get("k").unwrap(), Some(entry("k", 2)), "{kind:?}");
        tier.put_many(&[entry("m", 1), entry("n", 1), entry("m", 3)])
            .unwrap();
        assert_eq!(tier.get("m").unwrap(), Some(entry("m", 3)), "{kind:?}");
        assert_eq!(tier.len().unwrap(), 3, "{kind:?}");
        drop(tier);
        assert_eq!(
            open(kind, dir.path()).get("m").unwrap(),
            Some(entry("m", 3)),
            "{kind:?}: the last is what was stored"
        );
    }
}

#[test]
fn delete_says_whether_the_key_was_stored_and_puts_and_deletes_stick_across_reopen() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let tier = open(kind, dir.path());
        tier.put_many(&[full_entry("a"), entry("b", 1), entry("c", 1)])
            .unwrap();
        let mut b2 = entry("b", 1);
        b2.access_count = 42;
        tier.put(&b2).unwrap();
        assert!(tier.delete("c").unwrap(), "{kind:?}");
        assert!(!tier.delete("c").unwrap(), "{kind:?}");
        drop(tier);
        let again = open(kind, dir.path());
        assert_eq!(again.len().unwrap(), 2, "{kind:?}");
        assert_eq!(again.get("a").unwrap(), Some(full_entry("a")), "{kind:?}");
        assert_eq!(again.get("b").unwrap(), Some(b2), "{kind:?}");
        assert_eq!(again.get("c").unwrap(), None, "{kind:?}");
    }
}

#[test]
fn two_handles_on_the_same_files_see_each_others_writes() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (open(kind, dir.path()), open(kind, dir.path()));
        a.put(&full_entry("k")).unwrap();
        assert_eq!(b.get("k").unwrap(), Some(full_entry("k")), "{kind:?}");
        assert_eq!(b.len().unwrap(), 1, "{kind:?}");
        let mut newer = entry("k", 2);
        newer.access_count = 5;
        b.put(&newer).unwrap();
        assert_eq!(a.get("k").unwrap(), Some(newer), "{kind:?}");
        // Each deletes what the other wrote last, and the other sees it.
        assert!(a.delete("k").unwrap(), "{kind:?}");
        assert_eq!(b.get("k").unwrap(), None, "{kind:?}");
        assert_eq!(b.len().unwrap(), 0, "{kind:?}");
        a.put(&entry("j", 1)).unwrap();
        assert!(b.delete("j").unwrap(), "{kind:?}");
        assert_eq!(a.get("j").unwrap(), None, "{kind:?}");
        assert_eq!(a.len().unwrap(), 0, "{kind:?}");
    }
}

#[test]
fn put_if_absent_never_replaces_what_is_stored() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let tier = open(kind, dir.path());
        assert!(tier.put_if_absent(&entry("k", 1)).unwrap(), "{kind:?}");
        assert!(!tier.put_if_absent(&entry("k", 2)).unwrap(), "{kind:?}");
        assert_eq!(
            tier.get("k").unwrap().unwrap().proxy_url,
            entry("k", 1).proxy_url
        );
        // Another handle's put in between wins over a later copy.
        let other = open(kind, dir.path());
        other.put(&entry("k", 3)).unwrap();
        assert!(!tier.put_if_absent(&entry("k", 1)).unwrap());
        assert_eq!(
            tier.get("k").unwrap().unwrap().proxy_url,
            entry("k", 3).proxy_url
        );
    }
}

#[test]
fn a_copy_is_stored_only_where_absent_and_while_still_current() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let tier = open(kind, dir.path());
        let mut asked = 0;
        let mut no = || {
            asked += 1;
            false
        };
        assert_eq!(
            tier.put_if_absent_while_current(&entry("k", 1), &mut no)
                .unwrap(),
            CopyOutcome::NoLongerCurrent,
            "{kind:?}"
        );
        assert_eq!(asked, 1, "{kind:?}");
        assert_eq!(
            tier.get("k").unwrap(),
            None,
            "{kind:?}: a refused copy is not kept"
        );
        assert_eq!(
            tier.put_if_absent_while_current(&entry("k", 1), &mut || true)
                .unwrap(),
            CopyOutcome::Stored,
            "{kind:?}"
        );
        assert_eq!(
            tier.put_if_absent_while_current(&entry("k", 2), &mut || true)
                .unwrap(),
            CopyOutcome::Occupied,
            "{kind:?}"
        );
        assert_eq!(
            tier.get("k").unwrap().unwrap().proxy_url,
            entry("k", 1).proxy_url,
            "{kind:?}"
        );
    }
}

/// A local tier asks whether the copy is still current under its write lock, so a removal by
/// another handle cannot complete in between: it waits, and comes after the copy. (The shared
/// tier asks after storing and keeps deleted keys out with tombstones: see its own tests.)
#[test]
fn a_removal_waits_while_a_local_tier_asks_whether_a_copy_is_current() {
    for kind in kinds() {
        if matches!(kind, Kind::Redis | Kind::RedisCluster) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let tier = open(kind, dir.path());
        let other: Arc<dyn Tier> = Arc::from(open(kind, dir.path()));
        other.put(&entry("k", 1)).unwrap();
        other.delete("k").unwrap();
        let removal_done_while_asking = std::thread::scope(|scope| {
            let mut remover = None;
            let mut still_current = || {
                let other = other.clone();
                let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let flag = done.clone();
                remover = Some(scope.spawn(move || {
                    other.delete("k").unwrap();
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                }));
                std::thread::sleep(std::time::Duration::from_millis(300));
                let seen = done.load(std::sync::atomic::Ordering::SeqCst);
                // Report through the outcome: true = the removal got in while asking.
                !seen
            };
            let outcome = tier
                .put_if_absent_while_current(&entry("k", 2), &mut still_current)
                .unwrap();
            remover.take().unwrap().join().unwrap();
            outcome != CopyOutcome::Stored
        });
        assert!(
            !removal_done_while_asking,
            "{kind:?}: another handle's delete completed while the copy was being checked"
        );
        assert_eq!(
            tier.get("k").unwrap(),
            None,
            "{kind:?}: the delete that waited must come after the copy"
        );
    }
}

/// `put_many_around` and `delete_around` run `below` exactly once, then their own change; a local
/// tier holds the keys' write lock meanwhile, so another handle's put of the key, started while
/// `below` runs, completes only after the change (and lands after it). The shared tier has no
/// such lock: there only the call's own effect is checked.
#[test]
fn a_local_tier_holds_the_keys_while_the_write_below_runs() {
    for kind in kinds() {
        let local = !matches!(kind, Kind::Redis | Kind::RedisCluster);
        let dir = tempfile::tempdir().unwrap();
        let tier = open(kind, dir.path());
        let other: Arc<dyn Tier> = Arc::from(open(kind, dir.path()));
        for deleting in [false, true] {
            other.put(&entry("k", 1)).unwrap();
            let mut runs = 0;
            let mut put_done_during_below = false;
            std::thread::scope(|scope| {
                let mut writer = None;
                let mut below = || {
                    runs += 1;
                    let other = other.clone();
                    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
                    let flag = done.clone();
                    writer = Some(scope.spawn(move || {
                        other.put(&entry("k", 3)).unwrap();
                        flag.store(true, std::sync::atomic::Ordering::SeqCst);
                    }));
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    put_done_during_below = done.load(std::sync::atomic::Ordering::SeqCst);
                };
                if deleting {
                    assert_eq!(
                        tier.delete_around(&["k"], &mut below).unwrap(),
                        1,
                        "{kind:?}: delete_around removes the key it held"
                    );
                } else {
                    tier.put_many_around(&[entry("k", 2)], &mut below).unwrap();
                }
                writer.take().unwrap().join().unwrap();
            });
            assert_eq!(
                runs, 1,
                "{kind:?} (deleting: {deleting}): `below` runs once"
            );
            if local {
                assert!(
                    !put_done_during_below,
                    "{kind:?} (deleting: {deleting}): another handle's put completed while the \
                     write below ran"
                );
                assert_eq!(
                    tier.get("k").unwrap().map(|e| e.proxy_url),
                    Some(entry("k", 3).proxy_url),
                    "{kind:?} (deleting: {deleting}): the put that waited lands after the change"
                );
            }
        }
    }
}

#[test]
fn usage_is_recorded_on_the_same_version_only_and_never_creates_an_entry() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let tier = open(kind, dir.path());
        let stored = full_entry("k");
        tier.put(&stored).unwrap();
        let mut read = stored.clone();
        read.access_count = 42;
        read.last_accessed = t("2036-11-24T02:00:00.000007Z");
        read.evicted_from_l1 = false;
        assert_eq!(
            tier.record_usage(&[Usage::of(&read)]).unwrap(),
            1,
            "{kind:?}"
        );
        let got = tier.get("k").unwrap().unwrap();
        assert_eq!(
            (got.access_count, got.last_accessed, got.evicted_from_l1),
            (42, read.last_accessed, false),
            "{kind:?}"
        );
        assert_eq!(
            got.password, stored.password,
            "{kind:?}: only the counters change"
        );
        assert_eq!(got.failure_count, stored.failure_count, "{kind:?}");

        // A newer put of the key (another URL, another fetch time) is left alone.
        let mut newer = entry("k", 9);
        newer.fetch_time = t0().plus_seconds(1);
        tier.put(&newer).unwrap();
        read.access_count = 99;
        assert_eq!(
            tier.record_usage(&[Usage::of(&read)]).unwrap(),
            0,
            "{kind:?}"
        );
        assert_eq!(tier.get("k").unwrap().unwrap(), newer, "{kind:?}");

        // A deleted key stays deleted.
        tier.delete("k").unwrap();
        assert_eq!(
            tier.record_usage(&[Usage::of(&newer)]).unwrap(),
            0,
            "{kind:?}"
        );
        assert_eq!(tier.get("k").unwrap(), None, "{kind:?}");
        assert_eq!(tier.len().unwrap(), 0, "{kind:?}");
    }
}

#[test]
fn usage_recorded_for_an_upstream_row_matches_its_fetch_time_to_the_microsecond() {
    // A version names times to the microsecond; the entry read back from any tier matches it.
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let tier = open(kind, dir.path());
        let mut e = entry("k", 1);
        e.fetch_time = t("2036-11-24T01:00:00.999999Z");
        e.expires_at = t("2036-11-24T02:00:00.000001Z");
        tier.put(&e).unwrap();
        let read = tier.get("k").unwrap().unwrap();
        assert!(Version::of(&e).matches(&read), "{kind:?}");
        assert_eq!(
            tier.record_usage(&[Usage::of(&read)]).unwrap(),
            1,
            "{kind:?}"
        );
    }
}

#[test]
fn delete_if_version_removes_only_that_version() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let tier = open(kind, dir.path());
        let old = entry("k", 1);
        tier.put(&old).unwrap();
        let mut newer = entry("k", 2);
        newer.fetch_time = t0().plus_seconds(5);
        tier.put(&newer).unwrap();
        assert!(
            !tier.delete_if_version("k", &Version::of(&old)).unwrap(),
            "{kind:?}"
        );
        assert_eq!(tier.get("k").unwrap(), Some(newer.clone()), "{kind:?}");
        assert!(
            tier.delete_if_version("k", &Version::of(&newer)).unwrap(),
            "{kind:?}"
        );
        assert_eq!(tier.get("k").unwrap(), None, "{kind:?}");
        assert!(!tier.delete_if_version("k", &Version::of(&newer)).unwrap());
    }
}

#[test]
fn failures_from_many_handles_and_threads_all_count() {
    const THREADS: usize = 4;
    const EACH: usize = 25;
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(kind, dir.path());
        first.put(&entry("k", 1)).unwrap();
        assert_eq!(first.record_failure("absent").unwrap(), None, "{kind:?}");
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                let tier = open(kind, dir.path());
                scope.spawn(move || {
                    for _ in 0..EACH {
                        tier.record_failure("k").unwrap().unwrap();
                    }
                });
            }
        });
        let got = first.get("k").unwrap().unwrap();
        assert_eq!(got.failure_count, (THREADS * EACH) as i64, "{kind:?}");
        assert_eq!(got.health_status, HealthStatus::Unhealthy, "{kind:?}");
        let next = first.record_failure("k").unwrap().unwrap();
        assert_eq!(next.failure_count, (THREADS * EACH) as i64 + 1, "{kind:?}");
        assert_eq!(next.expires_at, got.expires_at, "{kind:?}");
        assert_eq!(
            got.proxy_url,
            entry("k", 1).proxy_url,
            "{kind:?}: the rest is kept"
        );
    }
}

#[test]
fn remove_expired_takes_expires_at_equal_to_now_and_keeps_one_microsecond_later() {
    let micros =
        |at: Timestamp, delta: i64| Timestamp::from_micros(at.as_micros() + delta).unwrap();
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let tier = open(kind, dir.path());
        let now = t("2036-11-24T05:06:07.123457Z");
        let mut before = entry("before", 1);
        before.expires_at = micros(now, -1);
        let mut at_now = entry("now", 1);
        at_now.expires_at = now;
        let mut later = entry("later", 1);
        later.expires_at = micros(now, 1);
        tier.put_many(&[before, at_now, later.clone()]).unwrap();
        let other = open(kind, dir.path());
        assert!(
            tier.remove_expired(micros(now, -2)).unwrap().is_empty(),
            "{kind:?}: nothing has expired yet"
        );
        assert_eq!(
            tier.remove_expired(micros(now, -1)).unwrap(),
            ["before"],
            "{kind:?}"
        );
        assert_eq!(tier.remove_expired(now).unwrap(), ["now"], "{kind:?}");
        assert!(tier.remove_expired(now).unwrap().is_empty(), "{kind:?}");
        assert_eq!(other.len().unwrap(), 1, "{kind:?}: another handle sees it");
        assert_eq!(other.get("later").unwrap(), Some(later), "{kind:?}");
        assert_eq!(
            tier.remove_expired(micros(now, 1)).unwrap(),
            ["later"],
            "{kind:?}"
        );
        assert_eq!(tier.len().unwrap(), 0, "{kind:?}");
    }
}

#[test]
fn clear_returns_the_keys_and_every_handle_sees_it() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (open(kind, dir.path()), open(kind, dir.path()));
        a.put_many(&[entry("x", 1), entry("y", 1)]).unwrap();
        let mut keys = a.clear().unwrap();
        keys.sort();
        assert_eq!(keys, ["x", "y"], "{kind:?}");
        assert_eq!(a.len().unwrap(), 0, "{kind:?}");
        assert_eq!(b.len().unwrap(), 0, "{kind:?}");
        assert_eq!(b.get("x").unwrap(), None, "{kind:?}");
        assert!(a.clear().unwrap().is_empty(), "{kind:?}");
        // A handle clears what another one wrote, and both go on writing.
        b.put_many(&[entry("a", 1), entry("b", 1), entry("c", 1)])
            .unwrap();
        assert_eq!(a.len().unwrap(), 3, "{kind:?}");
        let mut keys = a.clear().unwrap();
        keys.sort();
        assert_eq!(keys, ["a", "b", "c"], "{kind:?}");
        assert_eq!(b.len().unwrap(), 0, "{kind:?}");
        assert_eq!(b.get("a").unwrap(), None, "{kind:?}");
        b.put(&entry("z", 1)).unwrap();
        assert_eq!(a.get("z").unwrap(), Some(entry("z", 1)), "{kind:?}");
        assert_eq!(open(kind, dir.path()).len().unwrap(), 1, "{kind:?}");
    }
}

#[test]
fn scan_visits_every_live_entry_and_changes_nothing() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let tier = open(kind, dir.path());
        let stored = [full_entry("a"), entry("b", 2)];
        tier.put_many(&[stored[0].clone(), entry("gone", 1), stored[1].clone()])
            .unwrap();
        tier.delete("gone").unwrap();
        let before = stored_data(kind, dir.path());
        let mut seen = Vec::new();
        tier.scan(&mut |r| seen.push(r.unwrap())).unwrap();
        seen.sort_by(|x, y| x.key.cmp(&y.key));
        assert_eq!(seen, stored, "{kind:?}: a deleted entry is not visited");
        assert!(
            stored_data(kind, dir.path()) == before,
            "{kind:?}: scan changed what is stored"
        );
        assert_eq!(
            tier.get("a").unwrap().unwrap(),
            stored[0],
            "{kind:?}: unchanged"
        );
    }
}

#[test]
fn a_credential_under_another_key_is_a_crypto_error_and_the_record_is_kept() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        open(kind, dir.path()).put(&full_entry("k")).unwrap();
        let (wrong, counters) = open_with(
            kind,
            dir.path(),
            TierOptions {
                key: OTHER_KEY,
                ..TierOptions::default()
            },
        );
        let err = wrong.get("k").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Crypto, "{kind:?}");
        for secret in ["alice", "p@ss"] {
            assert!(!err.to_string().contains(secret), "{kind:?}: {err}");
        }
        assert_eq!(
            counters.get(Counter::EvictionsCorruption),
            0,
            "{kind:?}: not damage"
        );
        assert_eq!(wrong.len().unwrap(), 1, "{kind:?}");
        let mut failed = 0;
        wrong
            .scan(&mut |r| {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::Crypto);
                failed += 1;
            })
            .unwrap();
        assert_eq!(failed, 1, "{kind:?}");
        assert_eq!(
            open(kind, dir.path()).get("k").unwrap(),
            Some(full_entry("k")),
            "{kind:?}: kept"
        );
    }
}

#[test]
fn files_are_0600_and_directories_0700() {
    for kind in kinds()
        .into_iter()
        .filter(|k| !matches!(k, Kind::Redis | Kind::RedisCluster))
    {
        let base = tempfile::tempdir().unwrap();
        // Two levels the tier creates itself, above the ones of its own layout.
        let dir = base.path().join("one").join("two");
        open(kind, &dir).put(&full_entry("k")).unwrap();
        let at = location(kind, &dir);
        let top = if at.is_dir() {
            at.clone()
        } else {
            at.parent().unwrap().to_path_buf()
        };
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let created: Vec<&Path> = top.ancestors().take_while(|d| *d != base.path()).collect();
        assert_eq!(created.len(), 3, "{kind:?}: one, two and the tier's own");
        for d in created {
            assert_eq!(mode(d), 0o700, "{kind:?}: {}", d.display());
        }
        for file in std::fs::read_dir(&top).unwrap() {
            let path = file.unwrap().path();
            if path.is_file() {
                assert_eq!(mode(&path), 0o600, "{kind:?}: {}", path.display());
            }
        }
    }
}

#[test]
fn many_threads_sharing_two_handles_lose_no_put() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let handles: [Arc<dyn Tier>; 2] = [
            Arc::from(open(kind, dir.path())),
            Arc::from(open(kind, dir.path())),
        ];
        std::thread::scope(|scope| {
            for n in 0..4u32 {
                let tier = handles[n as usize % 2].clone();
                scope.spawn(move || {
                    for i in 0..50 {
                        tier.put(&entry(&format!("t{n}-{i}"), i)).unwrap();
                    }
                });
            }
        });
        for tier in &handles {
            assert_eq!(tier.len().unwrap(), 200, "{kind:?}");
        }
        assert_eq!(open(kind, dir.path()).len().unwrap(), 200, "{kind:?}");
    }
}

#[test]
fn the_capacity_holds_while_many_threads_read_and_write_through_one_handle() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let tier: Arc<dyn Tier> =
            Arc::from(open_bounded(kind, dir.path(), 50, EvictionPolicy::Lru).0);
        std::thread::scope(|scope| {
            for n in 0..4 {
                let tier = tier.clone();
                scope.spawn(move || {
                    for i in 0..40 {
                        let key = format!("t{n}-{i}");
                        let mut e = entry(&key, 1);
                        e.last_accessed = t0().plus_seconds(i);
                        tier.put(&e).unwrap();
                        tier.get(&key).unwrap();
                        tier.len().unwrap();
                    }
                });
            }
        });
        assert_eq!(tier.len().unwrap(), 50, "{kind:?}");
    }
}

/// Whatever the policy, the entries of one batch leave in the batch's order (they tie on every
/// usage counter), and each eviction counts. (Which of two tied entries a reopened handle evicts
/// first is each tier's own: see its tests.)
#[test]
fn one_batch_larger_than_the_capacity_keeps_its_last_entries() {
    for kind in kinds() {
        for policy in [EvictionPolicy::Lru, EvictionPolicy::Fifo] {
            let dir = tempfile::tempdir().unwrap();
            let (tier, counters) = open_bounded(kind, dir.path(), 2, policy);
            let batch: Vec<CacheEntry> = (0..5).map(|i| entry(&format!("k{i}"), 1)).collect();
            tier.put_many(&batch).unwrap();
            assert_eq!(keys(&*tier), ["k3", "k4"], "{kind:?} {policy:?}");
            assert_eq!(
                counters.get(Counter::EvictionsLru),
                3,
                "{kind:?} {policy:?}"
            );
            assert_eq!(
                keys(&*open(kind, dir.path())),
                ["k3", "k4"],
                "{kind:?} {policy:?}: the evictions are stored"
            );
        }
    }
}

#[test]
fn many_threads_on_two_handles_agree() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        std::thread::scope(|scope| {
            for handle in 0..2 {
                let tier = open(kind, dir.path());
                scope.spawn(move || {
                    for i in 0..100u32 {
                        let key = format!("h{handle}-{}", i % 20);
                        match i % 4 {
                            0 | 1 => tier.put(&entry(&key, i % 250)).unwrap(),
                            2 => {
                                tier.get(&key).unwrap();
                            }
                            _ => {
                                tier.delete(&key).unwrap();
                            }
                        }
                    }
                });
            }
        });
        // Each handle's last op on each of its keys decides: i = 80..99 ran last.
        let tier = open(kind, dir.path());
        for handle in 0..2 {
            for k in 0..20u32 {
                let last = (80..100).find(|i| i % 20 == k).unwrap();
                let key = format!("h{handle}-{k}");
                let got = tier.get(&key).unwrap();
                match last % 4 {
                    0 | 1 => assert_eq!(got.unwrap().proxy_url, entry(&key, last % 250).proxy_url),
                    3 => assert_eq!(got, None, "{kind:?}: {key}"),
                    _ => {}
                }
            }
        }
    }
}
