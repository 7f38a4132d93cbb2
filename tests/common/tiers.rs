//! Helpers of the tests that open a persistent tier directly (tests/tier_contract.rs,
//! tests/l2_jsonl.rs, tests/sqlite_tiers.rs): the context a tier opens with, and an entry with
//! every field set.

use std::path::Path;
use std::sync::Arc;

use pwcache::crypto::Crypto;
use pwcache::stats::TierCounters;
use pwcache::tier::TierContext;
use pwcache::{CacheEntry, Durability, EvictionPolicy, HealthStatus, Secret, Timestamp};

/// How a test opens a tier; the default is the tests' key, unbounded, LRU, normal durability.
pub struct TierOptions<'a> {
    pub key: &'a str,
    pub max: Option<u64>,
    pub policy: EvictionPolicy,
    pub durability: Durability,
}

impl Default for TierOptions<'_> {
    fn default() -> Self {
        TierOptions {
            key: super::KEY,
            max: None,
            policy: EvictionPolicy::Lru,
            durability: Durability::Normal,
        }
    }
}

/// The context of a tier opened with `options`, and the counters it reports to. `dir` is where
/// `Crypto` would keep a key of its own; with the key given it reads nothing there.
pub fn tier_context(dir: &Path, options: &TierOptions) -> (TierContext, Arc<TierCounters>) {
    let counters = Arc::new(TierCounters::new(true));
    let ctx = TierContext {
        max_entries: options.max,
        eviction_policy: options.policy,
        durability: options.durability,
        crypto: Arc::new(Crypto::new(Some(options.key), dir).unwrap()),
        counters: counters.clone(),
    };
    (ctx, counters)
}

/// An entry fetched at `fetch_time` with every field away from its default: credentials, times
/// to the microsecond, counters, and a health error with quotes and a line break, which a
/// line-based or quoted format must escape.
pub fn full_entry(key: &str, fetch_time: Timestamp) -> CacheEntry {
    let after = |micros: i64| Timestamp::from_micros(fetch_time.as_micros() + micros).unwrap();
    let mut e = CacheEntry::new(key, "socks5://10.1.2.3:1080", "fetched", fetch_time, 7200);
    e.username = Secret::new("alice-user");
    e.password = Secret::new("p@ss:wörd/secret");
    e.last_accessed = after(1_800_530_865);
    e.access_count = 7;
    e.health_status = HealthStatus::Degraded;
    e.failure_count = 2;
    e.evicted_from_l1 = true;
    e.last_health_check = Some(after(1_199_876_545));
    e.consecutive_health_failures = 3;
    e.consecutive_health_successes = 4;
    e.recovery_attempt = 5;
    e.next_check_time = Some(after(2_400_876_543));
    e.last_health_error = Some("connect timeout \"quoted\"\nnewline".into());
    e.total_health_checks = 11;
    e.total_health_check_failures = 6;
    e
}
