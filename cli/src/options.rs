//! The command line: global options, the options that say which cache a command opens (only on
//! the commands that open one), and each command's own.

use std::path::PathBuf;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::exit::STATUSES;
use crate::secret_input::PasswordInput;
use crate::store;

#[derive(Parser)]
#[command(
    name = "pwcache",
    version,
    about = "A multi-tier proxy cache: fill it, read it, see its statistics, export it",
    next_help_heading = "Global options"
)]
pub struct Cli {
    /// More log output on stderr: -v info, -vv debug (RUST_LOG=pwcache=trace and the like
    /// override both; warnings are always shown).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Joins the fleet's shared tier on this Redis server (redis:// or rediss://, may carry
    /// user:password@, never printed); needs the same encryption key in every process.
    #[arg(long, global = true, value_name = "URL", env = crate::shared::ENV, hide_env_values = true)]
    pub shared: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// Which cache a command opens. Precedence: --l2-dir and --l3-db, then the paths a --config file
/// sets, then --store (or its default).
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Cache location")]
pub struct StoreOptions {
    /// The cache directory: L2 in DIR/proxies, L3 in DIR/db/proxywhirl.db [default:
    /// $PWCACHE_DIR, else $XDG_CACHE_HOME/pwcache, else ~/.cache/pwcache]
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// A JSON configuration file with the keys of CacheConfig (see the README); the
    /// l2_cache_dir and l3_database_path it sets win over --store.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// L2's directory (wins over --store and l2_cache_dir).
    #[arg(long, value_name = "DIR")]
    pub l2_dir: Option<PathBuf>,
    /// L3's database file (wins over --store and l3_database_path).
    #[arg(long, value_name = "FILE")]
    pub l3_db: Option<PathBuf>,
    /// L2's format: JSON Lines files or one SQLite database (wins over l2_backend).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub l2_backend: Option<Backend>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Backend {
    /// JSON Lines shards in the L2 directory (proxywhirl's format).
    Jsonl,
    /// <L2 directory>/l2_cache.db.
    Sqlite,
}

/// The entry a command acts on: its key, or the URL whose key it is.
#[derive(Args, Clone, Debug)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// The cache key (`pwcache key URL` prints the key of a URL).
    #[arg(value_name = "KEY")]
    pub key: Option<String>,
    /// The proxy URL, as it was put or warmed, instead of its key.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

impl Target {
    pub fn key(&self) -> Result<String, crate::exit::Failure> {
        match (&self.key, &self.url) {
            (Some(key), _) => Ok(key.clone()),
            (None, Some(url)) => Ok(pwcache::generate_cache_key(url)),
            (None, None) => Err(crate::exit::Failure::new(2, "give a KEY or --url URL")),
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Load proxies from a .json (an array), .jsonl or .csv file with a proxy_url field.
    Warm {
        /// The file to load (.json, .jsonl or .csv).
        file: PathBuf,
        /// TTL in seconds for every loaded entry (0 = already expired) [default: per_source_ttl,
        /// else default_ttl_seconds].
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<i64>,
        #[command(flatten)]
        store: StoreOptions,
    },
    /// Print an entry as JSON, credentials included.
    Get {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        store: StoreOptions,
    },
    /// Store a proxy under the cache key of its URL; prints the key.
    Put {
        /// The proxy URL, with a scheme and a host (http://10.0.0.1:8080).
        url: String,
        /// The proxy's user name (stored encrypted).
        #[arg(long)]
        username: Option<String>,
        #[command(flatten)]
        password: PasswordInput,
        /// Where the proxy came from (its TTL is per_source_ttl's for that source).
        #[arg(long)]
        source: Option<String>,
        /// TTL in seconds [default: per_source_ttl of --source, else default_ttl_seconds].
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<i64>,
        #[command(flatten)]
        store: StoreOptions,
    },
    /// Remove an entry from every tier.
    Delete {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        store: StoreOptions,
    },
    /// Record a failed health check; the entry is removed at failure_threshold.
    Invalidate {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        store: StoreOptions,
    },
    /// What the cache holds, and the hit/miss counters of every handle that has closed.
    Stats {
        /// As JSON.
        #[arg(long)]
        json: bool,
        /// Then start the closed handles' counters again (e.g. each morning, to read one day).
        #[arg(long)]
        reset: bool,
        #[command(flatten)]
        store: StoreOptions,
    },
    /// Write every live entry to a JSON Lines file (credentials masked by default).
    Export {
        /// The file to write; its directory must exist.
        file: PathBuf,
        /// Write usernames and passwords in plain text.
        #[arg(long)]
        include_credentials: bool,
        /// Replace FILE if it exists (without this, an existing FILE is an error).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        store: StoreOptions,
    },
    /// Remove expired entries from every tier now.
    Cleanup {
        #[command(flatten)]
        store: StoreOptions,
    },
    /// Print the cache key of a URL (opens no cache).
    Key {
        /// The proxy URL.
        url: String,
    },
    /// Show what pwcache does on 10,000 generated proxies, in a cache of its own (never yours).
    Demo {
        /// The demo's directory: new, empty, or one an earlier demo made (its cache is cleared)
        /// [default: a new directory under $TMPDIR, kept and named at the end].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Three scraper processes on one shared pool instead: a redis-server of the demo's
        /// own, or the one of --shared.
        #[arg(long)]
        fleet: bool,
    },
    /// One scraper of `demo --fleet` (started by it).
    #[command(hide = true)]
    FleetScraper {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        namespace: String,
    },
}

/// Parses the command line; `--help` ends with the default cache and the exit statuses.
pub fn parse() -> Cli {
    let default_store = match store::default_dir() {
        Ok(dir) => dir.display().to_string(),
        Err(e) => format!("none ({})", e.message),
    };
    let after = format!(
        "Cache: {default_store} unless --store, --config or --l2-dir/--l3-db say otherwise \
         (set by $PWCACHE_DIR, else $XDG_CACHE_HOME/pwcache, else ~/.cache/pwcache).\n\
         Password for put: --password, --password-stdin or $PWCACHE_PASSWORD.\n\n{STATUSES}"
    );
    let command = Cli::command().after_help(after);
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}
