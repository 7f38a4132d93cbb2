//! Real `redis-server` processes for the tests: each on a free loopback port, with no
//! persistence and its own temporary directory, killed (SIGKILL) when dropped, and also when
//! the thread that started it ends (the parent-death signal), so a failed test leaves none
//! behind.
//!
//! When `redis-server` is not installed, [`RedisServer::start`] returns `None` after printing
//! why, and the caller skips; with `PWCACHE_REQUIRE_REDIS` set (as `scripts/test-all.sh` and
//! CI do) it panics instead, so CI never skips these tests.
#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    args: Vec<String>,
    password: Option<String>,
}

/// Whether `redis-server` can be run here; prints the skip message when not.
pub fn available(test: &str) -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var_os("PWCACHE_REQUIRE_REDIS").is_some() {
            panic!("{test}: redis-server is not installed and PWCACHE_REQUIRE_REDIS is set");
        }
        eprintln!(
            "SKIPPED {test}: redis-server is not installed (apt-get install redis-server; \
             scripts/test-all.sh installs it)"
        );
    }
    found
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

impl RedisServer {
    /// A server on a free port; `None` (test skipped) when redis-server is missing.
    pub fn start(test: &str) -> Option<RedisServer> {
        RedisServer::start_with(test, &[], None)
    }

    /// A server requiring `password` (`requirepass`).
    pub fn start_with_password(test: &str, password: &str) -> Option<RedisServer> {
        RedisServer::start_with(test, &[], Some(password))
    }

    pub fn start_with(test: &str, extra: &[&str], password: Option<&str>) -> Option<RedisServer> {
        if !available(test) {
            return None;
        }
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            args: extra.iter().map(|s| s.to_string()).collect(),
            password: password.map(str::to_string),
        };
        server.spawn();
        Some(server)
    }

    fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(command.spawn().expect("start redis-server"));
        self.wait_ready();
    }

    /// Waits (at most 10 s) until the server answers PING.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut conn) = redis::Client::open(self.admin_url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                && redis::cmd("PING").query::<String>(&mut conn).is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The URL a cache uses (with the password when there is one).
    pub fn url(&self) -> String {
        self.admin_url()
    }

    fn admin_url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// A plain connection for the test's own inspection.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.admin_url())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap()
    }

    fn signal(&self, signal: i32) {
        let pid = self.child.as_ref().expect("running").id() as i32;
        // SAFETY: a signal to our own child.
        unsafe {
            libc::kill(pid, signal);
        }
    }

    /// SIGSTOP: the server stops answering, connections stay open (a slow server).
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// SIGKILL: the server is gone (its data too: no persistence).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Every byte the server holds, for keys matching `pattern`: names and values.
    pub fn dump(&self, pattern: &str) -> Vec<u8> {
        let mut conn = self.connection();
        let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(&mut conn).unwrap();
        let mut out = Vec::new();
        for key in keys {
            out.extend(key.as_bytes());
            let kind: String = redis::cmd("TYPE").arg(&key).query(&mut conn).unwrap();
            let values: Vec<Vec<u8>> = match kind.as_str() {
                "hash" => redis::cmd("HGETALL").arg(&key).query(&mut conn).unwrap(),
                "string" => vec![redis::cmd("GET").arg(&key).query(&mut conn).unwrap()],
                "zset" => redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query(&mut conn)
                    .unwrap(),
                _ => Vec::new(),
            };
            for v in values {
                out.extend(v);
            }
        }
        out
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A paused server must be resumed for SIGKILL to be reaped promptly.
            let pid = child.id() as i32;
            // SAFETY: signals to our own child.
            unsafe {
                libc::kill(pid, libc::SIGCONT);
            }
        }
        self.kill();
    }
}
