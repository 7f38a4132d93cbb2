//! `pwcache demo --fleet`: three scraper processes on one pool, each with its own local
//! directories, sharing a Redis server: one loads proxies, the others read them, the first
//! reports failures of one proxy until the fleet evicts it, and the others are timed until they
//! no longer get it.
//!
//! The server is `--shared URL` (or `PWCACHE_SHARED`) when given, else a `redis-server` this
//! command starts on a free loopback port (no persistence, in the demo's temporary directory)
//! and stops at the end. The scrapers are this binary started again with the hidden
//! `fleet-scraper` subcommand; they take their orders on stdin and answer one line each on
//! stdout. The URL and the demo's Fernet key reach them through the environment, never the
//! command line (which other users can read). The pool lives in a namespace of its own, cleared
//! at the end, so a server given with `--shared` keeps everything else it holds.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pwcache::{CacheConfig, CacheManager, EntryInput, Error, generate_cache_key};

use crate::shared;

const PROXIES: usize = 5;
/// The proxy whose checks fail.
const FAILING: usize = 3;
const KEY_VARIABLE: &str = "PROXYWHIRL_CACHE_ENCRYPTION_KEY";

fn proxy_url(i: usize) -> String {
    format!("http://10.9.0.{i}:3128")
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Storage(format!("demo --fleet: {what}: {e}"))
}

/// Nanoseconds of the wall clock: the scrapers run on one machine, so their readings compare.
fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A `redis-server` started for the demo, stopped when dropped.
struct LocalServer {
    child: Child,
    port: u16,
}

impl LocalServer {
    fn start(dir: &Path) -> pwcache::Result<LocalServer> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| failed("cannot find a free port", e))?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                Error::InvalidArgument(format!(
                    "demo --fleet starts a redis-server when no --shared URL is given, and none \
                     could be started ({e}): install it (apt-get install redis-server) or pass \
                     --shared redis://HOST:PORT/DB"
                ))
            })?;
        let mut server = LocalServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        let address = ([127, 0, 0, 1], port).into();
        while TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(failed("redis-server exited at start", status));
            }
            if Instant::now() > deadline {
                return Err(failed("redis-server did not listen within 10 s", port));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        server.port = port;
        Ok(server)
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One scraper process, as the coordinator sees it.
struct Scraper {
    name: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Scraper {
    fn start(n: usize, dir: &Path, url: &str, namespace: &str, key: &str) -> pwcache::Result<Self> {
        let exe = std::env::current_exe().map_err(|e| failed("cannot find this program", e))?;
        let mut child = Command::new(exe)
            .arg("fleet-scraper")
            .arg("--dir")
            .arg(dir)
            .args(["--namespace", namespace])
            .env(shared::ENV, url)
            .env(KEY_VARIABLE, key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| failed("cannot start a scraper process", e))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut scraper = Scraper {
            name: format!("scraper {n} (pid {})", child.id()),
            child,
            stdin,
            stdout,
        };
        scraper.expect("ready")?;
        Ok(scraper)
    }

    /// Sends `order`; the scraper's one-line answer.
    fn ask(&mut self, order: &str) -> pwcache::Result<String> {
        writeln!(self.stdin, "{order}")
            .and_then(|_| self.stdin.flush())
            .map_err(|e| failed(&format!("{} stopped listening", self.name), e))?;
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .map_err(|e| failed(&format!("{} did not answer", self.name), e))?;
        if n == 0 {
            return Err(failed(&self.name, "exited"));
        }
        let line = line.trim_end().to_string();
        if let Some(why) = line.strip_prefix("error ") {
            return Err(failed(&self.name, why));
        }
        Ok(line)
    }

    fn expect(&mut self, first: &str) -> pwcache::Result<()> {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| failed(&self.name, e))?;
        match line.trim_end() {
            l if l == first => Ok(()),
            l => Err(failed(
                &self.name,
                format!("said {l:?} instead of {first:?}"),
            )),
        }
    }

    /// The numbers of an answer `<word> <n> <n> ...`.
    fn numbers(&mut self, order: &str) -> pwcache::Result<Vec<u128>> {
        let answer = self.ask(order)?;
        answer
            .split(' ')
            .skip(1)
            .map(|n| n.parse::<u128>())
            .collect::<Result<_, _>>()
            .map_err(|_| failed(&self.name, format!("an answer without numbers: {answer:?}")))
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ms(ns: u128) -> String {
    format!("{:.2} ms", ns as f64 / 1e6)
}

/// The demo; `url` is the server given with `--shared`, if any.
pub fn run(out: &mut dyn Write, url: Option<&str>) -> pwcache::Result<()> {
    let mut say = |text: String| {
        writeln!(out, "{text}").map_err(|e| Error::Io {
            context: "cannot write to standard output".into(),
            source: e,
        })
    };
    let top = tempfile::Builder::new()
        .prefix("pwcache-fleet-demo-")
        .tempdir()
        .map_err(|e| failed("cannot make a temporary directory", e))?;
    let (server, url) = match url {
        Some(url) => {
            let mut probe = CacheConfig::default();
            shared::enable(&mut probe, url)?;
            (None, url.to_string())
        }
        None => {
            let server = LocalServer::start(top.path())?;
            let url = format!("redis://127.0.0.1:{}/0", server.port);
            (Some(server), url)
        }
    };
    let namespace = format!(
        "fleet-demo-{}-{}",
        std::process::id(),
        now_ns() % 1_000_000_000
    );
    let key = pwcache::crypto::generate_key();
    let mut shown = CacheConfig::default();
    shown.shared.url = url.clone();
    say("pwcache demo --fleet: three scraper processes share one proxy pool\n".into())?;
    say(format!(
        "shared tier: {} ({}), namespace {namespace}",
        shown.shared.redacted_url(),
        if server.is_some() {
            "a redis-server started for this demo, no persistence"
        } else {
            "given with --shared"
        }
    ))?;
    let dirs: Vec<PathBuf> = (1..=3)
        .map(|n| top.path().join(format!("scraper{n}")))
        .collect();
    say(format!(
        "local tiers: each scraper has its own L1, and L2/L3 under {}/scraper{{1,2,3}}\n",
        top.path().display()
    ))?;
    let mut scrapers = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| Scraper::start(i + 1, dir, &url, &namespace, &key))
        .collect::<pwcache::Result<Vec<_>>>()?;
    let failing = proxy_url(FAILING);
    let failing_key = generate_cache_key(&failing);

    let loaded = scrapers[0].numbers(&format!("load {PROXIES}"))?;
    say(format!(
        "1. {} loads {} proxies (http://10.9.0.1:3128 ... http://10.9.0.{PROXIES}:3128) into the pool",
        scrapers[0].name, loaded[0]
    ))?;
    for scraper in &mut scrapers[1..] {
        let got = scraper.numbers("fetch")?;
        say(format!(
            "2. {} reads them: {} served by the shared tier, then {} from its own L1",
            scraper.name, got[0], got[1]
        ))?;
    }
    // The others watch the failing proxy from now on.
    for scraper in &mut scrapers[1..] {
        scraper.ask(&format!("watch {failing_key}"))?;
    }
    let threshold = scrapers[0].numbers("threshold")?[0];
    say(format!(
        "3. the health checks of {failing} by {} fail (failure_threshold {threshold}):",
        scrapers[0].name
    ))?;
    let mut eviction = None;
    for report in 1..=threshold {
        let answer = scrapers[0].ask(&format!("fail {failing_key}"))?;
        match answer.split(' ').collect::<Vec<_>>().as_slice() {
            ["recorded", count] => {
                let mut seen = Vec::new();
                for scraper in &mut scrapers[1..] {
                    seen.push(scraper.numbers(&format!("count {failing_key} {count}"))?[0]);
                }
                say(format!(
                    "   report {report}: failure recorded; failure_count is {count} for scraper 1, \
                     {} for scraper 2, {} for scraper 3 (one count for the fleet)",
                    seen[0], seen[1]
                ))?;
            }
            ["evicted", began, returned] => {
                eviction = began
                    .parse::<u128>()
                    .ok()
                    .zip(returned.parse::<u128>().ok());
                say(format!(
                    "   report {report}: failure_threshold reached: evicted from the pool, once for \
                     the whole fleet"
                ))?;
                break;
            }
            _ => return Err(failed(&scrapers[0].name, format!("said {answer:?}"))),
        }
    }
    let (began, returned) =
        eviction.ok_or_else(|| failed("the proxy was never evicted", &failing))?;
    say(format!(
        "4. propagation: the evicting report took {} on {}; the first read that no longer got \
         {failing} came (the bound is 100 ms after the report returns):",
        ms(returned - began),
        scrapers[0].name
    ))?;
    for scraper in &mut scrapers[1..] {
        let gone = scraper.numbers("gone")?[0];
        say(format!(
            "   {}: {} after the report began, {}",
            scraper.name,
            ms(gone.saturating_sub(began)),
            if gone <= returned {
                "before it had returned".to_string()
            } else {
                format!("{} after it returned", ms(gone - returned))
            }
        ))?;
    }
    say("5. what each scraper gets now:".into())?;
    for scraper in &mut scrapers {
        let answer = scraper.numbers("list")?;
        say(format!(
            "   {}: {} of {PROXIES} proxies; {failing}: {}",
            scraper.name,
            answer[0],
            if answer[1] == 0 {
                "not served"
            } else {
                "STILL SERVED"
            }
        ))?;
    }
    scrapers[0].ask("clear")?;
    drop(scrapers);
    say(format!(
        "\nThe pool's namespace was cleared{}; the local directories are removed.",
        if server.is_some() {
            " and the redis-server stopped"
        } else {
            ""
        }
    ))?;
    say(format!(
        "Try it on your own server: pwcache demo --fleet --shared redis://HOST:PORT/0 (or {}=URL)",
        shared::ENV
    ))?;
    drop(server);
    Ok(())
}

/// The hidden `fleet-scraper` subcommand: one scraper of the demo.
pub fn scraper(dir: &Path, namespace: &str) -> pwcache::Result<()> {
    let url = std::env::var(shared::ENV)
        .map_err(|_| Error::InvalidArgument(format!("fleet-scraper needs {}", shared::ENV)))?;
    let mut config = CacheConfig {
        l2_cache_dir: dir.join("l2"),
        l3_database_path: dir.join("db").join("l3.db"),
        ..CacheConfig::default()
    };
    shared::enable(&mut config, &url)?;
    config.shared.namespace = namespace.to_string();
    let cache = std::sync::Arc::new(CacheManager::open(config)?);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cache.is_coherent() {
        if Instant::now() > deadline {
            return Err(failed(
                "the scraper",
                "could not subscribe to the pool's notices",
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut out = std::io::stdout().lock();
    let mut reply = |text: String| -> pwcache::Result<()> {
        writeln!(out, "{text}")
            .and_then(|_| out.flush())
            .map_err(|e| failed("cannot answer", e))
    };
    reply("ready".into())?;
    let mut watcher: Option<std::thread::JoinHandle<pwcache::Result<String>>> = None;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| failed("cannot read an order", e))?;
        let (order, argument) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let answer = match order {
            "load" => load(&cache, argument),
            "fetch" => fetch(&cache),
            "threshold" => Ok(format!("threshold {}", cache.config().failure_threshold)),
            "watch" => {
                let (cache, key) = (cache.clone(), argument.to_string());
                watcher = Some(std::thread::spawn(move || gone(&cache, &key)));
                Ok("watching".into())
            }
            "fail" => fail(&cache, argument),
            "count" => count(&cache, argument),
            "gone" => match watcher.take().map(std::thread::JoinHandle::join) {
                Some(Ok(answer)) => answer,
                Some(Err(_)) => Ok("error the watcher panicked".into()),
                None => Ok("error nothing watched".into()),
            },
            "list" => list(&cache),
            "clear" => cache.clear().map(|n| format!("cleared {n}")),
            "quit" => return Ok(()),
            other => Ok(format!("error unknown order {other:?}")),
        };
        reply(answer.unwrap_or_else(|e| format!("error {e}")))?;
    }
    Ok(())
}

fn load(cache: &CacheManager, count: &str) -> pwcache::Result<String> {
    let count: usize = count.parse().unwrap_or(PROXIES);
    for i in 1..=count {
        let url = proxy_url(i);
        let mut input = EntryInput::with_url(url.clone());
        input.source = Some("fleet-demo".into());
        cache.put(&generate_cache_key(&url), input)?;
    }
    Ok(format!("loaded {count}"))
}

/// Reads every proxy twice: from the shared tier, then from L1.
fn fetch(cache: &CacheManager) -> pwcache::Result<String> {
    let before = cache.statistics();
    for _ in 0..2 {
        for i in 1..=PROXIES {
            cache.get(&generate_cache_key(&proxy_url(i)))?;
        }
    }
    let after = cache.statistics();
    Ok(format!(
        "got {} {}",
        after.shared_stats.hits - before.shared_stats.hits,
        after.l1_stats.hits - before.l1_stats.hits
    ))
}

fn fail(cache: &CacheManager, key: &str) -> pwcache::Result<String> {
    let began = now_ns();
    if cache.invalidate_by_health(key)? {
        return Ok(format!("evicted {began} {}", now_ns()));
    }
    let count = cache.get(key)?.map_or(0, |e| e.failure_count);
    Ok(format!("recorded {count}"))
}

/// Reads `key` until it is no longer served (at most 30 s, reading every 50 µs, from the
/// `watch` order on); when that happened.
fn gone(cache: &CacheManager, key: &str) -> pwcache::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let at = now_ns();
        if cache.get(key)?.is_none() {
            return Ok(format!("gone {at}"));
        }
        if Instant::now() > deadline {
            return Ok("error still served after 30 s".into());
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

fn list(cache: &CacheManager) -> pwcache::Result<String> {
    let mut served = 0;
    let mut failing_served = 0;
    for i in 1..=PROXIES {
        if cache.get(&generate_cache_key(&proxy_url(i)))?.is_some() {
            served += 1;
            if i == FAILING {
                failing_served = 1;
            }
        }
    }
    Ok(format!("list {served} {failing_served}"))
}

/// `<key> <n>`: reads the key's failure_count until it is `n` (at most 1 s: a notice may be on
/// its way to drop an older copy from L1); the count read last.
fn count(cache: &CacheManager, argument: &str) -> pwcache::Result<String> {
    let (key, wanted) = argument.split_once(' ').unwrap_or((argument, "0"));
    let wanted: i64 = wanted.parse().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let count = cache.get(key)?.map_or(0, |e| e.failure_count);
        if count == wanted || Instant::now() > deadline {
            return Ok(format!("count {count}"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
