//! The JSONL L2 tier: format, sharing shards between handles, compaction, damage, capacity,
//! upstream. What every persistent tier does (round trips, handles, expiry, clear, scan, keys,
//! modes) is in tests/tier_contract.rs.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

mod common;

use common::tiers::{TierOptions, tier_context};
use pwcache::stats::{Counter, TierCounters};
use pwcache::tier::Tier;
use pwcache::tier::jsonl::{JsonlTier, shard_file_name, shard_index};
use pwcache::{CacheEntry, Durability, EvictionPolicy, HealthStatus, Secret, Timestamp};

const FIXTURES: &str = "tests/fixtures/proxywhirl-0.3.3";

fn open_with(dir: &Path, options: TierOptions) -> (JsonlTier, Arc<TierCounters>) {
    let (ctx, counters) = tier_context(dir, &options);
    (JsonlTier::open(dir, ctx).unwrap(), counters)
}

fn open(dir: &Path) -> JsonlTier {
    open_with(dir, TierOptions::default()).0
}

fn t(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn entry(key: &str) -> CacheEntry {
    CacheEntry::new(
        key,
        format!("http://10.0.0.1:8080/{key}"),
        "user",
        t("2026-11-24T01:00:00Z"),
        3600,
    )
}

fn full_entry(key: &str) -> CacheEntry {
    common::tiers::full_entry(key, entry(key).fetch_time)
}

/// Keys that all live in the shard of `like`.
fn keys_in_same_shard(n: usize) -> Vec<String> {
    let shard = shard_index("k0");
    (0..)
        .map(|i| format!("k{i}"))
        .filter(|k| shard_index(k) == shard)
        .take(n)
        .collect()
}

fn shard_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(shard_file_name(shard_index(key)))
}

/// Puts `entry`, which the tier holds already (so its live records stay the same), again and
/// again until the shard that holds it is compacted, as writes compact a shard in use: the file
/// at the shard's path is then another one (a rename put it there).
fn rewrite_until_compacted(tier: &JsonlTier, dir: &Path, entry: &CacheEntry) {
    let path = shard_path(dir, &entry.key);
    let file = |p: &Path| {
        let m = fs::metadata(p).unwrap();
        (m.dev(), m.ino())
    };
    let before = file(&path);
    for _ in 0..10_000 {
        tier.put(entry).unwrap();
        if file(&path) != before {
            return;
        }
    }
    panic!("{} was not compacted", path.display());
}

fn all_files_text(dir: &Path) -> String {
    let mut text = String::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            text.push_str(&String::from_utf8_lossy(&fs::read(&p).unwrap()));
        }
    }
    text
}

fn corruption(c: &TierCounters) -> u64 {
    c.get(Counter::EvictionsCorruption)
}

/// The round trip, the count and the absence of plain credentials are in the tier contract
/// (tests/tier_contract.rs); this is the line a record is.
#[test]
fn a_record_is_one_json_line_with_fernet_tokens_and_no_field_for_an_absent_credential() {
    let dir = tempfile::tempdir().unwrap();
    let tier = open(dir.path());
    tier.put(&full_entry("k1")).unwrap();
    let line = fs::read_to_string(shard_path(dir.path(), "k1")).unwrap();
    assert_eq!(line.lines().count(), 1);
    assert!(line.starts_with(
        r#"{"key":"k1","proxy_url":"socks5://10.1.2.3:1080","source":"fetched","fetch_time":"#
    ));
    assert!(line.contains(r#""total_health_check_failures":6,"username_encrypted":"#));
    assert!(line.contains(r#"","password_encrypted":"gAAAAA"#));
    let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
    assert!(
        v["username_encrypted"]
            .as_str()
            .unwrap()
            .starts_with("gAAAAA")
    );
    assert_eq!(v["fetch_time"], "2026-11-24T01:00:00.000000+00:00");
    assert!(v.get("username").is_none());

    // Absent credentials are omitted.
    tier.put(&entry("k2")).unwrap();
    let line = fs::read_to_string(shard_path(dir.path(), "k2")).unwrap();
    assert!(
        line.lines()
            .any(|l| l.contains("\"k2\"") && !l.contains("_encrypted"))
    );
    assert_eq!(tier.get("k2").unwrap(), Some(entry("k2")));
}

/// Two handles append to one shard file in turn; each reads every record, its own and the
/// other's. (What two handles see of each other's puts and deletes is in the tier contract.)
#[test]
fn appends_from_two_handles_to_one_shard_are_all_read_by_both() {
    let dir = tempfile::tempdir().unwrap();
    let h1 = open(dir.path());
    let h2 = open(dir.path());
    let keys = keys_in_same_shard(6);
    for (i, k) in keys.iter().enumerate() {
        let h = if i % 2 == 0 { &h1 } else { &h2 };
        h.put(&entry(k)).unwrap();
    }
    for k in &keys {
        assert_eq!(h1.get(k).unwrap(), Some(entry(k)));
        assert_eq!(h2.get(k).unwrap(), Some(entry(k)));
    }
}

/// Rewrites one key in one shard until the shard has been compacted.
#[test]
fn compaction_shrinks_the_shard_and_keeps_every_live_record() {
    let dir = tempfile::tempdir().unwrap();
    let tier = open(dir.path());
    let keys = keys_in_same_shard(3);
    let path = shard_path(dir.path(), &keys[0]);
    tier.put(&full_entry(&keys[1])).unwrap();
    let mut big = entry(&keys[0]);
    big.last_health_error = Some("e".repeat(2000));
    let mut max_size = 0;
    let mut written = 0;
    for i in 0..400 {
        big.access_count = i;
        tier.put(&big).unwrap();
        let size = fs::metadata(&path).unwrap().len();
        written += 2000;
        max_size = max_size.max(size);
    }
    tier.put(&entry(&keys[2])).unwrap();
    assert!(tier.delete(&keys[2]).unwrap());
    // About 800 KB of records went through a shard that never grew far past the threshold.
    assert!(written > 3 * max_size, "the shard grew to {max_size}");
    assert!(max_size > 200 * 1024 && max_size < 300 * 1024, "{max_size}");
    rewrite_until_compacted(&tier, dir.path(), &big);
    let size = fs::metadata(&path).unwrap().len();
    assert!(
        size < 8 * 1024,
        "compacted to the two live records: {size} bytes"
    );
    assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 2);
    assert_eq!(tier.get(&keys[0]).unwrap(), Some(big.clone()));
    assert_eq!(tier.get(&keys[1]).unwrap(), Some(full_entry(&keys[1])));
    assert_eq!(tier.get(&keys[2]).unwrap(), None);
    let again = open(dir.path());
    assert_eq!(again.get(&keys[0]).unwrap(), Some(big));
    assert_eq!(again.get(&keys[1]).unwrap(), Some(full_entry(&keys[1])));
    assert_eq!(again.len().unwrap(), 2);
}

#[test]
fn another_handles_compaction_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let h1 = open(dir.path());
    let h2 = open(dir.path());
    let keys = keys_in_same_shard(4);
    for k in &keys {
        h1.put(&full_entry(k)).unwrap();
    }
    assert!(h1.delete(&keys[0]).unwrap());
    assert_eq!(h2.len().unwrap(), 3);
    let path = shard_path(dir.path(), &keys[0]);
    let before = fs::metadata(&path).unwrap().len();
    rewrite_until_compacted(&h1, dir.path(), &full_entry(&keys[1]));
    assert!(fs::metadata(&path).unwrap().len() < before);
    // h2's offsets are stale; it must notice the new file.
    for k in &keys[1..] {
        assert_eq!(h2.get(k).unwrap(), Some(full_entry(k)));
    }
    h2.put(&entry("after")).unwrap();
    h2.put(&entry(&keys[0])).unwrap();
    assert_eq!(h1.get(&keys[0]).unwrap(), Some(entry(&keys[0])));
    assert_eq!(h1.get("after").unwrap(), Some(entry("after")));
    assert_eq!(h1.len().unwrap(), 5);
}

#[test]
fn a_torn_last_line_is_ignored_then_cut_away_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys_in_same_shard(3);
    let path = shard_path(dir.path(), &keys[0]);
    let (h1, c1) = open_with(dir.path(), TierOptions::default());
    h1.put(&entry(&keys[0])).unwrap();
    let good_len = fs::metadata(&path).unwrap().len();
    let torn = br#"{"key":"torn","proxy_url":"http://h:1","expires_at":"2030-01-0"#;
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(torn)
        .unwrap();
    // A live handle does not index it.
    assert_eq!(h1.len().unwrap(), 1);
    assert_eq!(h1.get("torn").unwrap(), None);
    assert_eq!(corruption(&c1), 0);
    drop(h1);

    let (h2, c2) = open_with(dir.path(), TierOptions::default());
    assert_eq!(corruption(&c2), 1);
    assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
    assert_eq!(h2.get(&keys[0]).unwrap(), Some(entry(&keys[0])));
    assert_eq!(h2.len().unwrap(), 1);
}

#[test]
fn a_torn_line_left_by_a_crashed_writer_does_not_swallow_the_next_record() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys_in_same_shard(2);
    let path = shard_path(dir.path(), &keys[0]);
    let (h1, _) = open_with(dir.path(), TierOptions::default());
    let (h2, c2) = open_with(dir.path(), TierOptions::default());
    h1.put(&entry(&keys[0])).unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(br#"{"key":"half"#)
        .unwrap();
    h1.put(&entry(&keys[1])).unwrap();
    assert_eq!(h2.get(&keys[1]).unwrap(), Some(entry(&keys[1])));
    assert_eq!(h2.get(&keys[0]).unwrap(), Some(entry(&keys[0])));
    assert_eq!(corruption(&c2), 1);
    let (h3, c3) = open_with(dir.path(), TierOptions::default());
    assert_eq!(h3.len().unwrap(), 2);
    assert_eq!(corruption(&c3), 1);
}

#[test]
fn a_corrupt_middle_line_is_counted_once_and_the_rest_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys_in_same_shard(2);
    let path = shard_path(dir.path(), &keys[0]);
    {
        let tier = open(dir.path());
        tier.put(&entry(&keys[0])).unwrap();
    }
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"{this is not json}\n[1,2\n")
        .unwrap();
    let (tier, c) = open_with(dir.path(), TierOptions::default());
    assert_eq!(corruption(&c), 2);
    tier.put(&entry(&keys[1])).unwrap();
    assert_eq!(tier.get(&keys[0]).unwrap(), Some(entry(&keys[0])));
    assert_eq!(tier.get(&keys[1]).unwrap(), Some(entry(&keys[1])));
    assert_eq!(tier.len().unwrap(), 2);
    assert_eq!(corruption(&c), 2);
    // Compaction drops the corrupt lines.
    rewrite_until_compacted(&tier, dir.path(), &entry(&keys[1]));
    assert!(!fs::read_to_string(&path).unwrap().contains("not json"));
    let (again, c) = open_with(dir.path(), TierOptions::default());
    assert_eq!(corruption(&c), 0);
    assert_eq!(again.len().unwrap(), 2);
}

#[test]
fn a_record_that_fails_to_decode_on_get_is_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (tier, c) = open_with(dir.path(), TierOptions::default());
    tier.put(&entry("good")).unwrap();
    let bad = r#"{"key":"bad","proxy_url":"http://h:1","source":"user","fetch_time":"not a date","last_accessed":"2026-11-24T01:00:00+00:00","access_count":0,"ttl_seconds":60,"expires_at":"2030-01-01T00:00:00+00:00","health_status":"unknown","failure_count":0,"evicted_from_l1":false}"#;
    let path = shard_path(dir.path(), "bad");
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .unwrap()
        .write_all(format!("{bad}\n").as_bytes())
        .unwrap();
    assert_eq!(tier.len().unwrap(), 2);
    assert_eq!(corruption(&c), 0);
    let mut seen = (0, 0);
    tier.scan(&mut |r| match r {
        Ok(_) => seen.0 += 1,
        Err(_) => seen.1 += 1,
    })
    .unwrap();
    assert_eq!(seen, (1, 1));
    assert_eq!(corruption(&c), 0, "scan changes nothing");
    assert_eq!(tier.get("bad").unwrap(), None);
    assert_eq!(corruption(&c), 1);
    assert_eq!(tier.len().unwrap(), 1);
    assert_eq!(open(dir.path()).get("bad").unwrap(), None);
    assert!(
        fs::read_to_string(&path)
            .unwrap()
            .contains(r#"{"op":"delete","key":"bad"}"#)
    );
}

fn surviving(dir: &Path, keys: &[&str]) -> Vec<String> {
    let tier = open(dir);
    keys.iter()
        .filter(|k| tier.get(k).unwrap().is_some())
        .map(|k| k.to_string())
        .collect()
}

fn eviction_case(policy: EvictionPolicy, uses: &[&str]) -> (Vec<String>, u64) {
    let dir = tempfile::tempdir().unwrap();
    let (tier, c) = open_with(
        dir.path(),
        TierOptions {
            max: Some(3),
            policy,
            ..TierOptions::default()
        },
    );
    for k in ["a", "b", "c"] {
        tier.put(&entry(k)).unwrap();
    }
    for k in uses {
        assert!(tier.get(k).unwrap().is_some());
    }
    tier.put(&entry("d")).unwrap();
    assert_eq!(tier.len().unwrap(), 3);
    let evicted = c.get(Counter::EvictionsLru);
    let left = surviving(dir.path(), &["a", "b", "c", "d"]);
    (left, evicted)
}

#[test]
fn lru_evicts_the_least_recently_used() {
    let (left, n) = eviction_case(EvictionPolicy::Lru, &["a", "c", "b", "a"]);
    assert_eq!(left, ["a", "b", "d"]);
    assert_eq!(n, 1);
}

#[test]
fn lfu_evicts_the_least_frequently_used() {
    // a: 3 uses, c: 2, b: 1 and older than the new d (1 use).
    let (left, n) = eviction_case(EvictionPolicy::Lfu, &["a", "a", "c"]);
    assert_eq!(left, ["a", "c", "d"]);
    assert_eq!(n, 1);
}

#[test]
fn fifo_evicts_the_first_inserted_whatever_its_use() {
    let (left, n) = eviction_case(EvictionPolicy::Fifo, &["a", "a", "a"]);
    assert_eq!(left, ["b", "c", "d"]);
    assert_eq!(n, 1);
}

#[test]
fn lru_order_is_rebuilt_from_last_accessed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let tier = open(dir.path());
        for (k, at) in [
            ("old", "2026-01-01T00:00:03Z"),
            ("older", "2026-01-01T00:00:02Z"),
            ("new", "2026-01-01T00:00:04Z"),
        ] {
            let mut e = entry(k);
            e.last_accessed = t(at);
            tier.put(&e).unwrap();
        }
    }
    let (tier, _) = open_with(
        dir.path(),
        TierOptions {
            max: Some(3),
            ..TierOptions::default()
        },
    );
    tier.put(&entry("newest")).unwrap();
    assert_eq!(
        surviving(dir.path(), &["old", "older", "new", "newest"]),
        ["old", "new", "newest"]
    );
}

/// The modes of the files and directories a tier creates are in the tier contract; a shard
/// written anew by compaction keeps 0600, and the directory holds the shards and their locks.
#[test]
fn a_compacted_shard_is_0600_among_16_shards_and_16_lock_files() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("one").join("two");
    let tier = open(&dir);
    tier.put(&full_entry("k")).unwrap();
    rewrite_until_compacted(&tier, &dir, &full_entry("k"));
    let mut files = 0;
    for e in fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            p.display()
        );
        files += 1;
    }
    assert_eq!(files, 32, "16 shards and 16 lock files");
}

#[test]
fn full_durability_works_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let full = || TierOptions {
        durability: Durability::Full,
        ..TierOptions::default()
    };
    {
        let (tier, _) = open_with(dir.path(), full());
        tier.put_many(&[full_entry("a"), entry("b")]).unwrap();
        assert!(tier.delete("b").unwrap());
        rewrite_until_compacted(&tier, dir.path(), &full_entry("a"));
        tier.put(&entry("c")).unwrap();
    }
    let (tier, _) = open_with(dir.path(), full());
    assert_eq!(tier.get("a").unwrap(), Some(full_entry("a")));
    assert_eq!(tier.get("c").unwrap(), Some(entry("c")));
    assert_eq!(tier.len().unwrap(), 2);
    assert_eq!(tier.clear().unwrap().len(), 2);
}

// ---- upstream fixtures --------------------------------------------------------------------

fn copy_upstream_shards(to: &Path) -> usize {
    fs::create_dir_all(to).unwrap();
    let mut n = 0;
    for e in fs::read_dir(Path::new(FIXTURES).join("l2_jsonl")).unwrap() {
        let p = e.unwrap().path();
        fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        n += 1;
    }
    n
}

fn opt_time(v: &serde_json::Value) -> Option<Timestamp> {
    v.as_str().map(t)
}

#[test]
fn upstream_shards_are_imported_once_with_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let l2 = dir.path().join("l2");
    let copied = copy_upstream_shards(&l2);
    // Kept in a static (not leaked), so the test is clean under LeakSanitizer.
    static FIXTURE_KEY: OnceLock<String> = OnceLock::new();
    let key = FIXTURE_KEY.get_or_init(|| {
        let text = fs::read_to_string(Path::new(FIXTURES).join("key.txt")).unwrap();
        text.trim().to_string()
    });
    let (tier, c) = open_with(
        &l2,
        TierOptions {
            key,
            ..TierOptions::default()
        },
    );
    assert_eq!(corruption(&c), 0);
    let expected: Vec<serde_json::Value> = serde_json::from_str(
        &fs::read_to_string(Path::new(FIXTURES).join("expected.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(expected.len(), 40);
    assert_eq!(tier.len().unwrap(), 40);
    let mut with_credentials = 0;
    for x in &expected {
        let k = x["key"].as_str().unwrap();
        let e = tier
            .get(k)
            .unwrap()
            .unwrap_or_else(|| panic!("{k} imported"));
        assert_eq!(e.proxy_url, x["proxy_url"].as_str().unwrap());
        assert_eq!(
            e.username.as_ref().map(Secret::expose),
            x["username"].as_str()
        );
        assert_eq!(
            e.password.as_ref().map(Secret::expose),
            x["password"].as_str()
        );
        with_credentials += usize::from(e.password.is_some());
        assert_eq!(e.source, x["source"].as_str().unwrap());
        assert_eq!(e.fetch_time, t(x["fetch_time"].as_str().unwrap()));
        assert_eq!(e.last_accessed, t(x["last_accessed"].as_str().unwrap()));
        assert_eq!(e.expires_at, t(x["expires_at"].as_str().unwrap()));
        assert_eq!(e.access_count, x["access_count"].as_i64().unwrap());
        assert_eq!(e.ttl_seconds, x["ttl_seconds"].as_i64().unwrap());
        assert_eq!(
            e.health_status.as_str(),
            x["health_status"].as_str().unwrap()
        );
        assert_eq!(e.failure_count, x["failure_count"].as_i64().unwrap());
        assert_eq!(e.evicted_from_l1, x["evicted_from_l1"].as_bool().unwrap());
        assert_eq!(e.last_health_check, opt_time(&x["last_health_check"]));
        assert_eq!(e.next_check_time, opt_time(&x["next_check_time"]));
        assert_eq!(
            e.last_health_error.as_deref(),
            x["last_health_error"].as_str()
        );
        for f in [
            "consecutive_health_failures",
            "consecutive_health_successes",
            "recovery_attempt",
            "total_health_checks",
            "total_health_check_failures",
        ] {
            let got = match f {
                "consecutive_health_failures" => e.consecutive_health_failures,
                "consecutive_health_successes" => e.consecutive_health_successes,
                "recovery_attempt" => e.recovery_attempt,
                "total_health_checks" => e.total_health_checks,
                _ => e.total_health_check_failures,
            };
            assert_eq!(got, x[f].as_i64().unwrap(), "{f}");
        }
        let now = t("2030-01-01T00:00:00Z");
        assert_eq!(e.is_expired(now), x["expired"].as_bool().unwrap(), "{k}");
    }
    assert!(with_credentials > 0);

    let names: Vec<String> = fs::read_dir(&l2)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names
            .iter()
            .filter(|n| n.ends_with(".jsonl.imported"))
            .count(),
        copied
    );
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("shard_") && n.ends_with(".jsonl"))
    );
    assert!(
        !all_files_text(&l2).contains("user0\""),
        "no plain credential"
    );

    // A second open imports nothing more; deletes stay deleted.
    let first = expected[0]["key"].as_str().unwrap();
    assert!(tier.delete(first).unwrap());
    drop(tier);
    let (again, c) = open_with(
        &l2,
        TierOptions {
            key,
            ..TierOptions::default()
        },
    );
    assert_eq!(again.len().unwrap(), 39);
    assert_eq!(again.get(first).unwrap(), None);
    assert_eq!(corruption(&c), 0);
}

#[test]
fn upstream_lines_with_plain_credentials_or_damage_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let plain = r#"{"key": "p1", "proxy_url": "http://h:1", "username": "bob", "password": "pw", "source": "user", "fetch_time": "2030-01-02T03:04:05", "last_accessed": "2030-01-02T03:04:05+00:00", "access_count": 1, "ttl_seconds": 60, "expires_at": "2030-01-02T03:05:05+00:00", "health_status": "healthy", "failure_count": 0, "evicted_from_l1": false}"#;
    fs::write(
        dir.path().join("shard_03.jsonl"),
        format!("{plain}\nnot json at all\n"),
    )
    .unwrap();
    let (tier, c) = open_with(dir.path(), TierOptions::default());
    assert_eq!(corruption(&c), 1);
    let e = tier.get("p1").unwrap().unwrap();
    assert_eq!(e.username.as_ref().map(Secret::expose), Some("bob"));
    assert_eq!(e.password.as_ref().map(Secret::expose), Some("pw"));
    assert_eq!(e.fetch_time, t("2030-01-02T03:04:05Z"));
    assert_eq!(e.health_status, HealthStatus::Healthy);
    assert_eq!(e.total_health_checks, 0);
    assert!(dir.path().join("shard_03.jsonl.imported").exists());
    let ours = fs::read_to_string(shard_path(dir.path(), "p1")).unwrap();
    assert!(!ours.contains("\"bob\""));
}
