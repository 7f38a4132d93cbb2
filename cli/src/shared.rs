//! `--shared URL` (or `PWCACHE_SHARED`): every command joins the fleet's shared tier on that
//! Redis server, and `stats` shows the tier's row. The URL may carry a password: it is never
//! printed but through the library's masking (`SharedConfig::redacted_url`), clap never echoes
//! it (the option is taken as a plain string and checked here, by a check that does not quote
//! it), and `--help` hides the environment variable's value.

use pwcache::{CacheConfig, CacheStatistics, Error};

/// The environment variable that may hold the URL instead of the command line (where other
/// users of the machine could read it in the process list).
pub const ENV: &str = "PWCACHE_SHARED";

/// The `--shared` URL of this run, for every cache the command opens.
static URL: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Records the `--shared` URL (or `PWCACHE_SHARED`) of this run; called once, at start.
pub fn use_for_every_cache(url: Option<String>) {
    let _ = URL.set(url);
}

/// Turns the shared tier on in `config` when the run has a `--shared` URL.
pub fn apply(config: &mut CacheConfig) -> pwcache::Result<()> {
    match URL.get() {
        Some(Some(url)) => enable(config, url),
        _ => Ok(()),
    }
}

/// Turns the shared tier on at `url`, keeping the rest of `shared_config` (namespace, timeout,
/// cluster...) from the configuration file.
pub fn enable(config: &mut CacheConfig, url: &str) -> pwcache::Result<()> {
    pwcache::tier::redis::connection::check_url(url)
        .map_err(|why| Error::InvalidArgument(format!("--shared / {ENV}: the URL {why}")))?;
    config.shared.enabled = true;
    config.shared.url = url.to_string();
    Ok(())
}

/// The shared tier's row of the `stats` table (with the server's URL masked), when it is on.
pub fn stats_row(config: &CacheConfig, s: &CacheStatistics) -> Option<String> {
    if !config.shared.enabled {
        return None;
    }
    let t = &s.shared_stats;
    Some(format!(
        "{:<10} {:>9} {:>9} {:>7.1}% {:>9} {:>8} {:>8} {:>8} {:>8}  {}\n\
         shared tier: {} namespace {}, shared_degraded: {}",
        "shared",
        t.hits,
        t.misses,
        t.hit_rate * 100.0,
        t.current_size,
        t.evictions_lru,
        t.evictions_ttl,
        t.evictions_health,
        t.evictions_corruption,
        if s.shared_degraded { "DEGRADED" } else { "ok" },
        config.shared.redacted_url(),
        config.shared.namespace,
        s.shared_degraded
    ))
}
