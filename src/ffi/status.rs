//! `pw_status`, and the one mapping from the engine's [`ErrorKind`] to it.

use crate::error::ErrorKind;

/// The result of every fallible function.
///
/// The values are stable: they are never renumbered or reused, and new ones are only appended.
/// On any status other than `PW_OK`, pw_last_error() returns a message for the calling thread.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum pw_status {
    /// Success.
    PW_OK = 0,
    /// A miss, an expired entry, or an absent key to delete or invalidate.
    PW_NOT_FOUND = 1,
    /// NULL where a pointer is required; a key, URL or path that is empty or not UTF-8; an
    /// interval that is not a finite number > 0; a log level or a tier out of range.
    PW_INVALID_ARGUMENT = 2,
    /// Configuration, entry or options text that is not UTF-8 or not JSON, of the wrong shape or
    /// type, out of bounds, or with an unknown key; the empty string as a configuration.
    PW_INVALID_JSON = 3,
    /// A file that cannot be read or written.
    PW_IO_ERROR = 4,
    /// No enabled tier could do it.
    PW_STORAGE_ERROR = 5,
    /// A warm file of a kind that is not `.json`, `.jsonl` or `.csv`; a logger that cannot be
    /// installed because the process already has another one; a SQLite library too old for the
    /// SQLite tiers; a pw_cache_tier_* function on a tier the configuration disables.
    PW_UNSUPPORTED = 6,
    /// An encryption key (configuration or environment) that is not a Fernet key.
    PW_CRYPTO_ERROR = 7,
    /// A bug in pwcache: a Rust panic was caught at the boundary.
    PW_PANIC = 8,
    /// Malformed input that is not JSON: a `.csv` warm file with no header row, a header row
    /// that is not one CSV record, or no `proxy_url` column (the message lists the columns
    /// found).
    PW_INVALID_INPUT = 9,
}

impl From<ErrorKind> for pw_status {
    fn from(kind: ErrorKind) -> pw_status {
        match kind {
            ErrorKind::NotFound => pw_status::PW_NOT_FOUND,
            ErrorKind::InvalidArgument => pw_status::PW_INVALID_ARGUMENT,
            ErrorKind::InvalidJson => pw_status::PW_INVALID_JSON,
            ErrorKind::InvalidInput => pw_status::PW_INVALID_INPUT,
            ErrorKind::Io => pw_status::PW_IO_ERROR,
            ErrorKind::Storage => pw_status::PW_STORAGE_ERROR,
            ErrorKind::Unsupported => pw_status::PW_UNSUPPORTED,
            ErrorKind::Crypto => pw_status::PW_CRYPTO_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pw_status::*;

    #[test]
    fn values_are_the_published_ones() {
        let published = [
            (PW_OK, 0),
            (PW_NOT_FOUND, 1),
            (PW_INVALID_ARGUMENT, 2),
            (PW_INVALID_JSON, 3),
            (PW_IO_ERROR, 4),
            (PW_STORAGE_ERROR, 5),
            (PW_UNSUPPORTED, 6),
            (PW_CRYPTO_ERROR, 7),
            (PW_PANIC, 8),
            (PW_INVALID_INPUT, 9),
        ];
        for (status, value) in published {
            assert_eq!(status as i32, value, "{status:?}");
        }
    }
}
