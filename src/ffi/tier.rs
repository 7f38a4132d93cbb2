//! `pw_cache_tier_*`: operations on one tier of a cache alone, wrapping the single-tier methods of
//! [`CacheManager`] (`crate::manager::single_tier`).

use std::ffi::{c_char, c_uint};

use super::cache::pw_cache;
use super::guard::guard;
use super::handle::{BoxedHandle, out_opt, out_ptr};
use super::status::pw_status;
use super::strings::{into_c_string, json_arg, text_arg};
use crate::entry::Credentials;
use crate::error::{Error, Result};
use crate::manager::CacheManager;
use crate::manager::single_tier::TierLevel;

/// One tier of a cache, for the pw_cache_tier_* functions.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum pw_tier {
    /// The memory tier.
    PW_TIER_L1 = 1,
    /// The disk tier (JSONL or SQLite, as `l2_backend` says).
    PW_TIER_L2 = 2,
    /// The SQLite tier.
    PW_TIER_L3 = 3,
}

/// A `pw_tier` as C passes it: C may pass any value of the enum's underlying type, so the
/// functions receive an integer and check it. cbindgen writes it as `pw_tier` (cbindgen.toml:
/// `export.rename`, `export.exclude`).
pub type pw_tier_arg = c_uint;

fn tier_level(tier: pw_tier_arg) -> Result<TierLevel> {
    match tier {
        1 => Ok(TierLevel::L1),
        2 => Ok(TierLevel::L2),
        3 => Ok(TierLevel::L3),
        _ => Err(Error::InvalidArgument(format!(
            "`tier` must be PW_TIER_L1 (1), PW_TIER_L2 (2) or PW_TIER_L3 (3), got {tier}"
        ))),
    }
}

/// The cache behind `cache` and the tier `tier` names, with the NULL and range checks.
///
/// # Safety
/// `cache` is NULL or a live handle that stays valid for `'a`.
unsafe fn cache_and_tier<'a>(
    cache: *const pw_cache,
    tier: pw_tier_arg,
) -> Result<(&'a CacheManager, TierLevel)> {
    // SAFETY: forwarded from the caller.
    let cache = unsafe { pw_cache::borrow(cache, "cache") }?;
    Ok((&cache.manager, tier_level(tier)?))
}

/// Tells whether `tier` is in use: enabled in the configuration and, for L2 and L3, not
/// degraded (a degraded tier is skipped until a retry succeeds; see pw_cache_get_statistics()).
///
/// Ownership: `out_enabled` (may be NULL) receives the answer; it is false on any status other
/// than `PW_OK`.
///
/// Returns:
/// - `PW_OK` on success;
/// - `PW_INVALID_ARGUMENT` if `cache` is NULL or `tier` is not a pw_tier;
/// - `PW_PANIC` on a bug.
///
/// Threading: may run concurrently with any call on the same handle.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_tier_enabled(
    cache: *mut pw_cache,
    tier: pw_tier_arg,
    out_enabled: *mut bool,
) -> pw_status {
    guard("pw_cache_tier_enabled", || {
        // SAFETY: the header's contract: `out_enabled` is NULL or writable.
        let out = unsafe { out_opt(out_enabled) };
        // SAFETY: the header's contract: `cache` is NULL or a live handle.
        let (manager, tier) = unsafe { cache_and_tier(cache, tier) }?;
        if let Some(out) = out {
            *out = manager.tier_enabled(tier);
        }
        Ok(())
    })
}

/// Returns, as JSON, the entry that `tier` alone stores under `key`, without counting a read:
/// no promotion, no `access_count` or statistics change, no move in the eviction order. An
/// expired entry the tier still stores is returned as it is. Before the lookup, an entry
/// evicted from L1 under `key` and still awaiting its write-back is written to L2/L3.
///
/// The JSON object is in the pw_cache_get() format (credentials in plain text).
///
/// Ownership: `key` is borrowed. On `PW_OK`, `*out_entry_json` receives a string the caller
/// owns and frees with pw_string_free(); on any other status it is NULL.
///
/// Returns:
/// - `PW_OK` when the tier stores an entry under `key`;
/// - `PW_NOT_FOUND` when it stores none;
/// - `PW_INVALID_ARGUMENT` if `cache`, `key` or `out_entry_json` is NULL, `key` is empty or not
///   UTF-8, or `tier` is not a pw_tier;
/// - `PW_UNSUPPORTED` if the configuration disables `tier`;
/// - `PW_STORAGE_ERROR` if the tier cannot be read or is degraded;
/// - `PW_CRYPTO_ERROR` if a credential of the entry cannot be decrypted with the key;
/// - `PW_PANIC` on a bug.
///
/// Threading: may run concurrently with any call on the same handle.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_tier_get(
    cache: *mut pw_cache,
    tier: pw_tier_arg,
    key: *const c_char,
    out_entry_json: *mut *mut c_char,
) -> pw_status {
    guard("pw_cache_tier_get", || {
        // SAFETY: the header's contract: `out_entry_json` is NULL or writable.
        let out = unsafe { out_ptr(out_entry_json, "out_entry_json") }?;
        // SAFETY: the header's contract: `cache` is NULL or a live handle.
        let (manager, tier) = unsafe { cache_and_tier(cache, tier) }?;
        // SAFETY: the header's contract: NULL or a NUL-terminated string valid for the call.
        let key = unsafe { text_arg(key, "key") }?;
        let entry = manager.tier_get(tier, key)?.ok_or_else(|| {
            Error::NotFound(format!("{} holds no entry under key {key:?}", tier.name()))
        })?;
        *out = into_c_string(entry.to_json(Credentials::Plain));
        Ok(())
    })
}

/// Stores an entry under `key` in `tier` alone: no write-through to the other tiers. The entry
/// is as for pw_cache_put() (only `proxy_url` required, `key` wins over a `key` field). A full
/// L1 evicts by its policy, and its victims are written back to L2/L3 as after pw_cache_put().
/// Before the write, an entry evicted from L1 under `key` and still awaiting its write-back is
/// written to L2/L3.
///
/// Ownership: `key` and `entry_json` are borrowed for the call.
///
/// Returns:
/// - `PW_OK` when the tier stored the entry;
/// - `PW_INVALID_ARGUMENT` if `cache`, `key` or `entry_json` is NULL, `key` is empty or not
///   UTF-8, or `tier` is not a pw_tier;
/// - `PW_INVALID_JSON` if `entry_json` is not UTF-8, not JSON, has an unknown field, lacks
///   `proxy_url` or has a value of the wrong type or out of bounds (the message names the field);
/// - `PW_INVALID_ARGUMENT` also if `proxy_url` is not a URL `scheme://host[:port]` or its
///   credentials are given twice and differ, as for pw_cache_put();
/// - `PW_UNSUPPORTED` if the configuration disables `tier`;
/// - `PW_STORAGE_ERROR` if the tier cannot be written or is degraded;
/// - `PW_PANIC` on a bug.
///
/// Threading: may run concurrently with any call on the same handle.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_tier_put(
    cache: *mut pw_cache,
    tier: pw_tier_arg,
    key: *const c_char,
    entry_json: *const c_char,
) -> pw_status {
    guard("pw_cache_tier_put", || {
        // SAFETY: the header's contract: `cache` is NULL or a live handle.
        let (manager, tier) = unsafe { cache_and_tier(cache, tier) }?;
        // SAFETY: the header's contract: NULL or NUL-terminated strings valid for the call.
        let key = unsafe { text_arg(key, "key") }?;
        // SAFETY: as above.
        let entry_json = unsafe { json_arg(entry_json, "entry_json") }?;
        manager.tier_put_json(tier, key, entry_json)
    })
}

/// Removes `key` from `tier` alone; the other tiers keep what they hold. Before the removal, an
/// entry evicted from L1 under `key` and still awaiting its write-back is written to L2/L3.
///
/// Ownership: `key` is borrowed for the call.
///
/// Returns:
/// - `PW_OK` when the tier held the key;
/// - `PW_NOT_FOUND` when it did not;
/// - `PW_INVALID_ARGUMENT` if `cache` or `key` is NULL, `key` is empty or not UTF-8, or `tier`
///   is not a pw_tier;
/// - `PW_UNSUPPORTED` if the configuration disables `tier`;
/// - `PW_STORAGE_ERROR` if the tier cannot be written or is degraded;
/// - `PW_PANIC` on a bug.
///
/// Threading: may run concurrently with any call on the same handle.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_tier_delete(
    cache: *mut pw_cache,
    tier: pw_tier_arg,
    key: *const c_char,
) -> pw_status {
    guard("pw_cache_tier_delete", || {
        // SAFETY: the header's contract: `cache` is NULL or a live handle.
        let (manager, tier) = unsafe { cache_and_tier(cache, tier) }?;
        // SAFETY: the header's contract: NULL or a NUL-terminated string valid for the call.
        let key = unsafe { text_arg(key, "key") }?;
        manager.tier_delete(tier, key)
    })
}

/// Counts the entries `tier` stores, expired ones not yet swept included (for L1: the entries
/// it holds, not those awaiting their write-back).
///
/// Ownership: `out_size` (may be NULL) receives the count; it is 0 on any status other than
/// `PW_OK`.
///
/// Returns:
/// - `PW_OK` on success;
/// - `PW_INVALID_ARGUMENT` if `cache` is NULL or `tier` is not a pw_tier;
/// - `PW_UNSUPPORTED` if the configuration disables `tier`;
/// - `PW_STORAGE_ERROR` if the tier cannot be read or is degraded;
/// - `PW_PANIC` on a bug.
///
/// Threading: may run concurrently with any call on the same handle.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_tier_size(
    cache: *mut pw_cache,
    tier: pw_tier_arg,
    out_size: *mut u64,
) -> pw_status {
    guard("pw_cache_tier_size", || {
        // SAFETY: the header's contract: `out_size` is NULL or writable.
        let out = unsafe { out_opt(out_size) };
        // SAFETY: the header's contract: `cache` is NULL or a live handle.
        let (manager, tier) = unsafe { cache_and_tier(cache, tier) }?;
        let size = manager.tier_len(tier)?;
        if let Some(out) = out {
            *out = size;
        }
        Ok(())
    })
}

/// Removes every entry from `tier` alone; the other tiers keep theirs, and the statistics
/// counters are kept. First, every entry evicted from L1 and still awaiting its write-back is
/// written back to L2/L3 (its counters, on the entry they hold; a write-back creates none).
///
/// Ownership: `out_cleared` (may be NULL) receives the number of entries the tier held; it is 0
/// on any status other than `PW_OK`.
///
/// Returns:
/// - `PW_OK` on success;
/// - `PW_INVALID_ARGUMENT` if `cache` is NULL or `tier` is not a pw_tier;
/// - `PW_UNSUPPORTED` if the configuration disables `tier`;
/// - `PW_STORAGE_ERROR` if the tier cannot be cleared or is degraded (it is then cleared when
///   it recovers);
/// - `PW_PANIC` on a bug.
///
/// Threading: may run concurrently with any call on the same handle; it waits for the
/// operations in progress on every key.
#[unsafe(no_mangle)]
pub extern "C" fn pw_cache_tier_clear(
    cache: *mut pw_cache,
    tier: pw_tier_arg,
    out_cleared: *mut u64,
) -> pw_status {
    guard("pw_cache_tier_clear", || {
        // SAFETY: the header's contract: `out_cleared` is NULL or writable.
        let out = unsafe { out_opt(out_cleared) };
        // SAFETY: the header's contract: `cache` is NULL or a live handle.
        let (manager, tier) = unsafe { cache_and_tier(cache, tier) }?;
        let cleared = manager.tier_clear(tier)?;
        if let Some(out) = out {
            *out = cleared;
        }
        Ok(())
    })
}
