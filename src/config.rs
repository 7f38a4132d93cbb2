//! The cache configuration, the JSON object `pw_cache_new` takes: parsed once, with unknown keys
//! rejected at any depth, validated once, then read-only.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::entry::parse_json;
use crate::error::{Error, Result};

/// Which entry a full tier gives up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvictionPolicy {
    /// Least recently used.
    #[default]
    Lru,
    /// Least frequently used; ties go to the least recently used.
    Lfu,
    /// First in, first out: the oldest insertion, whatever its use.
    Fifo,
}

/// The storage of the L2 tier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum L2Backend {
    /// JSON Lines files under `l2_cache_dir`.
    #[default]
    Jsonl,
    /// `<l2_cache_dir>/l2_cache.db`.
    Sqlite,
}

/// What a write has survived when it returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// A process crash (the data is in the operating system's hands).
    #[default]
    Normal,
    /// Power loss too: fsync before a write returns.
    Full,
}

/// One tier's settings, defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierConfig {
    pub enabled: bool,
    /// `None` = unbounded.
    pub max_entries: Option<u64>,
    pub eviction_policy: EvictionPolicy,
}

/// The shared tier's settings (`shared_config`), defaults applied. Its URL may carry a password:
/// the `Debug` form masks it, and nothing prints the URL but through
/// [`SharedConfig::redacted_url`].
#[derive(Clone, PartialEq, Eq)]
pub struct SharedConfig {
    pub enabled: bool,
    /// `redis://[user:password@]host[:port][/db]` or `rediss://` (TLS).
    pub url: String,
    /// Keeps pools on one server apart: every key is `pwcache:{<namespace>}:...`.
    pub namespace: String,
    /// Connect, read and write timeout of every call to the server, in milliseconds.
    pub timeout_ms: u64,
    /// `None` = unbounded.
    pub max_entries: Option<u64>,
    pub eviction_policy: EvictionPolicy,
    /// `url` is a seed node of a Redis Cluster: the client learns the other masters from it and
    /// follows MOVED/ASK redirects (a pool's keys share one hash tag, so one slot).
    pub cluster: bool,
    /// A PEM file of the certificate authorities to trust for `rediss://` instead of the
    /// system's (a private CA); `None` = the system's.
    pub tls_ca_file: Option<String>,
}

impl Default for SharedConfig {
    fn default() -> Self {
        SharedConfig {
            enabled: false,
            url: "redis://127.0.0.1:6379/0".into(),
            namespace: "default".into(),
            timeout_ms: 250,
            max_entries: None,
            eviction_policy: EvictionPolicy::Lru,
            cluster: false,
            tls_ca_file: None,
        }
    }
}

impl SharedConfig {
    /// The URL with its userinfo masked, for log lines and messages.
    pub fn redacted_url(&self) -> String {
        crate::redact::mask_url_userinfo(&self.url).into_owned()
    }

    fn validate(&self) -> Result<()> {
        crate::tier::redis::connection::check_url(&self.url)
            .map_err(|why| invalid(format!("field `shared_config.url` {why}")))?;
        let namespace_ok = !self.namespace.is_empty()
            && self.namespace.len() <= 64
            && self
                .namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !namespace_ok {
            return Err(invalid(format!(
                "field `shared_config.namespace` must be 1 to 64 of A-Z a-z 0-9 . _ -, got {:?}",
                self.namespace
            )));
        }
        if !(1..=60_000).contains(&self.timeout_ms) {
            return Err(invalid(format!(
                "field `shared_config.timeout_ms` must be 1 to 60000, got {}",
                self.timeout_ms
            )));
        }
        if let Some(path) = &self.tls_ca_file {
            if !self.url.starts_with("rediss://") {
                return Err(invalid(
                    "field `shared_config.tls_ca_file` needs a rediss:// URL (TLS)".into(),
                ));
            }
            if path.is_empty() {
                return Err(invalid(
                    "field `shared_config.tls_ca_file` must be a path or null, got \"\"".into(),
                ));
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for SharedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedConfig")
            .field("enabled", &self.enabled)
            .field("url", &self.redacted_url())
            .field("namespace", &self.namespace)
            .field("timeout_ms", &self.timeout_ms)
            .field("max_entries", &self.max_entries)
            .field("eviction_policy", &self.eviction_policy)
            .field("cluster", &self.cluster)
            .field("tls_ca_file", &self.tls_ca_file)
            .finish()
    }
}

/// The whole configuration, defaults applied and validated.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    pub l1: TierConfig,
    pub l2: TierConfig,
    pub l2_backend: L2Backend,
    pub l3: TierConfig,
    pub default_ttl_seconds: i64,
    pub per_source_ttl: BTreeMap<String, i64>,
    pub enable_background_cleanup: bool,
    pub cleanup_interval_seconds: f64,
    pub l2_cache_dir: PathBuf,
    pub l3_database_path: PathBuf,
    /// A Fernet key. Never logged, never in an error message.
    pub encryption_key: Option<String>,
    pub health_check_invalidation: bool,
    pub failure_threshold: i64,
    pub enable_statistics: bool,
    pub durability: Durability,
    /// The shared tier of a fleet (off by default).
    pub shared: SharedConfig,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            l1: TierConfig {
                enabled: true,
                max_entries: Some(1000),
                eviction_policy: EvictionPolicy::Lru,
            },
            l2: TierConfig {
                enabled: true,
                max_entries: Some(5000),
                eviction_policy: EvictionPolicy::Lru,
            },
            l2_backend: L2Backend::Jsonl,
            l3: TierConfig {
                enabled: true,
                max_entries: None,
                eviction_policy: EvictionPolicy::Lru,
            },
            default_ttl_seconds: 3600,
            per_source_ttl: BTreeMap::new(),
            enable_background_cleanup: false,
            cleanup_interval_seconds: 60.0,
            l2_cache_dir: PathBuf::from(".cache/proxies"),
            l3_database_path: PathBuf::from(".cache/db/proxywhirl.db"),
            encryption_key: None,
            health_check_invalidation: true,
            failure_threshold: 3,
            enable_statistics: true,
            durability: Durability::Normal,
            shared: SharedConfig::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TierConfigJson {
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    max_entries: Option<Option<i64>>,
    eviction_policy: Option<EvictionPolicy>,
}

/// Tells `"max_entries": null` (unbounded) from a missing key (the tier's default).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheConfigJson {
    l1_config: Option<TierConfigJson>,
    l2_config: Option<TierConfigJson>,
    l2_backend: Option<L2Backend>,
    l3_config: Option<TierConfigJson>,
    default_ttl_seconds: Option<i64>,
    per_source_ttl: Option<BTreeMap<String, i64>>,
    enable_background_cleanup: Option<bool>,
    cleanup_interval_seconds: Option<f64>,
    l2_cache_dir: Option<String>,
    l3_database_path: Option<String>,
    encryption_key: Option<String>,
    health_check_invalidation: Option<bool>,
    failure_threshold: Option<i64>,
    enable_statistics: Option<bool>,
    durability: Option<Durability>,
    shared_config: Option<SharedConfigJson>,
    /// Upstream keys that are accepted and have no effect.
    #[serde(rename = "ttl_cleanup_interval")]
    _ttl_cleanup_interval: Option<serde_json::Number>,
    #[serde(rename = "statistics_interval")]
    _statistics_interval: Option<serde_json::Number>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SharedConfigJson {
    enabled: Option<bool>,
    url: Option<String>,
    namespace: Option<String>,
    timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    max_entries: Option<Option<i64>>,
    eviction_policy: Option<EvictionPolicy>,
    cluster: Option<bool>,
    tls_ca_file: Option<String>,
}

fn apply_shared(json: Option<SharedConfigJson>) -> Result<SharedConfig> {
    let base = SharedConfig::default();
    let Some(json) = json else { return Ok(base) };
    let max_entries = match json.max_entries {
        None | Some(None) | Some(Some(0)) => None,
        Some(Some(n)) if n < 0 => {
            return Err(invalid(format!(
                "field `shared_config.max_entries` must be >= 0 or null, got {n}"
            )));
        }
        Some(Some(n)) => Some(n as u64),
    };
    Ok(SharedConfig {
        enabled: json.enabled.unwrap_or(base.enabled),
        url: json.url.unwrap_or(base.url),
        namespace: json.namespace.unwrap_or(base.namespace),
        timeout_ms: json.timeout_ms.unwrap_or(base.timeout_ms),
        max_entries,
        eviction_policy: json.eviction_policy.unwrap_or(base.eviction_policy),
        cluster: json.cluster.unwrap_or(base.cluster),
        tls_ca_file: json.tls_ca_file,
    })
}

fn invalid(msg: String) -> Error {
    Error::InvalidJson(format!("config: {msg}"))
}

fn apply_tier(name: &str, base: TierConfig, json: Option<TierConfigJson>) -> Result<TierConfig> {
    let Some(json) = json else { return Ok(base) };
    let max_entries = match json.max_entries {
        None => base.max_entries,
        Some(None) | Some(Some(0)) => None,
        Some(Some(n)) if n < 0 => {
            return Err(invalid(format!(
                "field `{name}.max_entries` must be >= 0 or null, got {n}"
            )));
        }
        Some(Some(n)) => Some(n as u64),
    };
    Ok(TierConfig {
        enabled: json.enabled.unwrap_or(base.enabled),
        max_entries,
        eviction_policy: json.eviction_policy.unwrap_or(base.eviction_policy),
    })
}

impl CacheConfig {
    /// Parses the JSON configuration. Every key is optional; the empty string is not a
    /// configuration (callers pass no text at all for the defaults).
    pub fn from_json(text: &str) -> Result<CacheConfig> {
        let json: CacheConfigJson = parse_json("config", text)?;
        let d = CacheConfig::default();
        let config = CacheConfig {
            l1: apply_tier("l1_config", d.l1, json.l1_config)?,
            l2: apply_tier("l2_config", d.l2, json.l2_config)?,
            l2_backend: json.l2_backend.unwrap_or(d.l2_backend),
            l3: apply_tier("l3_config", d.l3, json.l3_config)?,
            default_ttl_seconds: json.default_ttl_seconds.unwrap_or(d.default_ttl_seconds),
            per_source_ttl: json.per_source_ttl.unwrap_or_default(),
            enable_background_cleanup: json
                .enable_background_cleanup
                .unwrap_or(d.enable_background_cleanup),
            cleanup_interval_seconds: json
                .cleanup_interval_seconds
                .unwrap_or(d.cleanup_interval_seconds),
            l2_cache_dir: json
                .l2_cache_dir
                .map(PathBuf::from)
                .unwrap_or(d.l2_cache_dir),
            l3_database_path: json
                .l3_database_path
                .map(PathBuf::from)
                .unwrap_or(d.l3_database_path),
            encryption_key: json.encryption_key,
            health_check_invalidation: json
                .health_check_invalidation
                .unwrap_or(d.health_check_invalidation),
            failure_threshold: json.failure_threshold.unwrap_or(d.failure_threshold),
            enable_statistics: json.enable_statistics.unwrap_or(d.enable_statistics),
            durability: json.durability.unwrap_or(d.durability),
            shared: apply_shared(json.shared_config)?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the bounds: `default_ttl_seconds` >= 1, `per_source_ttl` values >= 0,
    /// `cleanup_interval_seconds` a finite number > 0, `failure_threshold` >= 1, and the two paths
    /// not empty; with `shared_config.enabled`, a well-formed `redis://` or `rediss://` URL (the
    /// message never quotes it), a namespace of 1 to 64 of `A-Z a-z 0-9 . _ -` and a timeout of
    /// 1 to 60000 ms. [`CacheConfig::from_json`] calls it; Rust callers who build a config by hand get
    /// it from `CacheManager::open`.
    pub fn validate(&self) -> Result<()> {
        if self.default_ttl_seconds < 1 {
            return Err(invalid(format!(
                "field `default_ttl_seconds` must be >= 1, got {}",
                self.default_ttl_seconds
            )));
        }
        if let Some((source, ttl)) = self.per_source_ttl.iter().find(|(_, t)| **t < 0) {
            return Err(invalid(format!(
                "field `per_source_ttl.{source}` must be >= 0, got {ttl}"
            )));
        }
        checked_interval(
            "field `cleanup_interval_seconds`",
            self.cleanup_interval_seconds,
        )
        .map_err(invalid)?;
        if self.failure_threshold < 1 {
            return Err(invalid(format!(
                "field `failure_threshold` must be >= 1, got {}",
                self.failure_threshold
            )));
        }
        for (name, path) in [
            ("l2_cache_dir", &self.l2_cache_dir),
            ("l3_database_path", &self.l3_database_path),
        ] {
            if path.as_os_str().is_empty() {
                return Err(invalid(format!("field `{name}` must not be empty")));
            }
        }
        if self.shared.enabled {
            self.shared.validate()?;
        }
        Ok(())
    }

    /// The TTL of an entry from `source` that carries none of its own.
    pub fn ttl_for_source(&self, source: &str) -> i64 {
        self.per_source_ttl
            .get(source)
            .copied()
            .unwrap_or(self.default_ttl_seconds)
    }
}

/// The longest cleanup interval: 365 days. Longer ones are refused (a sweeper that never runs is
/// `enable_background_cleanup: false`); with this bound the deadline arithmetic cannot overflow.
pub const MAX_CLEANUP_INTERVAL_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// The interval as a [`std::time::Duration`], or why it is refused (`what` names it in the message).
pub(crate) fn checked_interval(
    what: &str,
    seconds: f64,
) -> std::result::Result<std::time::Duration, String> {
    if seconds.is_finite()
        && seconds > 0.0
        && seconds <= MAX_CLEANUP_INTERVAL_SECONDS
        && let Ok(interval) = std::time::Duration::try_from_secs_f64(seconds)
    {
        return Ok(interval);
    }
    // `{:e}` keeps 1e300 readable; small values print as they are.
    let got = if seconds.abs() >= 1e9 {
        format!("{seconds:e}")
    } else {
        format!("{seconds}")
    };
    Err(format!(
        "{what} must be a finite number of seconds > 0 and <= {} (365 days), got {got}",
        MAX_CLEANUP_INTERVAL_SECONDS as u64
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_object_gives_the_defaults() {
        let c = CacheConfig::from_json("{}").unwrap();
        assert_eq!(c.l1.max_entries, Some(1000));
        assert_eq!(c.l2.max_entries, Some(5000));
        assert_eq!(c.l3.max_entries, None);
        assert_eq!(c.default_ttl_seconds, 3600);
    }

    #[test]
    fn partial_tier_objects_keep_the_tier_defaults() {
        let c = CacheConfig::from_json(r#"{"l2_config":{"eviction_policy":"lfu"}}"#).unwrap();
        assert_eq!(c.l2.max_entries, Some(5000));
        assert_eq!(c.l2.eviction_policy, EvictionPolicy::Lfu);
        let c = CacheConfig::from_json(r#"{"l1_config":{"max_entries":null}}"#).unwrap();
        assert_eq!(c.l1.max_entries, None);
        let c = CacheConfig::from_json(r#"{"l1_config":{"max_entries":0}}"#).unwrap();
        assert_eq!(c.l1.max_entries, None);
    }

    #[test]
    fn unknown_keys_are_rejected_at_any_depth_naming_them() {
        let e = CacheConfig::from_json(r#"{"l1_max_size":3}"#).unwrap_err();
        assert!(e.to_string().contains("l1_max_size"), "{e}");
        let e = CacheConfig::from_json(r#"{"l1_config":{"size":3}}"#).unwrap_err();
        assert!(e.to_string().contains("size"), "{e}");
        assert!(
            CacheConfig::from_json(r#"{"ttl_cleanup_interval":10,"statistics_interval":5}"#)
                .is_ok()
        );
    }

    #[test]
    fn bounds_are_checked() {
        for bad in [
            r#"{"default_ttl_seconds":0}"#,
            r#"{"failure_threshold":0}"#,
            r#"{"cleanup_interval_seconds":0}"#,
            r#"{"cleanup_interval_seconds":-1.5}"#,
            r#"{"cleanup_interval_seconds":9223372036854775808}"#,
            r#"{"cleanup_interval_seconds":31536000.5}"#,
            r#"{"l3_config":{"max_entries":-1}}"#,
            r#"{"per_source_ttl":{"a":-1}}"#,
            r#"{"l2_backend":"redis"}"#,
            r#"{"l1_config":{"eviction_policy":"random"}}"#,
            r#"{"durability":"paranoid"}"#,
            r#"{"default_ttl_seconds":"60"}"#,
            "",
            "[]",
        ] {
            assert!(CacheConfig::from_json(bad).is_err(), "{bad}");
        }
        let c = CacheConfig::from_json(r#"{"cleanup_interval_seconds":0.25}"#).unwrap();
        assert_eq!(c.cleanup_interval_seconds, 0.25);
        let c = CacheConfig::from_json(r#"{"cleanup_interval_seconds":31536000}"#).unwrap();
        assert_eq!(c.cleanup_interval_seconds, 31_536_000.0);
    }

    #[test]
    fn shared_config_has_defaults_and_bounds() {
        let c = CacheConfig::from_json("{}").unwrap();
        assert_eq!(c.shared, SharedConfig::default());
        assert!(!c.shared.enabled);
        let c = CacheConfig::from_json(
            r#"{"shared_config":{"enabled":true,"url":"rediss://u:pw@h:6380/2","namespace":"pool-a","timeout_ms":100,"max_entries":10,"eviction_policy":"fifo"}}"#,
        )
        .unwrap();
        assert_eq!(c.shared.max_entries, Some(10));
        assert_eq!(c.shared.redacted_url(), "rediss://***:***@h:6380/2");
        assert!(!format!("{:?}", c.shared).contains("pw@"));
        for bad in [
            r#"{"shared_config":{"enabled":true,"namespace":"a:b"}}"#,
            r#"{"shared_config":{"enabled":true,"namespace":""}}"#,
            r#"{"shared_config":{"enabled":true,"timeout_ms":0}}"#,
            r#"{"shared_config":{"enabled":true,"url":"http://h:1"}}"#,
            r#"{"shared_config":{"enabled":true,"url":"redis://h:notaport"}}"#,
            r#"{"shared_config":{"max_entries":-1}}"#,
            r#"{"shared_config":{"host":"h"}}"#,
        ] {
            assert!(CacheConfig::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_malformed_shared_url_is_invalid_json_without_the_password() {
        for url in [
            "redis://user:s3cr3t-pw@host:99999/0",
            "redis://user:s3cr3t-pw@/0",
            "rediss://:s3cr3t-pw@host:6379/x",
            "s3cr3t-pw",
        ] {
            let text = format!(r#"{{"shared_config":{{"enabled":true,"url":"{url}"}}}}"#);
            let e = CacheConfig::from_json(&text).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidJson, "{url}");
            assert!(!e.to_string().contains("s3cr3t"), "{url}: {e}");
            assert!(e.to_string().contains("shared_config.url"), "{e}");
        }
        let c = CacheConfig::from_json(r#"{"cleanup_interval_seconds":0.25}"#).unwrap();
        assert_eq!(c.cleanup_interval_seconds, 0.25);
    }
}
