//! C strings in and out.
//!
//! In: NUL-terminated UTF-8, checked here. A key, URL or path that is NULL, not UTF-8 or empty
//! is `PW_INVALID_ARGUMENT`; JSON text that is not UTF-8 is `PW_INVALID_JSON` (NULL JSON text
//! where JSON is required is `PW_INVALID_ARGUMENT`).
//! Out: allocated by `CString::into_raw`, owned by the caller, freed by `pw_string_free`.

use std::ffi::{CStr, CString, c_char};

use super::guard::guard_value;
use crate::error::{Error, Result};

/// A key, URL or path argument: not NULL, UTF-8 and not empty.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string that stays valid and unchanged for `'a`.
pub(crate) unsafe fn text_arg<'a>(ptr: *const c_char, argument: &str) -> Result<&'a str> {
    // SAFETY: forwarded from the caller.
    let text = unsafe { utf8_or(ptr, argument, Error::InvalidArgument) }?;
    if text.is_empty() {
        return Err(Error::InvalidArgument(format!("`{argument}` is empty")));
    }
    Ok(text)
}

/// A JSON text argument: not NULL (`PW_INVALID_ARGUMENT`), UTF-8 (`PW_INVALID_JSON`).
///
/// # Safety
/// As [`text_arg`].
pub(crate) unsafe fn json_arg<'a>(ptr: *const c_char, argument: &str) -> Result<&'a str> {
    // SAFETY: forwarded from the caller.
    unsafe { utf8_or(ptr, argument, Error::InvalidJson) }
}

/// An optional JSON text argument: `None` when NULL.
///
/// # Safety
/// As [`text_arg`].
pub(crate) unsafe fn opt_json_arg<'a>(
    ptr: *const c_char,
    argument: &str,
) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded from the caller.
    unsafe { json_arg(ptr, argument) }.map(Some)
}

/// # Safety
/// As [`text_arg`].
unsafe fn utf8_or<'a>(
    ptr: *const c_char,
    argument: &str,
    not_utf8: fn(String) -> Error,
) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::InvalidArgument(format!("`{argument}` is NULL")));
    }
    // SAFETY: not NULL, and the caller guarantees a NUL-terminated string valid for `'a`.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes
        .to_str()
        .map_err(|e| not_utf8(format!("`{argument}` is not valid UTF-8: {e}")))
}

/// Hands `text` to C: the caller owns the result and frees it with `pw_string_free`.
pub(crate) fn into_c_string(text: String) -> Result<*mut c_char> {
    CString::new(text)
        .map(CString::into_raw)
        .map_err(|_| Error::Storage("the result holds a NUL byte and cannot be returned".into()))
}

/// Frees a string that the library returned through a `char **` out-parameter.
///
/// Ownership: takes back ownership of `s`, which must have come from this library (through a
/// `char **` out-parameter) and not been freed yet; `s` is invalid afterwards. NULL is a no-op.
/// Do not pass the string of pw_version() or pw_last_error().
///
/// Threading: safe to call from any thread, not twice on the same string.
#[unsafe(no_mangle)]
pub extern "C" fn pw_string_free(s: *mut c_char) {
    guard_value("pw_string_free", (), || {
        if !s.is_null() {
            // SAFETY: the header's contract: `s` came from `CString::into_raw` in this library
            // and is freed once.
            drop(unsafe { CString::from_raw(s) });
        }
    })
}
