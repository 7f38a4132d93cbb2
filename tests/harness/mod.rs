//! Shared by the crash, multi-process and stale-copy tests (`tests/crash.rs`,
//! `tests/processes.rs`, `tests/stale_copies.rs`): child processes, their operation logs, and
//! reading what each tier holds without going through the engine.
#![allow(dead_code)]

pub mod child;
pub mod divergence;
pub mod oplog;
pub mod ops;
pub mod rng;
pub mod store;
pub mod values;

/// An unsigned number from the environment variable `name` (a run length, a count), or `default`.
pub fn number_from_env(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be an unsigned integer, got {text:?}")),
        Err(_) => default,
    }
}

/// Writes a summary line straight to standard error, so `cargo test` shows it without
/// `--nocapture` (the test harness captures only `print!` and `eprint!`).
pub fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// With `PWCACHE_KEEP_RUNS=1` in the environment, keeps a run's directory (its store and the
/// children's logs) instead of removing it, and says where it is.
pub fn keep_if_asked(dir: tempfile::TempDir) -> Option<std::path::PathBuf> {
    if std::env::var("PWCACHE_KEEP_RUNS").as_deref() != Ok("1") {
        return None;
    }
    let kept = dir.keep();
    report(&format!(
        "  kept the run's store and logs in {}",
        kept.display()
    ));
    Some(kept)
}
