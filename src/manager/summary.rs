//! What a cache holds, read from its tiers rather than from a handle's counters, so that it means
//! the same in every process: entries per tier, distinct entries, health states, entries expired
//! but not yet swept, the next expiry. One pass over every tier (L1, then the shared tier, L2,
//! L3), nothing counted as a read, nothing changed.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::Engine;
use super::engine::ask;
use crate::entry::CacheEntry;
use crate::time::Timestamp;

/// What the cache holds now.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StoreSummary {
    /// Entries stored by each tier, expired ones not yet swept included (a tier that is off or
    /// not answering holds 0). An entry is usually in several tiers at once.
    pub l1_entries: u64,
    pub l2_entries: u64,
    pub l3_entries: u64,
    pub shared_entries: u64,
    /// Different keys over all tiers, unreadable ones included: the number of proxies the cache
    /// knows (live + expired_not_swept + unreadable).
    pub distinct_entries: u64,
    /// Of those, not expired: what a get can return.
    pub live_entries: u64,
    /// Expired, still stored until a sweep (`cleanup`, the background sweeper) or a read
    /// removes them.
    pub expired_not_swept: u64,
    /// Live entries by `health_status` (unknown, healthy, degraded, unhealthy, dead).
    pub health: BTreeMap<String, u64>,
    /// Live entries with at least one failed health check not yet at `failure_threshold`.
    pub with_failures: u64,
    /// When the next live entry expires (Unix seconds), `None` with no live entry.
    pub next_expiry: Option<f64>,
    /// Records no tier could read (corrupt, or credentials under another encryption key),
    /// each key once.
    pub unreadable: u64,
}

impl StoreSummary {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a summary serialises")
    }
}

impl Engine {
    /// See the module docs. Each key is described by the first tier that holds a readable copy,
    /// in the order a get asks them.
    pub(super) fn summary(&self) -> StoreSummary {
        let now = self.now();
        let sizes = self.sizes();
        let mut summary = StoreSummary {
            l1_entries: sizes[0],
            l2_entries: sizes[1],
            l3_entries: sizes[2],
            shared_entries: sizes[3],
            ..StoreSummary::default()
        };
        let mut seen: HashSet<String> = HashSet::new();
        let mut unreadable: HashSet<String> = HashSet::new();
        let mut next_expiry: Option<Timestamp> = None;
        let mut count = |entry: CacheEntry, summary: &mut StoreSummary| {
            if !seen.insert(entry.key.clone()) {
                return;
            }
            if entry.is_expired(now) {
                summary.expired_not_swept += 1;
                return;
            }
            summary.live_entries += 1;
            *summary
                .health
                .entry(entry.health_status.as_str().to_string())
                .or_default() += 1;
            if entry.failure_count > 0 {
                summary.with_failures += 1;
            }
            if next_expiry.is_none_or(|t| entry.expires_at < t) {
                next_expiry = Some(entry.expires_at);
            }
        };
        if let Some(l1) = &self.l1 {
            for entry in l1.entries() {
                count(entry, &mut summary);
            }
        }
        for (_, slot) in self.lower() {
            let _ = ask(slot, "reading every entry", |t| {
                t.scan(&mut |record| match record {
                    Ok(entry) => count(entry, &mut summary),
                    Err(bad) => {
                        if let Some(key) = &bad.key {
                            unreadable.insert(key.clone());
                        } else {
                            summary.unreadable += 1;
                        }
                    }
                })
            });
        }
        unreadable.retain(|key| !seen.contains(key));
        summary.unreadable += unreadable.len() as u64;
        summary.distinct_entries =
            summary.live_entries + summary.expired_not_swept + summary.unreadable;
        summary.next_expiry = next_expiry.map(Timestamp::as_epoch_seconds);
        summary
    }
}
