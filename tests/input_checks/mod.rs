//! What must hold for any input that pwcache parses or reads back: configuration JSON, entry
//! JSON, warm files, JSONL shards and SQLite rows.
//!
//! One oracle, two drivers: the property tests (`tests/properties.rs`, stable, in CI) generate
//! inputs with proptest, and the cargo-fuzz targets (`fuzz/`, nightly) take them from libFuzzer;
//! both call these checks, which panic when a property fails. A clean error (an [`Error`] whose
//! kind is one the call may return, with a message, mapping to a `pw_status` other than `PW_OK`)
//! is a pass; a panic inside pwcache, a wrong status, a value that does not round-trip, or data
//! that comes back different from what the input said, is a failure.
//!
//! The checks write only under [`scratch_root`] (the system temp dir, or `$TMPDIR`).
#![allow(dead_code)]

pub mod config;
pub mod entry;
pub mod secrets;
pub mod shard;
pub mod sqlite_row;
pub mod warm;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pwcache::crypto::Crypto;
use pwcache::ffi::status::pw_status;
use pwcache::stats::TierCounters;
use pwcache::tier::TierContext;
use pwcache::{Durability, Error, ErrorKind, EvictionPolicy, Timestamp};

/// The Fernet key of every cache the checks open (credentials must decrypt across handles).
pub const KEY: &str = "dGVzdC1rZXktZm9yLXB3Y2FjaGUtZml4dHVyZXMtMDE=";

/// Where the checks create their directories: `$TMPDIR` when set (scripts/fuzz.sh points it at a
/// tmpfs directory it removes afterwards), else the system temp dir.
pub fn scratch_root() -> PathBuf {
    std::env::temp_dir()
}

/// The context the checks open a tier with: their key, no capacity, normal durability. `dir` is
/// where `Crypto` would keep a key of its own; with the key given it reads nothing there.
pub fn tier_context(dir: &Path) -> TierContext {
    TierContext {
        max_entries: None,
        eviction_policy: EvictionPolicy::Lru,
        durability: Durability::Normal,
        crypto: Arc::new(Crypto::new(Some(KEY), dir).expect("the checks' key")),
        counters: Arc::new(TierCounters::new(true)),
    }
}

/// The fixed "now" of the checks' clocks, so that expiry never depends on when a check runs.
pub fn now() -> Timestamp {
    Timestamp::parse("2026-11-24T00:00:00Z").expect("a valid datetime")
}

/// Asserts that `e` is a clean error of the call `what`: one of the kinds that call documents,
/// a non-empty message, and a C status that is an error.
pub fn assert_clean(what: &str, e: &Error, allowed: &[ErrorKind]) {
    assert!(
        allowed.contains(&e.kind()),
        "{what}: error of kind {:?} (allowed: {allowed:?}): {e}",
        e.kind()
    );
    let status = pw_status::from(e.kind());
    assert!(
        !matches!(status, pw_status::PW_OK | pw_status::PW_PANIC),
        "{what}: {e} maps to {status:?}"
    );
    assert!(
        !e.to_string().is_empty(),
        "{what}: an error without a message"
    );
}
