//! Bulk load from `.json`, `.jsonl` and `.csv` files (`warm_from_file`; the input formats are
//! specified in docs/FORMAT.md §7).
//!
//! Rows become entries with `source = "warmed"` unless they say otherwise, and are stored in
//! batches of [`BATCH`], one transaction per tier each. One bad row never stops the rest:
//! a row that is not an object or has no usable `proxy_url` is *skipped*, a line that does not
//! parse is *failed*.

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
use crate::time::Timestamp;

/// Rows per batch written to the tiers.
pub const BATCH: usize = 1000;

/// What a warm did with the rows of the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WarmCounts {
    pub loaded: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl WarmCounts {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("counts serialise")
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

fn credential(text: Option<String>) -> Option<Secret> {
    text.filter(|t| !is_mask(t)).and_then(Secret::new)
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
    fn from_object(object: &Map<String, Value>) -> Row {
        Row {
            proxy_url: match object.get("proxy_url") {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            },
            key: text_of(object.get("key")),
            username: text_of(object.get("username")),
            password: text_of(object.get("password")),
            source: text_of(object.get("source")),
        }
    }
}

/// Turns rows into entries and stores them in batches.
struct Loader<'a> {
    engine: &'a Engine,
    now: Timestamp,
    ttl_override: Option<i64>,
    batch: Vec<CacheEntry>,
    counts: WarmCounts,
    /// Set by the caller (Ctrl-C in the CLI) to stop between batches.
    stop: &'a AtomicBool,
}

impl Loader<'_> {
    /// Whether to stop reading now: asked to, and every row read so far is stored (or counted
    /// as skipped or failed), so what the counts say is exactly what the tiers hold.
    fn stopping(&self) -> bool {
        self.batch.is_empty() && self.stop.load(Ordering::Relaxed)
    }

    fn row(&mut self, row: Row) {
        let Some(proxy_url) = row.proxy_url.filter(|u| !u.is_empty()) else {
            self.counts.skipped += 1;
            return;
        };
        let key = row.key.unwrap_or_else(|| generate_cache_key(&proxy_url));
        let source = row.source.unwrap_or_else(|| "warmed".to_string());
        let ttl = self
            .ttl_override
            .unwrap_or_else(|| self.engine.ttl_for_source(&source));
        let mut entry = CacheEntry::new(key, proxy_url, source, self.now, ttl);
        entry.username = credential(row.username);
        entry.password = credential(row.password);
        self.batch.push(entry);
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let n = batch.len() as u64;
        match self.engine.store(batch) {
            Ok(()) => self.counts.loaded += n,
            Err(e) => {
                log::warn!("warm: a batch of {n} entries could not be stored: {e}");
                self.counts.failed += n;
            }
        }
    }

    fn value(&mut self, value: Value) {
        match value {
            Value::Object(object) => self.row(Row::from_object(&object)),
            _ => self.counts.skipped += 1,
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
) -> Result<WarmCounts> {
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
        now: engine.now(),
        ttl_override,
        batch: Vec::with_capacity(BATCH),
        counts: WarmCounts::default(),
        stop,
    };
    match format {
        Format::Json => warm_json(&mut loader, file, path, progress)?,
        Format::Jsonl => warm_jsonl(&mut loader, file, path, total, progress)?,
        Format::Csv => warm_csv(&mut loader, file, path, total, progress)?,
    }
    loader.flush();
    log::info!(
        "warmed from {}{}: {} loaded, {} skipped, {} failed",
        path.display(),
        if stop.load(Ordering::Relaxed) {
            " (stopped on request)"
        } else {
            ""
        },
        loader.counts.loaded,
        loader.counts.skipped,
        loader.counts.failed
    );
    Ok(loader.counts)
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
        loader.value(item);
        if (i + 1) % BATCH == 0 {
            progress(i as u64 + 1, total);
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
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::new();
    let mut done = 0u64;
    let mut first = true;
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
        let mut bytes: &[u8] = &line;
        if first {
            bytes = strip_bom(bytes);
            first = false;
        }
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Value>(trimmed) {
            Ok(value) => loader.value(value),
            Err(_) => loader.counts.failed += 1,
        }
        if loader.batch.is_empty() {
            progress(done, total);
        }
    }
    progress(total, total);
    Ok(())
}

fn warm_csv(
    loader: &mut Loader<'_>,
    file: File,
    path: &Path,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(BufReader::with_capacity(1 << 16, file));
    let headers = reader
        .byte_headers()
        .map_err(|e| csv_error(path, e))?
        .clone();
    let column = |name: &str| {
        headers.iter().position(|h| {
            let h = strip_bom(h).trim_ascii();
            h == name.as_bytes()
        })
    };
    let columns = [
        column("proxy_url"),
        column("key"),
        column("username"),
        column("password"),
        column("source"),
    ];
    let mut record = csv::ByteRecord::new();
    loop {
        if loader.stopping() {
            return Ok(());
        }
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) if e.is_io_error() => return Err(csv_error(path, e)),
            Err(_) => {
                loader.counts.failed += 1;
                continue;
            }
        }
        let cells: Option<Vec<Option<String>>> = columns
            .iter()
            .map(|col| match col.and_then(|i| record.get(i)) {
                None => Some(None),
                Some(bytes) => std::str::from_utf8(bytes)
                    .ok()
                    .map(|s| (!s.is_empty()).then(|| s.to_string())),
            })
            .collect();
        let Some(mut cells) = cells else {
            loader.counts.failed += 1;
            continue;
        };
        let mut take = |i: usize| cells[i].take();
        loader.row(Row {
            proxy_url: take(0),
            key: take(1),
            username: take(2),
            password: take(3),
            source: take(4),
        });
        if loader.batch.is_empty() {
            progress(reader.position().byte(), total);
        }
    }
    progress(total, total);
    Ok(())
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io("cannot read", path, io),
        other => Error::InvalidJson(format!("{}: {other:?}", path.display())),
    }
}
