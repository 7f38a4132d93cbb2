//! A fleet on one pool: handles with separate L2/L3 directories sharing a real `redis-server`
//! (started by the tests on free loopback ports, killed at the end): sharing, coherence of L1
//! within 100 ms, fleet-wide health eviction exactly once across 8 processes, namespaces,
//! credentials never in plain text on the server, the password never in a log line, an error or
//! the statistics, and calls that answer within the timeout while the server is paused or down.
//!
//! Skipped with a message when redis-server is not installed, unless `PWCACHE_REQUIRE_REDIS` is
//! set (scripts/test-all.sh sets it and installs redis-server).
//!
//! Over 700 lines, one idea: the fleet's behaviour on one real server, one test per behaviour
//! (the cluster is in tests/fleet_cluster.rs, the 4-process model in tests/fleet_processes.rs).

mod common;
mod redis_server;

use common::{time_until, url_of};

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use pwcache::{CacheConfig, CacheManager, EntryInput, ErrorKind};
use redis_server::{
    RedisServer, TlsRedisServer, on_pool, open_coherent, served_from_l1, two_handles,
};

const CHILD_ROLE: &str = "PWCACHE_FLEET_CHILD";

/// A handle with its own local tiers under `dir` and the shared tier on `url`/`namespace`.
fn config(dir: &Path, url: &str, namespace: &str) -> CacheConfig {
    on_pool(common::config_in(dir), url, namespace, 200)
}

/// A coherent handle (see [`open_coherent`]) on [`config`].
fn open(dir: &Path, url: &str, namespace: &str) -> CacheManager {
    open_coherent(config(dir, url, namespace))
}

/// Two coherent handles on `namespace` of `server`, with local directories of their own.
fn pair(
    server: &RedisServer,
    namespace: &str,
) -> ([tempfile::TempDir; 2], CacheManager, CacheManager) {
    two_handles(|dir| config(dir, &server.url(), namespace))
}

/// Reads through `cache` (giving the shared tier's slot its retries) until the tier is no
/// longer degraded, for at most 8 s; the time it took.
fn recovered(cache: &CacheManager) -> Option<Duration> {
    time_until(Duration::from_secs(8), || {
        let _ = cache.get("probe");
        !cache.statistics().shared_degraded
    })
}

/// `a` deletes `k`: `b` stops serving it within 100 ms. The time it took.
fn delete_seen_within_100ms(a: &CacheManager, b: &CacheManager) -> Duration {
    a.delete("k").unwrap();
    let took = time_until(Duration::from_secs(2), || url_of(b, "k").is_none())
        .expect("B kept serving a deleted key");
    assert!(
        took < Duration::from_millis(100),
        "delete seen after {took:?}"
    );
    took
}

/// How long a call may take while the server is paused, down or slow: the timeout (200 ms),
/// which a call may pay about once, plus the local tiers' own time.
const CALL_LIMIT: Duration = Duration::from_millis(200 + 300);

/// Runs `f`, the call `what`, which must return within [`CALL_LIMIT`]; the time it took.
fn within_the_limit(what: &str, f: &mut dyn FnMut()) -> Duration {
    let start = Instant::now();
    f();
    let took = start.elapsed();
    assert!(took < CALL_LIMIT, "{what} took {took:?}");
    took
}

#[test]
fn two_handles_with_their_own_directories_share_entries_and_l1_follows_within_100ms() {
    let Some(server) = RedisServer::start("fleet: sharing and coherence") else {
        return;
    };
    let (_dirs, a, b) = pair(&server, "share");
    a.put("k", EntryInput::with_url("http://10.0.0.1:8080"))
        .unwrap();
    // B has nothing locally: the entry comes from the shared tier, then from B's L1.
    assert_eq!(url_of(&b, "k").as_deref(), Some("http://10.0.0.1:8080"));
    assert!(b.statistics().shared_stats.hits >= 1);
    // Then from B's L1 (a copy read while a notice about the key was still on its way is
    // not kept: the next read keeps it).
    time_until(Duration::from_secs(2), || {
        served_from_l1(&b, "k", "http://10.0.0.1:8080")
    })
    .expect("B's L1 never kept the shared entry");

    // A replaces it: B's L1 stops serving the old value within 100 ms.
    a.put("k", EntryInput::with_url("http://10.0.0.2:8080"))
        .unwrap();
    let took = time_until(Duration::from_secs(2), || {
        url_of(&b, "k").as_deref() == Some("http://10.0.0.2:8080")
    })
    .expect("B never saw the new value");
    assert!(
        took < Duration::from_millis(100),
        "replacement seen after {took:?}"
    );

    // A deletes it: B stops serving it within 100 ms.
    let took = delete_seen_within_100ms(&a, &b);
    eprintln!("coherence: replacement and delete seen by the other handle within {took:?}");
}

#[test]
fn a_key_the_fleet_deleted_is_not_brought_back_from_another_hosts_disk() {
    let Some(server) = RedisServer::start("fleet: no resurrection") else {
        return;
    };
    let (_dirs, a, b) = pair(&server, "tomb");
    // B stores it: B's own disk tiers hold it.
    b.put("k", EntryInput::with_url("http://10.0.0.3:8080"))
        .unwrap();
    a.delete("k").unwrap();
    time_until(Duration::from_secs(2), || url_of(&b, "k").is_none())
        .expect("B's L2 brought the deleted key back");
    assert_eq!(url_of(&a, "k"), None);
    // A new put is a new entry for the whole fleet.
    a.put("k", EntryInput::with_url("http://10.0.0.4:8080"))
        .unwrap();
    time_until(Duration::from_secs(2), || {
        url_of(&b, "k").as_deref() == Some("http://10.0.0.4:8080")
    })
    .expect("B never saw the new put");
}

#[test]
fn two_namespaces_on_one_server_are_independent() {
    let Some(server) = RedisServer::start("fleet: namespaces") else {
        return;
    };
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open(da.path(), &server.url(), "pool-a");
    let b = open(db.path(), &server.url(), "pool-b");
    a.put("k", EntryInput::with_url("http://10.0.0.1:8080"))
        .unwrap();
    b.put("k", EntryInput::with_url("http://10.0.0.2:8080"))
        .unwrap();
    assert_eq!(url_of(&a, "k").as_deref(), Some("http://10.0.0.1:8080"));
    assert_eq!(url_of(&b, "k").as_deref(), Some("http://10.0.0.2:8080"));
    assert_eq!(b.clear().unwrap(), 1);
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(url_of(&a, "k").as_deref(), Some("http://10.0.0.1:8080"));
    assert_eq!(a.statistics().shared_stats.current_size, 1);
    let mut conn = server.connection();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    assert!(
        keys.iter()
            .all(|k| k.starts_with("pwcache:{pool-a}:") || k.starts_with("pwcache:{pool-b}:")),
        "{keys:?}"
    );
}

/// Every log line of this test process.
static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct CaptureLogger;

impl log::Log for CaptureLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        LOGS.lock().unwrap().push(format!("{}", record.args()));
    }
    fn flush(&self) {}
}

fn capture_logs() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_boxed_logger(Box::new(CaptureLogger)).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
}

#[test]
fn the_password_and_credentials_never_reach_logs_errors_statistics_or_the_server() {
    const PASSWORD: &str = "hunter2-fleet-Pw";
    const PROXY_SECRET: &str = "proxy-pass-word-42";
    let Some(server) = RedisServer::start_with_password("fleet: secrets", PASSWORD) else {
        return;
    };
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), &server.url(), "secrets");
    let input = EntryInput::from_json(&format!(
        r#"{{"proxy_url":"http://10.0.0.9:3128","username":"bob","password":"{PROXY_SECRET}"}}"#
    ))
    .unwrap();
    cache.put("k", input).unwrap();
    let got = cache.get("k").unwrap().unwrap();
    assert_eq!(got.password.unwrap().expose(), PROXY_SECRET);
    let bytes = server.dump("*");
    assert!(!bytes.is_empty());
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains(PROXY_SECRET),
        "a credential in plain text on the server"
    );
    let stats = cache.statistics().to_json();
    assert!(!stats.contains(PASSWORD), "{stats}");
    assert!(!format!("{:?}", cache.config()).contains(PASSWORD));

    // A wrong password: the handle opens (the tier starts degraded), every error and log line
    // is free of both passwords.
    let wrong = "wrong-Pw-7731";
    let wrong_url = format!("redis://:{wrong}@127.0.0.1:{}/0", server.port);
    let other = tempfile::tempdir().unwrap();
    let cache = CacheManager::open(config(other.path(), &wrong_url, "secrets")).unwrap();
    assert!(cache.statistics().shared_degraded);
    cache
        .put("x", EntryInput::with_url("http://10.0.0.1:1"))
        .unwrap();
    // Unreachable server with a password in the URL.
    let gone_url = format!("redis://:{wrong}@127.0.0.1:1/0");
    let third = tempfile::tempdir().unwrap();
    let down = CacheManager::open(config(third.path(), &gone_url, "secrets")).unwrap();
    assert!(down.statistics().shared_degraded);
    // A malformed URL is invalid JSON and its message does not quote it.
    let e = CacheConfig::from_json(&format!(
        r#"{{"shared_config":{{"enabled":true,"url":"redis://:{wrong}@host:99999/0"}}}}"#
    ))
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidJson);
    assert!(!e.to_string().contains(wrong), "{e}");
    drop((cache, down));
    let logs = LOGS.lock().unwrap();
    assert!(
        logs.iter().any(|l| l.contains("shared")),
        "the failures were logged: {logs:?}"
    );
    for line in logs.iter() {
        for secret in [PASSWORD, wrong, PROXY_SECRET] {
            assert!(!line.contains(secret), "secret in a log line: {line}");
        }
    }
}

#[test]
fn calls_answer_within_the_timeout_while_the_server_is_paused_or_down_and_it_recovers() {
    let Some(mut server) = RedisServer::start("fleet: faults") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), &server.url(), "faults");
    cache
        .put("before", EntryInput::with_url("http://10.0.0.1:1"))
        .unwrap();

    for fault in ["paused", "killed"] {
        match fault {
            "paused" => server.pause(),
            _ => server.kill(),
        }
        let mut slowest = Duration::ZERO;
        for i in 0..10 {
            let key = format!("{fault}-{i}");
            slowest = slowest.max(within_the_limit("put", &mut || {
                cache
                    .put(&key, EntryInput::with_url("http://10.0.0.2:2"))
                    .unwrap()
            }));
            slowest = slowest.max(within_the_limit("get", &mut || {
                assert!(
                    cache.get(&key).unwrap().is_some(),
                    "{key} acknowledged, then lost"
                )
            }));
            slowest = slowest.max(within_the_limit("health", &mut || {
                cache.invalidate_by_health(&key).unwrap();
            }));
        }
        assert!(cache.statistics().shared_degraded, "{fault}: not degraded");
        eprintln!("server {fault}: slowest call {slowest:?}");
        match fault {
            "paused" => server.resume(),
            _ => server.restart(),
        }
        // The slot retries after its back-off (1 s, then 2 s, ...): recovery within 8 s.
        assert!(recovered(&cache).is_some(), "{fault}: never recovered");
        // Nothing acknowledged is lost: what was put while the server was away is served.
        for i in 0..10 {
            assert!(cache.get(&format!("{fault}-{i}")).unwrap().is_some());
        }
    }
    // After the restart the server was empty: the local copy went back into the pool.
    let mut conn = server.connection();
    let exists: bool = redis::cmd("EXISTS")
        .arg("pwcache:{faults}:e:killed-0")
        .query(&mut conn)
        .unwrap();
    assert!(
        exists,
        "the local copy was promoted into the restarted server"
    );
}

/// The child role of the 8-process health test (does nothing in a normal run).
#[test]
fn fleet_child_entry() {
    let Ok(role) = std::env::var(CHILD_ROLE) else {
        return;
    };
    let mut parts = role.splitn(3, '|');
    let (url, dir, reports) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap().parse::<usize>().unwrap(),
    );
    let dir = Path::new(dir);
    let mut cfg = config(&dir.join("local"), url, "health");
    cfg.failure_threshold = std::env::var("PWCACHE_FLEET_THRESHOLD")
        .unwrap()
        .parse()
        .unwrap();
    let cache = open_coherent(cfg);
    // Everyone starts together.
    let go = dir.parent().unwrap().join("go");
    time_until(Duration::from_secs(20), || go.exists()).expect("the go signal never came");
    let (mut counted, mut evicted, mut absent) = (0, 0, 0);
    for _ in 0..reports {
        match cache.invalidate_by_health("k") {
            Ok(false) => counted += 1,
            Ok(true) => evicted += 1,
            Err(e) if e.kind() == ErrorKind::NotFound => absent += 1,
            Err(e) => panic!("{e}"),
        }
    }
    // Then, once every process has reported, each reads the key.
    std::fs::write(dir.join("done"), b"").unwrap();
    let end = dir.parent().unwrap().join("end");
    time_until(Duration::from_secs(20), || end.exists()).expect("the end signal never came");
    let seen = cache.get("k").unwrap().map(|e| e.failure_count);
    println!("RESULT {counted} {evicted} {absent} {seen:?}");
}

#[test]
fn eight_processes_reporting_failures_evict_exactly_once_at_exactly_the_threshold() {
    const PROCESSES: usize = 8;
    const THRESHOLD: i64 = 20;
    const REPORTS: usize = 5;
    let Some(server) = RedisServer::start("fleet: health across 8 processes") else {
        return;
    };
    let top = tempfile::tempdir().unwrap();
    let seed = tempfile::tempdir().unwrap();
    let mut cfg = config(seed.path(), &server.url(), "health");
    cfg.failure_threshold = THRESHOLD;
    let cache = CacheManager::open(cfg).unwrap();
    cache
        .put("k", EntryInput::with_url("http://10.0.0.5:5"))
        .unwrap();

    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|i| {
            let dir = top.path().join(format!("p{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            Command::new(&exe)
                .args([
                    "--exact",
                    "fleet_child_entry",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(
                    CHILD_ROLE,
                    format!("{}|{}|{REPORTS}", server.url(), dir.display()),
                )
                .env("PWCACHE_FLEET_THRESHOLD", THRESHOLD.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(top.path().join("go"), b"").unwrap();
    time_until(Duration::from_secs(30), || {
        (0..PROCESSES).all(|i| top.path().join(format!("p{i}")).join("done").exists())
    })
    .expect("the children did not finish");
    std::fs::write(top.path().join("end"), b"").unwrap();
    let (mut counted, mut evicted, mut absent) = (0, 0, 0);
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let at = text
            .find("RESULT ")
            .unwrap_or_else(|| panic!("no result in {text}"));
        let line = text[at..].lines().next().unwrap();
        let f: Vec<&str> = line.split(' ').collect();
        counted += f[1].parse::<i64>().unwrap();
        evicted += f[2].parse::<i64>().unwrap();
        absent += f[3].parse::<i64>().unwrap();
        assert_eq!(f[4], "None", "the key is gone for every process");
    }
    eprintln!("8 processes: {counted} counted, {evicted} evicted, {absent} found it gone");
    assert_eq!(evicted, 1, "evicted exactly once");
    assert_eq!(
        counted + evicted,
        THRESHOLD,
        "exactly the threshold counted"
    );
    assert_eq!(absent, (PROCESSES * REPORTS) as i64 - THRESHOLD);
    assert_eq!(cache.get("k").unwrap(), None);
}

#[test]
fn a_cut_notice_connection_is_resynced_and_the_other_l1_never_keeps_a_stale_value() {
    let Some(server) = RedisServer::start("fleet: notice connection cut") else {
        return;
    };
    let (_dirs, a, b) = pair(&server, "cut");
    a.put("k", EntryInput::with_url("http://10.0.0.1:1"))
        .unwrap();
    time_until(Duration::from_secs(2), || {
        served_from_l1(&b, "k", "http://10.0.0.1:1")
    })
    .expect("B holds it in L1");
    let mut conn = server.connection();
    for round in 0..5 {
        // Let the listeners see the last cut (they poll every 20 ms), then wait for them to be
        // back: `is_coherent` is still true until a listener has noticed its loss.
        std::thread::sleep(Duration::from_millis(100));
        for cache in [&a, &b] {
            time_until(Duration::from_secs(3), || cache.is_coherent()).expect("resubscribed");
        }
        // Cut every subscriber's connection, and change the key at once: the notice may be
        // published while B is not listening, so only the re-sync can save B's L1.
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query(&mut conn)
            .unwrap();
        assert!(killed >= 2, "both listeners were connected ({killed})");
        let new = format!("http://10.0.1.{round}:1");
        a.put("k", EntryInput::with_url(new.clone())).unwrap();
        let took = time_until(Duration::from_secs(3), || {
            url_of(&b, "k").as_deref() == Some(new.as_str())
        })
        .unwrap_or_else(|| panic!("round {round}: B kept serving a stale L1 copy"));
        eprintln!("cut notice connection, round {round}: new value served after {took:?}");
    }
}

#[test]
fn a_full_server_degrades_the_shared_tier_and_loses_nothing_acknowledged() {
    let Some(server) = RedisServer::start_with(
        "fleet: full server",
        &["--maxmemory-policy", "noeviction"],
        None,
    ) else {
        return;
    };
    let mut conn = server.connection();
    let info: String = redis::cmd("INFO").arg("memory").query(&mut conn).unwrap();
    let used: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used + 30_000)
        .query(&mut conn)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), &server.url(), "full");
    let start = Instant::now();
    for i in 0..1000 {
        let took = Instant::now();
        cache
            .put(
                &format!("k{i}"),
                EntryInput::with_url(format!("http://10.1.{}.{}:1", i / 250, i % 250)),
            )
            .unwrap();
        assert!(took.elapsed() < Duration::from_millis(500));
    }
    let stats = cache.statistics();
    assert!(
        stats.shared_degraded,
        "the OOM replies degraded the tier: {}",
        stats.to_json()
    );
    for i in 0..1000 {
        assert!(
            cache.get(&format!("k{i}")).unwrap().is_some(),
            "k{i} acknowledged, then lost"
        );
    }
    eprintln!(
        "full server: 1000 puts in {:?}, all served",
        start.elapsed()
    );
}

#[test]
fn every_handle_reads_the_fleet_wide_failure_count() {
    let Some(server) = RedisServer::start("fleet: one failure count") else {
        return;
    };
    let (_dirs, a, b) = two_handles(|dir| CacheConfig {
        failure_threshold: 10,
        ..config(dir, &server.url(), "count")
    });
    a.put("k", EntryInput::with_url("http://10.0.0.1:1"))
        .unwrap();
    // Both hold it in L1 first.
    for cache in [&a, &b] {
        time_until(Duration::from_secs(2), || {
            served_from_l1(cache, "k", "http://10.0.0.1:1")
        })
        .expect("in L1");
    }
    for (i, reporter) in [&a, &b, &b, &a, &b].into_iter().enumerate() {
        assert!(!reporter.invalidate_by_health("k").unwrap());
        let expected = i as i64 + 1;
        for cache in [&a, &b] {
            time_until(Duration::from_secs(2), || {
                cache.get("k").unwrap().unwrap().failure_count == expected
            })
            .unwrap_or_else(|| panic!("a handle never read failure_count {expected}"));
        }
    }
}

#[test]
fn rediss_with_a_private_ca_shares_and_stays_coherent_and_an_untrusted_server_is_refused() {
    let Some(tls) = TlsRedisServer::start("fleet: rediss://") else {
        return;
    };
    let tls_config = |dir: &Path, ca_file: Option<&Path>| {
        let mut c = config(dir, &tls.tls_url(), "tls");
        c.shared.tls_ca_file = ca_file.map(|p| p.to_string_lossy().into_owned());
        c
    };
    let (_dirs, a, b) = two_handles(|dir| tls_config(dir, Some(&tls.ca_file)));
    assert!(
        !a.statistics().shared_degraded,
        "{}",
        a.statistics().to_json()
    );
    a.put("k", EntryInput::with_url("http://10.0.0.1:8080"))
        .unwrap();
    assert_eq!(url_of(&b, "k").as_deref(), Some("http://10.0.0.1:8080"));
    assert!(
        b.statistics().shared_stats.hits >= 1,
        "served by the shared tier"
    );
    time_until(Duration::from_secs(2), || {
        served_from_l1(&b, "k", "http://10.0.0.1:8080")
    })
    .expect("B's L1 never kept the entry");
    let took = delete_seen_within_100ms(&a, &b);
    // The pool is on the server (the handles knew only its TLS port).
    let mut conn = tls.server.connection();
    let tombstone: bool = redis::cmd("EXISTS")
        .arg("pwcache:{tls}:t:k")
        .query(&mut conn)
        .unwrap();
    assert!(tombstone);

    // Without the private CA the system's authorities do not vouch for the server: the shared
    // tier is refused (degraded), and the cache answers from its local tiers.
    let dc = tempfile::tempdir().unwrap();
    let c = CacheManager::open(tls_config(dc.path(), None)).unwrap();
    assert!(c.statistics().shared_degraded);
    c.put("x", EntryInput::with_url("http://10.0.0.2:8080"))
        .unwrap();
    assert!(c.get("x").unwrap().is_some());
    let on_server: bool = redis::cmd("EXISTS")
        .arg("pwcache:{tls}:e:x")
        .query(&mut conn)
        .unwrap();
    assert!(!on_server, "an unverified server was written to");

    // A CA file that is missing or holds no certificate is refused when the cache opens.
    let dd = tempfile::tempdir().unwrap();
    let missing = dd.path().join("no-such-ca.pem");
    let Err(e) = CacheManager::open(tls_config(dd.path(), Some(&missing))) else {
        panic!("opened with a missing CA file")
    };
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(e.to_string().contains("no-such-ca.pem"), "{e}");
    let not_pem = dd.path().join("not.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let Err(e) = CacheManager::open(tls_config(dd.path(), Some(&not_pem))) else {
        panic!("opened with a CA file without certificates")
    };
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    // And tls_ca_file with a plain redis:// URL is a configuration error.
    let e = CacheConfig::from_json(
        r#"{"shared_config":{"enabled":true,"url":"redis://127.0.0.1:1/0","tls_ca_file":"/x"}}"#,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidJson, "{e}");
    eprintln!("rediss:// with a private CA: delete seen by the other handle after {took:?}");
}

#[test]
fn a_slow_server_and_cut_connections_get_answers_within_the_timeout_and_lose_nothing() {
    let Some(server) = RedisServer::start_with(
        "fleet: DEBUG SLEEP and CLIENT KILL",
        &["--enable-debug-command", "yes"],
        None,
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), &server.url(), "slow");
    let slowest = std::cell::Cell::new(Duration::ZERO);
    let timed = |what: &str, f: &mut dyn FnMut()| {
        slowest.set(slowest.get().max(within_the_limit(what, f)));
    };

    // A slow server: DEBUG SLEEP blocks it for 1.5 s while calls go on.
    let url = server.url();
    let sleeper = std::thread::spawn(move || {
        let mut conn = redis::Client::open(url)
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap();
        let _: () = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg("1.5")
            .query(&mut conn)
            .unwrap();
    });
    std::thread::sleep(Duration::from_millis(50));
    let mut seen_degraded = false;
    for i in 0..10 {
        let key = format!("slow-{i}");
        timed("put", &mut || {
            cache
                .put(&key, EntryInput::with_url("http://10.0.0.2:2"))
                .unwrap()
        });
        timed("get", &mut || {
            assert!(cache.get(&key).unwrap().is_some(), "{key} lost")
        });
        timed("health", &mut || {
            cache.invalidate_by_health(&key).unwrap();
        });
        seen_degraded |= cache.statistics().shared_degraded;
    }
    sleeper.join().unwrap();
    assert!(seen_degraded, "a sleeping server degraded the tier");
    eprintln!("DEBUG SLEEP 1.5: slowest call {:?}", slowest.get());
    assert!(
        recovered(&cache).is_some(),
        "never recovered from the slow server"
    );

    // Cut connections: CLIENT KILL of every normal connection (the pooled ones) mid-run.
    let mut admin = server.connection();
    for round in 0..3 {
        // Back to normal first, so the pool has connections open to cut.
        recovered(&cache).expect("never recovered from the last cut");
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .query(&mut admin)
            .unwrap();
        assert!(killed >= 1, "round {round}: the pool had a connection open");
        for i in 0..5 {
            let key = format!("cut-{round}-{i}");
            timed("put", &mut || {
                cache
                    .put(&key, EntryInput::with_url("http://10.0.0.3:3"))
                    .unwrap()
            });
            timed("get", &mut || {
                assert!(cache.get(&key).unwrap().is_some(), "{key} lost")
            });
        }
    }
    let back = recovered(&cache).expect("never recovered from the cut connections");
    // Nothing acknowledged is lost, and what the shared tier missed is back in it once read.
    for key in (0..10)
        .map(|i| format!("slow-{i}"))
        .chain((0..3).flat_map(|r| (0..5).map(move |i| format!("cut-{r}-{i}"))))
    {
        assert!(
            cache.get(&key).unwrap().is_some(),
            "{key} acknowledged, then lost"
        );
        let on_server: bool = redis::cmd("EXISTS")
            .arg(format!("pwcache:{{slow}}:e:{key}"))
            .query(&mut admin)
            .unwrap();
        assert!(on_server, "{key} never reached the shared tier");
    }
    eprintln!(
        "CLIENT KILL x3: slowest call {:?}, recovered after {back:?}",
        slowest.get()
    );
}
