//! The reading half of a spool ([`SpoolReader`]): batches of synced lines, and the
//! record of what was delivered.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use super::recovery::{segment_path, write_cursor};
use super::{Depth, Position, Shared};

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
pub(super) struct Carry {
    pub(super) line: Vec<u8>,
    pub(super) start: Position,
    pub(super) end: Position,
}

/// The reading half of a spool: yields batches of synced lines and records deliveries.
pub struct SpoolReader {
    pub(super) shared: Arc<Shared>,
    /// Where the next line starts (after `carry`, if any).
    pub(super) read: Position,
    /// The open segment: its start offset, a reader and the reader's offset in the file.
    pub(super) file: Option<(u64, BufReader<File>, u64)>,
    pub(super) carry: Option<Carry>,
    /// The writer's rollback count when `file` was last known good.
    pub(super) rollbacks: u64,
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
