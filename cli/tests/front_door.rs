//! What a new user meets first: where the cache is by default, a cache that does not exist,
//! statistics across processes, the help text, log output, passwords off the command line, a
//! wrong encryption key, and an export that neither creates directories nor replaces a file
//! unasked.

mod common;

use common::{bare, files_under, stdout_of};
use predicates::prelude::*;

const KEY_A: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const KEY_B: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

#[test]
fn the_default_cache_is_per_user_and_help_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // $PWCACHE_DIR first.
    let help = stdout_of(bare(d).arg("--help"));
    assert!(
        help.contains(&format!("Cache: {}", d.join("store").display())),
        "{help}"
    );
    // Then $XDG_CACHE_HOME/pwcache, then ~/.cache/pwcache; never the current directory.
    let help = stdout_of(
        bare(d)
            .env_remove("PWCACHE_DIR")
            .env("XDG_CACHE_HOME", d.join("xdg"))
            .arg("--help"),
    );
    assert!(
        help.contains(&format!("Cache: {}", d.join("xdg/pwcache").display())),
        "{help}"
    );
    bare(d)
        .env_remove("PWCACHE_DIR")
        .args(["put", "http://10.0.0.1:8080"])
        .assert()
        .success();
    assert!(d.join("home/.cache/pwcache/db/proxywhirl.db").is_file());
    assert!(
        !d.join(".cache").exists(),
        "nothing in the current directory"
    );
    let stats = stdout_of(bare(d).env_remove("PWCACHE_DIR").arg("stats"));
    assert!(
        stats.contains(&format!(
            "cache {}",
            d.join("home/.cache/pwcache").display()
        )),
        "{stats}"
    );
}

#[test]
fn reading_a_cache_that_does_not_exist_says_so_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for command in [
        &["stats"][..],
        &["get", "--url", "http://10.0.0.1:8080"],
        &["delete", "abc"],
        &["invalidate", "abc"],
        &["export", "out.jsonl"],
        &["cleanup"],
    ] {
        bare(d)
            .args(command)
            .assert()
            .code(1)
            .stderr(
                predicate::str::contains("no cache at").and(predicate::str::contains(
                    d.join("store").display().to_string(),
                )),
            );
    }
    assert_eq!(files_under(d), Vec::<String>::new());
}

#[test]
fn stats_add_up_the_counters_of_every_process() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    stdout_of(bare(d).args(["put", "http://10.0.0.1:8080"]));
    // Each get is a process of its own: an L1 miss, an L2 hit.
    for _ in 0..3 {
        stdout_of(bare(d).args(["get", "--url", "http://10.0.0.1:8080"]));
    }
    bare(d)
        .args(["get", "--url", "http://10.0.0.9:1"])
        .assert()
        .code(3);
    let json: serde_json::Value =
        serde_json::from_str(&stdout_of(bare(d).args(["stats", "--json"]))).unwrap();
    let closed = &json["closed_handles"];
    assert_eq!(closed["handles"], 4, "{json}");
    assert_eq!(closed["l2"]["hits"], 3, "{json}");
    assert_eq!(closed["l1"]["misses"], 4, "{json}");
    assert_eq!(closed["l3"]["misses"], 1, "{json}");
    assert_eq!(closed["promotions"], 3, "{json}");
    assert_eq!(
        json["cache"]["totals_file"].as_str().unwrap(),
        d.join("store/proxies/pwcache_stats.json").to_str().unwrap()
    );
    // stats itself counts nothing, so running it twice shows the same.
    let text = stdout_of(bare(d).arg("stats"));
    assert!(text.contains("counters of the 4 handles"), "{text}");
    assert!(text.contains("overall hit rate 42.9%"), "{text}");
    // --reset starts them again.
    stdout_of(bare(d).args(["stats", "--reset"]));
    let text = stdout_of(bare(d).arg("stats"));
    assert!(text.contains("no handle has closed"), "{text}");
}

#[test]
fn every_help_line_has_a_description_and_global_options_stand_apart() {
    let dir = tempfile::tempdir().unwrap();
    // The commands that open a cache, and those that do not.
    let opening = [
        "warm",
        "get",
        "put",
        "delete",
        "invalidate",
        "stats",
        "export",
        "cleanup",
    ];
    let not_opening = ["key", "demo"];
    let mut helps = vec![(String::new(), stdout_of(bare(dir.path()).arg("-h")))];
    for command in opening.into_iter().chain(not_opening) {
        helps.push((
            command.to_string(),
            stdout_of(bare(dir.path()).args([command, "-h"])),
        ));
    }
    for (command, help) in &helps {
        for line in help.lines() {
            let item = line.trim_start();
            if line.starts_with("  ") && (item.starts_with('-') || item.starts_with('<')) {
                let parts: Vec<&str> = item.splitn(2, "  ").collect();
                assert!(
                    parts.len() == 2 && !parts[1].trim().is_empty(),
                    "`pwcache {command} -h`: no description for {line:?}\n{help}"
                );
            }
        }
        if !command.is_empty() {
            assert!(help.contains("Global options:"), "{command}: {help}");
        }
    }
    let help = |name: &str| &helps.iter().find(|(c, _)| c == name).unwrap().1;
    for opening in opening {
        assert!(help(opening).contains("Cache location:"), "{opening}");
    }
    for not_opening in not_opening {
        let text = help(not_opening);
        assert!(
            !text.contains("--config") && !text.contains("--l2-dir") && !text.contains("--store"),
            "{not_opening} lists options it ignores: {text}"
        );
    }
    for by_key in ["get", "delete", "invalidate"] {
        assert!(help(by_key).contains("--url <URL>"), "{by_key}");
    }
    assert!(helps[0].1.contains("Exit status:") && helps[0].1.contains("130"));
    bare(dir.path())
        .arg("get")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--url"));
}

#[test]
fn verbose_and_rust_log_give_log_output_on_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("l.csv"), "proxy_url\nhttp://10.0.0.7:1\n").unwrap();
    // Each round re-creates what the last commands remove.
    for variant in ["-v", "RUST_LOG", "quiet"] {
        for command in [
            &["put", "http://10.0.0.1:8080"][..],
            &["get", "--url", "http://10.0.0.1:8080"],
            &["warm", "l.csv"],
            &["stats"],
            &["export", "e.jsonl", "--force"],
            &["cleanup"],
            &["invalidate", "--url", "http://10.0.0.7:1"],
            &["delete", "--url", "http://10.0.0.1:8080"],
        ] {
            let mut cmd = bare(d);
            cmd.args(command);
            match variant {
                "-v" => {
                    cmd.arg("-v");
                }
                "RUST_LOG" => {
                    cmd.env("RUST_LOG", "debug");
                }
                _ => {}
            }
            let out = cmd.assert().success();
            let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
            assert_eq!(
                stderr.contains("pwcache: info: "),
                variant != "quiet",
                "{variant} {command:?}: {stderr:?}"
            );
        }
    }
}

#[test]
fn passwords_come_from_stdin_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    stdout_of(
        bare(d)
            .args(["put", "http://10.0.0.1:1", "--password-stdin"])
            .write_stdin("from-stdin-pw\n"),
    );
    stdout_of(
        bare(d)
            .args(["put", "http://10.0.0.2:1"])
            .env("PWCACHE_PASSWORD", "from-env-pw"),
    );
    let one = stdout_of(bare(d).args(["get", "--url", "http://10.0.0.1:1"]));
    let two = stdout_of(bare(d).args(["get", "--url", "http://10.0.0.2:1"]));
    assert!(one.contains("\"password\":\"from-stdin-pw\""), "{one}");
    assert!(two.contains("\"password\":\"from-env-pw\""), "{two}");
    bare(d)
        .args(["put", "http://10.0.0.3:1", "--password-stdin"])
        .write_stdin("")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no password"));
    bare(d)
        .args([
            "put",
            "http://10.0.0.3:1",
            "--password",
            "x",
            "--password-stdin",
        ])
        .assert()
        .code(2);
    for file in files_under(d) {
        let path = d.join(&file);
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("from-stdin-pw") && !text.contains("from-env-pw"),
                "{file} holds a password in plain text"
            );
        }
    }
}

#[test]
fn a_wrong_encryption_key_is_reported_as_such_and_export_counts_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let with = |key: &str| {
        let mut cmd = bare(d);
        cmd.env("PROXYWHIRL_CACHE_ENCRYPTION_KEY", key);
        cmd
    };
    stdout_of(with(KEY_A).args(["put", "http://10.0.0.1:1", "--password", "p1"]));
    stdout_of(with(KEY_A).args(["put", "http://10.0.0.2:1", "--username", "u2"]));
    stdout_of(with(KEY_A).args(["put", "http://10.0.0.3:1"]));
    with(KEY_B)
        .args(["get", "--url", "http://10.0.0.1:1"])
        .assert()
        .code(5)
        .stderr(
            predicate::str::contains("another key")
                .and(predicate::str::contains("PROXYWHIRL_CACHE_ENCRYPTION_KEY")),
        )
        .stderr(predicate::str::contains("no live entry").not());
    // Three entries, one of them without credentials: exported 1 + failed 2 = 3, an error.
    with(KEY_B)
        .args(["export", "e.jsonl", "--include-credentials"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("exported 1 entries"))
        .stderr(predicate::str::contains(
            "exported 1 + failed 2 = 3 entries",
        ));
    let right = stdout_of(with(KEY_A).args(["export", "e.jsonl", "--force"]));
    assert!(right.contains("exported 3 entries"), "{right}");
    assert!(right.contains("replaced"), "{right}");
}

#[test]
fn export_creates_no_directories_and_replaces_only_when_forced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    stdout_of(bare(d).args(["put", "http://10.0.0.1:1"]));
    bare(d)
        .args(["export", "no/such/dir/out.jsonl"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("does not exist"));
    assert!(!d.join("no").exists());
    std::fs::write(d.join("kept.jsonl"), "mine\n").unwrap();
    bare(d)
        .args(["export", "kept.jsonl"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--force"));
    assert_eq!(
        std::fs::read_to_string(d.join("kept.jsonl")).unwrap(),
        "mine\n"
    );
    let out = stdout_of(bare(d).args(["export", "kept.jsonl", "--force"]));
    assert!(
        out.contains("exported 1 entries") && out.contains("replaced"),
        "{out}"
    );
    assert!(
        std::fs::read_to_string(d.join("kept.jsonl"))
            .unwrap()
            .contains("10.0.0.1")
    );
}
