//! The hash maps of the hot paths: std's `HashMap` with foldhash instead of SipHash.
//!
//! Every put, get and write-back looks keys up in several maps (L1, the JSONL index, the key
//! locks); SipHash was a visible share of a put's CPU time. foldhash is seeded per map from a
//! random source, as std's hasher is, so keys chosen to collide are not known in advance.

use std::collections::{HashMap, HashSet};

/// A `HashMap` with foldhash.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A `HashSet` with foldhash.
pub(crate) type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;
