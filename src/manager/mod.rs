//! The cache manager: one handle over L1, L2 and L3.
//!
//! [`CacheManager`] is the public API: it checks its arguments and hands each call to the
//! [`engine`], which holds the tiers and orders every operation across them. The files:
//!
//! - [`engine`]: the tiers, get (with promotion), delete, clear, expiry, statistics;
//! - [`write_back`]: write-through of puts, and L1's usage counters written back below;
//! - [`put_group`]: single puts from several threads stored as one batch (group commit);
//! - [`health`]: failed health checks counted in every tier, and health eviction;
//! - [`warm`] and [`export`]: bulk load and dump, clients of the engine's store and scan;
//! - [`fleet`]: the shared tier of a fleet: local hits copied up into it, fleet-wide health;
//! - [`coherence`]: the listener that drops from L1 what other handles of the fleet change;
//! - [`slot`]: a persistent tier's degradation, back-off and recovery;
//! - [`missed`]: what a degraded tier missed, journaled so it is repaired after a restart;
//! - [`locks`]: the striped per-key locks that serialise operations on one key;
//! - [`sweeper`]: the background thread that sweeps expired entries (`TtlManager`);
//! - [`summary`]: what the cache holds, read from the tiers (for statistics across processes);
//! - [`closed_handles`]: every closed handle's counters, added up in a file beside the cache.
//!
//! How a get, a put and a sweep flow through the tiers, and the invariants they keep, are in
//! docs/architecture.md.

mod closed_handles;
mod coherence;
mod engine;
mod export;
mod fleet;
mod health;
mod locks;
mod missed;
mod put_group;
pub mod single_tier;
mod slot;
mod summary;
mod sweeper;
mod warm;
mod whole_cache;
mod write_back;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::config::CacheConfig;
use crate::entry::{CacheEntry, EntryInput};
use crate::error::{Error, Result};
use crate::stats::CacheStatistics;
use crate::time::{Clock, SystemClock};

pub use crate::config::MAX_CLEANUP_INTERVAL_SECONDS;
pub use closed_handles::{ClosedHandleStatistics, FILE_NAME as TOTALS_FILE_NAME, TierTotals};
pub(crate) use engine::Engine;
pub use export::ExportCounts;
pub use summary::StoreSummary;
pub use sweeper::TtlManager;
pub use warm::{
    RowOutcome, RowPlace, RowProblem, WARM_PROBLEMS_LISTED, WARM_ROW_LOG_TARGET, WarmCounts,
    WarmReport,
};
pub use write_back::WRITE_BACK_BATCH;

/// A cache handle. Every method may be called from many threads at once; per key, the results
/// are as if the calls ran one after another (a handle serves its own L1 copy of an entry until
/// that copy leaves L1, even if another handle changed the entry meanwhile).
pub struct CacheManager {
    engine: Arc<Engine>,
    /// The sweeper started by `enable_background_cleanup`, stopped when the handle drops.
    background: Option<TtlManager>,
}

impl CacheManager {
    /// Opens a cache with the system clock. Tiers that cannot be used start degraded (see the
    /// statistics); only an invalid configuration or encryption key fails, a SQLite tier on a
    /// SQLite library older than pwcache needs ([`Error::Unsupported`]), or a thread the cache
    /// needs that cannot be created (a fleet's notice listener: [`Error::Storage`]).
    pub fn open(config: CacheConfig) -> Result<CacheManager> {
        CacheManager::open_with_clock(config, Arc::new(SystemClock))
    }

    /// Opens a cache reading the time from `clock` (tests and simulations).
    pub fn open_with_clock(config: CacheConfig, clock: Arc<dyn Clock>) -> Result<CacheManager> {
        let mut cache = CacheManager {
            engine: Arc::new(Engine::open(config, clock)?),
            background: None,
        };
        let config = &cache.engine.config;
        if config.enable_background_cleanup {
            let ttl = TtlManager::new(&cache, config.cleanup_interval_seconds)?;
            ttl.start();
            cache.background = Some(ttl);
        }
        Ok(cache)
    }

    pub(crate) fn shared(&self) -> Arc<Engine> {
        self.engine.clone()
    }

    pub fn config(&self) -> &CacheConfig {
        &self.engine.config
    }

    /// Stores an entry under `key` (the key argument wins over a `key` in the input).
    pub fn put(&self, key: &str, input: EntryInput) -> Result<()> {
        check_key(key)?;
        let engine = &self.engine;
        let entry = input.resolve(key, engine.now(), |s| engine.ttl_for_source(s))?;
        engine.put(entry)
    }

    /// [`CacheManager::put`] with the entry as JSON text.
    pub fn put_json(&self, key: &str, entry_json: &str) -> Result<()> {
        check_key(key)?;
        self.put(key, EntryInput::from_json(entry_json)?)
    }

    /// Stores many entries as one batch per tier (one transaction each). Every input is
    /// validated first; if one is invalid nothing is stored, and the error's message starts
    /// with `item <index>:`. Returns how many were stored.
    pub fn put_many(&self, items: Vec<(String, EntryInput)>) -> Result<u64> {
        let engine = &self.engine;
        let now = engine.now();
        let entries = items
            .into_iter()
            .enumerate()
            .map(|(index, (key, input))| {
                check_key(&key)
                    .and_then(|()| input.resolve(&key, now, |s| engine.ttl_for_source(s)))
                    .map_err(|e| e.in_item(index))
            })
            .collect::<Result<Vec<_>>>()?;
        let n = entries.len() as u64;
        engine.store(entries)?;
        Ok(n)
    }

    /// [`CacheManager::put_many`] with the entries as a JSON array of entry objects, each with
    /// its `key` ([`EntryInput::list_from_json`]).
    pub fn put_many_json(&self, entries_json: &str) -> Result<u64> {
        self.put_many(EntryInput::list_from_json(entries_json)?)
    }

    /// The entry under `key`, counted as read; `None` on a miss or an expired entry.
    pub fn get(&self, key: &str) -> Result<Option<CacheEntry>> {
        check_key(key)?;
        self.engine.get(key)
    }

    /// Removes `key` from every tier. [`Error::NotFound`] when no tier held it.
    pub fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        self.engine.delete(key)
    }

    /// Removes everything; returns the number of distinct keys removed.
    pub fn clear(&self) -> Result<u64> {
        self.engine.clear()
    }

    /// Records a failed health check of `key`; returns `true` when that removed the key from the
    /// cache (`failure_threshold` reached with `health_check_invalidation` on).
    pub fn invalidate_by_health(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        self.engine.invalidate_by_health(key)
    }

    /// Whether this handle's L1 follows the fleet: always without a shared tier; with one,
    /// while its notice listener is subscribed (until then, and while the connection is lost,
    /// reads skip L1; see docs/architecture.md, "The shared tier").
    pub fn is_coherent(&self) -> bool {
        self.engine.l1_trusted()
    }

    /// Exact statistics, sizes counted now. The counters are this handle's, since it opened;
    /// [`CacheManager::closed_handle_statistics`] has those of every handle that closed.
    pub fn statistics(&self) -> CacheStatistics {
        self.engine.statistics()
    }

    /// What the cache holds, read from every tier (one pass over all entries): entries per
    /// tier, distinct and live entries, health states, expired entries not yet swept, the next
    /// expiry. The same in every process.
    pub fn summary(&self) -> StoreSummary {
        self.engine.summary()
    }

    /// The counters of every handle on this cache that has closed, added up: each handle adds
    /// its own when it is dropped, to `pwcache_stats.json` in `l2_cache_dir`. `None` before the
    /// first one has.
    pub fn closed_handle_statistics(&self) -> Result<Option<ClosedHandleStatistics>> {
        self.engine.totals_file().read()
    }

    /// Starts the closed handles' totals again (removes `pwcache_stats.json`).
    pub fn reset_closed_handle_statistics(&self) -> Result<()> {
        self.engine.totals_file().reset()
    }

    /// Removes expired entries from every tier; returns the number of distinct keys removed.
    pub fn cleanup_expired(&self) -> Result<u64> {
        self.engine.cleanup_expired()
    }

    /// Loads proxies from a `.json` (an array of objects), `.jsonl` (one object a line) or
    /// `.csv` (a header row) file; each needs a `proxy_url`. The report counts the rows and
    /// lists the first skipped or failed ones with their line and reason (every one is also
    /// logged as a warning). Errors: [`Error::InvalidJson`] for a `.json` file that is not a
    /// JSON array, [`Error::InvalidInput`] for a `.csv` file with no header row or no
    /// `proxy_url` column; nothing is loaded then.
    pub fn warm_from_file(&self, path: &Path, ttl_override: Option<i64>) -> Result<WarmReport> {
        warm::warm_from_file(
            &self.engine,
            path,
            ttl_override,
            &mut |_, _| {},
            &AtomicBool::new(false),
        )
    }

    /// [`CacheManager::warm_from_file`], calling `progress(done, total)` as it goes (bytes of the
    /// file for `.jsonl`/`.csv`, items for `.json`).
    pub fn warm_from_file_with_progress(
        &self,
        path: &Path,
        ttl_override: Option<i64>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<WarmReport> {
        let never = AtomicBool::new(false);
        warm::warm_from_file(&self.engine, path, ttl_override, progress, &never)
    }

    /// [`CacheManager::warm_from_file_with_progress`] that stops reading once `stop` is set
    /// (from a signal handler, another thread), at the next point where every row read so far
    /// is stored: the report returned then says exactly what the tiers hold from this file, and
    /// the last `progress(done, _)` says how far it read. The caller knows it stopped by its
    /// flag.
    pub fn warm_from_file_until(
        &self,
        path: &Path,
        ttl_override: Option<i64>,
        progress: &mut dyn FnMut(u64, u64),
        stop: &AtomicBool,
    ) -> Result<WarmReport> {
        warm::warm_from_file(&self.engine, path, ttl_override, progress, stop)
    }

    /// Writes every live entry once, as JSON Lines, atomically (docs/FORMAT.md, exports). Reads
    /// nothing as a hit and changes nothing.
    pub fn export_to_file(&self, path: &Path, include_credentials: bool) -> Result<ExportCounts> {
        let never = AtomicBool::new(false);
        export::export_to_file(
            &self.engine,
            path,
            include_credentials,
            &mut |_, _| {},
            &never,
        )
    }

    /// [`CacheManager::export_to_file`], calling `progress(written, estimated_total)`.
    pub fn export_to_file_with_progress(
        &self,
        path: &Path,
        include_credentials: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ExportCounts> {
        let never = AtomicBool::new(false);
        export::export_to_file(&self.engine, path, include_credentials, progress, &never)
    }

    /// [`CacheManager::export_to_file_with_progress`] that gives up once `stop` is set: the
    /// file is then not written (an export is whole or not at all) and the error is an
    /// [`Error::Io`] of kind `Interrupted` saying how many entries had been written.
    pub fn export_to_file_until(
        &self,
        path: &Path,
        include_credentials: bool,
        progress: &mut dyn FnMut(u64, u64),
        stop: &AtomicBool,
    ) -> Result<ExportCounts> {
        export::export_to_file(&self.engine, path, include_credentials, progress, stop)
    }
}

impl Drop for CacheManager {
    fn drop(&mut self) {
        if let Some(ttl) = self.background.take() {
            ttl.stop();
        }
    }
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidArgument("the key must not be empty".into()));
    }
    Ok(())
}
