//! `pwcache warm FILE`: a bulk load, with a progress bar on a terminal.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use pwcache::CacheManager;

use crate::exit::Failure;
use crate::{print, progress};

pub fn run(
    out: &mut impl Write,
    cache: &CacheManager,
    file: &Path,
    ttl: Option<i64>,
) -> Result<(), Failure> {
    log::info!("warm from {}", file.display());
    let bar = progress::bar("warming");
    let started = Instant::now();
    let counts = cache.warm_from_file_with_progress(file, ttl, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
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
    )
}
