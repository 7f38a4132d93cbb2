//! Operations over the whole cache rather than one key: statistics (with each tier's size), the
//! expiry sweep, and the walk over every live entry that export and the CLI's summary read.
//! None of them takes a key's stripe, and statistics and the walk write nothing.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use crate::entry::CacheEntry;
use crate::error::Result;
use crate::stats::{CacheStatistics, Counter};

use super::engine::{Engine, Level, ask, no_tier_answered};
use super::slot::TierSlot;

impl Engine {
    /// Exact statistics, sizes counted now. Writes nothing and changes no counter.
    pub(super) fn statistics(&self) -> CacheStatistics {
        let sizes = self.sizes();
        let degraded_at = |level| self.slot(level).is_some_and(TierSlot::is_degraded);
        let degraded = [false, degraded_at(Level::L2), degraded_at(Level::L3)];
        CacheStatistics::new(
            std::array::from_fn(|i| self.counters[i].snapshot(sizes[i])),
            self.promotions.load(Ordering::Relaxed),
            self.demotions.load(Ordering::Relaxed),
            degraded,
        )
        .with_shared(
            self.counters[Level::Shared as usize].snapshot(sizes[Level::Shared as usize]),
            degraded_at(Level::Shared),
        )
    }

    /// How many entries each tier holds, by [`Level`] (0 for a tier that is off or cannot be
    /// read).
    pub(super) fn sizes(&self) -> [u64; 4] {
        let l1_size = self.l1.as_ref().map_or(0, |l1| l1.size() as u64);
        let size_of = |level| match self.slot(level) {
            None => 0,
            Some(slot) => ask(slot, "counting entries", |t| t.len())
                .ok()
                .flatten()
                .unwrap_or(0),
        };
        [
            l1_size,
            size_of(Level::L2),
            size_of(Level::L3),
            size_of(Level::Shared),
        ]
    }

    /// Removes expired entries from every tier; returns the number of distinct keys removed.
    pub(crate) fn cleanup_expired(&self) -> Result<u64> {
        let now = self.now();
        let mut keys: HashSet<String> = HashSet::new();
        let mut answered = false;
        if let Some(l1) = &self.l1 {
            answered = true;
            let removed = l1.remove_expired_at(now);
            self.count(Level::L1, Counter::EvictionsTtl, removed.len() as u64);
            keys.extend(removed);
        }
        for (level, slot) in self.lower_bottom_up() {
            if let Ok(Some(removed)) = ask(slot, "expiry sweep", |t| t.remove_expired(now)) {
                answered = true;
                self.count(level, Counter::EvictionsTtl, removed.len() as u64);
                keys.extend(removed);
            }
        }
        if !answered {
            return Err(no_tier_answered());
        }
        Ok(keys.len() as u64)
    }

    /// Calls `visit` once per key with its live entry (L1's copy first: its counters are the
    /// newest, then L2's, then L3's), without counting a read or changing anything. Returns how
    /// many entries could not be read in any tier (corrupt, or under another encryption key),
    /// each key counted once, so that visited + returned = the distinct keys stored (expired
    /// entries aside).
    ///
    /// As for a get, the scan is complete only when a tier that could hold every entry answered:
    /// with every persistent tier failing or skipped it is a storage error (L1 alone answers
    /// only when it is the only tier).
    pub(super) fn for_each_live_entry(&self, visit: &mut dyn FnMut(CacheEntry)) -> Result<u64> {
        let now = self.now();
        let mut seen: HashSet<String> = HashSet::new();
        // Unreadable records by key: a key every tier holds unreadably (another encryption key)
        // is one failed entry, not one per tier, and a key readable in another tier is none.
        let mut unreadable: HashSet<String> = HashSet::new();
        let mut unreadable_without_key = 0u64;
        let mut offer = |entry: CacheEntry, seen: &mut HashSet<String>| {
            if !entry.is_expired(now) && !seen.contains(&entry.key) {
                seen.insert(entry.key.clone());
                visit(entry);
            }
        };
        if let Some(l1) = &self.l1 {
            for entry in l1.entries() {
                offer(entry, &mut seen);
            }
        }
        let mut answered = self.l1.is_some() && self.lower().next().is_none();
        for (_, slot) in self.lower() {
            let scanned = ask(slot, "reading every entry", |t| {
                t.scan(&mut |record| match record {
                    Ok(entry) => offer(entry, &mut seen),
                    Err(bad) => {
                        // The first one says why; the rest would repeat it thousands of times.
                        if unreadable.is_empty() && unreadable_without_key == 0 {
                            log::warn!("an unreadable record (more are logged at debug): {bad}");
                        } else {
                            log::debug!("an unreadable record: {bad}");
                        }
                        match bad.key {
                            Some(key) => {
                                unreadable.insert(key);
                            }
                            None => unreadable_without_key += 1,
                        }
                    }
                })
            });
            answered |= matches!(scanned, Ok(Some(())));
        }
        if !answered {
            return Err(no_tier_answered());
        }
        unreadable.retain(|key| !seen.contains(key));
        Ok(unreadable.len() as u64 + unreadable_without_key)
    }
}
