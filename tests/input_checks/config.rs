//! The configuration JSON (`CacheConfig::from_json`, what `pw_cache_new` parses).
//!
//! Must hold: any text gives a configuration or an `InvalidJson` error; an error never quotes the
//! encryption key or the password of the shared tier's URL; a configuration that parses is valid
//! and round-trips (written back as JSON with every field, it parses to the same configuration).

use pwcache::{CacheConfig, Durability, ErrorKind, EvictionPolicy, L2Backend, TierConfig};
use serde_json::{Value, json};

use super::assert_clean;
use super::secrets;

pub fn check_config_json(text: &str) {
    match CacheConfig::from_json(text) {
        Err(e) => assert_clean("config", &e, &[ErrorKind::InvalidJson]),
        Ok(config) => {
            if let Err(e) = config.validate() {
                panic!("a parsed configuration is invalid: {e}");
            }
            let written = config_to_json(&config);
            let again = CacheConfig::from_json(&written.to_string())
                .unwrap_or_else(|e| panic!("a configuration written back does not parse: {e}"));
            assert!(
                config_to_json(&again) == written
                    && again.cleanup_interval_seconds.to_bits()
                        == config.cleanup_interval_seconds.to_bits(),
                "a configuration changed in a round trip: {written} became {}",
                config_to_json(&again)
            );
        }
    }
    if let Some(planted) = secrets::plant_in_config(text)
        && let Err(e) = CacheConfig::from_json(&planted)
    {
        secrets::assert_not_quoted("config", &e.to_string());
    }
}

/// Every field of `config` as the configuration JSON that gives it.
pub fn config_to_json(config: &CacheConfig) -> Value {
    let policy = |p: EvictionPolicy| match p {
        EvictionPolicy::Lru => "lru",
        EvictionPolicy::Lfu => "lfu",
        EvictionPolicy::Fifo => "fifo",
    };
    let tier = |t: &TierConfig| {
        json!({
            "enabled": t.enabled,
            "max_entries": t.max_entries,
            "eviction_policy": policy(t.eviction_policy),
        })
    };
    let path = |p: &std::path::Path| {
        p.to_str()
            .expect("a path parsed from JSON is UTF-8")
            .to_string()
    };
    json!({
        "l1_config": tier(&config.l1),
        "l2_config": tier(&config.l2),
        "l3_config": tier(&config.l3),
        "l2_backend": match config.l2_backend {
            L2Backend::Jsonl => "jsonl",
            L2Backend::Sqlite => "sqlite",
        },
        "default_ttl_seconds": config.default_ttl_seconds,
        "per_source_ttl": config.per_source_ttl,
        "enable_background_cleanup": config.enable_background_cleanup,
        "cleanup_interval_seconds": config.cleanup_interval_seconds,
        "l2_cache_dir": path(&config.l2_cache_dir),
        "l3_database_path": path(&config.l3_database_path),
        "encryption_key": config.encryption_key,
        "health_check_invalidation": config.health_check_invalidation,
        "failure_threshold": config.failure_threshold,
        "enable_statistics": config.enable_statistics,
        "durability": match config.durability {
            Durability::Normal => "normal",
            Durability::Full => "full",
        },
        "shared_config": {
            "enabled": config.shared.enabled,
            "url": config.shared.url,
            "namespace": config.shared.namespace,
            "timeout_ms": config.shared.timeout_ms,
            "max_entries": config.shared.max_entries,
            "eviction_policy": policy(config.shared.eviction_policy),
        },
    })
}
