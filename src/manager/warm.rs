//! Bulk load from `.json`, `.jsonl` and `.csv` files (`warm_from_file`; the input formats are
//! specified in docs/FORMAT.md §7).
//!
//! Rows become entries with `source = "warmed"` unless they say otherwise, and are stored in
//! batches of [`BATCH`], one transaction per tier each. One bad row never stops the rest: a row
//! that is read but is not a proxy (not an object, no `proxy_url`, a `proxy_url` that is not
//! `scheme://host[:port]`, credentials given twice and different) is *skipped*; a line that
//! does not parse, or a batch no tier could store, is *failed*. Each of them is reported with
//! its line (or item) and the reason: all as warnings in the log, the first
//! [`WARM_PROBLEMS_LISTED`] in the [`WarmReport`].

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use serde_json::{Map, Value};

use super::Engine;
use crate::entry::{CacheEntry, Secret};
use crate::error::{Error, Result};
use crate::key::generate_cache_key;
use crate::proxy_url::{ProxyUrl, merge_credential};
use crate::time::Timestamp;

/// Rows per batch written to the tiers.
pub const BATCH: usize = 1000;

/// How many row problems a [`WarmReport`] lists; every one is logged.
pub const WARM_PROBLEMS_LISTED: usize = 20;

/// The log target of the warning logged for each skipped or failed row, so that a logger can
/// show or hide them apart from other messages (the CLI shows them with `-v`).
pub const WARM_ROW_LOG_TARGET: &str = "pwcache::warm::row";

/// What a warm did with the rows of the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WarmCounts {
    pub loaded: u64,
    pub skipped: u64,
    pub failed: u64,
}

/// Whether a row was skipped (read, but not a proxy) or failed (unreadable, or not stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowOutcome {
    Skipped,
    Failed,
}

/// Where a row is in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowPlace {
    /// A line of a `.jsonl` or `.csv` file, from 1 (a CSV header is line 1).
    Line(u64),
    /// An item of a `.json` array, from 1.
    Item(u64),
}

impl std::fmt::Display for RowPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowPlace::Line(n) => write!(f, "line {n}"),
            RowPlace::Item(n) => write!(f, "item {n}"),
        }
    }
}

/// One row that was not loaded, and why. Its JSON form is
/// `{"line": n, "outcome": "skipped", "reason": "..."}` (`"item"` instead of `"line"` in a
/// `.json` file). The reason never quotes a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowProblem {
    pub place: RowPlace,
    pub outcome: RowOutcome,
    pub reason: String,
}

impl Serialize for RowProblem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("RowProblem", 3)?;
        match self.place {
            RowPlace::Line(n) => s.serialize_field("line", &n)?,
            RowPlace::Item(n) => s.serialize_field("item", &n)?,
        }
        s.serialize_field("outcome", &self.outcome)?;
        s.serialize_field("reason", &self.reason)?;
        s.end()
    }
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let outcome = match self.outcome {
            RowOutcome::Skipped => "skipped",
            RowOutcome::Failed => "failed",
        };
        write!(f, "{}: {outcome}: {}", self.place, self.reason)
    }
}

/// The result of a warm: the counts, and the first [`WARM_PROBLEMS_LISTED`] rows that were
/// skipped or failed, in file order (each of them, listed or not, is also logged as a warning
/// with target [`WARM_ROW_LOG_TARGET`]). JSON:
/// `{"loaded": n, "skipped": n, "failed": n, "problems": [...], "problems_not_listed": n}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WarmReport {
    #[serde(flatten)]
    pub counts: WarmCounts,
    pub problems: Vec<RowProblem>,
    /// Skipped and failed rows beyond the ones listed.
    pub problems_not_listed: u64,
}

impl WarmReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report serialises")
    }
}

#[derive(Clone, Copy)]
enum Format {
    Json,
    Jsonl,
    Csv,
}

/// The recognised fields of one row, before defaults.
#[derive(Default)]
struct Row {
    proxy_url: Option<String>,
    key: Option<String>,
    username: Option<String>,
    password: Option<String>,
    source: Option<String>,
}

/// A credential as exported by proxywhirl or pwcache (`"***"`, `"**********"`): no credential.
fn is_mask(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b == b'*')
}

fn credential(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.is_empty() && !is_mask(t))
}

/// A JSON value used as text: strings as they are, numbers written out, anything else absent.
fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Row {
    /// The row of a JSON object; `Err` with the reason to skip it.
    fn from_object(object: &Map<String, Value>) -> std::result::Result<Row, String> {
        let proxy_url = match object.get("proxy_url") {
            Some(Value::String(s)) => Some(s.clone()),
            None | Some(Value::Null) => None,
            Some(_) => return Err("`proxy_url` is not a string".into()),
        };
        Ok(Row {
            proxy_url,
            key: text_of(object.get("key")),
            username: text_of(object.get("username")),
            password: text_of(object.get("password")),
            source: text_of(object.get("source")),
        })
    }
}

/// Turns rows into entries and stores them in batches.
struct Loader<'a> {
    engine: &'a Engine,
    path: &'a Path,
    now: Timestamp,
    ttl_override: Option<i64>,
    batch: Vec<CacheEntry>,
    /// Where each entry of `batch` came from.
    places: Vec<RowPlace>,
    report: WarmReport,
    /// Set by the caller (Ctrl-C in the CLI) to stop between batches.
    stop: &'a AtomicBool,
}

impl Loader<'_> {
    /// Whether to stop reading now: asked to, and every row read so far is stored (or counted
    /// as skipped or failed), so what the report says is exactly what the tiers hold.
    fn stopping(&self) -> bool {
        self.batch.is_empty() && self.stop.load(Ordering::Relaxed)
    }

    /// Counts, logs and (the first ones) lists a row that was not loaded.
    fn problem(&mut self, place: RowPlace, outcome: RowOutcome, reason: String) {
        match outcome {
            RowOutcome::Skipped => self.report.counts.skipped += 1,
            RowOutcome::Failed => self.report.counts.failed += 1,
        }
        let problem = RowProblem {
            place,
            outcome,
            reason,
        };
        log::warn!(target: WARM_ROW_LOG_TARGET, "warm {}: {problem}", self.path.display());
        if self.report.problems.len() < WARM_PROBLEMS_LISTED {
            self.report.problems.push(problem);
        } else {
            self.report.problems_not_listed += 1;
        }
    }

    fn row(&mut self, place: RowPlace, row: Row) {
        match self.entry(row) {
            Ok(entry) => {
                self.batch.push(entry);
                self.places.push(place);
                if self.batch.len() >= BATCH {
                    self.flush();
                }
            }
            Err(reason) => self.problem(place, RowOutcome::Skipped, reason),
        }
    }

    /// The entry of a row, or why it is skipped.
    fn entry(&self, row: Row) -> std::result::Result<CacheEntry, String> {
        let Some(text) = row.proxy_url.filter(|u| !u.is_empty()) else {
            return Err("no `proxy_url`".into());
        };
        let proxy = ProxyUrl::parse(&text).map_err(|e| e.to_string())?;
        let username = merge_credential("username", proxy.username, credential(row.username));
        let password = merge_credential("password", proxy.password, credential(row.password));
        let (username, password) = (
            username.map_err(|e| e.to_string())?,
            password.map_err(|e| e.to_string())?,
        );
        // The key of the URL as written (trimmed), userinfo included, as upstream computes it.
        let key = row.key.unwrap_or_else(|| generate_cache_key(text.trim()));
        let source = row.source.unwrap_or_else(|| "warmed".to_string());
        let ttl = self
            .ttl_override
            .unwrap_or_else(|| self.engine.ttl_for_source(&source));
        let mut entry = CacheEntry::new(key, proxy.url, source, self.now, ttl);
        entry.username = username.and_then(Secret::new);
        entry.password = password.and_then(Secret::new);
        Ok(entry)
    }

    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let places = std::mem::take(&mut self.places);
        let n = batch.len() as u64;
        match self.engine.store(batch) {
            Ok(()) => self.report.counts.loaded += n,
            Err(e) => {
                log::warn!("warm: a batch of {n} entries could not be stored: {e}");
                for place in places {
                    self.problem(place, RowOutcome::Failed, format!("not stored: {e}"));
                }
            }
        }
    }

    fn value(&mut self, place: RowPlace, value: Value) {
        match value {
            Value::Object(object) => match Row::from_object(&object) {
                Ok(row) => self.row(place, row),
                Err(reason) => self.problem(place, RowOutcome::Skipped, reason),
            },
            other => {
                let kind = match other {
                    Value::Null => "null",
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    Value::String(_) => "a string",
                    Value::Array(_) => "an array",
                    Value::Object(_) => unreachable!("matched above"),
                };
                self.problem(place, RowOutcome::Skipped, format!("{kind}, not an object"));
            }
        }
    }
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Loads the proxies of `path` into `engine` in batches (see the module docs).
pub(super) fn warm_from_file(
    engine: &Engine,
    path: &Path,
    ttl_override: Option<i64>,
    progress: &mut dyn FnMut(u64, u64),
    stop: &AtomicBool,
) -> Result<WarmReport> {
    if path.as_os_str().is_empty() {
        return Err(Error::InvalidArgument("the path must not be empty".into()));
    }
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let format = match extension.as_deref() {
        Some("json") => Format::Json,
        Some("jsonl") => Format::Jsonl,
        Some("csv") => Format::Csv,
        _ => {
            return Err(Error::Unsupported(format!(
                "cannot warm from {}: the file must end in .json, .jsonl or .csv",
                path.display()
            )));
        }
    };
    if let Some(ttl) = ttl_override.filter(|t| *t < 0) {
        return Err(Error::InvalidArgument(format!(
            "the TTL override must be >= 0, got {ttl}"
        )));
    }
    let file = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let total = file
        .metadata()
        .map_err(|e| Error::io("cannot read", path, e))?
        .len();
    let mut loader = Loader {
        engine,
        path,
        now: engine.now(),
        ttl_override,
        batch: Vec::with_capacity(BATCH),
        places: Vec::with_capacity(BATCH),
        report: WarmReport::default(),
        stop,
    };
    match format {
        Format::Json => warm_json(&mut loader, file, path, progress)?,
        Format::Jsonl => warm_jsonl(&mut loader, file, path, total, progress)?,
        Format::Csv => warm_csv(&mut loader, file, path, total, progress)?,
    }
    loader.flush();
    let counts = loader.report.counts;
    log::info!(
        "warmed from {}{}: {} loaded, {} skipped, {} failed",
        path.display(),
        if stop.load(Ordering::Relaxed) {
            " (stopped on request)"
        } else {
            ""
        },
        counts.loaded,
        counts.skipped,
        counts.failed
    );
    Ok(loader.report)
}

fn warm_json(
    loader: &mut Loader<'_>,
    mut file: File,
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes)
        .map_err(|e| Error::io("cannot read", path, e))?;
    let value: Value = serde_json::from_slice(strip_bom(&bytes))
        .map_err(|e| Error::InvalidJson(format!("{} is not valid JSON: {e}", path.display())))?;
    let Value::Array(items) = value else {
        return Err(Error::InvalidJson(format!(
            "{} must hold a JSON array of objects",
            path.display()
        )));
    };
    let total = items.len() as u64;
    for (i, item) in items.into_iter().enumerate() {
        if loader.stopping() {
            progress(i as u64, total);
            return Ok(());
        }
        loader.value(RowPlace::Item(i as u64 + 1), item);
        if (i + 1) % BATCH == 0 {
            progress(i as u64 + 1, total);
        }
    }
    progress(total, total);
    Ok(())
}

/// Reads `file` line by line: `each(line number from 1, the line without its `\n` or `\r\n`
/// and, on line 1, without a BOM)`; `progress` gets the bytes read after each batch.
fn for_each_line(
    loader: &mut Loader<'_>,
    file: File,
    path: &Path,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
    mut each: impl FnMut(&mut Loader<'_>, u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::new();
    let mut done = 0u64;
    let mut number = 0u64;
    loop {
        if loader.stopping() {
            return Ok(());
        }
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io("cannot read", path, e))?;
        if n == 0 {
            break;
        }
        done += n as u64;
        number += 1;
        let mut bytes: &[u8] = &line;
        if number == 1 {
            bytes = strip_bom(bytes);
        }
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        each(loader, number, bytes)?;
        if loader.batch.is_empty() {
            progress(done, total);
        }
    }
    progress(total, total);
    Ok(())
}

fn warm_jsonl(
    loader: &mut Loader<'_>,
    file: File,
    path: &Path,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    for_each_line(
        loader,
        file,
        path,
        total,
        progress,
        |loader, number, bytes| {
            let place = RowPlace::Line(number);
            let trimmed = bytes.trim_ascii();
            if trimmed.is_empty() {
                return Ok(());
            }
            match serde_json::from_slice::<Value>(trimmed) {
                Ok(value) => loader.value(place, value),
                Err(e) => loader.problem(place, RowOutcome::Failed, format!("not JSON: {e}")),
            }
            Ok(())
        },
    )
}

/// The five recognised columns of a CSV file, by position in its header.
const CSV_COLUMNS: [&str; 5] = ["proxy_url", "key", "username", "password", "source"];

/// One CSV record that must fit on its line. A quoted cell cannot span lines: in a proxy list a
/// line break inside a cell is always a quote left open, which would otherwise swallow the
/// lines after it into one cell. `Err` is the reason the line is not a record.
fn csv_record(line: &[u8]) -> std::result::Result<csv::ByteRecord, String> {
    let quotes = line.iter().filter(|&&b| b == b'"').count();
    if quotes % 2 == 1 {
        return Err("an odd number of `\"`: a quoted cell is not closed on its line".into());
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(line.len().max(64))
        .from_reader(line);
    let mut record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => {}
        Ok(false) => return Err("not a CSV record".into()),
        Err(e) => return Err(format!("not a CSV record: {e}")),
    }
    let mut rest = csv::ByteRecord::new();
    if matches!(reader.read_byte_record(&mut rest), Ok(true) | Err(_)) {
        return Err("a carriage return inside the line splits it into two records".into());
    }
    Ok(record)
}

fn warm_csv(
    loader: &mut Loader<'_>,
    file: File,
    path: &Path,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    let mut columns: Option<[Option<usize>; 5]> = None;
    for_each_line(
        loader,
        file,
        path,
        total,
        progress,
        |loader, number, bytes| {
            if bytes.trim_ascii().is_empty() {
                return Ok(());
            }
            let place = RowPlace::Line(number);
            let Some(columns) = &columns else {
                columns = Some(csv_header(path, number, bytes)?);
                return Ok(());
            };
            let record = match csv_record(bytes) {
                Ok(record) => record,
                Err(reason) => {
                    loader.problem(place, RowOutcome::Failed, reason);
                    return Ok(());
                }
            };
            let mut cells: [Option<String>; 5] = Default::default();
            for (i, column) in columns.iter().enumerate() {
                let Some(bytes) = column.and_then(|c| record.get(c)) else {
                    continue;
                };
                match std::str::from_utf8(bytes) {
                    Ok(text) => cells[i] = (!text.is_empty()).then(|| text.to_string()),
                    Err(_) => {
                        let reason = format!("the `{}` cell is not UTF-8", CSV_COLUMNS[i]);
                        loader.problem(place, RowOutcome::Failed, reason);
                        return Ok(());
                    }
                }
            }
            let [proxy_url, key, username, password, source] = cells;
            loader.row(
                place,
                Row {
                    proxy_url,
                    key,
                    username,
                    password,
                    source,
                },
            );
            Ok(())
        },
    )?;
    if columns.is_none() {
        return Err(Error::InvalidInput(format!(
            "{} has no header row: a CSV warm file starts with one naming its columns, \
             `proxy_url` among them",
            path.display()
        )));
    }
    Ok(())
}

/// The positions of the recognised columns in the header row (line `number`), which must
/// name `proxy_url`; names are compared after trimming ASCII whitespace.
fn csv_header(path: &Path, number: u64, line: &[u8]) -> Result<[Option<usize>; 5]> {
    let header = csv_record(line).map_err(|reason| {
        Error::InvalidInput(format!(
            "{}: line {number}, the header row: {reason}",
            path.display()
        ))
    })?;
    let names: Vec<String> = header
        .iter()
        .map(|h| String::from_utf8_lossy(h.trim_ascii()).into_owned())
        .collect();
    let columns = CSV_COLUMNS.map(|name| names.iter().position(|n| n == name));
    if columns[0].is_none() {
        let found = names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::InvalidInput(format!(
            "{}: the header row (line {number}) has no `proxy_url` column; columns found: {found}",
            path.display()
        )));
    }
    Ok(columns)
}
