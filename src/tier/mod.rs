//! The storage tiers, behind one trait.
//!
//! - [`memory`]: L1, a bounded in-memory map ordered by the eviction policy ([`order`]).
//! - [`jsonl`]: L2 as append-only JSON Lines with tombstones and compaction.
//! - [`sqlite`]: L2 (`l2_cache`) and L3 (`cache_entries`) in SQLite, upstream's schemas.
//! - [`redis`]: the shared tier of a fleet, in one namespace of a Redis server.
//!
//! L1 is the manager's own data structure; the [`Tier`] trait is for the persistent tiers only.
//! A tier stores whole [`CacheEntry`] values; it knows nothing of the other tiers, of promotion or
//! of expiry on read (the manager decides those). A tier counts what only it can see, capacity
//! evictions and corrupt records, in the [`TierCounters`] it was opened with. Corrupt records are
//! dropped and read as misses; they never fail the call.

use std::sync::Arc;

use crate::config::{Durability, EvictionPolicy};
use crate::crypto::Crypto;
use crate::entry::CacheEntry;
use crate::error::{Error, Result};
use crate::stats::TierCounters;
use crate::time::Timestamp;

pub mod jsonl;
pub mod memory;
pub(crate) mod order;
pub mod redis;
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

/// What tells one stored version of an entry from another: every put stores a new one. Two
/// puts of a key at the same microsecond with the same URL and expiry are taken for one version
/// (they can differ only in credentials and health fields, which a usage record does not touch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub fetch_time: Timestamp,
    pub expires_at: Timestamp,
    pub proxy_url: String,
}

impl Version {
    pub fn of(entry: &CacheEntry) -> Version {
        Version {
            fetch_time: entry.fetch_time,
            expires_at: entry.expires_at,
            proxy_url: entry.proxy_url.clone(),
        }
    }

    /// Whether `entry` is this version.
    pub fn matches(&self, entry: &CacheEntry) -> bool {
        entry.fetch_time == self.fetch_time
            && entry.expires_at == self.expires_at
            && entry.proxy_url == self.proxy_url
    }
}

/// What reading an entry from memory changed on it: its use counters, and whether it has left
/// the memory tier. A tier records them only on the entry it holds under `key` if that is the
/// same [`Version`] (not a newer write of the key), and never creates an entry for them.
#[derive(Clone, Debug, PartialEq)]
pub struct Usage {
    pub key: String,
    pub version: Version,
    pub access_count: i64,
    pub last_accessed: Timestamp,
    pub evicted_from_l1: bool,
}

impl Usage {
    /// The counters of `entry`.
    pub fn of(entry: &CacheEntry) -> Usage {
        Usage {
            key: entry.key.clone(),
            version: Version::of(entry),
            access_count: entry.access_count,
            last_accessed: entry.last_accessed,
            evicted_from_l1: entry.evicted_from_l1,
        }
    }
}

/// The entry a failed health check was recorded on, as it is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failures {
    pub failure_count: i64,
    pub expires_at: Timestamp,
}

/// What [`Tier::put_if_absent_while_current`] did with a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyOutcome {
    /// Stored: the key held nothing and the entry was still current.
    Stored,
    /// Not stored: the key holds an entry already (a writer's, which the copy must not replace).
    Occupied,
    /// Not stored (or taken back): the tier it came from no longer holds it.
    NoLongerCurrent,
}

/// A persistent tier: storage of whole entries by key, shared by every handle and process that
/// opens the same files (or, for a network tier, the same server and namespace). It knows
/// nothing of the memory tier or of the other tiers: it stores, loads, records usage and
/// health, and removes. Every method may be called from many threads at once, and each one is
/// atomic with respect to other handles and processes on the same storage (one transaction, or
/// one append under the shard's lock).
///
/// The conditional operations (`put_if_absent`, `put_if_absent_while_current`, `record_usage`,
/// `record_failure`, `delete_if_version`) exist so that a stale copy held elsewhere can never overwrite a newer
/// entry or bring back a deleted one: only `put_many` writes an entry whole.
///
/// `put_many_around` and `delete_around` let a caller write another store of the same keys (the
/// tier below) while this tier holds their write lock, so that one key's writes happen in the
/// same order in both stores; the trait knows nothing of what that other store is.
// `len` is fallible (it may read the disk); an `is_empty` would add nothing but a second query.
#[allow(clippy::len_without_is_empty)]
pub trait Tier: Send + Sync {
    /// The entry stored under `key`, expired or not. A corrupt record is dropped, counted in
    /// `evictions_corruption` and reads as `None`. A credential that cannot be decrypted (wrong
    /// key) is an [`crate::Error::Crypto`] and the record is kept.
    fn get(&self, key: &str) -> Result<Option<CacheEntry>>;

    /// Stores every entry whole, replacing what its key held, as one batch (one transaction
    /// where the tier has them). When `max_entries` is exceeded, entries are evicted by the
    /// policy and counted in `evictions_lru`.
    fn put_many(&self, entries: &[CacheEntry]) -> Result<()>;

    fn put(&self, entry: &CacheEntry) -> Result<()> {
        self.put_many(std::slice::from_ref(entry))
    }

    /// [`Tier::put_many`], with `below` run once while this tier holds the write lock of every
    /// key of `entries` (the shards' locks, the database's write transaction), before this
    /// tier's own change; the lock is released only after that change. Whoever writes another
    /// store of the same keys inside `below` (for instance another tier of a cache) thus
    /// makes one step of the two, for every handle and process that takes this tier's lock:
    /// no other write of these keys here, and no [`Tier::put_if_absent_while_current`] of
    /// them, runs between `below` and this tier's change. `below` is not run when the call
    /// fails before it takes the lock: a caller that must write the other store all the same
    /// runs it itself then.
    ///
    /// The default runs `below`, then `put_many`: a tier without a lock that can span another
    /// store (a network tier) gives no such guarantee.
    fn put_many_around(&self, entries: &[CacheEntry], below: &mut dyn FnMut()) -> Result<()> {
        below();
        self.put_many(entries)
    }

    /// Removes `keys` (as [`Tier::delete`] does, one by one), with `below` run once while this
    /// tier holds the write lock of every key, before the removal: the counterpart
    /// of [`Tier::put_many_around`] for removals. Returns how many of `keys` were stored.
    ///
    /// The default runs `below`, then `delete` key by key.
    fn delete_around(&self, keys: &[&str], below: &mut dyn FnMut()) -> Result<u64> {
        below();
        let mut removed = 0;
        for key in keys {
            removed += u64::from(self.delete(key)?);
        }
        Ok(removed)
    }

    /// Stores `entry` unless its key holds an entry already; `true` when stored. (A copy read
    /// from another tier never replaces what a writer stored here meanwhile.)
    fn put_if_absent(&self, entry: &CacheEntry) -> Result<bool>;

    /// Copies `entry` from another tier: stores it only if its key holds nothing here and
    /// `still_current()`, asked at that moment, says the tier it came from still holds it.
    ///
    /// A local tier asks while it holds its write lock for the key (the shard's lock, the
    /// database's write transaction), so a removal elsewhere that runs from the bottom up either
    /// removed the entry below before the question (it is not stored) or waits for this lock and
    /// removes the copy before it returns. No other handle or process ever sees the copy after
    /// such a removal has returned. The default stores first, then asks, and takes the copy back
    /// with [`Tier::delete_if_version`]: a tier without a lock that can span the question (a
    /// network tier) keeps deleted keys out with tombstones instead.
    fn put_if_absent_while_current(
        &self,
        entry: &CacheEntry,
        still_current: &mut dyn FnMut() -> bool,
    ) -> Result<CopyOutcome> {
        if !self.put_if_absent(entry)? {
            return Ok(CopyOutcome::Occupied);
        }
        if still_current() {
            return Ok(CopyOutcome::Stored);
        }
        self.delete_if_version(&entry.key, &Version::of(entry))?;
        Ok(CopyOutcome::NoLongerCurrent)
    }

    /// Records each usage on the entry held under its key, when that entry is the usage's
    /// version; returns how many were recorded. Absent keys and other entries are left
    /// alone.
    fn record_usage(&self, usage: &[Usage]) -> Result<u64>;

    /// Adds one failed health check to the entry held under `key`, whatever its fetch time
    /// (`failure_count` + 1, `health_status` unhealthy), in one atomic step, so that reports
    /// from many handles and processes all count; `None` when the key is not stored.
    fn record_failure(&self, key: &str) -> Result<Option<Failures>>;

    /// [`Tier::record_failure`], and the removal of the entry when the count reaches
    /// `threshold` (0 = never); `true` with the count when this call removed it. A shared tier
    /// does both in one atomic step, so that of many processes reporting at once exactly one
    /// evicts, at exactly `threshold` failures; a local tier may do them one after the other.
    fn record_failure_evicting_at(
        &self,
        key: &str,
        threshold: i64,
    ) -> Result<Option<(Failures, bool)>> {
        let Some(failures) = self.record_failure(key)? else {
            return Ok(None);
        };
        let evict = threshold > 0 && failures.failure_count >= threshold;
        Ok(Some((failures, evict && self.delete(key)?)))
    }

    /// Removes `key`; `true` when it was stored.
    fn delete(&self, key: &str) -> Result<bool>;

    /// Removes `key` because this tier missed a change of it while it was skipped (see
    /// `manager/slot.rs`). A local tier deletes it; the shared tier deletes it without leaving a
    /// tombstone, so that the copies the local tiers hold may be promoted again.
    fn forget_missed(&self, key: &str) -> Result<()> {
        self.delete(key).map(|_| ())
    }

    /// Removes `key` only if it holds `version`; `true` when removed.
    fn delete_if_version(&self, key: &str, version: &Version) -> Result<bool>;

    /// Removes everything; returns the keys that were stored.
    fn clear(&self) -> Result<Vec<String>>;

    /// How many entries the tier stores, expired ones not yet swept included.
    fn len(&self) -> Result<u64>;

    /// Removes the entries with `expires_at <= now`; returns their keys.
    fn remove_expired(&self, now: Timestamp) -> Result<Vec<String>>;

    /// Calls `visit` with every stored entry, without changing anything (no access counts, no
    /// statistics, nothing dropped). A record that cannot be decoded (corrupt, or a credential the
    /// key cannot decrypt) is passed as an `Err` with its key, so that an export counts each
    /// unreadable entry once however many tiers hold it.
    fn scan(&self, visit: &mut dyn FnMut(Scanned)) -> Result<()>;
}

/// One record seen by [`Tier::scan`].
pub type Scanned = std::result::Result<CacheEntry, Unreadable>;

/// A stored record that [`Tier::scan`] could not decode: its key, when that much was readable,
/// and why. It dereferences to the error, so `e.kind()` reads as on an [`Error`].
#[derive(Debug)]
pub struct Unreadable {
    pub key: Option<String>,
    pub error: Error,
}

impl Unreadable {
    pub fn new(key: Option<String>, error: Error) -> Unreadable {
        Unreadable { key, error }
    }
}

impl std::ops::Deref for Unreadable {
    type Target = Error;
    fn deref(&self) -> &Error {
        &self.error
    }
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}
