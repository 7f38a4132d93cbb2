//! Operation logs of child processes: one line per event, each written with one `write(2)` on a
//! file opened with `O_APPEND`. A SIGKILL cannot lose a line that `write(2)` returned (the page
//! cache belongs to the kernel); it can only cut the line being written, which readers drop.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

pub struct OpLog(File);

impl OpLog {
    pub fn create(path: &Path) -> OpLog {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap_or_else(|e| panic!("cannot open the log {}: {e}", path.display()));
        OpLog(file)
    }

    /// Appends `text` and a newline in one `write(2)`.
    pub fn line(&mut self, text: &str) {
        let mut line = String::with_capacity(text.len() + 1);
        line.push_str(text);
        line.push('\n');
        let written = self.0.write(line.as_bytes()).expect("write a log line");
        assert_eq!(written, line.len(), "a short write to a log");
    }
}

/// The complete lines of a log (a last line without its newline was cut by a kill: dropped).
pub fn read_lines(path: &Path) -> Vec<String> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let complete = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |last| last + 1);
    String::from_utf8(bytes[..complete].to_vec())
        .expect("logs are UTF-8")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Nanoseconds of `CLOCK_MONOTONIC`: one clock for every process of the machine, so the
/// operations of several processes can be ordered in time.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
