//! The shared tier's benchmarks, in one run on one `redis-server` this program starts on a free
//! loopback port (no persistence, killed at the end):
//!
//! 1. **Shared get against the limit**: a get that misses L1 (an L1 of 16 entries, keys cycling
//!    over 1,000) and is served by the shared tier, against a raw `redis` crate `HGETALL` of the
//!    same hash on one kept connection, the least any client of that data pays. Blocks of the
//!    two alternate, so that a change of the machine's load falls on both. With and without
//!    credentials (with them, the get also decrypts two Fernet tokens). The L1 victims' usage
//!    goes back to the shared tier in batches, in the measured time. Also with L1 off, where
//!    each get writes its usage back at once: a second round trip.
//! 2. **Put, shared tier on and off**: the default configuration (L1, JSONL L2, SQLite L3)
//!    with and without the shared tier, distinct keys, blocks alternating.
//! 3. **Coherence latency**: four processes on one pool (this program started again as
//!    `fleet_bench listener ...`), each with its own local directory. Each round, one handle
//!    puts a key and the three others read it until their L1 holds it; then the first deletes
//!    it, and each listener reads it in a loop (a pause of 20 µs between reads) until it is no
//!    longer served, and reports when (`CLOCK_MONOTONIC`, one clock for all processes). The
//!    latency is from the start of the delete to the last listener's first miss.
//!
//! `cargo run --release --example fleet_bench` (about 20 s); `PWCACHE_BENCH_ROUNDS` sets the
//! coherence rounds (default 300). Needs `redis-server` on the PATH.

#[path = "../tests/redis_server/mod.rs"]
mod redis_server;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use pwcache::{CacheConfig, EntryInput, SharedConfig};

const KEY: &str = "dGVzdC1rZXktZm9yLXB3Y2FjaGUtZml4dHVyZXMtMDE=";
const NAMESPACE: &str = "bench";
const GET_KEYS: usize = 1_000;
const GET_BLOCK: usize = 2_000;
const GET_BLOCKS: usize = 10;
const PUT_BLOCK: usize = 1_000;
const PUT_BLOCKS: usize = 6;

fn config(dir: &Path, url: Option<&str>) -> CacheConfig {
    let mut config = CacheConfig {
        l2_cache_dir: dir.join("l2"),
        l3_database_path: dir.join("db").join("l3.db"),
        encryption_key: Some(KEY.to_string()),
        ..CacheConfig::default()
    };
    if let Some(url) = url {
        config.shared = SharedConfig {
            enabled: true,
            url: url.to_string(),
            namespace: NAMESPACE.into(),
            ..SharedConfig::default()
        };
    }
    config
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn input(i: usize, credentials: bool) -> EntryInput {
    let url = format!(
        "http://10.{}.{}.{}:8080",
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255
    );
    if credentials {
        EntryInput {
            username: Some(format!("user-{i}")),
            password: Some(format!("secret-password-{i}")),
            ..EntryInput::with_url(url)
        }
    } else {
        EntryInput::with_url(url)
    }
}

fn per_op(total: Duration, ops: usize) -> f64 {
    total.as_secs_f64() * 1e6 / ops as f64
}

/// 1: a shared-tier get that misses L1 (`l1`: an L1 of 16 entries, else none) against a raw
/// HGETALL of the same hash.
fn shared_get_against_raw(url: &str, credentials: bool, l1: bool) {
    let prefix = if credentials { "c" } else { "p" };
    let writer_dir = tempfile::tempdir().unwrap();
    let writer = redis_server::open_coherent(config(writer_dir.path(), Some(url)));
    for i in 0..GET_KEYS {
        writer
            .put(&format!("{prefix}{i}"), input(i, credentials))
            .unwrap();
    }
    let reader_dir = tempfile::tempdir().unwrap();
    let mut reader_config = config(reader_dir.path(), Some(url));
    if l1 {
        reader_config.l1.max_entries = Some(16);
    } else {
        reader_config.l1.enabled = false;
    }
    let reader = redis_server::open_coherent(reader_config);
    let mut raw = redis::Client::open(url)
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(2))
        .unwrap();
    let names: Vec<String> = (0..GET_KEYS)
        .map(|i| format!("pwcache:{{{NAMESPACE}}}:e:{prefix}{i}"))
        .collect();
    let hits_before = reader.statistics().shared_stats.hits;
    let (mut ours, mut limit) = (Duration::ZERO, Duration::ZERO);
    for block in 0..GET_BLOCKS {
        let start = Instant::now();
        for n in 0..GET_BLOCK {
            let i = (block * GET_BLOCK + n) % GET_KEYS;
            let got = reader.get(&format!("{prefix}{i}")).unwrap();
            std::hint::black_box(got.expect("held"));
        }
        ours += start.elapsed();
        let start = Instant::now();
        for n in 0..GET_BLOCK {
            let i = (block * GET_BLOCK + n) % GET_KEYS;
            let hash: Vec<(String, String)> = redis::cmd("HGETALL")
                .arg(&names[i])
                .query(&mut raw)
                .unwrap();
            assert!(!hash.is_empty());
            std::hint::black_box(hash);
        }
        limit += start.elapsed();
    }
    let ops = GET_BLOCKS * GET_BLOCK;
    let served = reader.statistics().shared_stats.hits - hits_before;
    assert_eq!(
        served, ops as u64,
        "every get was served by the shared tier"
    );
    let (ours, limit) = (per_op(ours, ops), per_op(limit, ops));
    println!(
        "shared_get{}{}: pwcache get missing L1, served by the shared tier {ours:.1} µs/op, \
         raw redis HGETALL {limit:.1} µs/op, ratio {:.2} ({ops} gets each)",
        if credentials { "_credentials" } else { "" },
        if l1 { "" } else { "_l1_off" },
        ours / limit
    );
}

/// 2: puts with the shared tier on and off (default configuration otherwise).
fn put_on_and_off(url: &str) {
    let (on_dir, off_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let on = redis_server::open_coherent(config(on_dir.path(), Some(url)));
    let off = redis_server::open_coherent(config(off_dir.path(), None));
    let (mut with, mut without) = (Duration::ZERO, Duration::ZERO);
    for block in 0..PUT_BLOCKS {
        for (cache, total) in [(&on, &mut with), (&off, &mut without)] {
            let start = Instant::now();
            for n in 0..PUT_BLOCK {
                let i = block * PUT_BLOCK + n;
                cache.put(&format!("put{i}"), input(i, true)).unwrap();
            }
            *total += start.elapsed();
        }
    }
    let ops = PUT_BLOCKS * PUT_BLOCK;
    assert!(!on.statistics().shared_degraded);
    let (with, without) = (per_op(with, ops), per_op(without, ops));
    println!(
        "put: shared tier on {with:.1} µs/op, off {without:.1} µs/op, ratio {:.2} ({ops} puts \
         each, default configuration, with credentials)",
        with / without
    );
}

struct Listener {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Listener {
    fn tell(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn hear(&mut self) -> String {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "a listener exited");
        line.trim_end().to_string()
    }
}

/// The listener process: for each `watch <key>`, reads the key until its L1 holds it (`held`),
/// then until it is no longer served (`gone <ns>`).
fn listener(url: &str, dir: &Path) {
    let cache = redis_server::open_coherent(config(dir, Some(url)));
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    for line in stdin.lock().lines() {
        let line = line.unwrap();
        let Some(key) = line.strip_prefix("watch ") else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let before = cache.statistics().l1_stats.hits;
            let got = cache.get(key).unwrap();
            if got.is_some() && cache.statistics().l1_stats.hits > before {
                break;
            }
            assert!(Instant::now() < deadline, "{key} never reached L1");
            std::thread::sleep(Duration::from_micros(100));
        }
        writeln!(out, "held").unwrap();
        out.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let gone_at = loop {
            if cache.get(key).unwrap().is_none() {
                break monotonic_ns();
            }
            assert!(
                Instant::now() < deadline,
                "{key} served for 5 s after its delete"
            );
            std::thread::sleep(Duration::from_micros(20));
        };
        writeln!(out, "gone {gone_at}").unwrap();
        out.flush().unwrap();
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// 3: from a delete on one handle to the last of three other processes no longer serving it.
fn coherence_latency(url: &str, rounds: usize) {
    let top = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut listeners: Vec<Listener> = (0..3)
        .map(|i| {
            let dir = top.path().join(format!("listener{i}"));
            let mut child = Command::new(&exe)
                .arg("listener")
                .arg(url)
                .arg(&dir)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start a listener process");
            let stdin = child.stdin.take().unwrap();
            let stdout = BufReader::new(child.stdout.take().unwrap());
            Listener {
                child,
                stdin,
                stdout,
            }
        })
        .collect();
    for l in &mut listeners {
        assert_eq!(l.hear(), "ready");
    }
    let writer = redis_server::open_coherent(config(&top.path().join("writer"), Some(url)));
    let mut latencies_us: Vec<f64> = Vec::with_capacity(rounds);
    let mut delete_us: Vec<f64> = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let key = format!("coherence{round}");
        writer.put(&key, input(round, false)).unwrap();
        for l in &mut listeners {
            l.tell(&format!("watch {key}"));
        }
        for l in &mut listeners {
            assert_eq!(l.hear(), "held");
        }
        let start = monotonic_ns();
        writer.delete(&key).unwrap();
        let returned = monotonic_ns();
        let last_gone = listeners
            .iter_mut()
            .map(|l| {
                let heard = l.hear();
                heard
                    .strip_prefix("gone ")
                    .and_then(|ns| ns.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("a listener said {heard:?}"))
            })
            .max()
            .unwrap();
        latencies_us.push(last_gone.saturating_sub(start) as f64 / 1e3);
        delete_us.push((returned - start) as f64 / 1e3);
    }
    for mut l in listeners {
        l.tell("stop");
        let _ = l.child.wait();
    }
    latencies_us.sort_by(f64::total_cmp);
    delete_us.sort_by(f64::total_cmp);
    println!(
        "coherence ({rounds} deletes, 3 listener processes): from the delete's start to the \
         last listener's first miss p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs (the delete itself: \
         p50 {:.0} µs, max {:.0} µs; listeners poll every ~20 µs + a get)",
        percentile(&latencies_us, 50.0),
        percentile(&latencies_us, 99.0),
        latencies_us[latencies_us.len() - 1],
        percentile(&delete_us, 50.0),
        delete_us[delete_us.len() - 1],
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("listener") {
        listener(&args[2], Path::new(&args[3]));
        return;
    }
    let rounds: usize = std::env::var("PWCACHE_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(300);
    let Some(server) = redis_server::RedisServer::start("fleet_bench") else {
        std::process::exit(2);
    };
    let url = server.url();
    println!(
        "fleet_bench on redis-server {} (127.0.0.1, no persistence); load average before: {}",
        String::from_utf8_lossy(
            &Command::new("redis-server")
                .arg("--version")
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default()
        )
        .split_whitespace()
        .nth(2)
        .unwrap_or("?"),
        load_average()
    );
    shared_get_against_raw(&url, false, true);
    shared_get_against_raw(&url, true, true);
    shared_get_against_raw(&url, false, false);
    put_on_and_off(&url);
    coherence_latency(&url, rounds);
    println!("load average after: {}", load_average());
}
