//! The shared tier in the engine: copying a local hit up into it, and fleet-wide health.
//!
//! The shared tier sits between L1 and L2 and is the fleet's truth while it answers (see
//! docs/architecture.md, "The shared tier"). Two things differ from the local tiers:
//!
//! - A hit in L2 or L3 is copied into the shared tier with `put_if_absent`, then checked as an
//!   L3→L2 promotion is: if the tier it came from no longer holds that version, the copy is
//!   taken back. The shared tier refuses a copy fetched before the fleet deleted the key (its
//!   tombstone) or cleared the pool: the local copies of that version are then deleted and the
//!   read is a miss, so no host brings back what the fleet deleted. If the shared tier holds
//!   another entry already, that one is served.
//! - A failed health check is counted by the shared tier when it holds the key, and the eviction
//!   at `failure_threshold` happens in the same server-side step, so exactly one report of the
//!   fleet evicts; that handle then removes the key from its local tiers, and every other
//!   handle drops it from L1 on the notice.

use crate::entry::{CacheEntry, HealthStatus};
use crate::error::{Error, Result};
use crate::stats::Counter;
use crate::tier::Version;

use super::engine::{Engine, Level, ask};

/// What became of copying a local hit into the shared tier.
pub(super) enum SharedCopy {
    /// Copied (or nothing to do): serve the entry and keep it in L1.
    Kept,
    /// The local tier lost the entry meanwhile: the copy was taken back; serve it, not in L1.
    LostRace,
    /// The shared tier holds another entry: serve that one.
    Replaced(Box<CacheEntry>),
    /// The fleet deleted the key: the local copies are gone too; a miss.
    Deleted,
}

impl Engine {
    /// Copies `entry`, found in the local tier `from`, into the shared tier (module docs).
    pub(super) fn copy_into_shared(&self, entry: &CacheEntry, from: Level) -> SharedCopy {
        let Some(shared) = self.shared_slot() else {
            return SharedCopy::Kept;
        };
        if from == Level::L1 || from == Level::Shared {
            return SharedCopy::Kept;
        }
        let key = entry.key.as_str();
        let version = Version::of(entry);
        match ask(shared, "promotion", |t| t.put_if_absent(entry)) {
            Ok(Some(true)) => {
                let still_below = self.slot(from).is_some_and(|slot| {
                    matches!(slot.call(|t| t.get(key)), Ok(Some(Some(current))) if version.matches(&current))
                });
                if still_below {
                    self.bump(&self.promotions, 1);
                    return SharedCopy::Kept;
                }
                let _ = ask(shared, "taking back a promotion", |t| {
                    t.delete_if_version(key, &version)
                });
                SharedCopy::LostRace
            }
            Ok(Some(false)) => match ask(shared, "read", |t| t.get(key)) {
                Ok(Some(Some(current))) => SharedCopy::Replaced(Box::new(current)),
                Ok(Some(None)) => {
                    // Deleted by the fleet after this copy was fetched: so it is here too.
                    for (level, slot) in self.lower_bottom_up() {
                        if level != Level::Shared {
                            slot.write("delete", std::iter::once(key), |t| {
                                t.delete_if_version(key, &version)
                            });
                        }
                    }
                    SharedCopy::Deleted
                }
                // Unreadable or unreachable now: serve the local copy, as when it is down.
                _ => SharedCopy::Kept,
            },
            _ => SharedCopy::Kept,
        }
    }

    /// Records a failed health check in the shared tier when it holds the key; `None` when the
    /// shared tier is off or does not answer, or neither it nor a local disk tier holds the key
    /// (the local tiers decide).
    ///
    /// When the shared tier answers without the key, a copy in L2 or L3 is copied up first (as
    /// a read would) and the failure counted there: the copy may be one the fleet already
    /// evicted or deleted, which the tombstone refuses (the local copies are deleted and the
    /// report finds nothing), or one the shared tier never got (missed while it was down,
    /// evicted for room). Counting it locally instead would let a second report evict a value
    /// the fleet had evicted already.
    pub(super) fn invalidate_in_shared(&self, key: &str) -> Option<Result<bool>> {
        self.invalidate_in_shared_once(key, true)
    }

    fn invalidate_in_shared_once(&self, key: &str, copy_up: bool) -> Option<Result<bool>> {
        let shared = self.shared_slot()?;
        let now = self.now();
        let threshold = if self.config.health_check_invalidation {
            self.config.failure_threshold
        } else {
            0
        };
        let (failures, evicted) = match ask(shared, "recording a health failure", |t| {
            t.record_failure_evicting_at(key, threshold)
        }) {
            Ok(Some(Some(answer))) => answer,
            Ok(Some(None)) => {
                // The fleet does not hold it: an L1 copy came from the shared tier and is about
                // to be dropped by a notice; it must not count on its own.
                if let Some(l1) = &self.l1 {
                    l1.remove(key);
                }
                if !copy_up {
                    return None;
                }
                let local = self
                    .lower()
                    .filter(|(level, _)| *level != Level::Shared)
                    .find_map(|(level, slot)| match slot.call(|t| t.get(key)) {
                        Ok(Some(Some(entry))) => Some((level, entry)),
                        _ => None,
                    });
                let (level, entry) = local?;
                return match self.copy_into_shared(&entry, level) {
                    SharedCopy::Deleted => Some(Err(Error::NotFound(format!(
                        "no entry under key {key:?} (the fleet removed it)"
                    )))),
                    _ => self.invalidate_in_shared_once(key, false),
                };
            }
            _ => return None,
        };
        // The local tiers count it too (their counts decide only when the shared tier cannot).
        for (level, slot) in self.lower() {
            if level != Level::Shared {
                slot.write("recording a health failure", std::iter::once(key), |t| {
                    t.record_failure(key)
                });
            }
        }
        if evicted {
            self.count(Level::Shared, Counter::EvictionsHealth, 1);
            if let Some(l1) = &self.l1
                && l1.remove(key).is_some()
            {
                self.count(Level::L1, Counter::EvictionsHealth, 1);
            }
            let removed = self.delete_below(&[key]);
            for level in [Level::L2, Level::L3] {
                self.count(level, Counter::EvictionsHealth, removed[level as usize]);
            }
            return Some(Ok(true));
        }
        if failures.expires_at <= now {
            self.expire_everywhere(key, Level::Shared);
            return Some(Err(Error::NotFound(format!(
                "the entry under key {key:?} expired"
            ))));
        }
        if let Some(l1) = &self.l1 {
            l1.update(key, |e| {
                e.failure_count = failures.failure_count;
                e.health_status = HealthStatus::Unhealthy;
            });
        }
        Some(Ok(false))
    }
}
