//! `pwcache demo`: it runs in a directory of its own and never touches the user's cache, every
//! figure it prints is what the cache holds, and the commands it ends with work as printed.

mod common;

use std::path::{Path, PathBuf};

use common::{bare, files_under, stdout_of};
use predicates::prelude::*;

/// The number after `label` in `text` (thousands separators removed).
fn number_after(text: &str, label: &str) -> u64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} in {text}"))
        + label.len();
    let digits: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("a number after {label:?} in {text}"))
}

fn demo_dir(out: &str) -> PathBuf {
    let line = out.lines().next().unwrap();
    PathBuf::from(line.rsplit(' ').next().unwrap())
}

/// The user's own cache (`d/store`) with one entry, and a snapshot of its files and bytes.
fn user_cache(d: &Path) -> Vec<(String, u64)> {
    stdout_of(bare(d).args(["put", "http://10.0.0.2:8080", "--password", "mine"]));
    snapshot(&d.join("store"))
}

/// Each file under `dir` with a hash of its bytes.
fn snapshot(dir: &Path) -> Vec<(String, u64)> {
    use std::hash::{Hash, Hasher};
    files_under(dir)
        .into_iter()
        .filter(|f| dir.join(f).is_file())
        .map(|f| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            std::fs::read(dir.join(&f)).unwrap().hash(&mut hasher);
            (f, hasher.finish())
        })
        .collect()
}

#[test]
fn the_demo_runs_in_its_own_directory_and_says_what_the_cache_holds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let before = user_cache(d);
    let out = stdout_of(bare(d).arg("demo"));
    assert_eq!(
        snapshot(&d.join("store")),
        before,
        "the user's cache changed"
    );
    stdout_of(bare(d).args(["get", "--url", "http://10.0.0.2:8080"]));
    // That read changed the user's cache (a read count, the statistics): the new reference.
    let before = snapshot(&d.join("store"));

    let demo = demo_dir(&out);
    assert!(demo.starts_with(d), "{} under TMPDIR", demo.display());
    assert!(demo.join(".pwcache-demo").is_file());

    // Step 1: what warm loaded, and what each tier held then.
    assert_eq!(number_after(&out, "loaded "), 10_000, "{out}");
    assert_eq!(number_after(&out, "L1 "), 1_000, "{out}");
    let l2_after_warm = number_after(&out, "), L2 ");
    assert!((4_000..=5_000).contains(&l2_after_warm), "{out}");
    assert_eq!(number_after(&out, "), L3 "), 10_000, "{out}");
    // Step 2: the last-loaded entries are L1 hits; entry 3 came from L3 only.
    assert!(
        out.contains(
            "http://10.0.39.15:8999 (key f8bfa5048754bee3, held by L1 + L2 + L3): an L1 hit"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "http://10.0.0.3:8003 (key 6abee350354d0f29, held by L3): missed L1 and L2, hit in L3"
        ),
        "{out}"
    );
    // Step 3: the new handle found it in L2 (promoted there in step 2), read count 2.
    assert!(
        out.contains(
            "held by L2 + L3, hit in L2; its read count went on from the first handle's: 2"
        ),
        "{out}"
    );
    // Steps 4 and 5 name the tiers that held the entries, and end with none.
    assert!(out.contains("was held by L3 and removed from every tier that held it (evictions_health rose in L3); now held by no tier"), "{out}");
    assert!(out.contains("(L1 + L2 + L3); the background sweeper (every 0.25 s) removed it after 1 s from L1, L2, L3; now held by no tier"), "{out}");

    // Step 6 is what `pwcache stats` shows for the demo's directory afterwards, to the letter.
    let table = out
        .split("as `pwcache stats` shows them):\n\n")
        .nth(1)
        .unwrap()
        .split("\n\nThis cache is the demo's own")
        .next()
        .unwrap();
    let stats = stdout_of(bare(d).args(["stats", "--store", demo.to_str().unwrap()]));
    assert_eq!(
        stats.trim_end(),
        table,
        "the demo's table against `pwcache stats`"
    );
    let json: serde_json::Value = serde_json::from_str(&stdout_of(bare(d).args([
        "stats",
        "--json",
        "--store",
        demo.to_str().unwrap(),
    ])))
    .unwrap();
    assert_eq!(
        json["holds"]["l3_entries"], 9_999,
        "10,000 less the health-evicted one"
    );
    assert_eq!(json["holds"]["distinct_entries"], 9_999);
    assert_eq!(json["closed_handles"]["handles"], 2, "both demo handles");
    assert_eq!(json["closed_handles"]["l3"]["hits"], 1);
    assert_eq!(json["closed_handles"]["l2"]["hits"], 1);
    assert_eq!(json["closed_handles"]["l1"]["evictions_health"], 0);
    assert_eq!(json["closed_handles"]["l3"]["evictions_health"], 1);
    assert!(table.contains(&format!("L3 {}", "9,999")), "{table}");

    // The commands it ends with work as printed (through a shell, from the same directory).
    let commands: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("This cache is the demo's own"))
        .skip(1)
        .map(str::trim)
        .collect();
    assert_eq!(commands.len(), 3, "{out}");
    for command in &commands[..2] {
        let run = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(d)
            .env("PWCACHE_DIR", d.join("store"))
            .output()
            .unwrap();
        assert!(run.status.success(), "{command}: {run:?}");
    }
    assert!(commands[2].starts_with(&format!("rm -r {}", demo.display())));

    // Run again in the same directory: an earlier demo's, cleared and reused.
    let again = stdout_of(bare(d).args(["demo", "--dir", demo.to_str().unwrap()]));
    assert!(
        again.contains("an earlier demo's directory: cleared its 9999 entries"),
        "{again}"
    );
    assert_eq!(snapshot(&d.join("store")), before);
}

#[test]
fn the_demo_refuses_a_directory_that_is_not_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let before = user_cache(d);
    // The user's cache directory itself, and any other non-empty directory.
    for target in [d.join("store"), d.to_path_buf()] {
        bare(d)
            .args(["demo", "--dir", target.to_str().unwrap()])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("not made by an earlier demo"));
    }
    assert_eq!(snapshot(&d.join("store")), before);
    // A new directory is fine.
    let out = stdout_of(bare(d).args(["demo", "--dir", "fresh"]));
    assert!(out.contains("fresh/demo-proxies.csv"), "{out}");
}
