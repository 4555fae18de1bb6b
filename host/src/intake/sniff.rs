//! Telling NDJSON from whole JSON documents, and reading each.

use std::io::{BufRead, Read};

use std::sync::Arc;

use anyhow::Result;
use serde_json::Value;

use serde::de::DeserializeSeed;

use super::envelope::is_lookup_page;
use super::fields::{FieldSet, OVER_BUDGET};
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

    fn fields(&self) -> Option<&FieldSet> {
        self.inner.fields()
    }

    fn cut_fields(&self) -> Option<&FieldSet> {
        self.inner.cut_fields()
    }

    fn keeps_raw(&self) -> bool {
        self.inner.keeps_raw()
    }

    fn raw(&mut self, line: &[u8]) -> Result<()> {
        self.inner.raw(line)
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
    let (first, skipped) = skip_whitespace(&mut reader)?;
    let mut blank = skipped.split(|&b| b == b'\n');
    let last_blank = blank.next_back().unwrap_or_default();
    let start_line = blank.clone().count() as u64 + 1;
    if counting.keeps_raw() {
        // Blank lines before the first record pass on as they were; the last one's
        // whitespace belongs to the first line.
        for line in blank {
            counting.raw(line)?;
        }
        if first.is_none() && !last_blank.is_empty() {
            counting.raw(last_blank)?;
        }
    }
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
            match parse(&line, &counting) {
                Ok(value) => {
                    let location = Location {
                        source: source.clone(),
                        line: Some(start_line),
                        record: None,
                    };
                    let too_long = line.len() > options.max_record_bytes && !counting.keeps_raw();
                    if too_long && value.get("Records").is_none() {
                        let cut = counting.fields().map(|fields| {
                            fields
                                .cutter(options.max_record_bytes)
                                .seed()
                                .deserialize(value)
                        });
                        match cut {
                            Some(Ok(value)) => {
                                visit_value(value, &location, &mut counting)?;
                            }
                            Some(Err(_)) => counting.skip(oversized(options, location, true)),
                            None => counting.skip(oversized(options, location, false)),
                        }
                    } else {
                        visit_value(value, &location, &mut counting)?;
                    }
                    if counting.keeps_raw() {
                        counting.raw(trim_newline(&line))?;
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
/// whitespace consumed.
fn skip_whitespace(reader: &mut dyn BufRead) -> std::io::Result<(Option<u8>, Vec<u8>)> {
    let mut skipped = Vec::new();
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok((None, skipped));
        }
        let ws = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        skipped.extend_from_slice(&buf[..ws]);
        if ws < buf.len() {
            let first = buf[ws];
            reader.consume(ws);
            return Ok((Some(first), skipped));
        }
        let len = buf.len();
        reader.consume(len);
    }
}

/// How much of a line [`read_line_capped`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// The whole line, within the cap.
    Whole,
    /// Over the cap; `line` holds its start, the rest is still in the reader (`false`)
    /// or all of it is in `line` (`true`).
    Long { complete: bool },
}

/// Reads one line into `line` (without the newline) while it stays within `cap` bytes;
/// a longer line is left partly unread (see [`Line::Long`]). At end of input `line` is
/// left empty.
fn read_line_capped(
    reader: &mut dyn BufRead,
    cap: usize,
    line: &mut Vec<u8>,
) -> std::io::Result<Line> {
    line.clear();
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(Line::Whole);
        }
        let (chunk, done) = match memchr(buf) {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        line.extend_from_slice(chunk);
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        if line.len() > cap {
            return Ok(Line::Long {
                complete: done.is_some(),
            });
        }
        if done.is_some() {
            return Ok(Line::Whole);
        }
    }
}

/// The rest of the current line of a reader, up to and including its newline.
struct RestOfLine<'a> {
    reader: &'a mut dyn BufRead,
    done: bool,
}

impl Read for RestOfLine<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let buf = self.reader.fill_buf()?;
        let avail = &buf[..buf.len().min(out.len())];
        let (n, newline) = match memchr(avail) {
            Some(i) => (i, true),
            None => (avail.len(), false),
        };
        out[..n].copy_from_slice(&avail[..n]);
        self.done = newline || buf.is_empty();
        self.reader.consume(n + usize::from(newline));
        Ok(n)
    }
}

/// Reads the rest of a line over the record size limit, cut down to the fields the
/// visitor keeps (see [`super::fields`]); without a field set, or when even the cut
/// is over the limit or the line is not JSON, it is skipped.
fn read_long_line(
    start: &[u8],
    complete: bool,
    reader: &mut dyn BufRead,
    location: Location,
    options: ReadOptions,
    visitor: &mut dyn Visitor,
) -> Result<()> {
    let mut rest = RestOfLine {
        reader,
        done: complete,
    };
    let Some(fields) = visitor.fields() else {
        std::io::copy(&mut rest, &mut std::io::sink())?;
        visitor.skip(oversized(options, location, false));
        return Ok(());
    };
    let cutter = fields.cutter(options.max_record_bytes);
    let mut input = std::io::BufReader::new(start.chain(&mut rest));
    let mut de = serde_json::Deserializer::from_reader(&mut input);
    let cut = cutter.seed().deserialize(&mut de).and_then(|value| {
        de.end()?;
        Ok(value)
    });
    drop(de);
    drop(input);
    std::io::copy(&mut rest, &mut std::io::sink())?;
    match cut {
        Ok(value) => {
            visit_value(value, &location, visitor)?;
        }
        Err(error) if error.is_io() => return Err(error.into()),
        Err(error) if error.to_string().starts_with(OVER_BUDGET) => {
            visitor.skip(oversized(options, location, true));
        }
        Err(error) => visitor.skip(Skip {
            reason: SkipReason::InvalidJson,
            detail: format!(
                "{error} in a line over max_record_bytes starting {}",
                preview(start)
            ),
            location,
        }),
    }
    Ok(())
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
    // A passthrough passes every line on whole, so it reads every line whole.
    let cap = if visitor.keeps_raw() {
        usize::MAX
    } else {
        options.max_record_bytes
    };
    loop {
        let read = read_line_capped(reader, cap, &mut line)?;
        match read {
            Line::Whole if line.is_empty() && reader.fill_buf()?.is_empty() => return Ok(()),
            Line::Whole => {
                read_line(&line, source, number, visitor)?;
                if visitor.keeps_raw() {
                    visitor.raw(&line)?;
                }
            }
            Line::Long { complete } => {
                let location = Location {
                    source: source.clone(),
                    line: Some(number),
                    record: None,
                };
                read_long_line(&line, complete, reader, location, options, visitor)?;
            }
        }
        number += 1;
    }
}

/// The skip of a line over `max_record_bytes`: `cut` when even the fields the
/// detectors read are over it, otherwise because nothing says which fields to keep
/// (a passthrough output wants whole records).
fn oversized(options: ReadOptions, location: Location, cut: bool) -> Skip {
    let limit = options.max_record_bytes;
    let detail = if cut {
        format!("a line whose fields the detectors read are alone over max_record_bytes ({limit})")
    } else {
        format!(
            "a line longer than max_record_bytes ({limit}) read for a passthrough output, which \
             needs records whole"
        )
    };
    Skip {
        reason: SkipReason::Oversized,
        detail,
        location,
    }
}

/// Parses JSON text read whole: straight into the detectors' fields when the visitor
/// allows it ([`Visitor::cut_fields`]), else into a whole `Value`. Text the cut refuses,
/// or whose objects the envelopes would not recognise by the keys the cut keeps, is
/// parsed again whole, so its error or skip says what it did before.
fn parse(text: &[u8], visitor: &dyn Visitor) -> serde_json::Result<Value> {
    if let Some(value) = visitor.cut_fields().and_then(|f| f.parse(text).ok())
        && super::envelope::recognised(&value)
    {
        return Ok(value);
    }
    serde_json::from_slice(text)
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
    match parse(line, visitor) {
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
    let mut pages = LookupPages::default();
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => return pages.finish(visitor),
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
                if visitor.keeps_raw() {
                    visit_value(value, &location, visitor)?;
                    visitor.raw(&compact(&bytes[value_start..stream.byte_offset()]))?;
                } else if is_lookup_page(&value) {
                    pages.add(value, location);
                } else {
                    visit_value(value, &location, visitor)?;
                }
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
                pages.finish(visitor)?;
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
                if visitor.keeps_raw() {
                    for rest_line in rest.split(|&b| b == b'\n') {
                        visitor.raw(rest_line)?;
                    }
                }
                return Ok(());
            }
        }
    }
}

/// The `lookup-events` pages of one stream, held to be handed over together in
/// event-time order (the API lists newest first; see [`super::envelope`]).
#[derive(Default)]
struct LookupPages {
    events: Vec<Value>,
    first: Option<Location>,
}

impl LookupPages {
    fn add(&mut self, mut page: Value, location: Location) {
        if let Some(Value::Array(events)) = page.get_mut("Events").map(Value::take) {
            self.events.extend(events);
        }
        self.first.get_or_insert(location);
    }

    fn finish(&mut self, visitor: &mut dyn Visitor) -> Result<()> {
        if let Some(location) = self.first.take() {
            let events = std::mem::take(&mut self.events);
            visit_value(serde_json::json!({ "Events": events }), &location, visitor)?;
        }
        Ok(())
    }
}

/// A line without its trailing newline (the newline is what the output adds back).
fn trim_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// A JSON text with the whitespace between its tokens removed (strings untouched), so a
/// pretty-printed document passes on as one line with its keys in their order.
fn compact(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in text {
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if !b.is_ascii_whitespace() {
            in_string = b == b'"';
            out.push(b);
        }
    }
    out
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
