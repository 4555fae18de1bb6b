//! A bounded, durable on-disk queue of NDJSON lines for one output, and
//! [`SpooledSink`], the [`AlertSink`] that writes into it while a background thread
//! hands its lines to a [`Delivery`] (HTTP, Splunk HEC, Fluent Forward).
//!
//! The pipeline's flush returns once the batch's lines are fsynced in the spool, so
//! the pipeline can acknowledge its input while the receiver is down; delivery catches
//! up later, in order, at least once. A full spool says so through
//! [`AlertSink::has_room`], and the pipeline then pushes back on its own input.
//!
//! # On-disk format
//!
//! Each output has its own directory, `<spool_dir>/<output name>/`, holding:
//!
//! - `segment-<offset>.ndjson`: queued lines, one JSON document per line, each ending
//!   in `\n`. `<offset>` is 20 decimal digits: the logical byte offset of the segment's
//!   first byte in the output's stream since the spool was created, so a segment's
//!   successor is named after its offset plus its length. Lines are appended to the
//!   newest segment; a new one starts when the next line would take the newest past
//!   `segment_bytes`. A line never spans two segments.
//! - `cursor`: the delivered position, one line of text `minewatch-spool v1 <offset>`.
//!   Every line ending at or before `<offset>` was delivered (or moved to the
//!   dead-letter file). It is replaced atomically: written to `cursor.tmp`, fsynced,
//!   renamed, and the directory fsynced. Without it, delivery starts at the oldest
//!   segment.
//! - `lock`: held under an exclusive advisory lock while the spool is open, so two
//!   processes (or two outputs of the same name) never share a spool.
//! - `dead-letter.ndjson`: lines a receiver refused for good, and lines that are not
//!   JSON, appended unchanged (so they can be replayed by hand); minewatch never reads
//!   it back.
//!
//! Segments that end at or before the cursor are deleted, so the directory holds about
//! the undelivered lines plus one segment.
//!
//! # Durability
//!
//! [`SpoolWriter::append`] only buffers; [`SpoolWriter::sync`] writes the buffered
//! lines, fsyncs them (and the directory when a segment was created) and only then
//! makes them visible to the reader. A segment is fsynced before the next one is
//! started, so after a crash only the newest segment can end in a torn write: on open,
//! bytes after its last newline, and complete trailing lines that are not JSON (a block
//! of zeros, say), are cut off with a warning. Those were never synced, so the batch
//! holding them was never acknowledged and will come again. The cursor only moves
//! after a delivery succeeded, so a restart re-sends at most the batch that was in
//! flight: at-least-once.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use super::AlertSink;
use super::retry::{Backoff, StopSignal};

/// Default size limit of a spool, in bytes (256 MiB).
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Default size at which a new segment is started, in bytes (8 MiB).
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// Default number of lines handed to a delivery at once.
pub const DEFAULT_BATCH_MAX_EVENTS: usize = 500;

/// Default number of bytes handed to a delivery at once (1 MiB).
pub const DEFAULT_BATCH_MAX_BYTES: usize = 1024 * 1024;

/// Name of the dead-letter file in an output's spool directory.
pub const DEAD_LETTER_FILE: &str = "dead-letter.ndjson";

/// Serde default of `batch_max_events`.
pub(super) fn default_batch_max_events() -> usize {
    DEFAULT_BATCH_MAX_EVENTS
}

/// Serde default of `batch_max_bytes`.
pub(super) fn default_batch_max_bytes() -> usize {
    DEFAULT_BATCH_MAX_BYTES
}

/// Serde default of `spool_max_bytes`.
pub(super) fn default_spool_max_bytes() -> u64 {
    DEFAULT_SPOOL_MAX_BYTES
}

/// Serde default of `spool_segment_bytes`.
pub(super) fn default_spool_segment_bytes() -> u64 {
    DEFAULT_SEGMENT_BYTES
}

/// Serde default of `retry_initial_ms`.
pub(super) fn default_retry_initial_ms() -> u64 {
    super::retry::DEFAULT_INITIAL_MS
}

/// Serde default of `retry_max_ms`.
pub(super) fn default_retry_max_ms() -> u64 {
    super::retry::DEFAULT_MAX_MS
}

/// Largest segment size accepted, since the newest segment is read whole on open.
const MAX_SEGMENT_BYTES: u64 = 1024 * 1024 * 1024;

const CURSOR_FILE: &str = "cursor";
const CURSOR_TMP_FILE: &str = "cursor.tmp";
const LOCK_FILE: &str = "lock";
const CURSOR_MAGIC: &str = "minewatch-spool v1";

/// How long the delivery thread waits for new lines before looking at its stop flag.
const IDLE_WAIT: Duration = Duration::from_millis(500);

/// Size limits of a spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolOptions {
    /// Undelivered bytes at which [`SpoolWriter::has_room`] turns false.
    pub max_bytes: u64,
    /// Size at which a new segment file is started.
    pub segment_bytes: u64,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions {
            max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

impl SpoolOptions {
    /// Checks the limits, naming the setting to fix.
    ///
    /// # Errors
    /// A limit is zero, or the segment size is above 1 GiB.
    pub fn validate(&self) -> Result<()> {
        if self.max_bytes == 0 {
            bail!("spool_max_bytes must be above 0");
        }
        if self.segment_bytes == 0 || self.segment_bytes > MAX_SEGMENT_BYTES {
            bail!(
                "spool_segment_bytes must be between 1 and {MAX_SEGMENT_BYTES}, not {}",
                self.segment_bytes
            );
        }
        Ok(())
    }
}

/// A place in the spool: a byte offset, with the number of lines before it.
///
/// Line numbers count from the delivered position at the time the spool was opened;
/// only offsets are stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    /// Logical byte offset (see the module documentation).
    pub offset: u64,
    /// Lines before this position, counted since the spool was opened.
    pub line: u64,
}

/// What a spool holds that was not delivered yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Depth {
    /// Undelivered bytes, newlines included.
    pub bytes: u64,
    /// Undelivered lines.
    pub lines: u64,
}

/// The state shared by the two halves of a spool.
struct Shared {
    dir: PathBuf,
    name: String,
    /// Undelivered bytes at which the spool is full.
    max_bytes: u64,
    state: Mutex<State>,
    changed: Condvar,
    /// Holds the directory's advisory lock for as long as either half lives.
    _lock: File,
}

#[derive(Debug)]
struct State {
    /// Start offsets of the segment files, oldest first; the last one is written to.
    segments: VecDeque<u64>,
    /// End of the lines the reader may see: written and fsynced.
    synced_end: u64,
    /// Lines before `synced_end`.
    synced_lines: u64,
    /// The segment the writer would roll back to; never deleted by the reader.
    synced_segment: u64,
    /// Delivered up to here.
    committed: Position,
    /// Bumped to wake a waiting reader without new lines.
    wakeups: u64,
    /// Bumped when the writer rolls back, so the reader drops what it read ahead.
    rollbacks: u64,
    /// The end offset of each sync not wholly delivered yet, with when it was synced
    /// (undelivered lines found at open count from then), oldest first.
    pending_since: VecDeque<(u64, Instant)>,
}

impl State {
    fn depth(&self) -> Depth {
        Depth {
            bytes: self.synced_end.saturating_sub(self.committed.offset),
            lines: self.synced_lines.saturating_sub(self.committed.line),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait_drained(&self, timeout: Duration) -> bool {
        let state = self.lock();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |s| s.committed.offset < s.synced_end)
            .unwrap_or_else(|p| p.into_inner());
        state.committed.offset >= state.synced_end
    }

    fn publish_depth(&self, depth: Depth) {
        metrics::gauge!("minewatch_spool_bytes", "output" => self.name.clone())
            .set(depth.bytes as f64);
        metrics::gauge!("minewatch_spool_lines", "output" => self.name.clone())
            .set(depth.lines as f64);
    }
}

/// The directory of output `name`'s spool under `spool_dir`.
///
/// # Errors
/// The name cannot be a directory name (it must be ASCII letters, digits, `-`, `_`
/// or `.`, and not start with `.`).
pub fn output_dir(spool_dir: &Path, name: &str) -> Result<PathBuf> {
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid {
        bail!(
            "output name {name:?} cannot name its spool directory: use ASCII letters, digits, \
             '-', '_' or '.', not starting with '.'"
        );
    }
    Ok(spool_dir.join(name))
}

/// Opens (creating or resuming) the spool in `dir`, for the output `name` (used in logs
/// and metrics).
///
/// # Errors
/// The directory cannot be created or read, another process holds it, or a file in it
/// cannot be read or repaired.
pub fn open(dir: &Path, name: &str, options: &SpoolOptions) -> Result<(SpoolWriter, SpoolReader)> {
    options.validate()?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create spool directory {}", dir.display()))?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("failed to open {}", lock_path.display()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "spool {} is in use by another minewatch process or output; give each output its \
             own name and each process its own spool directory",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => {
            return Err(error).with_context(|| format!("failed to lock {}", lock_path.display()));
        }
    }
    let recovered = recover(dir, name)?;
    let shared = Arc::new(Shared {
        dir: dir.to_path_buf(),
        name: name.to_string(),
        max_bytes: options.max_bytes,
        state: Mutex::new(State {
            segments: recovered.segments.iter().map(|s| s.start).collect(),
            synced_end: recovered.end,
            synced_lines: recovered.lines,
            synced_segment: recovered.last.start,
            committed: Position {
                offset: recovered.committed,
                line: 0,
            },
            wakeups: 0,
            rollbacks: 0,
            pending_since: (recovered.end > recovered.committed)
                .then(|| (recovered.end, Instant::now()))
                .into_iter()
                .collect(),
        }),
        changed: Condvar::new(),
        _lock: lock,
    });
    shared.publish_depth(shared.lock().depth());
    let path = segment_path(dir, recovered.last.start);
    let mut file = OpenOptions::new()
        .write(true)
        .open(&path)
        .with_context(|| format!("failed to open {}", path.display()))?;
    file.seek(SeekFrom::Start(recovered.last.len))
        .with_context(|| format!("failed to seek in {}", path.display()))?;
    let writer = SpoolWriter {
        shared: Arc::clone(&shared),
        options: *options,
        file: Some(file),
        seg_start: recovered.last.start,
        seg_len: recovered.last.len,
        synced_seg_start: recovered.last.start,
        synced_seg_len: recovered.last.len,
        new_segments: Vec::new(),
        buf: Vec::new(),
        line_ends: Vec::new(),
        needs_rollback: false,
        full: std::cell::Cell::new(false),
    };
    let reader = SpoolReader {
        shared,
        read: Position {
            offset: recovered.committed,
            line: 0,
        },
        file: None,
        carry: None,
        rollbacks: 0,
    };
    Ok((writer, reader))
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    start: u64,
    len: u64,
}

struct Recovered {
    segments: Vec<Segment>,
    last: Segment,
    committed: u64,
    end: u64,
    lines: u64,
}

fn segment_path(dir: &Path, start: u64) -> PathBuf {
    dir.join(format!("segment-{start:020}.ndjson"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("segment-")?.strip_suffix(".ndjson")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("failed to sync directory {}", dir.display()))
}

fn read_cursor(dir: &Path, name: &str) -> Result<Option<u64>> {
    let path = dir.join(CURSOR_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
    };
    let offset = text
        .trim_end()
        .strip_prefix(CURSOR_MAGIC)
        .and_then(|rest| rest.trim().parse::<u64>().ok());
    if offset.is_none() {
        tracing::warn!(
            output = name,
            path = %path.display(),
            "Spool cursor is unreadable; delivering again from the oldest segment."
        );
    }
    Ok(offset)
}

fn write_cursor(dir: &Path, offset: u64) -> Result<()> {
    let tmp = dir.join(CURSOR_TMP_FILE);
    let mut file =
        File::create(&tmp).with_context(|| format!("failed to create {}", tmp.display()))?;
    file.write_all(format!("{CURSOR_MAGIC} {offset}\n").as_bytes())
        .and_then(|()| file.sync_data())
        .with_context(|| format!("failed to write {}", tmp.display()))?;
    let path = dir.join(CURSOR_FILE);
    std::fs::rename(&tmp, &path)
        .with_context(|| format!("failed to replace {}", path.display()))?;
    sync_dir(dir)
}

/// Counts the newlines of `path` between byte `from` and byte `to`.
fn count_lines(path: &Path, from: u64, to: u64) -> Result<u64> {
    if to <= from {
        return Ok(0);
    }
    let mut file =
        File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    file.seek(SeekFrom::Start(from))?;
    let mut limited = file.take(to - from);
    let mut buf = vec![0u8; 64 * 1024];
    let mut lines = 0u64;
    loop {
        let n = limited
            .read(&mut buf)
            .with_context(|| format!("failed to read {}", path.display()))?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

/// Finds the segments, applies the cursor, deletes delivered segments and repairs a
/// torn tail.
fn recover(dir: &Path, name: &str) -> Result<Recovered> {
    let mut segments = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))?
    {
        let entry = entry.with_context(|| format!("failed to read {}", dir.display()))?;
        let Some(start) = entry.file_name().to_str().and_then(parse_segment_name) else {
            continue;
        };
        let len = entry
            .metadata()
            .with_context(|| format!("failed to inspect {}", entry.path().display()))?
            .len();
        segments.push(Segment { start, len });
    }
    segments.sort_by_key(|s| s.start);
    let cursor = read_cursor(dir, name)?;
    if segments.is_empty() {
        let start = cursor.unwrap_or(0);
        let path = segment_path(dir, start);
        File::create(&path).with_context(|| format!("failed to create {}", path.display()))?;
        sync_dir(dir)?;
        segments.push(Segment { start, len: 0 });
    }
    let mut committed = cursor.unwrap_or(segments[0].start);
    if committed < segments[0].start {
        tracing::warn!(
            output = name,
            cursor = committed,
            oldest = segments[0].start,
            "Spool cursor points before the oldest segment; delivering from the oldest segment."
        );
        committed = segments[0].start;
    }
    while segments.len() > 1 && segments[1].start <= committed {
        let path = segment_path(dir, segments[0].start);
        if let Err(error) = std::fs::remove_file(&path) {
            tracing::warn!(output = name, path = %path.display(), %error, "Could not delete a delivered spool segment.");
        }
        segments.remove(0);
    }
    let last_index = segments.len() - 1;
    let repaired = repair_tail(dir, name, segments[last_index], committed)?;
    segments[last_index].len = repaired;
    let last = segments[last_index];
    let end = last.start + last.len;
    for pair in segments.windows(2) {
        let expected = pair[1].start - pair[0].start;
        if pair[0].len != expected {
            tracing::warn!(
                output = name,
                segment = pair[0].start,
                expected_bytes = expected,
                actual_bytes = pair[0].len,
                "Spool segment does not have the size its successor's name implies; reading what is there."
            );
        }
    }
    if committed > end {
        tracing::warn!(
            output = name,
            cursor = committed,
            end,
            "Spool cursor points past the queued lines; treating everything as delivered."
        );
        committed = end;
    }
    let mut lines = 0;
    for (i, segment) in segments.iter().enumerate() {
        let limit = segments
            .get(i + 1)
            .map_or(end, |next| next.start)
            .min(segment.start + segment.len);
        if limit <= committed {
            continue;
        }
        let from = committed.saturating_sub(segment.start);
        lines += count_lines(
            &segment_path(dir, segment.start),
            from,
            limit - segment.start,
        )?;
    }
    Ok(Recovered {
        segments,
        last,
        committed,
        end,
        lines,
    })
}

/// Cuts a torn tail off the newest segment; returns its new length.
fn repair_tail(dir: &Path, name: &str, segment: Segment, committed: u64) -> Result<u64> {
    let path = segment_path(dir, segment.start);
    let data =
        std::fs::read(&path).with_context(|| format!("failed to read {}", path.display()))?;
    let floor = usize::try_from(committed.saturating_sub(segment.start))
        .unwrap_or(usize::MAX)
        .min(data.len());
    let mut cut = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let partial = data.len() - cut;
    let mut invalid_lines = 0;
    while cut > floor {
        let line_start = data[..cut - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
            .max(floor);
        if serde_json::from_slice::<serde::de::IgnoredAny>(&data[line_start..cut - 1]).is_ok() {
            break;
        }
        invalid_lines += 1;
        cut = line_start;
    }
    if cut == data.len() {
        return Ok(segment.len);
    }
    tracing::warn!(
        output = name,
        path = %path.display(),
        partial_line_bytes = partial,
        invalid_lines,
        dropped_bytes = data.len() - cut,
        "Spool ended in a torn write (a crash before its sync); cut it off."
    );
    let file = OpenOptions::new()
        .write(true)
        .open(&path)
        .with_context(|| format!("failed to open {}", path.display()))?;
    file.set_len(cut as u64)
        .and_then(|()| file.sync_data())
        .with_context(|| format!("failed to truncate {}", path.display()))?;
    Ok(cut as u64)
}

/// The writing half of a spool: appends lines and makes them durable.
pub struct SpoolWriter {
    shared: Arc<Shared>,
    options: SpoolOptions,
    /// The newest segment, positioned at its end; `None` after a failed rollback.
    file: Option<File>,
    seg_start: u64,
    seg_len: u64,
    /// Where the last successful sync ended, to roll back to after a failed one.
    synced_seg_start: u64,
    synced_seg_len: u64,
    /// Segments created since the last successful sync.
    new_segments: Vec<u64>,
    buf: Vec<u8>,
    /// End (exclusive, newline included) of each buffered line in `buf`.
    line_ends: Vec<usize>,
    needs_rollback: bool,
    /// Whether the last `has_room` answer was no, to log the changes only.
    full: std::cell::Cell<bool>,
}

impl SpoolWriter {
    /// Buffers one line (a JSON document without its newline) until the next
    /// [`SpoolWriter::sync`].
    ///
    /// # Errors
    /// The line is empty or holds a newline.
    pub fn append(&mut self, line: &[u8]) -> Result<()> {
        if line.is_empty() || line.contains(&b'\n') {
            bail!("a spooled line must be non-empty and hold no newline");
        }
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        self.line_ends.push(self.buf.len());
        Ok(())
    }

    /// Writes and fsyncs the buffered lines; when it returns Ok they survive a crash
    /// and the delivery thread may send them.
    ///
    /// # Errors
    /// Writing or syncing failed. The lines buffered since the last successful sync are
    /// then discarded and the files rolled back to it: the caller must not acknowledge
    /// them.
    pub fn sync(&mut self) -> Result<()> {
        let result = self.sync_buffered();
        if result.is_err() {
            self.buf.clear();
            self.line_ends.clear();
            self.needs_rollback = true;
            if let Err(error) = self.rollback() {
                tracing::warn!(
                    output = %self.shared.name,
                    error = format!("{error:#}"),
                    "Could not roll the spool back after a failed write; trying again at the next flush."
                );
            }
        }
        result
    }

    fn sync_buffered(&mut self) -> Result<()> {
        if self.needs_rollback {
            self.rollback()?;
        }
        if self.line_ends.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let line_ends = std::mem::take(&mut self.line_ends);
        let result = self.write_lines(&buf, &line_ends);
        let lines = line_ends.len() as u64;
        self.buf = buf;
        self.line_ends = line_ends;
        result?;
        self.buf.clear();
        self.line_ends.clear();
        self.synced_seg_start = self.seg_start;
        self.synced_seg_len = self.seg_len;
        self.new_segments.clear();
        let depth = {
            let mut state = self.shared.lock();
            state.synced_end = self.seg_start + self.seg_len;
            let end = state.synced_end;
            state.pending_since.push_back((end, Instant::now()));
            state.synced_lines += lines;
            state.synced_segment = self.seg_start;
            state.depth()
        };
        self.shared.changed.notify_all();
        self.shared.publish_depth(depth);
        Ok(())
    }

    fn write_lines(&mut self, buf: &[u8], line_ends: &[usize]) -> Result<()> {
        let mut chunk_start = 0;
        let mut line_start = 0;
        for &line_end in line_ends {
            let before = self.seg_len + (line_start - chunk_start) as u64;
            if before > 0 && before + (line_end - line_start) as u64 > self.options.segment_bytes {
                self.write_chunk(&buf[chunk_start..line_start])?;
                self.roll()?;
                chunk_start = line_start;
            }
            line_start = line_end;
        }
        self.write_chunk(&buf[chunk_start..])?;
        let path = segment_path(&self.shared.dir, self.seg_start);
        self.active()?
            .sync_data()
            .with_context(|| format!("failed to sync {}", path.display()))?;
        if !self.new_segments.is_empty() {
            sync_dir(&self.shared.dir)?;
        }
        Ok(())
    }

    fn active(&mut self) -> Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| anyhow!("the spool's segment file is not open after an earlier error"))
    }

    fn write_chunk(&mut self, chunk: &[u8]) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let path = segment_path(&self.shared.dir, self.seg_start);
        self.active()?
            .write_all(chunk)
            .with_context(|| format!("failed to write {}", path.display()))?;
        self.seg_len += chunk.len() as u64;
        Ok(())
    }

    /// Syncs the newest segment and starts the next one.
    fn roll(&mut self) -> Result<()> {
        let old = segment_path(&self.shared.dir, self.seg_start);
        self.active()?
            .sync_data()
            .with_context(|| format!("failed to sync {}", old.display()))?;
        let start = self.seg_start + self.seg_len;
        let path = segment_path(&self.shared.dir, start);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .with_context(|| format!("failed to create {}", path.display()))?;
        self.shared.lock().segments.push_back(start);
        self.new_segments.push(start);
        self.file = Some(file);
        self.seg_start = start;
        self.seg_len = 0;
        Ok(())
    }

    /// Returns the files to the state of the last successful sync.
    fn rollback(&mut self) -> Result<()> {
        self.file = None;
        {
            let mut state = self.shared.lock();
            state.segments.retain(|s| !self.new_segments.contains(s));
            state.rollbacks += 1;
        }
        while let Some(&start) = self.new_segments.last() {
            let path = segment_path(&self.shared.dir, start);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("failed to delete {}", path.display()));
                }
            }
            self.new_segments.pop();
        }
        let path = segment_path(&self.shared.dir, self.synced_seg_start);
        let mut file = OpenOptions::new()
            .write(true)
            .open(&path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        file.set_len(self.synced_seg_len)
            .and_then(|()| file.sync_data())
            .and_then(|()| file.seek(SeekFrom::Start(self.synced_seg_len)).map(drop))
            .with_context(|| format!("failed to truncate {}", path.display()))?;
        self.file = Some(file);
        self.seg_start = self.synced_seg_start;
        self.seg_len = self.synced_seg_len;
        self.needs_rollback = false;
        Ok(())
    }

    /// False while the undelivered bytes (buffered ones included) are at the limit.
    pub fn has_room(&self) -> bool {
        let committed = self.shared.lock().committed.offset;
        let queued =
            (self.seg_start + self.seg_len + self.buf.len() as u64).saturating_sub(committed);
        let room = queued < self.options.max_bytes;
        if room == self.full.get() {
            self.full.set(!room);
            if room {
                tracing::info!(output = %self.shared.name, "Spool has room again; accepting input.");
            } else {
                tracing::warn!(
                    output = %self.shared.name,
                    queued_bytes = queued,
                    max_bytes = self.options.max_bytes,
                    "Spool is full; refusing input until the receiver catches up."
                );
            }
        }
        room
    }

    /// The synced lines not delivered yet.
    pub fn depth(&self) -> Depth {
        self.shared.lock().depth()
    }

    /// Waits up to `timeout` until every synced line is delivered; true if they are.
    pub fn wait_drained(&self, timeout: Duration) -> bool {
        self.shared.wait_drained(timeout)
    }

    /// A handle to watch the spool from elsewhere.
    pub fn handle(&self) -> SpoolHandle {
        SpoolHandle {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// Wakes a reader waiting in [`SpoolReader::next_batch`], which then returns.
    pub fn wake_reader(&self) {
        self.shared.lock().wakeups += 1;
        self.shared.changed.notify_all();
    }

    /// The spool's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }
}

/// Watches a spool without owning it, e.g. to wait for delivery at shutdown after the
/// sink was boxed into the pipeline; it does not keep the spool open.
#[derive(Clone)]
pub struct SpoolHandle {
    shared: std::sync::Weak<Shared>,
}

impl SpoolHandle {
    /// The synced lines not delivered yet; zero once the spool is closed.
    pub fn depth(&self) -> Depth {
        self.shared
            .upgrade()
            .map(|shared| shared.lock().depth())
            .unwrap_or_default()
    }

    /// Waits up to `timeout` until every synced line is delivered; true if they are,
    /// false if not or if the spool was closed.
    pub fn wait_drained(&self, timeout: Duration) -> bool {
        self.shared
            .upgrade()
            .is_some_and(|shared| shared.wait_drained(timeout))
    }

    /// How far behind delivery is; none once the spool is closed.
    pub fn backlog(&self) -> Option<Backlog> {
        let shared = self.shared.upgrade()?;
        let state = shared.lock();
        let depth = state.depth();
        let oldest = state
            .pending_since
            .front()
            .filter(|_| depth.bytes > 0)
            .map(|(_, since)| since.elapsed());
        Some(Backlog {
            depth,
            max_bytes: shared.max_bytes,
            oldest,
        })
    }
}

/// What a spool holds undelivered, for readiness checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// The synced lines not delivered yet.
    pub depth: Depth,
    /// `spool_max_bytes`: at this many undelivered bytes the spool is full.
    pub max_bytes: u64,
    /// How long the oldest undelivered line has waited; none when all are delivered.
    pub oldest: Option<Duration>,
}

impl Backlog {
    /// True when the spool takes no more input.
    pub fn is_full(&self) -> bool {
        self.depth.bytes >= self.max_bytes
    }
}

/// Lines read from the spool for one delivery.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    data: Vec<u8>,
    lines: Vec<(usize, usize)>,
    end: Position,
}

impl Batch {
    /// The lines, without their newlines.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.lines.iter().map(|&(a, b)| &self.data[a..b])
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// True when the batch holds no line.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Bytes of the lines, without newlines.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// The position after the last line: what to [`SpoolReader::commit`] once delivered.
    pub fn end(&self) -> Position {
        self.end
    }

    fn push(&mut self, line: &[u8], end: Position) {
        let start = self.data.len();
        self.data.extend_from_slice(line);
        self.lines.push((start, self.data.len()));
        self.end = end;
    }
}

/// A line read from a segment but left for the next batch, with the positions around it.
struct Carry {
    line: Vec<u8>,
    start: Position,
    end: Position,
}

/// The reading half of a spool: yields batches of synced lines and records deliveries.
pub struct SpoolReader {
    shared: Arc<Shared>,
    /// Where the next line starts (after `carry`, if any).
    read: Position,
    /// The open segment: its start offset, a reader and the reader's offset in the file.
    file: Option<(u64, BufReader<File>, u64)>,
    carry: Option<Carry>,
    /// The writer's rollback count when `file` was last known good.
    rollbacks: u64,
}

impl SpoolReader {
    /// The next lines after those already handed out, at most `max_lines` lines and
    /// `max_bytes` bytes (but always at least one line); waits up to `wait` for lines
    /// to be synced, and returns `None` if none were.
    ///
    /// # Errors
    /// A segment could not be read; the same lines are read again at the next call.
    pub fn next_batch(
        &mut self,
        max_lines: usize,
        max_bytes: usize,
        wait: Duration,
    ) -> Result<Option<Batch>> {
        let before = self.carry.as_ref().map_or(self.read, |c| c.start);
        let result = self.read_batch(max_lines.max(1), max_bytes, wait);
        if result.is_err() {
            self.read = before;
            self.carry = None;
            self.file = None;
        }
        result
    }

    fn read_batch(
        &mut self,
        max_lines: usize,
        max_bytes: usize,
        wait: Duration,
    ) -> Result<Option<Batch>> {
        let (synced_end, segments) = {
            let state = self.shared.lock();
            let offset = self.read.offset;
            let has_carry = self.carry.is_some();
            let wakeups = state.wakeups;
            let (state, _) = self
                .shared
                .changed
                .wait_timeout_while(state, wait, |s| {
                    !has_carry && s.synced_end <= offset && s.wakeups == wakeups
                })
                .unwrap_or_else(|p| p.into_inner());
            if state.rollbacks != self.rollbacks {
                // Bytes read ahead past the synced end may have been rewritten.
                self.rollbacks = state.rollbacks;
                self.file = None;
            }
            (state.synced_end, state.segments.clone())
        };
        let mut batch = Batch {
            end: self.read,
            ..Batch::default()
        };
        if let Some(carry) = self.carry.take() {
            batch.push(&carry.line, carry.end);
        }
        let dir = self.shared.dir.clone();
        let mut line = Vec::new();
        while batch.len() < max_lines && self.read.offset < synced_end {
            let index = segments.partition_point(|&s| s <= self.read.offset);
            let Some(index) = index.checked_sub(1) else {
                bail!(
                    "spool position {} is before the oldest segment {:?}",
                    self.read.offset,
                    segments.front()
                );
            };
            let seg_start = segments[index];
            let limit = segments
                .get(index + 1)
                .map_or(synced_end, |&next| next.min(synced_end));
            let remaining = limit - self.read.offset;
            let reader = self.segment_reader(seg_start)?;
            line.clear();
            let n = reader
                .take(remaining)
                .read_until(b'\n', &mut line)
                .with_context(|| {
                    format!("failed to read {}", segment_path(&dir, seg_start).display())
                })?;
            if n == 0 {
                tracing::warn!(
                    output = %self.shared.name,
                    segment = seg_start,
                    missing_bytes = limit - self.read.offset,
                    "Spool segment is shorter than expected; skipping to the next one."
                );
                self.read.offset = limit;
                self.file = None;
                continue;
            }
            let start = self.read;
            self.read.offset += n as u64;
            if let Some((_, _, at)) = self.file.as_mut() {
                *at += n as u64;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
                self.read.line += 1;
            }
            if !batch.is_empty() && batch.bytes() + line.len() > max_bytes {
                self.carry = Some(Carry {
                    line: std::mem::take(&mut line),
                    start,
                    end: self.read,
                });
                break;
            }
            batch.push(&line, self.read);
        }
        Ok((!batch.is_empty()).then_some(batch))
    }

    /// A reader of segment `seg_start`, positioned at the read offset.
    fn segment_reader(&mut self, seg_start: u64) -> Result<&mut BufReader<File>> {
        let want = self.read.offset - seg_start;
        let reusable = matches!(&self.file, Some((s, _, at)) if *s == seg_start && *at == want);
        if !reusable {
            let path = segment_path(&self.shared.dir, seg_start);
            let mut file =
                File::open(&path).with_context(|| format!("failed to open {}", path.display()))?;
            file.seek(SeekFrom::Start(want))
                .with_context(|| format!("failed to seek in {}", path.display()))?;
            self.file = Some((seg_start, BufReader::with_capacity(64 * 1024, file), want));
        }
        match self.file.as_mut() {
            Some((_, reader, _)) => Ok(reader),
            None => Err(anyhow!("no spool segment open")),
        }
    }

    /// Durably records that every line before `upto` was delivered, and deletes the
    /// segments that hold only such lines.
    ///
    /// # Errors
    /// `upto` is not between the last commit and the lines handed out, or the cursor
    /// could not be written (the lines are then sent again after a restart).
    pub fn commit(&mut self, upto: Position) -> Result<()> {
        let current = self.shared.lock().committed;
        let handed_out = self.carry.as_ref().map_or(self.read, |c| c.start);
        if upto.offset < current.offset || upto.offset > handed_out.offset {
            bail!(
                "cannot commit spool position {} outside {}..={}",
                upto.offset,
                current.offset,
                handed_out.offset
            );
        }
        if upto.offset == current.offset {
            return Ok(());
        }
        write_cursor(&self.shared.dir, upto.offset)?;
        let mut delivered = Vec::new();
        let depth = {
            let mut state = self.shared.lock();
            state.committed = upto;
            while state
                .pending_since
                .front()
                .is_some_and(|(end, _)| *end <= upto.offset)
            {
                state.pending_since.pop_front();
            }
            while state.segments.len() > 1
                && state.segments[1] <= upto.offset
                && state.segments[0] < state.synced_segment
            {
                delivered.extend(state.segments.pop_front());
            }
            state.depth()
        };
        self.shared.changed.notify_all();
        self.shared.publish_depth(depth);
        for start in delivered {
            let path = segment_path(&self.shared.dir, start);
            if let Err(error) = std::fs::remove_file(&path) {
                tracing::warn!(
                    output = %self.shared.name,
                    path = %path.display(),
                    %error,
                    "Could not delete a delivered spool segment; it is deleted at the next start."
                );
            }
        }
        Ok(())
    }

    /// The synced lines not delivered yet.
    pub fn depth(&self) -> Depth {
        self.shared.lock().depth()
    }
}

/// Lines a receiver refused for good, kept for an operator in the spool directory.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    path: PathBuf,
}

impl DeadLetter {
    /// A dead-letter file at `path`, created at the first write.
    pub fn new(path: PathBuf) -> DeadLetter {
        DeadLetter { path }
    }

    /// Where the lines go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `lines` (one per line) and fsyncs them.
    ///
    /// # Errors
    /// The file cannot be opened, written or synced.
    pub fn write(&self, lines: &[&[u8]]) -> Result<()> {
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for line in lines {
            buf.extend_from_slice(line);
            buf.push(b'\n');
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("failed to open {}", self.path.display()))?;
        file.write_all(&buf)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("failed to write {}", self.path.display()))
    }
}

/// Why a delivery failed, which decides what happens to the batch.
#[derive(Debug)]
pub enum DeliveryError {
    /// The receiver cannot take the batch now (unreachable, busy, timed out): the same
    /// batch is tried again after a backoff.
    Retry(anyhow::Error),
    /// The receiver refused the batch for good: it goes to the dead-letter file.
    Rejected(anyhow::Error),
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryError::Retry(error) => write!(f, "{error:#}"),
            DeliveryError::Rejected(error) => write!(f, "rejected: {error:#}"),
        }
    }
}

impl std::error::Error for DeliveryError {}

/// Sends batches of spooled lines to one receiver.
pub trait Delivery: Send + 'static {
    /// Sends `lines` (JSON documents, without newlines, in spool order); Ok means the
    /// receiver took them all and they may be forgotten.
    ///
    /// # Errors
    /// See [`DeliveryError`] for how each kind of failure is treated.
    fn deliver(&mut self, lines: &[&[u8]]) -> Result<(), DeliveryError>;
}

/// How a [`SpooledSink`] spools and delivers.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Spool size limits.
    pub spool: SpoolOptions,
    /// Most lines in one delivery.
    pub batch_max_events: usize,
    /// Most bytes in one delivery (a longer single line still goes alone).
    pub batch_max_bytes: usize,
    /// Delay before the first retry of a failed delivery.
    pub retry_initial: Duration,
    /// Longest delay between retries.
    pub retry_max: Duration,
    /// How long [`SpooledSink::shutdown`] waits for a delivery in flight.
    pub shutdown_wait: Duration,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            spool: SpoolOptions::default(),
            batch_max_events: DEFAULT_BATCH_MAX_EVENTS,
            batch_max_bytes: DEFAULT_BATCH_MAX_BYTES,
            retry_initial: Duration::from_millis(super::retry::DEFAULT_INITIAL_MS),
            retry_max: Duration::from_millis(super::retry::DEFAULT_MAX_MS),
            shutdown_wait: Duration::from_secs(5),
        }
    }
}

impl SinkOptions {
    /// Checks the settings, naming the one to fix.
    ///
    /// # Errors
    /// A batch limit is zero or a spool limit is invalid.
    pub fn validate(&self) -> Result<()> {
        self.spool.validate()?;
        if self.batch_max_events == 0 {
            bail!("batch_max_events must be above 0");
        }
        if self.batch_max_bytes == 0 {
            bail!("batch_max_bytes must be above 0");
        }
        Ok(())
    }
}

/// An output that spools every flushed item on disk and delivers it from a
/// background thread through `D`.
pub struct SpooledSink<D: Delivery> {
    name: String,
    writer: SpoolWriter,
    line: Vec<u8>,
    stop: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
    shutdown_wait: Duration,
    dead_letter: PathBuf,
    _delivery: PhantomData<fn() -> D>,
}

impl<D: Delivery> SpooledSink<D> {
    /// Opens the spool in `dir` (see [`output_dir`]) and starts delivering from it.
    ///
    /// # Errors
    /// The options are invalid, the spool cannot be opened, or the thread cannot start.
    pub fn new(
        name: &str,
        dir: &Path,
        delivery: D,
        options: SinkOptions,
    ) -> Result<SpooledSink<D>> {
        options.validate()?;
        let (writer, reader) = open(dir, name, &options.spool)?;
        let stop = Arc::new(StopSignal::new());
        let dead_letter = dir.join(DEAD_LETTER_FILE);
        let worker = Worker {
            name: name.to_string(),
            reader,
            delivery,
            dead_letter: DeadLetter::new(dead_letter.clone()),
            backoff: Backoff::new(options.retry_initial, options.retry_max),
            outage: None,
            max_events: options.batch_max_events,
            max_bytes: options.batch_max_bytes,
            stop: Arc::clone(&stop),
        };
        let thread = std::thread::Builder::new()
            .name(format!("out-{name}"))
            .spawn(move || worker.run())
            .with_context(|| format!("failed to start the delivery thread of output {name}"))?;
        Ok(SpooledSink {
            name: name.to_string(),
            writer,
            line: Vec::new(),
            stop,
            thread: Some(thread),
            shutdown_wait: options.shutdown_wait,
            dead_letter,
            _delivery: PhantomData,
        })
    }

    /// The output's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The synced lines not delivered yet.
    pub fn depth(&self) -> Depth {
        self.writer.depth()
    }

    /// A handle to watch the spool after the sink is boxed into the pipeline.
    pub fn handle(&self) -> SpoolHandle {
        self.writer.handle()
    }

    /// The spool directory.
    pub fn spool_dir(&self) -> &Path {
        self.writer.dir()
    }

    /// The file refused lines go to.
    pub fn dead_letter_path(&self) -> &Path {
        &self.dead_letter
    }

    /// Waits up to `wait` for the spool to drain, then stops delivery; true if
    /// everything flushed was delivered. Lines written but not flushed are discarded
    /// (they were never acknowledged); undelivered ones stay for the next start.
    pub fn close(&mut self, wait: Duration) -> bool {
        let drained = self.writer.wait_drained(wait);
        if !drained {
            let depth = self.writer.depth();
            tracing::info!(
                output = %self.name,
                lines = depth.lines,
                bytes = depth.bytes,
                "Closing with undelivered lines; they stay in the spool for the next start."
            );
        }
        self.shutdown();
        drained
    }

    /// Stops the delivery thread, waiting for a delivery in flight for at most the
    /// configured `shutdown_wait`; nothing undelivered is lost.
    pub fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.raise();
        self.writer.wake_reader();
        let deadline = Instant::now() + self.shutdown_wait;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if !thread.is_finished() {
            tracing::warn!(
                output = %self.name,
                "Delivery is still waiting for the receiver; leaving it behind. Undelivered lines stay in the spool."
            );
        } else if thread.join().is_err() {
            tracing::error!(output = %self.name, "Delivery thread panicked; undelivered lines stay in the spool.");
        }
    }
}

impl<D: Delivery> Drop for SpooledSink<D> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl<D: Delivery> AlertSink for SpooledSink<D> {
    fn write(&mut self, item: &Value) -> Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, item).context("failed to serialize an item")?;
        self.writer.append(&self.line)
    }

    /// Deliveries frame items as JSON (HEC envelopes, Forward records), so a line goes
    /// in as the item it holds ([`super::line_item`]).
    fn write_line(&mut self, line: &[u8]) -> Result<()> {
        self.write(&super::line_item(line))
    }

    fn flush(&mut self) -> Result<()> {
        self.writer
            .sync()
            .with_context(|| format!("failed to spool output {}", self.name))
    }

    fn has_room(&self) -> bool {
        self.writer.has_room()
    }

    fn spool(&self) -> Option<SpoolHandle> {
        Some(self.writer.handle())
    }
}

/// The delivery thread's state.
struct Worker<D: Delivery> {
    name: String,
    reader: SpoolReader,
    delivery: D,
    dead_letter: DeadLetter,
    backoff: Backoff,
    /// When the current run of failures began.
    outage: Option<Instant>,
    max_events: usize,
    max_bytes: usize,
    stop: Arc<StopSignal>,
}

impl<D: Delivery> Worker<D> {
    fn run(mut self) {
        while !self.stop.is_raised() {
            let batch = match self
                .reader
                .next_batch(self.max_events, self.max_bytes, IDLE_WAIT)
            {
                Ok(Some(batch)) => batch,
                Ok(None) => continue,
                Err(error) => {
                    tracing::error!(
                        output = %self.name,
                        error = format!("{error:#}"),
                        "Could not read the spool; retrying."
                    );
                    if self.stop.sleep(self.backoff.next_delay()) {
                        break;
                    }
                    continue;
                }
            };
            if !self.handle(&batch) {
                break;
            }
        }
    }

    /// Delivers one batch until it is delivered or dead-lettered (true), or the thread
    /// is asked to stop (false).
    fn handle(&mut self, batch: &Batch) -> bool {
        let (valid, invalid): (Vec<&[u8]>, Vec<&[u8]>) = batch
            .lines()
            .partition(|line| serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok());
        if !invalid.is_empty() && !self.dead_letter_lines(&invalid, "Spooled lines are not JSON") {
            return false;
        }
        loop {
            let result = if valid.is_empty() {
                Ok(())
            } else {
                let delivery = &mut self.delivery;
                std::panic::catch_unwind(AssertUnwindSafe(|| delivery.deliver(&valid)))
                    .unwrap_or_else(|_| Err(DeliveryError::Retry(anyhow!("the delivery panicked"))))
            };
            match result {
                Ok(()) => {
                    metrics::counter!("minewatch_alerts_sent_total", "output" => self.name.clone())
                        .increment(valid.len() as u64);
                    self.recovered();
                    self.commit(batch.end());
                    return true;
                }
                Err(DeliveryError::Retry(error)) => {
                    metrics::counter!("minewatch_output_errors_total", "output" => self.name.clone())
                        .increment(1);
                    if self.outage.is_none() {
                        self.outage = Some(Instant::now());
                        tracing::warn!(
                            output = %self.name,
                            lines = valid.len(),
                            error = format!("{error:#}"),
                            "Delivery failed; retrying with backoff."
                        );
                    } else {
                        tracing::debug!(
                            output = %self.name,
                            failures = self.backoff.failures() + 1,
                            error = format!("{error:#}"),
                            "Delivery failed again."
                        );
                    }
                    if self.stop.sleep(self.backoff.next_delay()) {
                        return false;
                    }
                }
                Err(DeliveryError::Rejected(error)) => {
                    metrics::counter!("minewatch_output_errors_total", "output" => self.name.clone())
                        .increment(1);
                    let reason = format!("Receiver refused a batch ({error:#})");
                    if !self.dead_letter_lines(&valid, &reason) {
                        return false;
                    }
                    self.recovered();
                    self.commit(batch.end());
                    return true;
                }
            }
        }
    }

    /// Appends `lines` to the dead-letter file, retrying until it works (true) or the
    /// thread is asked to stop (false).
    fn dead_letter_lines(&mut self, lines: &[&[u8]], reason: &str) -> bool {
        loop {
            match self.dead_letter.write(lines) {
                Ok(()) => {
                    metrics::counter!("minewatch_output_dead_letter_total", "output" => self.name.clone())
                        .increment(lines.len() as u64);
                    tracing::error!(
                        output = %self.name,
                        lines = lines.len(),
                        path = %self.dead_letter.path().display(),
                        "{reason}; moved the lines to the dead-letter file."
                    );
                    return true;
                }
                Err(error) => {
                    tracing::error!(
                        output = %self.name,
                        lines = lines.len(),
                        error = format!("{error:#}"),
                        "{reason}, and the dead-letter file cannot be written; retrying."
                    );
                    if self.stop.sleep(self.backoff.next_delay()) {
                        return false;
                    }
                }
            }
        }
    }

    fn recovered(&mut self) {
        if let Some(since) = self.outage.take() {
            tracing::info!(
                output = %self.name,
                failures = self.backoff.failures(),
                outage_secs = since.elapsed().as_secs_f64(),
                "Delivery recovered."
            );
        }
        self.backoff.reset();
    }

    fn commit(&mut self, upto: Position) {
        if let Err(error) = self.reader.commit(upto) {
            tracing::warn!(
                output = %self.name,
                error = format!("{error:#}"),
                "Could not record the delivered position; these lines may be sent again after a restart."
            );
        }
    }
}

#[cfg(test)]
#[path = "network_tests.rs"]
mod network_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn options(max_bytes: u64, segment_bytes: u64) -> SpoolOptions {
        SpoolOptions {
            max_bytes,
            segment_bytes,
        }
    }

    fn line(i: usize) -> Vec<u8> {
        format!("{{\"n\":{i},\"pad\":\"xxxxxxxxxxxxxxxxxxxx\"}}").into_bytes()
    }

    fn read_all(reader: &mut SpoolReader) -> Vec<Batch> {
        let mut batches = Vec::new();
        while let Some(batch) = reader.next_batch(7, 10_000, Duration::ZERO).unwrap() {
            batches.push(batch);
        }
        batches
    }

    fn numbers(batches: &[Batch]) -> Vec<u64> {
        batches
            .iter()
            .flat_map(|b| b.lines())
            .map(|l| {
                serde_json::from_slice::<Value>(l).unwrap()["n"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    }

    fn segment_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("segment-"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn synced_lines_survive_a_reopen_until_committed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        {
            let (mut writer, mut reader) = open(&dir, "t", &options(1 << 20, 200)).unwrap();
            for i in 0..20 {
                writer.append(&line(i)).unwrap();
            }
            writer.sync().unwrap();
            assert_eq!(writer.depth().lines, 20);
            let batches = read_all(&mut reader);
            assert_eq!(numbers(&batches), (0..20).collect::<Vec<_>>());
            assert!(segment_files(&dir).len() > 2, "segments should roll");
            // Dropped without a commit: everything must come back.
        }
        {
            let (writer, mut reader) = open(&dir, "t", &options(1 << 20, 200)).unwrap();
            assert_eq!(writer.depth().lines, 20);
            let batch = reader
                .next_batch(5, 10_000, Duration::ZERO)
                .unwrap()
                .unwrap();
            assert_eq!(numbers(std::slice::from_ref(&batch)), vec![0, 1, 2, 3, 4]);
            reader.commit(batch.end()).unwrap();
            assert_eq!(reader.depth().lines, 15);
        }
        let (mut writer, mut reader) = open(&dir, "t", &options(1 << 20, 200)).unwrap();
        assert_eq!(writer.depth().lines, 15);
        writer.append(&line(20)).unwrap();
        writer.sync().unwrap();
        let batches = read_all(&mut reader);
        assert_eq!(numbers(&batches), (5..21).collect::<Vec<_>>());
        reader.commit(batches.last().unwrap().end()).unwrap();
        assert_eq!(writer.depth(), Depth::default());
        assert_eq!(
            segment_files(&dir).len(),
            1,
            "delivered segments are deleted"
        );
        drop((writer, reader));
        let (writer, mut reader) = open(&dir, "t", &options(1 << 20, 200)).unwrap();
        assert_eq!(writer.depth(), Depth::default());
        assert!(
            reader
                .next_batch(5, 10_000, Duration::ZERO)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn unsynced_lines_are_not_visible_and_a_second_open_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut writer, mut reader) = open(tmp.path(), "t", &SpoolOptions::default()).unwrap();
        writer.append(&line(1)).unwrap();
        assert!(
            reader
                .next_batch(5, 10_000, Duration::ZERO)
                .unwrap()
                .is_none()
        );
        let error = open(tmp.path(), "t", &SpoolOptions::default())
            .err()
            .unwrap();
        assert!(format!("{error:#}").contains("in use"), "{error:#}");
        assert!(writer.append(b"two\nlines").is_err());
        assert!(writer.append(b"").is_err());
        drop((writer, reader));
        let (writer, _reader) = open(tmp.path(), "t", &SpoolOptions::default()).unwrap();
        assert_eq!(writer.depth().lines, 0, "an unsynced line is not kept");
    }

    #[test]
    fn a_torn_tail_is_cut_off_on_open() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let (mut writer, _reader) = open(tmp.path(), "t", &SpoolOptions::default()).unwrap();
            for i in 0..3 {
                writer.append(&line(i)).unwrap();
            }
            writer.sync().unwrap();
        }
        let segment = tmp.path().join(&segment_files(tmp.path())[0]);
        let good = std::fs::metadata(&segment).unwrap().len();
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        file.write_all(b"{\"n\":3,\"pad\":\"xx").unwrap();
        drop(file);
        let (mut writer, mut reader) = open(tmp.path(), "t", &SpoolOptions::default()).unwrap();
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), good);
        writer.append(&line(4)).unwrap();
        writer.sync().unwrap();
        assert_eq!(numbers(&read_all(&mut reader)), vec![0, 1, 2, 4]);
        drop((writer, reader));

        // Zeros from a lost block, then a partial line: both cut.
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        file.write_all(&[0u8; 100]).unwrap();
        file.write_all(b"\n\0\0\0\n{\"n\":").unwrap();
        drop(file);
        let (writer, mut reader) = open(tmp.path(), "t", &SpoolOptions::default()).unwrap();
        assert_eq!(writer.depth().lines, 4);
        assert_eq!(numbers(&read_all(&mut reader)), vec![0, 1, 2, 4]);
    }

    #[test]
    fn a_failed_sync_rolls_back_to_the_last_good_one() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut writer, mut reader) = open(tmp.path(), "t", &options(1 << 20, 200)).unwrap();
        for i in 0..3 {
            writer.append(&line(i)).unwrap();
        }
        writer.sync().unwrap();
        // A sync that wrote its lines (rolling a segment) and then failed: sync() rolls
        // back exactly like this after any error.
        for i in 100..110 {
            writer.append(&line(i)).unwrap();
        }
        let (buf, ends) = (
            std::mem::take(&mut writer.buf),
            std::mem::take(&mut writer.line_ends),
        );
        writer.write_lines(&buf, &ends).unwrap();
        assert!(segment_files(tmp.path()).len() > 1);
        // The reader reads ahead past the synced end meanwhile.
        let first = reader
            .next_batch(1, 10_000, Duration::ZERO)
            .unwrap()
            .unwrap();
        assert_eq!(numbers(&[first]), vec![0]);
        writer.needs_rollback = true;
        writer.rollback().unwrap();
        assert_eq!(segment_files(tmp.path()).len(), 1);
        for i in 3..6 {
            writer.append(&line(i)).unwrap();
        }
        writer.sync().unwrap();
        assert_eq!(numbers(&read_all(&mut reader)), vec![1, 2, 3, 4, 5]);
        drop((writer, reader));
        let (writer, mut reader) = open(tmp.path(), "t", &options(1 << 20, 200)).unwrap();
        assert_eq!(writer.depth().lines, 6);
        assert_eq!(numbers(&read_all(&mut reader)), (0..6).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_spool_has_no_room_until_delivered() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut writer, mut reader) = open(tmp.path(), "t", &options(300, 100)).unwrap();
        assert!(writer.has_room());
        for i in 0..10 {
            writer.append(&line(i)).unwrap();
        }
        writer.sync().unwrap();
        assert!(!writer.has_room());
        let batch = reader
            .next_batch(9, 10_000, Duration::ZERO)
            .unwrap()
            .unwrap();
        assert_eq!(batch.len(), 9);
        reader.commit(batch.end()).unwrap();
        assert!(writer.has_room());
        assert_eq!(writer.depth().lines, 1);
    }

    #[test]
    fn batches_respect_the_byte_limit_and_carry_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut writer, mut reader) = open(tmp.path(), "t", &SpoolOptions::default()).unwrap();
        for i in 0..10 {
            writer.append(&line(i)).unwrap();
        }
        writer.sync().unwrap();
        let size = line(0).len();
        let first = reader
            .next_batch(100, size * 3 + 1, Duration::ZERO)
            .unwrap()
            .unwrap();
        assert_eq!(first.len(), 3);
        let second = reader.next_batch(100, 1, Duration::ZERO).unwrap().unwrap();
        assert_eq!(second.len(), 1, "a line longer than the limit goes alone");
        assert_eq!(numbers(&[first.clone(), second.clone()]), vec![0, 1, 2, 3]);
        assert!(reader.commit(second.end()).is_ok());
        assert_eq!(writer.depth().lines, 6);
        let rest = reader
            .next_batch(100, 1 << 20, Duration::ZERO)
            .unwrap()
            .unwrap();
        assert_eq!(numbers(&[rest]), (4..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_waiting_reader_wakes_for_new_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut writer, mut reader) = open(tmp.path(), "t", &SpoolOptions::default()).unwrap();
        let (waiting, waits) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            waiting.send(()).unwrap();
            // An hour: only the wakeup of the sync ends this wait, so a missed wakeup
            // hangs the test instead of being measured.
            let batch = reader
                .next_batch(10, 10_000, Duration::from_secs(3600))
                .unwrap();
            batch.map(|b| b.len())
        });
        waits.recv().unwrap();
        writer.append(&line(1)).unwrap();
        writer.sync().unwrap();
        assert_eq!(thread.join().unwrap(), Some(1));
        assert!(!writer.wait_drained(Duration::from_millis(10)));
    }

    #[test]
    fn output_names_must_be_directory_names() {
        assert!(output_dir(Path::new("/s"), "splunk-main_1.x").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", ".."] {
            assert!(output_dir(Path::new("/s"), bad).is_err(), "{bad}");
        }
    }
}
