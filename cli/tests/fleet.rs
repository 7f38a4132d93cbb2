//! The fleet's part of the `pwcache` binary: `demo --fleet` (with a redis-server of its own, and
//! with one given by `--shared`, password included, which is never echoed) and `--shared URL` on
//! ordinary commands.
//!
//! Skipped with a message when redis-server is not installed, unless `PWCACHE_REQUIRE_REDIS` is
//! set (scripts/test-all.sh sets it and installs redis-server).

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;

const KEY: &str = "dGVzdC1rZXktZm9yLXB3Y2FjaGUtZml4dHVyZXMtMDE=";

fn redis_available(test: &str) -> bool {
    let found = Process::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("PWCACHE_REQUIRE_REDIS").is_none(),
            "{test}: redis-server is not installed and PWCACHE_REQUIRE_REDIS is set"
        );
        eprintln!("SKIPPED {test}: redis-server is not installed");
    }
    found
}

/// A redis-server on a free port with `password`, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(password: &str) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Process::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                password,
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        Server {
            child,
            port,
            _dir: dir,
        }
    }

    fn cli(&self, password: &str, args: &[&str]) -> String {
        let out = Process::new("redis-cli")
            .args([
                "-p",
                &self.port.to_string(),
                "--no-auth-warning",
                "-a",
                password,
            ])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pwcache(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("pwcache").unwrap();
    cmd.current_dir(dir)
        .env("PROXYWHIRL_CACHE_ENCRYPTION_KEY", KEY)
        .env_remove("PWCACHE_SHARED")
        .env("PWCACHE_DIR", dir);
    cmd
}

/// Runs `demo --fleet` and checks its story; returns its standard output.
fn check_demo(cmd: &mut Command) -> (String, String) {
    let assert = cmd
        .args(["demo", "--fleet"])
        .timeout(Duration::from_secs(60))
        .assert();
    let out = assert.get_output();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("evicted from the pool, once"), "{stdout}");
    for n in 1..=2 {
        assert!(
            stdout.contains(&format!(
                "failure_count is {n} for scraper 1, {n} for scraper 2, {n} for scraper 3"
            )),
            "{stdout}"
        );
    }
    let not_served = stdout
        .lines()
        .filter(|l| l.contains("4 of 5 proxies; http://10.9.0.3:3128: not served"))
        .count();
    assert_eq!(not_served, 3, "{stdout}");
    // The propagation: within the 100 ms bound for both other scrapers.
    let times: Vec<f64> = stdout
        .lines()
        .filter_map(|l| {
            l.split_once(": ")?
                .1
                .split_once(" ms after the report began")
        })
        .map(|(ms, _)| ms.parse().unwrap())
        .collect();
    assert_eq!(times.len(), 2, "{stdout}");
    assert!(times.iter().all(|&t| t < 100.0), "{stdout}");
    (stdout, stderr)
}

#[test]
fn demo_fleet_starts_its_own_server_shows_the_eviction_spread_and_stops_it() {
    if !redis_available("demo --fleet") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (stdout, _) = check_demo(&mut pwcache(dir.path()));
    let port: u16 = stdout
        .split("redis://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no server URL in {stdout}"));
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the demo's redis-server still runs"
    );
    let temp = stdout
        .split("L2/L3 under ")
        .nth(1)
        .and_then(|rest| rest.split("/scraper").next())
        .unwrap();
    assert!(!Path::new(temp).exists(), "{temp} was left behind");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "it wrote into the current directory"
    );
    println!("{stdout}");
}

#[test]
fn demo_fleet_on_a_given_server_never_echoes_its_password_and_keeps_its_data() {
    if !redis_available("demo --fleet --shared") {
        return;
    }
    const PASSWORD: &str = "fleet-Demo-pw-9141";
    let server = Server::start(PASSWORD);
    assert_eq!(
        server.cli(PASSWORD, &["SET", "someone-elses", "data"]),
        "OK"
    );
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}/0", server.port);
    let dir = tempfile::tempdir().unwrap();
    let (stdout, stderr) = check_demo(pwcache(dir.path()).args(["--shared", &url]));
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));
    assert!(
        stdout.contains(&format!("redis://***:***@127.0.0.1:{}/0", server.port)),
        "{stdout}"
    );
    assert_eq!(server.cli(PASSWORD, &["GET", "someone-elses"]), "data");
    // The same through the environment.
    let (stdout, _) = check_demo(pwcache(dir.path()).env("PWCACHE_SHARED", &url));
    assert!(!stdout.contains(PASSWORD));
}

#[test]
fn shared_on_ordinary_commands_shares_between_stores_and_masks_the_password() {
    if !redis_available("--shared") {
        return;
    }
    const PASSWORD: &str = "cli-Shared-pw-5521";
    let server = Server::start(PASSWORD);
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}/0", server.port);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let put = pwcache(a.path())
        .args(["--shared", &url, "put", "http://10.7.0.1:8080"])
        .assert()
        .success();
    let key = String::from_utf8_lossy(&put.get_output().stdout)
        .trim()
        .to_string();
    // Another store, empty on disk, gets it from the shared tier.
    let got = pwcache(b.path())
        .args(["--shared", &url, "get", &key])
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&got.get_output().stdout).contains("http://10.7.0.1:8080"));
    let stats = pwcache(b.path())
        .args(["--shared", &url, "stats"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&stats.get_output().stdout).to_string();
    assert!(text.contains("shared_degraded: false"), "{text}");
    assert!(text.contains("redis://***:***@127.0.0.1"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    let json = pwcache(b.path())
        .args(["--shared", &url, "stats", "--json"])
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_slice(&json.get_output().stdout).unwrap();
    assert_eq!(json["shared"]["degraded"], false, "{json}");
    // What the pool holds.
    assert_eq!(json["shared"]["current_size"], 1, "{json}");

    // A wrong password: the commands still answer from the local tiers, degraded, and neither
    // password is printed.
    let wrong = format!("redis://:wrong-{PASSWORD}@127.0.0.1:{}/0", server.port);
    let stats = pwcache(a.path())
        .args(["--shared", &wrong, "stats"])
        .assert()
        .success();
    let out = stats.get_output();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("DEGRADED") && all.contains("shared_degraded: true"),
        "{all}"
    );
    assert!(!all.contains(PASSWORD), "{all}");
    // A URL that is not a Redis URL: an error that does not quote it.
    let bad = pwcache(a.path())
        .args(["--shared", &format!("http://:{PASSWORD}@host"), "stats"])
        .assert()
        .failure();
    let out = bad.get_output();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("--shared"), "{all}");
    assert!(!all.contains(PASSWORD), "{all}");
}
