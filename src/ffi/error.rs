//! The calling thread's last error message, read by `pw_last_error`.

use std::cell::RefCell;
use std::ffi::{CString, c_char};

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error. Interior NUL bytes, which C cannot see, are
/// replaced.
pub(crate) fn set(message: &str) {
    let text = CString::new(message.replace('\0', "\u{FFFD}")).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = text);
}

/// Forgets this thread's last error (a call that succeeds leaves "").
pub(crate) fn clear() {
    LAST_ERROR.with(|last| {
        let mut last = last.borrow_mut();
        if !last.is_empty() {
            *last = CString::default();
        }
    });
}

/// The message of the last call on the calling thread that returned a status other than
/// `PW_OK`, or "" when the last such call succeeded (or none was made).
///
/// Ownership: the string belongs to the library; do not free it. It stays valid on this thread
/// until the next call into the library from this thread; copy it to keep it.
///
/// Threading: each thread has its own last error; safe to call from any thread. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn pw_last_error() -> *const c_char {
    // Reading a thread-local cannot panic, except while the thread is being torn down; then the
    // static empty string is returned.
    LAST_ERROR
        .try_with(|last| last.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// This thread's last error as Rust text (for tests).
#[cfg(test)]
pub(crate) fn last() -> String {
    LAST_ERROR.with(|last| last.borrow().to_string_lossy().into_owned())
}
