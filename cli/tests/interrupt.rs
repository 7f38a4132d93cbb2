//! Ctrl-C (a real SIGINT to a real child process) during warm and export: the command stops
//! between batches, says where it stopped and what is stored, and exits 130; what it says is
//! what the cache holds.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{bare, child, stdout_of};

fn sigint(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits (at most 60 s) until `ready` holds, polling.
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never saw {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn spawn(dir: &Path, args: &[&str]) -> Child {
    child(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> (Option<i32>, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn number_after(text: &str, label: &str) -> u64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} in {text}"))
        + label.len();
    text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn ctrl_c_during_warm_says_where_it_stopped_and_what_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = 1_000_000u32;
    let mut csv = String::from("proxy_url,source\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "http://10.{}.{}.{}:8080,bulk\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
    }
    std::fs::write(d.join("big.csv"), csv).unwrap();
    let child = spawn(d, &["warm", "big.csv"]);
    // Interrupt once the first batches are in L3.
    let l3 = d.join("store/db/proxywhirl.db-wal");
    wait_for("L3 being written", || {
        std::fs::metadata(&l3).is_ok_and(|m| m.len() > 1 << 20)
    });
    sigint(&child);
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, Some(130), "{stdout}\n{stderr}");
    assert!(stderr.contains("interrupted: stopped after"), "{stderr}");
    let loaded = number_after(&stdout, "loaded ");
    assert!(loaded > 0 && loaded < u64::from(rows), "{stdout}");
    assert_eq!(loaded % 1000, 0, "whole batches only: {stdout}");
    assert!(
        stderr.contains(&format!(
            "the {loaded} entries loaded until then are stored in every tier"
        )),
        "{stderr}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout_of(bare(d).args(["stats", "--json"]))).unwrap();
    assert_eq!(json["holds"]["l3_entries"], loaded, "{json}");
    assert_eq!(json["holds"]["distinct_entries"], loaded, "{json}");
}

#[test]
fn ctrl_c_during_export_writes_nothing_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut csv = String::from("proxy_url\n");
    for i in 0..300_000u32 {
        csv.push_str(&format!(
            "http://10.{}.{}.{}:1\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
    }
    std::fs::write(d.join("list.csv"), csv).unwrap();
    stdout_of(bare(d).args(["warm", "list.csv"]));
    let child = spawn(d, &["export", "out.jsonl"]);
    // Interrupt once the export's temporary file has something in it.
    wait_for("the export's temporary file", || {
        std::fs::read_dir(d).unwrap().flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(".out.jsonl.") && e.metadata().is_ok_and(|m| m.len() > 0)
        })
    });
    sigint(&child);
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, Some(130), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("interrupted: export stopped after") && stderr.contains("was not written"),
        "{stderr}"
    );
    assert!(!d.join("out.jsonl").exists());
    let leftovers: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("out.jsonl"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
