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
///
/// Every string the library returns is JSON written by serde_json (which escapes U+0000 as
/// `\u0000`, so no string value can put a NUL byte into it) or a hex cache key: a NUL byte
/// cannot occur. If one ever did, that is a bug in pwcache, so it panics, which the boundary
/// reports as `PW_PANIC` (it is not a storage error, and cutting the text short would
/// return something else than the result).
pub(crate) fn into_c_string(text: String) -> *mut c_char {
    CString::new(text)
        .expect("a result of pwcache (JSON or a hex key) holds no NUL byte")
        .into_raw()
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

#[cfg(test)]
mod tests {
    use std::ffi::{CStr, CString};

    use super::into_c_string;
    use crate::entry::{CacheEntry, Credentials};
    use crate::time::Timestamp;

    /// A NUL inside a stored string reaches C escaped, not as a byte that would end the text.
    #[test]
    fn a_nul_in_an_entry_is_escaped_in_its_json() {
        let now = Timestamp::parse("2026-12-06T00:00:00Z").unwrap();
        let mut entry = CacheEntry::new("k", "http://h:1", "a\0b", now, 60);
        entry.last_health_error = Some("\0".into());
        let json = entry.to_json(Credentials::Plain);
        let raw = into_c_string(json.clone());
        // SAFETY: `raw` came from `into_c_string` just above and is freed once, here.
        let back = unsafe { CString::from_raw(raw) };
        assert_eq!(CStr::to_str(&back).unwrap(), json);
        assert!(json.contains(r#""source":"a\u0000b""#), "{json}");
    }
}
