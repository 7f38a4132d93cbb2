//! `pwcache warm FILE`: load a proxy list, say how many rows were loaded, and name every row
//! that was not, with its line and the reason.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use pwcache::{CacheManager, WarmReport};

use crate::{print, progress_bar};

/// The exit status of a warm that loaded nothing, or in which some rows failed (a line that
/// is not JSON, a CSV line with a quote left open, a batch that could not be stored).
/// Skipped rows alone (read, but not a proxy) do not change the status when others loaded.
pub const EXIT_WARM_INCOMPLETE: u8 = 4;

/// Runs the warm. The summary goes to stdout; the rows left out go to stderr: the first
/// [`pwcache::WARM_PROBLEMS_LISTED`] from the report, or, with `-v`, every one as the library
/// logs it (the logger shows the row warnings only then).
pub fn warm(
    cache: &CacheManager,
    out: &mut impl Write,
    file: &Path,
    ttl: Option<i64>,
    verbose: bool,
) -> pwcache::Result<ExitCode> {
    let bar = progress_bar("warming");
    let started = Instant::now();
    let report = cache.warm_from_file_with_progress(file, ttl, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
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
    if counts.loaded == 0 || counts.failed > 0 {
        let why = if counts.loaded == 0 {
            "nothing was loaded"
        } else {
            "some rows failed"
        };
        eprintln!(
            "pwcache: warm of {}: {why} (exit status {EXIT_WARM_INCOMPLETE})",
            file.display()
        );
        return Ok(ExitCode::from(EXIT_WARM_INCOMPLETE));
    }
    Ok(ExitCode::SUCCESS)
}

fn list_problems(report: &WarmReport, file: &Path) {
    for problem in &report.problems {
        eprintln!("pwcache: warning: {}: {problem}", file.display());
    }
    if report.problems_not_listed > 0 {
        eprintln!(
            "pwcache: ... and {} more rows left out (`pwcache -v warm` lists every one)",
            report.problems_not_listed
        );
    }
}
