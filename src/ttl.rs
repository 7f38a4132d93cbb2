//! The TTL manager: a background thread that sweeps expired entries from every tier.
//!
//! Expiry is also checked on every read, so the sweeper only reclaims space. A new manager is
//! stopped; `start` runs a sweep at once and then every interval; `stop` wakes the thread at once
//! (it never sleeps out the interval) and joins it. The manager keeps the cache's shared state
//! alive, so the cache handle may be dropped first.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::manager::{CacheManager, Engine};

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
    /// A stopped manager sweeping `cache` every `interval_seconds` (finite, > 0).
    pub fn new(cache: &CacheManager, interval_seconds: f64) -> Result<TtlManager> {
        if !(interval_seconds.is_finite() && interval_seconds > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "the cleanup interval must be a finite number of seconds > 0, got {interval_seconds}"
            )));
        }
        let interval = Duration::try_from_secs_f64(interval_seconds).map_err(|_| {
            Error::InvalidArgument(format!(
                "the cleanup interval {interval_seconds} is too long"
            ))
        })?;
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
        match cache.cleanup_expired() {
            Ok(0) => {}
            Ok(n) => log::debug!("TTL sweep removed {n} expired entries"),
            Err(e) => log::warn!("TTL sweep failed: {e}"),
        }
        let mut stop = signal.stop.lock();
        if *stop {
            return;
        }
        let deadline = std::time::Instant::now() + interval;
        while !*stop {
            if signal.wake.wait_until(&mut stop, deadline).timed_out() {
                break;
            }
        }
        if *stop {
            return;
        }
    }
}
