//! `pwcache demo`: each behaviour once, on 10,000 generated proxies, in a cache of its own.
//!
//! The demo never reads, changes or clears a cache it did not create: by default it makes a new
//! directory under `$TMPDIR`; `--dir` takes a directory that does not exist, is empty, or holds
//! the marker file of an earlier demo (then, and only then, its cache is cleared). Every figure it
//! prints is read from the cache at that moment (the CLI tests compare them with what the cache
//! holds), and its last lines are commands that work as printed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pwcache::{
    CacheConfig, CacheManager, CacheStatistics, EntryInput, Error, TierLevel, TtlManager,
    generate_cache_key,
};

use crate::exit::Failure;
use crate::stats::grouped;
use crate::{print, store};

/// The file that marks a directory as the demo's own.
const MARKER: &str = ".pwcache-demo";
const PROXIES: usize = 10_000;

fn url_of(i: usize) -> String {
    format!(
        "http://10.{}.{}.{}:{}",
        i / 65536,
        (i / 256) % 256,
        i % 256,
        8000 + i % 1000
    )
}

/// The demo's directory: made here, or one that is empty or an earlier demo's.
fn prepare(dir: Option<&Path>) -> Result<(PathBuf, bool), Failure> {
    let Some(dir) = dir else {
        let made = tempfile::Builder::new()
            .prefix("pwcache-demo-")
            .tempdir()
            .map_err(|e| {
                Failure::new(
                    1,
                    format!(
                        "cannot make a directory for the demo in {}: {e}",
                        std::env::temp_dir().display()
                    ),
                )
            })?;
        return Ok((made.keep(), false));
    };
    if dir.exists() {
        if !dir.is_dir() {
            return Err(Failure::new(
                1,
                format!("--dir {}: not a directory", dir.display()),
            ));
        }
        let earlier = dir.join(MARKER).is_file();
        let empty = std::fs::read_dir(dir)
            .map_err(|e| Error::io("cannot read", dir, e))?
            .next()
            .is_none();
        if !earlier && !empty {
            return Err(Failure::new(
                1,
                format!(
                    "--dir {}: not empty, and not made by an earlier demo (no {MARKER} in it). \
                     The demo only uses a directory of its own: give a new or empty one, or \
                     none (a new one under {})",
                    dir.display(),
                    std::env::temp_dir().display()
                ),
            ));
        }
        return Ok((dir.to_path_buf(), earlier));
    }
    pwcache::fsutil::create_private_dir_all(dir)?;
    Ok((dir.to_path_buf(), false))
}

/// How to call this program in the printed commands: `pwcache` when that is what `PATH` finds,
/// else the absolute path of this executable.
fn program() -> String {
    let Ok(exe) = std::env::current_exe().and_then(|p| p.canonicalize()) else {
        return "pwcache".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .any(|d| d.join("pwcache").canonicalize().is_ok_and(|p| p == exe))
    });
    if on_path {
        "pwcache".into()
    } else {
        quote(&exe.display().to_string())
    }
}

/// `text` as one shell word.
fn quote(text: &str) -> String {
    let plain = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:,=@%".contains(c));
    if plain && !text.is_empty() {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The tiers that hold `key` now (a peek: counts nothing).
fn holders(cache: &CacheManager, key: &str) -> Result<String, Failure> {
    let mut names = Vec::new();
    for (tier, name) in [
        (TierLevel::L1, "L1"),
        (TierLevel::L2, "L2"),
        (TierLevel::L3, "L3"),
    ] {
        if cache.tier_get(tier, key)?.is_some() {
            names.push(name);
        }
    }
    Ok(if names.is_empty() {
        "no tier".into()
    } else {
        names.join(" + ")
    })
}

/// Which tiers' counter moved between two snapshots.
fn moved(
    before: &CacheStatistics,
    after: &CacheStatistics,
    counter: fn(&pwcache::TierStatistics) -> u64,
) -> Vec<&'static str> {
    [
        ("L1", counter(&after.l1_stats) - counter(&before.l1_stats)),
        ("L2", counter(&after.l2_stats) - counter(&before.l2_stats)),
        ("L3", counter(&after.l3_stats) - counter(&before.l3_stats)),
    ]
    .into_iter()
    .filter_map(|(name, n)| (n > 0).then_some(name))
    .collect()
}

pub fn run(out: &mut impl Write, dir: Option<&Path>) -> Result<(), Failure> {
    let (dir, earlier) = prepare(dir)?;
    pwcache::fsutil::touch_private(&dir.join(MARKER))?;
    let (l2, l3) = store::layout(&dir);
    let key_file = l2.join("pwcache.key");
    let config = CacheConfig {
        l2_cache_dir: l2,
        l3_database_path: l3,
        ..CacheConfig::default()
    };
    let l2_cap = config.l2.max_entries.unwrap_or(0);
    let l1_cap = config.l1.max_entries.unwrap_or(0);
    let list = dir.join("demo-proxies.csv");
    let mut csv = String::from("proxy_url,username,password,source\n");
    for i in 0..PROXIES {
        let (user, pass) = if i % 3 == 0 {
            (format!("user{i}"), format!("pw-{i:05}"))
        } else {
            (String::new(), String::new())
        };
        csv.push_str(&format!("{},{user},{pass},demo-list\n", url_of(i)));
    }
    std::fs::write(&list, csv).map_err(|e| Error::io("cannot write", &list, e))?;

    print(
        out,
        &format!("pwcache demo, in its own directory {}\n", dir.display()),
    )?;
    let cache = CacheManager::open(config.clone())?;
    if earlier {
        let cleared = cache.clear()?;
        cache.reset_closed_handle_statistics()?;
        print(
            out,
            &format!("(an earlier demo's directory: cleared its {cleared} entries and counters)"),
        )?;
    }

    let started = Instant::now();
    let counts = cache.warm_from_file(&list, None)?.counts;
    let s = cache.statistics();
    print(
        out,
        &format!(
            "1. warm: loaded {} proxies from {} in {:.3} s, a third with a username and \
             password (stored encrypted with the key in {}).\n   The tiers hold: L1 {} (memory, cap {}: the last \
             loaded), L2 {} (disk, cap {}: the least recently used make room), L3 {} (SQLite, \
             no cap).",
            grouped(counts.loaded),
            list.display(),
            started.elapsed().as_secs_f64(),
            key_file.display(),
            grouped(s.l1_stats.current_size),
            grouped(l1_cap),
            grouped(s.l2_stats.current_size),
            grouped(l2_cap),
            grouped(s.l3_stats.current_size),
        ),
    )?;

    print(
        out,
        "2. reads (a read is answered by the first tier that holds the entry):",
    )?;
    let sample = [PROXIES - 1, PROXIES - 2, 3];
    for i in sample {
        let url = url_of(i);
        let key = generate_cache_key(&url);
        let held = holders(&cache, &key)?;
        let before = cache.statistics();
        let entry = cache
            .get(&key)?
            .ok_or_else(|| Error::NotFound(format!("demo entry {key} missing")))?;
        let after = cache.statistics();
        let answered = moved(&before, &after, |t| t.hits);
        let how = match answered.first().copied() {
            Some("L1") => "an L1 hit".to_string(),
            Some(tier) => format!(
                "missed {}, hit in {tier}, copied up: now held by {}",
                moved(&before, &after, |t| t.misses).join(" and "),
                holders(&cache, &key)?
            ),
            None => "no tier answered".into(),
        };
        print(
            out,
            &format!(
                "   {url} (key {key}, held by {held}): {how}; credentials {}, read {} time(s)",
                if entry.username.is_some() {
                    "decrypted"
                } else {
                    "none"
                },
                entry.access_count
            ),
        )?;
    }
    drop(cache);

    let cache = CacheManager::open(config.clone())?;
    let url = url_of(3);
    let key = generate_cache_key(&url);
    let held = holders(&cache, &key)?;
    let before = cache.statistics();
    let entry = cache
        .get(&key)?
        .ok_or_else(|| Error::NotFound("demo entry missing after restart".into()))?;
    let after = cache.statistics();
    print(
        out,
        &format!(
            "3. restart: a new handle (empty L1) read {url} again: held by {held}, hit in {}; \
             its read count went on from the first handle's: {}",
            moved(&before, &after, |t| t.hits).join(", "),
            entry.access_count
        ),
    )?;

    let sick_url = url_of(4);
    let sick = generate_cache_key(&sick_url);
    let held = holders(&cache, &sick)?;
    let before = cache.statistics();
    let mut checks = 0;
    while !cache.invalidate_by_health(&sick)? {
        checks += 1;
        if checks > 100 {
            return Err(Failure::new(1, "the demo entry was never evicted"));
        }
    }
    checks += 1;
    let after = cache.statistics();
    print(
        out,
        &format!(
            "4. health: {checks} failed checks of {sick_url} reached failure_threshold ({}); it \
             was held by {held} and removed from every tier that held it (evictions_health rose \
             in {}); now held by {}",
            config.failure_threshold,
            moved(&before, &after, |t| t.evictions_health).join(", "),
            holders(&cache, &sick)?
        ),
    )?;

    let mut short = EntryInput::with_url("http://192.0.2.1:3128");
    short.ttl_seconds = Some(1);
    short.source = Some("short-lived".into());
    let short_key = generate_cache_key("http://192.0.2.1:3128");
    cache.put(&short_key, short)?;
    let held = holders(&cache, &short_key)?;
    let before = cache.statistics();
    let ttl = TtlManager::new(&cache, 0.25)?;
    ttl.start();
    std::thread::sleep(Duration::from_millis(1300));
    ttl.stop();
    // The sweeper shares the handle: it must go before the handle can close.
    drop(ttl);
    let after = cache.statistics();
    print(
        out,
        &format!(
            "5. TTL: http://192.0.2.1:3128 was put with ttl_seconds=1 ({held}); the background \
             sweeper (every 0.25 s) removed it after 1 s from {}; now held by {}",
            moved(&before, &after, |t| t.evictions_ttl).join(", "),
            holders(&cache, &short_key)?
        ),
    )?;
    drop(cache);

    // What `pwcache stats` shows for this directory: the tiers now, and both handles' counters.
    let cache = CacheManager::open(config.clone())?;
    let summary = cache.summary();
    let totals = cache.closed_handle_statistics()?;
    print(
        out,
        "\n6. statistics (both handles' counters, added when each closed; as `pwcache stats` \
         shows them):\n",
    )?;
    print(
        out,
        &crate::stats::table(&cache, &summary, totals.as_ref(), &[]),
    )?;
    drop(cache);

    let program = program();
    let store = quote(&dir.display().to_string());
    print(
        out,
        &format!(
            "\nThis cache is the demo's own, kept in {store}. Try:\n  {program} stats --store \
             {store}\n  {program} get --store {store} --url {}\n  rm -r {store}    # when done",
            url_of(PROXIES - 1)
        ),
    )
}
