//! The connection to the server: the URL (checked once, never printed but masked), a small pool
//! of blocking connections with connect, read and write timeouts, and a short fail-fast window
//! after a network failure so that one call never waits for the timeout more than once.
//!
//! Every error that leaves this file is an [`Error::Storage`] naming the server by its masked
//! URL; the password is also cut out of the client's own message, whatever it says.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::{Client, Connection, IntoConnectionInfo, RedisError};

use crate::error::{Error, Result};
use crate::redact::mask_url_userinfo;

/// Connections kept open between calls.
const IDLE_CONNECTIONS: usize = 8;
/// After a network failure, calls fail at once for this long instead of each waiting for the
/// timeout again: the slot degrades the tier after a few failures and retries it later on a
/// freshly opened tier.
const FAIL_FAST: Duration = Duration::from_millis(1000);

/// Why `url` cannot be used, in words that never quote it (it may hold a password).
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err("must start with redis:// or rediss:// (the URL is not shown)".into());
    }
    match url.into_connection_info() {
        Ok(_) => Ok(()),
        Err(_) => Err(
            "is not a valid Redis URL: redis[s]://[user:password@]host[:port][/db] \
             (the URL is not shown)"
                .into(),
        ),
    }
}

/// The password of a URL's userinfo, as written (to cut it out of messages).
fn password_of(url: &str) -> Option<String> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let userinfo = &rest[..rest.rfind('@')?];
    let password = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
    (!password.is_empty()).then(|| password.to_string())
}

/// A pool of connections to one server.
pub struct Pool {
    client: Client,
    redacted_url: String,
    password: Option<String>,
    timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    /// Run on every new pooled connection (loading the scripts).
    prepare: fn(&mut Connection) -> redis::RedisResult<()>,
    /// Nanoseconds after `epoch` before which calls fail fast; 0 = not failing.
    failing_until: AtomicU64,
    epoch: Instant,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("url", &self.redacted_url)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool for `url` (no connection is made yet).
    pub fn new(
        url: &str,
        timeout: Duration,
        prepare: fn(&mut Connection) -> redis::RedisResult<()>,
    ) -> Result<Pool> {
        let redacted_url = mask_url_userinfo(url).into_owned();
        check_url(url).map_err(|why| Error::InvalidArgument(format!("shared tier URL {why}")))?;
        let client = Client::open(url).map_err(|_| {
            Error::InvalidArgument(format!("shared tier URL {redacted_url} cannot be used"))
        })?;
        Ok(Pool {
            client,
            redacted_url,
            password: password_of(url),
            timeout,
            idle: Mutex::new(Vec::new()),
            prepare,
            failing_until: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A new connection of its own (not pooled), with the timeouts set.
    pub fn connect(&self) -> Result<Connection> {
        self.connect_with(self.timeout)
    }

    fn connect_with(&self, timeout: Duration) -> Result<Connection> {
        let conn = self
            .client
            .get_connection_with_timeout(timeout)
            .and_then(|conn| {
                conn.set_read_timeout(Some(timeout))?;
                conn.set_write_timeout(Some(timeout))?;
                Ok(conn)
            })
            .map_err(|e| self.error("cannot connect", &e))?;
        Ok(conn)
    }

    /// Runs `f` on a pooled connection. A connection that saw an error is dropped (its replies
    /// may be out of step); a network error starts the fail-fast window.
    pub fn with<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let until = self.failing_until.load(Ordering::Acquire);
        if until != 0 && (self.epoch.elapsed().as_nanos() as u64) < until {
            return Err(Error::Storage(format!(
                "shared tier {}: {what}: the server failed a moment ago, not retrying yet",
                self.redacted_url
            )));
        }
        let idle = self.idle.lock().pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => {
                let mut conn = self.connect().inspect_err(|_| self.start_failing())?;
                if let Err(e) = (self.prepare)(&mut conn) {
                    self.start_failing();
                    return Err(self.error(what, &e));
                }
                conn
            }
        };
        match f(&mut conn) {
            Ok(value) => {
                let mut idle = self.idle.lock();
                if idle.len() < IDLE_CONNECTIONS && redis::ConnectionLike::is_open(&conn) {
                    idle.push(conn);
                }
                Ok(value)
            }
            Err(e) => {
                if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
                    self.start_failing();
                    self.idle.lock().clear();
                }
                Err(self.error(what, &e))
            }
        }
    }

    fn start_failing(&self) {
        let until = self.epoch.elapsed() + FAIL_FAST;
        self.failing_until
            .store(until.as_nanos() as u64, Ordering::Release);
    }

    /// A storage error about `what`, the URL masked and the password cut out.
    pub fn error(&self, what: &str, e: &RedisError) -> Error {
        let mut detail = e.to_string();
        if let Some(password) = &self.password {
            detail = detail.replace(password.as_str(), "***");
        }
        Error::Storage(format!(
            "shared tier {}: {what}: {detail}",
            self.redacted_url
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_without_quoting_them() {
        assert!(check_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(check_url("rediss://u:p@h:6380").is_ok());
        assert!(check_url("redis://:pw@h").is_ok());
        for bad in [
            "http://h",
            "redis://h:70000",
            "s3cret",
            "redis://u:s3cret@h/x",
        ] {
            let why = check_url(bad).unwrap_err();
            assert!(!why.contains("s3cret") && !why.contains(bad), "{why}");
        }
    }

    #[test]
    fn the_password_is_found_to_be_cut_out() {
        assert_eq!(password_of("redis://u:p@ss@h:1").as_deref(), Some("p@ss"));
        assert_eq!(password_of("redis://:pw@h").as_deref(), Some("pw"));
        assert_eq!(password_of("redis://h:1"), None);
    }
}
