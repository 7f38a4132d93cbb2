//! The storage tiers, behind one trait.
//!
//! - [`memory`]: L1, a bounded in-memory map ordered by the eviction policy ([`order`]).
//! - [`jsonl`]: L2 as append-only JSON Lines with tombstones and compaction.
//! - [`sqlite`]: L2 (`l2_cache`) and L3 (`cache_entries`) in SQLite, upstream's schemas.
//!
//! A tier stores whole [`CacheEntry`] values; it knows nothing of the other tiers, of promotion or
//! of expiry on read (the manager decides those). A tier counts what only it can see, capacity
//! evictions and corrupt records, in the [`TierCounters`] it was opened with. Corrupt records are
//! dropped and read as misses; they never fail the call.

use std::sync::Arc;

use crate::config::{Durability, EvictionPolicy};
use crate::crypto::Crypto;
use crate::entry::CacheEntry;
use crate::error::Result;
use crate::stats::TierCounters;
use crate::time::Timestamp;

pub mod jsonl;
pub mod memory;
pub mod order;
pub mod sqlite;

/// What a persistent tier is opened with.
#[derive(Clone)]
pub struct TierContext {
    /// `None` = unbounded.
    pub max_entries: Option<u64>,
    pub eviction_policy: EvictionPolicy,
    pub durability: Durability,
    pub crypto: Arc<Crypto>,
    pub counters: Arc<TierCounters>,
}

/// One storage tier. Every method may be called from many threads at once.
// `len` is fallible (it may read the disk); an `is_empty` would add nothing but a second query.
#[allow(clippy::len_without_is_empty)]
pub trait Tier: Send + Sync {
    /// A short name for log lines: `"memory"`, `"jsonl"`, `"sqlite"`.
    fn kind(&self) -> &'static str;

    /// The entry stored under `key`, expired or not. A corrupt record is dropped, counted in
    /// `evictions_corruption` and reads as `None`. A credential that cannot be decrypted (wrong
    /// key) is an [`crate::Error::Crypto`] and the record is kept.
    fn get(&self, key: &str) -> Result<Option<CacheEntry>>;

    /// Stores every entry, replacing what its key held, as one batch (one transaction where the
    /// tier has them). When `max_entries` is exceeded, entries are evicted by the policy and
    /// counted in `evictions_lru`.
    fn put_many(&self, entries: &[CacheEntry]) -> Result<()>;

    fn put(&self, entry: &CacheEntry) -> Result<()> {
        self.put_many(std::slice::from_ref(entry))
    }

    /// One batch of `stored` entries and of `written_back` ones: entries leaving L1 (evicted, or
    /// saved at close) whose other fields this tier already holds, as only `access_count`,
    /// `last_accessed` and `evicted_from_l1` change while an entry sits in L1. A tier may record
    /// just those for them (no index to rewrite), storing whole any it does not hold. By default,
    /// everything is stored whole.
    fn put_batch(&self, stored: &[CacheEntry], written_back: &[CacheEntry]) -> Result<()> {
        if written_back.is_empty() {
            return self.put_many(stored);
        }
        let all: Vec<CacheEntry> = stored.iter().chain(written_back).cloned().collect();
        self.put_many(&all)
    }

    /// Removes `key`; `true` when it was stored.
    fn delete(&self, key: &str) -> Result<bool>;

    /// Removes everything; returns the keys that were stored.
    fn clear(&self) -> Result<Vec<String>>;

    /// How many entries the tier stores, expired ones not yet swept included.
    fn len(&self) -> Result<u64>;

    /// Removes the entries with `expires_at <= now`; returns their keys.
    fn remove_expired(&self, now: Timestamp) -> Result<Vec<String>>;

    /// Calls `visit` with every stored entry, without changing anything (no access counts, no
    /// statistics, nothing dropped). A record that cannot be decoded (corrupt, or a credential the
    /// key cannot decrypt) is passed as an `Err`, so an export can count it as failed.
    fn scan(&self, visit: &mut dyn FnMut(Result<CacheEntry>)) -> Result<()>;
}
