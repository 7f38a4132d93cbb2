//! `pwcache export FILE`: every live entry as JSON Lines. The file must be somewhere that
//! exists (no directories are created), is not replaced unless `--force` says so, and appears
//! whole or not at all. A record that cannot be read (corrupt, or a credential under another
//! encryption key) makes the export an error: the file is written, the count of what is missing
//! is printed, and the exit status is 1. Ctrl-C stops it: nothing is written, exit status 130.

use std::io::Write;
use std::path::Path;

use pwcache::CacheManager;

use crate::exit::{Failure, INTERRUPTED};
use crate::{interrupt, print, progress};

/// Refuses a destination that would need new directories or would replace a file unasked.
pub fn check_destination(file: &Path, force: bool) -> Result<(), Failure> {
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Failure::new(
            1,
            format!(
                "cannot export to {}: the directory {} does not exist (export creates no \
                 directories)",
                file.display(),
                parent.display()
            ),
        ));
    }
    if file.is_dir() {
        return Err(Failure::new(
            1,
            format!("cannot export to {}: it is a directory", file.display()),
        ));
    }
    if file.exists() && !force {
        return Err(Failure::new(
            1,
            format!(
                "{} exists: give --force to replace it, or another file name",
                file.display()
            ),
        ));
    }
    Ok(())
}

pub fn run(
    out: &mut impl Write,
    cache: &CacheManager,
    file: &Path,
    include_credentials: bool,
) -> Result<(), Failure> {
    let replacing = file.exists();
    log::info!(
        "export to {} (credentials {})",
        file.display(),
        if include_credentials {
            "included"
        } else {
            "masked"
        }
    );
    let stop = interrupt::on_ctrl_c();
    let bar = progress::bar("exporting");
    let result = cache.export_to_file_until(
        file,
        include_credentials,
        &mut |done, total| {
            bar.set_length(total.max(done));
            bar.set_position(done);
        },
        &stop,
    );
    bar.finish_and_clear();
    let counts = match result {
        Ok(counts) => counts,
        Err(e) if interrupt::requested(&stop) => {
            return Err(Failure::new(
                INTERRUPTED,
                format!("interrupted: {e}; the cache is unchanged"),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    print(
        out,
        &format!(
            "exported {} entries to {}{}",
            counts.exported,
            file.display(),
            if replacing {
                " (replaced the file that was there)"
            } else {
                ""
            }
        ),
    )?;
    if counts.failed > 0 {
        return Err(Failure::new(
            1,
            format!(
                "{} entries could not be read and are not in {} (corrupt records, or \
                 credentials encrypted with another key: see the warnings above); exported {} \
                 + failed {} = {} entries",
                counts.failed,
                file.display(),
                counts.exported,
                counts.failed,
                counts.exported + counts.failed
            ),
        ));
    }
    Ok(())
}
