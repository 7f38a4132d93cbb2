//! Child processes without a shipped binary: the test binary starts itself again to run one
//! `#[ignore]`d test function, which finds its parameters in [`PARAMS_VAR`]. Run by hand (as with
//! `cargo test -- --ignored`), such a function finds no parameters and does nothing.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pwcache::L2Backend;
use serde_json::Value;

/// The environment variable that carries a child's parameters, as a JSON object.
pub const PARAMS_VAR: &str = "PWCACHE_TEST_CHILD_PARAMS";

/// Starts this test binary again running only the test function `name`, with `params`; its
/// standard output and error go to the file `output`.
pub fn spawn(name: &str, params: &Value, output: &Path) -> Child {
    let out = File::create(output).expect("create the child's output file");
    let err = out.try_clone().expect("clone the child's output file");
    Command::new(std::env::current_exe().expect("the path of this test binary"))
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PARAMS_VAR, params.to_string())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start a child process")
}

/// The parameters of this process when a parent test started it, `None` otherwise.
pub fn params() -> Option<Value> {
    let text = std::env::var(PARAMS_VAR).ok()?;
    Some(serde_json::from_str(&text).expect("the child's parameters are a JSON object"))
}

/// In a child: its parameters, with the engine's warnings sent where the parent finds them
/// ([`log_warnings_to_stderr`]); `None` when no parent started this process.
pub fn started() -> Option<Value> {
    let params = params()?;
    log_warnings_to_stderr();
    Some(params)
}

/// The path parameter `name`.
pub fn path_param(params: &Value, name: &str) -> PathBuf {
    PathBuf::from(
        params[name]
            .as_str()
            .unwrap_or_else(|| panic!("the child's parameter {name:?} is not a path")),
    )
}

/// The `backend` parameter (`"sqlite"`, else JSONL).
pub fn backend_param(params: &Value) -> L2Backend {
    match params["backend"].as_str() {
        Some("sqlite") => L2Backend::Sqlite,
        _ => L2Backend::Jsonl,
    }
}

/// The name of a backend as [`backend_param`] reads it.
pub fn backend_name(backend: L2Backend) -> &'static str {
    match backend {
        L2Backend::Sqlite => "sqlite",
        L2Backend::Jsonl => "jsonl",
    }
}

/// In child `process` of a group ([`start_together`]): says it is ready, then waits for the
/// parent's go.
pub fn ready_then_wait_for_go(run: &Path, process: u64, timeout: Duration) {
    std::fs::write(run.join(format!("ready{process}")), b"").expect("write the ready file");
    wait_for_signal(&run.join("go"), timeout);
}

/// Starts one child running `name` per entry of `params` (child `i` is process `i`, its output
/// in `run/output<i>.txt`), and waits until each has called [`ready_then_wait_for_go`]. The
/// parent then lets them all go at once with [`go`].
pub fn start_together(
    name: &str,
    run: &Path,
    params: impl IntoIterator<Item = Value>,
    timeout: Duration,
) -> Vec<(Child, PathBuf)> {
    let mut children: Vec<(Child, PathBuf)> = params
        .into_iter()
        .enumerate()
        .map(|(process, params)| {
            let output = run.join(format!("output{process}.txt"));
            (spawn(name, &params, &output), output)
        })
        .collect();
    for (process, (child, output)) in children.iter_mut().enumerate() {
        wait_for_file(&run.join(format!("ready{process}")), child, output, timeout);
    }
    children
}

/// Lets the children of [`start_together`] go.
pub fn go(run: &Path) {
    std::fs::write(run.join("go"), b"").expect("write the go file");
}

/// Waits until `path` exists; fails when `child` exits first or after `timeout`.
pub fn wait_for_file(path: &Path, child: &mut Child, output: &Path, timeout: Duration) {
    let start = Instant::now();
    while !path.exists() {
        if let Some(status) = child.try_wait().expect("poll the child") {
            panic!(
                "the child exited ({status}) before creating {}; its output:\n{}",
                path.display(),
                std::fs::read_to_string(output).unwrap_or_default()
            );
        }
        assert!(
            start.elapsed() < timeout,
            "the child did not create {} within {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until `path` exists (the parent's signal), for at most `timeout`.
pub fn wait_for_signal(path: &Path, timeout: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < timeout,
            "no {} within {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits for `child` to exit, killing it after `timeout` (a hang is a failure).
pub fn wait_with_timeout(child: &mut Child, output: &Path, timeout: Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            assert!(
                status.success(),
                "a child failed ({status}); its output:\n{}",
                std::fs::read_to_string(output).unwrap_or_default()
            );
            return;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "a child did not finish within {timeout:?}; its output:\n{}",
                std::fs::read_to_string(output).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends the engine's log lines (warnings and errors) to standard error, where the parent finds
/// them in the child's output file.
pub fn log_warnings_to_stderr() {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, metadata: &log::Metadata) -> bool {
            metadata.level() <= log::Level::Warn
        }
        fn log(&self, record: &log::Record) {
            if self.enabled(record.metadata()) {
                eprintln!("pwcache {}: {}", record.level(), record.args());
            }
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

/// How many engine warnings a child's output file holds.
pub fn warnings_in(output: &Path) -> Vec<String> {
    std::fs::read_to_string(output)
        .unwrap_or_default()
        .lines()
        // A line may begin with the test harness's own text ("test store_user ... "), which
        // the child's first warning can follow on the same line.
        .filter_map(|l| {
            ["pwcache WARN: ", "pwcache ERROR: "]
                .iter()
                .filter_map(|tag| l.find(tag))
                .min()
                .map(|at| l[at..].to_string())
        })
        .collect()
}
