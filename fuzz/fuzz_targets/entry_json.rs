//! The entry JSON: any bytes as the text of `put` (parsed, resolved, round-tripped, put and read
//! back through an L1 cache) and of `put_many`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pwcache_fuzz::input_checks::entry::{EntryBench, check_entry_json, check_entry_list_json};

static BENCH: OnceLock<EntryBench> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_entry_json(text);
        check_entry_list_json(text);
        BENCH.get_or_init(EntryBench::default).check_put_get(text);
    }
});
