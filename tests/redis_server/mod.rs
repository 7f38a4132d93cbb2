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
use std::sync::{Mutex, OnceLock};
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
        Some(RedisServer::start_on(free_port(), extra, password))
    }

    /// A server on `port` (redis-server is known to be installed).
    fn start_on(port: u16, extra: &[&str], password: Option<&str>) -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
            args: extra.iter().map(|s| s.to_string()).collect(),
            password: password.map(str::to_string),
        };
        server.spawn();
        server
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

/// Three servers made one Redis Cluster: each master serves a third of the slots.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// A three-master cluster on free ports (each with its cluster bus on another free port);
    /// `None` (test skipped) when redis-server is missing. Takes a few seconds.
    pub fn start(test: &str) -> Option<RedisCluster> {
        if !available(test) {
            return None;
        }
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                let bus = free_port().to_string();
                RedisServer::start_on(
                    free_port(),
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-port",
                        &bus,
                        "--cluster-node-timeout",
                        "2000",
                    ],
                    None,
                )
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&created.stdout),
            String::from_utf8_lossy(&created.stderr)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_ok();
        Some(cluster)
    }

    /// Waits (at most 20 s) until every node says the cluster is ok and knows all three
    /// masters.
    fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = self.nodes.iter().all(|n| {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut n.connection())
                    .unwrap_or_default();
                info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3")
            });
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster never became ok");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The seed URL a cache uses (`shared_config.cluster` true).
    pub fn url(&self) -> String {
        self.nodes[0].url()
    }

    /// The node that serves `key`'s slot.
    pub fn node_of(&self, key: &str) -> &RedisServer {
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.nodes[0].connection())
            .unwrap();
        self.nodes
            .iter()
            .find(|n| {
                let owns: Vec<(u16, u16)> = redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query::<Vec<redis::Value>>(&mut n.connection())
                    .unwrap()
                    .into_iter()
                    .filter_map(|range| match range {
                        redis::Value::Array(parts) => {
                            let master_port = match &parts[2] {
                                redis::Value::Array(m) => {
                                    redis::from_redis_value_ref::<u16>(&m[1]).ok()
                                }
                                _ => None,
                            };
                            (master_port == Some(n.port)).then(|| {
                                (
                                    redis::from_redis_value_ref(&parts[0]).unwrap(),
                                    redis::from_redis_value_ref(&parts[1]).unwrap(),
                                )
                            })
                        }
                        _ => None,
                    })
                    .collect();
                owns.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot))
            })
            .expect("a node serves every slot")
    }

    /// Every byte the cluster holds for keys matching `pattern`, all nodes together.
    pub fn dump(&self, pattern: &str) -> Vec<u8> {
        self.nodes.iter().flat_map(|n| n.dump(pattern)).collect()
    }
}

/// The cluster every test of one test process shares (see [`shared_cluster`]).
static SHARED_CLUSTER: Mutex<Option<RedisCluster>> = Mutex::new(None);
static SHARED_CLUSTER_STARTED: OnceLock<bool> = OnceLock::new();

/// Runs `f` on one cluster shared by every test of this test process (starting a cluster takes
/// seconds; tests keep apart by namespace): `None` (skipped) when redis-server is missing. The
/// servers are started by a thread that lives as long as the process, so the parent-death
/// signal kills them when the process ends, and an exit handler stops them and removes their
/// directories first.
pub fn shared_cluster<T>(test: &str, f: impl FnOnce(&RedisCluster) -> T) -> Option<T> {
    let started = *SHARED_CLUSTER_STARTED.get_or_init(|| {
        if !available(test) {
            return false;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let name = test.to_string();
        std::thread::spawn(move || {
            let _ = tx.send(RedisCluster::start(&name));
            loop {
                std::thread::park();
            }
        });
        let cluster = rx.recv().expect("the cluster did not start");
        *SHARED_CLUSTER.lock().unwrap_or_else(|e| e.into_inner()) = cluster;
        // SAFETY: registers a plain function without arguments.
        unsafe {
            libc::atexit(stop_shared_cluster);
        }
        true
    });
    if !started {
        return None;
    }
    let guard = SHARED_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    Some(f(guard.as_ref().expect("the shared cluster runs")))
}

extern "C" fn stop_shared_cluster() {
    if let Ok(mut cluster) = SHARED_CLUSTER.lock() {
        cluster.take();
    }
}

/// A server that also listens with TLS, its certificate signed by a throwaway CA made with the
/// `openssl` command for this server only.
pub struct TlsRedisServer {
    pub server: RedisServer,
    pub tls_port: u16,
    /// The CA's certificate (PEM), for `shared_config.tls_ca_file`.
    pub ca_file: std::path::PathBuf,
    _files: tempfile::TempDir,
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TlsRedisServer {
    /// `None` (test skipped) when redis-server or openssl is missing; with
    /// `PWCACHE_REQUIRE_REDIS` set, a panic instead.
    pub fn start(test: &str) -> Option<TlsRedisServer> {
        if !available(test) {
            return None;
        }
        let has_openssl = Command::new("openssl")
            .arg("version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !has_openssl {
            if std::env::var_os("PWCACHE_REQUIRE_REDIS").is_some() {
                panic!("{test}: openssl is not installed and PWCACHE_REQUIRE_REDIS is set");
            }
            eprintln!(
                "SKIPPED {test}: the openssl command is not installed (apt-get install openssl)"
            );
            return None;
        }
        let files = tempfile::tempdir().unwrap();
        let dir = files.path();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=pwcache test CA"];
        ca.extend(ec);
        ca.extend(["-keyout", "ca.key", "-out", "ca.crt"]);
        openssl(dir, &ca);
        let mut csr = vec!["req", "-subj", "/CN=127.0.0.1"];
        csr.extend(ec);
        csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
        openssl(dir, &csr);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.crt",
            ],
        );
        let tls_port = free_port();
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let (cert, key, ca_crt) = (path("server.crt"), path("server.key"), path("ca.crt"));
        let server = RedisServer::start_on(
            free_port(),
            &[
                "--tls-port",
                &tls_port.to_string(),
                "--tls-cert-file",
                &cert,
                "--tls-key-file",
                &key,
                "--tls-ca-cert-file",
                &ca_crt,
                "--tls-auth-clients",
                "no",
            ],
            None,
        );
        Some(TlsRedisServer {
            server,
            tls_port,
            ca_file: dir.join("ca.crt"),
            _files: files,
        })
    }

    /// The `rediss://` URL of the TLS port.
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}/0", self.tls_port)
    }
}

// ---- handles on a pool ------------------------------------------------------------------------

/// `base` with the shared tier on `url` under `namespace`, its calls timing out after
/// `timeout_ms`, and the fleet-wide failure threshold the fleet tests use (3).
pub fn on_pool(
    base: pwcache::CacheConfig,
    url: &str,
    namespace: &str,
    timeout_ms: u64,
) -> pwcache::CacheConfig {
    pwcache::CacheConfig {
        shared: pwcache::SharedConfig {
            enabled: true,
            url: url.to_string(),
            namespace: namespace.to_string(),
            timeout_ms,
            ..pwcache::SharedConfig::default()
        },
        failure_threshold: 3,
        ..base
    }
}

/// Opens a handle on `config` and waits (at most 10 s) until its notice listener is subscribed:
/// until then it reads past L1, which a test of L1 coherence must not take for coherence.
pub fn open_coherent(config: pwcache::CacheConfig) -> pwcache::CacheManager {
    let cache = pwcache::CacheManager::open(config).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cache.is_coherent() {
        assert!(
            Instant::now() < deadline,
            "the notice listener never subscribed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    cache
}

/// Two coherent handles, each with its own local tiers in a directory of its own, on the
/// configurations `config` makes for those directories. The directories come first, so that
/// `let (_dirs, a, b) = ...` drops them after the handles.
pub fn two_handles(
    config: impl Fn(&std::path::Path) -> pwcache::CacheConfig,
) -> (
    [tempfile::TempDir; 2],
    pwcache::CacheManager,
    pwcache::CacheManager,
) {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = open_coherent(config(dirs[0].path()));
    let b = open_coherent(config(dirs[1].path()));
    (dirs, a, b)
}

/// Reads `key` through `cache`, which must serve it with `url`: whether L1 served it (a poll
/// of this waits until a handle's L1 keeps a copy of an entry another handle put).
pub fn served_from_l1(cache: &pwcache::CacheManager, key: &str, url: &str) -> bool {
    let before = cache.statistics().l1_stats.hits;
    let got = cache.get(key).unwrap().map(|e| e.proxy_url);
    assert_eq!(got.as_deref(), Some(url), "{key}");
    cache.statistics().l1_stats.hits > before
}
