//! Telling NDJSON from whole JSON documents, and reading each.

use std::io::{BufRead, Read};

use std::sync::Arc;

use anyhow::Result;
use serde_json::Value;

use super::{Location, ReadOptions, Skip, SkipReason, Visitor, maybe_gunzip, visit_value};

/// Counts what a stream produced, to report a stream with nothing in it.
struct Counting<'a> {
    inner: &'a mut dyn Visitor,
    records: u64,
    skips: u64,
}

impl Visitor for Counting<'_> {
    fn record(&mut self, record: Value, location: Location) -> Result<()> {
        self.records += 1;
        self.inner.record(record, location)
    }

    fn skip(&mut self, skip: Skip) {
        self.skips += 1;
        self.inner.skip(skip);
    }

    fn record_field(&self) -> Option<&str> {
        self.inner.record_field()
    }

    fn wants(&self, line: &[u8]) -> bool {
        self.inner.wants(line)
    }

    fn filtered(&mut self, lines: u64) {
        self.records += lines;
        self.inner.filtered(lines);
    }
}

/// Reads one stream (file or stdin), sniffing gzip and the JSON shape.
///
/// A stream whose first character is `[` is a JSON document. One starting with `{` is
/// NDJSON if its first line is a complete JSON value, otherwise a document (a pretty
/// printed delivery file, say). Anything else is read as NDJSON, line by line. If a
/// document turns out to be broken part-way, what follows is read as lines when its
/// lines parse on their own, and skipped as one invalid document otherwise.
///
/// # Errors
/// Reading failed, or the visitor failed.
pub fn read_stream<R: BufRead>(
    reader: R,
    source: Arc<str>,
    options: ReadOptions,
    visitor: &mut dyn Visitor,
) -> Result<()> {
    let mut reader = maybe_gunzip(reader)?;
    let mut counting = Counting {
        inner: visitor,
        records: 0,
        skips: 0,
    };
    let (first, newlines) = skip_whitespace(&mut reader)?;
    let start_line = newlines + 1;
    match first {
        None => {}
        Some(b'[') => {
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes)?;
            read_document(&bytes, &source, start_line, options, &mut counting)?;
        }
        Some(b'{') => {
            // CloudTrail delivery files are one `{"Records":[...]}` line of any size, so
            // the first line is read whole before the record size limit applies.
            let mut line = Vec::new();
            reader.read_until(b'\n', &mut line)?;
            match serde_json::from_slice::<Value>(&line) {
                Ok(value) => {
                    let location = Location {
                        source: source.clone(),
                        line: Some(start_line),
                        record: None,
                    };
                    if line.len() > options.max_record_bytes && value.get("Records").is_none() {
                        counting.skip(oversized(options, location));
                    } else {
                        visit_value(value, &location, &mut counting)?;
                    }
                    read_lines(&mut reader, &source, start_line + 1, options, &mut counting)?;
                }
                Err(_) => {
                    reader.read_to_end(&mut line)?;
                    read_document(&line, &source, start_line, options, &mut counting)?;
                }
            }
        }
        Some(_) => read_lines(&mut reader, &source, start_line, options, &mut counting)?,
    }
    if counting.records == 0 && counting.skips == 0 {
        counting.skip(Skip {
            reason: SkipReason::EmptyInput,
            detail: "no records (an empty file, array or Records list)".into(),
            location: Location {
                source,
                line: None,
                record: None,
            },
        });
    }
    Ok(())
}

/// Consumes leading whitespace; returns the first other byte (not consumed) and the
/// newlines passed.
fn skip_whitespace(reader: &mut dyn BufRead) -> std::io::Result<(Option<u8>, u64)> {
    let mut newlines = 0;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok((None, newlines));
        }
        let ws = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        newlines += buf[..ws].iter().filter(|&&b| b == b'\n').count() as u64;
        if ws < buf.len() {
            let first = buf[ws];
            reader.consume(ws);
            return Ok((Some(first), newlines));
        }
        let len = buf.len();
        reader.consume(len);
    }
}

/// Reads one line into `line` (without the newline), keeping at most `cap` bytes;
/// returns whether the line was longer. At end of input `line` is left empty.
fn read_line_capped(
    reader: &mut dyn BufRead,
    cap: usize,
    line: &mut Vec<u8>,
) -> std::io::Result<bool> {
    line.clear();
    let mut oversized = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(oversized);
        }
        let (chunk, done) = match memchr(buf) {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if line.len() + chunk.len() <= cap {
            line.extend_from_slice(chunk);
        } else {
            oversized = true;
        }
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(oversized);
        }
    }
}

fn memchr(buf: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', buf)
}

/// Reads NDJSON line by line until the end of the stream.
fn read_lines(
    reader: &mut dyn BufRead,
    source: &Arc<str>,
    first_line: u64,
    options: ReadOptions,
    visitor: &mut dyn Visitor,
) -> Result<()> {
    let mut line = Vec::new();
    let mut number = first_line;
    loop {
        let too_long = read_line_capped(reader, options.max_record_bytes, &mut line)?;
        if line.is_empty() && !too_long && reader.fill_buf()?.is_empty() {
            return Ok(());
        }
        if too_long {
            let location = Location {
                source: source.clone(),
                line: Some(number),
                record: None,
            };
            visitor.skip(oversized(options, location));
        } else {
            read_line(&line, source, number, visitor)?;
        }
        number += 1;
    }
}

fn oversized(options: ReadOptions, location: Location) -> Skip {
    Skip {
        reason: SkipReason::Oversized,
        detail: format!(
            "a line longer than max_record_bytes ({})",
            options.max_record_bytes
        ),
        location,
    }
}

/// Parses one NDJSON line; blank lines are ignored.
fn read_line(line: &[u8], source: &Arc<str>, number: u64, visitor: &mut dyn Visitor) -> Result<()> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    if !visitor.wants(line) {
        visitor.filtered(1);
        return Ok(());
    }
    let location = Location {
        source: source.clone(),
        line: Some(number),
        record: None,
    };
    match serde_json::from_slice::<Value>(line) {
        Ok(value) => {
            visit_value(value, &location, visitor)?;
        }
        Err(error) => visitor.skip(Skip {
            reason: SkipReason::InvalidJson,
            detail: format!("{error} in {}", preview(line)),
            location,
        }),
    }
    Ok(())
}

/// Reads a whole JSON document (or several concatenated ones).
fn read_document(
    bytes: &[u8],
    source: &Arc<str>,
    first_line: u64,
    options: ReadOptions,
    visitor: &mut dyn Visitor,
) -> Result<()> {
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    let mut line = first_line;
    let mut counted_to = 0;
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => return Ok(()),
            Some(Ok(value)) => {
                let value_start = start
                    + bytes[start..]
                        .iter()
                        .take_while(|b| b.is_ascii_whitespace())
                        .count();
                line += bytes[counted_to..value_start]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count() as u64;
                counted_to = value_start;
                let location = Location {
                    source: source.clone(),
                    line: Some(line),
                    record: None,
                };
                visit_value(value, &location, visitor)?;
            }
            Some(Err(error)) => {
                line += bytes[counted_to..start]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count() as u64;
                let rest = &bytes[start..];
                let rest_start = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
                line += rest[..rest_start].iter().filter(|&&b| b == b'\n').count() as u64;
                let rest = &rest[rest_start..];
                let lines_parse = rest.split(|&b| b == b'\n').any(|l| {
                    matches!(l.first(), Some(b'{'))
                        && serde_json::from_slice::<serde::de::IgnoredAny>(l).is_ok()
                });
                if lines_parse {
                    let mut reader = rest;
                    return read_lines(&mut reader, source, line, options, visitor);
                }
                visitor.skip(Skip {
                    reason: SkipReason::InvalidJson,
                    detail: format!("a broken JSON document: {error}"),
                    location: Location {
                        source: source.clone(),
                        line: Some(line),
                        record: None,
                    },
                });
                return Ok(());
            }
        }
    }
}

/// The start of a line, for error messages.
fn preview(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(60)]);
    if line.len() > 60 {
        format!("{text:?}...")
    } else {
        format!("{text:?}")
    }
}
