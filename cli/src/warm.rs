//! `pwcache warm FILE`: a bulk load, with a progress bar on a terminal. It says how many rows
//! were loaded and names every row that was not, with its line and the reason. Ctrl-C stops it
//! between batches: what it loaded until then is stored in every tier, and it says how far it
//! read.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use pwcache::{CacheManager, WarmReport};

use crate::exit::{Failure, INTERRUPTED, WARM_INCOMPLETE};
use crate::{interrupt, print, progress};

/// Runs the warm. The summary goes to stdout; the rows left out go to stderr: the first
/// [`pwcache::WARM_PROBLEMS_LISTED`] from the report, or, with `-v`, every one as the library
/// logs it (the logger shows the row warnings only then).
pub fn run(
    out: &mut impl Write,
    cache: &CacheManager,
    file: &Path,
    ttl: Option<i64>,
    verbose: bool,
) -> Result<(), Failure> {
    log::info!("warm from {}", file.display());
    let stop = interrupt::on_ctrl_c();
    let bar = progress::bar("warming");
    let started = Instant::now();
    let mut reached = (0u64, 0u64);
    let report = cache.warm_from_file_until(
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
    let counts = report.counts;
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
    if !verbose {
        list_problems(&report, file);
    }
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
    if counts.loaded == 0 || counts.failed > 0 {
        let why = if counts.loaded == 0 {
            "nothing was loaded"
        } else {
            "some rows failed"
        };
        return Err(Failure::new(
            WARM_INCOMPLETE,
            format!("warm of {}: {why}", file.display()),
        ));
    }
    Ok(())
}

fn list_problems(report: &WarmReport, file: &Path) {
    for problem in &report.problems {
        // The same line as the library's warning that -v shows.
        eprintln!("pwcache: warn: warm {}: {problem}", file.display());
    }
    if report.problems_not_listed > 0 {
        eprintln!(
            "pwcache: ... and {} more rows left out (`pwcache warm -v` lists every one)",
            report.problems_not_listed
        );
    }
}
