//! A persistent tier in the manager's hands: degradation after consecutive failures, back-off,
//! recovery, and repair of what the tier missed while it was skipped.
//!
//! A tier that fails [`FAILURES_TO_DEGRADE`] times in a row is *degraded*: it is skipped and the
//! cache serves from the others. After a back-off (1 s, doubling up to 60 s) the next operation
//! tries it again; one success recovers it. A tier that could not be opened at all starts
//! degraded. Every retry re-opens the tier, so it finds its directory and files anew. While a
//! tier is skipped it misses writes and deletes, so it would hand out stale entries on recovery:
//! the keys it missed are remembered and removed from it when it recovers (the other tiers hold
//! their current state), and a missed `clear` clears it on recovery. They are also written to a
//! journal beside the other tier ([`super::missed`]), so that the repair happens after a restart
//! and in other processes too.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::error::{Error, ErrorKind, Result};
use crate::tier::Tier;
use crate::time::{Clock, Timestamp};

use super::missed::{CHECK_EVERY_MICROS, MissedJournal};

pub const FAILURES_TO_DEGRADE: u32 = 3;
const FIRST_BACKOFF_SECS: i64 = 1;
const MAX_BACKOFF_SECS: i64 = 60;

type Opener = Box<dyn Fn() -> Result<Arc<dyn Tier>> + Send + Sync>;
/// Told which keys a recovery repair removed from the tier (`true`: all, for a missed clear).
pub(crate) type RepairHook = Box<dyn Fn(&[String], bool) + Send + Sync>;

/// What the tier missed while skipped.
#[derive(Default)]
struct Missed {
    keys: HashSet<String>,
    everything: bool,
}

pub(crate) struct TierSlot {
    /// "L2" or "L3", for log lines.
    pub name: &'static str,
    tier: RwLock<Option<Arc<dyn Tier>>>,
    opener: Opener,
    clock: Arc<dyn Clock>,
    failures: AtomicU32,
    degraded: AtomicBool,
    retry_at: AtomicI64,
    backoff_secs: AtomicI64,
    missed: Mutex<Missed>,
    /// Where what this tier missed is kept across restarts and processes (none when it is the
    /// only persistent tier).
    journal: Option<MissedJournal>,
    /// Missed keys not yet in the journal: appended when the operation that missed them ends.
    unjournaled: Mutex<Missed>,
    /// When the journal is next looked at while the tier is in use (microseconds).
    journal_check_at: AtomicI64,
    after_repair: Option<RepairHook>,
}

impl TierSlot {
    /// Opens the tier now; when that fails, the slot starts degraded and re-opens it later.
    /// Repairs it from `journal` (what it missed before this handle opened it). When either
    /// fails, the slot starts degraded and re-opens it later.
    pub fn open(
        name: &'static str,
        opener: Opener,
        clock: Arc<dyn Clock>,
        journal: Option<MissedJournal>,
    ) -> TierSlot {
        let slot = TierSlot {
            name,
            tier: RwLock::new(None),
            opener,
            clock,
            failures: AtomicU32::new(0),
            degraded: AtomicBool::new(false),
            retry_at: AtomicI64::new(0),
            backoff_secs: AtomicI64::new(FIRST_BACKOFF_SECS),
            missed: Mutex::new(Missed::default()),
            journal,
            unjournaled: Mutex::new(Missed::default()),
            journal_check_at: AtomicI64::new(0),
            after_repair: None,
        };
        let opened = (slot.opener)().and_then(|tier| {
            slot.repair_from_journal(tier.as_ref())?;
            Ok(tier)
        });
        match opened {
            Ok(tier) => *slot.tier.write() = Some(tier),
            Err(e) => {
                log::warn!("{name} cannot be used, starting degraded: {e}");
                slot.degrade();
            }
        }
        slot
    }

    /// Calls `hook` after each recovery repair with the keys it removed from the tier: the
    /// shared tier's slot drops them from L1, so that the next read finds the local disk copy
    /// and copies it back up into the shared tier (an L1 hit would never reach it).
    pub fn with_after_repair(mut self, hook: RepairHook) -> TierSlot {
        self.after_repair = Some(hook);
        self
    }

    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// Runs `op` on the tier. `Ok(None)` when the tier is degraded and not due for a retry.
    /// Failures count towards degradation; a crypto error (a credential under another key) is
    /// returned but is not a failure of the tier.
    pub fn call<T>(&self, op: impl FnOnce(&dyn Tier) -> Result<T>) -> Result<Option<T>> {
        let retrying = self.is_degraded();
        if retrying {
            if self.clock.now().as_micros() < self.retry_at.load(Ordering::Acquire) {
                return Ok(None);
            }
            // Retry on a fresh instance: what broke (a removed directory, a replaced file) may
            // have left the old one pointing at files that are gone.
            *self.tier.write() = None;
        }
        let tier = match self.current_tier() {
            Ok(tier) => tier,
            Err(e) => {
                self.record_failure(&e);
                return Err(e);
            }
        };
        let repaired = if retrying {
            self.repair(tier.as_ref())
        } else if self.journal_due() {
            self.repair_from_journal(tier.as_ref())
        } else {
            Ok(())
        };
        if let Err(e) = repaired {
            self.record_failure(&e);
            return Err(e);
        }
        match op(tier.as_ref()) {
            Ok(value) => {
                self.record_success();
                Ok(Some(value))
            }
            Err(e) if e.kind() == ErrorKind::Crypto => Err(e),
            Err(e) => {
                self.record_failure(&e);
                Err(e)
            }
        }
    }

    /// Runs a write on the tier (`what` names it in the log). When the tier is skipped (degraded)
    /// or the write fails, the keys it touches are remembered as missed, to be repaired when the
    /// tier recovers, and `None` is returned.
    ///
    /// A failed write degrades the tier at once (a failed read only after
    /// `FAILURES_TO_DEGRADE` in a row): the tier may still hold an older value of a missed key,
    /// and must not serve it until the repair has removed it. A full disk fails every write
    /// while reads still succeed, so counting reads and writes together would never get there.
    pub fn write<'k, T>(
        &self,
        what: &str,
        keys: impl Iterator<Item = &'k str>,
        op: impl FnOnce(&dyn Tier) -> Result<T>,
    ) -> Option<T> {
        let done = self.write_unrecorded(what, op);
        if done.is_none() {
            self.missed_keys(keys);
        }
        done
    }

    /// [`TierSlot::write`] without remembering the keys as missed: for a write whose keys are
    /// missed only if another tier took it (see `Engine::store`). A write that no tier took has
    /// changed nothing, and every tier still holds the previous value rightly.
    pub fn write_unrecorded<T>(
        &self,
        what: &str,
        op: impl FnOnce(&dyn Tier) -> Result<T>,
    ) -> Option<T> {
        match self.call(op) {
            Ok(Some(value)) => return Some(value),
            Ok(None) => {}
            Err(e) => {
                log::warn!("{}: {what} failed: {e}", self.name);
                if e.kind() != ErrorKind::Crypto && !self.is_degraded() {
                    log::warn!(
                        "{} missed a write, skipping it until it is repaired",
                        self.name
                    );
                    self.degrade();
                }
            }
        }
        None
    }

    /// Remembers that `keys` changed while this tier did not see it.
    pub fn missed_keys<'k>(&self, keys: impl Iterator<Item = &'k str>) {
        let keys: Vec<String> = keys.map(str::to_string).collect();
        for missed in [&self.missed, &self.unjournaled] {
            let mut missed = missed.lock();
            if !missed.everything {
                missed.keys.extend(keys.iter().cloned());
            }
        }
    }

    /// Remembers that the whole cache was cleared while this tier did not see it.
    pub fn missed_clear(&self) {
        for missed in [&self.missed, &self.unjournaled] {
            let mut missed = missed.lock();
            missed.keys.clear();
            missed.everything = true;
        }
    }

    /// Appends what this tier missed since the last call to its journal. Called when an
    /// operation has finished on every tier, so the other tier already holds what this one
    /// missed when another handle reads the journal.
    pub fn persist_missed(&self) {
        let Some(journal) = &self.journal else { return };
        let missed = std::mem::take(&mut *self.unjournaled.lock());
        if missed.keys.is_empty() && !missed.everything {
            return;
        }
        let keys: Vec<String> = missed.keys.into_iter().collect();
        if let Err(e) = journal.append(&keys, missed.everything) {
            // The keys stay in memory: this handle still repairs the tier when it recovers.
            log::error!(
                "{}: cannot record what it missed in {}: {e}",
                self.name,
                journal.path().display()
            );
        }
    }

    /// Whether the journal is due for a look (at most every `CHECK_EVERY_MICROS`).
    fn journal_due(&self) -> bool {
        let Some(journal) = &self.journal else {
            return false;
        };
        let now = self.clock.now().as_micros();
        let at = self.journal_check_at.load(Ordering::Acquire);
        if now < at {
            return false;
        }
        self.journal_check_at
            .store(now.saturating_add(CHECK_EVERY_MICROS), Ordering::Release);
        journal.has_entries()
    }

    /// Removes from the tier what its journal lists (missed by any handle, in any process).
    fn repair_from_journal(&self, tier: &dyn Tier) -> Result<()> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        journal.drain(|listed| {
            log::info!(
                "{}: repairing {} missed elsewhere",
                self.name,
                if listed.everything {
                    "a clear".to_string()
                } else {
                    format!("{} key(s)", listed.keys.len())
                }
            );
            remove_missed(tier, listed.everything, &listed.keys)
        })
    }

    fn current_tier(&self) -> Result<Arc<dyn Tier>> {
        if let Some(tier) = self.tier.read().as_ref() {
            return Ok(tier.clone());
        }
        let mut slot = self.tier.write();
        if let Some(tier) = slot.as_ref() {
            return Ok(tier.clone());
        }
        let tier = (self.opener)()?;
        log::info!("{} opened", self.name);
        *slot = Some(tier.clone());
        Ok(tier)
    }

    /// Brings a recovering tier in line with the others before it is used again.
    fn repair(&self, tier: &dyn Tier) -> Result<()> {
        self.repair_from_journal(tier)?;
        let missed = std::mem::take(&mut *self.missed.lock());
        let result = remove_missed(tier, missed.everything, &missed.keys);
        if result.is_ok()
            && let Some(hook) = &self.after_repair
        {
            let keys: Vec<String> = missed.keys.iter().cloned().collect();
            hook(&keys, missed.everything);
        }
        if result.is_err() {
            let mut back = self.missed.lock();
            back.everything |= missed.everything;
            back.keys.extend(missed.keys);
        }
        result
    }

    fn record_success(&self) {
        self.failures.store(0, Ordering::Release);
        if self.degraded.swap(false, Ordering::AcqRel) {
            self.backoff_secs
                .store(FIRST_BACKOFF_SECS, Ordering::Release);
            log::info!("{} recovered", self.name);
        }
    }

    fn record_failure(&self, error: &Error) {
        let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if self.is_degraded() {
            let backoff = self.backoff_secs.load(Ordering::Acquire);
            self.backoff_secs
                .store((backoff * 2).min(MAX_BACKOFF_SECS), Ordering::Release);
            self.schedule_retry(backoff);
            log::debug!("{} still failing: {error}", self.name);
        } else if failures >= FAILURES_TO_DEGRADE {
            log::warn!(
                "{} failed {failures} times in a row, skipping it for now: {error}",
                self.name
            );
            self.degrade();
        } else {
            log::warn!("{} failed: {error}", self.name);
        }
    }

    fn degrade(&self) {
        self.degraded.store(true, Ordering::Release);
        self.schedule_retry(self.backoff_secs.load(Ordering::Acquire));
    }

    fn schedule_retry(&self, after_secs: i64) {
        let at: Timestamp = self.clock.now().plus_seconds(after_secs);
        self.retry_at.store(at.as_micros(), Ordering::Release);
    }
}

/// Removes from `tier` what it missed: everything (a missed clear), or the keys.
fn remove_missed<'k>(
    tier: &dyn Tier,
    everything: bool,
    keys: impl IntoIterator<Item = &'k String>,
) -> Result<()> {
    if everything {
        return tier.clear().map(|_| ());
    }
    keys.into_iter().try_for_each(|key| tier.forget_missed(key))
}
