//! The eviction order of the tier's keys and the `max_entries` bound (docs/FORMAT.md §3.10): the
//! order built at open from what the files say, the place of a batch's keys in it, and the
//! tombstoning of victims once a write leaves too many keys.

use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use crate::config::EvictionPolicy;
use crate::error::Result;
use crate::fast_hash::{FastMap, FastSet};
use crate::stats::Counter;
use crate::tier::order::EvictionOrder;
use crate::time::Timestamp;

use super::load::Found;
use super::shard::{Op, SHARDS, Shard, Shared, shard_index};

/// Indexes the records found at open (`found[id]` for shard `id`) and returns their eviction
/// order: by `last_accessed` (LRU), by `access_count` then `last_accessed` (LFU: use counts
/// themselves start afresh), or by `fetch_time` (FIFO); ties in file order.
pub(super) fn index_at_open(
    policy: EvictionPolicy,
    shards: &mut [Shard],
    found: Vec<FastMap<Arc<str>, Found>>,
) -> EvictionOrder<Arc<str>> {
    let mut all: Vec<(usize, Arc<str>, Found)> = found
        .into_iter()
        .enumerate()
        .flat_map(|(id, records)| records.into_iter().map(move |(k, v)| (id, k, v)))
        .collect();
    let min = Timestamp::MIN;
    match policy {
        EvictionPolicy::Lru => {
            all.sort_by_key(|(_, _, v)| (v.meta.last_accessed.unwrap_or(min), v.position))
        }
        EvictionPolicy::Lfu => all.sort_by_key(|(_, _, v)| {
            (
                v.meta.access_count,
                v.meta.last_accessed.unwrap_or(min),
                v.position,
            )
        }),
        EvictionPolicy::Fifo => {
            all.sort_by_key(|(_, _, v)| (v.meta.fetch_time.unwrap_or(min), v.position))
        }
    }
    let mut order = EvictionOrder::new(policy);
    for (id, key, found) in all {
        let handle = order.insert(key.clone());
        shards[id].insert(key, &found, handle);
    }
    order
}

/// Gives the keys of a batch just appended (`guards[id]` holds shard `id` when the batch wrote
/// to it) their places in the order given, as if they had been written one by one: appends go
/// shard by shard. `inserted` are the keys the batch added.
pub(super) fn place_batch(
    shared: &Shared,
    guards: &mut [Option<MutexGuard<'_, Shard>>],
    batch_keys: &[Arc<str>],
    mut inserted: FastSet<Arc<str>>,
) {
    let mut order = shared.order.lock();
    for key in batch_keys {
        let Some(guard) = guards[shard_index(key)].as_mut() else {
            continue;
        };
        let Some(handle) = guard.handle_mut(key) else {
            continue;
        };
        if inserted.remove(key) {
            order.remove(*handle);
            *handle = order.insert(key.clone());
        } else if shared.ctx.eviction_policy == EvictionPolicy::Lru {
            order.touch(*handle);
        }
    }
}

/// Tombstones victims when this handle's index holds more than `max_entries` keys, down to
/// 99% of it (for a tier of 100 or more), so that one tombstone append per shard serves the
/// next puts too instead of one append per put. The keys just written are the last
/// candidates: under LFU a new key has the fewest uses, and evicting it on arrival would keep
/// every new key out of a full tier.
pub(super) fn enforce(
    shared: &Shared,
    shards: &[Mutex<Shard>],
    just_written: &[Arc<str>],
) -> Result<()> {
    let Some(max) = shared.ctx.max_entries else {
        return Ok(());
    };
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    if shared.order.lock().len() <= max {
        return Ok(());
    }
    let mut guards: Vec<MutexGuard<'_, Shard>> = shards.iter().map(|s| s.lock()).collect();
    let chosen = {
        let mut order = shared.order.lock();
        let target = max - max / 100;
        let protected: FastSet<&str> = just_written.iter().map(|k| &**k).collect();
        let mut chosen: Vec<Arc<str>> = order
            .iter()
            .filter(|k| !protected.contains(&***k))
            .take(order.len().saturating_sub(target))
            .cloned()
            .collect();
        for key in &chosen {
            if let Some(slot) = guards[shard_index(key)].forget(key) {
                order.remove(slot.handle);
            }
        }
        while order.len() > target {
            let Some(key) = order.pop_victim() else { break };
            guards[shard_index(&key)].forget(&key);
            chosen.push(key);
        }
        chosen
    };
    let count = chosen.len() as u64;
    let mut victims: Vec<Vec<Op>> = (0..SHARDS).map(|_| Vec::new()).collect();
    for key in chosen {
        // Out of the index already: the tombstone is written whatever the index says.
        victims[shard_index(&key)].push(Op::Delete {
            key,
            only_if_present: false,
        });
    }
    shared.ctx.counters.add(Counter::EvictionsLru, count);
    log::debug!("jsonl L2: evicted {count} entries over max_entries = {max}");
    for (id, ops) in victims.into_iter().enumerate() {
        if !ops.is_empty() {
            guards[id].append(shared, ops)?;
        }
    }
    Ok(())
}
