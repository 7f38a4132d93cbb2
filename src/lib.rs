//! # pwcache
//!
//! A multi-tier cache for proxy pools, a native re-design of the cache of the Python library
//! proxywhirl, usable from Rust and, through a C ABI, from C, C++ and Python.
//!
//! ## Tiers and the data flow
//!
//! ```text
//!   get ─▶ L1 memory ──miss──▶ L2 disk (JSONL or SQLite) ──miss──▶ L3 SQLite
//!            ▲   hit ◀─────── promote ◀───────────────────── promote ┘
//!   put ─▶ L1 + L2 + L3 (write-through); L1's victim is written back below
//! ```
//!
//! - [`tier::memory`] (L1): bounded, LRU/LFU/FIFO in O(1) ([`tier::order`]). Access counters
//!   live here and reach the lower tiers when an entry leaves L1 or the cache closes.
//! - [`tier::jsonl`] or [`tier::sqlite`] (L2) and [`tier::sqlite`] (L3): persistent, shared by
//!   every handle and process on the same paths, readable by proxywhirl (upstream's schemas and
//!   Fernet tokens for credentials, [`crypto`]).
//! - [`manager::CacheManager`] ties them together: promotion, expiry (`now >= expires_at`,
//!   the same boundary everywhere), health invalidation, statistics ([`stats`]), tier degradation
//!   and recovery, bulk warm and export. [`TtlManager`] sweeps expired entries in the
//!   background.
//!
//! Layers know only the layers below them: `ffi` (the C boundary) and the CLI call `manager`,
//! which calls `tier`, which uses `entry`, `config`, `stats`, `crypto` and `error`. The engine
//! never sees a raw pointer, and the FFI layer holds no cache logic.
//!
//! ## Example
//!
//! ```
//! use pwcache::{CacheConfig, CacheManager, EntryInput};
//! let dir = tempfile::tempdir().unwrap();
//! let mut config = CacheConfig::default();
//! config.l2_cache_dir = dir.path().join("l2");
//! config.l3_database_path = dir.path().join("l3.db");
//! let cache = CacheManager::open(config).unwrap();
//! let key = pwcache::generate_cache_key("http://10.0.0.1:8080");
//! cache.put(&key, EntryInput::with_url("http://10.0.0.1:8080")).unwrap();
//! assert_eq!(cache.get(&key).unwrap().unwrap().access_count, 1);
//! ```

pub mod config;
pub mod crypto;
pub mod entry;
pub mod error;
mod fast_hash;
pub mod ffi;
pub mod fsutil;
mod json_object;
pub mod key;
pub mod manager;
pub mod proxy_url;
pub(crate) mod redact;
mod short_wait;
pub mod stats;
pub mod tier;
pub mod time;

pub use config::{CacheConfig, Durability, EvictionPolicy, L2Backend, SharedConfig, TierConfig};
pub use entry::{CacheEntry, Credentials, EntryInput, HealthStatus, Secret};
pub use error::{Error, ErrorKind, Result};
pub use key::generate_cache_key;
pub use manager::single_tier::TierLevel;
pub use manager::{
    CacheManager, ClosedHandleStatistics, ExportCounts, RowOutcome, RowPlace, RowProblem,
    StoreSummary, TierTotals, TtlManager, WARM_PROBLEMS_LISTED, WARM_ROW_LOG_TARGET,
    WRITE_BACK_BATCH, WarmCounts, WarmReport,
};

/// The background sweeper (kept as a path of its own for Rust users).
pub mod ttl {
    pub use crate::manager::{MAX_CLEANUP_INTERVAL_SECONDS, TtlManager};
}
pub use stats::{CacheStatistics, TierStatistics};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
