//! `pwcache stats`: what the cache holds, read from its tiers, and the counters of every handle
//! that has closed on it (each process adds its own when it closes the cache; see the library's
//! `CacheManager::closed_handle_statistics`). The command's own handle counts nothing and adds
//! nothing, so running it changes no figure.

use std::io::Write;

use pwcache::{CacheManager, ClosedHandleStatistics, StoreSummary, TierTotals, Timestamp};

use crate::exit::Failure;
use crate::print;
use crate::store::{backend_name, common_dir};

pub fn run(
    out: &mut impl Write,
    cache: &CacheManager,
    json: bool,
    reset: bool,
) -> Result<(), Failure> {
    let summary = cache.summary();
    let totals = cache.closed_handle_statistics()?;
    let statistics = cache.statistics();
    let config = cache.config();
    let degraded: Vec<&str> = [
        ("L2", statistics.l2_degraded),
        ("L3", statistics.l3_degraded),
        ("shared", statistics.shared_degraded),
    ]
    .into_iter()
    .filter_map(|(name, degraded)| degraded.then_some(name))
    .collect();
    if json {
        let value = serde_json::json!({
            "cache": {
                "dir": common_dir(config),
                "l2_cache_dir": config.l2_cache_dir,
                "l2_backend": backend_name(config.l2_backend),
                "l3_database_path": config.l3_database_path,
                "totals_file": config.l2_cache_dir.join(pwcache::manager::TOTALS_FILE_NAME),
            },
            "holds": serde_json::from_str::<serde_json::Value>(&summary.to_json())
                .expect("the summary is JSON"),
            "closed_handles": totals.as_ref().map(|t| serde_json::from_str::<serde_json::Value>(&t.to_json())
                .expect("the totals are JSON")),
            "degraded": degraded,
            "shared": config.shared.enabled.then(|| serde_json::json!({
                "url": config.shared.redacted_url(),
                "namespace": config.shared.namespace,
                "current_size": statistics.shared_stats.current_size,
                "degraded": statistics.shared_degraded,
            })),
        });
        print(out, &value.to_string())?;
    } else {
        print(out, &table(cache, &summary, totals.as_ref(), &degraded))?;
        if let Some(row) = crate::shared::stats_row(config, &statistics) {
            print(out, &row)?;
        }
    }
    if reset {
        cache.reset_closed_handle_statistics()?;
        print(out, "(the closed handles' counters start again from zero)")?;
    }
    Ok(())
}

fn when(seconds: f64) -> String {
    Timestamp::from_epoch_seconds(seconds)
        .map(Timestamp::to_rfc3339)
        .unwrap_or_else(|| format!("{seconds} (Unix seconds)"))
}

/// A whole number with thousands separators.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut text = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(c);
    }
    text
}

fn capacity(max: Option<u64>) -> String {
    match max {
        Some(max) if max > 0 => format!(" (of {})", grouped(max)),
        _ => String::new(),
    }
}

/// The report as text.
pub fn table(
    cache: &CacheManager,
    s: &StoreSummary,
    totals: Option<&ClosedHandleStatistics>,
    degraded: &[&str],
) -> String {
    let config = cache.config();
    let mut t = format!(
        "cache {} (L2 {} in {}, L3 {})\n\n",
        common_dir(config).display(),
        backend_name(config.l2_backend),
        config.l2_cache_dir.display(),
        config.l3_database_path.display()
    );
    t += "holds (read from the tiers now):\n";
    let mut tiers = format!(
        "  entries per tier: L2 {}{}, L3 {}{}",
        grouped(s.l2_entries),
        capacity(config.l2.max_entries),
        grouped(s.l3_entries),
        capacity(config.l3.max_entries)
    );
    if config.shared.enabled {
        tiers += &format!(", shared {}", grouped(s.shared_entries));
    }
    t += &tiers;
    t += " (L1 is each process's memory; an entry is in several tiers at once)\n";
    t += &format!(
        "  distinct entries: {} = {} live + {} expired not yet swept + {} unreadable\n",
        grouped(s.distinct_entries),
        grouped(s.live_entries),
        grouped(s.expired_not_swept),
        grouped(s.unreadable)
    );
    let health: Vec<String> = s
        .health
        .iter()
        .map(|(state, n)| format!("{state} {}", grouped(*n)))
        .collect();
    t += &format!(
        "  health of live entries: {}; with failed checks below failure_threshold: {}\n",
        if health.is_empty() {
            "none".to_string()
        } else {
            health.join(", ")
        },
        grouped(s.with_failures)
    );
    t += &format!(
        "  next expiry: {}\n",
        s.next_expiry.map_or_else(|| "none".to_string(), when)
    );
    t += &format!(
        "  degraded tiers: {}\n\n",
        if degraded.is_empty() {
            "none".to_string()
        } else {
            degraded.join(", ")
        }
    );
    let Some(c) = totals else {
        t += "counters: no handle has closed with anything counted yet (each process adds its \
              hits and misses when it closes the cache)";
        return t;
    };
    t += &format!(
        "counters of the {} {} that closed from {} to {}:\n",
        grouped(c.handles),
        if c.handles == 1 { "handle" } else { "handles" },
        when(c.since),
        when(c.updated)
    );
    t += &format!(
        "  {:<9} {:>10} {:>10} {:>8} {:>9} {:>9} {:>9} {:>9}\n",
        "tier", "hits", "misses", "hit rate", "ev.lru", "ev.ttl", "ev.hlth", "ev.corr"
    );
    let mut rows: Vec<(&str, &TierTotals)> = vec![("L1", &c.l1)];
    if config.shared.enabled || c.shared != TierTotals::default() {
        rows.push(("shared", &c.shared));
    }
    rows.extend([("L2", &c.l2), ("L3", &c.l3)]);
    for (name, tier) in rows {
        t += &format!(
            "  {:<9} {:>10} {:>10} {:>7.1}% {:>9} {:>9} {:>9} {:>9}\n",
            name,
            grouped(tier.hits),
            grouped(tier.misses),
            tier.hit_rate() * 100.0,
            grouped(tier.evictions_lru),
            grouped(tier.evictions_ttl),
            grouped(tier.evictions_health),
            grouped(tier.evictions_corruption)
        );
    }
    t += &format!(
        "  promotions {}, demotions {}; overall hit rate {:.1}% (reads that some tier answered)",
        grouped(c.promotions),
        grouped(c.demotions),
        c.overall_hit_rate() * 100.0
    );
    t
}
