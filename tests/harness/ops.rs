//! The operations the crash and multi-process tests run, what each returned (as logged), and what
//! each does to a key when it runs alone ([`Op::expect`]): the model the logs are checked against.

use pwcache::{CacheManager, ErrorKind};

use super::oplog::{OpLog, monotonic_ns};
use super::rng::Rng;
use super::values::{self, Seen};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Put,
    Get,
    Delete,
    /// `invalidate_by_health`: one failed health check.
    Health,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::Delete => "delete",
            Op::Health => "health",
        }
    }

    pub fn parse(text: &str) -> Op {
        match text {
            "put" => Op::Put,
            "get" => Op::Get,
            "delete" => Op::Delete,
            "health" => Op::Health,
            other => panic!("not an op: {other:?}"),
        }
    }

    /// An op drawn with weights `[put, get, delete, health]`.
    pub fn pick(rng: &mut Rng, weights: [u64; 4]) -> Op {
        let mut n = rng.below(weights.iter().sum());
        for (op, weight) in [Op::Put, Op::Get, Op::Delete, Op::Health]
            .into_iter()
            .zip(weights)
        {
            if n < weight {
                return op;
            }
            n -= weight;
        }
        unreachable!("n < the sum of the weights")
    }

    /// What the op returns on a key holding `before`, and what the key holds after it; a put
    /// stores the value `id`. `threshold` is the config's `failure_threshold`.
    pub fn expect(self, before: &Seen, id: &str, threshold: i64) -> (Outcome, Seen) {
        match (self, before) {
            (Op::Put, _) => (Outcome::Stored, Seen::value(id, 0)),
            (Op::Get, _) => (Outcome::Got(before.clone()), before.clone()),
            (Op::Delete | Op::Health, Seen::Absent) => (Outcome::Missing, Seen::Absent),
            (Op::Delete, _) => (Outcome::Deleted, Seen::Absent),
            (Op::Health, Seen::Value { id, failures }) if failures + 1 < threshold => {
                (Outcome::Recorded, Seen::value(id.clone(), failures + 1))
            }
            (Op::Health, Seen::Value { .. }) => (Outcome::Removed, Seen::Absent),
            // A foreign value is already a divergence; a health report on it is not modelled.
            (Op::Health, Seen::Foreign(why)) => (Outcome::Recorded, Seen::Foreign(why)),
        }
    }
}

/// What an op returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `put` returned Ok.
    Stored,
    /// `get` returned this.
    Got(Seen),
    /// `delete` returned Ok.
    Deleted,
    /// `delete` or `invalidate_by_health` returned NOT_FOUND.
    Missing,
    /// `invalidate_by_health` returned Ok(false): the failure was recorded.
    Recorded,
    /// `invalidate_by_health` returned Ok(true): the threshold was reached, the key removed.
    Removed,
    /// Any other error (none is expected: no fault is injected).
    Error(String),
}

impl Outcome {
    pub fn to_log(&self) -> String {
        match self {
            Outcome::Stored => "stored".into(),
            Outcome::Got(seen) => format!("got {}", seen.to_log()),
            Outcome::Deleted => "deleted".into(),
            Outcome::Missing => "missing".into(),
            Outcome::Recorded => "recorded".into(),
            Outcome::Removed => "removed".into(),
            Outcome::Error(message) => format!("error {}", message.replace('\n', " ")),
        }
    }

    pub fn from_log(fields: &[&str]) -> Outcome {
        match fields {
            ["stored"] => Outcome::Stored,
            ["got", seen @ ..] => Outcome::Got(Seen::from_log(seen)),
            ["deleted"] => Outcome::Deleted,
            ["missing"] => Outcome::Missing,
            ["recorded"] => Outcome::Recorded,
            ["removed"] => Outcome::Removed,
            ["error", message @ ..] => Outcome::Error(message.join(" ")),
            other => panic!("not a logged outcome: {other:?}"),
        }
    }

    /// The key was removed by this op (a write that leaves it absent).
    pub fn removed_the_key(&self) -> bool {
        matches!(self, Outcome::Deleted | Outcome::Removed)
    }
}

/// Runs `op` on `key` as [`run`] does, and logs it with the monotonic clock read just before
/// and just after the call: `<start> <finish> <op> <key> <id> <outcome>`.
pub fn run_logged(log: &mut OpLog, cache: &CacheManager, op: Op, key: &str, id: &str) -> Outcome {
    let start = monotonic_ns();
    let outcome = run(cache, op, key, id);
    let finish = monotonic_ns();
    log.line(&format!(
        "{start} {finish} {} {key} {id} {}",
        op.name(),
        outcome.to_log()
    ));
    outcome
}

/// Runs `op` on `key`; a put stores the value `id`.
pub fn run(cache: &CacheManager, op: Op, key: &str, id: &str) -> Outcome {
    let result = match op {
        Op::Put => cache
            .put(key, values::input(key, id))
            .map(|()| Outcome::Stored),
        Op::Get => cache
            .get(key)
            .map(|found| Outcome::Got(values::seen_entry(key, found.as_ref()))),
        Op::Delete => cache.delete(key).map(|()| Outcome::Deleted),
        Op::Health => cache.invalidate_by_health(key).map(|removed| {
            if removed {
                Outcome::Removed
            } else {
                Outcome::Recorded
            }
        }),
    };
    match result {
        Ok(outcome) => outcome,
        Err(e) if e.kind() == ErrorKind::NotFound => Outcome::Missing,
        Err(e) => Outcome::Error(e.to_string()),
    }
}
