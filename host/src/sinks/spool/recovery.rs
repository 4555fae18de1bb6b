//! The spool's files on disk (segment names, the cursor) and their recovery on open:
//! delivered segments deleted, a torn tail cut off.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{CURSOR_FILE, CURSOR_MAGIC, CURSOR_TMP_FILE};
#[derive(Debug, Clone, Copy)]
pub(super) struct Segment {
    pub(super) start: u64,
    pub(super) len: u64,
}

pub(super) struct Recovered {
    pub(super) segments: Vec<Segment>,
    pub(super) last: Segment,
    pub(super) committed: u64,
    pub(super) end: u64,
    pub(super) lines: u64,
}

pub(super) fn segment_path(dir: &Path, start: u64) -> PathBuf {
    dir.join(format!("segment-{start:020}.ndjson"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("segment-")?.strip_suffix(".ndjson")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(super) fn sync_dir(dir: &Path) -> Result<()> {
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

pub(super) fn write_cursor(dir: &Path, offset: u64) -> Result<()> {
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
pub(super) fn recover(dir: &Path, name: &str) -> Result<Recovered> {
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
