//! The names a pool uses on the server, and the notices it publishes.
//!
//! Every name starts with `pwcache:{<namespace>}:`. The braces are a Redis Cluster hash tag: all
//! of a pool's keys live in one slot, so each script may touch the entry, the pool's indexes and
//! tombstones atomically without a cross-slot command, on a single server and on a cluster alike
//! (a pool is then served by one master; pools with other namespaces spread over the others).
//! Two namespaces never share a name, so two pools on one server never see each other.
//!
//! | name | type | what |
//! |---|---|---|
//! | `e:<key>` | hash | the entry ([`super::record`]), expiring at its `expires_at` |
//! | `idx` | sorted set | every stored key, scored by `expires_at` (µs): length, scan, sweep |
//! | `ord` | sorted set | with `max_entries` only: keys by the eviction policy's score |
//! | `seq` | string | the insertion counter of FIFO |
//! | `t:<key>` | string | tombstone: when (server µs) the fleet deleted the key |
//! | `cleared` | string | when (server µs) the pool was last cleared |
//! | `changes` | channel | notices of every change, for the other handles' L1 |
//!
//! A notice is `<origin> k <key>` (the key changed or left) or `<origin> c` (everything left),
//! `<origin>` naming the handle that made the change, which ignores its own notices.

/// The names of one namespace.
#[derive(Clone, Debug)]
pub struct Names {
    prefix: String,
}

/// What a notice says changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Key(String),
    Everything,
}

impl Names {
    pub fn new(namespace: &str) -> Names {
        Names {
            prefix: format!("pwcache:{{{namespace}}}:"),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn entry_prefix(&self) -> String {
        format!("{}e:", self.prefix)
    }

    pub fn entry(&self, key: &str) -> String {
        format!("{}e:{key}", self.prefix)
    }

    pub fn tombstone(&self, key: &str) -> String {
        format!("{}t:{key}", self.prefix)
    }

    pub fn index(&self) -> String {
        format!("{}idx", self.prefix)
    }

    pub fn order(&self) -> String {
        format!("{}ord", self.prefix)
    }

    pub fn sequence(&self) -> String {
        format!("{}seq", self.prefix)
    }

    pub fn cleared(&self) -> String {
        format!("{}cleared", self.prefix)
    }

    pub fn channel(&self) -> String {
        format!("{}changes", self.prefix)
    }
}

/// The start of a key notice from `origin`; the key follows.
pub fn key_notice_prefix(origin: &str) -> String {
    format!("{origin} k ")
}

/// The notice that `origin` cleared the pool.
pub fn clear_notice(origin: &str) -> String {
    format!("{origin} c")
}

/// The change a notice announces, unless it comes from `own_origin` or is not a notice.
pub fn parse_notice(payload: &[u8], own_origin: &str) -> Option<Change> {
    let text = std::str::from_utf8(payload).ok()?;
    let (origin, rest) = text.split_once(' ')?;
    if origin == own_origin {
        return None;
    }
    match rest.split_once(' ') {
        Some(("k", key)) if !key.is_empty() => Some(Change::Key(key.to_string())),
        None if rest == "c" => Some(Change::Everything),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_hash_tag_and_notices_round_trip() {
        let n = Names::new("pool-a");
        assert_eq!(n.entry("k 1"), "pwcache:{pool-a}:e:k 1");
        assert_eq!(n.channel(), "pwcache:{pool-a}:changes");
        let notice = format!("{}a key with spaces", key_notice_prefix("o1"));
        assert_eq!(
            parse_notice(notice.as_bytes(), "o2"),
            Some(Change::Key("a key with spaces".into()))
        );
        assert_eq!(parse_notice(notice.as_bytes(), "o1"), None);
        assert_eq!(
            parse_notice(clear_notice("o1").as_bytes(), "o2"),
            Some(Change::Everything)
        );
        assert_eq!(parse_notice(b"garbage", "o2"), None);
    }
}
