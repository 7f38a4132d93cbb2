//! The cache manager: one handle over L1, L2 and L3 (DESIGN.md §3).
//!
//! - `get` reads L1, then L2, then L3; a lower hit is copied into the tiers above it
//!   (promotion). Access counters live in L1 and reach L2/L3 when the entry leaves L1 (write-back
//!   of the eviction victim, marked `evicted_from_l1`) and when the cache closes.
//! - Victims are written back in batches. An evicted entry waits in L1's side map until
//!   [`WRITE_BACK_BATCH`] wait; the put or promotion that completes the batch writes them all,
//!   a put in its own transactions (its new entry and the victims: one append per JSONL shard,
//!   one transaction per SQLite tier). A waiting victim is written back at once when its key is
//!   read below L1, deleted or invalidated, and all of them by [`CacheManager::statistics`]
//!   (`demotions` counts victims written below) and when the cache closes. Only the counters and
//!   `evicted_from_l1` wait: the entry itself was written through when it was stored. Writing
//!   a victim back with the put that evicted it cost a put about a third more (a second JSONL
//!   append with its lock, and a second B-tree leaf in each SQLite commit).
//! - `put` writes through to every enabled tier; it succeeds when one tier stored the entry.
//! - Expiry is `now >= expires_at` everywhere; an expired entry found by a read is removed from
//!   every tier.
//! - Per key, operations are serialised by striped locks ([`locks`]); L1 hits take none.
//! - A failing disk tier is skipped and retried later ([`slot`]).

mod export;
mod locks;
pub mod single_tier;
mod slot;
mod warm;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{CacheConfig, L2Backend};
use crate::crypto::Crypto;
use crate::entry::{CacheEntry, EntryInput, HealthStatus};
use crate::error::{Error, Result};
use crate::fast_hash::FastMap;
use crate::stats::{CacheStatistics, Counter, TierCounters};
use crate::tier::jsonl::JsonlTier;
use crate::tier::memory::{MemoryTier, Read};
use crate::tier::sqlite::{Schema, SqliteTier};
use crate::tier::{Tier, TierContext};
use crate::time::{Clock, SystemClock, Timestamp};
use crate::ttl::TtlManager;

pub use export::ExportCounts;
pub use warm::WarmCounts;

use locks::{HeldStripes, KeyLocks};
use slot::TierSlot;

/// L1's victims are written back to L2/L3 once this many wait (see the module docs).
pub const WRITE_BACK_BATCH: usize = 64;

/// A cache handle. Every method may be called from many threads at once; per key, the results
/// are as if the calls ran one after another.
pub struct CacheManager {
    inner: Arc<Inner>,
    /// The sweeper started by `enable_background_cleanup`, stopped when the handle drops.
    background: Option<TtlManager>,
}

/// The shared state: kept alive by the handle and by any [`TtlManager`] on it.
pub(crate) struct Inner {
    config: CacheConfig,
    clock: Arc<dyn Clock>,
    l1: Option<MemoryTier>,
    l2: Option<TierSlot>,
    l3: Option<TierSlot>,
    counters: [Arc<TierCounters>; 3],
    promotions: AtomicU64,
    demotions: AtomicU64,
    locks: KeyLocks,
}

/// Where a read found an entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Level {
    L1 = 0,
    L2 = 1,
    L3 = 2,
}

impl CacheManager {
    /// Opens a cache with the system clock. Tiers that cannot be used start degraded (see the
    /// statistics); only an invalid configuration or encryption key fails, or a SQLite tier on a
    /// SQLite library older than pwcache needs ([`Error::Unsupported`]).
    pub fn open(config: CacheConfig) -> Result<CacheManager> {
        CacheManager::open_with_clock(config, Arc::new(SystemClock))
    }

    /// Opens a cache reading the time from `clock` (tests and simulations).
    pub fn open_with_clock(config: CacheConfig, clock: Arc<dyn Clock>) -> Result<CacheManager> {
        config.validate()?;
        let uses_sqlite =
            config.l3.enabled || (config.l2.enabled && config.l2_backend == L2Backend::Sqlite);
        if uses_sqlite {
            crate::tier::sqlite::library::check_this_process()?;
        }
        let crypto = Arc::new(Crypto::new(
            config.encryption_key.as_deref(),
            &config.l2_cache_dir,
        )?);
        let counters: [Arc<TierCounters>; 3] =
            std::array::from_fn(|_| Arc::new(TierCounters::new(config.enable_statistics)));
        let context =
            |tier: &crate::config::TierConfig, counters: &Arc<TierCounters>| TierContext {
                max_entries: tier.max_entries,
                eviction_policy: tier.eviction_policy,
                durability: config.durability,
                crypto: crypto.clone(),
                counters: counters.clone(),
            };
        let l1 = config
            .l1
            .enabled
            .then(|| MemoryTier::new(config.l1.max_entries, config.l1.eviction_policy));
        let l2 = config.l2.enabled.then(|| {
            let ctx = context(&config.l2, &counters[1]);
            let dir = config.l2_cache_dir.clone();
            let opener: Box<dyn Fn() -> Result<Arc<dyn Tier>> + Send + Sync> =
                match config.l2_backend {
                    L2Backend::Jsonl => Box::new(move || {
                        Ok(Arc::new(JsonlTier::open(&dir, ctx.clone())?) as Arc<dyn Tier>)
                    }),
                    L2Backend::Sqlite => Box::new(move || {
                        let path = dir.join("l2_cache.db");
                        Ok(Arc::new(SqliteTier::open(&path, Schema::L2, ctx.clone())?)
                            as Arc<dyn Tier>)
                    }),
                };
            TierSlot::open("L2", opener, clock.clone())
        });
        let l3 = config.l3.enabled.then(|| {
            let ctx = context(&config.l3, &counters[2]);
            let path = config.l3_database_path.clone();
            TierSlot::open(
                "L3",
                Box::new(move || {
                    Ok(Arc::new(SqliteTier::open(&path, Schema::L3, ctx.clone())?)
                        as Arc<dyn Tier>)
                }),
                clock.clone(),
            )
        });
        let inner = Arc::new(Inner {
            config,
            clock,
            l1,
            l2,
            l3,
            counters,
            promotions: AtomicU64::new(0),
            demotions: AtomicU64::new(0),
            locks: KeyLocks::new(),
        });
        let mut cache = CacheManager {
            inner,
            background: None,
        };
        if cache.inner.config.enable_background_cleanup {
            let interval = cache.inner.config.cleanup_interval_seconds;
            let ttl = TtlManager::new(&cache, interval)?;
            ttl.start();
            cache.background = Some(ttl);
        }
        Ok(cache)
    }

    pub(crate) fn shared(&self) -> Arc<Inner> {
        self.inner.clone()
    }

    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// Stores an entry under `key` (the key argument wins over a `key` in the input).
    pub fn put(&self, key: &str, input: EntryInput) -> Result<()> {
        check_key(key)?;
        let inner = &self.inner;
        let entry = input.resolve(key, inner.clock.now(), |s| inner.config.ttl_for_source(s))?;
        inner.store(vec![entry])
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
        let inner = &self.inner;
        let now = inner.clock.now();
        let entries = items
            .into_iter()
            .enumerate()
            .map(|(index, (key, input))| {
                check_key(&key)
                    .and_then(|()| input.resolve(&key, now, |s| inner.config.ttl_for_source(s)))
                    .map_err(|e| e.in_item(index))
            })
            .collect::<Result<Vec<_>>>()?;
        let n = entries.len() as u64;
        inner.store(entries)?;
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
        self.inner.get(key)
    }

    /// Removes `key` from every tier. [`Error::NotFound`] when no tier held it.
    pub fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        self.inner.delete(key)
    }

    /// Removes everything; returns the number of distinct keys removed.
    pub fn clear(&self) -> Result<u64> {
        self.inner.clear()
    }

    /// Records a failed health check of `key`; returns `true` when that removed the key from the
    /// cache (`failure_threshold` reached with `health_check_invalidation` on).
    pub fn invalidate_by_health(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        self.inner.invalidate_by_health(key)
    }

    /// Exact statistics, sizes counted now.
    pub fn statistics(&self) -> CacheStatistics {
        self.inner.statistics()
    }

    /// Removes expired entries from every tier; returns the number of distinct keys removed.
    pub fn cleanup_expired(&self) -> Result<u64> {
        self.inner.cleanup_expired()
    }

    /// Loads proxies from a `.json`, `.jsonl` or `.csv` file (DESIGN.md §3).
    pub fn warm_from_file(&self, path: &Path, ttl_override: Option<i64>) -> Result<WarmCounts> {
        self.inner
            .warm_from_file(path, ttl_override, &mut |_, _| {})
    }

    /// [`CacheManager::warm_from_file`], calling `progress(done, total)` as it goes (bytes of the
    /// file for `.jsonl`/`.csv`, items for `.json`).
    pub fn warm_from_file_with_progress(
        &self,
        path: &Path,
        ttl_override: Option<i64>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<WarmCounts> {
        self.inner.warm_from_file(path, ttl_override, progress)
    }

    /// Writes every live entry once, as JSON Lines, atomically (DESIGN.md §3).
    pub fn export_to_file(&self, path: &Path, include_credentials: bool) -> Result<ExportCounts> {
        self.inner
            .export_to_file(path, include_credentials, &mut |_, _| {})
    }

    /// [`CacheManager::export_to_file`], calling `progress(written, estimated_total)`.
    pub fn export_to_file_with_progress(
        &self,
        path: &Path,
        include_credentials: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ExportCounts> {
        self.inner
            .export_to_file(path, include_credentials, progress)
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

impl Inner {
    fn count(&self, level: Level, counter: Counter, n: u64) {
        self.counters[level as usize].add(counter, n);
    }

    fn bump(&self, cell: &AtomicU64, n: u64) {
        if self.config.enable_statistics && n > 0 {
            cell.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn lower(&self) -> impl Iterator<Item = (Level, &TierSlot)> {
        [(Level::L2, &self.l2), (Level::L3, &self.l3)]
            .into_iter()
            .filter_map(|(level, slot)| slot.as_ref().map(|s| (level, s)))
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    // ---- get ----------------------------------------------------------------------------

    fn get(&self, key: &str) -> Result<Option<CacheEntry>> {
        let now = self.now();
        let mut expired_in_l1 = false;
        if let Some(l1) = &self.l1 {
            match l1.read(key, now) {
                Read::Hit(entry) => {
                    self.count(Level::L1, Counter::Hits, 1);
                    return Ok(Some(entry));
                }
                Read::Expired => expired_in_l1 = true,
                Read::Miss => {}
            }
        }
        let mut held = self.locks.lock(key);
        if let Some(l1) = &self.l1 {
            // Another thread may have stored or promoted the key while we waited for the stripe.
            match l1.read(key, now) {
                Read::Hit(entry) => {
                    self.count(Level::L1, Counter::Hits, 1);
                    return Ok(Some(entry));
                }
                Read::Expired => expired_in_l1 = true,
                Read::Miss if !expired_in_l1 => self.count(Level::L1, Counter::Misses, 1),
                Read::Miss => {}
            }
            if expired_in_l1 {
                self.expire_everywhere(key, Level::L1);
                return Ok(None);
            }
            // An entry evicted a moment ago and not yet written back: write it back first, so
            // the lower tiers hold its latest counters.
            if let Some(evicted) = l1.take_evicted(key) {
                self.write_back(vec![evicted]);
            }
        }
        let mut found: Option<(Level, CacheEntry)> = None;
        for (level, slot) in self.lower() {
            match slot.call(|t| t.get(key)) {
                Ok(Some(Some(entry))) => {
                    found = Some((level, entry));
                    break;
                }
                Ok(Some(None)) => self.count(level, Counter::Misses, 1),
                Ok(None) => {}
                Err(e) => {
                    log::warn!("{}: read failed, counted as a miss: {e}", slot.name);
                    self.count(level, Counter::Misses, 1);
                }
            }
        }
        let Some((level, mut entry)) = found else {
            return Ok(None);
        };
        if entry.is_expired(now) {
            self.expire_everywhere(key, level);
            return Ok(None);
        }
        self.count(level, Counter::Hits, 1);
        entry.touch(now);
        self.promote(&entry, level, &mut held);
        Ok(Some(entry))
    }

    /// Copies an entry found in `from` into the tiers above it; writes back the waiting L1
    /// victims when a batch of them waits.
    fn promote(&self, entry: &CacheEntry, from: Level, held: &mut HeldStripes<'_>) {
        if from == Level::L3
            && let Some(l2) = &self.l2
        {
            let key = std::iter::once(entry.key.as_str());
            if l2.write("promotion", key, |t| t.put(entry)).is_some() {
                self.bump(&self.promotions, 1);
            }
        }
        match &self.l1 {
            Some(l1) => {
                self.bump(&self.promotions, 1);
                let victims = l1.insert(entry.clone(), true);
                self.count(Level::L1, Counter::EvictionsLru, victims.len() as u64);
                if l1.awaiting_len() >= WRITE_BACK_BATCH {
                    let taken = self.take_awaiting(held);
                    self.write_back(taken);
                }
            }
            None => {
                // No L1 to keep the counters: they go to the tier that served the hit.
                let slot = if from == Level::L2 {
                    &self.l2
                } else {
                    &self.l3
                };
                if let Some(slot) = slot {
                    let key = std::iter::once(entry.key.as_str());
                    slot.write("recording a read", key, |t| t.put(entry));
                }
            }
        }
    }

    /// Removes an expired key from every tier, counting `evictions_ttl` where it was found.
    fn expire_everywhere(&self, key: &str, found_in: Level) {
        self.count(found_in, Counter::EvictionsTtl, 1);
        if let Some(l1) = &self.l1 {
            l1.remove(key);
        }
        self.delete_below(std::slice::from_ref(&key));
    }

    /// Deletes keys from L2 and L3; returns how many tiers held each (summed) per level.
    fn delete_below(&self, keys: &[&str]) -> [u64; 3] {
        let mut removed = [0u64; 3];
        for (level, slot) in self.lower() {
            let deleted = slot.write("delete", keys.iter().copied(), |t| {
                let mut n = 0;
                for key in keys {
                    n += u64::from(t.delete(key)?);
                }
                Ok(n)
            });
            removed[level as usize] += deleted.unwrap_or(0);
        }
        removed
    }

    // ---- put and write-back ------------------------------------------------------------

    /// Writes entries through every tier as one batch. The waiting L1 victims go with it when a
    /// batch of them waits, or when it stores several entries (a `put_many`, a warm).
    pub(crate) fn store(&self, entries: Vec<CacheEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut held = self.locks.lock_keys(entries.iter().map(|e| e.key.as_str()));
        let mut batch = entries;
        let mut written_back = Vec::new();
        let mut demoted = 0;
        if let Some(l1) = &self.l1 {
            let mut victims = 0;
            for entry in &batch {
                victims += l1.insert(entry.clone(), false).len();
            }
            self.count(Level::L1, Counter::EvictionsLru, victims as u64);
            // Victims ride along in this write's transactions once a batch of them waits. A
            // `put_many` takes them all: some may be its own entries, evicted by the entries after
            // them, which are not below yet.
            if batch.len() > 1 || l1.awaiting_len() >= WRITE_BACK_BATCH {
                let taken = self.take_awaiting(&mut held);
                demoted = taken.len();
                written_back = fold_victims_into(&mut batch, taken);
            }
        }
        let mut stored = self.l1.is_some();
        let mut written_below = false;
        for (_, slot) in self.lower() {
            let keys = batch.iter().chain(&written_back).map(|e| e.key.as_str());
            if slot
                .write("write", keys, |t| t.put_batch(&batch, &written_back))
                .is_some()
            {
                stored = true;
                written_below = true;
            }
        }
        if written_below {
            self.bump(&self.demotions, demoted as u64);
        }
        drop(held);
        if stored {
            Ok(())
        } else {
            Err(Error::Storage(
                "no enabled tier could store the entry".into(),
            ))
        }
    }

    /// Takes the entries awaiting write-back whose stripes are held, or free now, for the caller
    /// to write back while it holds them. Those whose stripes are busy wait for the next batch
    /// (waiting for them here could deadlock).
    fn take_awaiting(&self, held: &mut HeldStripes<'_>) -> Vec<CacheEntry> {
        let Some(l1) = &self.l1 else {
            return Vec::new();
        };
        l1.awaiting_keys()
            .into_iter()
            .filter(|key| held.try_add(key))
            .filter_map(|key| l1.take_evicted(&key))
            .collect()
    }

    /// Writes back every entry awaiting it, waiting for their stripes (the caller holds none).
    fn flush_write_backs(&self) {
        let Some(l1) = &self.l1 else { return };
        let keys = l1.awaiting_keys();
        if keys.is_empty() {
            return;
        }
        let _held = self.locks.lock_keys(keys.iter().map(|k| &**k));
        let taken = keys.iter().filter_map(|k| l1.take_evicted(k)).collect();
        self.write_back(taken);
    }

    /// Writes entries that left L1 to L2 and L3 (the caller holds their stripes).
    fn write_back(&self, entries: Vec<CacheEntry>) {
        if entries.is_empty() {
            return;
        }
        let mut written = false;
        for (_, slot) in self.lower() {
            let keys = entries.iter().map(|e| e.key.as_str());
            written |= slot
                .write("write-back", keys, |t| t.put_batch(&[], &entries))
                .is_some();
        }
        if written {
            self.bump(&self.demotions, entries.len() as u64);
        }
    }

    // ---- delete, clear, health ------------------------------------------------------------

    fn delete(&self, key: &str) -> Result<()> {
        let _held = self.locks.lock(key);
        let mut held_somewhere = false;
        let mut answered = 0;
        if let Some(l1) = &self.l1 {
            answered += 1;
            let evicted = l1.take_evicted(key).is_some();
            held_somewhere |= l1.remove(key).is_some() || evicted;
        }
        for (_, slot) in self.lower() {
            if let Some(removed) = slot.write("delete", std::iter::once(key), |t| t.delete(key)) {
                answered += 1;
                held_somewhere |= removed;
            }
        }
        if answered == 0 {
            return Err(Error::Storage("no enabled tier could be reached".into()));
        }
        if held_somewhere {
            Ok(())
        } else {
            Err(Error::NotFound(format!("no entry under key {key:?}")))
        }
    }

    fn clear(&self) -> Result<u64> {
        let _held = self.locks.lock_all();
        let mut keys: HashSet<String> = HashSet::new();
        let mut answered = 0;
        if let Some(l1) = &self.l1 {
            answered += 1;
            keys.extend(l1.remove_all());
        }
        for (_, slot) in self.lower() {
            match slot.call(|t| t.clear()) {
                Ok(Some(removed)) => {
                    answered += 1;
                    keys.extend(removed);
                }
                Ok(None) => slot.missed_clear(),
                Err(e) => {
                    log::warn!("{}: clear failed: {e}", slot.name);
                    slot.missed_clear();
                }
            }
        }
        if answered == 0 {
            return Err(Error::Storage("no enabled tier could be reached".into()));
        }
        Ok(keys.len() as u64)
    }

    fn invalidate_by_health(&self, key: &str) -> Result<bool> {
        let now = self.now();
        let _held = self.locks.lock(key);
        if let Some(l1) = &self.l1
            && let Some(evicted) = l1.take_evicted(key)
        {
            self.write_back(vec![evicted]);
        }
        // Which tiers hold the key, and the freshest copy (L1's counters are the newest).
        let mut holders: Vec<Level> = Vec::new();
        let mut current: Option<CacheEntry> = None;
        let mut answered = 0;
        // Tiers that could not be read: whether they hold the key is unknown.
        let mut unread: Vec<Level> = Vec::new();
        if let Some(l1) = &self.l1 {
            answered += 1;
            if let Some(entry) = l1.peek(key) {
                holders.push(Level::L1);
                current = Some(entry);
            }
        }
        for (level, slot) in self.lower() {
            match slot.call(|t| t.get(key)) {
                Ok(Some(found)) => {
                    answered += 1;
                    if let Some(entry) = found {
                        holders.push(level);
                        current.get_or_insert(entry);
                    }
                }
                Ok(None) => unread.push(level),
                Err(e) => {
                    log::warn!("{}: read failed: {e}", slot.name);
                    unread.push(level);
                }
            }
        }
        let Some(mut entry) = current else {
            if answered == 0 {
                return Err(Error::Storage("no enabled tier could be reached".into()));
            }
            return Err(Error::NotFound(format!("no entry under key {key:?}")));
        };
        if entry.is_expired(now) {
            self.expire_everywhere(key, holders[0]);
            return Err(Error::NotFound(format!(
                "the entry under key {key:?} expired"
            )));
        }
        entry.failure_count = entry.failure_count.saturating_add(1);
        entry.health_status = HealthStatus::Unhealthy;
        if self.config.health_check_invalidation
            && entry.failure_count >= self.config.failure_threshold
        {
            if let Some(l1) = &self.l1
                && l1.remove(key).is_some()
            {
                self.count(Level::L1, Counter::EvictionsHealth, 1);
            }
            let removed = self.delete_below(&[key]);
            for level in [Level::L2, Level::L3] {
                self.count(level, Counter::EvictionsHealth, removed[level as usize]);
            }
            return Ok(true);
        }
        if holders.contains(&Level::L1)
            && let Some(l1) = &self.l1
        {
            let (failures, status) = (entry.failure_count, entry.health_status);
            l1.update(key, |e| {
                e.failure_count = failures;
                e.health_status = status;
            });
        }
        for (level, slot) in self.lower() {
            // A tier that could not be read gets the write too: if it is still skipped, the key
            // is remembered as missed there and repaired when the tier recovers.
            if holders.contains(&level) || unread.contains(&level) {
                slot.write("recording a health failure", std::iter::once(key), |t| {
                    t.put(&entry)
                });
            }
        }
        Ok(false)
    }

    // ---- statistics and sweeping ----------------------------------------------------------

    fn statistics(&self) -> CacheStatistics {
        // `demotions` counts victims written below: the ones still waiting are written now.
        self.flush_write_backs();
        let l1_size = self.l1.as_ref().map_or(0, |l1| l1.size() as u64);
        let size_of = |slot: &Option<TierSlot>| match slot {
            None => 0,
            Some(slot) => match slot.call(|t| t.len()) {
                Ok(Some(n)) => n,
                Ok(None) => 0,
                Err(e) => {
                    log::warn!("{}: cannot count entries: {e}", slot.name);
                    0
                }
            },
        };
        let sizes = [l1_size, size_of(&self.l2), size_of(&self.l3)];
        let degraded = [
            false,
            self.l2.as_ref().is_some_and(TierSlot::is_degraded),
            self.l3.as_ref().is_some_and(TierSlot::is_degraded),
        ];
        CacheStatistics::new(
            std::array::from_fn(|i| self.counters[i].snapshot(sizes[i])),
            self.promotions.load(Ordering::Relaxed),
            self.demotions.load(Ordering::Relaxed),
            degraded,
        )
    }

    pub(crate) fn cleanup_expired(&self) -> Result<u64> {
        let now = self.now();
        let mut keys: HashSet<String> = HashSet::new();
        let mut answered = 0;
        if let Some(l1) = &self.l1 {
            answered += 1;
            let removed = l1.remove_expired_at(now);
            self.count(Level::L1, Counter::EvictionsTtl, removed.len() as u64);
            keys.extend(removed);
        }
        for (level, slot) in self.lower() {
            match slot.call(|t| t.remove_expired(now)) {
                Ok(Some(removed)) => {
                    answered += 1;
                    self.count(level, Counter::EvictionsTtl, removed.len() as u64);
                    keys.extend(removed);
                }
                Ok(None) => {}
                Err(e) => log::warn!("{}: expiry sweep failed: {e}", slot.name),
            }
        }
        if answered == 0 {
            return Err(Error::Storage("no enabled tier could be reached".into()));
        }
        Ok(keys.len() as u64)
    }
}

impl Drop for Inner {
    /// Writes L1's changed entries (their access counters) to the lower tiers, so that the next
    /// handle sees them.
    fn drop(&mut self) {
        let Some(l1) = &self.l1 else { return };
        let dirty = l1.take_dirty();
        if dirty.is_empty() {
            return;
        }
        for (_, slot) in self.lower() {
            let keys = dirty.iter().map(|e| e.key.as_str());
            slot.write("saving access counters at close", keys, |t| {
                t.put_batch(&[], &dirty)
            });
        }
    }
}

/// Puts L1's victims where they belong in a batch: a victim whose key the batch stores (evicted
/// by the batch itself, so not yet below) replaces that entry; the others are returned, to be
/// written back as entries the lower tiers already hold.
fn fold_victims_into(batch: &mut [CacheEntry], victims: Vec<CacheEntry>) -> Vec<CacheEntry> {
    if victims.is_empty() {
        return victims;
    }
    // The last position of each key (a warm batch may repeat a key; the last one is in L1).
    let position: FastMap<&str, usize> = batch
        .iter()
        .enumerate()
        .map(|(i, e)| (e.key.as_str(), i))
        .collect();
    let mut placed = Vec::new();
    let mut written_back = Vec::new();
    for victim in victims {
        match position.get(victim.key.as_str()) {
            Some(&i) => placed.push((i, victim)),
            None => written_back.push(victim),
        }
    }
    for (i, victim) in placed {
        batch[i] = victim;
    }
    written_back
}
