//! Ratios measured side by side in one run, for a shared machine whose load varies: every case of
//! a part runs once per round, the rounds alternate the cases, and each figure is the median of
//! its rounds. The load average is printed with each table.
//!
//! `cargo bench --bench speed -- [tiers|threads|processes|all] [--rounds N] [--quick]`
//!
//! - `tiers`: the cost of a put, an L2 hit, an L3 hit and a miss with the SQLite L2 backend
//!   against the JSONL backend and L3, and the limits (a raw rusqlite transaction of the same
//!   row, a raw append of the same bytes).
//! - `threads`: puts and health reports on one handle from 1, 2, 4, 8 and 64 threads.
//! - `processes`: puts into one store from 1, 2 and 4 processes (this binary started again).
//!
//! Never run in CI: it measures, it does not check.

#[path = "../common/mod.rs"]
mod common;
mod measure;
mod processes;
mod threads;
mod tiers;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; the child processes get `child ...`.
    if args.first().map(String::as_str) == Some("child") {
        processes::child(&args[1..]);
        return;
    }
    let mut rounds = 7;
    let mut quick = false;
    let mut parts = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => {
                rounds = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--rounds takes a number")
            }
            "--quick" => quick = true,
            "--bench" => {}
            part => parts.push(part.to_string()),
        }
    }
    if parts.is_empty() || parts.iter().any(|p| p == "all") {
        parts = vec!["tiers".into(), "threads".into(), "processes".into()];
    }
    for part in parts {
        match part.as_str() {
            "tiers" => tiers::run(rounds, quick),
            "threads" => threads::run(rounds, quick),
            "processes" => processes::run(rounds, quick),
            other => panic!("unknown part {other}: tiers, threads, processes or all"),
        }
    }
}
