//! A JSONL shard: the first byte picks pwcache's shard file, a proxywhirl shard to import, or a
//! valid shard cut and followed by the rest of the input; the tier opens, reads, compacts and
//! reopens it.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pwcache_fuzz::input_checks::shard::ShardBench;

static BENCH: OnceLock<ShardBench> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    BENCH.get_or_init(ShardBench::default).check_bytes(data);
});
