//! Per-key mutual exclusion, striped.
//!
//! Operations that touch the disk tiers for a key hold its stripe, so that, per key, they happen
//! one after another (a promotion can never overwrite a newer put, a write-back never resurrects a
//! deleted key). L1 hits take no stripe: they never wait for another thread's disk I/O.

use std::hash::BuildHasher;

use parking_lot::{Mutex, MutexGuard};

const STRIPES: usize = 256;

pub(crate) struct KeyLocks {
    stripes: Box<[Mutex<()>]>,
    hasher: foldhash::fast::RandomState,
}

/// Stripes held by one operation, always taken in ascending order (so two operations can never
/// wait on each other in a cycle), plus any taken later with `try_lock` (which never waits).
pub(crate) struct HeldStripes<'a> {
    locks: &'a KeyLocks,
    held: Vec<(usize, MutexGuard<'a, ()>)>,
}

impl KeyLocks {
    pub fn new() -> KeyLocks {
        KeyLocks {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn stripe(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) % STRIPES
    }

    /// Holds the stripe of `key`.
    pub fn lock(&self, key: &str) -> HeldStripes<'_> {
        self.lock_keys(std::iter::once(key))
    }

    /// Holds the stripes of all `keys`.
    pub fn lock_keys<'k>(&self, keys: impl Iterator<Item = &'k str>) -> HeldStripes<'_> {
        let mut indices: Vec<usize> = keys.map(|k| self.stripe(k)).collect();
        indices.sort_unstable();
        indices.dedup();
        HeldStripes {
            locks: self,
            held: indices
                .into_iter()
                .map(|i| (i, self.stripes[i].lock()))
                .collect(),
        }
    }

    /// Holds every stripe: for operations on the whole cache (clear).
    pub fn lock_all(&self) -> HeldStripes<'_> {
        HeldStripes {
            locks: self,
            held: (0..STRIPES).map(|i| (i, self.stripes[i].lock())).collect(),
        }
    }
}

impl HeldStripes<'_> {
    /// Makes sure `key`'s stripe is held without waiting: `true` if it was held already or could
    /// be taken now, `false` if another operation holds it.
    pub fn try_add(&mut self, key: &str) -> bool {
        let i = self.locks.stripe(key);
        if self.held.iter().any(|(h, _)| *h == i) {
            return true;
        }
        match self.locks.stripes[i].try_lock() {
            Some(guard) => {
                self.held.push((i, guard));
                true
            }
            None => false,
        }
    }
}
