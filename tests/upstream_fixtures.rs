//! Files written by the Python proxywhirl 0.3.3 cache open in pwcache, through the manager:
//! the L3 database, the SQLite L2 database and the JSONL shards (imported on open). Every live
//! entry reads back equal to `expected.json` with its credentials decrypted; expired ones are not
//! found.

use std::path::{Path, PathBuf};

use pwcache::{CacheConfig, CacheManager, L2Backend, Timestamp};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proxywhirl-0.3.3")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn expected() -> Vec<Value> {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
        .unwrap()
}

fn key() -> String {
    std::fs::read_to_string(fixtures().join("key.txt"))
        .unwrap()
        .trim()
        .to_string()
}

fn instant(v: &Value) -> Option<Timestamp> {
    v.as_str().map(|s| Timestamp::parse(s).unwrap())
}

/// Reads every expected entry through `cache` and compares it field by field.
fn check_all(cache: &CacheManager, what: &str) {
    let (mut live, mut expired) = (0, 0);
    for want in expected() {
        let key = want["key"].as_str().unwrap();
        let got = cache.get(key).unwrap();
        if want["expired"].as_bool().unwrap() {
            assert!(
                got.is_none(),
                "{what}: {key} is expired and must not be found"
            );
            expired += 1;
            continue;
        }
        let got = got.unwrap_or_else(|| panic!("{what}: {key} not found"));
        live += 1;
        let secret = |s: &Option<pwcache::Secret>| s.as_ref().map(|s| s.expose().to_string());
        assert_eq!(
            got.proxy_url,
            want["proxy_url"].as_str().unwrap(),
            "{what} {key}"
        );
        assert_eq!(
            secret(&got.username).as_deref(),
            want["username"].as_str(),
            "{what} {key}"
        );
        assert_eq!(
            secret(&got.password).as_deref(),
            want["password"].as_str(),
            "{what} {key}"
        );
        assert_eq!(got.source, want["source"].as_str().unwrap());
        assert_eq!(
            Some(got.fetch_time),
            instant(&want["fetch_time"]),
            "{what} {key}"
        );
        assert_eq!(
            Some(got.expires_at),
            instant(&want["expires_at"]),
            "{what} {key}"
        );
        assert_eq!(got.ttl_seconds, want["ttl_seconds"].as_i64().unwrap());
        assert_eq!(
            got.access_count,
            want["access_count"].as_i64().unwrap() + 1,
            "a read"
        );
        assert_eq!(
            got.health_status.as_str(),
            want["health_status"].as_str().unwrap()
        );
        assert_eq!(got.failure_count, want["failure_count"].as_i64().unwrap());
        assert_eq!(
            got.evicted_from_l1,
            want["evicted_from_l1"].as_bool().unwrap()
        );
        assert_eq!(got.last_health_check, instant(&want["last_health_check"]));
        assert_eq!(got.next_check_time, instant(&want["next_check_time"]));
        assert_eq!(
            got.last_health_error.as_deref(),
            want["last_health_error"].as_str()
        );
        for (field, value) in [
            (
                "consecutive_health_failures",
                got.consecutive_health_failures,
            ),
            (
                "consecutive_health_successes",
                got.consecutive_health_successes,
            ),
            ("recovery_attempt", got.recovery_attempt),
            ("total_health_checks", got.total_health_checks),
            (
                "total_health_check_failures",
                got.total_health_check_failures,
            ),
        ] {
            assert_eq!(value, want[field].as_i64().unwrap(), "{what} {key} {field}");
        }
    }
    assert_eq!((live, expired), (36, 4), "{what}");
}

fn config(dir: &Path) -> CacheConfig {
    CacheConfig {
        l2_cache_dir: dir.join("l2"),
        l3_database_path: dir.join("l3").join("proxywhirl.db"),
        encryption_key: Some(key()),
        ..CacheConfig::default()
    }
}

#[test]
fn upstream_l3_database_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("l3"), &dir.path().join("l3"));
    let mut config = config(dir.path());
    config.l2.enabled = false;
    check_all(&CacheManager::open(config).unwrap(), "L3");
}

#[test]
fn upstream_sqlite_l2_database_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("l2_sqlite"), &dir.path().join("l2"));
    let mut config = config(dir.path());
    config.l2_backend = L2Backend::Sqlite;
    config.l3.enabled = false;
    check_all(&CacheManager::open(config).unwrap(), "SQLite L2");
}

#[test]
fn upstream_jsonl_shards_are_imported_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("l2_jsonl"), &dir.path().join("l2"));
    let mut config = config(dir.path());
    config.l3.enabled = false;
    check_all(&CacheManager::open(config.clone()).unwrap(), "JSONL L2");
    let names: Vec<String> = std::fs::read_dir(dir.path().join("l2"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n == "shard_00.jsonl.imported"),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("shard_") && n.ends_with(".jsonl"))
    );
    // A second handle reads what was imported (and imports nothing twice).
    let again = CacheManager::open(config).unwrap();
    assert_eq!(
        again.statistics().l2_stats.current_size,
        36,
        "expired ones were removed"
    );
}

#[test]
fn the_wrong_key_is_a_crypto_error_that_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("l3"), &dir.path().join("l3"));
    let mut config = config(dir.path());
    config.l2.enabled = false;
    config.encryption_key = Some("aW5jb3JyZWN0LWtleS1pbmNvcnJlY3Qta2V5LTAwMDA=".into());
    let wrong = CacheManager::open(config.clone()).unwrap();
    let with_credentials = "84d7754142f9018a";
    let err = wrong.get(with_credentials).unwrap_err();
    assert_eq!(
        err.kind(),
        pwcache::ErrorKind::Crypto,
        "a wrong key is not a missing entry: {err}"
    );
    assert!(
        !wrong.statistics().l3_degraded,
        "a wrong key is not a failing tier"
    );
    drop(wrong);
    config.encryption_key = Some(key());
    let right = CacheManager::open(config).unwrap();
    assert!(
        right.get(with_credentials).unwrap().is_some(),
        "nothing was lost"
    );
}

/// What proxywhirl 0.3.3 exported (its masked export) and the URLs of every fixture entry pass
/// the `proxy_url` check that put and warm apply: warming the export skips and fails nothing,
/// and each URL is kept as it is.
#[test]
fn upstream_urls_and_export_pass_the_url_check() {
    for entry in expected() {
        let url = entry["proxy_url"].as_str().unwrap();
        let checked = pwcache::proxy_url::ProxyUrl::parse(url).unwrap();
        assert_eq!(checked.url, url);
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheManager::open(config(dir.path())).unwrap();
    let report = cache
        .warm_from_file(&fixtures().join("export.jsonl"), None)
        .unwrap();
    assert_eq!(
        (
            report.counts.loaded,
            report.counts.skipped,
            report.counts.failed
        ),
        (36, 0, 0),
        "{:?}",
        report.problems
    );
}
