//! The `pwcache` binary: every subcommand on success and on bad input, and its exit statuses
//! (0 success, 1 error, 2 usage, 3 not found).

mod common;

use common::{bare, pwcache, stdout_of};
use predicates::prelude::*;

#[test]
fn key_prints_the_cache_key_of_a_url() {
    let dir = tempfile::tempdir().unwrap();
    let out = stdout_of(pwcache(dir.path()).args(["key", "socks5://proxy0.example.net:1080"]));
    assert_eq!(out.trim(), "84d7754142f9018a");
}

#[test]
fn put_get_delete_round_trip_with_credentials_only_from_get() {
    let dir = tempfile::tempdir().unwrap();
    let put = pwcache(dir.path())
        .args([
            "put",
            "http://u:s3cret-url@10.0.0.1:8080",
            "--username",
            "alice",
        ])
        .args([
            "--password",
            "hunter2-pw",
            "--source",
            "cli",
            "--ttl",
            "600",
        ])
        .assert()
        .success();
    let out = put.get_output();
    let key = String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(
        key,
        pwcache::generate_cache_key("http://u:s3cret-url@10.0.0.1:8080")
    );
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(
            !text.contains("hunter2-pw") && !text.contains("s3cret-url"),
            "{text}"
        );
    }

    let got = stdout_of(pwcache(dir.path()).args(["get", &key]));
    let entry: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(entry["password"], "hunter2-pw");
    assert_eq!(
        (entry["source"].as_str(), entry["ttl_seconds"].as_i64()),
        (Some("cli"), Some(600))
    );
    let by_url =
        stdout_of(pwcache(dir.path()).args(["get", "--url", "http://u:s3cret-url@10.0.0.1:8080"]));
    assert!(by_url.contains(&key));

    let stats = stdout_of(pwcache(dir.path()).args(["stats"]));
    assert!(
        stats.contains("entries per tier: L2 1 (of 5,000), L3 1"),
        "{stats}"
    );
    assert!(!stats.contains("hunter2-pw"));

    pwcache(dir.path())
        .args(["delete", &key])
        .assert()
        .success();
    pwcache(dir.path())
        .args(["get", &key])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("no live entry"));
    pwcache(dir.path()).args(["delete", &key]).assert().code(3);
}

#[test]
fn stats_json_says_what_the_cache_holds() {
    let dir = tempfile::tempdir().unwrap();
    pwcache(dir.path())
        .args(["put", "http://10.0.0.2:1"])
        .assert()
        .success();
    let out = stdout_of(pwcache(dir.path()).args(["stats", "--json"]));
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["holds"]["l3_entries"], 1, "{out}");
    assert_eq!(stats["holds"]["distinct_entries"], 1, "{out}");
    assert_eq!(stats["holds"]["health"]["unknown"], 1, "{out}");
    assert_eq!(
        stats["cache"]["dir"].as_str().unwrap(),
        dir.path().join("store").to_str().unwrap()
    );
    assert_eq!(stats["degraded"], serde_json::json!([]));
}

#[test]
fn invalidate_records_failures_then_evicts() {
    let dir = tempfile::tempdir().unwrap();
    let key = stdout_of(pwcache(dir.path()).args(["put", "http://10.0.0.3:1"]));
    let key = key.trim();
    for _ in 0..2 {
        let out = stdout_of(pwcache(dir.path()).args(["invalidate", key]));
        assert!(out.contains("failure recorded"));
    }
    let out = stdout_of(pwcache(dir.path()).args(["invalidate", key]));
    assert!(out.contains("evicted"));
    pwcache(dir.path())
        .args(["invalidate", key])
        .assert()
        .code(3);
}

#[test]
fn export_masks_unless_asked_and_cleanup_reports() {
    let dir = tempfile::tempdir().unwrap();
    pwcache(dir.path())
        .args(["put", "http://u:p4ss@10.0.0.4:1", "--password", "pw-secret"])
        .assert()
        .success();
    pwcache(dir.path())
        .args(["put", "http://10.0.0.5:1", "--ttl", "0"])
        .assert()
        .success();
    let out = stdout_of(pwcache(dir.path()).args(["export", "out.jsonl"]));
    assert!(out.contains("exported 1"), "{out}");
    let text = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    assert!(text.contains("\"password\":\"***\"") && text.contains("http://***:***@10.0.0.4:1"));
    assert!(!text.contains("pw-secret") && !text.contains("p4ss"));
    stdout_of(pwcache(dir.path()).args(["export", "all.jsonl", "--include-credentials"]));
    let text = std::fs::read_to_string(dir.path().join("all.jsonl")).unwrap();
    assert!(text.contains("pw-secret"));
    let out = stdout_of(pwcache(dir.path()).args(["cleanup"]));
    assert!(out.contains("removed 1 expired"), "{out}");
    pwcache(dir.path())
        .args(["export", "."])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot export"));
}

#[test]
fn warm_reports_counts_and_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("proxy_url,username,password,source\n");
    for i in 0..100_000 {
        csv.push_str(&format!(
            "http://10.{}.{}.{}:8080,,,bulk\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
    }
    std::fs::write(dir.path().join("big.csv"), csv).unwrap();
    let out = stdout_of(pwcache(dir.path()).args(["warm", "big.csv"]));
    assert!(out.contains("loaded 100000, skipped 0, failed 0"), "{out}");
    let stats = stdout_of(pwcache(dir.path()).args(["stats", "--json"]));
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["holds"]["l3_entries"], 100_000);

    std::fs::write(
        dir.path().join("few.jsonl"),
        "{\"proxy_url\":\"http://a:1\"}\n{bad\n",
    )
    .unwrap();
    let out = stdout_of(pwcache(dir.path()).args(["warm", "few.jsonl", "--ttl", "60"]));
    assert!(out.contains("loaded 1, skipped 0, failed 1"), "{out}");
    pwcache(dir.path())
        .args(["warm", "missing.csv"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("missing.csv"));
    pwcache(dir.path())
        .args(["warm", "list.xml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(".json, .jsonl or .csv"));
}

#[test]
fn bad_configuration_is_an_error_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.json"), "{\"l1_config\": {\"max\": 3}}").unwrap();
    std::fs::write(dir.path().join("broken.json"), "{").unwrap();
    pwcache(dir.path())
        .args(["stats", "--config", "bad.json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("max"));
    pwcache(dir.path())
        .args(["stats", "--config", "broken.json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("config"));
    pwcache(dir.path())
        .args(["stats", "--config", "absent.json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("absent.json"));
    pwcache(dir.path()).args(["frobnicate"]).assert().code(2);
    pwcache(dir.path()).args(["get"]).assert().code(2);
}

#[test]
fn a_config_file_sets_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.json"),
        r#"{"l2_backend": "sqlite", "l2_cache_dir": "elsewhere", "default_ttl_seconds": 77}"#,
    )
    .unwrap();
    let key = stdout_of(bare(dir.path()).args(["put", "http://10.9.9.9:1", "--config", "c.json"]));
    assert!(dir.path().join("elsewhere/l2_cache.db").is_file());
    // The configuration sets L2's place; L3 stays in the store's layout.
    assert!(dir.path().join("store/db/proxywhirl.db").is_file());
    let got = stdout_of(bare(dir.path()).args(["get", key.trim(), "--config", "c.json"]));
    assert!(got.contains("\"ttl_seconds\":77"));
}

#[test]
fn each_subcommand_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.json"), "{\"colour\": 1}").unwrap();
    pwcache(dir.path())
        .args(["put", ""])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("proxy_url"));
    pwcache(dir.path()).args(["key"]).assert().code(2);
    pwcache(dir.path())
        .args(["put", "http://h:1", "--ttl", "soon"])
        .assert()
        .code(2);
    pwcache(dir.path())
        .args(["warm", "x.csv", "--ttl=-1"])
        .assert()
        .code(1);
    std::fs::write(dir.path().join("a-file"), "x").unwrap();
    bare(dir.path())
        .args(["demo", "--dir", "a-file"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("a-file"));
    for sub in [
        &["cleanup"][..],
        &["stats"],
        &["export", "e.jsonl"],
        &["invalidate", "k"],
    ] {
        pwcache(dir.path())
            .args(sub)
            .args(["--config", "bad.json"])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("colour"));
    }
}
