//! `pw_ttl`: the background sweeper, wrapping [`TtlManager`].

use super::cache::pw_cache;
use super::guard::{guard, guard_value};
use super::handle::{BoxedHandle, out_ptr};
use super::status::pw_status;
use crate::manager::TtlManager;

/// A background sweeper that removes expired entries from every tier of one cache.
///
/// Created stopped by pw_ttl_new(), freed by pw_ttl_free(). It keeps its cache's state alive, so
/// the cache handle may be freed before it.
pub struct pw_ttl {
    manager: TtlManager,
}

impl BoxedHandle for pw_ttl {
    const NAME: &'static str = "pw_ttl";
}

/// Creates a stopped sweeper over `cache` that, once started, sweeps every
/// `cleanup_interval_seconds` (fractions allowed): more than 0 and at most 31536000 (365 days).
/// A sweep that fails or panics is logged and the next one runs on schedule; the thread ends
/// only by pw_ttl_stop() or pw_ttl_free().
///
/// Ownership: `cache` is borrowed for the call; the new sweeper shares the cache's state, so
/// `cache` may be freed before it. On `PW_OK`, `*out_ttl` receives a handle the caller owns and
/// frees with pw_ttl_free(); on any other status it is NULL.
///
/// Returns:
/// - `PW_OK` on success;
/// - `PW_INVALID_ARGUMENT` if `cache` or `out_ttl` is NULL, or the interval is ≤ 0, NaN,
///   infinite or longer than 31536000 seconds (the message names the bound);
/// - `PW_PANIC` on a bug.
///
/// Threading: may run concurrently with any call on the same cache.
#[unsafe(no_mangle)]
pub extern "C" fn pw_ttl_new(
    cache: *mut pw_cache,
    cleanup_interval_seconds: f64,
    out_ttl: *mut *mut pw_ttl,
) -> pw_status {
    guard("pw_ttl_new", || {
        // SAFETY: the header's contract: `out_ttl` is NULL or writable.
        let out = unsafe { out_ptr(out_ttl, "out_ttl") }?;
        // SAFETY: the header's contract: `cache` is NULL or a live handle.
        let cache = unsafe { pw_cache::borrow(cache, "cache") }?;
        let manager = TtlManager::new(&cache.manager, cleanup_interval_seconds)?;
        *out = pw_ttl { manager }.into_raw();
        Ok(())
    })
}

/// Starts the background thread: it sweeps at once, then every interval. Starting a running
/// sweeper is a no-op; starting a stopped one runs it again.
///
/// Returns:
/// - `PW_OK` on success;
/// - `PW_INVALID_ARGUMENT` if `ttl` is NULL;
/// - `PW_PANIC` if the thread cannot be created, or on a bug.
///
/// Threading: may run concurrently with any call on the same handle.
#[unsafe(no_mangle)]
pub extern "C" fn pw_ttl_start(ttl: *mut pw_ttl) -> pw_status {
    guard("pw_ttl_start", || {
        // SAFETY: the header's contract: `ttl` is NULL or a live handle.
        unsafe { pw_ttl::borrow(ttl, "ttl") }?.manager.start();
        Ok(())
    })
}

/// Stops the background thread and waits for it to end. It returns promptly: a sweeper waiting
/// for its next interval is woken, and one in the middle of a sweep finishes that sweep first.
/// Stopping a stopped sweeper is a no-op.
///
/// Returns:
/// - `PW_OK` on success;
/// - `PW_INVALID_ARGUMENT` if `ttl` is NULL;
/// - `PW_PANIC` on a bug.
///
/// Threading: may run concurrently with any call on the same handle. Do not call it from the
/// log callback (pw_set_logger()), which may be running on the sweeper's thread.
#[unsafe(no_mangle)]
pub extern "C" fn pw_ttl_stop(ttl: *mut pw_ttl) -> pw_status {
    guard("pw_ttl_stop", || {
        // SAFETY: the header's contract: `ttl` is NULL or a live handle.
        unsafe { pw_ttl::borrow(ttl, "ttl") }?.manager.stop();
        Ok(())
    })
}

/// Tells whether the background thread is running. NULL gives false.
///
/// Threading: may run concurrently with any call on the same handle.
#[unsafe(no_mangle)]
pub extern "C" fn pw_ttl_is_running(ttl: *const pw_ttl) -> bool {
    guard_value("pw_ttl_is_running", false, || {
        // SAFETY: the header's contract: `ttl` is NULL or a live handle.
        unsafe { pw_ttl::borrow(ttl, "ttl") }.is_ok_and(|ttl| ttl.manager.is_running())
    })
}

/// Stops the sweeper (as pw_ttl_stop()) and frees its handle. When the cache handle was freed
/// already, this releases the cache's last resources.
///
/// Ownership: takes `ttl`, which is invalid afterwards. NULL is a no-op.
///
/// Threading: no other call may use `ttl` during or after this call.
#[unsafe(no_mangle)]
pub extern "C" fn pw_ttl_free(ttl: *mut pw_ttl) {
    guard_value("pw_ttl_free", (), || {
        // SAFETY: the header's contract: `ttl` is NULL or a live handle no other call uses.
        unsafe { pw_ttl::free(ttl) }
    })
}
