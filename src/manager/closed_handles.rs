//! The counters of closed handles, kept beside the cache so that statistics mean something
//! across processes: a handle's hits, misses, evictions, promotions and demotions live in its
//! memory, and each command-line call or scraper run is a process of its own. When a handle
//! closes (its engine drops) it adds its counters to `pwcache_stats.json` in `l2_cache_dir`
//! (where the key file `pwcache.key` lives too), under an exclusive `flock` on
//! `pwcache_stats.lock` beside it; the file is replaced whole (temp file + rename), so a reader
//! never sees half of it. A handle that counted nothing (with `enable_statistics` off, or one
//! that only looked at the statistics) writes nothing.
//!
//! Totals run from `since` (the first handle that wrote) until the file is reset
//! ([`super::CacheManager::reset_closed_handle_statistics`]): "a day of scraping" is the totals
//! read at the end of the day after a reset in the morning.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Engine;
use super::engine::Level;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::stats::{Counter, TierCounters};

/// The file's name in `l2_cache_dir`.
pub const FILE_NAME: &str = "pwcache_stats.json";
const LOCK_NAME: &str = "pwcache_stats.lock";

/// One tier's counters, summed over closed handles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TierTotals {
    pub hits: u64,
    pub misses: u64,
    pub evictions_lru: u64,
    pub evictions_ttl: u64,
    pub evictions_health: u64,
    pub evictions_corruption: u64,
}

impl TierTotals {
    fn of(counters: &TierCounters) -> TierTotals {
        TierTotals {
            hits: counters.get(Counter::Hits),
            misses: counters.get(Counter::Misses),
            evictions_lru: counters.get(Counter::EvictionsLru),
            evictions_ttl: counters.get(Counter::EvictionsTtl),
            evictions_health: counters.get(Counter::EvictionsHealth),
            evictions_corruption: counters.get(Counter::EvictionsCorruption),
        }
    }

    fn add(&mut self, other: &TierTotals) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.evictions_lru += other.evictions_lru;
        self.evictions_ttl += other.evictions_ttl;
        self.evictions_health += other.evictions_health;
        self.evictions_corruption += other.evictions_corruption;
    }

    fn is_zero(&self) -> bool {
        *self == TierTotals::default()
    }

    /// `hits / (hits + misses)`, 0 when nothing was asked.
    pub fn hit_rate(&self) -> f64 {
        let asked = self.hits + self.misses;
        if asked == 0 {
            0.0
        } else {
            self.hits as f64 / asked as f64
        }
    }
}

/// The counters of every handle that closed since `since`, added up.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClosedHandleStatistics {
    /// When the first of these handles closed (Unix seconds).
    pub since: f64,
    /// When the last one closed (Unix seconds).
    pub updated: f64,
    /// How many handles added their counters.
    pub handles: u64,
    pub l1: TierTotals,
    pub l2: TierTotals,
    pub l3: TierTotals,
    pub shared: TierTotals,
    pub promotions: u64,
    pub demotions: u64,
}

impl ClosedHandleStatistics {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("totals serialise")
    }

    /// Requests answered by some tier over all requests: `Σhits / (Σhits + max(misses))`, the
    /// arithmetic of [`crate::CacheStatistics::overall_hit_rate`].
    pub fn overall_hit_rate(&self) -> f64 {
        let tiers = [&self.l1, &self.l2, &self.l3, &self.shared];
        let hits: u64 = tiers.iter().map(|t| t.hits).sum();
        let misses = tiers.iter().map(|t| t.misses).max().unwrap_or(0);
        if hits + misses == 0 {
            0.0
        } else {
            hits as f64 / (hits + misses) as f64
        }
    }
}

/// The totals file of the cache whose L2 directory is `dir`, and its lock.
pub struct TotalsFile {
    path: PathBuf,
    lock: PathBuf,
}

/// An exclusive `flock` on the lock file, released when dropped.
struct Locked(File);

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl TotalsFile {
    pub fn in_dir(dir: &Path) -> TotalsFile {
        TotalsFile {
            path: dir.join(FILE_NAME),
            lock: dir.join(LOCK_NAME),
        }
    }

    fn locked(&self) -> Result<Locked> {
        fsutil::create_parent_dirs(&self.lock)?;
        let file = fsutil::open_private_append(&self.lock)?;
        file.lock()
            .map_err(|e| Error::io("cannot lock", &self.lock, e))?;
        Ok(Locked(file))
    }

    fn read_unlocked(&self) -> Result<Option<ClosedHandleStatistics>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::Storage(format!(
                    "{} is damaged ({e}); remove it to start the totals again",
                    self.path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("cannot read", &self.path, e)),
        }
    }

    /// The totals, `None` before any handle has written them.
    pub fn read(&self) -> Result<Option<ClosedHandleStatistics>> {
        if !self.path.exists() {
            // Nothing to read: do not create the lock file (or its directory) for nothing.
            return Ok(None);
        }
        let _locked = self.locked()?;
        self.read_unlocked()
    }

    /// Adds one handle's counters; `now` in Unix seconds.
    pub fn add(&self, handle: &ClosedHandleStatistics, now: f64, durable: bool) -> Result<()> {
        let _locked = self.locked()?;
        // A damaged file starts the totals again rather than losing every later handle's.
        let mut totals = self.read_unlocked().ok().flatten().unwrap_or_default();
        if totals.handles == 0 {
            totals.since = now;
        }
        totals.updated = now;
        totals.handles += 1;
        totals.l1.add(&handle.l1);
        totals.l2.add(&handle.l2);
        totals.l3.add(&handle.l3);
        totals.shared.add(&handle.shared);
        totals.promotions += handle.promotions;
        totals.demotions += handle.demotions;
        fsutil::write_atomically(&self.path, totals.to_json().as_bytes(), durable)
    }

    /// Removes the totals: the next handle to close starts them again.
    pub fn reset(&self) -> Result<()> {
        let _locked = self.locked()?;
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("cannot remove", &self.path, e)),
        }
    }
}

impl Engine {
    /// The totals file of this cache.
    pub(super) fn totals_file(&self) -> TotalsFile {
        TotalsFile::in_dir(&self.config.l2_cache_dir)
    }

    /// This handle's counters, as the totals of one handle.
    fn own_counters(&self) -> ClosedHandleStatistics {
        use std::sync::atomic::Ordering::Relaxed;
        let tier = |level: Level| TierTotals::of(&self.counters[level as usize]);
        ClosedHandleStatistics {
            since: 0.0,
            updated: 0.0,
            handles: 1,
            l1: tier(Level::L1),
            l2: tier(Level::L2),
            l3: tier(Level::L3),
            shared: tier(Level::Shared),
            promotions: self.promotions.load(Relaxed),
            demotions: self.demotions.load(Relaxed),
        }
    }

    /// Adds this handle's counters to the totals file when it counted anything (called as the
    /// engine drops). A failure is logged, never raised: closing a cache must not fail.
    pub(super) fn add_counters_to_totals(&self) {
        let own = self.own_counters();
        let counted = [&own.l1, &own.l2, &own.l3, &own.shared]
            .iter()
            .any(|t| !t.is_zero())
            || own.promotions > 0
            || own.demotions > 0;
        if !counted {
            return;
        }
        let durable = self.config.durability == crate::config::Durability::Full;
        let now = self.now().as_epoch_seconds();
        if let Err(e) = self.totals_file().add(&own, now, durable) {
            log::warn!("the statistics of this handle were not added to the totals: {e}");
        }
    }
}
