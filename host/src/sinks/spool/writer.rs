//! The writing half of a spool ([`SpoolWriter`]), and the watchers that do not own it
//! ([`SpoolHandle`], [`Backlog`]).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use super::recovery::{segment_path, sync_dir};
use super::{Depth, Shared, SpoolOptions};

/// The writing half of a spool: appends lines and makes them durable.
pub struct SpoolWriter {
    pub(super) shared: Arc<Shared>,
    pub(super) options: SpoolOptions,
    /// The newest segment, positioned at its end; `None` after a failed rollback.
    pub(super) file: Option<File>,
    pub(super) seg_start: u64,
    pub(super) seg_len: u64,
    /// Where the last successful sync ended, to roll back to after a failed one.
    pub(super) synced_seg_start: u64,
    pub(super) synced_seg_len: u64,
    /// Segments created since the last successful sync.
    pub(super) new_segments: Vec<u64>,
    pub(super) buf: Vec<u8>,
    /// End (exclusive, newline included) of each buffered line in `buf`.
    pub(super) line_ends: Vec<usize>,
    pub(super) needs_rollback: bool,
    /// Whether the last `has_room` answer was no, to log the changes only.
    pub(super) full: std::cell::Cell<bool>,
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

    pub(super) fn write_lines(&mut self, buf: &[u8], line_ends: &[usize]) -> Result<()> {
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
    pub(super) fn rollback(&mut self) -> Result<()> {
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
