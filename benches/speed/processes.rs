//! Writers in several processes on one store: 1, 2 and 4 processes (this binary started again
//! with `child`), each with its own handle on the same L2 directory and L3 database, putting new
//! keys (default configuration, and with the SQLite L2 backend). Each child opens its handle,
//! says `ready`, waits for `go` on its standard input, puts, and exits; the figure is wall time
//! from `go` to the last child's exit over all children's puts.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pwcache::{CacheConfig, CacheManager, EntryInput, L2Backend};

use crate::common::{KEY, url};
use crate::measure::{Case, alternate, of, print_times};

const PROCESSES: [usize; 3] = [1, 2, 4];

fn config(dir: &Path, backend: &str) -> CacheConfig {
    CacheConfig {
        l2_cache_dir: dir.join("l2"),
        l3_database_path: dir.join("l3.db"),
        encryption_key: Some(KEY.into()),
        l2_backend: match backend {
            "sqlite" => L2Backend::Sqlite,
            _ => L2Backend::Jsonl,
        },
        ..CacheConfig::default()
    }
}

/// `child <dir> <backend> <first key> <puts>`.
pub fn child(args: &[String]) {
    let [dir, backend, first, puts] = args else {
        panic!("child <dir> <backend> <first> <puts>");
    };
    let (first, puts): (usize, usize) = (first.parse().unwrap(), puts.parse().unwrap());
    let cache = CacheManager::open(config(Path::new(dir), backend)).unwrap();
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    for i in first..first + puts {
        cache
            .put(&format!("k{i}"), EntryInput::with_url(url(i)))
            .unwrap();
    }
}

fn round(dir: &Path, backend: &str, processes: usize, first: usize, ops: usize) -> Duration {
    let exe = std::env::current_exe().unwrap();
    let per = ops / processes;
    let mut children: Vec<_> = (0..processes)
        .map(|p| {
            let mut child = Command::new(&exe)
                .args(["child", &dir.display().to_string(), backend])
                .arg((first + p * per).to_string())
                .arg(per.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut ready = String::new();
            BufReader::new(child.stdout.as_mut().unwrap())
                .read_line(&mut ready)
                .unwrap();
            assert_eq!(ready.trim(), "ready");
            child
        })
        .collect();
    let started = Instant::now();
    for child in &mut children {
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    }
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    started.elapsed() / (per * processes) as u32
}

pub fn run(rounds: usize, quick: bool) {
    let ops = if quick { 400 } else { 2000 };
    let mut dirs = Vec::new();
    let mut cases = Vec::new();
    for backend in ["jsonl", "sqlite"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        dirs.push(dir);
        let next = std::rc::Rc::new(std::cell::Cell::new(0usize));
        for p in PROCESSES {
            let (path, next) = (path.clone(), next.clone());
            cases.push(Case::new(format!("put/{backend}/p{p}"), move || {
                let first = next.get();
                next.set(first + ops);
                round(&path, backend, p, first, ops)
            }));
        }
    }
    let results = alternate(
        "processes",
        "processes: µs per put (all processes)",
        rounds,
        &mut cases,
    );
    print_times(&results);
    println!("\nthroughput against one process (target for 4 processes: ≥ 1.5×):\n");
    println!(
        "| operation | {} |",
        PROCESSES.map(|p| format!("{p} processes")).join(" | ")
    );
    println!("|---|{}", "--:|".repeat(PROCESSES.len()));
    for op in ["put/jsonl", "put/sqlite"] {
        if !results.iter().any(|(n, _)| n == &format!("{op}/p1")) {
            continue;
        }
        let one = of(&results, &format!("{op}/p1")).as_secs_f64();
        let cells: Vec<String> = PROCESSES
            .iter()
            .map(|p| {
                format!(
                    "{:.2}×",
                    one / of(&results, &format!("{op}/p{p}")).as_secs_f64()
                )
            })
            .collect();
        println!("| {op} | {} |", cells.join(" | "));
    }
}
