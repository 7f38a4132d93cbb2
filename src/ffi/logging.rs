//! `pw_set_logger`: the library's `log` records, forwarded to a C callback.
//!
//! One process-wide [`log::Log`] implementation is installed with [`log::set_logger`] the
//! first time a callback is set; after that, setting or clearing the callback only swaps what
//! it forwards to. The level filter is `log`'s global maximum level, so a record below it costs
//! one comparison.

use std::ffi::{CString, c_char, c_uint, c_void};
use std::sync::OnceLock;

use parking_lot::RecursiveRwLock;

use super::guard::guard;
use super::status::pw_status;
use crate::error::Error;

/// The severity of a log message; a higher value is more verbose.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum pw_log_level {
    /// Something failed (a background sweep, a thread).
    PW_LOG_ERROR = 1,
    /// A tier failed, was degraded, or a file was set aside; the cache goes on.
    PW_LOG_WARN = 2,
    /// A tier opened or recovered; a warm file was loaded.
    PW_LOG_INFO = 3,
    /// Details useful when debugging.
    PW_LOG_DEBUG = 4,
    /// The most verbose details.
    PW_LOG_TRACE = 5,
}

/// A `pw_log_level` as C passes it: C may pass any value of the enum's underlying type, so the
/// function receives an integer and checks it. cbindgen writes it as `pw_log_level`
/// (cbindgen.toml: `export.rename`, `export.exclude`).
pub type pw_log_level_arg = c_uint;

/// A log callback: receives `user_data` as given to pw_set_logger(), the message's level and
/// the message (NUL-terminated UTF-8, valid only during the call; copy it to keep it).
///
/// It may be called from any thread, the library's own background threads included, and from
/// several threads at once. It must return (no longjmp, no C++ exception), and must not call
/// pwcache: a record may be logged while the library holds a cache's locks, which a call from
/// the callback could wait for, on the same thread, for ever (as SQLite asks of its own log
/// callback). Copy the message and act on it later instead.
pub type pw_log_fn = Option<
    unsafe extern "C" fn(user_data: *mut c_void, level: pw_log_level, message: *const c_char),
>;

struct Sink {
    callback: unsafe extern "C" fn(*mut c_void, pw_log_level, *const c_char),
    user_data: *mut c_void,
}

// SAFETY: `user_data` is only handed back to the caller's callback, and the header states that
// the callback may be called from any thread: making that safe is the caller's side of the
// contract.
unsafe impl Send for Sink {}
// SAFETY: as above.
unsafe impl Sync for Sink {}

/// The current callback. Held for reading while a callback runs, so that once pw_set_logger
/// returns the previous callback is never called again. Recursive, so that a callback may call
/// functions that log even while pw_set_logger waits for the lock.
static SINK: RecursiveRwLock<Option<Sink>> = RecursiveRwLock::new(None);

/// Whether our logger is the process's `log` logger (`false`: another one was there first).
static INSTALLED: OnceLock<bool> = OnceLock::new();

struct CLogger;

static LOGGER: CLogger = CLogger;

impl log::Log for CLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let sink = SINK.read();
        let Some(sink) = sink.as_ref() else {
            return;
        };
        let level = match record.level() {
            log::Level::Error => pw_log_level::PW_LOG_ERROR,
            log::Level::Warn => pw_log_level::PW_LOG_WARN,
            log::Level::Info => pw_log_level::PW_LOG_INFO,
            log::Level::Debug => pw_log_level::PW_LOG_DEBUG,
            log::Level::Trace => pw_log_level::PW_LOG_TRACE,
        };
        let text = record.args().to_string().replace('\0', "\u{FFFD}");
        let message = CString::new(text).unwrap_or_default();
        // SAFETY: the caller of pw_set_logger promised a callback that may be called from any
        // thread with its `user_data`; `message` outlives the call.
        unsafe { (sink.callback)(sink.user_data, level, message.as_ptr()) };
    }

    fn flush(&self) {}
}

fn level_filter(level: pw_log_level_arg) -> Option<log::LevelFilter> {
    Some(match level {
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        5 => log::LevelFilter::Trace,
        _ => return None,
    })
}

/// Sends the library's log messages of level `max_level` and more severe to `fn`, or turns
/// logging off when `fn` is NULL (whatever `max_level`). The setting is process-wide and
/// replaces the previous one; logging is off until it is first called.
///
/// Messages never contain credentials or the encryption key.
///
/// Ownership: `user_data` stays the caller's; the library only passes it to `fn`. It must stay
/// valid until logging is turned off or another callback is set: once this function returns,
/// the previous callback is not called again (a call in progress on another thread is waited
/// for).
///
/// Returns:
/// - `PW_OK` on success;
/// - `PW_INVALID_ARGUMENT` if `fn` is not NULL and `max_level` is not a pw_log_level;
/// - `PW_UNSUPPORTED` if the process already has another Rust `log` logger (possible only when
///   pwcache is linked into a Rust program as a Rust library);
/// - `PW_PANIC` on a bug.
///
/// Threading: safe to call from any thread, but not from inside a log callback.
#[unsafe(no_mangle)]
pub extern "C" fn pw_set_logger(
    r#fn: pw_log_fn,
    user_data: *mut c_void,
    max_level: pw_log_level_arg,
) -> pw_status {
    guard("pw_set_logger", || {
        let Some(callback) = r#fn else {
            log::set_max_level(log::LevelFilter::Off);
            *SINK.write() = None;
            return Ok(());
        };
        let filter = level_filter(max_level).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "`max_level` must be PW_LOG_ERROR (1) to PW_LOG_TRACE (5), got {max_level}"
            ))
        })?;
        if !*INSTALLED.get_or_init(|| log::set_logger(&LOGGER).is_ok()) {
            return Err(Error::Unsupported(
                "another Rust logger is installed in this process".into(),
            ));
        }
        *SINK.write() = Some(Sink {
            callback,
            user_data,
        });
        log::set_max_level(filter);
        Ok(())
    })
}
