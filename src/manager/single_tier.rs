//! Operations on one tier alone: what proxywhirl users reach through a manager's `l1_tier`,
//! `l2_tier` and `l3_tier` (reading what a put stored where, seeding one tier, emptying one to
//! simulate a cold cache).
//!
//! They bypass the manager's policies, on purpose:
//! - no promotion and no write-through: a put stores into that tier only, a delete removes from
//!   it only;
//! - a get is a peek: it counts no read (no `access_count`, no hit or miss, no move in the
//!   eviction order) and returns what the tier stores, expired entries included;
//! - the statistics count only what happens inside the tier: L1 evictions made by a put (and the
//!   write-back of their victims, as after any put), capacity evictions and corrupt records of
//!   L2/L3.
//!
//! They keep the manager's guarantees:
//! - per key, they hold the key's stripe, so they are ordered with every other operation on it;
//! - an L1 victim still awaiting its write-back is written back before any of them touches its
//!   key (before a clear, all of them are), so a view of L2 or L3 shows the counters L1 knew and
//!   `evicted_from_l1`, as upstream's synchronous write-back would have left them. As every
//!   write-back, it records counters on the entry a tier holds and creates none: an entry put
//!   into L1 alone is gone once L1 evicts it;
//! - a lower tier that fails or is degraded behaves as for the other operations: failures count
//!   towards degradation, and a write it missed is journaled and repaired when it recovers.

use super::engine::{Engine, Level};
use super::slot::TierSlot;
use super::{CacheManager, WRITE_BACK_BATCH, check_key};
use crate::entry::{CacheEntry, EntryInput};
use crate::error::{Error, ErrorKind, Result};
use crate::stats::Counter;
use crate::tier::Tier;
use crate::tier::memory::MemoryTier;

/// One tier of a cache.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TierLevel {
    /// Memory.
    L1,
    /// JSONL or SQLite (`l2_backend`).
    L2,
    /// SQLite.
    L3,
}

impl TierLevel {
    /// `"L1"`, `"L2"` or `"L3"`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            TierLevel::L1 => "L1",
            TierLevel::L2 => "L2",
            TierLevel::L3 => "L3",
        }
    }
}

/// A tier as the manager holds it.
enum Held<'a> {
    Memory(&'a MemoryTier),
    Lower(&'a TierSlot),
}

impl CacheManager {
    /// Whether the tier is in use: enabled in the configuration and, for L2 and L3, not degraded.
    pub fn tier_enabled(&self, tier: TierLevel) -> bool {
        match self.engine.held(tier) {
            Ok(Held::Memory(_)) => true,
            Ok(Held::Lower(slot)) => !slot.is_degraded(),
            Err(_) => false,
        }
    }

    /// The entry `tier` stores under `key`, expired or not, without counting a read; `None` when
    /// it stores none.
    ///
    /// Errors: [`Error::Unsupported`] for a tier disabled in the configuration,
    /// [`Error::Storage`] for a degraded tier not yet due for a retry, the tier's own error when
    /// it cannot be read ([`Error::Crypto`] for a credential the key cannot decrypt).
    pub fn tier_get(&self, tier: TierLevel, key: &str) -> Result<Option<CacheEntry>> {
        check_key(key)?;
        let engine = &self.engine;
        let held = engine.held(tier)?;
        let _stripe = engine.locks.lock(key);
        engine.settle_write_back(key);
        match held {
            Held::Memory(l1) => Ok(l1.peek(key)),
            Held::Lower(slot) => slot
                .call(|t| t.get(key))
                .map_err(|e| failed(slot, e))?
                .ok_or_else(|| skipped(slot)),
        }
    }

    /// Stores an entry under `key` in `tier` only (`key` wins over a `key` in the input, and the
    /// defaults are those of [`CacheManager::put`]). An L1 that is full evicts by its policy;
    /// the victims are written back to L2/L3 as after any put.
    ///
    /// Errors: as [`CacheManager::tier_get`], plus [`Error::InvalidArgument`] for an empty key
    /// and the input's own errors ([`Error::InvalidJson`]).
    pub fn tier_put(&self, tier: TierLevel, key: &str, input: EntryInput) -> Result<()> {
        check_key(key)?;
        let engine = &self.engine;
        // What a lower tier misses is journaled when the operation ends (as for the others).
        let _persist = engine.persist_missed_at_end();
        let held = engine.held(tier)?;
        let entry = input.resolve(key, engine.now(), |s| engine.ttl_for_source(s))?;
        let mut stripes = engine.locks.lock(key);
        engine.settle_write_back(key);
        match held {
            Held::Memory(l1) => {
                // Not marked changed: the lower tiers get it only if L1 evicts it, as upstream.
                let victims = l1.insert(entry, false);
                engine.count(Level::L1, Counter::EvictionsLru, victims.len() as u64);
                if l1.awaiting_len() >= WRITE_BACK_BATCH {
                    let taken = engine.take_awaiting(&mut stripes);
                    engine.write_back(taken);
                }
                Ok(())
            }
            Held::Lower(slot) => lower_write(slot, key, |t| t.put(&entry)),
        }
    }

    /// [`CacheManager::tier_put`] with the entry as JSON text.
    pub fn tier_put_json(&self, tier: TierLevel, key: &str, entry_json: &str) -> Result<()> {
        check_key(key)?;
        self.tier_put(tier, key, EntryInput::from_json(entry_json)?)
    }

    /// Removes `key` from `tier` only. [`Error::NotFound`] when the tier did not store it; other
    /// errors as [`CacheManager::tier_get`].
    pub fn tier_delete(&self, tier: TierLevel, key: &str) -> Result<()> {
        check_key(key)?;
        let engine = &self.engine;
        // What a lower tier misses is journaled when the operation ends (as for the others).
        let _persist = engine.persist_missed_at_end();
        let held = engine.held(tier)?;
        let _stripe = engine.locks.lock(key);
        engine.settle_write_back(key);
        let removed = match held {
            Held::Memory(l1) => l1.remove(key).is_some(),
            Held::Lower(slot) => lower_write(slot, key, |t| t.delete(key))?,
        };
        if removed {
            Ok(())
        } else {
            Err(Error::NotFound(format!(
                "{} holds no entry under key {key:?}",
                tier.name()
            )))
        }
    }

    /// How many entries `tier` stores (expired ones not yet swept included). Errors as
    /// [`CacheManager::tier_get`].
    pub fn tier_len(&self, tier: TierLevel) -> Result<u64> {
        match self.engine.held(tier)? {
            Held::Memory(l1) => Ok(l1.size() as u64),
            Held::Lower(slot) => slot
                .call(|t| t.len())
                .map_err(|e| failed(slot, e))?
                .ok_or_else(|| skipped(slot)),
        }
    }

    /// Removes every entry from `tier` only; returns how many it stored. The statistics counters
    /// are kept. Errors as [`CacheManager::tier_get`].
    pub fn tier_clear(&self, tier: TierLevel) -> Result<u64> {
        let engine = &self.engine;
        // What a lower tier misses is journaled when the operation ends (as for the others).
        let _persist = engine.persist_missed_at_end();
        let held = engine.held(tier)?;
        let mut stripes = engine.locks.lock_all();
        // Every victim awaiting its write-back: with every stripe held, all of them are taken.
        let taken = engine.take_awaiting(&mut stripes);
        engine.write_back(taken);
        match held {
            Held::Memory(l1) => Ok(l1.remove_all().len() as u64),
            Held::Lower(slot) => match slot.call(|t| t.clear()) {
                Ok(Some(removed)) => Ok(removed.len() as u64),
                Ok(None) => {
                    slot.missed_clear();
                    Err(skipped(slot))
                }
                Err(e) => {
                    slot.missed_clear();
                    Err(failed(slot, e))
                }
            },
        }
    }
}

impl Engine {
    /// The tier `tier` names, or [`Error::Unsupported`] when the configuration disables it.
    fn held(&self, tier: TierLevel) -> Result<Held<'_>> {
        let held = match tier {
            TierLevel::L1 => self.l1.as_deref().map(Held::Memory),
            TierLevel::L2 => self.lower_slot(Level::L2).map(Held::Lower),
            TierLevel::L3 => self.lower_slot(Level::L3).map(Held::Lower),
        };
        held.ok_or_else(|| {
            Error::Unsupported(format!("{} is disabled in the configuration", tier.name()))
        })
    }

    /// The persistent tier at `level`, if the configuration enables it.
    fn lower_slot(&self, level: Level) -> Option<&TierSlot> {
        self.lower()
            .find(|(l, _)| *l == level)
            .map(|(_, slot)| slot)
    }

    /// Writes `key`'s L1 victim back to L2/L3 if it still awaits that (the caller holds the
    /// key's stripe).
    fn settle_write_back(&self, key: &str) {
        if let Some(l1) = &self.l1
            && let Some(evicted) = l1.take_evicted(key)
        {
            self.write_back(vec![evicted]);
        }
    }
}

/// Runs a write on a lower tier for `key`. A tier that is skipped or fails remembers the key as
/// missed, to be repaired when it recovers (as for the manager's own writes).
fn lower_write<T>(
    slot: &TierSlot,
    key: &str,
    op: impl FnOnce(&dyn Tier) -> Result<T>,
) -> Result<T> {
    match slot.call(op) {
        Ok(Some(value)) => Ok(value),
        Ok(None) => {
            slot.missed_keys(std::iter::once(key));
            Err(skipped(slot))
        }
        Err(e) => {
            slot.missed_keys(std::iter::once(key));
            Err(failed(slot, e))
        }
    }
}

/// The error of an operation on a degraded tier that is not yet due for a retry.
/// The error of a tier that failed: a storage error naming the tier, whatever the tier's own
/// kind (a JSONL tier fails with I/O errors), as the header promises for the single-tier
/// functions; a credential the key cannot decrypt stays a crypto error.
fn failed(slot: &TierSlot, e: Error) -> Error {
    match e.kind() {
        ErrorKind::Crypto => e,
        _ => Error::Storage(format!("{}: {e}", slot.name)),
    }
}

fn skipped(slot: &TierSlot) -> Error {
    Error::Storage(format!(
        "{} is degraded after repeated failures; it is retried later",
        slot.name
    ))
}
