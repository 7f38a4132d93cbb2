//! Keeping L1 coherent with the fleet: a thread per handle listens to the shared tier's notices
//! (`tier/redis/subscriber.rs`) and drops from L1 every key another handle changed.
//!
//! While the listener is not subscribed (at open, and whenever its connection drops) a change
//! elsewhere could go unnoticed, so L1 is not trusted: it is emptied, reads skip it and go to
//! the shared tier (or the local disk tiers when that is down), and it is emptied again when the
//! listener has subscribed anew, before it is trusted again (the re-sync: whatever it held may
//! have changed meanwhile).
//!
//! A read that misses L1 and copies an entry into it may race with a notice about that key: the
//! notice may be handled before the copy lands. Each notice therefore bumps a generation (per
//! stripe of keys; every stripe for a clear, a loss or a subscription), read before the lower
//! tiers are; a copy whose stripe moved meanwhile is taken out of L1 again
//! ([`Coherence::unchanged_since`]).
//!
//! The thread never dies of a panic (it is caught, L1 distrusted and emptied, and the listener
//! started again) and is stopped and joined when the handle is freed, within one poll slice or
//! one connect timeout.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::SharedConfig;
use crate::error::{Error, Result};
use crate::tier::memory::MemoryTier;
use crate::tier::redis::names::Change;
use crate::tier::redis::subscriber::{Event, Subscriber};

const STRIPES: usize = 64;

/// What the listener and the readers share.
struct State {
    subscribed: AtomicBool,
    generations: [AtomicU64; STRIPES],
}

impl State {
    fn bump_all(&self) {
        for g in &self.generations {
            g.fetch_add(1, Ordering::AcqRel);
        }
    }
}

fn stripe(key: &str) -> usize {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    h.write(key.as_bytes());
    (h.finish() as usize) % STRIPES
}

/// The listener of one handle.
pub(super) struct Coherence {
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Coherence {
    /// Starts the listener for the handle named `origin`, dropping keys from `l1`.
    pub fn start(
        shared: &SharedConfig,
        origin: &str,
        l1: Option<Arc<MemoryTier>>,
    ) -> Result<Coherence> {
        let subscriber = Subscriber::new(shared, origin)?;
        let state = Arc::new(State {
            subscribed: AtomicBool::new(false),
            generations: std::array::from_fn(|_| AtomicU64::new(0)),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::Builder::new()
                .name("pwcache-notices".into())
                .spawn(move || listen(&subscriber, &state, &stop, l1.as_deref()))
                .map_err(|e| Error::Storage(format!("cannot start the notice listener: {e}")))?
        };
        Ok(Coherence {
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// Whether L1 may serve what it holds: the listener is subscribed.
    pub fn l1_trusted(&self) -> bool {
        self.state.subscribed.load(Ordering::Acquire)
    }

    /// The generation of `key`'s stripe, to read before reading the lower tiers.
    pub fn generation(&self, key: &str) -> u64 {
        self.state.generations[stripe(key)].load(Ordering::Acquire)
    }

    /// Whether no notice touched `key`'s stripe since `generation` was read, and L1 is trusted.
    pub fn unchanged_since(&self, key: &str, generation: u64) -> bool {
        self.l1_trusted() && self.generation(key) == generation
    }
}

impl Drop for Coherence {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The listener thread's body: runs the subscriber until stopped, whatever it panics with.
fn listen(subscriber: &Subscriber, state: &State, stop: &AtomicBool, l1: Option<&MemoryTier>) {
    let distrust = || {
        state.subscribed.store(false, Ordering::Release);
        state.bump_all();
        if let Some(l1) = l1 {
            l1.remove_all();
        }
    };
    while !stop.load(Ordering::Acquire) {
        let run = catch_unwind(AssertUnwindSafe(|| {
            subscriber.run(stop, &mut |event| match event {
                Event::Subscribed => {
                    // Whatever L1 took in while unsubscribed may be stale: drop it first.
                    state.bump_all();
                    if let Some(l1) = l1 {
                        l1.remove_all();
                    }
                    state.subscribed.store(true, Ordering::Release);
                }
                Event::Lost => distrust(),
                Event::Changed(Change::Key(key)) => {
                    state.generations[stripe(&key)].fetch_add(1, Ordering::AcqRel);
                    if let Some(l1) = l1 {
                        l1.remove(&key);
                    }
                }
                Event::Changed(Change::Everything) => {
                    state.bump_all();
                    if let Some(l1) = l1 {
                        l1.remove_all();
                    }
                }
            })
        }));
        if run.is_err() {
            log::error!("the notice listener panicked: L1 dropped, listening again");
            distrust();
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    state.subscribed.store(false, Ordering::Release);
}
