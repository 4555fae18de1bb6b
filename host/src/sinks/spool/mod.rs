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
//!
//! # Layout
//!
//! This file holds the limits, the state the two halves share and [`open`];
//! `recovery.rs` the files on disk and their repair, `writer.rs` and `reader.rs` the two
//! halves, `dead_letter.rs` the dead-letter file, `spooled.rs` the [`SpooledSink`] and
//! `delivery.rs` its delivery thread.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use recovery::{recover, segment_path};

mod dead_letter;
mod delivery;
mod reader;
mod recovery;
mod spooled;
#[cfg(test)]
mod tests;
mod writer;

pub use dead_letter::DeadLetter;
pub use delivery::{Delivery, DeliveryError};
pub use reader::{Batch, SpoolReader};
pub use spooled::{SinkOptions, SpooledSink};
pub use writer::{Backlog, SpoolHandle, SpoolWriter};

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

/// Largest segment size accepted, since the newest segment is read whole on open.
const MAX_SEGMENT_BYTES: u64 = 1024 * 1024 * 1024;

pub(super) const CURSOR_FILE: &str = "cursor";
pub(super) const CURSOR_TMP_FILE: &str = "cursor.tmp";
const LOCK_FILE: &str = "lock";
pub(super) const CURSOR_MAGIC: &str = "minewatch-spool v1";

/// How long the delivery thread waits for new lines before looking at its stop flag.
pub(super) const IDLE_WAIT: Duration = Duration::from_millis(500);

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
pub(super) struct Shared {
    pub(super) dir: PathBuf,
    pub(super) name: String,
    /// Undelivered bytes at which the spool is full.
    pub(super) max_bytes: u64,
    pub(super) state: Mutex<State>,
    pub(super) changed: Condvar,
    /// Holds the directory's advisory lock for as long as either half lives.
    pub(super) _lock: File,
}

#[derive(Debug)]
pub(super) struct State {
    /// Start offsets of the segment files, oldest first; the last one is written to.
    pub(super) segments: VecDeque<u64>,
    /// End of the lines the reader may see: written and fsynced.
    pub(super) synced_end: u64,
    /// Lines before `synced_end`.
    pub(super) synced_lines: u64,
    /// The segment the writer would roll back to; never deleted by the reader.
    pub(super) synced_segment: u64,
    /// Delivered up to here.
    pub(super) committed: Position,
    /// Bumped to wake a waiting reader without new lines.
    pub(super) wakeups: u64,
    /// Bumped when the writer rolls back, so the reader drops what it read ahead.
    pub(super) rollbacks: u64,
    /// The end offset of each sync not wholly delivered yet, with when it was synced
    /// (undelivered lines found at open count from then), oldest first.
    pub(super) pending_since: VecDeque<(u64, Instant)>,
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
