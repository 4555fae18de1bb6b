//! Reading CloudTrail records from files, directories and stdin.
//!
//! Every input is sniffed rather than trusted by name: gzip by its magic bytes (members
//! back to back, as Firehose writes them, included); then NDJSON (one record per line,
//! the only streaming shape), or a whole document: CloudTrail's `{"Records":[...]}`
//! delivery file, a JSON array, a single record, or concatenated objects.
//!
//! Wherever a record may stand, the ways CloudTrail leaves AWS are unwrapped (see
//! [`visit_value`]): EventBridge events, CloudWatch Logs subscription envelopes (also
//! in their Lambda form), `aws cloudtrail lookup-events` pages, and shippers' wrapper
//! fields (`message`, `log`, ...). CloudTrail's neighbours (digest files, Insights
//! events, CloudWatch Logs control messages) are counted under their own reasons. What
//! cannot be read as a record is reported to the [`Visitor`] as a [`Skip`] with its
//! location, and reading goes on.

mod envelope;
mod fields;
mod prefilter;
mod sniff;
mod thread;

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;
use serde_json::Value;

pub use envelope::{WRAPPER_FIELDS, visit_value};
pub use fields::FieldSet;
/// Which cloud a record belongs to and the call it logs (shared with the Fluent Bit plugin).
pub use minewatch_guest::audit::call as audit;
pub use prefilter::Prefilter;
pub use sniff::read_stream;
pub use thread::{Consumer, Input, Item, drain, spawn_reader};

/// File name endings read when a directory is given.
pub const EXTENSIONS: [&str; 9] = [
    ".json",
    ".json.gz",
    ".ndjson",
    ".ndjson.gz",
    ".jsonl",
    ".jsonl.gz",
    ".log",
    ".log.gz",
    ".json.cloudtrail",
];

/// Where a record came from, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// File path, or `-` for stdin.
    pub source: Arc<str>,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based position inside a document (`Records` entry, array element), when relevant.
    pub record: Option<u64>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(record) = self.record {
            write!(f, " (record {record})")?;
        }
        Ok(())
    }
}

/// Why input was skipped; a small fixed set, so it can label metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// Not JSON, or truncated.
    InvalidJson,
    /// Longer than the record size limit.
    Oversized,
    /// JSON, but not an object (a number, a string, ...).
    NotAnObject,
    /// An object without `eventSource`/`eventName` (not a CloudTrail record).
    NotCloudTrail,
    /// A file or stream with no records at all.
    EmptyInput,
    /// A CloudTrail digest file (integrity hashes of log files, no events). This and the
    /// next two are expected beside CloudTrail records, so they are logged at DEBUG only
    /// (see [`crate::summary`]).
    Digest,
    /// A CloudTrail Insights event (an API rate anomaly CloudTrail found, not a call).
    Insight,
    /// A CloudWatch Logs `CONTROL_MESSAGE` (the subscription's health check).
    ControlMessage,
}

impl SkipReason {
    /// The label used in logs, summaries and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::InvalidJson => "invalid-json",
            SkipReason::Oversized => "oversized",
            SkipReason::NotAnObject => "not-an-object",
            SkipReason::NotCloudTrail => "not-cloudtrail",
            SkipReason::EmptyInput => "empty-input",
            SkipReason::Digest => "cloudtrail-digest",
            SkipReason::Insight => "cloudtrail-insight",
            SkipReason::ControlMessage => "cwl-control-message",
        }
    }
}

/// Something skipped while reading.
#[derive(Debug, Clone)]
pub struct Skip {
    /// Why.
    pub reason: SkipReason,
    /// What exactly, for the log.
    pub detail: String,
    /// Where.
    pub location: Location,
}

/// Receives what the readers find.
pub trait Visitor {
    /// A CloudTrail record (envelopes already unwrapped).
    ///
    /// # Errors
    /// Processing failed in a way that must stop reading (an output or the store failed).
    fn record(&mut self, record: Value, location: Location) -> Result<()>;
    /// Input that is not a record.
    fn skip(&mut self, skip: Skip);

    /// A field of each incoming object that holds the CloudTrail record: a JSON string
    /// (Fluent Bit's `log`, a syslog `message`) or an object. Objects without it are
    /// read as records themselves.
    fn record_field(&self) -> Option<&str> {
        None
    }

    /// The prefilter [`Visitor::wants`] and [`Visitor::fields`] follow by default.
    fn prefilter(&self) -> Option<&Prefilter> {
        None
    }

    /// Whether an NDJSON line may hold a wanted record; a line this rejects is counted
    /// with [`Visitor::filtered`] and never parsed. It must never reject a wanted record
    /// (see [`Prefilter`]). By default, what [`Visitor::prefilter`] wants (every line
    /// without one).
    fn wants(&self, line: &[u8]) -> bool {
        self.prefilter().is_none_or(|p| p.wants(line))
    }

    /// Counts lines [`Visitor::wants`] rejected.
    fn filtered(&mut self, _lines: u64) {}

    /// The fields a record over `max_record_bytes` is cut down to (the detectors'
    /// projection); without them such a record is skipped as oversized. By default,
    /// [`Visitor::prefilter`]'s fields.
    fn fields(&self) -> Option<&FieldSet> {
        self.prefilter().map(Prefilter::fields)
    }

    /// The fields every record read whole is parsed straight into, instead of a whole
    /// `Value` tree: what [`Visitor::prefilter`] allows ([`Prefilter::cuts_records`]),
    /// unless a `record_field` is configured or the input is passed on.
    fn cut_fields(&self) -> Option<&FieldSet> {
        if self.record_field().is_some() || self.keeps_raw() {
            return None;
        }
        self.prefilter()
            .filter(|p| p.cuts_records())
            .map(Prefilter::fields)
    }

    /// Whether the visitor passes its input on (a passthrough output): then every line
    /// is read whole, whatever its size, and handed to [`Visitor::raw`].
    fn keeps_raw(&self) -> bool {
        false
    }

    /// With [`Visitor::keeps_raw`]: the line (without its newline) that the records and
    /// skips reported since the previous call came from; called for every line, blank
    /// and unreadable ones included. A document spread over several lines comes as one
    /// line, its whitespace between tokens removed.
    ///
    /// # Errors
    /// Processing failed in a way that must stop reading.
    fn raw(&mut self, _line: &[u8]) -> Result<()> {
        Ok(())
    }
}

/// Limits applied while reading.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Records (NDJSON lines) longer than this are cut down to [`Visitor::fields`] while
    /// they are parsed; when the kept fields alone are longer, or there is no field set,
    /// they are skipped as [`SkipReason::Oversized`].
    pub max_record_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_record_bytes: 1 << 20,
        }
    }
}

/// Lists the files an `--input` names: the file itself, or a directory's matching
/// files, recursively, in delivery order (the `YYYYMMDDTHHMMZ` stamp of CloudTrail
/// file names, then path), so records arrive roughly in time order.
///
/// # Errors
/// The path does not exist or a directory cannot be listed.
pub fn list_files(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("failed to read input {}", path.display()))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(path).follow_links(true) {
        let entry =
            entry.with_context(|| format!("failed to list input directory {}", path.display()))?;
        let name = entry.file_name().to_string_lossy();
        if entry.file_type().is_file() && EXTENSIONS.iter().any(|ext| name.ends_with(ext)) {
            files.push(entry.into_path());
        }
    }
    files.sort_by_cached_key(|p| (delivery_stamp(p), p.clone()));
    Ok(files)
}

/// The `YYYYMMDDTHHMMZ` stamp in a CloudTrail delivery file name, if any.
fn delivery_stamp(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    name.split('_')
        .find(|part| {
            let b = part.as_bytes();
            b.len() == 14
                && b[8] == b'T'
                && b[13] == b'Z'
                && b[..8].iter().chain(&b[9..13]).all(u8::is_ascii_digit)
        })
        .map(str::to_string)
}

/// Bytes read from input files by this process, as stored on disk (before gunzip).
static FILE_BYTES_READ: AtomicU64 = AtomicU64::new(0);

/// Bytes read from input files so far by this process (compressed bytes for gzip
/// files); progress bars compare it with the inputs' total size.
pub fn file_bytes_read() -> u64 {
    FILE_BYTES_READ.load(Ordering::Relaxed)
}

/// A file that adds what is read from it to [`FILE_BYTES_READ`].
struct Counted(File);

impl io::Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        FILE_BYTES_READ.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads one file (gzip or not) into the visitor.
///
/// # Errors
/// The file cannot be opened or read, or the visitor failed.
pub fn read_file(path: &Path, options: ReadOptions, visitor: &mut dyn Visitor) -> Result<()> {
    let file =
        File::open(path).with_context(|| format!("failed to open input {}", path.display()))?;
    let source: Arc<str> = path.display().to_string().into();
    read_stream(
        BufReader::with_capacity(1 << 16, Counted(file)),
        source,
        options,
        visitor,
    )
    .with_context(|| format!("failed to read input {}", path.display()))
}

/// Reads stdin into the visitor.
///
/// # Errors
/// Reading failed, or the visitor failed.
pub fn read_stdin(options: ReadOptions, visitor: &mut dyn Visitor) -> Result<()> {
    let stdin = io::stdin().lock();
    read_stream(
        BufReader::with_capacity(1 << 16, stdin),
        "-".into(),
        options,
        visitor,
    )
    .context("failed to read standard input")
}

/// Wraps a reader in a gzip decoder when it starts with the gzip magic bytes.
fn maybe_gunzip<'a, R: BufRead + 'a>(mut reader: R) -> io::Result<Box<dyn BufRead + 'a>> {
    let head = reader.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            1 << 16,
            MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

#[cfg(test)]
mod tests;
