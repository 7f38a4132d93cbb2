//! The TTL manager: a background thread that sweeps expired entries from every tier.
//!
//! Expiry is also checked on every read, so the sweeper only reclaims space. A new manager is
//! stopped; `start` runs a sweep at once and then every interval; `stop` wakes the thread at once
//! (it never sleeps out the interval) and joins it. The manager keeps the cache's shared state
//! alive, so the cache handle may be dropped first.
//!
//! The thread must outlive anything a sweep runs into: a sweep that panics (a bug, or a panic in
//! a caller's [`crate::Clock`]) is caught and logged, and the next one runs on schedule. The
//! interval is at most [`MAX_CLEANUP_INTERVAL_SECONDS`], so the next deadline always fits the
//! monotonic clock; should it not, the thread waits for `stop` alone instead of panicking.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{CacheManager, Engine};
use crate::config::checked_interval;
use crate::error::{Error, Result};

struct Signal {
    stop: Mutex<bool>,
    wake: Condvar,
}

/// A background sweeper over one cache.
pub struct TtlManager {
    cache: Arc<Engine>,
    interval: Duration,
    signal: Arc<Signal>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl TtlManager {
    /// A stopped manager sweeping `cache` every `interval_seconds` (finite, > 0, at most
    /// [`MAX_CLEANUP_INTERVAL_SECONDS`]); [`Error::InvalidArgument`] otherwise.
    pub fn new(cache: &CacheManager, interval_seconds: f64) -> Result<TtlManager> {
        let interval = checked_interval("the cleanup interval", interval_seconds)
            .map_err(Error::InvalidArgument)?;
        Ok(TtlManager {
            cache: cache.shared(),
            interval,
            signal: Arc::new(Signal {
                stop: Mutex::new(false),
                wake: Condvar::new(),
            }),
            thread: Mutex::new(None),
        })
    }

    /// Starts sweeping; a no-op when running.
    pub fn start(&self) {
        let mut thread = self.thread.lock();
        if thread.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        *self.signal.stop.lock() = false;
        let cache = self.cache.clone();
        let signal = self.signal.clone();
        let interval = self.interval;
        let handle = std::thread::Builder::new()
            .name("pwcache-ttl".into())
            .spawn(move || sweep_until_stopped(&cache, &signal, interval))
            .expect("the sweeper thread can be spawned");
        *thread = Some(handle);
    }

    /// Stops sweeping and joins the thread; a no-op when stopped.
    pub fn stop(&self) {
        let Some(handle) = self.thread.lock().take() else {
            return;
        };
        *self.signal.stop.lock() = true;
        self.signal.wake.notify_all();
        if handle.join().is_err() {
            log::error!("the TTL sweeper thread panicked");
        }
    }

    pub fn is_running(&self) -> bool {
        self.thread
            .lock()
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }
}

impl Drop for TtlManager {
    fn drop(&mut self) {
        self.stop();
    }
}

fn sweep_until_stopped(cache: &Engine, signal: &Signal, interval: Duration) {
    loop {
        sweep_once(cache);
        let mut stop = signal.stop.lock();
        if *stop {
            return;
        }
        match Instant::now().checked_add(interval) {
            Some(deadline) => {
                while !*stop {
                    if signal.wake.wait_until(&mut stop, deadline).timed_out() {
                        break;
                    }
                }
            }
            // Beyond the monotonic clock's range: no sweep is due before `stop`.
            None => {
                while !*stop {
                    signal.wake.wait(&mut stop);
                }
            }
        }
        if *stop {
            return;
        }
    }
}

/// One sweep; a panic in it is logged and ends only this sweep, not the thread. The cache's
/// locks do not poison, so the next sweep finds them usable.
fn sweep_once(cache: &Engine) {
    match catch_unwind(AssertUnwindSafe(|| cache.cleanup_expired())) {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => log::debug!("TTL sweep removed {n} expired entries"),
        Ok(Err(e)) => log::warn!("TTL sweep failed: {e}"),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            log::error!("TTL sweep panicked, the next one runs on schedule: {what}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_of_the_longest_interval_fits_the_clock() {
        let interval = checked_interval("x", crate::config::MAX_CLEANUP_INTERVAL_SECONDS).unwrap();
        assert_eq!(interval, Duration::from_secs(31_536_000));
        assert!(Instant::now().checked_add(interval).is_some());
    }

    #[test]
    fn intervals_outside_the_bounds_are_refused() {
        for bad in [
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            1e19,
            9.3e18,
            2f64.powi(63),
            1e300,
        ] {
            let message = checked_interval("the interval", bad).unwrap_err();
            assert!(message.contains("<= 31536000 (365 days)"), "{message}");
        }
        assert!(checked_interval("x", 31_536_000.0 + 1e-3).is_err());
        assert!(checked_interval("x", 1e-3).is_ok());
    }
}
