//! Ctrl-C during warm and export. The first press sets a flag that the library checks between
//! batches, so the command stops where everything it read is stored (warm) or nothing was
//! written (export), and says so; a second press ends the process at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The flag a Ctrl-C sets, for the library's `*_until` calls.
pub fn on_ctrl_c() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    let installed = ctrlc::set_handler(move || {
        if set.swap(true, Ordering::SeqCst) {
            eprintln!("pwcache: interrupted again: stopping now");
            std::process::exit(i32::from(crate::exit::INTERRUPTED));
        }
        eprintln!(
            "pwcache: interrupted: stopping after the current batch (Ctrl-C again to stop at once)"
        );
    });
    if let Err(e) = installed {
        // Without the handler Ctrl-C ends the process as usual: stored batches stay stored.
        log::warn!("cannot catch Ctrl-C ({e}): it will end the command at once");
    }
    flag
}

pub fn requested(flag: &AtomicBool) -> bool {
    flag.load(Ordering::SeqCst)
}
