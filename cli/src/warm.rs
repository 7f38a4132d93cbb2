//! `pwcache warm FILE`: a bulk load, with a progress bar on a terminal. Ctrl-C stops it between
//! batches: what it loaded until then is stored in every tier, and it says how far it read.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use pwcache::CacheManager;

use crate::exit::{Failure, INTERRUPTED};
use crate::{interrupt, print, progress};

pub fn run(
    out: &mut impl Write,
    cache: &CacheManager,
    file: &Path,
    ttl: Option<i64>,
) -> Result<(), Failure> {
    log::info!("warm from {}", file.display());
    let stop = interrupt::on_ctrl_c();
    let bar = progress::bar("warming");
    let started = Instant::now();
    let mut reached = (0u64, 0u64);
    let counts = cache.warm_from_file_until(
        file,
        ttl,
        &mut |done, total| {
            reached = (done, total);
            bar.set_length(total);
            bar.set_position(done);
        },
        &stop,
    )?;
    bar.finish_and_clear();
    print(
        out,
        &format!(
            "loaded {}, skipped {}, failed {} in {:.2} s",
            counts.loaded,
            counts.skipped,
            counts.failed,
            started.elapsed().as_secs_f64()
        ),
    )?;
    if interrupt::requested(&stop) {
        let (done, total) = reached;
        let unit = if file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            "items"
        } else {
            "bytes"
        };
        return Err(Failure::new(
            INTERRUPTED,
            format!(
                "interrupted: stopped after {done} of {total} {unit} of {}; the {} entries \
                 loaded until then are stored in every tier, the rest of the file was not read",
                file.display(),
                counts.loaded
            ),
        ));
    }
    Ok(())
}
