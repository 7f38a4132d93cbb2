//! The `pwcache` binary: every subcommand on success and on bad input, and its exit statuses
//! (0 success, 1 error, 2 usage, 3 not found, 4 a warm that loaded nothing or had rows fail).

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
    // A credential given twice, differently, is refused (which one was meant is unknown).
    pwcache(dir.path())
        .args([
            "put",
            "http://u:s3cret-url@10.0.0.1:8080",
            "--password",
            "hunter2-pw",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("two different passwords"))
        .stderr(predicate::str::contains("hunter2-pw").not())
        .stderr(predicate::str::contains("s3cret-url").not());
    let put = pwcache(dir.path())
        .args([
            "put",
            "http://u:s3cret-url@10.0.0.1:8080",
            "--username",
            "u",
        ])
        .args(["--source", "cli", "--ttl", "600"])
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
    // The URL's userinfo is stored as the credentials, the URL without it.
    assert_eq!(
        (&entry["proxy_url"], &entry["username"], &entry["password"]),
        (
            &serde_json::json!("http://10.0.0.1:8080"),
            &serde_json::json!("u"),
            &serde_json::json!("s3cret-url")
        )
    );
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
        .args(["put", "http://u@10.0.0.4:1", "--password", "pw-secret"])
        .assert()
        .success();
    pwcache(dir.path())
        .args(["put", "http://10.0.0.5:1", "--ttl", "0"])
        .assert()
        .success();
    let out = stdout_of(pwcache(dir.path()).args(["export", "out.jsonl"]));
    assert!(out.contains("exported 1"), "{out}");
    let text = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    assert!(
        text.contains(
            "\"proxy_url\":\"http://10.0.0.4:1\",\"username\":\"***\",\"password\":\"***\""
        ),
        "{text}"
    );
    assert!(!text.contains("pw-secret"));
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
    // A row failed: the summary, the row with its line and reason, and exit status 4.
    pwcache(dir.path())
        .args(["warm", "few.jsonl", "--ttl", "60"])
        .assert()
        .code(4)
        .stdout(predicate::str::contains("loaded 1, skipped 0, failed 1"))
        .stderr(predicate::str::contains(
            "few.jsonl: line 2: failed: not JSON",
        ));

    // The rows of issue 13: a header without proxy_url is an error naming the columns found;
    // a quote left open fails its line alone; blanks and words as URLs are skipped.
    std::fs::write(
        dir.path().join("nourl.csv"),
        "url,user,pass\nhttp://h:1,u,p\n",
    )
    .unwrap();
    pwcache(dir.path())
        .args(["warm", "nourl.csv"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "no `proxy_url` column; columns found: \"url\", \"user\", \"pass\"",
        ));
    std::fs::write(
        dir.path().join("open.csv"),
        "proxy_url,username\n\"unterminated,quote\nhttp://10.1.0.4:8080,erin\n\"   \",x\nnot a url,y\n",
    )
    .unwrap();
    pwcache(dir.path())
        .args(["warm", "open.csv"])
        .assert()
        .code(4)
        .stdout(predicate::str::contains("loaded 1, skipped 2, failed 1"))
        .stderr(predicate::str::contains("open.csv: line 2: failed:"))
        .stderr(predicate::str::contains("open.csv: line 4: skipped:"))
        .stderr(predicate::str::contains("open.csv: line 5: skipped:"));
    let erin = stdout_of(pwcache(dir.path()).args(["get", "--url", "http://10.1.0.4:8080"]));
    assert!(erin.contains("\"username\":\"erin\""), "{erin}");
    // Only skipped rows, some loaded: success. Nothing loaded: status 4.
    std::fs::write(
        dir.path().join("mixed.jsonl"),
        "{\"proxy_url\":\"http://b:1\"}\n7\n",
    )
    .unwrap();
    pwcache(dir.path())
        .args(["warm", "mixed.jsonl"])
        .assert()
        .success();
    std::fs::write(dir.path().join("none.jsonl"), "7\n").unwrap();
    pwcache(dir.path())
        .args(["warm", "none.jsonl"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("nothing was loaded"));

    // More than 20 rows left out: the first 20 and a count, or every one with -v.
    let many: String = (0..25).map(|i| format!("{i}\n")).collect();
    std::fs::write(dir.path().join("many.jsonl"), many).unwrap();
    let quiet = pwcache(dir.path())
        .args(["warm", "many.jsonl"])
        .assert()
        .code(4);
    let quiet = String::from_utf8_lossy(&quiet.get_output().stderr).into_owned();
    assert_eq!(quiet.matches(": skipped: ").count(), 20, "{quiet}");
    assert!(quiet.contains("and 5 more rows left out"), "{quiet}");
    let verbose = pwcache(dir.path())
        .args(["-v", "warm", "many.jsonl"])
        .assert()
        .code(4);
    let verbose = String::from_utf8_lossy(&verbose.get_output().stderr).into_owned();
    assert_eq!(verbose.matches(": skipped: ").count(), 25, "{verbose}");
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
    for bad in ["", "   ", "not a url", "10.0.0.1:8080"] {
        pwcache(dir.path())
            .args(["put", bad])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("proxy_url"));
    }
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
