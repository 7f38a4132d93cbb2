//! Statistics: counters kept exactly with atomics, and their JSON snapshot with the keys and the
//! arithmetic of upstream's `CacheStatistics` (`hit_rate = hits / (hits + misses)`,
//! `overall_hit_rate = Σhits / (Σhits + max(misses))`, `total_size` the sum of the tiers' sizes).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// The counters of one tier. With statistics disabled, every `add` is a no-op.
#[derive(Debug, Default)]
pub struct TierCounters {
    enabled: bool,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions_lru: AtomicU64,
    evictions_ttl: AtomicU64,
    evictions_health: AtomicU64,
    evictions_corruption: AtomicU64,
}

/// Which counter of a tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    Hits,
    Misses,
    EvictionsLru,
    EvictionsTtl,
    EvictionsHealth,
    EvictionsCorruption,
}

impl TierCounters {
    pub fn new(enabled: bool) -> TierCounters {
        TierCounters {
            enabled,
            ..TierCounters::default()
        }
    }

    fn cell(&self, counter: Counter) -> &AtomicU64 {
        match counter {
            Counter::Hits => &self.hits,
            Counter::Misses => &self.misses,
            Counter::EvictionsLru => &self.evictions_lru,
            Counter::EvictionsTtl => &self.evictions_ttl,
            Counter::EvictionsHealth => &self.evictions_health,
            Counter::EvictionsCorruption => &self.evictions_corruption,
        }
    }

    pub fn add(&self, counter: Counter, n: u64) {
        if !self.enabled || n == 0 {
            return;
        }
        self.cell(counter).fetch_add(n, Relaxed);
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.cell(counter).load(Relaxed)
    }

    pub fn snapshot(&self, current_size: u64) -> TierStatistics {
        let hits = self.get(Counter::Hits);
        let misses = self.get(Counter::Misses);
        let (lru, ttl, health, corruption) = (
            self.get(Counter::EvictionsLru),
            self.get(Counter::EvictionsTtl),
            self.get(Counter::EvictionsHealth),
            self.get(Counter::EvictionsCorruption),
        );
        TierStatistics {
            hits,
            misses,
            current_size,
            evictions_lru: lru,
            evictions_ttl: ttl,
            evictions_health: health,
            evictions_corruption: corruption,
            hit_rate: ratio(hits, hits + misses),
            total_evictions: lru + ttl + health + corruption,
        }
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// One tier's statistics, keys in upstream's order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TierStatistics {
    pub hits: u64,
    pub misses: u64,
    pub current_size: u64,
    pub evictions_lru: u64,
    pub evictions_ttl: u64,
    pub evictions_health: u64,
    pub evictions_corruption: u64,
    pub hit_rate: f64,
    pub total_evictions: u64,
}

/// The statistics of a cache, keys in upstream's `CacheStatistics` order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CacheStatistics {
    pub l1_stats: TierStatistics,
    pub l2_stats: TierStatistics,
    pub l3_stats: TierStatistics,
    pub promotions: u64,
    pub demotions: u64,
    pub l1_degraded: bool,
    pub l2_degraded: bool,
    pub l3_degraded: bool,
    pub overall_hit_rate: f64,
    pub total_size: u64,
    /// The shared tier of a fleet (`shared_config`): all zero when it is off. Its hits, misses
    /// and size count in `overall_hit_rate` and `total_size` like the other tiers'.
    pub shared_stats: TierStatistics,
    pub shared_degraded: bool,
}

impl CacheStatistics {
    /// Derives the totals as upstream does: `Σhits / (Σhits + max(misses))`.
    pub fn new(
        tiers: [TierStatistics; 3],
        promotions: u64,
        demotions: u64,
        degraded: [bool; 3],
    ) -> CacheStatistics {
        let hits: u64 = tiers.iter().map(|t| t.hits).sum();
        let max_misses = tiers.iter().map(|t| t.misses).max().unwrap_or(0);
        let total_size = tiers.iter().map(|t| t.current_size).sum();
        let [l1_stats, l2_stats, l3_stats] = tiers;
        CacheStatistics {
            l1_stats,
            l2_stats,
            l3_stats,
            promotions,
            demotions,
            l1_degraded: degraded[0],
            l2_degraded: degraded[1],
            l3_degraded: degraded[2],
            overall_hit_rate: ratio(hits, hits + max_misses),
            total_size,
            shared_stats: TierCounters::new(false).snapshot(0),
            shared_degraded: false,
        }
    }

    /// These statistics with the shared tier's.
    pub fn with_shared(mut self, shared: TierStatistics, degraded: bool) -> CacheStatistics {
        let tiers = [&self.l1_stats, &self.l2_stats, &self.l3_stats, &shared];
        let hits: u64 = tiers.iter().map(|t| t.hits).sum();
        let max_misses = tiers.iter().map(|t| t.misses).max().unwrap_or(0);
        self.overall_hit_rate = ratio(hits, hits + max_misses);
        self.total_size += shared.current_size;
        self.shared_stats = shared;
        self.shared_degraded = degraded;
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("statistics always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_upstreams() {
        let c = TierCounters::new(true);
        c.add(Counter::Hits, 3);
        c.add(Counter::Misses, 1);
        c.add(Counter::EvictionsTtl, 2);
        let t = c.snapshot(7);
        assert_eq!(t.hit_rate, 0.75);
        assert_eq!(t.total_evictions, 2);
        let empty = TierCounters::new(true).snapshot(1);
        assert_eq!(empty.hit_rate, 0.0);
        let mut l2 = empty.clone();
        l2.misses = 4;
        let s = CacheStatistics::new([t, l2, empty], 0, 0, [false; 3]);
        assert_eq!(s.overall_hit_rate, 3.0 / 7.0);
        assert_eq!(s.total_size, 9);
    }

    #[test]
    fn disabled_counters_stay_zero() {
        let c = TierCounters::new(false);
        c.add(Counter::Hits, 3);
        assert_eq!(c.get(Counter::Hits), 0);
    }
}
