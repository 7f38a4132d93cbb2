//! L1: entries in memory, bounded, in the order of the eviction policy.
//!
//! One short-held mutex over a hash map and an [`EvictionOrder`]; no I/O ever happens under it.
//! An entry evicted to make room is not dropped: it moves to a small side map of entries
//! *awaiting write-back*, from which the manager takes it (under that key's lock) to write it to
//! L2/L3, in batches. Until then it is found there (by [`MemoryTier::peek`], an export, the
//! manager before it reads that key below), so an eviction never loses what L1 alone knew.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::EvictionPolicy;
use crate::entry::CacheEntry;
use crate::fast_hash::FastMap;
use crate::tier::order::{EvictionOrder, Handle};
use crate::time::Timestamp;

struct Slot {
    handle: Handle,
    entry: CacheEntry,
    /// Changed since it was last written to a lower tier (its access counters, mostly).
    dirty: bool,
}

struct State {
    map: FastMap<Arc<str>, Slot>,
    order: EvictionOrder<Arc<str>>,
    awaiting_write_back: FastMap<Arc<str>, CacheEntry>,
}

/// The result of reading L1.
// The hit carries the entry by value on purpose: boxing it would allocate on every L1 hit.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Read {
    /// The entry, already counted as read (`access_count + 1`, `last_accessed = now`).
    Hit(CacheEntry),
    /// The entry was expired; it has been removed from L1.
    Expired,
    Miss,
}

/// L1.
pub struct MemoryTier {
    state: Mutex<State>,
    max_entries: Option<usize>,
}

impl MemoryTier {
    /// `max_entries = None` is unbounded.
    pub fn new(max_entries: Option<u64>, policy: EvictionPolicy) -> MemoryTier {
        MemoryTier {
            state: Mutex::new(State {
                map: FastMap::default(),
                order: EvictionOrder::new(policy),
                awaiting_write_back: FastMap::default(),
            }),
            max_entries: max_entries.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        }
    }

    /// A read: on a live hit the entry is counted as read and moved in the eviction order.
    pub fn read(&self, key: &str, now: Timestamp) -> Read {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let Some(slot) = state.map.get_mut(key) else {
            return Read::Miss;
        };
        if slot.entry.is_expired(now) {
            let handle = slot.handle;
            state.order.remove(handle);
            state.map.remove(key);
            return Read::Expired;
        }
        slot.entry.touch(now);
        slot.dirty = true;
        let entry = slot.entry.clone();
        state.order.touch(slot.handle);
        Read::Hit(entry)
    }

    /// The entry under `key`, evicted-but-not-yet-written-back included, without counting a read.
    pub fn peek(&self, key: &str) -> Option<CacheEntry> {
        let state = self.state.lock();
        state
            .map
            .get(key)
            .map(|s| s.entry.clone())
            .or_else(|| state.awaiting_write_back.get(key).cloned())
    }

    /// Stores `entry` (replacing and counting a use when the key is present). `dirty` says whether
    /// it differs from what the lower tiers hold. Returns the keys evicted to make room; their
    /// entries wait in [`MemoryTier::take_evicted`].
    pub fn insert(&self, entry: CacheEntry, dirty: bool) -> Vec<Arc<str>> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        if let Some(slot) = state.map.get_mut(entry.key.as_str()) {
            slot.entry = entry;
            slot.dirty = dirty;
            state.order.touch(slot.handle);
            return Vec::new();
        }
        // Make room before inserting: the victim is chosen among the entries already held
        // (under LFU a new entry has the fewest uses and would otherwise be evicted on arrival).
        let mut evicted = Vec::new();
        if let Some(max) = self.max_entries {
            while state.map.len() >= max.max(1) {
                let Some(victim) = state.order.pop_victim() else {
                    break;
                };
                let mut slot = state.map.remove(&victim).expect("ordered keys are mapped");
                slot.entry.evicted_from_l1 = true;
                state.awaiting_write_back.insert(victim.clone(), slot.entry);
                evicted.push(victim);
            }
        }
        let key: Arc<str> = Arc::from(entry.key.as_str());
        state.awaiting_write_back.remove(&key);
        let handle = state.order.insert(key.clone());
        state.map.insert(
            key,
            Slot {
                handle,
                entry,
                dirty,
            },
        );
        evicted
    }

    /// How many evicted entries wait for their write-back.
    pub fn awaiting_len(&self) -> usize {
        self.state.lock().awaiting_write_back.len()
    }

    /// The keys of the evicted entries that wait for their write-back.
    pub fn awaiting_keys(&self) -> Vec<Arc<str>> {
        self.state
            .lock()
            .awaiting_write_back
            .keys()
            .cloned()
            .collect()
    }

    /// Takes an evicted entry (marked `evicted_from_l1`) for its write-back; `None` when it was
    /// taken already, deleted, or stored again since.
    pub fn take_evicted(&self, key: &str) -> Option<CacheEntry> {
        self.state.lock().awaiting_write_back.remove(key)
    }

    /// Removes `key` from L1, its evicted copy included; returns the live entry if there was one.
    pub fn remove(&self, key: &str) -> Option<CacheEntry> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        state.awaiting_write_back.remove(key);
        let slot = state.map.remove(key)?;
        state.order.remove(slot.handle);
        Some(slot.entry)
    }

    /// Applies `change` to the live entry under `key` and marks it dirty; returns the new entry.
    pub fn update(&self, key: &str, change: impl FnOnce(&mut CacheEntry)) -> Option<CacheEntry> {
        let mut state = self.state.lock();
        let slot = state.map.get_mut(key)?;
        change(&mut slot.entry);
        slot.dirty = true;
        Some(slot.entry.clone())
    }

    /// Live entries held (entries awaiting write-back are not counted).
    pub fn size(&self) -> usize {
        self.state.lock().map.len()
    }

    /// Empties L1; returns the keys it held.
    pub fn remove_all(&self) -> Vec<String> {
        let mut state = self.state.lock();
        let mut keys: Vec<String> = state.map.keys().map(|k| k.to_string()).collect();
        keys.extend(state.awaiting_write_back.keys().map(|k| k.to_string()));
        state.map.clear();
        state.awaiting_write_back.clear();
        state.order.clear();
        keys
    }

    /// Removes the entries with `now >= expires_at`; returns their keys.
    pub fn remove_expired_at(&self, now: Timestamp) -> Vec<String> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let expired: Vec<Arc<str>> = state
            .map
            .iter()
            .filter(|(_, s)| s.entry.is_expired(now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &expired {
            let slot = state.map.remove(key).expect("just listed");
            state.order.remove(slot.handle);
        }
        state.awaiting_write_back.retain(|_, e| !e.is_expired(now));
        expired.iter().map(|k| k.to_string()).collect()
    }

    /// Copies of every entry held, awaiting write-back included, in no particular order.
    pub fn entries(&self) -> Vec<CacheEntry> {
        let state = self.state.lock();
        state
            .map
            .values()
            .map(|s| s.entry.clone())
            .chain(state.awaiting_write_back.values().cloned())
            .collect()
    }

    /// The entries changed since they were last written below, marked clean: what a closing
    /// cache writes back so access counters survive it.
    pub fn take_dirty(&self) -> Vec<CacheEntry> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let mut out: Vec<CacheEntry> = state.awaiting_write_back.drain().map(|(_, e)| e).collect();
        for slot in state.map.values_mut().filter(|s| s.dirty) {
            slot.dirty = false;
            out.push(slot.entry.clone());
        }
        out
    }

    /// Marks `key` as written below.
    pub fn mark_clean(&self, key: &str) {
        if let Some(slot) = self.state.lock().map.get_mut(key) {
            slot.dirty = false;
        }
    }

    /// Keys from the next victim to the last (for tests of the policies).
    pub fn keys_in_eviction_order(&self) -> Vec<String> {
        self.state
            .lock()
            .order
            .iter()
            .map(|k| k.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, now: Timestamp, ttl: i64) -> CacheEntry {
        CacheEntry::new(key, format!("http://{key}:1"), "t", now, ttl)
    }

    fn t0() -> Timestamp {
        Timestamp::parse("2026-01-01T00:00:00Z").unwrap()
    }

    #[test]
    fn eviction_moves_the_victim_aside_until_taken() {
        let l1 = MemoryTier::new(Some(2), EvictionPolicy::Lru);
        assert!(l1.insert(entry("a", t0(), 60), false).is_empty());
        assert!(l1.insert(entry("b", t0(), 60), false).is_empty());
        assert!(matches!(l1.read("a", t0()), Read::Hit(_)));
        let evicted = l1.insert(entry("c", t0(), 60), false);
        assert_eq!(evicted, vec![Arc::from("b")]);
        assert_eq!(l1.size(), 2);
        assert!(l1.peek("b").is_some(), "still findable until written back");
        let taken = l1.take_evicted("b").unwrap();
        assert_eq!(taken.key, "b");
        assert!(taken.evicted_from_l1);
        assert!(l1.take_evicted("b").is_none());
    }

    #[test]
    fn reads_count_and_expire_at_the_boundary() {
        let l1 = MemoryTier::new(None, EvictionPolicy::Lru);
        l1.insert(entry("a", t0(), 10), false);
        for n in 1..=3 {
            match l1.read("a", t0()) {
                Read::Hit(e) => assert_eq!(e.access_count, n),
                other => panic!("{other:?}"),
            }
        }
        let just_before = Timestamp::from_micros(t0().plus_seconds(10).as_micros() - 1).unwrap();
        assert!(matches!(l1.read("a", just_before), Read::Hit(_)));
        assert!(matches!(l1.read("a", t0().plus_seconds(10)), Read::Expired));
        assert!(matches!(l1.read("a", t0()), Read::Miss));
    }
}
