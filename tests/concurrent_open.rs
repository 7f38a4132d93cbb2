//! Processes that open one new store at the same moment must all get every tier.
//!
//! A multi-process run (`tests/processes.rs`) once lost writes this way: five processes opened a
//! fresh store together, one of them met `database is locked` while setting up the SQLite L2, and
//! started with L2 degraded. It wrote L3 alone for the 100 ms until the others repaired L2 from
//! its journal, and meanwhile they served, from L2, values it had replaced or deleted. A lock held
//! by another opener is a wait, not a failure.
//!
//! Each round starts [`PROCESSES`] children on a new store; each opens a handle as soon as the
//! parent says go, puts a key, and reports the degraded flags. Every flag must be false and no
//! engine warning may be logged. `PWCACHE_OPEN_ROUNDS` sets the rounds per backend (40).

mod common;
mod harness;

use std::time::Duration;

use pwcache::{CacheManager, EntryInput, L2Backend};
use serde_json::json;

use harness::child;

const PROCESSES: usize = 6;

#[test]
#[ignore = "a process of the concurrent-open tests, which start it"]
fn opener() {
    let Some(params) = child::started() else {
        return;
    };
    let run = child::path_param(&params, "run");
    let process = params["process"].as_u64().unwrap();
    let mut config = common::config_in(&child::path_param(&params, "store"));
    config.l2_backend = child::backend_param(&params);
    child::ready_then_wait_for_go(&run, process, Duration::from_secs(60));
    let cache = CacheManager::open(config).unwrap();
    cache
        .put(
            &format!("k{process}"),
            EntryInput::with_url(format!("http://p{process}.pwcache.test:8080")),
        )
        .unwrap();
    let stats = cache.statistics();
    println!("degraded l2={} l3={}", stats.l2_degraded, stats.l3_degraded);
}

fn rounds_open_together(backend: L2Backend) {
    let rounds = harness::number_from_env("PWCACHE_OPEN_ROUNDS", 40);
    let mut failures = Vec::new();
    for round in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let params = (0..PROCESSES).map(|process| {
            json!({
                "backend": child::backend_name(backend),
                "store": store,
                "run": run,
                "process": process,
            })
        });
        let mut children = child::start_together("opener", &run, params, Duration::from_secs(60));
        child::go(&run);
        for (process, (child, output)) in children.iter_mut().enumerate() {
            child::wait_with_timeout(child, output, Duration::from_secs(60));
            let text = std::fs::read_to_string(&*output).unwrap();
            for warning in child::warnings_in(output) {
                failures.push(format!("round {round}, process {process}: {warning}"));
            }
            if !text.contains("degraded l2=false l3=false") {
                failures.push(format!(
                    "round {round}, process {process} started with a tier degraded:\n{text}"
                ));
            }
        }
    }
    harness::report(&format!(
        "concurrent open: backend={backend:?} rounds={rounds} processes={PROCESSES} failures={}",
        failures.len()
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn sqlite_l2_processes_opening_a_new_store_together_all_get_every_tier() {
    rounds_open_together(L2Backend::Sqlite);
}

#[test]
fn jsonl_l2_processes_opening_a_new_store_together_all_get_every_tier() {
    rounds_open_together(L2Backend::Jsonl);
}
