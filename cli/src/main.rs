//! `pwcache`: inspect and fill a pwcache cache from the command line, or see it work (`demo`).
//!
//! A thin layer over the library: every subcommand is one or two library calls. Exit status:
//! 0 success, 1 an error (its message on stderr), 2 bad usage, 3 not found (`get`, `delete`,
//! `invalidate` of an absent key), 4 a `warm` that loaded nothing or in which rows failed.

mod warm;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pwcache::{
    CacheConfig, CacheManager, CacheStatistics, EntryInput, Error, ErrorKind, L2Backend,
    TierStatistics, TtlManager, generate_cache_key,
};

#[derive(Parser)]
#[command(
    name = "pwcache",
    version,
    about = "A multi-tier proxy cache: inspect, fill, export"
)]
struct Cli {
    #[command(flatten)]
    cache: CacheOptions,
    /// Log library messages at info level too (warnings are always shown).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct CacheOptions {
    /// A JSON configuration file (the keys of pwcache's CacheConfig).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Overrides `l2_cache_dir`.
    #[arg(long, global = true, value_name = "DIR")]
    l2_dir: Option<PathBuf>,
    /// Overrides `l3_database_path`.
    #[arg(long, global = true, value_name = "PATH")]
    l3_db: Option<PathBuf>,
    /// Overrides `l2_backend`.
    #[arg(long, global = true, value_enum)]
    l2_backend: Option<Backend>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    Jsonl,
    Sqlite,
}

#[derive(Subcommand)]
enum Command {
    /// Load proxies from a .json, .jsonl or .csv file. Rows left out are listed with their line
    /// and reason (the first 20; all with -v). Exit status 4 when nothing was loaded or rows
    /// failed.
    Warm {
        file: PathBuf,
        /// TTL in seconds for every loaded entry (0 = already expired).
        #[arg(long)]
        ttl: Option<i64>,
    },
    /// Print an entry as JSON, credentials included.
    Get {
        /// The cache key.
        #[arg(required_unless_present = "url", conflicts_with = "url")]
        key: Option<String>,
        /// Look up by proxy URL instead (its cache key).
        #[arg(long)]
        url: Option<String>,
    },
    /// Store a proxy under the cache key of its URL; prints the key.
    Put {
        url: String,
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        source: Option<String>,
        /// TTL in seconds (default: per_source_ttl, else default_ttl_seconds).
        #[arg(long)]
        ttl: Option<i64>,
    },
    /// Remove an entry from every tier.
    Delete {
        #[arg(required_unless_present = "url", conflicts_with = "url")]
        key: Option<String>,
        #[arg(long)]
        url: Option<String>,
    },
    /// Record a failed health check; the entry is removed at `failure_threshold`.
    Invalidate { key: String },
    /// Show the statistics.
    Stats {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write every live entry to a JSON Lines file (credentials masked by default).
    Export {
        file: PathBuf,
        #[arg(long)]
        include_credentials: bool,
    },
    /// Remove expired entries from every tier.
    Cleanup,
    /// Print the cache key of a URL.
    Key { url: String },
    /// Show what pwcache does, on a cache of its own (10,000 generated proxies).
    Demo {
        /// Where the demo cache lives.
        #[arg(long, default_value = ".cache")]
        dir: PathBuf,
    },
}

/// Warnings (and with -v, info) from the library, on stderr.
struct StderrLogger {
    verbose: bool,
}

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        // warm's one warning per row left out: all with -v, else the command lists the first.
        if metadata.target() == pwcache::WARM_ROW_LOG_TARGET && !self.verbose {
            return false;
        }
        metadata.level()
            <= if self.verbose {
                log::Level::Info
            } else {
                log::Level::Warn
            }
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let level = record.level().as_str().to_ascii_lowercase();
            eprintln!("pwcache: {level}: {}", record.args());
        }
    }

    fn flush(&self) {}
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    if log::set_boxed_logger(Box::new(StderrLogger { verbose })).is_ok() {
        log::set_max_level(if verbose {
            log::LevelFilter::Info
        } else {
            log::LevelFilter::Warn
        });
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pwcache: error: {e}");
            ExitCode::from(if e.kind() == ErrorKind::NotFound {
                3
            } else {
                1
            })
        }
    }
}

fn load_config(options: &CacheOptions) -> pwcache::Result<CacheConfig> {
    let mut config = match &options.config {
        None => CacheConfig::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::io("cannot read configuration", path, e))?;
            CacheConfig::from_json(&text)?
        }
    };
    if let Some(dir) = &options.l2_dir {
        config.l2_cache_dir = dir.clone();
    }
    if let Some(path) = &options.l3_db {
        config.l3_database_path = path.clone();
    }
    if let Some(backend) = options.l2_backend {
        config.l2_backend = match backend {
            Backend::Jsonl => L2Backend::Jsonl,
            Backend::Sqlite => L2Backend::Sqlite,
        };
    }
    Ok(config)
}

fn run(cli: Cli) -> pwcache::Result<ExitCode> {
    let out = &mut std::io::stdout().lock();
    match cli.command {
        Command::Key { url } => {
            return print(out, &generate_cache_key(&url)).map(|()| ExitCode::SUCCESS);
        }
        Command::Demo { dir } => return demo(out, &dir).map(|()| ExitCode::SUCCESS),
        _ => {}
    }
    let cache = CacheManager::open(load_config(&cli.cache)?)?;
    if let Command::Warm { file, ttl } = &cli.command {
        return warm::warm(&cache, out, file, *ttl, cli.verbose);
    }
    match cli.command {
        Command::Get { key, url } => {
            let key = key.unwrap_or_else(|| generate_cache_key(url.as_deref().unwrap_or_default()));
            match cache.get(&key)? {
                Some(entry) => print(out, &entry.to_json(pwcache::Credentials::Plain)),
                None => Err(Error::NotFound(format!("no live entry under key {key:?}"))),
            }
        }
        Command::Put {
            url,
            username,
            password,
            source,
            ttl,
        } => {
            let key = generate_cache_key(&url);
            let mut input = EntryInput::with_url(url);
            input.username = username;
            input.password = password;
            input.source = source;
            input.ttl_seconds = ttl;
            cache.put(&key, input)?;
            print(out, &key)
        }
        Command::Delete { key, url } => {
            let key = key.unwrap_or_else(|| generate_cache_key(url.as_deref().unwrap_or_default()));
            cache.delete(&key)?;
            print(out, &format!("deleted {key}"))
        }
        Command::Invalidate { key } => {
            let evicted = cache.invalidate_by_health(&key)?;
            print(
                out,
                if evicted {
                    "evicted: failure threshold reached"
                } else {
                    "failure recorded"
                },
            )
        }
        Command::Stats { json } => {
            let stats = cache.statistics();
            if json {
                print(out, &stats.to_json())
            } else {
                print(out, &stats_table(&stats))
            }
        }
        Command::Export {
            file,
            include_credentials,
        } => {
            let bar = progress_bar("exporting");
            let counts = cache.export_to_file_with_progress(
                &file,
                include_credentials,
                &mut |done, total| {
                    bar.set_length(total.max(done));
                    bar.set_position(done);
                },
            )?;
            bar.finish_and_clear();
            print(
                out,
                &format!(
                    "exported {}, failed {} to {}",
                    counts.exported,
                    counts.failed,
                    file.display()
                ),
            )
        }
        Command::Cleanup => {
            let removed = cache.cleanup_expired()?;
            print(out, &format!("removed {removed} expired entries"))
        }
        Command::Key { .. } | Command::Demo { .. } | Command::Warm { .. } => {
            unreachable!("handled above")
        }
    }
    .map(|()| ExitCode::SUCCESS)
}

fn print(out: &mut impl Write, text: &str) -> pwcache::Result<()> {
    writeln!(out, "{text}").map_err(|e| Error::Io {
        context: "cannot write to standard output".into(),
        source: e,
    })
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
fn progress_bar(what: &str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {percent:>3}% {elapsed}")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// The statistics as an aligned table.
fn stats_table(s: &CacheStatistics) -> String {
    let mut t = String::new();
    let tiers: [(&str, &TierStatistics, bool); 3] = [
        ("L1 memory", &s.l1_stats, s.l1_degraded),
        ("L2 disk", &s.l2_stats, s.l2_degraded),
        ("L3 sqlite", &s.l3_stats, s.l3_degraded),
    ];
    t.push_str(&format!(
        "{:<10} {:>9} {:>9} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8}  {}\n",
        "tier",
        "hits",
        "misses",
        "hit rate",
        "size",
        "ev.lru",
        "ev.ttl",
        "ev.hlth",
        "ev.corr",
        "state"
    ));
    for (name, tier, degraded) in tiers {
        t.push_str(&format!(
            "{:<10} {:>9} {:>9} {:>7.1}% {:>9} {:>8} {:>8} {:>8} {:>8}  {}\n",
            name,
            tier.hits,
            tier.misses,
            tier.hit_rate * 100.0,
            tier.current_size,
            tier.evictions_lru,
            tier.evictions_ttl,
            tier.evictions_health,
            tier.evictions_corruption,
            if degraded { "DEGRADED" } else { "ok" }
        ));
    }
    t.push_str(&format!(
        "promotions {}, demotions {}, overall hit rate {:.1}%, total size {}",
        s.promotions,
        s.demotions,
        s.overall_hit_rate * 100.0,
        s.total_size
    ));
    t
}

/// The demo: a cache of its own under `dir`, 10,000 generated proxies, and each behaviour once.
fn demo(out: &mut impl Write, dir: &Path) -> pwcache::Result<()> {
    let config = CacheConfig {
        l2_cache_dir: dir.join("proxies"),
        l3_database_path: dir.join("db").join("proxywhirl.db"),
        ..CacheConfig::default()
    };
    pwcache::fsutil::create_private_dir_all(dir)?;
    let list = dir.join("demo-proxies.csv");
    let mut csv = String::from("proxy_url,username,password,source\n");
    for i in 0..10_000 {
        let (user, pass) = if i % 3 == 0 {
            (format!("user{i}"), format!("pw-{i:05}"))
        } else {
            (String::new(), String::new())
        };
        csv.push_str(&format!(
            "http://10.{}.{}.{}:{},{user},{pass},demo-list\n",
            i / 65536,
            (i / 256) % 256,
            i % 256,
            8000 + i % 1000
        ));
    }
    std::fs::write(&list, csv).map_err(|e| Error::io("cannot write", &list, e))?;
    let say = |out: &mut dyn Write, text: String| -> pwcache::Result<()> {
        writeln!(out, "{text}").map_err(|e| Error::Io {
            context: "cannot write to standard output".into(),
            source: e,
        })
    };

    say(
        out,
        format!("pwcache demo, cache under {}\n", dir.display()),
    )?;
    let cache = CacheManager::open(config.clone())?;
    let cleared = cache.clear()?;
    if cleared > 0 {
        say(
            out,
            format!("(cleared {cleared} entries left by an earlier demo)"),
        )?;
    }
    let started = Instant::now();
    let counts = cache.warm_from_file(&list, None)?.counts;
    say(
        out,
        format!(
            "1. warm: loaded {} proxies from {} in {:.3} s (L1 keeps the last 1,000; L2 and L3 all)",
            counts.loaded,
            list.display(),
            started.elapsed().as_secs_f64()
        ),
    )?;

    let sample = [9_999usize, 9_998, 3];
    say(out, "2. reads:".into())?;
    for i in sample {
        let url = format!(
            "http://10.{}.{}.{}:{}",
            i / 65536,
            (i / 256) % 256,
            i % 256,
            8000 + i % 1000
        );
        let key = generate_cache_key(&url);
        let entry = cache
            .get(&key)?
            .ok_or_else(|| Error::NotFound(format!("demo entry {key} missing")))?;
        say(
            out,
            format!(
                "   {key} -> {} (credentials: {}, read {} time(s))",
                entry.proxy_url,
                if entry.username.is_some() {
                    "yes, decrypted"
                } else {
                    "none"
                },
                entry.access_count
            ),
        )?;
    }
    let s = cache.statistics();
    say(
        out,
        format!(
            "   L1 hits {}, L1 misses {}, L2 hits {}, promotions {}",
            s.l1_stats.hits, s.l1_stats.misses, s.l2_stats.hits, s.promotions
        ),
    )?;
    drop(cache);

    let cache = CacheManager::open(config.clone())?;
    let key = generate_cache_key("http://10.0.0.3:8003");
    let entry = cache
        .get(&key)?
        .ok_or_else(|| Error::NotFound("demo entry missing after restart".into()))?;
    let s = cache.statistics();
    say(
        out,
        format!(
            "3. restart: a new handle found {key} on disk (L1 miss {}, L2 hit {}), promoted it \
             (promotions {}); its read count carried over: {}",
            s.l1_stats.misses, s.l2_stats.hits, s.promotions, entry.access_count
        ),
    )?;

    let sick = generate_cache_key("http://10.0.0.4:8004");
    let mut evicted = false;
    let mut checks = 0;
    while !evicted {
        evicted = cache.invalidate_by_health(&sick)?;
        checks += 1;
    }
    say(
        out,
        format!(
            "4. health: {checks} failed checks of {sick} reached failure_threshold; removed \
             from every tier (evictions_health L1/L2/L3: {}/{}/{})",
            cache.statistics().l1_stats.evictions_health,
            cache.statistics().l2_stats.evictions_health,
            cache.statistics().l3_stats.evictions_health
        ),
    )?;

    let mut short = EntryInput::with_url("http://192.0.2.1:3128");
    short.ttl_seconds = Some(1);
    short.source = Some("short-lived".into());
    cache.put("short-lived", short)?;
    let ttl = TtlManager::new(&cache, 0.25)?;
    ttl.start();
    std::thread::sleep(Duration::from_millis(1300));
    ttl.stop();
    let s = cache.statistics();
    say(
        out,
        format!(
            "5. TTL: an entry with ttl_seconds=1 was swept by the background sweeper \
             (evictions_ttl L1/L2/L3: {}/{}/{}); get now finds {}",
            s.l1_stats.evictions_ttl,
            s.l2_stats.evictions_ttl,
            s.l3_stats.evictions_ttl,
            if cache.get("short-lived")?.is_some() {
                "it"
            } else {
                "nothing"
            }
        ),
    )?;

    say(out, "\n6. statistics:".into())?;
    say(out, stats_table(&cache.statistics()))?;
    say(
        out,
        format!(
            "\nTry: pwcache --l2-dir {0}/proxies --l3-db {0}/db/proxywhirl.db stats",
            dir.display()
        ),
    )?;
    Ok(())
}
