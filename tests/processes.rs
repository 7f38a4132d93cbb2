//! Several processes on one store (issue 10, part 5): five processes (this test binary started
//! again, [`store_user`]) open one store and, for a bounded time, run puts, gets, deletes and
//! health reports on keys of their own and on keys all of them share. Each op is logged with
//! `CLOCK_MONOTONIC` read just before and just after the call (one clock for every process), so
//! the parent knows which ops came strictly before which.
//!
//! Checks, after every process has exited normally (freeing its handle):
//! - Own keys (one writer each): every outcome is what the process's own model says, and at the
//!   end L2, L3 (read from the files, and by handles with only that tier enabled) and a fresh
//!   handle hold exactly the model's state.
//! - Shared keys, every outcome against every process's ops, as a serial order would allow:
//!   a `get` may not return a value that was overwritten or deleted by an op that ended before
//!   the get started (nor a value whose put had not started when the get ended), and a
//!   NOT_FOUND (from `get`, `delete` or a health report) needs a removal that may have come
//!   between the last put that ended before it and itself.
//! - Shared keys at the end: every tier holds the result of one of the last writes (a write
//!   that no other write started after), so no deleted key is in any tier.
//!
//! Two L1 settings per backend: without L1 (the strict check above), and with an L1 of four
//! entries, so entries leave L1 and are written back all the time. A handle may serve its own
//! L1 copy until it leaves L1, so there a `get` may also return the value the process itself
//! last stored or read under that key.
//!
//! Environment: `PWCACHE_PROCESSES_SECONDS` per run (3), `PWCACHE_PROCESSES_SEED` (repeats the
//! choices of ops and keys, not their timing), `PWCACHE_PROCESSES_WEIGHTS`, `PWCACHE_KEEP_RUNS=1`
//! to keep the store and the logs.

mod common;
mod harness;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use pwcache::{CacheConfig, CacheManager, L2Backend};
use serde_json::json;

use common::one_lower_tier;
use harness::child;
use harness::divergence::{Divergence, OwnOp, Tally, classify, replay_own_keys};
use harness::oplog::{self, OpLog, monotonic_ns};
use harness::ops::{self, Op, Outcome};
use harness::rng::{self, Rng};
use harness::store;
use harness::values::{self, Seen};

const PROCESSES: u64 = 5;
const OWN_KEYS: u64 = 12;
const SHARED_KEYS: u64 = 6;
/// Op weights: put, get, delete, health report.
const WEIGHTS: [u64; 4] = [35, 35, 15, 15];

/// [`WEIGHTS`], or `PWCACHE_PROCESSES_WEIGHTS` (`put,get,delete,health`) to find which op
/// brings a divergence about.
fn weights() -> [u64; 4] {
    let Ok(text) = std::env::var("PWCACHE_PROCESSES_WEIGHTS") else {
        return WEIGHTS;
    };
    let parsed: Vec<u64> = text
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect();
    parsed
        .try_into()
        .unwrap_or_else(|_| panic!("PWCACHE_PROCESSES_WEIGHTS: four numbers, got {text:?}"))
}
/// The small L1: entries keep leaving it.
const SMALL_L1: u64 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum L1 {
    Off,
    Small,
}

fn config_for(store: &Path, backend: L2Backend, l1: L1) -> CacheConfig {
    let mut config = common::config_in(store);
    config.l2_backend = backend;
    match l1 {
        L1::Off => config.l1.enabled = false,
        L1::Small => config.l1.max_entries = Some(SMALL_L1),
    }
    config
}

fn own_key(process: u64, index: u64) -> String {
    format!("p{process}o{index}")
}

fn shared_key(index: u64) -> String {
    format!("s{index}")
}

fn value_id(process: u64, seq: u64) -> String {
    format!("p{process}n{seq}")
}

// ---- the child process ------------------------------------------------------------------------

#[test]
#[ignore = "a process of the multi-process tests, which start it"]
fn store_user() {
    let Some(params) = child::started() else {
        return;
    };
    let backend = child::backend_param(&params);
    let l1 = match params["l1"].as_str() {
        Some("off") => L1::Off,
        _ => L1::Small,
    };
    let store = child::path_param(&params, "store");
    let run = child::path_param(&params, "run");
    let process = params["process"].as_u64().unwrap();
    let seconds = params["seconds"].as_f64().unwrap();
    let mut rng = Rng::new(params["seed"].as_u64().unwrap());
    let cache = CacheManager::open(config_for(&store, backend, l1)).unwrap();
    child::ready_then_wait_for_go(&run, process, Duration::from_secs(120));
    let weights = weights();
    let mut log = OpLog::create(&run.join(format!("p{process}.log")));
    let end = monotonic_ns() + (seconds * 1e9) as u64;
    let mut seq = 0;
    while monotonic_ns() < end {
        let key = if rng.below(2) == 0 {
            own_key(process, rng.below(OWN_KEYS))
        } else {
            shared_key(rng.below(SHARED_KEYS))
        };
        let op = Op::pick(&mut rng, weights);
        let id = value_id(process, seq);
        ops::run_logged(&mut log, &cache, op, &key, &id);
        seq += 1;
    }
    // Freeing the handle writes L1's changed entries back: part of what is checked.
    drop(cache);
}

// ---- the parent -------------------------------------------------------------------------------

/// The checks of one run, each a test of its own so that a failure names the check.
#[derive(Clone, Copy, Debug)]
enum Check {
    /// Own keys (outcomes and final states), errors, and the files (integrity, every line).
    OwnKeys,
    /// Every outcome on the shared keys.
    SharedOutcomes,
    /// What every tier holds under the shared keys once every process has exited.
    SharedFinalState,
}

/// The result of one run: its summary, and the divergences found by each check.
struct Run {
    summary: String,
    own: Tally,
    outcomes: Tally,
    final_state: Tally,
}

/// The run of `backend` and `l1`, made once for all the tests that check it.
fn run(backend: L2Backend, l1: L1) -> &'static Run {
    static RUNS: [OnceLock<Run>; 4] = [const { OnceLock::new() }; 4];
    let slot = 2 * usize::from(backend == L2Backend::Sqlite) + usize::from(l1 == L1::Small);
    RUNS[slot].get_or_init(|| processes_run(backend, l1))
}

fn assert_passes(backend: L2Backend, l1: L1, check: Check) {
    let run = run(backend, l1);
    let tally = match check {
        Check::OwnKeys => &run.own,
        Check::SharedOutcomes => &run.outcomes,
        Check::SharedFinalState => &run.final_state,
    };
    assert_eq!(
        tally.total(),
        0,
        "{check:?}: {}\n{}\n{}",
        tally.figures(),
        run.summary,
        tally.examples()
    );
}

#[test]
fn jsonl_without_l1_own_keys() {
    assert_passes(L2Backend::Jsonl, L1::Off, Check::OwnKeys);
}

#[test]
fn jsonl_without_l1_shared_outcomes() {
    assert_passes(L2Backend::Jsonl, L1::Off, Check::SharedOutcomes);
}

#[test]
fn jsonl_without_l1_shared_final_state() {
    assert_passes(L2Backend::Jsonl, L1::Off, Check::SharedFinalState);
}

#[test]
fn jsonl_small_l1_own_keys() {
    assert_passes(L2Backend::Jsonl, L1::Small, Check::OwnKeys);
}

#[test]
fn jsonl_small_l1_shared_outcomes() {
    assert_passes(L2Backend::Jsonl, L1::Small, Check::SharedOutcomes);
}

#[test]
fn jsonl_small_l1_shared_final_state() {
    assert_passes(L2Backend::Jsonl, L1::Small, Check::SharedFinalState);
}

#[test]
fn sqlite_without_l1_own_keys() {
    assert_passes(L2Backend::Sqlite, L1::Off, Check::OwnKeys);
}

#[test]
fn sqlite_without_l1_shared_outcomes() {
    assert_passes(L2Backend::Sqlite, L1::Off, Check::SharedOutcomes);
}

#[test]
fn sqlite_without_l1_shared_final_state() {
    assert_passes(L2Backend::Sqlite, L1::Off, Check::SharedFinalState);
}

#[test]
fn sqlite_small_l1_own_keys() {
    assert_passes(L2Backend::Sqlite, L1::Small, Check::OwnKeys);
}

#[test]
fn sqlite_small_l1_shared_outcomes() {
    assert_passes(L2Backend::Sqlite, L1::Small, Check::SharedOutcomes);
}

#[test]
fn sqlite_small_l1_shared_final_state() {
    assert_passes(L2Backend::Sqlite, L1::Small, Check::SharedFinalState);
}

/// One logged op.
#[derive(Clone, Debug)]
struct Event {
    process: u64,
    start: u64,
    finish: u64,
    op: Op,
    key: String,
    /// The value a put stores.
    id: String,
    outcome: Outcome,
}

impl Event {
    fn parse(process: u64, line: &str) -> Event {
        let fields: Vec<&str> = line.split(' ').collect();
        let [start, finish, op, key, id, outcome @ ..] = fields.as_slice() else {
            panic!("not a log line: {line:?}");
        };
        Event {
            process,
            start: start.parse().unwrap(),
            finish: finish.parse().unwrap(),
            op: Op::parse(op),
            key: key.to_string(),
            id: id.to_string(),
            outcome: Outcome::from_log(outcome),
        }
    }

    /// A write that changed the value: a put, or a removal.
    fn writes(&self) -> bool {
        self.outcome == Outcome::Stored || self.outcome.removed_the_key()
    }

    /// What a key holds after this write: its value (id), or nothing.
    fn leaves(&self) -> Option<&str> {
        (self.outcome == Outcome::Stored).then_some(self.id.as_str())
    }

    fn describe(&self) -> String {
        format!(
            "p{} {} {} [{}..{}] {}",
            self.process,
            self.op.name(),
            self.key,
            self.start,
            self.finish,
            self.outcome.to_log()
        )
    }
}

#[derive(Default)]
struct Figures {
    ops: u64,
    shared_ops: u64,
    reads_checked: u64,
    not_found_checked: u64,
    final_checks: u64,
    tier_disagreements: u64,
    warnings: u64,
}

fn processes_run(backend: L2Backend, l1: L1) -> Run {
    let seconds = harness::number_from_env("PWCACHE_PROCESSES_SECONDS", 3);
    let seed = rng::seed_from_env("PWCACHE_PROCESSES_SEED");
    let mut rng = Rng::new(seed);
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let config = config_for(&store_dir, backend, l1);
    let params: Vec<_> = (0..PROCESSES)
        .map(|process| {
            json!({
                "backend": child::backend_name(backend),
                "l1": if l1 == L1::Off { "off" } else { "small" },
                "store": store_dir,
                "run": run,
                "process": process,
                "seconds": seconds as f64,
                "seed": rng.next_u64(),
            })
        })
        .collect();
    let mut children = child::start_together("store_user", &run, params, Duration::from_secs(120));
    child::go(&run);
    let mut figures = Figures::default();
    let mut child_warnings = Vec::new();
    for (child, output) in &mut children {
        child::wait_with_timeout(child, output, Duration::from_secs(seconds + 120));
        let warnings = child::warnings_in(output);
        for warning in warnings.iter().take(3) {
            harness::report(&format!("  engine warning in a child: {warning}"));
        }
        figures.warnings += warnings.len() as u64;
        child_warnings.extend(warnings);
    }

    let events: Vec<Event> = (0..PROCESSES)
        .flat_map(|p| {
            oplog::read_lines(&run.join(format!("p{p}.log")))
                .into_iter()
                .map(move |line| Event::parse(p, &line))
        })
        .collect();
    figures.ops = events.len() as u64;
    let (mut own, mut outcomes, mut final_state) =
        (Tally::default(), Tally::default(), Tally::default());
    // No fault is injected: a tier that degrades (and so misses writes that other processes
    // then do not see) is a failure, not noise.
    for warning in child_warnings {
        own.record(Divergence::Other, format!("an engine warning: {warning}"));
    }
    for e in events
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Error(_)))
    {
        own.record(Divergence::Other, format!("an error: {}", e.describe()));
    }
    let own_final = check_own_keys(&events, config.failure_threshold, &mut own);
    let shared: Vec<&Event> = events.iter().filter(|e| e.key.starts_with('s')).collect();
    figures.shared_ops = shared.len() as u64;
    check_shared_outcomes(&shared, l1, &mut figures, &mut outcomes);
    let mut final_tallies = FinalTallies {
        own: &mut own,
        shared: &mut final_state,
    };
    check_final_state(
        &config,
        &own_final,
        &shared,
        &mut figures,
        &mut final_tallies,
    );

    let summary = format!(
        "processes summary: backend={backend:?} l1={l1:?} seed={seed} processes={PROCESSES} \
         seconds={seconds} ops={} shared_key_ops={} reads_checked={} not_found_checked={} \
         final_states_checked={} tier_disagreements={} engine_warnings={} \
         divergences: own_keys({}) shared_outcomes({}) shared_final_state({}) \
         wall_seconds={:.1}",
        figures.ops,
        figures.shared_ops,
        figures.reads_checked,
        figures.not_found_checked,
        figures.final_checks,
        figures.tier_disagreements,
        figures.warnings,
        own.figures(),
        outcomes.figures(),
        final_state.figures(),
        started.elapsed().as_secs_f64(),
    );
    harness::report(&summary);
    harness::keep_if_asked(dir);
    assert!(figures.shared_ops > 0, "{summary}");
    Run {
        summary,
        own,
        outcomes,
        final_state,
    }
}

/// Where the final-state check records: own keys and files, or shared keys.
struct FinalTallies<'a> {
    own: &'a mut Tally,
    shared: &'a mut Tally,
}

/// Replays each process's ops on its own keys against its model; returns the final states.
fn check_own_keys(events: &[Event], threshold: i64, tally: &mut Tally) -> BTreeMap<String, Seen> {
    let keys = (0..PROCESSES).flat_map(|p| (0..OWN_KEYS).map(move |i| own_key(p, i)));
    // Each process's log is in its own order, and its own keys have no other writer.
    let ops = events
        .iter()
        .filter(|e| e.key.starts_with('p'))
        .map(|e| OwnOp {
            key: &e.key,
            op: e.op,
            id: &e.id,
            outcome: &e.outcome,
            describe: e.describe(),
        });
    replay_own_keys(keys, ops, threshold, tally)
}

/// Checks every outcome on a shared key against the ops of every process (see the module docs).
fn check_shared_outcomes(shared: &[&Event], l1: L1, figures: &mut Figures, tally: &mut Tally) {
    let puts: BTreeMap<&str, &Event> = shared
        .iter()
        .filter(|e| e.outcome == Outcome::Stored)
        .map(|e| (e.id.as_str(), *e))
        .collect();
    let writes = writes_by_key(shared);
    // What each process's L1 may hold under each key: the value it last stored or read there.
    // (`shared` holds each process's ops in the order it ran them.)
    let mut l1_copy: BTreeMap<(u64, &str), Option<&str>> = BTreeMap::new();
    for e in shared {
        let writes_of_key = || writes[e.key.as_str()].iter();
        let not_found = matches!(e.outcome, Outcome::Got(Seen::Absent) | Outcome::Missing);
        if let Outcome::Got(Seen::Value { id, .. }) = &e.outcome {
            figures.reads_checked += 1;
            let own_copy = l1 == L1::Small
                && l1_copy.get(&(e.process, e.key.as_str())).copied().flatten() == Some(id);
            match puts.get(id.as_str()) {
                None => tally.record(
                    Divergence::Other,
                    format!("{}: no put of that value", e.describe()),
                ),
                Some(p) if p.key != e.key || p.start >= e.finish => tally.record(
                    Divergence::Other,
                    format!("{}: the value of {}", e.describe(), p.describe()),
                ),
                Some(p) if !own_copy => {
                    let between = writes_of_key()
                        .find(|w| w.id != p.id && w.start > p.finish && w.finish < e.start);
                    if let Some(w) = between {
                        tally.record(
                            Divergence::of_stale_read(w.outcome.removed_the_key()),
                            format!(
                                "{} returned the value of {}, replaced before it by {}",
                                e.describe(),
                                p.describe(),
                                w.describe()
                            ),
                        );
                    }
                }
                Some(_) => {}
            }
        } else if not_found {
            figures.not_found_checked += 1;
            // The put that ended before this op and started last: a removal must fit between.
            let last_put = writes_of_key()
                .filter(|w| w.outcome == Outcome::Stored && w.finish < e.start)
                .max_by_key(|w| w.start);
            if let Some(p) = last_put {
                let removal = writes_of_key().any(|r| {
                    r.outcome.removed_the_key() && r.finish > p.start && r.start < e.finish
                });
                if !removal {
                    tally.record(
                        Divergence::LostWrite,
                        format!(
                            "{} found nothing, though {} ended before it and no removal fits \
                             between",
                            e.describe(),
                            p.describe()
                        ),
                    );
                }
            }
        } else if matches!(e.outcome, Outcome::Error(_)) {
            continue;
        }
        let copy = l1_copy.entry((e.process, e.key.as_str())).or_insert(None);
        match &e.outcome {
            Outcome::Stored => *copy = Some(e.id.as_str()),
            Outcome::Got(Seen::Value { id, .. }) => {
                *copy = puts.get(id.as_str()).map(|p| p.id.as_str());
            }
            Outcome::Recorded => {}
            _ => *copy = None,
        }
    }
}

/// The writes (puts, removals) of each shared key, by key (every key with an op has a list).
fn writes_by_key<'a>(shared: &[&'a Event]) -> BTreeMap<&'a str, Vec<&'a Event>> {
    let mut writes: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for e in shared {
        let list = writes.entry(e.key.as_str()).or_default();
        if e.writes() {
            list.push(e);
        }
    }
    writes
}

/// The last writes of each shared key: those that no other write started after.
fn last_writes<'a>(shared: &[&'a Event]) -> BTreeMap<String, Vec<&'a Event>> {
    let writes = writes_by_key(shared);
    (0..SHARED_KEYS)
        .map(shared_key)
        .map(|key| {
            let of_key = writes.get(key.as_str()).map_or(&[][..], Vec::as_slice);
            let latest_start = of_key.iter().map(|w| w.start).max().unwrap_or(0);
            let last = of_key
                .iter()
                .copied()
                .filter(|w| w.finish >= latest_start)
                .collect();
            (key, last)
        })
        .collect()
}

/// What every tier and a fresh handle hold once every process has exited.
fn check_final_state(
    config: &CacheConfig,
    own: &BTreeMap<String, Seen>,
    shared: &[&Event],
    figures: &mut Figures,
    tallies: &mut FinalTallies<'_>,
) {
    let last_writes = last_writes(shared);
    let mut views: Vec<(&str, BTreeMap<String, Seen>)> = Vec::new();
    for (name, contents) in [
        ("L2 file", store::read_l2(config)),
        ("L3 file", store::read_l3(config)),
    ] {
        for problem in &contents.problems {
            tallies
                .own
                .record(Divergence::Other, format!("{name}: {problem}"));
        }
        let all_keys = own.keys().cloned().chain((0..SHARED_KEYS).map(shared_key));
        for key in contents.entries.keys() {
            if !own.contains_key(key) && !key.starts_with('s') {
                tallies.own.record(
                    Divergence::Other,
                    format!("{name} holds a key never written: {key}"),
                );
            }
        }
        let seen = all_keys
            .map(|k| {
                let held = values::seen_held(&k, contents.entries.get(&k));
                (k, held)
            })
            .collect();
        views.push((name, seen));
    }
    let mut handle_configs = vec![
        ("L2 handle", one_lower_tier(config, true)),
        ("L3 handle", one_lower_tier(config, false)),
        ("fresh handle", config.clone()),
    ];
    for (name, config) in handle_configs.drain(..) {
        let cache = CacheManager::open(config).unwrap();
        let seen = own
            .keys()
            .cloned()
            .chain((0..SHARED_KEYS).map(shared_key))
            .map(|k| {
                let got = ops::run(&cache, Op::Get, &k, "");
                let seen = match got {
                    Outcome::Got(seen) => seen,
                    other => Seen::Foreign(if matches!(other, Outcome::Error(_)) {
                        "error"
                    } else {
                        "not-a-get"
                    }),
                };
                (k, seen)
            })
            .collect();
        views.push((name, seen));
    }

    for (name, seen) in &views {
        for (key, acknowledged) in own {
            figures.final_checks += 1;
            if let Some(kind) =
                classify(acknowledged, std::slice::from_ref(acknowledged), &seen[key])
            {
                tallies.own.record(
                    kind,
                    format!(
                        "{name} holds {:?} under {key}; its model: {acknowledged:?}",
                        seen[key]
                    ),
                );
            }
        }
        for index in 0..SHARED_KEYS {
            let key = shared_key(index);
            figures.final_checks += 1;
            let last = &last_writes[&key];
            let held = match &seen[&key] {
                Seen::Absent => None,
                Seen::Value { id, .. } => Some(id.as_str()),
                Seen::Foreign(why) => {
                    tallies
                        .shared
                        .record(Divergence::Other, format!("{name}: {key} holds {why}"));
                    continue;
                }
            };
            let allowed = if last.is_empty() {
                held.is_none()
            } else {
                last.iter().any(|w| w.leaves() == held)
            };
            if !allowed {
                let kind = if held.is_some() && last.iter().all(|w| w.leaves().is_none()) {
                    Divergence::UndoneDelete
                } else {
                    Divergence::LostWrite
                };
                let last: Vec<String> = last.iter().map(|w| w.describe()).collect();
                tallies.shared.record(
                    kind,
                    format!("{name} holds {held:?} under {key}; the last writes: {last:?}"),
                );
            }
        }
    }
    // The files of L2 and L3 should hold the same value under each shared key.
    let (l2, l3) = (&views[0].1, &views[1].1);
    for index in 0..SHARED_KEYS {
        let key = shared_key(index);
        let id = |seen: &Seen| match seen {
            Seen::Value { id, .. } => Some(id.clone()),
            _ => None,
        };
        if id(&l2[&key]) != id(&l3[&key]) {
            figures.tier_disagreements += 1;
        }
    }
}
