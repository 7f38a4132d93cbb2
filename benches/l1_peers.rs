//! L1 (`MemoryTier`, LRU) against its peers, `moka::sync::Cache` and `quick_cache::sync::Cache`,
//! with the same capacity, the same keys (16 hex chars) and the same values (`CacheEntry`; all
//! three hand back a clone on a hit).
//!
//! - `l1_get_cap{C}_t{T}`: hits only, keys in a shuffled order, at 1 and 2 threads.
//! - `l1_put_cap{C}_t{T}`: keys not held (the cache is full, so every put evicts).
//!
//! In each group the functions are `pwcache`, `moka` and `quick_cache`; the ratio asked by the
//! issue is pwcache's throughput over moka's. With 2 threads, each thread does `iters` operations
//! and the time is from the first thread's start to the last one's end (thread start-up is not
//! timed), so the throughput is of both threads together.
//!
//! `cargo bench --bench l1_peers`

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pwcache::config::EvictionPolicy;
use pwcache::tier::memory::{MemoryTier, Read};
use pwcache::{CacheEntry, Clock, SystemClock, Timestamp};

mod common;

use common::{entry, mix};

const CAPACITIES: [usize; 2] = [1_000, 100_000];

/// The operations compared, the same for the three caches.
trait L1: Sync {
    fn get(&self, key: &str, now: Timestamp) -> Option<CacheEntry>;
    fn put(&self, entry: &CacheEntry);
    fn holds(&self, key: &str) -> bool;
}

impl L1 for MemoryTier {
    fn get(&self, key: &str, now: Timestamp) -> Option<CacheEntry> {
        match self.read(key, now) {
            Read::Hit(entry) => Some(entry),
            _ => None,
        }
    }

    fn put(&self, entry: &CacheEntry) {
        // An L1 victim waits for its write-back; alone, L1 drops it, as the peers do.
        for victim in self.insert(entry.clone(), false) {
            black_box(self.take_evicted(&victim));
        }
    }

    fn holds(&self, key: &str) -> bool {
        self.peek(key).is_some()
    }
}

impl L1 for moka::sync::Cache<String, CacheEntry> {
    fn get(&self, key: &str, _now: Timestamp) -> Option<CacheEntry> {
        moka::sync::Cache::get(self, key)
    }

    fn put(&self, entry: &CacheEntry) {
        self.insert(entry.key.clone(), entry.clone());
    }

    fn holds(&self, key: &str) -> bool {
        self.contains_key(key)
    }
}

impl L1 for quick_cache::sync::Cache<String, CacheEntry> {
    fn get(&self, key: &str, _now: Timestamp) -> Option<CacheEntry> {
        quick_cache::sync::Cache::get(self, key)
    }

    fn put(&self, entry: &CacheEntry) {
        self.insert(entry.key.clone(), entry.clone());
    }

    fn holds(&self, key: &str) -> bool {
        self.peek(key).is_some()
    }
}

struct Peers {
    pwcache: MemoryTier,
    moka: moka::sync::Cache<String, CacheEntry>,
    quick: quick_cache::sync::Cache<String, CacheEntry>,
}

impl Peers {
    fn new(capacity: usize) -> Peers {
        Peers {
            pwcache: MemoryTier::new(Some(capacity as u64), EvictionPolicy::Lru),
            moka: moka::sync::Cache::new(capacity as u64),
            quick: quick_cache::sync::Cache::new(capacity),
        }
    }

    fn all(&self) -> [(&'static str, &dyn L1); 3] {
        [
            ("pwcache", &self.pwcache as &dyn L1),
            ("moka", &self.moka),
            ("quick_cache", &self.quick),
        ]
    }

    fn fill(&self, entries: &[CacheEntry]) {
        for (_, cache) in self.all() {
            for e in entries {
                cache.put(e);
            }
        }
        self.moka.run_pending_tasks();
    }
}

/// Runs `op(thread, i)` for `i` in `0..iters` on each of `threads` threads; the wall time from the
/// first start to the last end.
fn timed_threads(threads: usize, iters: u64, op: &(dyn Fn(usize, u64) + Sync)) -> Duration {
    if threads == 1 {
        let start = Instant::now();
        for i in 0..iters {
            op(0, i);
        }
        return start.elapsed();
    }
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        op(t, i);
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let first = spans.iter().map(|s| s.0).min().unwrap();
    let last = spans.iter().map(|s| s.1).max().unwrap();
    last - first
}

fn bench_get(c: &mut Criterion) {
    let now = SystemClock.now();
    for capacity in CAPACITIES {
        let peers = Peers::new(capacity);
        let entries: Vec<CacheEntry> = (0..capacity).map(|i| entry(i, now)).collect();
        peers.fill(&entries);
        // Hits only: the keys every cache holds (quick_cache and moka may decline a few).
        let mut keys: Vec<String> = entries
            .iter()
            .map(|e| e.key.clone())
            .filter(|k| peers.all().iter().all(|(_, c)| c.holds(k)))
            .collect();
        assert!(keys.len() * 10 >= capacity * 9, "too few common keys");
        // Shuffle by sorting on a hash of the key.
        keys.sort_by_key(|k| mix(u64::from_str_radix(k, 16).unwrap()));
        let n = keys.len() as u64;
        for threads in [1, 2] {
            let mut group = c.benchmark_group(format!("l1_get_cap{capacity}_t{threads}"));
            group.throughput(Throughput::Elements(threads as u64));
            for (name, cache) in peers.all() {
                let mut cursor = 0u64;
                group.bench_function(name, |b| {
                    b.iter_custom(|iters| {
                        let base = cursor;
                        cursor = cursor.wrapping_add(iters);
                        timed_threads(threads, iters, &|t, i| {
                            // Thread t starts half-way round the key order from thread t-1.
                            let j = (base + i + t as u64 * n / 2) % n;
                            let hit = cache.get(&keys[j as usize], now);
                            debug_assert!(hit.is_some());
                            black_box(hit);
                        })
                    })
                });
            }
            group.finish();
        }
    }
}

fn bench_put(c: &mut Criterion) {
    let now = SystemClock.now();
    for capacity in CAPACITIES {
        // Twice the capacity of distinct keys, written in a cycle after filling with the first
        // half: a key written is never held at the time (under LRU it was evicted `capacity`
        // puts ago), so each put evicts one entry.
        let pool: Vec<CacheEntry> = (0..2 * capacity).map(|i| entry(i, now)).collect();
        let peers = Peers::new(capacity);
        peers.fill(&pool[..capacity]);
        let n = pool.len() as u64;
        // Per cache, the pool position of the next put, kept from one thread count to the next.
        let mut positions = [capacity as u64; 3];
        for threads in [1u64, 2] {
            let mut group = c.benchmark_group(format!("l1_put_cap{capacity}_t{threads}"));
            group.throughput(Throughput::Elements(threads));
            for ((name, cache), position) in peers.all().into_iter().zip(&mut positions) {
                // Thread t writes the pool entries t, t + threads, t + 2 threads, ... so no two
                // threads write one key and together they walk the pool in order.
                group.bench_function(name, |b| {
                    b.iter_custom(|iters| {
                        let base = *position / threads;
                        *position = (base + iters) * threads;
                        timed_threads(threads as usize, iters, &|t, i| {
                            let j = ((base + i) * threads + t as u64) % n;
                            cache.put(&pool[j as usize]);
                        })
                    })
                });
            }
            group.finish();
        }
    }
}

criterion_group!(benches, bench_get, bench_put);
criterion_main!(benches);
