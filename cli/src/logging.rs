//! Log output on stderr, for the library's messages (it logs through the `log` facade) and the
//! command's own: warnings always, `-v` info, `-vv` debug; `RUST_LOG` (env_logger's filter
//! syntax, e.g. `RUST_LOG=pwcache=trace`) replaces both when set. Credentials never reach a log
//! line: the library redacts them, and the command logs keys and paths only.

use std::io::Write;

pub fn init(verbose: u8) {
    let level = match verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    };
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level);
    match std::env::var("RUST_LOG") {
        Ok(filter) if !filter.is_empty() => {
            builder.parse_filters(&filter);
        }
        // warm's one warning per row left out: every one with -v, else warm lists the first.
        _ if verbose == 0 => {
            builder.filter_module(pwcache::WARM_ROW_LOG_TARGET, log::LevelFilter::Off);
        }
        _ => {}
    }
    builder.format(move |out, record| {
        let level = record.level().as_str().to_ascii_lowercase();
        if verbose >= 2 || record.level() >= log::Level::Debug {
            writeln!(
                out,
                "pwcache: {level}: [{}] {}",
                record.target(),
                record.args()
            )
        } else {
            writeln!(out, "pwcache: {level}: {}", record.args())
        }
    });
    // Only fails if a logger is already set, which nothing else here does.
    let _ = builder.try_init();
}
