//! The exit statuses of `pwcache`, and how a failure is reported. Listed in `--help` and in the
//! README; a script may rely on them.

use std::process::ExitCode;

use pwcache::{Error, ErrorKind};

/// The table printed at the end of `--help`.
pub const STATUSES: &str = "\
Exit status:
  0    success
  1    an error (the message is on stderr), including a cache that does not exist yet
  2    bad usage (unknown option, missing argument)
  3    not found: no live entry under that key (get, delete, invalidate)
  4    warm: nothing was loaded, or rows failed (each is listed)
  5    a stored credential cannot be decrypted: the cache was written with another
       encryption key (get)
  130  interrupted by Ctrl-C (warm, export: what was stored is printed)";

pub const NOT_FOUND: u8 = 3;
/// A warm that loaded nothing, or in which some rows failed (a line that is not JSON, a CSV line
/// with a quote left open, a batch that could not be stored). Skipped rows alone (read, but not
/// a proxy) do not change the status when others loaded.
pub const WARM_INCOMPLETE: u8 = 4;
pub const WRONG_KEY: u8 = 5;
pub const INTERRUPTED: u8 = 130;

/// Why a command failed: its message and exit status.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub status: u8,
}

impl Failure {
    pub fn new(status: u8, message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            status,
        }
    }

    /// Prints the message on stderr and returns the status.
    pub fn report(self) -> ExitCode {
        if !self.message.is_empty() {
            eprintln!("pwcache: error: {}", self.message);
        }
        ExitCode::from(self.status)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        match e.kind() {
            ErrorKind::NotFound => Failure::new(NOT_FOUND, e.to_string()),
            ErrorKind::Crypto => Failure::new(
                WRONG_KEY,
                format!(
                    "{e}. The cache holds credentials encrypted with another key than this \
                     one: set the key it was written with (encryption_key in --config, or \
                     PROXYWHIRL_CACHE_ENCRYPTION_KEY; PROXYWHIRL_CACHE_KEY_PREVIOUS for an older \
                     key), or the cache's own key file pwcache.key in its L2 directory"
                ),
            ),
            _ => Failure::new(1, e.to_string()),
        }
    }
}
