//! Which cache a command opens. By default one per user, never the current directory:
//! `$PWCACHE_DIR`, else `$XDG_CACHE_HOME/pwcache`, else `~/.cache/pwcache` (the XDG base
//! directory rules), laid out as proxywhirl lays out its `.cache/`: L2 in `proxies/`, L3 in
//! `db/proxywhirl.db`. A command that only reads or removes refuses to open a cache that does not
//! exist, instead of creating an empty one (about 30 files) and reporting on it.

use std::path::{Path, PathBuf};

use pwcache::{CacheConfig, CacheManager, Error, L2Backend};

use crate::exit::Failure;
use crate::options::{Backend, StoreOptions};

/// Whether a command may create the cache.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// put, warm: a missing cache is created.
    Create,
    /// Everything else: a missing cache is an error that says so.
    Existing,
}

/// The per-user default cache directory.
pub fn default_dir() -> Result<PathBuf, Failure> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("PWCACHE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    // The XDG rules ignore a relative XDG_CACHE_HOME.
    if let Some(dir) = var("XDG_CACHE_HOME").map(PathBuf::from)
        && dir.is_absolute()
    {
        return Ok(dir.join("pwcache"));
    }
    match var("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("pwcache")),
        None => Err(Failure::new(
            1,
            "no default cache: HOME is not set; give --store DIR or set PWCACHE_DIR",
        )),
    }
}

/// L2's directory and L3's database inside a cache directory.
pub fn layout(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("proxies"), dir.join("db").join("proxywhirl.db"))
}

/// The configuration a command runs with (see [`StoreOptions`] for the precedence).
pub fn config(options: &StoreOptions) -> Result<CacheConfig, Failure> {
    let (mut config, sets_l2, sets_l3) = match &options.config {
        None => (CacheConfig::default(), false, false),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::io("cannot read configuration", path, e))?;
            let config = CacheConfig::from_json(&text)?;
            // from_json accepted it, so it is an object; which paths does it set itself?
            let keys: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let sets = |key: &str| keys.get(key).is_some_and(|v| !v.is_null());
            (config, sets("l2_cache_dir"), sets("l3_database_path"))
        }
    };
    if !(sets_l2 && sets_l3) {
        let dir = match &options.store {
            Some(dir) => dir.clone(),
            None => default_dir()?,
        };
        let (l2, l3) = layout(&dir);
        if !sets_l2 {
            config.l2_cache_dir = l2;
        }
        if !sets_l3 {
            config.l3_database_path = l3;
        }
    }
    if let Some(dir) = &options.l2_dir {
        config.l2_cache_dir = dir.clone();
    }
    if let Some(path) = &options.l3_db {
        config.l3_database_path = path.clone();
    }
    if let Some(backend) = options.l2_backend {
        config.l2_backend = match backend {
            Backend::Jsonl => L2Backend::Jsonl,
            Backend::Sqlite => L2Backend::Sqlite,
        };
    }
    crate::shared::apply(&mut config)?;
    Ok(config)
}

/// Whether a persistent tier of `config` has been created (a cache with neither L2 nor L3 on
/// has nothing to create, so it always exists).
pub fn exists(config: &CacheConfig) -> bool {
    let l2 = config.l2.enabled && config.l2_cache_dir.is_dir();
    let l3 = config.l3.enabled && config.l3_database_path.is_file();
    l2 || l3 || !(config.l2.enabled || config.l3.enabled)
}

/// Opens the cache `options` name.
pub fn open(options: &StoreOptions, access: Access) -> Result<CacheManager, Failure> {
    let config = config(options)?;
    if access == Access::Existing && !exists(&config) {
        return Err(Failure::new(
            1,
            format!(
                "no cache at {} (L2 {}, L3 {}): nothing has been stored there yet. `pwcache put` \
                 or `pwcache warm` create it; --store, $PWCACHE_DIR or --config open another",
                common_dir(&config).display(),
                config.l2_cache_dir.display(),
                config.l3_database_path.display()
            ),
        ));
    }
    log::info!(
        "opening the cache: L2 {} ({}), L3 {}",
        config.l2_cache_dir.display(),
        backend_name(config.l2_backend),
        config.l3_database_path.display()
    );
    Ok(CacheManager::open(config)?)
}

pub fn backend_name(backend: L2Backend) -> &'static str {
    match backend {
        L2Backend::Jsonl => "jsonl",
        L2Backend::Sqlite => "sqlite",
    }
}

/// The directory both tiers live under (the --store directory with the default layout).
pub fn common_dir(config: &CacheConfig) -> PathBuf {
    let mut dir = config.l2_cache_dir.clone();
    while !config.l3_database_path.starts_with(&dir) && dir.pop() {}
    if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    }
}
