//! The engine: L1 and the persistent tiers, and the order of every operation across them.
//!
//! [`Engine`] is the state a [`super::CacheManager`] wraps, shared with its sweeper. It decides
//! promotion, expiry on read, health invalidation and write-back; the tiers only store. The
//! data flow of each operation and the invariants it keeps (lock order, expiry boundary, the
//! bottom-up order of removals, what a write-back may touch) are in docs/architecture.md.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{CacheConfig, L2Backend, TierConfig};
use crate::crypto::Crypto;
use crate::entry::CacheEntry;
use crate::error::{Error, ErrorKind, Result};
use crate::stats::{Counter, TierCounters};
use crate::tier::jsonl::JsonlTier;
use crate::tier::memory::{MemoryTier, Read};
use crate::tier::redis::RedisTier;
use crate::tier::sqlite::{Schema, SqliteTier};
use crate::tier::{CopyOutcome, Tier, TierContext, Usage, Version};
use crate::time::{Clock, Timestamp};

use super::coherence::Coherence;
use super::fleet::SharedCopy;
use super::locks::{HeldStripes, KeyLocks};
use super::missed::MissedJournal;
use super::put_group::PutGroup;
use super::slot::TierSlot;
use super::write_back::WRITE_BACK_BATCH;

/// The shared state of a cache: kept alive by its handle and by any sweeper on it.
pub(crate) struct Engine {
    pub(super) config: CacheConfig,
    clock: Arc<dyn Clock>,
    pub(super) l1: Option<Arc<MemoryTier>>,
    l2: Option<TierSlot>,
    l3: Option<TierSlot>,
    /// The fleet's shared tier, between L1 and L2 (`shared_config`).
    shared: Option<TierSlot>,
    /// Drops from L1 what other handles of the fleet change (with the shared tier only).
    coherence: Option<Coherence>,
    pub(super) counters: [Arc<TierCounters>; 4],
    pub(super) promotions: AtomicU64,
    pub(super) demotions: AtomicU64,
    pub(super) locks: KeyLocks,
    /// Single puts from several threads, stored as one batch: with the SQLite L2 backend only
    /// (see [`Engine::put`]).
    puts: Option<PutGroup>,
}

/// A tier by its place.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Level {
    L1 = 0,
    L2 = 1,
    L3 = 2,
    Shared = 3,
}

/// Runs `op` on one persistent tier. `Ok(Some(answer))` when it answered; `Ok(None)` when it is
/// skipped (degraded) or failed: a failure is logged here, `what` naming the operation, and
/// counted by the slot towards degradation. `Err` only for a credential the key cannot decrypt,
/// which is the caller's answer, not a failure of the tier.
pub(super) fn ask<T>(
    slot: &TierSlot,
    what: &str,
    op: impl FnOnce(&dyn Tier) -> Result<T>,
) -> Result<Option<T>> {
    match slot.call(op) {
        Ok(answer) => Ok(answer),
        Err(e) if e.kind() == ErrorKind::Crypto => Err(e),
        Err(e) => {
            log::warn!("{}: {what} failed: {e}", slot.name);
            Ok(None)
        }
    }
}

/// The error of an operation that no enabled tier answered.
pub(super) fn no_tier_answered() -> Error {
    Error::Storage("no enabled tier could be reached".into())
}

/// A tier opener for the slot, which re-opens a degraded tier on every retry.
type Opener = Box<dyn Fn() -> Result<Arc<dyn Tier>> + Send + Sync>;

/// Appends what the lower tiers missed during an operation to their journals when dropped, at
/// the end of the operation (see `missed`).
pub(super) struct PersistMissed<'a>(&'a Engine);

impl Drop for PersistMissed<'_> {
    fn drop(&mut self) {
        for (_, slot) in self.0.lower() {
            slot.persist_missed();
        }
    }
}

impl Engine {
    /// The guard to take first in an operation that may write to the lower tiers.
    pub(super) fn persist_missed_at_end(&self) -> PersistMissed<'_> {
        PersistMissed(self)
    }

    /// Opens the tiers the configuration enables (see [`super::CacheManager::open`]).
    pub(super) fn open(config: CacheConfig, clock: Arc<dyn Clock>) -> Result<Engine> {
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
        let counters: [Arc<TierCounters>; 4] =
            std::array::from_fn(|_| Arc::new(TierCounters::new(config.enable_statistics)));
        let context = |tier: &TierConfig, counters: &Arc<TierCounters>| TierContext {
            max_entries: tier.max_entries,
            eviction_policy: tier.eviction_policy,
            durability: config.durability,
            crypto: crypto.clone(),
            counters: counters.clone(),
        };
        let l1 = config.l1.enabled.then(|| {
            Arc::new(MemoryTier::new(
                config.l1.max_entries,
                config.l1.eviction_policy,
            ))
        });
        // What one persistent tier misses is journaled beside the other (see `missed`).
        let both = config.l2.enabled && config.l3.enabled;
        let l3_dir = config
            .l3_database_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let journal = |beside: &Path, name: &str| both.then(|| MissedJournal::in_dir(beside, name));
        let l2 = config.l2.enabled.then(|| {
            let ctx = context(&config.l2, &counters[1]);
            let dir = config.l2_cache_dir.clone();
            let opener: Opener = match config.l2_backend {
                L2Backend::Jsonl => Box::new(move || {
                    Ok(Arc::new(JsonlTier::open(&dir, ctx.clone())?) as Arc<dyn Tier>)
                }),
                L2Backend::Sqlite => Box::new(move || {
                    let path = dir.join("l2_cache.db");
                    Ok(Arc::new(SqliteTier::open(&path, Schema::L2, ctx.clone())?)
                        as Arc<dyn Tier>)
                }),
            };
            TierSlot::open("L2", opener, clock.clone(), journal(&l3_dir, "L2"))
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
                journal(&config.l2_cache_dir, "L3"),
            )
        });
        let (shared, coherence) = if config.shared.enabled {
            if matches!(crypto.source(), crate::crypto::KeySource::KeyFile(_)) {
                return Err(Error::Crypto(
                    "shared_config.enabled needs encryption_key (or PROXYWHIRL_CACHE_ENCRYPTION_KEY): \
                     every process of the fleet must encrypt credentials with the same key"
                        .into(),
                ));
            }
            let origin = new_origin();
            let ctx = TierContext {
                max_entries: config.shared.max_entries,
                eviction_policy: config.shared.eviction_policy,
                durability: config.durability,
                crypto: crypto.clone(),
                counters: counters[Level::Shared as usize].clone(),
            };
            let settings = config.shared.clone();
            let tier_origin = origin.clone();
            let slot = TierSlot::open(
                "shared",
                Box::new(move || {
                    Ok(
                        Arc::new(RedisTier::open(&settings, ctx.clone(), &tier_origin)?)
                            as Arc<dyn Tier>,
                    )
                }),
                clock.clone(),
                // No journal on disk: what the shared tier missed while this handle could not
                // reach it stays in this handle's memory and is repaired when it recovers.
                None,
            )
            .with_after_repair({
                let l1 = l1.clone();
                Box::new(move |keys: &[String], everything: bool| {
                    if let Some(l1) = &l1 {
                        if everything {
                            l1.remove_all();
                        } else {
                            for key in keys {
                                l1.remove(key);
                            }
                        }
                    }
                })
            });
            let coherence = Coherence::start(&config.shared, &origin, l1.clone())?;
            (Some(slot), Some(coherence))
        } else {
            (None, None)
        };
        let group_puts = l2.is_some() && config.l2_backend == L2Backend::Sqlite;
        Ok(Engine {
            config,
            clock,
            l1,
            l2,
            l3,
            shared,
            coherence,
            counters,
            promotions: AtomicU64::new(0),
            demotions: AtomicU64::new(0),
            locks: KeyLocks::new(),
            puts: group_puts.then(PutGroup::default),
        })
    }

    /// Stores one entry through every tier: with the SQLite L2 backend, in one batch with the
    /// puts other threads make meanwhile ([`PutGroup`]); otherwise alone.
    ///
    /// The SQLite L2 writer takes every put in turn, for as long as L3's commit inside it lasts,
    /// so batches are what lets more threads store more (8 threads: 1.2× one thread with groups,
    /// 0.9× without). JSONL L2 shards take puts of different shards side by side and L3 already
    /// shares its commits between threads (group commit in the tier); there, a group stored by
    /// one thread ran on one core what the threads had run on two (8 threads: 0.87× with groups,
    /// 1.02× without; `cargo bench --bench speed -- threads`).
    pub(super) fn put(&self, entry: CacheEntry) -> Result<()> {
        match &self.puts {
            Some(group) => group.put(entry, &|entries| self.store(entries)),
            None => self.store(vec![entry]),
        }
    }

    pub(super) fn count(&self, level: Level, counter: Counter, n: u64) {
        self.counters[level as usize].add(counter, n);
    }

    pub(super) fn bump(&self, cell: &AtomicU64, n: u64) {
        if self.config.enable_statistics && n > 0 {
            cell.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The tiers below L1, top down: the shared tier, L2, L3.
    pub(super) fn lower(&self) -> impl Iterator<Item = (Level, &TierSlot)> {
        [
            (Level::Shared, &self.shared),
            (Level::L2, &self.l2),
            (Level::L3, &self.l3),
        ]
        .into_iter()
        .filter_map(|(level, slot)| slot.as_ref().map(|s| (level, s)))
    }

    /// The lower tiers from the bottom up: the order of every removal. A promotion from L3
    /// into L2 that races with a removal is then always undone (see [`Engine::promote`]).
    pub(super) fn lower_bottom_up(&self) -> impl Iterator<Item = (Level, &TierSlot)> {
        [
            (Level::L3, &self.l3),
            (Level::L2, &self.l2),
            (Level::Shared, &self.shared),
        ]
        .into_iter()
        .filter_map(|(level, slot)| slot.as_ref().map(|s| (level, s)))
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(super) fn shared_slot(&self) -> Option<&TierSlot> {
        self.shared.as_ref()
    }

    /// The slot of a tier below L1.
    pub(super) fn slot(&self, level: Level) -> Option<&TierSlot> {
        match level {
            Level::L1 => None,
            Level::L2 => self.l2.as_ref(),
            Level::L3 => self.l3.as_ref(),
            Level::Shared => self.shared.as_ref(),
        }
    }

    /// L1 when it may serve reads: always, but with a shared tier only while the handle hears
    /// the fleet's notices (`coherence.rs`).
    fn l1_for_reads(&self) -> Option<&MemoryTier> {
        self.l1.as_deref().filter(|_| self.l1_trusted())
    }

    /// Whether L1 follows the fleet (see [`Engine::l1_for_reads`]).
    pub(super) fn l1_trusted(&self) -> bool {
        self.coherence.as_ref().is_none_or(Coherence::l1_trusted)
    }

    // ---- get ----------------------------------------------------------------------------

    pub(super) fn get(&self, key: &str) -> Result<Option<CacheEntry>> {
        let now = self.now();
        let mut expired_in_l1 = false;
        // A hit counts; an expired entry is remembered, removed once the stripe is held.
        let mut read_l1 = |l1: &MemoryTier| match l1.read(key, now) {
            Read::Hit(entry) => {
                self.count(Level::L1, Counter::Hits, 1);
                Some(entry)
            }
            Read::Expired => {
                expired_in_l1 = true;
                None
            }
            Read::Miss => None,
        };
        if let Some(l1) = self.l1_for_reads()
            && let Some(entry) = read_l1(l1)
        {
            return Ok(Some(entry));
        }
        // Not before the L1 hit above, which writes nothing below: the hit stays two lookups.
        let _persist = self.persist_missed_at_end();
        let mut held = self.locks.lock(key);
        let generation = self.coherence.as_ref().map(|c| c.generation(key));
        if let Some(l1) = self.l1_for_reads() {
            // Another thread may have stored or promoted the key while we waited for the stripe.
            if let Some(entry) = read_l1(l1) {
                return Ok(Some(entry));
            }
            if !expired_in_l1 {
                self.count(Level::L1, Counter::Misses, 1);
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
        // A miss is a miss only when a tier that could hold the entry answered: L1 is only a
        // cache of the persistent tiers (unless it is the only tier), so with every one of
        // them failing or skipped the read is a storage error, not an absent key.
        let mut answered = self.l1.is_some() && self.lower().next().is_none();
        let mut undecryptable = None;
        let mut found: Option<(Level, CacheEntry)> = None;
        for (level, slot) in self.lower() {
            match ask(slot, "read", |t| t.get(key)) {
                Ok(Some(Some(entry))) => {
                    found = Some((level, entry));
                    break;
                }
                Ok(Some(None)) => {
                    answered = true;
                    self.count(level, Counter::Misses, 1);
                }
                Ok(None) => {}
                Err(e) => {
                    answered = true;
                    undecryptable.get_or_insert(e);
                }
            }
        }
        let Some((mut level, mut entry)) = found else {
            // An entry stored under another encryption key is there, not missing.
            return match (undecryptable, answered) {
                (Some(e), _) => Err(e),
                (None, true) => Ok(None),
                (None, false) => Err(no_tier_answered()),
            };
        };
        if entry.is_expired(now) {
            self.expire_everywhere(key, level);
            return Ok(None);
        }
        self.count(level, Counter::Hits, 1);
        entry.touch(now);
        match self.copy_into_shared(&entry, level) {
            SharedCopy::Kept => {}
            SharedCopy::LostRace => return Ok(Some(entry)),
            SharedCopy::Replaced(mut current) => {
                current.touch(now);
                (level, entry) = (Level::Shared, *current);
            }
            SharedCopy::Deleted => return Ok(None),
        }
        self.promote(&entry, level, &mut held);
        // A notice about the key may have been handled while it was read below: then the
        // copy just put into L1 may be stale (`coherence.rs`).
        if let (Some(coherence), Some(generation), Some(l1)) =
            (&self.coherence, generation, &self.l1)
            && !coherence.unchanged_since(key, generation)
        {
            l1.remove(key);
        }
        Ok(Some(entry))
    }

    /// Copies an entry found in `from` into the tiers above it; writes back the waiting L1
    /// victims when a batch of them waits.
    ///
    /// Into L2 only if L2 holds nothing under the key (a writer may have stored a newer entry
    /// since L3 was read), and only while L3 still holds the same entry, asked under L2's write
    /// lock (`Tier::put_if_absent_while_current`): a removal runs from the bottom up, so one that
    /// raced with this copy has either left L3 by the time of the question, or waits for L2's
    /// lock and removes the copy before it returns. A copy that lost such a race stays out of
    /// L1 too.
    pub(super) fn promote(&self, entry: &CacheEntry, from: Level, held: &mut HeldStripes<'_>) {
        if from == Level::L3
            && let (Some(l2), Some(l3)) = (&self.l2, &self.l3)
        {
            let key = entry.key.as_str();
            let version = Version::of(entry);
            let mut still_below = || {
                matches!(
                    l3.call(|t| t.get(key)),
                    Ok(Some(Some(current))) if version.matches(&current)
                )
            };
            match l2.write("promotion", std::iter::once(key), |t| {
                t.put_if_absent_while_current(entry, &mut still_below)
            }) {
                Some(CopyOutcome::Stored) => self.bump(&self.promotions, 1),
                Some(CopyOutcome::NoLongerCurrent) => return,
                Some(CopyOutcome::Occupied) | None => {}
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
                if let Some(slot) = self.slot(from) {
                    self.record_usage(slot, &[Usage::of(entry)]);
                }
            }
        }
    }

    /// Removes an expired key from every tier, counting `evictions_ttl` where it was found.
    pub(super) fn expire_everywhere(&self, key: &str, found_in: Level) {
        self.count(found_in, Counter::EvictionsTtl, 1);
        if let Some(l1) = &self.l1 {
            l1.remove(key);
        }
        self.delete_below(std::slice::from_ref(&key));
    }

    /// Deletes keys from L3 and L2 (one step, see [`Engine::write_l2_l3`]), then from the shared
    /// tier; returns how many each level held. A tier that is skipped or fails has the keys
    /// remembered as missed.
    pub(super) fn delete_below(&self, keys: &[&str]) -> [u64; 4] {
        let mut removed = [0u64; 4];
        // `delete_around` with nothing below: every key, in one transaction where the tier has
        // them.
        let delete_each = |t: &dyn Tier| t.delete_around(keys, &mut || {});
        let local = self.write_l2_l3(
            "delete",
            |t, below| t.delete_around(keys, below),
            delete_each,
        );
        for (level, slot, deleted) in local {
            match deleted {
                Some(n) => removed[level as usize] += n,
                None => slot.missed_keys(keys.iter().copied()),
            }
        }
        if let Some(shared) = &self.shared {
            let deleted = shared.write("delete", keys.iter().copied(), delete_each);
            removed[Level::Shared as usize] += deleted.unwrap_or(0);
        }
        removed
    }

    /// Writes one change of some keys into L3 and L2 as one step: with both enabled, L3's write
    /// (`l3_op`) runs while L2 holds the write lock of those keys, before L2's own change
    /// (`l2_op`, which gets L3's write as the `below` of [`Tier::put_many_around`] or
    /// [`Tier::delete_around`]). So one key's writes happen in the same order in both tiers, in
    /// every process, and a promotion (which asks L3 under L2's lock) never sees a write of the
    /// key in flight between them. L3 is written exactly once even when L2 is skipped or fails
    /// before it took its lock. With one of the two enabled, that one is written alone.
    ///
    /// Returns each enabled tier, L3 first, with its answer: `None` when it was skipped or failed
    /// (logged, and a failed write degrades the tier: [`TierSlot::write_unrecorded`]); the
    /// caller decides whether the keys count as missed.
    pub(super) fn write_l2_l3<T>(
        &self,
        what: &str,
        l2_op: impl FnOnce(&dyn Tier, &mut dyn FnMut()) -> Result<T>,
        l3_op: impl FnOnce(&dyn Tier) -> Result<T>,
    ) -> Vec<(Level, &TierSlot, Option<T>)> {
        let mut done = Vec::with_capacity(2);
        let mut l3_op = Some(l3_op);
        let mut l3_done = None;
        let mut below = || {
            if let (Some(l3), Some(op)) = (&self.l3, l3_op.take()) {
                l3_done = Some(l3.write_unrecorded(what, op));
            }
        };
        let l2_done = self
            .l2
            .as_ref()
            .map(|l2| (l2, l2.write_unrecorded(what, |t| l2_op(t, &mut below))));
        // L2 skipped, or failed before it took its lock: L3 is written all the same (once).
        below();
        if let (Some(l3), Some(answer)) = (&self.l3, l3_done) {
            done.push((Level::L3, l3, answer));
        }
        if let Some((l2, answer)) = l2_done {
            done.push((Level::L2, l2, answer));
        }
        done
    }

    // ---- delete, clear, health ------------------------------------------------------------

    pub(super) fn delete(&self, key: &str) -> Result<()> {
        let _persist = self.persist_missed_at_end();
        let _held = self.locks.lock(key);
        let mut held_somewhere = false;
        // As for a put: L1 alone answers only when no tier outlives the handle.
        let mut answered = false;
        if let Some(l1) = &self.l1 {
            answered = self.lower().next().is_none();
            let evicted = l1.take_evicted(key).is_some();
            held_somewhere |= l1.remove(key).is_some() || evicted;
        }
        let mut missed_by = Vec::new();
        let mut removed_below = false;
        // From the bottom up: L3 and L2 as one step, then the shared tier.
        let mut removals = self.write_l2_l3(
            "delete",
            |t, below| t.delete_around(&[key], below),
            |t| t.delete(key).map(u64::from),
        );
        if let Some(shared) = &self.shared {
            let removed = shared.write_unrecorded("delete", |t| t.delete(key).map(u64::from));
            removals.push((Level::Shared, shared, removed));
        }
        for (_, slot, removed) in removals {
            match removed {
                Some(n) => {
                    answered = true;
                    removed_below = true;
                    held_somewhere |= n > 0;
                }
                None => missed_by.push(slot),
            }
        }
        // As for a put: a tier missed the removal only if another tier made it.
        if removed_below {
            for slot in missed_by {
                slot.missed_keys(std::iter::once(key));
            }
        }
        match (answered, held_somewhere) {
            (false, _) => Err(no_tier_answered()),
            (true, true) => Ok(()),
            (true, false) => Err(Error::NotFound(format!("no entry under key {key:?}"))),
        }
    }

    /// Removes everything, from the bottom up; returns how many distinct keys were removed. A
    /// tier that is skipped or fails is cleared when it recovers.
    pub(super) fn clear(&self) -> Result<u64> {
        let _persist = self.persist_missed_at_end();
        let _held = self.locks.lock_all();
        let mut keys: HashSet<String> = HashSet::new();
        let mut answered = false;
        if let Some(l1) = &self.l1 {
            answered = true;
            keys.extend(l1.remove_all());
        }
        for (_, slot) in self.lower_bottom_up() {
            match ask(slot, "clear", |t| t.clear()) {
                Ok(Some(removed)) => {
                    answered = true;
                    keys.extend(removed);
                }
                Ok(None) | Err(_) => slot.missed_clear(),
            }
        }
        if !answered {
            return Err(no_tier_answered());
        }
        Ok(keys.len() as u64)
    }

    /// The TTL of entries from `source`, by the configuration.
    pub(super) fn ttl_for_source(&self, source: &str) -> i64 {
        self.config.ttl_for_source(source)
    }
}

/// A name for this handle in the fleet's notices: unique per process and handle, unguessable
/// enough not to collide (process id, time, and a per-process counter through a seeded hash).
fn new_origin() -> String {
    use std::hash::{BuildHasher, Hasher};
    static HANDLES: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(HANDLES.fetch_add(1, Ordering::Relaxed));
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(t.as_nanos());
    }
    format!("{:016x}{:08x}", hasher.finish(), std::process::id())
}
