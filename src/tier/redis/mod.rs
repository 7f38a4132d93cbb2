//! The shared tier: the fleet's pool in Redis (6 or later, or Valkey), one namespace per pool.
//!
//! - [`connection`]: the URL (masked in every message), a pool of blocking connections with the
//!   configured timeouts, and fail-fast after a network failure;
//! - [`names`]: the keys and channel of a namespace (`pwcache:{<namespace>}:...`, one hash tag)
//!   and the notices published on every change;
//! - [`record`]: an entry as a hash, credentials as Fernet tokens;
//! - [`scripts`]: the Lua scripts that make each conditional operation atomic on the server;
//! - [`subscriber`]: the notice listener that keeps other handles' L1 coherent.
//!
//! The tier implements [`Tier`] as the disk tiers do; what differs:
//!
//! - **Expiry** is done by Redis: each entry's hash gets `PEXPIREAT` at its `expires_at`
//!   (rounded up to the millisecond: Redis may keep an entry up to 1 ms past it, and the
//!   manager's check on read, `now >= expires_at`, covers that millisecond). An entry put with
//!   an `expires_at` already past by the server's clock is not stored.
//! - **Tombstones**: a delete or a health eviction leaves `t:<key>` with the server time, kept
//!   until the deleted entry's expiry (at least [`TOMBSTONE_MIN`]). `put_if_absent` (a
//!   promotion of a copy read from a local disk tier) refuses a copy fetched before it, and
//!   before the last `clear`: no handle brings back what the fleet deleted. `put_many` (a new
//!   put) removes the tombstone.
//! - **Capacity**: with `max_entries`, a put evicts inside its script by the policy (LRU by
//!   `last_accessed`, LFU by `access_count`, FIFO by insertion), counted in `evictions_lru`.
//! - **Notices**: every put, delete, health failure, eviction by health, sweep and clear
//!   publishes on the namespace's channel, from inside the script, before the call returns.

use std::collections::HashMap;
use std::time::Duration;

use redis::Value;

use crate::config::{EvictionPolicy, SharedConfig};
use crate::entry::CacheEntry;
use crate::error::{Error, Result};
use crate::stats::Counter;
use crate::time::Timestamp;

use super::{Failures, Scanned, Tier, TierContext, Unreadable, Usage, Version};

pub mod connection;
pub mod names;
pub mod record;
pub mod scripts;
pub mod subscriber;

use connection::{Conn, Pool};
use names::{Names, clear_notice, key_notice_prefix};
use record::{Undecodable, micros};

/// The shortest life of a tombstone (a day), whatever the deleted entry's expiry.
pub const TOMBSTONE_MIN: Duration = Duration::from_secs(24 * 3600);
/// Keys read per round trip by `scan`.
const SCAN_BATCH: usize = 256;

/// A pool in one namespace of one server. See the module docs.
pub struct RedisTier {
    pool: Pool,
    names: Names,
    ctx: TierContext,
    /// Names this handle in its notices.
    origin: String,
}

impl std::fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTier")
            .field("url", &self.pool.redacted_url())
            .field("prefix", &self.names.prefix())
            .finish_non_exhaustive()
    }
}

fn load_scripts(conn: &mut Conn) -> redis::RedisResult<()> {
    for script in scripts::all() {
        script.load(conn)?;
    }
    Ok(())
}

/// The policy's name for the scripts ('' when unbounded: no order is kept).
fn policy_name(ctx: &TierContext) -> &'static str {
    match (ctx.max_entries, ctx.eviction_policy) {
        (None, _) => "",
        (Some(_), EvictionPolicy::Lru) => "lru",
        (Some(_), EvictionPolicy::Lfu) => "lfu",
        (Some(_), EvictionPolicy::Fifo) => "fifo",
    }
}

/// Expiry in whole milliseconds, rounded up (see the module docs).
fn expiry_ms(expires_at: Timestamp) -> String {
    expires_at
        .as_micros()
        .div_euclid(1000)
        .saturating_add(1)
        .to_string()
}

impl RedisTier {
    /// Connects to the server of `shared` (one PING within the timeout) and loads the scripts.
    /// `origin` names this handle in its notices.
    pub fn open(shared: &SharedConfig, ctx: TierContext, origin: &str) -> Result<RedisTier> {
        let pool = Pool::new(shared, load_scripts)?;
        let tier = RedisTier {
            pool,
            names: Names::new(&shared.namespace),
            ctx,
            origin: origin.to_string(),
        };
        tier.pool
            .with("PING", |c| redis::cmd("PING").query::<String>(c))?;
        Ok(tier)
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    fn notice(&self, key: &str) -> String {
        format!("{}{key}", key_notice_prefix(&self.origin))
    }

    /// An invocation of a script that may remove `key`: its keys are the entry, the index, the
    /// eviction order and the key's tombstone, its first argument the key.
    fn invoke_on_entry<'s>(
        &self,
        script: &'s redis::Script,
        key: &str,
    ) -> redis::ScriptInvocation<'s> {
        let mut invocation = script.prepare_invoke();
        invocation
            .key(self.names.entry(key))
            .key(self.names.index())
            .key(self.names.order())
            .key(self.names.tombstone(key))
            .arg(key);
        invocation
    }

    /// The arguments of the put script for `entry`.
    fn put_invocation(&self, entry: &CacheEntry, mode: &str) -> Result<redis::Cmd> {
        let fields = record::encode(entry, &self.ctx.crypto)?;
        let policy = policy_name(&self.ctx);
        let score = match self.ctx.eviction_policy {
            EvictionPolicy::Lfu => entry.access_count.to_string(),
            _ => micros(entry.last_accessed),
        };
        let key = entry.key.as_str();
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(scripts::PUT_SCRIPT.get_hash())
            .arg(6)
            .arg(self.names.entry(key))
            .arg(self.names.index())
            .arg(self.names.order())
            .arg(self.names.tombstone(key))
            .arg(self.names.cleared())
            .arg(self.names.sequence())
            .arg(mode)
            .arg(key)
            .arg(micros(entry.expires_at))
            .arg(expiry_ms(entry.expires_at))
            .arg(micros(entry.fetch_time))
            .arg(self.ctx.max_entries.unwrap_or(0))
            .arg(policy)
            .arg(score)
            .arg(self.names.channel())
            .arg(self.notice(key))
            .arg(self.names.entry_prefix());
        for (field, value) in fields {
            cmd.arg(field).arg(value);
        }
        Ok(cmd)
    }

    /// Runs the put script for each entry in one pipeline; returns each reply.
    fn run_puts(&self, entries: &[CacheEntry], mode: &str) -> Result<Vec<Vec<Value>>> {
        let commands = entries
            .iter()
            .map(|entry| self.put_invocation(entry, mode))
            .collect::<Result<Vec<_>>>()?;
        let replies: Vec<Vec<Value>> = self.pool.with("put", |c| c.pipeline(commands))?;
        let evicted: usize = replies.iter().map(|r| r.len().saturating_sub(1)).sum();
        self.ctx.counters.add(Counter::EvictionsLru, evicted as u64);
        Ok(replies)
    }

    fn delete_with(&self, key: &str, mode: &str, version: Option<&Version>) -> Result<bool> {
        let (fetch, expires, url) = match version {
            Some(v) => (
                micros(v.fetch_time),
                micros(v.expires_at),
                v.proxy_url.clone(),
            ),
            None => Default::default(),
        };
        let mut invocation = self.invoke_on_entry(&scripts::DELETE_SCRIPT, key);
        invocation
            .arg(self.names.channel())
            .arg(self.notice(key))
            .arg(mode)
            .arg(fetch)
            .arg(expires)
            .arg(url)
            .arg(TOMBSTONE_MIN.as_millis() as u64);
        let removed: i64 = self.pool.with("delete", |c| invocation.invoke(c))?;
        Ok(removed == 1)
    }

    /// Decodes a stored hash; a damaged one is deleted and counted, and reads as `None`.
    fn decode(&self, key: &str, hash: HashMap<String, String>) -> Result<Option<CacheEntry>> {
        if hash.is_empty() {
            return Ok(None);
        }
        match record::decode(hash, &self.ctx.crypto) {
            Ok(entry) => Ok(Some(entry)),
            Err(Undecodable::Crypto(e)) => Err(e),
            Err(Undecodable::Corrupt(why)) => {
                log::warn!(
                    "shared tier {}: dropping the damaged entry {key:?}: {why}",
                    self.pool.redacted_url()
                );
                self.ctx.counters.add(Counter::EvictionsCorruption, 1);
                self.delete_with(key, "repair", None)?;
                Ok(None)
            }
        }
    }

    /// Removes `key` without a tombstone: what a slot does to bring a recovering tier in line.
    pub fn forget(&self, key: &str) -> Result<bool> {
        self.delete_with(key, "repair", None)
    }
}

impl Tier for RedisTier {
    fn get(&self, key: &str) -> Result<Option<CacheEntry>> {
        let entry_key = self.names.entry(key);
        let hash: HashMap<String, String> = self
            .pool
            .with("get", |c| redis::cmd("HGETALL").arg(&entry_key).query(c))?;
        self.decode(key, hash)
    }

    fn put_many(&self, entries: &[CacheEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.run_puts(entries, "put").map(|_| ())
    }

    fn put_if_absent(&self, entry: &CacheEntry) -> Result<bool> {
        let replies = self.run_puts(std::slice::from_ref(entry), "absent")?;
        let stored = replies
            .first()
            .and_then(|r| r.first())
            .is_some_and(|v| matches!(v, Value::Int(1)));
        Ok(stored)
    }

    fn record_usage(&self, usage: &[Usage]) -> Result<u64> {
        if usage.is_empty() {
            return Ok(0);
        }
        let policy = policy_name(&self.ctx);
        let mut commands = Vec::with_capacity(usage.len());
        for u in usage {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(scripts::RECORD_USAGE_SCRIPT.get_hash())
                .arg(2)
                .arg(self.names.entry(&u.key))
                .arg(self.names.order())
                .arg(micros(u.version.fetch_time))
                .arg(micros(u.version.expires_at))
                .arg(&u.version.proxy_url)
                .arg(u.access_count)
                .arg(micros(u.last_accessed))
                .arg(u8::from(u.evicted_from_l1))
                .arg(policy);
            commands.push(cmd);
        }
        let recorded: Vec<i64> = self.pool.with("record usage", |c| c.pipeline(commands))?;
        Ok(recorded.iter().filter(|&&n| n == 1).count() as u64)
    }

    fn record_failure(&self, key: &str) -> Result<Option<Failures>> {
        Ok(self.record_failure_evicting_at(key, 0)?.map(|(f, _)| f))
    }

    fn record_failure_evicting_at(
        &self,
        key: &str,
        threshold: i64,
    ) -> Result<Option<(Failures, bool)>> {
        let mut invocation = self.invoke_on_entry(&scripts::RECORD_FAILURE_SCRIPT, key);
        invocation
            .arg(threshold.max(0))
            .arg(self.names.channel())
            .arg(self.notice(key))
            .arg(TOMBSTONE_MIN.as_millis() as u64);
        let reply: Option<(i64, String, i64)> = self
            .pool
            .with("record a health failure", |c| invocation.invoke(c))?;
        let Some((failure_count, expires, evicted)) = reply else {
            return Ok(None);
        };
        let expires_at = expires
            .parse()
            .ok()
            .and_then(Timestamp::from_micros)
            .ok_or_else(|| {
                Error::Storage(format!(
                    "shared tier {}: entry {key:?} has a damaged expires_at",
                    self.pool.redacted_url()
                ))
            })?;
        Ok(Some((
            Failures {
                failure_count,
                expires_at,
            },
            evicted == 1,
        )))
    }

    fn delete(&self, key: &str) -> Result<bool> {
        self.delete_with(key, "any", None)
    }

    fn delete_if_version(&self, key: &str, version: &Version) -> Result<bool> {
        self.delete_with(key, "version", Some(version))
    }

    fn forget_missed(&self, key: &str) -> Result<()> {
        self.forget(key).map(|_| ())
    }

    fn clear(&self) -> Result<Vec<String>> {
        let mut invocation = scripts::CLEAR_SCRIPT.prepare_invoke();
        invocation
            .key(self.names.index())
            .key(self.names.order())
            .key(self.names.cleared())
            .key(self.names.sequence())
            .arg(self.names.entry_prefix())
            .arg(self.names.channel())
            .arg(clear_notice(&self.origin));
        self.pool.with("clear", |c| invocation.invoke(c))
    }

    fn len(&self) -> Result<u64> {
        let mut invocation = scripts::LEN_SCRIPT.prepare_invoke();
        invocation
            .key(self.names.index())
            .key(self.names.order())
            .arg(self.names.entry_prefix());
        self.pool.with("count entries", |c| invocation.invoke(c))
    }

    fn remove_expired(&self, now: Timestamp) -> Result<Vec<String>> {
        let mut invocation = scripts::REMOVE_EXPIRED_SCRIPT.prepare_invoke();
        invocation
            .key(self.names.index())
            .key(self.names.order())
            .arg(micros(now))
            .arg(self.names.entry_prefix())
            .arg(self.names.channel())
            .arg(key_notice_prefix(&self.origin));
        self.pool.with("expiry sweep", |c| invocation.invoke(c))
    }

    fn scan(&self, visit: &mut dyn FnMut(Scanned)) -> Result<()> {
        let index = self.names.index();
        let mut cursor: u64 = 0;
        loop {
            let (next, members): (u64, Vec<String>) = self.pool.with("scan", |c| {
                redis::cmd("ZSCAN")
                    .arg(&index)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(SCAN_BATCH)
                    .query(c)
            })?;
            // ZSCAN returns member, score pairs.
            let keys: Vec<&String> = members.iter().step_by(2).collect();
            if !keys.is_empty() {
                let commands = keys
                    .iter()
                    .map(|key| {
                        let mut cmd = redis::cmd("HGETALL");
                        cmd.arg(self.names.entry(key));
                        cmd
                    })
                    .collect();
                let hashes: Vec<HashMap<String, String>> =
                    self.pool.with("scan", |c| c.pipeline(commands))?;
                for (key, hash) in keys.iter().zip(hashes) {
                    if hash.is_empty() {
                        continue;
                    }
                    let key = Some(key.to_string());
                    match record::decode(hash, &self.ctx.crypto) {
                        Ok(entry) => visit(Ok(entry)),
                        Err(Undecodable::Crypto(e)) => visit(Err(Unreadable::new(key, e))),
                        Err(Undecodable::Corrupt(why)) => visit(Err(Unreadable::new(
                            key,
                            Error::Storage(format!("shared tier: a damaged entry: {why}")),
                        ))),
                    }
                }
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}
