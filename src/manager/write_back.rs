//! Write-through of stored entries, and the write-back of L1's usage counters.
//!
//! A put writes the entry whole through every tier. Reads then change only the copy in L1 (its
//! `access_count` and `last_accessed`); those counters reach L2/L3 when the entry leaves L1
//! (marked `evicted_from_l1`) and when the handle is freed, as a usage record on the entry each
//! tier holds, only if it is still the same entry (the same `fetch_time`). A write-back never
//! creates an entry and never overwrites a newer one, so a copy that another handle deleted or
//! replaced meanwhile cannot come back.
//!
//! Victims are written back in batches: an evicted entry waits in L1's side map until
//! [`WRITE_BACK_BATCH`] wait, and the put or promotion that completes the batch writes them all
//! in one usage record per tier. A waiting victim is written back at once when its key is read
//! below L1, deleted or invalidated, and all of them when the handle is freed. Reading the
//! statistics or exporting writes nothing: until then, another handle reads the counters the
//! tiers had before the entry was read from L1.

use crate::entry::CacheEntry;
use crate::error::{Error, Result};
use crate::fast_hash::FastMap;
use crate::stats::Counter;
use crate::tier::Usage;

use super::engine::{Engine, Level, ask};
use super::locks::HeldStripes;
use super::slot::TierSlot;

/// L1's victims are written back to L2/L3 once this many wait (see the module docs).
pub const WRITE_BACK_BATCH: usize = 64;

impl Engine {
    /// Writes entries through every tier as one batch. The waiting L1 victims are written back
    /// after it when a batch of them waits, or when it stores several entries (a `put_many`, a
    /// warm).
    pub(crate) fn store(&self, entries: Vec<CacheEntry>) -> Result<()> {
        let _persist = self.persist_missed_at_end();
        if entries.is_empty() {
            return Ok(());
        }
        let mut held = self.locks.lock_keys(entries.iter().map(|e| e.key.as_str()));
        let mut batch = entries;
        let mut written_back = Vec::new();
        let mut folded = 0;
        if let Some(l1) = &self.l1 {
            let mut victims = 0;
            for entry in &batch {
                victims += l1.insert(entry.clone(), false).len();
            }
            self.count(Level::L1, Counter::EvictionsLru, victims as u64);
            // A `put_many` takes every waiting victim: some may be its own entries, evicted by
            // the entries after them, which are not below yet.
            if batch.len() > 1 || l1.awaiting_len() >= WRITE_BACK_BATCH {
                let taken = self.take_awaiting(&mut held);
                let before = taken.len();
                written_back = fold_victims_into(&mut batch, taken);
                folded = before - written_back.len();
            }
        }
        // Acknowledged only once it is in a tier that outlives the handle, when there is one:
        // an entry only L1 holds is gone at the next restart.
        let mut stored = self.l1.is_some() && self.lower().next().is_none();
        let mut written_below = false;
        let mut missed_by = Vec::new();
        // Top down: the shared tier, then L3 and L2 as one step (L3 inside L2's write lock).
        let mut writes = Vec::with_capacity(3);
        if let Some(shared) = self.shared_slot() {
            writes.push((
                shared,
                shared.write_unrecorded("write", |t| t.put_many(&batch)),
            ));
        }
        writes.extend(
            self.write_l2_l3(
                "write",
                |t, below| t.put_many_around(&batch, below),
                |t| t.put_many(&batch),
            )
            .into_iter()
            .map(|(_, slot, done)| (slot, done)),
        );
        for (slot, done) in writes {
            if done.is_some() {
                stored = true;
                written_below = true;
            } else {
                missed_by.push(slot);
            }
        }
        // A tier that failed missed the batch only if another tier took it; if none did, every
        // tier still holds the previous values, which stay the truth.
        if written_below {
            for slot in missed_by {
                slot.missed_keys(batch.iter().map(|e| e.key.as_str()));
            }
        }
        if written_below {
            self.bump(&self.demotions, folded as u64);
        }
        self.write_back(written_back);
        drop(held);
        if stored {
            Ok(())
        } else {
            // Not acknowledged: L1 must not serve what no persistent tier holds.
            if let Some(l1) = &self.l1 {
                for entry in &batch {
                    l1.remove(&entry.key);
                }
            }
            Err(Error::Storage(
                "no enabled persistent tier could store the entry".into(),
            ))
        }
    }

    /// Takes the entries awaiting write-back whose stripes are held, or free now, for the caller
    /// to write back while it holds them. Those whose stripes are busy wait for the next batch
    /// (waiting for them here could deadlock).
    pub(super) fn take_awaiting(&self, held: &mut HeldStripes<'_>) -> Vec<CacheEntry> {
        let Some(l1) = &self.l1 else {
            return Vec::new();
        };
        l1.awaiting_keys()
            .into_iter()
            .filter(|key| held.try_add(key))
            .filter_map(|key| l1.take_evicted(&key))
            .collect()
    }

    /// Records the counters of entries that left L1 on the entries L2 and L3 hold, if those
    /// are still the same entries (the caller holds their stripes). Nothing is created: an
    /// entry deleted or replaced below since it was read stays so.
    pub(super) fn write_back(&self, entries: Vec<CacheEntry>) {
        if entries.is_empty() {
            return;
        }
        let usage: Vec<Usage> = entries.iter().map(Usage::of).collect();
        let mut written = false;
        for (_, slot) in self.lower() {
            written |= self.record_usage(slot, &usage);
        }
        if written {
            self.bump(&self.demotions, entries.len() as u64);
        }
    }

    /// Records usage on one lower tier; `true` when the tier answered. A tier that is skipped
    /// or fails loses only these counters, so the keys are not remembered as missed.
    pub(super) fn record_usage(&self, slot: &TierSlot, usage: &[Usage]) -> bool {
        matches!(
            ask(slot, "recording usage counters", |t| t.record_usage(usage)),
            Ok(Some(_))
        )
    }
}

impl Drop for Engine {
    /// Writes L1's changed entries (their access counters) to the lower tiers, so that the next
    /// handle sees them, and adds this handle's statistics to the totals of closed handles.
    fn drop(&mut self) {
        self.add_counters_to_totals();
        let Some(l1) = &self.l1 else { return };
        let dirty = l1.take_dirty();
        if dirty.is_empty() {
            return;
        }
        let usage: Vec<Usage> = dirty.iter().map(Usage::of).collect();
        for (_, slot) in self.lower() {
            self.record_usage(slot, &usage);
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
