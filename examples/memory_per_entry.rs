//! Resident memory per entry of L1 (`MemoryTier`, LRU) and, for comparison, of `moka` and
//! `quick_cache` holding the same entries, for 1k to 1M entries.
//!
//! Each measurement runs in a child process of its own (the allocator does not return freed
//! memory to the system, so a second measurement in one process would read low): the child
//! reads its resident set size (`/proc/self/statm`), fills the cache with N entries (16-hex-char
//! keys, `http://10.a.b.c:8080` URLs, no credentials), reads it again and prints the difference
//! divided by N. Linux only.
//!
//! `cargo run --release --example memory_per_entry` (`PWCACHE_BENCH_QUICK=1` leaves out 1M).

use std::process::Command;

use pwcache::config::EvictionPolicy;
use pwcache::tier::memory::MemoryTier;
use pwcache::{Clock, SystemClock};

// The benchmarks' entries, so the figures match theirs.
#[path = "../benches/common/mod.rs"]
mod common;

use common::entry;

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page
}

/// The child: fills one cache and prints bytes per entry.
fn measure(which: &str, n: usize) {
    let now = SystemClock.now();
    let before = resident_bytes();
    let held: Box<dyn std::any::Any> = match which {
        "pwcache" => {
            let l1 = MemoryTier::new(Some(n as u64), EvictionPolicy::Lru);
            for i in 0..n {
                l1.insert(entry(i, now), false);
            }
            assert_eq!(l1.size(), n);
            Box::new(l1)
        }
        "moka" => {
            let cache = moka::sync::Cache::new(n as u64);
            for i in 0..n {
                let e = entry(i, now);
                cache.insert(e.key.clone(), e);
            }
            cache.run_pending_tasks();
            Box::new(cache)
        }
        "quick_cache" => {
            let cache = quick_cache::sync::Cache::new(n);
            for i in 0..n {
                let e = entry(i, now);
                cache.insert(e.key.clone(), e);
            }
            Box::new(cache)
        }
        other => panic!("unknown cache {other}"),
    };
    let after = resident_bytes();
    std::hint::black_box(&held);
    println!("{:.0}", (after.saturating_sub(before)) as f64 / n as f64);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 {
        measure(&args[1], args[2].parse().unwrap());
        return;
    }
    let quick = std::env::var("PWCACHE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let mut sizes = vec![1_000, 10_000, 100_000];
    if !quick {
        sizes.push(1_000_000);
    }
    let me = std::env::current_exe().unwrap();
    println!("| entries | pwcache L1 (B/entry) | moka (B/entry) | quick_cache (B/entry) |");
    println!("|---:|---:|---:|---:|");
    for n in sizes {
        let mut row = format!("| {n} |");
        for which in ["pwcache", "moka", "quick_cache"] {
            let out = Command::new(&me)
                .args([which, &n.to_string()])
                .output()
                .unwrap();
            assert!(out.status.success(), "{which} {n} failed");
            row.push_str(&format!(
                " {} |",
                String::from_utf8_lossy(&out.stdout).trim()
            ));
        }
        println!("{row}");
    }
}
