//! The library's version: `pw_version()` at run time and the `PW_VERSION_*` macros of the
//! header at compile time. The macros are literals (cbindgen copies them into the header);
//! the tests below check them against Cargo.toml.

use std::ffi::c_char;

/// The major version of the header (the `x` of x.y.z).
pub const PW_VERSION_MAJOR: u32 = 0;
/// The minor version of the header (the `y` of x.y.z).
pub const PW_VERSION_MINOR: u32 = 1;
/// The patch version of the header (the `z` of x.y.z).
pub const PW_VERSION_PATCH: u32 = 0;
/// The header's version as one number, MAJOR * 10000 + MINOR * 100 + PATCH (0.1.0 is 100), for
/// `#if PW_VERSION_NUMBER >= ...` tests.
pub const PW_VERSION_NUMBER: u32 = 100;

static VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
) {
    Ok(version) => version,
    Err(_) => panic!("the crate version has no NUL byte"),
};

/// The library's version, "MAJOR.MINOR.PATCH" (e.g. "0.1.0"): the version of the library
/// actually loaded, which may differ from the header's PW_VERSION_* macros.
///
/// Ownership: a static string; do not free it. Never NULL.
///
/// Threading: safe to call from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn pw_version() -> *const c_char {
    VERSION.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(text: &str) -> u32 {
        text.parse().unwrap()
    }

    #[test]
    fn macros_match_the_crate_version() {
        let (major, minor, patch) = (
            part(env!("CARGO_PKG_VERSION_MAJOR")),
            part(env!("CARGO_PKG_VERSION_MINOR")),
            part(env!("CARGO_PKG_VERSION_PATCH")),
        );
        assert_eq!(
            (PW_VERSION_MAJOR, PW_VERSION_MINOR, PW_VERSION_PATCH),
            (major, minor, patch)
        );
        assert_eq!(PW_VERSION_NUMBER, major * 10000 + minor * 100 + patch);
        assert!(
            minor < 100 && patch < 100,
            "the packed number needs minor, patch < 100"
        );
    }

    #[test]
    fn pw_version_is_the_crate_version() {
        // SAFETY: pw_version returns a static NUL-terminated string.
        let version = unsafe { std::ffi::CStr::from_ptr(pw_version()) };
        assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
