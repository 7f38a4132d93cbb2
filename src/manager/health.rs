//! Health reports: a failed check counted on the entry in every tier, and the removal of an
//! entry that reached `failure_threshold`.

use crate::entry::HealthStatus;
use crate::error::{Error, Result};
use crate::stats::Counter;
use crate::tier::Failures;

use super::engine::{Engine, Level, no_tier_answered};

impl Engine {
    /// Records one failed health check. Each lower tier counts it on the entry it holds, in
    /// one atomic step, so reports from every handle and process add up; the count that
    /// decides is the highest a tier returns (L1's own, plus one, when no lower tier holds the
    /// key).
    pub(super) fn invalidate_by_health(&self, key: &str) -> Result<bool> {
        let _persist = self.persist_missed_at_end();
        let now = self.now();
        let _held = self.locks.lock(key);
        if let Some(l1) = &self.l1
            && let Some(evicted) = l1.take_evicted(key)
        {
            self.write_back(vec![evicted]);
        }
        if let Some(decided) = self.invalidate_in_shared(key) {
            return decided;
        }
        let in_l1 = self.l1.as_ref().and_then(|l1| l1.peek(key));
        let mut answered = usize::from(self.l1.is_some());
        let mut counted: Option<(Level, Failures)> = None;
        // The shared tier did not hold the key (or did not answer): the local tiers decide.
        for (level, slot) in self.lower().filter(|(level, _)| *level != Level::Shared) {
            // A tier that is skipped or fails gets the key remembered as missed, and repaired
            // when it recovers.
            match slot.write("recording a health failure", std::iter::once(key), |t| {
                t.record_failure(key)
            }) {
                Some(Some(failures)) => {
                    answered += 1;
                    if counted.is_none_or(|(_, c)| failures.failure_count > c.failure_count) {
                        counted = Some((level, failures));
                    }
                }
                Some(None) => answered += 1,
                None => {}
            }
        }
        let (found_in, failure_count, expired) = match (&in_l1, counted) {
            (Some(entry), Some((_, below))) => (
                Level::L1,
                below.failure_count,
                entry.is_expired(now) || below.expires_at <= now,
            ),
            (Some(entry), None) => (
                Level::L1,
                entry.failure_count.saturating_add(1),
                entry.is_expired(now),
            ),
            (None, Some((level, below))) => (level, below.failure_count, below.expires_at <= now),
            (None, None) if answered == 0 => {
                return Err(no_tier_answered());
            }
            (None, None) => {
                return Err(Error::NotFound(format!("no entry under key {key:?}")));
            }
        };
        if expired {
            self.expire_everywhere(key, found_in);
            return Err(Error::NotFound(format!(
                "the entry under key {key:?} expired"
            )));
        }
        if self.config.health_check_invalidation && failure_count >= self.config.failure_threshold {
            if let Some(l1) = &self.l1
                && l1.remove(key).is_some()
            {
                self.count(Level::L1, Counter::EvictionsHealth, 1);
            }
            let removed = self.delete_below(&[key]);
            for level in [Level::L2, Level::L3, Level::Shared] {
                self.count(level, Counter::EvictionsHealth, removed[level as usize]);
            }
            return Ok(true);
        }
        if let Some(l1) = &self.l1 {
            l1.update(key, |e| {
                e.failure_count = failure_count;
                e.health_status = HealthStatus::Unhealthy;
            });
        }
        Ok(false)
    }
}
