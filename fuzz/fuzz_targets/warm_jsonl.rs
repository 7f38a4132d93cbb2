//! Warm files: any bytes as a `.jsonl` file given to `warm_from_file` on a cache with L1, the
//! JSONL L2 and the SQLite L3 (emptied after each input).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pwcache_fuzz::input_checks::warm::{WarmBench, WarmFormat};

static BENCH: OnceLock<WarmBench> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    BENCH
        .get_or_init(WarmBench::default)
        .check(WarmFormat::Jsonl, data);
});
