//! The commands on one entry: key, get, put, delete, invalidate.

use std::io::Write;

use pwcache::{CacheManager, Credentials, EntryInput, Error, generate_cache_key};

use crate::exit::Failure;
use crate::print;

pub fn key(out: &mut impl Write, url: &str) -> Result<(), Failure> {
    print(out, &generate_cache_key(url))
}

pub fn get(out: &mut impl Write, cache: &CacheManager, key: &str) -> Result<(), Failure> {
    log::info!("get {key}");
    match cache.get(key)? {
        Some(entry) => print(out, &entry.to_json(Credentials::Plain)),
        None => Err(Error::NotFound(format!(
            "no live entry under key {key:?} (absent or expired)"
        ))
        .into()),
    }
}

pub fn put(
    out: &mut impl Write,
    cache: &CacheManager,
    url: String,
    username: Option<String>,
    password: Option<String>,
    source: Option<String>,
    ttl: Option<i64>,
) -> Result<(), Failure> {
    let key = generate_cache_key(&url);
    log::info!(
        "put {key} (username {}, password {})",
        if username.is_some() { "given" } else { "none" },
        if password.is_some() { "given" } else { "none" }
    );
    let mut input = EntryInput::with_url(url);
    input.username = username;
    input.password = password;
    input.source = source;
    input.ttl_seconds = ttl;
    cache.put(&key, input)?;
    print(out, &key)
}

pub fn delete(out: &mut impl Write, cache: &CacheManager, key: &str) -> Result<(), Failure> {
    log::info!("delete {key}");
    cache.delete(key)?;
    print(out, &format!("deleted {key}"))
}

pub fn invalidate(out: &mut impl Write, cache: &CacheManager, key: &str) -> Result<(), Failure> {
    log::info!("invalidate {key}: one failed health check");
    let evicted = cache.invalidate_by_health(key)?;
    print(
        out,
        &if evicted {
            format!("{key} evicted: failure_threshold reached")
        } else {
            format!("{key}: failure recorded")
        },
    )
}
