//! Rounds that alternate the cases of a part, medians, and the tables printed.

use std::time::Duration;

/// The 1-minute load average, as `/proc/loadavg` gives it ("?" elsewhere).
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// One case of a part: a name and a function that runs one round and returns the time of each
/// operation (wall time over operations, so with threads it is the inverse of the throughput).
pub struct Case<'a> {
    pub name: String,
    pub run: Box<dyn FnMut() -> Duration + 'a>,
}

impl<'a> Case<'a> {
    pub fn new(name: impl Into<String>, run: impl FnMut() -> Duration + 'a) -> Case<'a> {
        Case {
            name: name.into(),
            run: Box::new(run),
        }
    }
}

/// Medians per case over `rounds`, each round running every case once, in turn; one warm-up
/// round first, not counted. Returns the median time per operation of each case, in order, and
/// saves them for `benches/plot_speed.py` ([`save`]).
pub fn alternate(
    part: &str,
    title: &str,
    rounds: usize,
    cases: &mut Vec<Case<'_>>,
) -> Vec<(String, Duration)> {
    // `PWCACHE_SPEED_ONLY=<text>`: only the cases whose name contains it (for a profiler).
    if let Ok(only) = std::env::var("PWCACHE_SPEED_ONLY") {
        cases.retain(|c| c.name.contains(&only));
    }
    let load_before = load();
    for case in cases.iter_mut() {
        (case.run)();
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (i, case) in cases.iter_mut().enumerate() {
            samples[i].push((case.run)());
        }
    }
    let load_after = load();
    println!(
        "\n## {title}\n\nload average (1 min) {load_before} before, {load_after} after; {rounds} rounds, median of each\n"
    );
    let medians: Vec<(String, Duration)> = cases
        .iter()
        .zip(samples)
        .map(|(case, mut s)| {
            s.sort();
            (case.name.clone(), s[s.len() / 2])
        })
        .collect();
    save(part, rounds, [load_before, load_after], &medians);
    medians
}

/// Writes the medians of `part` to `<target dir>/speed/<part>.json` (nanoseconds per
/// operation by case, with the rounds and the load averages), for `benches/plot_speed.py`.
/// `PWCACHE_SPEED_OUT` names another directory. A run that cannot write says so and goes on.
fn save(part: &str, rounds: usize, load: [String; 2], medians: &[(String, Duration)]) {
    let dir = std::env::var_os("PWCACHE_SPEED_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(
                std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into()),
            )
            .join("speed")
        });
    let cases: serde_json::Map<String, serde_json::Value> = medians
        .iter()
        .map(|(name, d)| (name.clone(), (d.as_nanos() as u64).into()))
        .collect();
    let doc = serde_json::json!({
        "part": part,
        "rounds": rounds,
        "load_average": load,
        "ns_per_op": cases,
    });
    let path = dir.join(format!("{part}.json"));
    let written =
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, format!("{doc:#}\n")));
    match written {
        Ok(()) => println!("(medians saved to {})", path.display()),
        Err(e) => eprintln!("cannot save the medians to {}: {e}", path.display()),
    }
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The median of `name` in `results`.
pub fn of(results: &[(String, Duration)], name: &str) -> Duration {
    results
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, d)| *d)
        .unwrap_or_else(|| panic!("no case {name}"))
}

/// Prints one line per case: time per operation and operations per second.
pub fn print_times(results: &[(String, Duration)]) {
    println!("| case | µs/op | ops/s |\n|---|--:|--:|");
    for (name, d) in results {
        println!(
            "| {name} | {:.2} | {:.0} |",
            micros(*d),
            1.0 / d.as_secs_f64()
        );
    }
}

/// Prints `a` over `b` (a time ratio: above 1 means `a` is slower) against a target.
pub fn print_ratio(results: &[(String, Duration)], a: &str, b: &str, target: Option<f64>) {
    if !results.iter().any(|(n, _)| n == a) || !results.iter().any(|(n, _)| n == b) {
        return;
    }
    let ratio = of(results, a).as_secs_f64() / of(results, b).as_secs_f64();
    match target {
        Some(t) => println!(
            "- {a} / {b} = {ratio:.2}× (target ≤ {t}×: {})",
            if ratio <= t { "held" } else { "NOT held" }
        ),
        None => println!("- {a} / {b} = {ratio:.2}×"),
    }
}
