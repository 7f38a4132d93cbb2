//! A SQLite row: the input decoded into the values of one `l2_cache` or `cache_entries` row
//! (`SqlRow::from_bytes`), written by another connection and read back through the tier's scan,
//! the cache's export and the cache's `get`.
#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use pwcache_fuzz::input_checks::sqlite_row::SqliteBench;

// A rusqlite connection is not `Sync`: the bench sits behind a mutex (libFuzzer calls from one
// thread).
static BENCH: OnceLock<Mutex<SqliteBench>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let bench = BENCH.get_or_init(|| Mutex::new(SqliteBench::default()));
    bench.lock().expect("the bench").check_bytes(data);
});
