//! `pwcache`: inspect and fill a pwcache cache from the command line, or see it work (`demo`).
//!
//! A thin layer over the library: every subcommand is one or two library calls. The files:
//! `options` (the command line), `store` (which cache a command opens, and the per-user default),
//! `logging` (`-v`, `-vv`, `RUST_LOG`), `secret_input` (`--password`, `--password-stdin`,
//! `PWCACHE_PASSWORD`), `entries` (key, get, put, delete, invalidate), `warm`, `export`,
//! `interrupt` (Ctrl-C during warm and export), `stats`, `demo`, `exit` (the exit statuses).
//! `shared` (`--shared URL` on every command) and `fleet_demo` (`demo --fleet` and the hidden
//! `fleet-scraper` it starts) are the fleet's part.

mod demo;
mod entries;
mod exit;
mod export;
mod fleet_demo;
mod interrupt;
mod logging;
mod options;
mod progress;
mod secret_input;
mod shared;
mod stats;
mod store;
mod warm;

use std::io::Write;
use std::process::ExitCode;

use options::{Cli, Command};
use pwcache::{CacheManager, Error};

fn main() -> ExitCode {
    let cli = options::parse();
    logging::init(cli.verbose);
    shared::use_for_every_cache(cli.shared.clone());
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

fn run(cli: Cli) -> Result<(), exit::Failure> {
    let out = &mut std::io::stdout().lock();
    match cli.command {
        Command::Key { url } => entries::key(out, &url),
        Command::Demo { fleet: true, .. } => Ok(fleet_demo::run(out, cli.shared.as_deref())?),
        Command::Demo { dir, .. } => demo::run(out, dir.as_deref()),
        Command::FleetScraper { dir, namespace } => Ok(fleet_demo::scraper(&dir, &namespace)?),
        Command::Warm { store, file, ttl } => {
            let cache = store::open(&store, store::Access::Create)?;
            warm::run(out, &cache, &file, ttl, cli.verbose > 0)
        }
        Command::Get { store, target } => {
            let cache = store::open(&store, store::Access::Existing)?;
            entries::get(out, &cache, &target.key()?)
        }
        Command::Put {
            store,
            url,
            username,
            password,
            source,
            ttl,
        } => {
            let password = password.read()?;
            let cache = store::open(&store, store::Access::Create)?;
            entries::put(out, &cache, url, username, password, source, ttl)
        }
        Command::Delete { store, target } => {
            let cache = store::open(&store, store::Access::Existing)?;
            entries::delete(out, &cache, &target.key()?)
        }
        Command::Invalidate { store, target } => {
            let cache = store::open(&store, store::Access::Existing)?;
            entries::invalidate(out, &cache, &target.key()?)
        }
        Command::Stats { store, json, reset } => {
            let cache = store::open(&store, store::Access::Existing)?;
            stats::run(out, &cache, json, reset)
        }
        Command::Export {
            store,
            file,
            include_credentials,
            force,
        } => {
            export::check_destination(&file, force)?;
            let cache = store::open(&store, store::Access::Existing)?;
            export::run(out, &cache, &file, include_credentials)
        }
        Command::Cleanup { store } => {
            let cache = store::open(&store, store::Access::Existing)?;
            cleanup(out, &cache)
        }
    }
}

fn cleanup(out: &mut impl Write, cache: &CacheManager) -> Result<(), exit::Failure> {
    let removed = cache.cleanup_expired()?;
    print(out, &format!("removed {removed} expired entries"))
}

/// One line on standard output.
pub(crate) fn print(out: &mut (impl Write + ?Sized), text: &str) -> Result<(), exit::Failure> {
    writeln!(out, "{text}").map_err(|e| {
        Error::Io {
            context: "cannot write to standard output".into(),
            source: e,
        }
        .into()
    })
}
