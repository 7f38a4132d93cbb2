//! The notice listener: one connection subscribed to the namespace's channel, turning notices
//! from other handles into [`Event`]s, and telling when it is not listening.
//!
//! A silent connection is not proof of a live one (a partitioned network says nothing), so the
//! listener PINGs the server every [`HEARTBEAT`] and takes a reply not received within the
//! timeout as a lost connection. It reconnects by itself, with a back-off from 50 ms to 1 s,
//! until it is told to stop; every wait is in slices of [`POLL`] so that a stop is seen within
//! one slice (or one timeout while connecting).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::Value;

use crate::config::SharedConfig;
use crate::error::Result;

use super::connection::Pool;
use super::names::{Change, Names, parse_notice};

/// How often the listener looks at its stop flag while no notice arrives.
pub const POLL: Duration = Duration::from_millis(20);
/// How often the listener checks that the server still answers.
pub const HEARTBEAT: Duration = Duration::from_millis(500);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// What the listener reports.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Listening: every change made from now on will be reported.
    Subscribed,
    /// Not listening any more: changes may go unreported until the next `Subscribed`.
    Lost,
    /// Another handle changed a key or cleared the pool.
    Changed(Change),
}

/// Listens to one namespace for the handle named `origin`.
pub struct Subscriber {
    pool: Pool,
    channel: String,
    origin: String,
}

fn nothing_to_prepare(_: &mut super::connection::Conn) -> redis::RedisResult<()> {
    Ok(())
}

impl Subscriber {
    pub fn new(shared: &SharedConfig, origin: &str) -> Result<Subscriber> {
        Ok(Subscriber {
            pool: Pool::new(shared, nothing_to_prepare)?,
            channel: Names::new(&shared.namespace).channel(),
            origin: origin.to_string(),
        })
    }

    /// Listens until `stop` is set, reporting to `on`. `Lost` follows every `Subscribed` whose
    /// connection ends (before the next `Subscribed`), and is reported once when the first
    /// connection cannot be made.
    pub fn run(&self, stop: &AtomicBool, on: &mut dyn FnMut(Event)) {
        let mut backoff = FIRST_BACKOFF;
        let mut reported_lost = false;
        while !stop.load(Ordering::Acquire) {
            let mut subscribed = false;
            let outcome = self.session(stop, &mut |event| {
                if event == Event::Subscribed {
                    subscribed = true;
                }
                on(event)
            });
            match outcome {
                Ok(()) => return,
                Err(e) => {
                    if subscribed || !reported_lost {
                        log::warn!("shared tier: notices lost, dropping shared copies: {e}");
                        on(Event::Lost);
                        reported_lost = true;
                    }
                    if subscribed {
                        backoff = FIRST_BACKOFF;
                    }
                    sleep_unless_stopped(backoff, stop);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One connection's life: `Ok` when stopped, `Err` when the connection failed.
    fn session(&self, stop: &AtomicBool, on: &mut dyn FnMut(Event)) -> Result<()> {
        let mut conn = self.pool.connect()?;
        let mut pubsub = conn.as_pubsub();
        let failed = |e: redis::RedisError| self.pool.error("listening for notices", &e);
        pubsub.subscribe(&self.channel).map_err(failed)?;
        on(Event::Subscribed);
        pubsub.set_read_timeout(Some(POLL)).map_err(failed)?;
        let mut last_ping = Instant::now();
        while !stop.load(Ordering::Acquire) {
            match pubsub.get_message() {
                Ok(message) => {
                    if let Some(change) = parse_notice(message.get_payload_bytes(), &self.origin) {
                        on(Event::Changed(change));
                    }
                }
                Err(e) if e.is_timeout() => {}
                Err(e) => return Err(failed(e)),
            }
            if last_ping.elapsed() >= HEARTBEAT {
                pubsub
                    .set_read_timeout(Some(self.pool.timeout()))
                    .map_err(failed)?;
                pubsub.ping::<Value>().map_err(failed)?;
                pubsub.set_read_timeout(Some(POLL)).map_err(failed)?;
                last_ping = Instant::now();
            }
        }
        Ok(())
    }
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let until = Instant::now() + total;
    while !stop.load(Ordering::Acquire) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(POLL));
    }
}
