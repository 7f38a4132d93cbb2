//! Crash recovery: a writer process is SIGKILLed at random moments, again and again on one store,
//! and after each kill nothing it acknowledged may be missing (issue 10, part 5).
//!
//! The writer is this test binary started again ([`crash_writer`]). Its threads each own a range
//! of keys and run puts, gets, deletes and health reports (`invalidate_by_health`) on one handle
//! with a 16-entry L1, so entries leave L1 and are written back all the time. Each thread logs
//! the op it is about to run (`B`) and, once the call has returned, its outcome (`A`), each line
//! with one `write(2)`: a kill loses no line that was written, so the parent knows every
//! acknowledged op, and the one op per thread that was in flight (it may or may not have
//! happened). The parent kills the writer 5 to 60 ms after it starts writing, then:
//!
//! 1. replays the logs against its model of every key: each acknowledged `get`, `delete` and
//!    health report must have returned what the model says (the key's last acknowledged state);
//! 2. reads the files without the engine (the JSONL shards line by line, or the L2 database, and
//!    the L3 database): `PRAGMA integrity_check` is `ok`, every complete JSONL line is a record or
//!    a tombstone of its shard, and every key holds its acknowledged state, or for a key whose op
//!    was in flight, the state before or after that op;
//! 3. opens a fresh `CacheManager` (which repairs torn JSONL tails) and `get`s every key, with the
//!    same expectations;
//! 4. settles the keys whose op was in flight: where the tiers agree, their state becomes the
//!    model's; where they disagree (an op cut between L2 and L3), or a divergence was found, the
//!    parent deletes the key.
//!
//! The store carries over from kill to kill, so each writer starts with a recovery. Health
//! failure counts: a key's count equals the acknowledged one (the count after the last
//! acknowledged op on it: 0 after a put, +1 per acknowledged report), or is one more when a
//! report on it was in flight; a lower count is a `health_backwards` divergence.
//!
//! One run per backend serves two tests: every acknowledged value (no put lost, no delete
//! undone, sound files, enough kills), and every acknowledged failure count.
//!
//! Run lengths (environment): `PWCACHE_CRASH_KILLS` kills per backend (60), `PWCACHE_CRASH_SECONDS`
//! at most per backend (60), `PWCACHE_CRASH_SEED` to repeat a run's choices (printed in the
//! summary; the timing of the kills cannot be repeated), `PWCACHE_KEEP_RUNS=1` to keep the store
//! and the logs.

mod common;
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use pwcache::{CacheConfig, CacheManager, L2Backend};
use serde_json::json;

use harness::child;
use harness::divergence::{Divergence, Tally, classify, classify_outcome};
use harness::oplog::{self, OpLog};
use harness::ops::{self, Op, Outcome};
use harness::rng::{self, Rng};
use harness::store;
use harness::values::{self, Seen};

/// Writer threads, each with its own keys.
const THREADS: u64 = 4;
const KEYS_PER_THREAD: u64 = 24;
/// Small, so that entries keep leaving L1 and are written back.
const L1_ENTRIES: u64 = 16;
/// Op weights: put, get, delete, health report.
const WEIGHTS: [u64; 4] = [45, 20, 15, 20];
/// A writer that is not killed stops after this.
const WRITER_SECONDS: u64 = 10;
/// The kill comes this many milliseconds after the writer starts writing.
const KILL_DELAY_MS: (u64, u64) = (5, 60);
/// Below this many kills per backend (when the time limit cuts a run short) the test fails: CI
/// must see at least 50 kills over both backends.
const MIN_KILLS: u64 = 25;

fn config_for(store: &Path, backend: L2Backend) -> CacheConfig {
    let mut config = common::config_in(store);
    config.l2_backend = backend;
    config.l1.max_entries = Some(L1_ENTRIES);
    config
}

fn key_name(thread: u64, index: u64) -> String {
    format!("t{thread}k{index}")
}

/// The id of the value a put stores: its writer generation, thread and sequence number.
fn value_id(generation: u64, thread: u64, seq: u64) -> String {
    format!("g{generation}t{thread}s{seq}")
}

// ---- the writer process ---------------------------------------------------------------------

#[test]
#[ignore = "the writer process of the crash tests, which start it"]
fn crash_writer() {
    let Some(params) = child::started() else {
        return;
    };
    let backend = child::backend_param(&params);
    let store = child::path_param(&params, "store");
    let logs = child::path_param(&params, "logs");
    let generation = params["generation"].as_u64().unwrap();
    let seed = params["seed"].as_u64().unwrap();
    let cache = Arc::new(CacheManager::open(config_for(&store, backend)).unwrap());
    let deadline = Instant::now() + Duration::from_secs(WRITER_SECONDS);
    std::fs::write(logs.join("started"), b"").unwrap();
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let cache = cache.clone();
            let log = logs.join(format!("t{thread}.log"));
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed ^ (thread + 1).wrapping_mul(0x9e37_79b9));
                write(&cache, thread, generation, &mut rng, &log, deadline)
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

/// One writer thread: random ops on its own keys until `deadline` (or the kill).
fn write(
    cache: &CacheManager,
    thread: u64,
    generation: u64,
    rng: &mut Rng,
    log: &Path,
    deadline: Instant,
) {
    let mut log = OpLog::create(log);
    let mut seq = 0;
    while Instant::now() < deadline {
        let index = rng.below(KEYS_PER_THREAD);
        let op = Op::pick(rng, WEIGHTS);
        log.line(&format!("B {seq} {} {index}", op.name()));
        let key = key_name(thread, index);
        let outcome = ops::run(cache, op, &key, &value_id(generation, thread, seq));
        log.line(&format!("A {seq} {}", outcome.to_log()));
        seq += 1;
    }
}

// ---- the parent -------------------------------------------------------------------------------

/// What a run found: each test below checks one part of it.
struct CrashRun {
    summary: String,
    tally: Tally,
    kills: u64,
    kills_wanted: u64,
    /// Where the store and the logs were kept (`PWCACHE_KEEP_RUNS=1`).
    kept: Option<PathBuf>,
}

/// The run of `backend`, made once for both of its tests.
fn run(backend: L2Backend) -> &'static CrashRun {
    static RUNS: [OnceLock<CrashRun>; 2] = [const { OnceLock::new() }; 2];
    RUNS[usize::from(backend == L2Backend::Sqlite)].get_or_init(|| crash_run(backend))
}

/// Values: no acknowledged put lost, no acknowledged delete undone, every file sound, enough
/// kills. Failure counts: none below the acknowledged one.
fn assert_passes(backend: L2Backend, failure_counts: bool) {
    let run = run(backend);
    let backwards = run.tally.count(Divergence::HealthBackwards);
    let diverged = if failure_counts {
        backwards
    } else {
        run.tally.total() - backwards
    };
    let kept = run.kept.as_ref().map_or(String::new(), |p| {
        format!(
            "the store and the writers' logs are kept in {}",
            p.display()
        )
    });
    assert_eq!(
        diverged,
        0,
        "{}\n{kept}\n{}",
        run.summary,
        run.tally.examples()
    );
    assert!(
        run.kills >= run.kills_wanted.min(MIN_KILLS),
        "only {} kills: {}",
        run.kills,
        run.summary
    );
}

#[test]
fn sigkill_keeps_every_acknowledged_value_jsonl() {
    assert_passes(L2Backend::Jsonl, false);
}

#[test]
fn sigkill_keeps_every_acknowledged_failure_count_jsonl() {
    assert_passes(L2Backend::Jsonl, true);
}

#[test]
fn sigkill_keeps_every_acknowledged_value_sqlite() {
    assert_passes(L2Backend::Sqlite, false);
}

#[test]
fn sigkill_keeps_every_acknowledged_failure_count_sqlite() {
    assert_passes(L2Backend::Sqlite, true);
}

/// The parent's knowledge of the store.
struct Model {
    /// Every key's acknowledged state.
    keys: BTreeMap<String, Seen>,
    /// Keys whose op was in flight at the kill: what that op may have left besides the
    /// acknowledged state ([`in_flight_states`]).
    in_flight: BTreeMap<String, Vec<Seen>>,
    /// Keys whose state no longer follows from the logs (after a divergence): settled by a delete.
    unknown: BTreeSet<String>,
    threshold: i64,
}

#[derive(Default)]
struct Figures {
    kills: u64,
    acknowledged: u64,
    in_flight: u64,
    keys_checked: u64,
    settled_by_delete: u64,
    torn_tails: u64,
    warnings: u64,
}

fn crash_run(backend: L2Backend) -> CrashRun {
    let kills = harness::number_from_env("PWCACHE_CRASH_KILLS", 60);
    let budget = Duration::from_secs(harness::number_from_env("PWCACHE_CRASH_SECONDS", 60));
    let seed = rng::seed_from_env("PWCACHE_CRASH_SEED");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let config = config_for(&store_dir, backend);
    let mut model = Model {
        keys: (0..THREADS)
            .flat_map(|t| (0..KEYS_PER_THREAD).map(move |i| (key_name(t, i), Seen::Absent)))
            .collect(),
        in_flight: BTreeMap::new(),
        unknown: BTreeSet::new(),
        threshold: config.failure_threshold,
    };
    let mut figures = Figures::default();
    let mut tally = Tally::default();
    let started = Instant::now();
    let mut generation = 0;
    while figures.kills < kills && started.elapsed() < budget {
        let logs = dir.path().join(format!("gen{generation}"));
        std::fs::create_dir(&logs).unwrap();
        let output = logs.join("output.txt");
        let params = json!({
            "backend": child::backend_name(backend),
            "store": store_dir,
            "logs": logs,
            "generation": generation,
            "seed": rng.next_u64(),
        });
        let mut writer = child::spawn("crash_writer", &params, &output);
        child::wait_for_file(
            &logs.join("started"),
            &mut writer,
            &output,
            Duration::from_secs(60),
        );
        std::thread::sleep(Duration::from_millis(
            rng.between(KILL_DELAY_MS.0, KILL_DELAY_MS.1),
        ));
        if kill(&mut writer) {
            figures.kills += 1;
        }
        figures.warnings += child::warnings_in(&output).len() as u64;
        replay(&logs, generation, &mut model, &mut figures, &mut tally);
        check_store(&config, &mut model, &mut figures, &mut tally);
        generation += 1;
    }
    let summary = format!(
        "crash summary: backend={} seed={seed} kills={} acknowledged_ops={} in_flight_at_kill={} \
         keys_checked={} settled_by_delete={} torn_tails={} engine_warnings={} \
         temporary_files_left={} {} seconds={:.1}",
        child::backend_name(backend),
        figures.kills,
        figures.acknowledged,
        figures.in_flight,
        figures.keys_checked,
        figures.settled_by_delete,
        figures.torn_tails,
        figures.warnings,
        store::temporary_files(&config.l2_cache_dir).len(),
        tally.figures(),
        started.elapsed().as_secs_f64(),
    );
    harness::report(&summary);
    assert!(figures.acknowledged > 0, "{summary}");
    CrashRun {
        summary,
        kept: harness::keep_if_asked(dir),
        tally,
        kills: figures.kills,
        kills_wanted: kills,
    }
}

/// SIGKILLs the writer (`Child::kill` sends SIGKILL); `true` when it was still running.
fn kill(writer: &mut Child) -> bool {
    let running = writer.try_wait().unwrap().is_none();
    writer.kill().unwrap();
    let status = writer.wait().unwrap();
    assert!(
        !running || status.code().is_none(),
        "the writer exited by itself ({status}) while it was expected to be killed"
    );
    running
}

/// Replays the writer's logs: checks every acknowledged outcome against the model and applies
/// it; records the op each thread had in flight.
fn replay(
    logs: &Path,
    generation: u64,
    model: &mut Model,
    figures: &mut Figures,
    tally: &mut Tally,
) {
    for thread in 0..THREADS {
        let mut pending: Option<(u64, Op, String)> = None;
        for line in oplog::read_lines(&logs.join(format!("t{thread}.log"))) {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields.as_slice() {
                ["B", seq, op, index] => {
                    let key = key_name(thread, index.parse().unwrap());
                    pending = Some((seq.parse().unwrap(), Op::parse(op), key));
                }
                ["A", seq, outcome @ ..] => {
                    let (pending_seq, op, key) = pending.take().expect("an A line after a B line");
                    assert_eq!(seq.parse::<u64>().unwrap(), pending_seq, "{line}");
                    let got = Outcome::from_log(outcome);
                    let id = value_id(generation, thread, pending_seq);
                    acknowledge(model, op, &key, &id, &got, tally);
                    figures.acknowledged += 1;
                }
                _ => panic!("not a writer log line: {line:?}"),
            }
        }
        if let Some((seq, op, key)) = pending {
            figures.in_flight += 1;
            let before = &model.keys[&key];
            let id = value_id(generation, thread, seq);
            let states = in_flight_states(op, before, &id, model.threshold);
            model.in_flight.insert(key, states);
        }
    }
}

/// What an op that was in flight at the kill may have left in a tier, besides the state before
/// it: the state after it; for a health report that reached the threshold, also the failure
/// counted and the entry not yet removed (counting and removing are two steps).
fn in_flight_states(op: Op, before: &Seen, id: &str, threshold: i64) -> Vec<Seen> {
    let (_, after) = op.expect(before, id, threshold);
    let mut states = vec![after];
    if let (Op::Health, Seen::Value { id, failures }) = (op, before) {
        let counted = Seen::value(id.clone(), failures + 1);
        if !states.contains(&counted) {
            states.push(counted);
        }
    }
    states
}

/// Applies one acknowledged op to the model, after checking what it returned.
fn acknowledge(model: &mut Model, op: Op, key: &str, id: &str, got: &Outcome, tally: &mut Tally) {
    let before = model.keys[key].clone();
    let (expected, after) = op.expect(&before, id, model.threshold);
    if model.unknown.contains(key) {
        // A put or a delete makes the key known again, whatever it held.
        if matches!(op, Op::Put | Op::Delete) && !matches!(got, Outcome::Error(_)) {
            model.unknown.remove(key);
            model.keys.insert(key.to_string(), after);
        }
        return;
    }
    if let Outcome::Error(message) = got {
        tally.record(
            Divergence::Other,
            format!("{} {key}: error {message}", op.name()),
        );
        model.unknown.insert(key.to_string());
        return;
    }
    match classify_outcome(&before, &expected, got) {
        None => {
            model.keys.insert(key.to_string(), after);
        }
        Some(kind) => {
            tally.record(
                kind,
                format!(
                    "{} {key} returned {} where the acknowledged state {before:?} gives {}",
                    op.name(),
                    got.to_log(),
                    expected.to_log()
                ),
            );
            match op {
                Op::Put | Op::Delete => {
                    model.keys.insert(key.to_string(), after);
                }
                _ => {
                    model.unknown.insert(key.to_string());
                }
            }
        }
    }
}

/// Checks every tier and the engine against the model, then settles the keys whose op was in
/// flight.
fn check_store(config: &CacheConfig, model: &mut Model, figures: &mut Figures, tally: &mut Tally) {
    // The files first, as the kill left them: opening the engine repairs torn JSONL tails.
    let tiers = [
        ("L2", store::read_l2(config)),
        ("L3", store::read_l3(config)),
    ];
    let mut seen: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
    // Keys found diverging: settled like the keys whose op was in flight, so that one
    // divergence is not counted again after every later kill.
    let mut diverged = BTreeSet::new();
    for (name, contents) in &tiers {
        figures.torn_tails += contents.torn_tails;
        for problem in &contents.problems {
            tally.record(Divergence::Other, format!("{name}: {problem}"));
        }
        for key in contents.entries.keys() {
            if !model.keys.contains_key(key) {
                tally.record(
                    Divergence::Other,
                    format!("{name} holds a key never written: {key}"),
                );
            }
        }
        for key in model.keys.keys() {
            let found = values::seen_held(key, contents.entries.get(key));
            if check_key(model, name, key, &found, tally) {
                diverged.insert(key.clone());
            }
            seen.entry(key.clone()).or_default().push(found);
            figures.keys_checked += 1;
        }
    }
    let cache = CacheManager::open(config.clone()).unwrap();
    if config.l2_backend == L2Backend::Jsonl {
        // Opening cut every torn tail, and only that: the same records are live.
        let repaired = store::read_l2(config);
        if repaired.torn_tails > 0 || repaired.entries != tiers[0].1.entries {
            tally.record(
                Divergence::Other,
                format!(
                    "after the open: {} torn tails left, live records changed: {}",
                    repaired.torn_tails,
                    repaired.entries != tiers[0].1.entries
                ),
            );
        }
    }
    for key in model.keys.keys() {
        let found = match cache.get(key) {
            Ok(entry) => values::seen_entry(key, entry.as_ref()),
            Err(e) => {
                tally.record(Divergence::Other, format!("engine: get {key}: {e}"));
                continue;
            }
        };
        if check_key(model, "engine", key, &found, tally) {
            diverged.insert(key.clone());
        }
        seen.entry(key.clone()).or_default().push(found);
        figures.keys_checked += 1;
    }
    model.unknown.extend(diverged);
    // Settle: an op cut between the tiers leaves them disagreeing; a delete makes them agree.
    let unsettled: Vec<String> = model
        .in_flight
        .keys()
        .chain(&model.unknown)
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for key in unsettled {
        let states = &seen[&key];
        let agreed = states.windows(2).all(|w| w[0] == w[1]);
        let allowed = !model.unknown.contains(&key)
            && (states[0] == model.keys[&key]
                || model
                    .in_flight
                    .get(&key)
                    .is_some_and(|s| s.contains(&states[0])));
        if agreed && allowed {
            model.keys.insert(key.clone(), states[0].clone());
        } else {
            match ops::run(&cache, Op::Delete, &key, "") {
                Outcome::Deleted | Outcome::Missing => {}
                other => tally.record(
                    Divergence::Other,
                    format!("settling {key}: delete returned {}", other.to_log()),
                ),
            }
            figures.settled_by_delete += 1;
            model.keys.insert(key.clone(), Seen::Absent);
        }
        model.unknown.remove(&key);
    }
    model.in_flight.clear();
}

/// Checks what `place` holds for `key` against the model; `true` when it diverges.
fn check_key(model: &Model, place: &str, key: &str, found: &Seen, tally: &mut Tally) -> bool {
    if model.unknown.contains(key) {
        return false;
    }
    let acknowledged = &model.keys[key];
    let mut allowed = vec![acknowledged.clone()];
    allowed.extend(model.in_flight.get(key).into_iter().flatten().cloned());
    if let Some(kind) = classify(acknowledged, &allowed, found) {
        tally.record(
            kind,
            format!("{place} holds {found:?} under {key}; allowed: {allowed:?}"),
        );
        return true;
    }
    false
}
