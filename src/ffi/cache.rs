//! `pw_cache`: the cache handle, wrapping [`CacheManager`].

use std::ffi::c_char;
use std::path::Path;

use serde::Deserialize;

use super::guard::guard;
use super::handle::{BoxedHandle, out_opt, out_opt_ptr, out_ptr};
use super::status::pw_status;
use super::strings::{into_c_string, json_arg, opt_json_arg, text_arg};
use crate::config::CacheConfig;
use crate::entry::Credentials;
use crate::error::{Error, Result};
use crate::key::generate_cache_key;
use crate::manager::CacheManager;

/// A cache: an in-memory tier (L1) over up to two persistent tiers (L2, L3).
///
/// Created by pw_cache_new() and freed by pw_cache_free(). Every function taking a `pw_cache *`
/// may be called from many threads at once on the same handle.
pub struct pw_cache {
    pub(crate) manager: CacheManager,
}

impl BoxedHandle for pw_cache {
    const NAME: &'static str = "pw_cache";
}

/// Opens a cache.
///
/// `config_json` is a CacheConfig JSON object (every key optional, unknown keys rejected), or
/// NULL for the defaults. The empty string is not a configuration. A persistent
/// tier that cannot be used when the cache opens does not make this fail: it starts degraded, a
/// warning is logged and the statistics show it.
///
/// `shared_config` (off by default) joins the cache to a fleet: `{"enabled": true, "url":
/// "redis://[user:password@]host[:port][/db]" (or `rediss://` for TLS), "namespace": "default",
/// "timeout_ms": 250, "max_entries": null, "eviction_policy": "lru", "cluster": false,
/// "tls_ca_file": null}`. With `"cluster": true` the URL names one node of a Redis Cluster (a
/// seed: the others are learned from it, redirections are followed, and a pool's keys share one
/// hash slot). `tls_ca_file` names a PEM file of the certificate authorities to trust for
/// `rediss://` instead of the system's. A tier in Redis (6 or later, or Valkey) then sits
/// between L1 and L2 and is the fleet's truth while it answers:
/// - a get that misses L1 asks it before L2 and L3; a hit in L2 or L3 is copied into it; a put
///   writes through it; a delete or a health eviction removes the key from it, and no handle
///   brings back from its own disk tiers a copy fetched before the fleet deleted the key;
/// - pw_cache_invalidate_by_health() counts failures fleet-wide in one atomic step on the server:
///   of all handles and processes reporting, exactly one evicts, at exactly `failure_threshold`;
/// - once a put, delete or eviction returns on one handle, the other handles of the fleet stop
///   serving the old value from their L1 within 100 ms (a notice on the namespace's channel);
///   a handle that loses that notice connection serves nothing from L1 until it is back;
/// - Redis expires each entry itself at its `expires_at`; credentials are stored only as Fernet
///   tokens (every process must use the same `encryption_key` or environment key); keys are
///   `pwcache:{<namespace>}:...`, so pools with other namespaces on one server never meet;
/// - when the server is down or slow, every call still answers from the local tiers within
///   about `timeout_ms`, the statistics show `shared_degraded`, and the tier is retried by
///   itself with the same back-off as the disk tiers.
///
/// The URL's password never appears in a log line, an error message or the statistics.
///
/// Ownership: `config_json` is borrowed for the call. On `PW_OK`, `*out_cache` receives a new
/// handle that the caller owns and frees with pw_cache_free(); on any other status it is NULL.
///
/// Returns:
/// - `PW_OK` on success;
/// - `PW_INVALID_ARGUMENT` if `out_cache` is NULL, or `shared_config.tls_ca_file` cannot be
///   read or holds no usable certificate;
/// - `PW_INVALID_JSON` if `config_json` is "", not UTF-8, not JSON, of the wrong shape or type,
///   out of bounds or has an unknown key;
/// - `PW_INVALID_JSON` also for a malformed `shared_config.url` (the message never quotes it),
///   a namespace other than 1 to 64 of `A-Z a-z 0-9 . _ -`, `timeout_ms` outside 1..60000, or
///   a `tls_ca_file` with a `redis://` URL;
/// - `PW_CRYPTO_ERROR` if the encryption key (configuration or environment) is not a Fernet key,
///   or if `shared_config` is enabled with no key in the configuration or the environment (a
///   key file per directory would differ from process to process);
/// - `PW_UNSUPPORTED` if a SQLite tier is enabled and the process's SQLite library is older than
///   3.35.0 or lacks the JSON functions (the message names the version found);
/// - `PW_STORAGE_ERROR` if `shared_config` is enabled and the thread that listens for the
///   fleet's notices cannot be created (a tier that cannot be opened is not an error: it starts
///   degraded);
/// - `PW_PANIC` on a bug.
///
/// Threading: safe to call from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_new(
    config_json: *const c_char,
    out_cache: *mut *mut pw_cache,
) -> pw_status {
    guard("pw_cache_new", || {
        // SAFETY: the header's contract: `out_cache` is NULL or writable.
        let out = unsafe { out_ptr(out_cache, "out_cache") }?;
        // SAFETY: the header's contract: `config_json` is NULL or a NUL-terminated string.
        let config = match unsafe { opt_json_arg(config_json, "config_json") }? {
            None => CacheConfig::default(),
            Some("") => {
                return Err(Error::InvalidJson(
                    "the configuration is the empty string; pass NULL for the defaults".into(),
                ));
            }
            Some(text) => CacheConfig::from_json(text)?,
        };
        let manager = CacheManager::open(config)?;
        *out = pw_cache { manager }.into_raw();
        Ok(())
    })
}

/// Closes a cache and frees its handle.
///
/// Access counters held in memory are written to the persistent tiers, and the cache's own
/// background cleanup (`enable_background_cleanup`) is stopped. A pw_ttl created on this cache
/// keeps working: it holds the cache's state until it is freed itself. When the last of them
/// is freed, the handle's statistics counters (hits, misses, evictions, promotions; nothing
/// when it counted nothing) are added to `pwcache_stats.json` in `l2_cache_dir`, the totals of
/// every closed handle that `pwcache stats` shows (a failure to write them is logged, not
/// returned).
///
/// Ownership: takes `cache`, which is invalid afterwards. NULL is a no-op.
///
/// Threading: no other call may use `cache` during or after this call.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_free(cache: *mut pw_cache) {
    super::guard::guard_value("pw_cache_free", (), || {
        // SAFETY: the header's contract: `cache` is NULL or a live handle no other call uses.
        unsafe { pw_cache::free(cache) }
    })
}

/// Runs `body` on the cache behind `cache`, with the NULL check.
fn with_cache(
    function: &str,
    cache: *const pw_cache,
    body: impl FnOnce(&CacheManager) -> Result<()>,
) -> pw_status {
    guard(function, || {
        // SAFETY: the header's contract: `cache` is NULL or a live handle.
        let cache = unsafe { pw_cache::borrow(cache, "cache") }?;
        body(&cache.manager)
    })
}

/// Stores an entry under `key`, in every enabled tier (write-through).
///
/// `entry_json` is a CacheEntry JSON object; only `proxy_url` is required: `source` defaults to
/// "user", `ttl_seconds` to the source's TTL, `expires_at` to now + `ttl_seconds`. `key` always
/// wins over a `key` field of the entry.
///
/// `proxy_url` must be a URL `scheme://host[:port]` (surrounding whitespace is trimmed). A
/// credential in its userinfo (`http://user:pass@host:port`) is never stored in plain text: the
/// URL is stored without it and the user name and password (percent-decoded) go into `username`
/// and `password`, which are stored encrypted; pw_cache_get() gives them back there. If the
/// userinfo and the `username`/`password` field both give a credential, they must be equal.
///
/// Ownership: `key` and `entry_json` are borrowed for the call.
///
/// Returns:
/// - `PW_OK` when at least one persistent tier (L2, L3, the shared tier) stored the entry, or
///   L1 when it is the only tier enabled: an acknowledged entry outlives the handle;
/// - `PW_INVALID_ARGUMENT` if `cache`, `key` or `entry_json` is NULL, or `key` is empty or not
///   UTF-8;
/// - `PW_INVALID_JSON` if `entry_json` is not UTF-8, not JSON, has an unknown field, lacks
///   `proxy_url` or has a value of the wrong type or out of bounds (the message names the field);
/// - `PW_INVALID_ARGUMENT` also if `proxy_url` is not a URL `scheme://host[:port]` (`"   "`,
///   `"not a url"`, `"10.0.0.1:80"`; the message says what is wrong and never quotes the URL),
///   or if its userinfo gives a user name or password that differs from the `username` or
///   `password` field;
/// - `PW_STORAGE_ERROR` if no enabled persistent tier could store it (every one failed or is
///   skipped while degraded); the entry is then not in L1 either;
/// - `PW_PANIC` on a bug.
///
/// Threading: may run concurrently with any call on the same handle.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_put(
    cache: *mut pw_cache,
    key: *const c_char,
    entry_json: *const c_char,
) -> pw_status {
    with_cache("pw_cache_put", cache, |manager| {
        // SAFETY: the header's contract: NULL or NUL-terminated strings valid for the call.
        let key = unsafe { text_arg(key, "key") }?;
        // SAFETY: as above.
        let entry_json = unsafe { json_arg(entry_json, "entry_json") }?;
        manager.put_json(key, entry_json)
    })
}

/// Stores many entries at once, in every enabled tier, as one batch (one transaction) per tier.
///
/// `entries_json` is a JSON array of entry objects. Each is an entry as for pw_cache_put(), plus
/// a required `key` field: a non-empty string, the key the entry is stored under. Every item is
/// validated before anything is stored: if one is invalid, nothing is stored and the message
/// names the item's 0-based index and the field ("item 2: entry: field `proxy_url` ...").
/// The empty array stores nothing and succeeds. When a key appears twice, the later item wins.
///
/// Ownership: `entries_json` is borrowed for the call. `out_stored` (may be NULL) receives the
/// number of entries stored (the array's length); it is 0 on any status other than `PW_OK`.
///
/// Returns:
/// - `PW_OK` when at least one persistent tier stored the batch (L1 counts only when it is the
///   only tier enabled);
/// - `PW_INVALID_ARGUMENT` if `cache` or `entries_json` is NULL;
/// - `PW_INVALID_JSON` if `entries_json` is not UTF-8, not JSON or not an array, or if an item
///   is not an object, lacks `key` or `proxy_url`, has an unknown field or a value of the wrong
///   type or out of bounds (nothing is stored);
/// - `PW_INVALID_ARGUMENT` also if an item's `proxy_url` is not a URL or its credentials are
///   given twice and differ, as for pw_cache_put() (the message starts "item <index>:"; nothing
///   is stored);
/// - `PW_STORAGE_ERROR` if no enabled persistent tier could store the batch (none of it is
///   left in L1);
/// - `PW_PANIC` on a bug.
///
/// Threading: may run concurrently with any call on the same handle.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_put_many(
    cache: *mut pw_cache,
    entries_json: *const c_char,
    out_stored: *mut u64,
) -> pw_status {
    guard("pw_cache_put_many", || {
        // SAFETY: the header's contract: `out_stored` is NULL or writable.
        let out = unsafe { out_opt(out_stored) };
        // SAFETY: the header's contract: `cache` is NULL or a live handle.
        let cache = unsafe { pw_cache::borrow(cache, "cache") }?;
        // SAFETY: the header's contract: NULL or a NUL-terminated string valid for the call.
        let entries_json = unsafe { json_arg(entries_json, "entries_json") }?;
        let stored = cache.manager.put_many_json(entries_json)?;
        if let Some(out) = out {
            *out = stored;
        }
        Ok(())
    })
}

/// Looks `key` up (L1, then L2, then L3) and returns the entry as JSON.
///
/// A hit counts as an access (`access_count + 1`, `last_accessed = now`) and is promoted into
/// the tiers above the one that held it. The JSON object has the 21 CacheEntry fields in their
/// documented order, with the credentials in plain text. An expired entry is removed and
/// reported as a miss.
///
/// Ownership: `key` is borrowed. On `PW_OK`, `*out_entry_json` receives a string the caller
/// owns and frees with pw_string_free(); on any other status it is NULL.
///
/// Returns:
/// - `PW_OK` on a hit;
/// - `PW_NOT_FOUND` on a miss or an expired entry;
/// - `PW_INVALID_ARGUMENT` if `cache`, `key` or `out_entry_json` is NULL, or `key` is empty or
///   not UTF-8;
/// - `PW_CRYPTO_ERROR` if the entry is stored but its credentials cannot be decrypted with this
///   cache's encryption key (the stored entry is kept);
/// - `PW_STORAGE_ERROR` if L1 does not hold the key and every enabled persistent tier (L2, L3,
///   the shared tier) failed or is skipped while degraded: a miss is reported only when a tier
///   that could hold the entry answered (L1 alone answers only when it is the only tier);
/// - `PW_PANIC` on a bug.
///
/// Threading: may run concurrently with any call on the same handle.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_get(
    cache: *mut pw_cache,
    key: *const c_char,
    out_entry_json: *mut *mut c_char,
) -> pw_status {
    guard("pw_cache_get", || {
        // SAFETY: the header's contract: `out_entry_json` is NULL or writable.
        let out = unsafe { out_ptr(out_entry_json, "out_entry_json") }?;
        // SAFETY: the header's contract: `cache` is NULL or a live handle.
        let cache = unsafe { pw_cache::borrow(cache, "cache") }?;
        // SAFETY: the header's contract: NULL or a NUL-terminated string valid for the call.
        let key = unsafe { text_arg(key, "key") }?;
        let entry = cache
            .manager
            .get(key)?
            .ok_or_else(|| Error::NotFound(format!("no entry under key {key:?}")))?;
        *out = into_c_string(entry.to_json(Credentials::Plain));
        Ok(())
    })
}

/// Removes `key` from every tier.
///
/// Ownership: `key` is borrowed for the call.
///
/// Returns:
/// - `PW_OK` when a tier held the key;
/// - `PW_NOT_FOUND` when no tier held it;
/// - `PW_INVALID_ARGUMENT` if `cache` or `key` is NULL, or `key` is empty or not UTF-8;
/// - `PW_STORAGE_ERROR` if no enabled persistent tier could be written (L1 counts only when it
///   is the only tier enabled); the key is gone from L1 all the same, and each tier that missed
///   the removal drops the key when it recovers;
/// - `PW_PANIC` on a bug.
///
/// Threading: may run concurrently with any call on the same handle.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_delete(cache: *mut pw_cache, key: *const c_char) -> pw_status {
    with_cache("pw_cache_delete", cache, |manager| {
        // SAFETY: the header's contract: NULL or a NUL-terminated string valid for the call.
        let key = unsafe { text_arg(key, "key") }?;
        manager.delete(key)
    })
}

/// Removes every entry from every tier. Statistics counters other than the sizes are kept.
///
/// Ownership: `out_cleared` (may be NULL) receives the number of distinct keys removed; it is
/// 0 on any status other than `PW_OK`.
///
/// Returns:
/// - `PW_OK` on success;
/// - `PW_INVALID_ARGUMENT` if `cache` is NULL;
/// - `PW_STORAGE_ERROR` if no enabled tier could be cleared;
/// - `PW_PANIC` on a bug.
///
/// Threading: may run concurrently with any call on the same handle.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_clear(cache: *mut pw_cache, out_cleared: *mut u64) -> pw_status {
    guard("pw_cache_clear", || {
        // SAFETY: the header's contract: `out_cleared` is NULL or writable.
        let out = unsafe { out_opt(out_cleared) };
        // SAFETY: the header's contract: `cache` is NULL or a live handle.
        let cache = unsafe { pw_cache::borrow(cache, "cache") }?;
        let cleared = cache.manager.clear()?;
        if let Some(out) = out {
            *out = cleared;
        }
        Ok(())
    })
}

/// Records a failed health check of `key`.
///
/// The entry's `failure_count` goes up by one and its `health_status` becomes "unhealthy" in
/// every tier that holds it. When `failure_count` reaches `failure_threshold` (and
/// `health_check_invalidation` is on), the key is removed from every tier.
///
/// Ownership: `key` is borrowed. `out_evicted` (may be NULL) receives true when the key was
/// removed; it is false on any status other than `PW_OK`.
///
/// Returns:
/// - `PW_OK` on success;
/// - `PW_NOT_FOUND` if the key is absent or expired (an expired entry is removed);
/// - `PW_INVALID_ARGUMENT` if `cache` or `key` is NULL, or `key` is empty or not UTF-8;
/// - `PW_STORAGE_ERROR` if no enabled tier could be used;
/// - `PW_PANIC` on a bug.
///
/// Threading: may run concurrently with any call on the same handle.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_invalidate_by_health(
    cache: *mut pw_cache,
    key: *const c_char,
    out_evicted: *mut bool,
) -> pw_status {
    guard("pw_cache_invalidate_by_health", || {
        // SAFETY: the header's contract: `out_evicted` is NULL or writable.
        let out = unsafe { out_opt(out_evicted) };
        // SAFETY: the header's contract: `cache` is NULL or a live handle.
        let cache = unsafe { pw_cache::borrow(cache, "cache") }?;
        // SAFETY: the header's contract: NULL or a NUL-terminated string valid for the call.
        let key = unsafe { text_arg(key, "key") }?;
        let evicted = cache.manager.invalidate_by_health(key)?;
        if let Some(out) = out {
            *out = evicted;
        }
        Ok(())
    })
}

/// Returns the cache's statistics as a JSON object (`l1_stats`, `l2_stats`, `l3_stats`,
/// `promotions`, `demotions`, `l1_degraded`..., `overall_hit_rate`, `total_size`, then
/// `shared_stats` and `shared_degraded` for the shared tier of a fleet, all zero and false when
/// it is off; more keys may follow). Reading them changes no counter.
///
/// Ownership: on `PW_OK`, `*out_stats_json` receives a string the caller owns and frees with
/// pw_string_free(); on any other status it is NULL.
///
/// Returns:
/// - `PW_OK` on success;
/// - `PW_INVALID_ARGUMENT` if `cache` or `out_stats_json` is NULL;
/// - `PW_PANIC` on a bug.
///
/// Threading: may run concurrently with any call on the same handle.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_get_statistics(
    cache: *mut pw_cache,
    out_stats_json: *mut *mut c_char,
) -> pw_status {
    guard("pw_cache_get_statistics", || {
        // SAFETY: the header's contract: `out_stats_json` is NULL or writable.
        let out = unsafe { out_ptr(out_stats_json, "out_stats_json") }?;
        // SAFETY: the header's contract: `cache` is NULL or a live handle.
        let cache = unsafe { pw_cache::borrow(cache, "cache") }?;
        *out = into_c_string(cache.manager.statistics().to_json());
        Ok(())
    })
}

/// Loads proxies from a file: `.json` (an array of objects), `.jsonl` or `.csv` (with a header
/// row naming a `proxy_url` column; each record on one line); the extension is matched
/// case-insensitively.
///
/// Each record needs a `proxy_url` that is a URL `scheme://host[:port]` (surrounding whitespace
/// is trimmed; credentials in its userinfo are moved into `username`/`password`, as in
/// pw_cache_put()); `key` defaults to pw_generate_cache_key() of the URL as written and
/// `source` to "warmed". `ttl_override_seconds` >= 0 gives every loaded entry that TTL
/// (0 = already expired); a negative value means none (the `per_source_ttl` or
/// `default_ttl_seconds` rule). A bad record never stops the rest: one that is read but is not
/// a proxy is *skipped*, one that cannot be read (a line that is not JSON, a CSV line with a
/// quote left open) or not stored is *failed*. Each of them is logged as a warning (through
/// pw_set_log_callback()) with its line number (`item` number in a `.json` array) and the
/// reason, and the first 20 are listed in the result.
///
/// Ownership: `path` is borrowed. `out_counts_json` (may be NULL) receives, on `PW_OK`, a
/// string the caller owns and frees with pw_string_free(); it is NULL on any other status:
/// `{"loaded": n, "skipped": n, "failed": n, "problems": [{"line": 3, "outcome": "skipped",
/// "reason": "..."}, ...], "problems_not_listed": n}` (`"item"` instead of `"line"` for a
/// `.json` file; `problems_not_listed` counts the skipped and failed records beyond the 20).
///
/// Returns:
/// - `PW_OK` when the file was read (even if records were skipped or failed);
/// - `PW_INVALID_ARGUMENT` if `cache` or `path` is NULL, or `path` is empty or not UTF-8;
/// - `PW_UNSUPPORTED` if the extension is not `.json`, `.jsonl` or `.csv`;
/// - `PW_IO_ERROR` if the file is missing, unreadable or a directory;
/// - `PW_INVALID_JSON` if a `.json` file does not parse or is not an array (nothing is loaded);
/// - `PW_INVALID_INPUT` if a `.csv` file has no header row, a header row that is not one CSV
///   record, or no `proxy_url` column (the message lists the columns found; nothing is loaded);
/// - `PW_PANIC` on a bug.
///
/// A batch that no enabled tier could store is not an error: its records are counted as failed.
///
/// Threading: may run concurrently with any call on the same handle.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_warm_from_file(
    cache: *mut pw_cache,
    path: *const c_char,
    ttl_override_seconds: i64,
    out_counts_json: *mut *mut c_char,
) -> pw_status {
    guard("pw_cache_warm_from_file", || {
        // SAFETY: the header's contract: `out_counts_json` is NULL or writable.
        let out = unsafe { out_opt_ptr(out_counts_json) };
        // SAFETY: the header's contract: `cache` is NULL or a live handle.
        let cache = unsafe { pw_cache::borrow(cache, "cache") }?;
        // SAFETY: the header's contract: NULL or a NUL-terminated string valid for the call.
        let path = unsafe { text_arg(path, "path") }?;
        let ttl = (ttl_override_seconds >= 0).then_some(ttl_override_seconds);
        let report = cache.manager.warm_from_file(Path::new(path), ttl)?;
        if let Some(out) = out {
            *out = into_c_string(report.to_json());
        }
        Ok(())
    })
}

/// The options of pw_cache_export_to_file().
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExportOptions {
    #[serde(default)]
    include_credentials: bool,
}

/// Parses the options of pw_cache_export_to_file(): a JSON object (serde would also take an
/// array as a struct, so the shape is checked first).
fn parse_export_options(text: &str) -> Result<ExportOptions> {
    let invalid = |e: serde_json::Error| Error::InvalidJson(format!("export options: {e}"));
    let value: serde_json::Value = serde_json::from_str(text).map_err(invalid)?;
    if !value.is_object() {
        return Err(Error::InvalidJson(
            "export options: expected a JSON object".into(),
        ));
    }
    serde_json::from_value(value).map_err(invalid)
}

/// Writes every live entry once to `path`, one pw_cache_get()-format JSON object per line (an
/// empty cache gives an empty file). The file is written to a temporary file and renamed, so
/// readers never see half of it. Statistics and access counts do not change.
///
/// `options_json` is NULL or a JSON object with the optional key `include_credentials` (a
/// bool, default false). Without it, present credentials are written as "***" and so is the
/// userinfo of each `proxy_url`.
///
/// Ownership: `path` and `options_json` are borrowed. `out_counts_json` (may be NULL)
/// receives, on `PW_OK`, a string `{"exported": n, "failed": n}` that the caller owns and frees
/// with pw_string_free(); it is NULL on any other status.
///
/// Returns:
/// - `PW_OK` when the file was written;
/// - `PW_INVALID_ARGUMENT` if `cache` or `path` is NULL, or `path` is empty or not UTF-8;
/// - `PW_INVALID_JSON` if `options_json` is not UTF-8, not a JSON object, has an unknown key or
///   a value of the wrong type;
/// - `PW_IO_ERROR` if the file cannot be written (a directory, a path under a regular file);
/// - `PW_STORAGE_ERROR` if every enabled persistent tier (L2, L3, the shared tier) failed or is
///   skipped while degraded, so the entries cannot all be read (L1 alone is read only when it is
///   the only tier); no file is written;
/// - `PW_PANIC` on a bug.
///
/// Threading: may run concurrently with any call on the same handle.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_export_to_file(
    cache: *mut pw_cache,
    path: *const c_char,
    options_json: *const c_char,
    out_counts_json: *mut *mut c_char,
) -> pw_status {
    guard("pw_cache_export_to_file", || {
        // SAFETY: the header's contract: `out_counts_json` is NULL or writable.
        let out = unsafe { out_opt_ptr(out_counts_json) };
        // SAFETY: the header's contract: `cache` is NULL or a live handle.
        let cache = unsafe { pw_cache::borrow(cache, "cache") }?;
        // SAFETY: the header's contract: NULL or a NUL-terminated string valid for the call.
        let path = unsafe { text_arg(path, "path") }?;
        // SAFETY: as above.
        let options = match unsafe { opt_json_arg(options_json, "options_json") }? {
            None => ExportOptions::default(),
            Some(text) => parse_export_options(text)?,
        };
        let counts = cache
            .manager
            .export_to_file(Path::new(path), options.include_credentials)?;
        if let Some(out) = out {
            *out = into_c_string(counts.to_json());
        }
        Ok(())
    })
}

/// Removes expired entries from every tier now (what a pw_ttl does in the background).
///
/// Ownership: `out_removed` (may be NULL) receives the number of distinct keys removed; it is
/// 0 on any status other than `PW_OK`.
///
/// Returns:
/// - `PW_OK` on success;
/// - `PW_INVALID_ARGUMENT` if `cache` is NULL;
/// - `PW_STORAGE_ERROR` if no enabled tier could be swept;
/// - `PW_PANIC` on a bug.
///
/// Threading: may run concurrently with any call on the same handle.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_cleanup_expired(
    cache: *mut pw_cache,
    out_removed: *mut u64,
) -> pw_status {
    guard("pw_cache_cleanup_expired", || {
        // SAFETY: the header's contract: `out_removed` is NULL or writable.
        let out = unsafe { out_opt(out_removed) };
        // SAFETY: the header's contract: `cache` is NULL or a live handle.
        let cache = unsafe { pw_cache::borrow(cache, "cache") }?;
        let removed = cache.manager.cleanup_expired()?;
        if let Some(out) = out {
            *out = removed;
        }
        Ok(())
    })
}

/// Computes the cache key of a proxy URL: the first 16 hexadecimal characters of the SHA-256
/// of its UTF-8 bytes (the same keys as proxywhirl).
///
/// Ownership: `proxy_url` is borrowed. On `PW_OK`, `*out_key` receives a string the caller
/// owns and frees with pw_string_free(); on any other status it is NULL.
///
/// Returns:
/// - `PW_OK` on success;
/// - `PW_INVALID_ARGUMENT` if `proxy_url` or `out_key` is NULL, or `proxy_url` is empty or not
///   UTF-8;
/// - `PW_PANIC` on a bug.
///
/// Threading: safe to call from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn pw_generate_cache_key(
    proxy_url: *const c_char,
    out_key: *mut *mut c_char,
) -> pw_status {
    guard("pw_generate_cache_key", || {
        // SAFETY: the header's contract: `out_key` is NULL or writable.
        let out = unsafe { out_ptr(out_key, "out_key") }?;
        // SAFETY: the header's contract: NULL or a NUL-terminated string valid for the call.
        let url = unsafe { text_arg(proxy_url, "proxy_url") }?;
        *out = into_c_string(generate_cache_key(url));
        Ok(())
    })
}
