//! A fleet of four processes on one pool (this test binary started again, [`fleet_user`]), each
//! with its own L2/L3 directory and L1, all sharing one real `redis-server` (started on a free
//! loopback port, killed at the end). Each process runs a bounded number of puts, gets, deletes
//! and health reports on keys of its own and on keys all of them share, logging each op with
//! `CLOCK_MONOTONIC` read just before and after it (one clock for every process). Once all have
//! finished, and the coherence bound has passed, every process reads every key.
//!
//! Checked against a model of the fleet:
//! - own keys (one writer): every outcome is the owner's serial model's (a health report evicts
//!   at exactly `failure_threshold`, once), and every process finally reads the model's state;
//! - shared keys, every `get`: a value it returns was not replaced or removed by a write that
//!   ended more than the coherence bound ([`LAG`]) before the get started (no deleted key
//!   back, the last acknowledged value wins); an absence (from `get`, `delete` or a health
//!   report) needs a removal that may have come after each put that ended before it;
//! - shared keys, evictions: each value is evicted at most once: between two evictions of a
//!   key there is a put that may have come between them;
//! - shared keys at the end: every process reads the same thing (the same `failure_count`
//!   too), and it is the result of one of the last writes (no write started after it ended).
//!
//! Skipped with a message when redis-server is not installed, unless `PWCACHE_REQUIRE_REDIS` is
//! set. Environment: `PWCACHE_FLEET_SEED` repeats the choices of ops and keys (not their timing).

mod common;
mod harness;
mod redis_server;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use pwcache::{CacheConfig, SharedConfig};
use serde_json::json;

use harness::child;
use harness::divergence::{Divergence, OwnOp, Tally, replay_own_keys};
use harness::oplog::{self, OpLog};
use harness::ops::{self, Op, Outcome};
use harness::rng::{self, Rng};
use harness::values::Seen;
use redis_server::RedisServer;

const PROCESSES: u64 = 4;
const OWN_KEYS: u64 = 4;
const SHARED_KEYS: u64 = 4;
/// Ops per process (and at most [`RUN_LIMIT`] of running them).
const OPS: u64 = 1500;
const RUN_LIMIT: Duration = Duration::from_secs(30);
/// Op weights: put, get, delete, health report.
const WEIGHTS: [u64; 4] = [30, 40, 10, 20];
const THRESHOLD: i64 = 3;
/// The coherence bound: another handle's L1 may serve a replaced or removed value this long
/// after the write returned.
const LAG: Duration = Duration::from_millis(100);

fn config(local: &Path, url: &str) -> CacheConfig {
    CacheConfig {
        shared: SharedConfig {
            enabled: true,
            url: url.to_string(),
            namespace: "model".into(),
            // Generous: a call slowed by the loaded test machine must not degrade the tier
            // (this test injects no fault; a degraded tier would be reported as an error).
            timeout_ms: 2000,
            ..SharedConfig::default()
        },
        failure_threshold: THRESHOLD,
        ..common::config_in(local)
    }
}

fn own_key(process: u64, index: u64) -> String {
    format!("p{process}o{index}")
}

fn shared_key(index: u64) -> String {
    format!("s{index}")
}

fn all_keys() -> Vec<String> {
    (0..PROCESSES)
        .flat_map(|p| (0..OWN_KEYS).map(move |i| own_key(p, i)))
        .chain((0..SHARED_KEYS).map(shared_key))
        .collect()
}

// ---- the child process ------------------------------------------------------------------------

#[test]
#[ignore = "a process of the fleet model test, which starts it"]
fn fleet_user() {
    let Some(params) = child::started() else {
        return;
    };
    let run = child::path_param(&params, "run");
    let process = params["process"].as_u64().unwrap();
    let url = params["url"].as_str().unwrap();
    let mut rng = Rng::new(params["seed"].as_u64().unwrap());
    let cache = redis_server::open_coherent(config(&run.join(format!("local{process}")), url));
    child::ready_then_wait_for_go(&run, process, Duration::from_secs(60));
    let mut log = OpLog::create(&run.join(format!("p{process}.log")));
    let started = Instant::now();
    for seq in 0..OPS {
        if started.elapsed() > RUN_LIMIT {
            break;
        }
        let key = if rng.below(2) == 0 {
            own_key(process, rng.below(OWN_KEYS))
        } else {
            shared_key(rng.below(SHARED_KEYS))
        };
        let op = Op::pick(&mut rng, WEIGHTS);
        let id = format!("p{process}n{seq}");
        ops::run_logged(&mut log, &cache, op, &key, &id);
        // A pause now and then, so that the run outlasts the coherence bound many times over
        // and a stale L1 copy has time to be caught.
        std::thread::sleep(Duration::from_micros(rng.below(1500)));
    }
    std::fs::write(run.join(format!("done{process}")), b"").unwrap();
    // Every process reads every key once all have finished and the coherence bound has passed.
    child::wait_for_signal(&run.join("read"), Duration::from_secs(60));
    let mut finals = OpLog::create(&run.join(format!("final{process}.log")));
    for key in all_keys() {
        let outcome = ops::run(&cache, Op::Get, &key, "-");
        finals.line(&format!("{key} {}", outcome.to_log()));
    }
    let stats = cache.statistics();
    finals.line(&format!("degraded {}", stats.shared_degraded));
}

// ---- the parent -------------------------------------------------------------------------------

/// One logged op.
#[derive(Clone, Debug)]
struct Logged {
    start: u64,
    end: u64,
    op: Op,
    key: String,
    id: String,
    outcome: Outcome,
    process: u64,
}

impl Logged {
    fn parse(line: &str, process: u64) -> Logged {
        let fields: Vec<&str> = line.split(' ').collect();
        Logged {
            start: fields[0].parse().unwrap(),
            end: fields[1].parse().unwrap(),
            op: Op::parse(fields[2]),
            key: fields[3].to_string(),
            id: fields[4].to_string(),
            outcome: Outcome::from_log(&fields[5..]),
            process,
        }
    }

    fn is_put(&self) -> bool {
        self.outcome == Outcome::Stored
    }

    fn is_removal(&self) -> bool {
        self.outcome.removed_the_key()
    }

    fn describe(&self) -> String {
        format!(
            "p{} {} {} ({}..{} ns) -> {}",
            self.process,
            self.op.name(),
            self.key,
            self.start,
            self.end,
            self.outcome.to_log()
        )
    }
}

/// The owner's serial model of its own keys: every outcome checked, the final states returned.
fn check_own_keys(ops: &[Logged], tally: &mut Tally) -> BTreeMap<String, Seen> {
    let keys = (0..PROCESSES).flat_map(|p| (0..OWN_KEYS).map(move |i| own_key(p, i)));
    let own = ops
        .iter()
        .filter(|o| !o.key.starts_with('s'))
        .map(|o| OwnOp {
            key: &o.key,
            op: o.op,
            id: &o.id,
            outcome: &o.outcome,
            describe: o.describe(),
        });
    replay_own_keys(keys, own, THRESHOLD, tally)
}

/// Every outcome on the shared keys against every process's writes; evictions at most once a
/// value. Returns the number of reads served a value that had just been replaced or removed
/// (within [`LAG`]) and the oldest such.
fn check_shared_outcomes(ops: &[Logged], tally: &mut Tally) -> (u64, Duration) {
    let lag = LAG.as_nanos() as u64;
    let (mut stale_within_lag, mut oldest) = (0, 0u64);
    for index in 0..SHARED_KEYS {
        let key = shared_key(index);
        let on_key: Vec<&Logged> = ops.iter().filter(|o| o.key == key).collect();
        let puts: Vec<&&Logged> = on_key.iter().filter(|o| o.is_put()).collect();
        let removals: Vec<&&Logged> = on_key.iter().filter(|o| o.is_removal()).collect();
        for op in &on_key {
            let seen = match &op.outcome {
                Outcome::Got(seen) => seen.clone(),
                Outcome::Missing => Seen::Absent,
                Outcome::Error(e) => {
                    tally.record(Divergence::Other, format!("{}: {e}", op.describe()));
                    continue;
                }
                _ => continue,
            };
            match seen {
                Seen::Value { id, .. } => {
                    let Some(put) = puts.iter().find(|p| p.id == id) else {
                        tally.record(Divergence::Other, format!("{}: no such put", op.describe()));
                        continue;
                    };
                    // The writes that came after this value's put had returned.
                    for later in on_key
                        .iter()
                        .filter(|w| (w.is_put() && w.id != id) || w.is_removal())
                        .filter(|w| w.start > put.end && w.end < op.start)
                    {
                        let age = op.start - later.end;
                        if age > lag {
                            tally.record(
                                Divergence::of_stale_read(later.is_removal()),
                                format!(
                                    "{} served {id}, {} ms after {} returned",
                                    op.describe(),
                                    age / 1_000_000,
                                    later.describe()
                                ),
                            );
                        } else {
                            stale_within_lag += 1;
                            oldest = oldest.max(age);
                        }
                    }
                }
                Seen::Absent => {
                    // Each put that returned before this op began was removed after it began.
                    for put in puts.iter().filter(|p| p.end < op.start) {
                        let removed = removals
                            .iter()
                            .any(|r| r.start < op.end && r.end > put.start);
                        if !removed {
                            tally.record(
                                Divergence::LostWrite,
                                format!("{}: {} had returned", op.describe(), put.describe()),
                            );
                        }
                    }
                }
                Seen::Foreign(why) => {
                    tally.record(Divergence::Other, format!("{}: {why}", op.describe()));
                }
            }
        }
        // Exactly-once eviction: a second eviction needs a new value put in between.
        let mut evictions: Vec<&&Logged> = on_key
            .iter()
            .filter(|o| o.outcome == Outcome::Removed)
            .collect();
        evictions.sort_by_key(|o| o.start);
        for pair in evictions.windows(2) {
            let (first, second) = (pair[0], pair[1]);
            let refilled = puts
                .iter()
                .any(|p| p.start < second.end && p.end > first.start);
            if !refilled {
                tally.record(
                    Divergence::Other,
                    format!(
                        "evicted twice with no put between: {} and {}",
                        first.describe(),
                        second.describe()
                    ),
                );
            }
        }
    }
    (stale_within_lag, Duration::from_nanos(oldest))
}

/// What the last writes of a shared key may have left (a write no other write started after).
fn allowed_finals(ops: &[Logged], key: &str) -> Vec<Option<String>> {
    let writes: Vec<&Logged> = ops
        .iter()
        .filter(|o| o.key == key && (o.is_put() || o.is_removal()))
        .collect();
    if writes.is_empty() {
        return vec![None];
    }
    writes
        .iter()
        .filter(|w| !writes.iter().any(|later| later.start > w.end))
        .map(|w| w.is_put().then(|| w.id.clone()))
        .collect()
}

fn id_of(seen: &Seen) -> Option<String> {
    match seen {
        Seen::Value { id, .. } => Some(id.clone()),
        _ => None,
    }
}

#[test]
fn four_processes_on_one_pool_agree_with_a_model_of_the_fleet() {
    let Some(server) = RedisServer::start("fleet model: 4 processes") else {
        return;
    };
    let top = tempfile::tempdir().unwrap();
    let run = top.path();
    let seed = rng::seed_from_env("PWCACHE_FLEET_SEED");
    let params = (0..PROCESSES).map(|process| {
        json!({
            "run": run.to_str().unwrap(),
            "process": process,
            "url": server.url(),
            "seed": seed.wrapping_add(process.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        })
    });
    let mut children = child::start_together("fleet_user", run, params, Duration::from_secs(30));
    let started = Instant::now();
    child::go(run);
    for (process, (child, output)) in children.iter_mut().enumerate() {
        child::wait_for_file(
            &run.join(format!("done{process}")),
            child,
            output,
            RUN_LIMIT + Duration::from_secs(30),
        );
    }
    let ran = started.elapsed();
    std::thread::sleep(LAG + Duration::from_millis(50));
    std::fs::write(run.join("read"), b"").unwrap();
    for (child, output) in children.iter_mut() {
        child::wait_with_timeout(child, output, Duration::from_secs(60));
    }

    let mut ops: Vec<Logged> = Vec::new();
    for process in 0..PROCESSES {
        for line in oplog::read_lines(&run.join(format!("p{process}.log"))) {
            ops.push(Logged::parse(&line, process));
        }
    }
    let mut tally = Tally::default();
    let own_final = check_own_keys(&ops, &mut tally);
    let (stale, oldest) = check_shared_outcomes(&ops, &mut tally);

    // Every process's final reads.
    let mut finals: BTreeMap<String, Vec<(u64, Seen)>> = BTreeMap::new();
    for process in 0..PROCESSES {
        for line in oplog::read_lines(&run.join(format!("final{process}.log"))) {
            let fields: Vec<&str> = line.split(' ').collect();
            if fields[0] == "degraded" {
                if fields[1] != "false" {
                    tally.record(
                        Divergence::Other,
                        format!("p{process}: shared tier degraded"),
                    );
                }
                continue;
            }
            let seen = match Outcome::from_log(&fields[1..]) {
                Outcome::Got(seen) => seen,
                other => {
                    tally.record(
                        Divergence::Other,
                        format!("p{process} final get {}: {}", fields[0], other.to_log()),
                    );
                    continue;
                }
            };
            finals
                .entry(fields[0].to_string())
                .or_default()
                .push((process, seen));
        }
    }
    for key in all_keys() {
        let seen_by = finals.get(&key).cloned().unwrap_or_default();
        if seen_by.len() != PROCESSES as usize {
            tally.record(
                Divergence::Other,
                format!("{key}: {} final reads", seen_by.len()),
            );
            continue;
        }
        if let Some(model) = own_final.get(&key) {
            for (process, seen) in &seen_by {
                if seen != model {
                    let kind =
                        harness::divergence::classify(model, std::slice::from_ref(model), seen)
                            .unwrap_or(Divergence::Other);
                    tally.record(
                        kind,
                        format!(
                            "p{process} finally read {key} as {}, the model {}",
                            seen.to_log(),
                            model.to_log()
                        ),
                    );
                }
            }
            continue;
        }
        let first = &seen_by[0].1;
        if seen_by.iter().any(|(_, s)| s != first) {
            tally.record(
                Divergence::Other,
                format!("{key}: the processes disagree: {seen_by:?}"),
            );
        }
        let allowed = allowed_finals(&ops, &key);
        if !allowed.contains(&id_of(first)) {
            let kind = if first == &Seen::Absent {
                Divergence::LostWrite
            } else if allowed.contains(&None) {
                Divergence::UndoneDelete
            } else {
                Divergence::LostWrite
            };
            tally.record(
                kind,
                format!("{key} finally {}, allowed {allowed:?}", first.to_log()),
            );
        }
    }

    let count = |f: &dyn Fn(&Logged) -> bool| ops.iter().filter(|o| f(o)).count();
    let summary = format!(
        "fleet model, 4 processes, seed {seed}: {} ops in {ran:.2?} ({} on shared keys: {} puts, \
         {} gets, {} deletes, {} health reports of which {} evicted); reads within the \
         {LAG:?} coherence bound that served a value just replaced or removed: {stale} (oldest \
         {oldest:.2?}); divergences: {}",
        ops.len(),
        count(&|o| o.key.starts_with('s')),
        count(&|o| o.key.starts_with('s') && o.op == Op::Put),
        count(&|o| o.key.starts_with('s') && o.op == Op::Get),
        count(&|o| o.key.starts_with('s') && o.op == Op::Delete),
        count(&|o| o.key.starts_with('s') && o.op == Op::Health),
        count(&|o| o.key.starts_with('s') && o.outcome == Outcome::Removed),
        tally.figures()
    );
    harness::report(&summary);
    assert!(
        ops.len() as u64 >= PROCESSES * OPS / 2,
        "too few ops ran: {summary}"
    );
    assert_eq!(tally.total(), 0, "{summary}\n{}", tally.examples());
    harness::keep_if_asked(top);
}
