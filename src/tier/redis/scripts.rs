//! The Lua scripts that make each conditional operation one atomic step on the server.
//!
//! Redis runs a script alone: nothing else happens between its reads and its writes, so a
//! version check and the write it guards, or a failure count and the eviction it triggers, are
//! one step for every process of the fleet. Every key a script touches is in the pool's hash
//! tag (see [`super::names`]), so the scripts run on a cluster too. Each script takes the time
//! from the server (`TIME`), the one clock the fleet shares for tombstones and expiry.
//!
//! Times are integer microseconds passed as strings; Lua's numbers (doubles) hold them exactly
//! (below 2^53), and the scripts never turn them back into text but through `%d`.

use once_cell::sync::Lazy;
use redis::Script;

/// Shared by the scripts: the server's time.
const PRELUDE: &str = r#"
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function tombstone(tomb_key, until_ms, min_ms)
  local now = now_us()
  local at = math.max(tonumber(until_ms), math.floor(now / 1000) + tonumber(min_ms))
  redis.call('SET', tomb_key, string.format('%d', now))
  redis.call('PEXPIREAT', tomb_key, string.format('%d', at))
end
"#;

/// Stores one entry whole (`put`) or only when the key holds nothing and the fleet has not
/// deleted it since the entry was fetched (`absent`).
///
/// KEYS: entry, idx, ord, tombstone, cleared, seq.
/// ARGV: mode, key, expires_at µs, expiry ms, fetch_time µs, max_entries (0 = unbounded),
/// policy, order score, channel, notice, entry prefix, then field/value pairs.
/// Returns {stored (1, 0 = held already, -1 = deleted by the fleet, 2 = already expired),
/// evicted...}.
const PUT: &str = r#"
if ARGV[1] == 'absent' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
  local fetch = tonumber(ARGV[5])
  local tomb = redis.call('GET', KEYS[4])
  if tomb and fetch <= tonumber(tomb) then return {-1} end
  local cleared = redis.call('GET', KEYS[5])
  if cleared and fetch <= tonumber(cleared) then return {-1} end
end
local now = now_us()
if tonumber(ARGV[3]) <= now then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
  redis.call('PUBLISH', ARGV[9], ARGV[10])
  return {2}
end
-- The first write is one Redis refuses on a full server (maxmemory reached, noeviction), so
-- such a put fails here, before it changed anything.
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 12))
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
if ARGV[1] == 'put' then redis.call('DEL', KEYS[4]) end
local result = {1}
local max = tonumber(ARGV[6])
if max > 0 then
  if ARGV[7] == 'fifo' then
    if not redis.call('ZSCORE', KEYS[3], ARGV[2]) then
      redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[6]), ARGV[2])
    end
  else
    redis.call('ZADD', KEYS[3], ARGV[8], ARGV[2])
  end
  local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', string.format('%d', now),
    'LIMIT', 0, 1000)
  for _, k in ipairs(gone) do
    redis.call('DEL', ARGV[11] .. k)
    redis.call('ZREM', KEYS[2], k)
    redis.call('ZREM', KEYS[3], k)
  end
  local over = redis.call('ZCARD', KEYS[2]) - max
  while over > 0 do
    local lowest = redis.call('ZRANGE', KEYS[3], 0, 1)
    local victim = lowest[1]
    if victim == ARGV[2] then victim = lowest[2] end
    if not victim then break end
    redis.call('DEL', ARGV[11] .. victim)
    redis.call('ZREM', KEYS[2], victim)
    redis.call('ZREM', KEYS[3], victim)
    result[#result + 1] = victim
    over = over - 1
  end
end
redis.call('PUBLISH', ARGV[9], ARGV[10])
return result
"#;

/// Records usage counters on the entry if it is the same version.
///
/// KEYS: entry, ord. ARGV: fetch_time, expires_at, proxy_url, access_count, last_accessed,
/// evicted_from_l1, policy ('' when unbounded). Returns 1 when recorded.
const RECORD_USAGE: &str = r#"
local v = redis.call('HMGET', KEYS[1], 'fetch_time', 'expires_at', 'proxy_url', 'key')
if v[1] ~= ARGV[1] or v[2] ~= ARGV[2] or v[3] ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'access_count', ARGV[4], 'last_accessed', ARGV[5],
  'evicted_from_l1', ARGV[6])
if ARGV[7] == 'lru' then
  redis.call('ZADD', KEYS[2], 'XX', ARGV[5], v[4])
elseif ARGV[7] == 'lfu' then
  redis.call('ZADD', KEYS[2], 'XX', ARGV[4], v[4])
end
return 1
"#;

/// Counts one failed health check and, at `threshold` (0 = never), removes the entry in the
/// same step, leaving a tombstone: of all reports, exactly the one that reaches the threshold
/// evicts.
///
/// KEYS: entry, idx, ord, tombstone. ARGV: key, threshold, channel, notice, tombstone minimum
/// ms. Returns nil when the key is not stored, else {failure_count, expires_at µs, evicted}.
const RECORD_FAILURE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local n = redis.call('HINCRBY', KEYS[1], 'failure_count', 1)
redis.call('HSET', KEYS[1], 'health_status', 'unhealthy')
local expires = redis.call('HGET', KEYS[1], 'expires_at')
local evicted = 0
local threshold = tonumber(ARGV[2])
if threshold > 0 and n >= threshold then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  tombstone(KEYS[4], math.ceil(tonumber(expires) / 1000), ARGV[5])
  evicted = 1
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return {n, expires, evicted}
"#;

/// Removes the entry: any version (`any`, leaving a tombstone: the fleet deleted it), one version
/// (`version`, taking back a promotion), or any version without a tombstone (`repair`).
///
/// KEYS: entry, idx, ord, tombstone. ARGV: key, channel, notice, mode, fetch_time, expires_at,
/// proxy_url, tombstone minimum ms. Returns 1 when removed.
const DELETE: &str = r#"
local v = redis.call('HMGET', KEYS[1], 'fetch_time', 'expires_at', 'proxy_url')
if not v[1] then
  if ARGV[4] == 'any' then tombstone(KEYS[4], 0, ARGV[8]) end
  return 0
end
if ARGV[4] == 'version' and (v[1] ~= ARGV[5] or v[2] ~= ARGV[6] or v[3] ~= ARGV[7]) then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[4] == 'any' then tombstone(KEYS[4], math.ceil(tonumber(v[2]) / 1000), ARGV[8]) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
"#;

/// Removes every entry with `expires_at <= now` still indexed (Redis expires the entries
/// themselves; this drops what is left in the indexes and reports what was still stored).
///
/// KEYS: idx, ord. ARGV: now µs, entry prefix, channel, notice prefix. Returns the keys removed.
const REMOVE_EXPIRED: &str = r#"
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 10000)
local removed = {}
for _, k in ipairs(keys) do
  if redis.call('DEL', ARGV[2] .. k) == 1 then
    removed[#removed + 1] = k
    redis.call('PUBLISH', ARGV[3], ARGV[4] .. k)
  end
  redis.call('ZREM', KEYS[1], k)
  redis.call('ZREM', KEYS[2], k)
end
return removed
"#;

/// The number of stored entries, after dropping from the indexes what Redis has expired.
///
/// KEYS: idx, ord. ARGV: entry prefix.
const LEN: &str = r#"
local now = string.format('%d', now_us())
local past = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 10000)
for _, k in ipairs(past) do
  if redis.call('EXISTS', ARGV[1] .. k) == 0 then
    redis.call('ZREM', KEYS[1], k)
    redis.call('ZREM', KEYS[2], k)
  end
end
return redis.call('ZCARD', KEYS[1])
"#;

/// Removes every entry and records when, so that no copy fetched before is promoted back.
///
/// KEYS: idx, ord, cleared, seq. ARGV: entry prefix, channel, notice. Returns the keys removed.
const CLEAR: &str = r#"
local keys = redis.call('ZRANGE', KEYS[1], 0, -1)
local removed = {}
for _, k in ipairs(keys) do
  if redis.call('DEL', ARGV[1] .. k) == 1 then removed[#removed + 1] = k end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
redis.call('SET', KEYS[3], string.format('%d', now_us()))
redis.call('PUBLISH', ARGV[2], ARGV[3])
return removed
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

pub static PUT_SCRIPT: Lazy<Script> = Lazy::new(|| script(PUT));
pub static RECORD_USAGE_SCRIPT: Lazy<Script> = Lazy::new(|| script(RECORD_USAGE));
pub static RECORD_FAILURE_SCRIPT: Lazy<Script> = Lazy::new(|| script(RECORD_FAILURE));
pub static DELETE_SCRIPT: Lazy<Script> = Lazy::new(|| script(DELETE));
pub static REMOVE_EXPIRED_SCRIPT: Lazy<Script> = Lazy::new(|| script(REMOVE_EXPIRED));
pub static LEN_SCRIPT: Lazy<Script> = Lazy::new(|| script(LEN));
pub static CLEAR_SCRIPT: Lazy<Script> = Lazy::new(|| script(CLEAR));

/// Every script, to load on a new connection (so a pipeline can call them by hash).
pub fn all() -> [&'static Script; 7] {
    [
        &PUT_SCRIPT,
        &RECORD_USAGE_SCRIPT,
        &RECORD_FAILURE_SCRIPT,
        &DELETE_SCRIPT,
        &REMOVE_EXPIRED_SCRIPT,
        &LEN_SCRIPT,
        &CLEAR_SCRIPT,
    ]
}
