//! The connection to the server: the URL (checked once, never printed but masked), a small pool
//! of blocking connections with connect, read and write timeouts, and a short fail-fast window
//! after a network failure so that one call never waits for the timeout more than once.
//!
//! The server is one Redis (or Valkey) or a Redis Cluster (`shared_config.cluster`), reached
//! through the URL's node as a seed: a [`Conn`] hides which, so the tier's code is the same for
//! both. On a cluster the crate's sync `ClusterConnection` learns the masters from the seed and
//! follows MOVED and ASK redirects; every call of the tier touches one hash tag, so one slot,
//! and a pipeline goes to one master. `rediss://` uses TLS (rustls), trusting the system's
//! certificate authorities or those of `shared_config.tls_ca_file`.
//!
//! Every error that leaves this file is an [`Error::Storage`] naming the server by its masked
//! URL; the password is also cut out of the client's own message, whatever it says.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::cluster::{ClusterClient, ClusterConnection, cluster_pipe};
use redis::{
    Client, Cmd, Connection, ConnectionLike, FromRedisValue, IntoConnectionInfo, RedisError,
    RedisResult, TlsCertificates, Value,
};

use crate::config::SharedConfig;
use crate::error::{Error, Result};
use crate::redact::mask_url_userinfo;

/// Connections kept open between calls.
const IDLE_CONNECTIONS: usize = 8;
/// After a network failure, calls fail at once for this long instead of each waiting for the
/// timeout again: the slot degrades the tier after a few failures and retries it later on a
/// freshly opened tier.
const FAIL_FAST: Duration = Duration::from_millis(1000);
/// How often a cluster call is tried again after a redirect or a node's failure: a redirect
/// needs one more try; more would multiply the time a call may take by a dead node.
const CLUSTER_RETRIES: u32 = 2;

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

/// A connection to one server or to a cluster; the tier's calls take it as a
/// [`ConnectionLike`] and run pipelines through [`Conn::pipeline`].
pub enum Conn {
    Single(Connection),
    Cluster(Box<ClusterConnection>),
}

impl ConnectionLike for Conn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_command(cmd),
            Conn::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }

    fn supports_pipelining(&self) -> bool {
        match self {
            Conn::Single(c) => c.supports_pipelining(),
            Conn::Cluster(c) => c.supports_pipelining(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Conn::Single(c) => c.check_connection(),
            Conn::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Conn::Single(c) => c.is_open(),
            Conn::Cluster(c) => c.is_open(),
        }
    }
}

impl Conn {
    /// Runs `commands` in one pipeline (one round trip); the replies in order. On a cluster the
    /// crate's cluster pipeline routes each command by its key, which for the tier's commands
    /// is always the same slot.
    pub fn pipeline<T: FromRedisValue>(&mut self, commands: Vec<Cmd>) -> RedisResult<T> {
        match self {
            Conn::Single(c) => {
                let mut pipe = redis::pipe();
                for command in commands {
                    pipe.add_command(command);
                }
                pipe.query(c)
            }
            Conn::Cluster(c) => {
                let mut pipe = cluster_pipe();
                for command in commands {
                    pipe.add_command(command);
                }
                pipe.query(c)
            }
        }
    }
}

/// A pool of connections to one server or cluster.
pub struct Pool {
    /// The URL's node: the server, or the cluster's seed, on which the notice listener
    /// subscribes (the cluster client has no pub/sub; a PUBLISH reaches every node of a
    /// cluster, so one node is enough).
    client: Client,
    /// With `shared_config.cluster`: the cluster, for the pooled connections.
    cluster: Option<ClusterClient>,
    redacted_url: String,
    password: Option<String>,
    timeout: Duration,
    idle: Mutex<Vec<Conn>>,
    /// Run on every new pooled connection (loading the scripts).
    prepare: fn(&mut Conn) -> redis::RedisResult<()>,
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

/// The certificate authorities of `shared.tls_ca_file`, if it names one.
fn tls_certificates(shared: &SharedConfig) -> Result<Option<TlsCertificates>> {
    let Some(path) = &shared.tls_ca_file else {
        return Ok(None);
    };
    let pem = std::fs::read(path).map_err(|e| {
        Error::InvalidArgument(format!(
            "shared_config.tls_ca_file {path:?} cannot be read: {e}"
        ))
    })?;
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(Error::InvalidArgument(format!(
            "shared_config.tls_ca_file {path:?} holds no PEM certificate"
        )));
    }
    Ok(Some(TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    }))
}

impl Pool {
    /// A pool for the server of `shared` (no connection is made yet).
    pub fn new(
        shared: &SharedConfig,
        prepare: fn(&mut Conn) -> redis::RedisResult<()>,
    ) -> Result<Pool> {
        let url = shared.url.as_str();
        let timeout = Duration::from_millis(shared.timeout_ms);
        let redacted_url = mask_url_userinfo(url).into_owned();
        check_url(url).map_err(|why| Error::InvalidArgument(format!("shared tier URL {why}")))?;
        let certificates = tls_certificates(shared)?;
        let unusable = |e: RedisError| {
            Error::InvalidArgument(match &shared.tls_ca_file {
                Some(path) => format!(
                    "shared tier URL {redacted_url} with shared_config.tls_ca_file {path:?} \
                     cannot be used: {:?}",
                    e.kind()
                ),
                None => format!("shared tier URL {redacted_url} cannot be used"),
            })
        };
        let single = || match &certificates {
            Some(certs) => Client::build_with_tls(url, certs.clone()),
            None => Client::open(url),
        };
        let cluster = if shared.cluster {
            let mut builder = ClusterClient::builder([url])
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .retries(CLUSTER_RETRIES)
                .min_retry_wait(5)
                .max_retry_wait(50);
            if let Some(certs) = &certificates {
                builder = builder.certs(certs.clone());
            }
            Some(builder.build().map_err(unusable)?)
        } else {
            None
        };
        Ok(Pool {
            client: single().map_err(unusable)?,
            cluster,
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

    /// A new plain connection to the URL's node (not pooled), with the timeouts set: the
    /// notice listener's.
    pub fn connect(&self) -> Result<Connection> {
        self.client
            .get_connection_with_timeout(self.timeout)
            .and_then(|conn| {
                conn.set_read_timeout(Some(self.timeout))?;
                conn.set_write_timeout(Some(self.timeout))?;
                Ok(conn)
            })
            .map_err(|e| self.error("cannot connect", &e))
    }

    /// A new connection for the pool: to the server, or to every master of the cluster.
    fn connect_pooled(&self) -> Result<Conn> {
        match &self.cluster {
            None => self.connect().map(Conn::Single),
            Some(cluster) => {
                let conn = cluster
                    .get_connection()
                    .and_then(|conn| {
                        conn.set_read_timeout(Some(self.timeout))?;
                        conn.set_write_timeout(Some(self.timeout))?;
                        Ok(conn)
                    })
                    .map_err(|e| self.error("cannot connect to the cluster", &e))?;
                Ok(Conn::Cluster(Box::new(conn)))
            }
        }
    }

    /// Runs `f` on a pooled connection. A connection that saw an error is dropped (its replies
    /// may be out of step); a network error starts the fail-fast window.
    pub fn with<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Conn) -> redis::RedisResult<T>,
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
                let mut conn = self
                    .connect_pooled()
                    .inspect_err(|_| self.start_failing())?;
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
                if idle.len() < IDLE_CONNECTIONS && conn.is_open() {
                    idle.push(conn);
                }
                Ok(value)
            }
            Err(e) => {
                if e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_cluster_error()
                {
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
