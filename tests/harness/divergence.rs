//! Divergences from a model, by kind, as the summaries of the crash and multi-process tests count
//! them.

use std::collections::BTreeMap;

use super::ops::{Op, Outcome};
use super::values::Seen;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Divergence {
    /// An acknowledged put is missing, or another (older) value stands in its place.
    LostWrite,
    /// An acknowledged delete (or removal by health) was undone: the key is back.
    UndoneDelete,
    /// A failure count below the acknowledged one.
    HealthBackwards,
    /// Anything else: a count above what was reported, a foreign value, a damaged file, an
    /// error no fault explains.
    Other,
}

impl Divergence {
    /// What serving a value after a later write of its key is: an undone delete when that write
    /// removed the key, a lost write when it stored another value.
    pub fn of_stale_read(the_later_write_removed_the_key: bool) -> Divergence {
        if the_later_write_removed_the_key {
            Divergence::UndoneDelete
        } else {
            Divergence::LostWrite
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Divergence::LostWrite => "lost_writes",
            Divergence::UndoneDelete => "undone_deletes",
            Divergence::HealthBackwards => "health_backwards",
            Divergence::Other => "other",
        }
    }
}

/// How `seen` diverges from the `acknowledged` state of a key, when it is none of `allowed`
/// (the acknowledged state, and what an op that was in flight may have left).
pub fn classify(acknowledged: &Seen, allowed: &[Seen], seen: &Seen) -> Option<Divergence> {
    if allowed.contains(seen) {
        return None;
    }
    Some(match (acknowledged, seen) {
        (
            Seen::Value { id, failures },
            Seen::Value {
                id: seen_id,
                failures: seen_failures,
            },
        ) if id == seen_id && seen_failures < failures => Divergence::HealthBackwards,
        (Seen::Value { .. }, Seen::Absent) => Divergence::LostWrite,
        (Seen::Value { id, .. }, Seen::Value { id: seen_id, .. }) if id != seen_id => {
            Divergence::LostWrite
        }
        (Seen::Absent, Seen::Value { .. }) => Divergence::UndoneDelete,
        _ => Divergence::Other,
    })
}

/// How an op's outcome `got` diverges from the `expected` one on a key that held `before`.
pub fn classify_outcome(before: &Seen, expected: &Outcome, got: &Outcome) -> Option<Divergence> {
    if got == expected {
        return None;
    }
    Some(match (before, got) {
        (_, Outcome::Got(seen)) => {
            classify(before, std::slice::from_ref(before), seen).unwrap_or(Divergence::Other)
        }
        (Seen::Value { .. }, Outcome::Missing) => Divergence::LostWrite,
        (Seen::Absent, Outcome::Deleted | Outcome::Recorded | Outcome::Removed) => {
            Divergence::UndoneDelete
        }
        // The engine's count was below the acknowledged one, so the threshold was not reached.
        (Seen::Value { .. }, Outcome::Recorded) if *expected == Outcome::Removed => {
            Divergence::HealthBackwards
        }
        _ => Divergence::Other,
    })
}

/// Divergences counted by kind, with the first few described.
#[derive(Default)]
pub struct Tally {
    counts: BTreeMap<Divergence, u64>,
    examples: Vec<String>,
}

const EXAMPLES: usize = 400;

impl Tally {
    pub fn record(&mut self, kind: Divergence, what: String) {
        *self.counts.entry(kind).or_default() += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(format!("{}: {what}", kind.name()));
        }
    }

    pub fn count(&self, kind: Divergence) -> u64 {
        self.counts.get(&kind).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// `lost_writes=0 undone_deletes=0 health_backwards=0 other=0`.
    pub fn figures(&self) -> String {
        [
            Divergence::LostWrite,
            Divergence::UndoneDelete,
            Divergence::HealthBackwards,
            Divergence::Other,
        ]
        .iter()
        .map(|k| format!("{}={}", k.name(), self.count(*k)))
        .collect::<Vec<_>>()
        .join(" ")
    }

    /// The first divergences, one a line.
    pub fn examples(&self) -> String {
        let mut text = self.examples.join("\n");
        if self.total() > self.examples.len() as u64 {
            text.push_str(&format!(
                "\n... and {} more",
                self.total() - self.examples.len() as u64
            ));
        }
        text
    }
}

/// One logged op on a key that only its own process writes.
pub struct OwnOp<'a> {
    pub key: &'a str,
    pub op: Op,
    /// The value a put stores.
    pub id: &'a str,
    pub outcome: &'a Outcome,
    /// How a divergence names the op.
    pub describe: String,
}

/// Replays `ops` (each process's in its own order) against a model in which every key of `keys`
/// starts absent, and records each outcome the model does not give; returns the final states.
/// `threshold` is the configuration's `failure_threshold`.
pub fn replay_own_keys<'a>(
    keys: impl IntoIterator<Item = String>,
    ops: impl IntoIterator<Item = OwnOp<'a>>,
    threshold: i64,
    tally: &mut Tally,
) -> BTreeMap<String, Seen> {
    let mut model: BTreeMap<String, Seen> = keys.into_iter().map(|k| (k, Seen::Absent)).collect();
    for op in ops {
        let before = model[op.key].clone();
        let (expected, after) = op.op.expect(&before, op.id, threshold);
        if let Some(kind) = classify_outcome(&before, &expected, op.outcome) {
            tally.record(
                kind,
                format!(
                    "{} (own key) where its model {before:?} gives {}",
                    op.describe,
                    expected.to_log()
                ),
            );
        }
        model.insert(op.key.to_string(), after);
    }
    model
}
