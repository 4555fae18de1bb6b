//! The Forward protocol's wire format: finding where one msgpack message ends in a byte
//! stream, decoding the four event modes into a [`ForwardBatch`], converting records to
//! JSON, and encoding the server's replies (ack, HELO, PONG) with the shared-key digests.
//!
//! Everything here is synchronous and socket-free so that it can be unit-tested byte for byte
//! and, for large messages, run on a blocking thread.

use std::fmt;
use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::read::MultiGzDecoder;
use rmpv::{Value, ValueRef};
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha512};
use tracing::debug;

use super::{ForwardBatch, ForwardRecord, ForwardTime};

/// Containers nested deeper than this make a message garbage (CloudTrail nests about ten).
const MAX_NESTING: usize = 200;

/// rmpv counts about two levels per container; this lets packed entries nest as deep as
/// whole messages may.
const MAX_RMPV_DEPTH: usize = 2 * MAX_NESTING + 8;

/// The msgpack ext type of Fluentd's EventTime.
const EVENT_TIME_EXT: i8 = 0;

/// Why a message was not usable; either way the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProtocolError {
    /// Not msgpack, or msgpack of a shape the protocol does not have.
    Garbage(String),
    /// A size limit was exceeded.
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit, in bytes.
        limit: usize,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Garbage(reason) => f.write_str(reason),
            ProtocolError::TooLarge { what, limit } => {
                write!(f, "{what} is larger than {limit} bytes")
            }
        }
    }
}

fn garbage(reason: impl Into<String>) -> ProtocolError {
    ProtocolError::Garbage(reason.into())
}

/// How the value at the start of a buffer is laid out.
enum Layout {
    /// Header, payload and child counts are known from the marker alone.
    Fixed {
        header: usize,
        payload: u64,
        children: u64,
    },
    /// A big-endian length of `len_bytes` bytes follows the marker.
    Sized {
        header: usize,
        len_bytes: usize,
        kind: Counts,
    },
}

/// What the length of a [`Layout::Sized`] value counts.
enum Counts {
    /// Bytes of payload (str, bin, ext).
    Payload,
    /// Child values (array).
    Items,
    /// Key-value pairs (map), that is two child values each.
    Pairs,
}

fn layout(marker: u8) -> Result<Layout, ProtocolError> {
    let fixed = |header, payload, children| Layout::Fixed {
        header,
        payload,
        children,
    };
    let sized = |header, len_bytes, kind| Layout::Sized {
        header,
        len_bytes,
        kind,
    };
    Ok(match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => fixed(1, 0, 0),
        0x80..=0x8f => fixed(1, 0, 2 * u64::from(marker & 0x0f)),
        0x90..=0x9f => fixed(1, 0, u64::from(marker & 0x0f)),
        0xa0..=0xbf => fixed(1, u64::from(marker & 0x1f), 0),
        0xc1 => return Err(garbage("reserved msgpack marker 0xc1")),
        0xc4 | 0xd9 => sized(2, 1, Counts::Payload),
        0xc5 | 0xda => sized(3, 2, Counts::Payload),
        0xc6 | 0xdb => sized(5, 4, Counts::Payload),
        // ext 8/16/32: marker, length, then a one-byte type before the payload.
        0xc7 => sized(3, 1, Counts::Payload),
        0xc8 => sized(4, 2, Counts::Payload),
        0xc9 => sized(6, 4, Counts::Payload),
        0xca => fixed(5, 0, 0),
        0xcb => fixed(9, 0, 0),
        0xcc | 0xd0 => fixed(2, 0, 0),
        0xcd | 0xd1 => fixed(3, 0, 0),
        0xce | 0xd2 => fixed(5, 0, 0),
        0xcf | 0xd3 => fixed(9, 0, 0),
        // fixext 1/2/4/8/16: marker, type, payload.
        0xd4 => fixed(3, 0, 0),
        0xd5 => fixed(4, 0, 0),
        0xd6 => fixed(6, 0, 0),
        0xd7 => fixed(10, 0, 0),
        0xd8 => fixed(18, 0, 0),
        0xdc => sized(3, 2, Counts::Items),
        0xdd => sized(5, 4, Counts::Items),
        0xde => sized(3, 2, Counts::Pairs),
        0xdf => sized(5, 4, Counts::Pairs),
    })
}

/// Header bytes, payload bytes and child values of the value starting `rest`, or `None` when
/// `rest` does not yet hold the whole header.
fn header(rest: &[u8]) -> Result<Option<(usize, u64, u64)>, ProtocolError> {
    let Some(&marker) = rest.first() else {
        return Ok(None);
    };
    Ok(match layout(marker)? {
        Layout::Fixed {
            header,
            payload,
            children,
        } => Some((header, payload, children)),
        Layout::Sized {
            header,
            len_bytes,
            kind,
        } => rest.get(1..1 + len_bytes).map(|bytes| {
            let n = bytes
                .iter()
                .fold(0u64, |acc, &byte| (acc << 8) | u64::from(byte));
            match kind {
                Counts::Payload => (header, n, 0),
                Counts::Items => (header, 0, n),
                Counts::Pairs => (header, 0, 2 * n),
            }
        }),
    })
}

/// Finds where the msgpack value at the start of a growing buffer ends, resuming where the
/// previous call stopped so that a large message costs one pass however it is split.
#[derive(Debug, Default)]
pub(crate) struct FrameScanner {
    /// Bytes of the current value already walked over.
    pos: usize,
    /// For each open container (outermost first), how many child values are still to come.
    pending: Vec<u64>,
}

impl FrameScanner {
    /// Returns the length of the complete value at the start of `buf`, `None` when more bytes
    /// are needed, or an error when the bytes are not msgpack or exceed `max` bytes.
    ///
    /// `buf` must start at the current value and only grow between calls; once a length is
    /// returned the caller removes that many bytes and the scanner starts afresh.
    pub(crate) fn scan(&mut self, buf: &[u8], max: usize) -> Result<Option<usize>, ProtocolError> {
        if self.pending.is_empty() {
            self.pos = 0;
            self.pending.push(1);
        }
        loop {
            while self.pending.last() == Some(&0) {
                self.pending.pop();
            }
            if self.pending.is_empty() {
                return Ok(Some(std::mem::take(&mut self.pos)));
            }
            let rest = &buf[self.pos..];
            let Some((header, payload, children)) = header(rest)? else {
                return incomplete(buf.len(), max);
            };
            let total = header as u64 + payload;
            if self.pos as u64 + total > max as u64 {
                return Err(ProtocolError::TooLarge {
                    what: "message",
                    limit: max,
                });
            }
            // Bounded by `max` just above, so it fits.
            let total = total as usize;
            if rest.len() < total {
                return incomplete(buf.len(), max);
            }
            self.pos += total;
            if let Some(open) = self.pending.last_mut() {
                *open -= 1;
            }
            if children > 0 {
                if self.pending.len() > MAX_NESTING {
                    return Err(garbage(format!(
                        "msgpack nested deeper than {MAX_NESTING} levels"
                    )));
                }
                self.pending.push(children);
            }
        }
    }
}

fn incomplete(buffered: usize, max: usize) -> Result<Option<usize>, ProtocolError> {
    if buffered > max {
        Err(ProtocolError::TooLarge {
            what: "message",
            limit: max,
        })
    } else {
        Ok(None)
    }
}

/// Limits that apply while decoding one message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest decompressed CompressedPackedForward payload.
    pub(crate) max_decompressed_bytes: usize,
}

/// One decoded client message.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A msgpack nil, which the spec allows as a heartbeat; nothing to do.
    Heartbeat,
    /// A chunk of events, in any of the four modes.
    Events(Chunk),
}

/// A decoded event message and what the server owes the client for it.
#[derive(Debug)]
pub(crate) struct Chunk {
    /// The events, ready for the handler.
    pub(crate) batch: ForwardBatch,
    /// The encoded `{"ack": chunk}` reply, when the client asked for one.
    pub(crate) ack: Option<Vec<u8>>,
    /// Fluent Bit's `fluent_signal` when it is not logs (1 metrics, 2 traces): the payload
    /// was not decoded.
    pub(crate) foreign_signal: Option<u64>,
    /// Why the first dropped entry was dropped, for the debug log.
    pub(crate) first_drop: Option<&'static str>,
}

/// Decodes one complete message (as delimited by [`FrameScanner`]).
pub(crate) fn decode_message(frame: &[u8], limits: Limits) -> Result<Decoded, ProtocolError> {
    let value = read_one(frame)?;
    let items = match value {
        ValueRef::Nil => return Ok(Decoded::Heartbeat),
        ValueRef::Array(items) => items,
        other => {
            return Err(garbage(format!(
                "expected a msgpack array, got {}",
                kind(&other)
            )));
        }
    };
    if !(2..=4).contains(&items.len()) {
        return Err(garbage(format!(
            "expected an array of 2 to 4 items, got {}",
            items.len()
        )));
    }
    let tag = match &items[0] {
        ValueRef::String(tag) => lossy(tag.as_bytes()),
        ValueRef::Binary(tag) => lossy(tag),
        other => return Err(garbage(format!("tag is {}, not a string", kind(other)))),
    };
    let mut events = Events::new(tag);
    let options = if let ValueRef::Array(entries) = &items[1] {
        // Forward mode: [tag, [[time, record], ...], option?].
        let options = forward_options(&items)?;
        if options.foreign_signal().is_none() {
            for entry in entries {
                events.push_entry(entry);
            }
            options.check_size(&events.batch, None);
        }
        options
    } else if let Some(payload) = packed_payload(&items[1]) {
        // (Compressed)PackedForward mode: [tag, msgpack stream of entries, option?].
        let options = forward_options(&items)?;
        if options.foreign_signal().is_none() {
            let inflated;
            let mut rest = if options.gzip {
                inflated = gunzip(payload, limits.max_decompressed_bytes)?;
                &inflated[..]
            } else {
                payload
            };
            while !rest.is_empty() {
                let entry = rmpv::decode::read_value_ref_with_max_depth(&mut rest, MAX_RMPV_DEPTH)
                    .map_err(|error| {
                        garbage(format!("packed entries are not a msgpack stream: {error}"))
                    })?;
                events.push_entry(&entry);
            }
            options.check_size(&events.batch, Some(payload.len()));
        }
        options
    } else {
        // Message mode: [tag, time, record, option?].
        if items.len() < 3 {
            return Err(garbage("a Message-mode array needs a time and a record"));
        }
        let options = Options::parse(items.get(3))?;
        if options.foreign_signal().is_none() {
            events.push_event(&items[1], &items[2]);
        }
        options
    };
    let ack = options.chunk.map(encode_ack);
    let foreign_signal = options.foreign_signal();
    Ok(Decoded::Events(Chunk {
        batch: events.batch,
        ack,
        foreign_signal,
        first_drop: events.first_drop,
    }))
}

/// The bytes of a PackedForward payload, which clients send as bin or (Fluentd) as str.
fn packed_payload<'v>(value: &'v ValueRef<'v>) -> Option<&'v [u8]> {
    match value {
        ValueRef::Binary(bytes) => Some(bytes),
        ValueRef::String(text) => Some(text.as_bytes()),
        _ => None,
    }
}

/// Options of a Forward or PackedForward message, which must not have a fourth item.
fn forward_options<'v>(items: &'v [ValueRef<'v>]) -> Result<Options<'v>, ProtocolError> {
    if items.len() > 3 {
        return Err(garbage("a Forward-mode array has at most 3 items"));
    }
    Options::parse(items.get(2))
}

/// The option map of an event message.
#[derive(Default)]
struct Options<'v> {
    chunk: Option<&'v ValueRef<'v>>,
    size: Option<u64>,
    gzip: bool,
    signal: u64,
}

impl<'v> Options<'v> {
    fn parse(value: Option<&'v ValueRef<'v>>) -> Result<Self, ProtocolError> {
        let pairs = match value {
            None | Some(ValueRef::Nil) => return Ok(Options::default()),
            Some(ValueRef::Map(pairs)) => pairs,
            Some(other) => {
                return Err(garbage(format!("option is {}, not a map", kind(other))));
            }
        };
        let mut options = Options::default();
        for (key, value) in pairs {
            let key = match key {
                ValueRef::String(key) => key.as_bytes(),
                _ => continue,
            };
            match key {
                b"chunk" if !matches!(value, ValueRef::Nil) => options.chunk = Some(value),
                b"size" => options.size = value.as_u64(),
                b"compressed" => {
                    options.gzip = match value {
                        ValueRef::String(name) if name.as_bytes() == b"gzip" => true,
                        ValueRef::String(name) if name.as_bytes() == b"text" => false,
                        ValueRef::Nil => false,
                        other => {
                            return Err(garbage(format!(
                                "unsupported compression {}",
                                to_json(other)
                            )));
                        }
                    }
                }
                b"fluent_signal" => {
                    options.signal = value.as_u64().ok_or_else(|| {
                        garbage(format!("fluent_signal is {}, not a number", kind(value)))
                    })?;
                }
                _ => {}
            }
        }
        Ok(options)
    }

    /// Fluent Bit's signal type when it is not logs (0).
    fn foreign_signal(&self) -> Option<u64> {
        (self.signal != 0).then_some(self.signal)
    }

    /// The spec's `size` is the number of events, but fluent-logger-node sends the payload's
    /// byte length: only a value matching neither is worth a debug line.
    fn check_size(&self, batch: &ForwardBatch, payload_bytes: Option<usize>) {
        let Some(size) = self.size else {
            return;
        };
        let entries = (batch.records.len() + batch.dropped) as u64;
        if size != entries && payload_bytes.is_none_or(|bytes| size != bytes as u64) {
            debug!(
                tag = %batch.tag,
                size,
                entries,
                "A Forward chunk's size option matches neither its entry count nor its byte length."
            );
        }
    }
}

/// Accumulates the events of one message.
struct Events {
    batch: ForwardBatch,
    now: Option<ForwardTime>,
    first_drop: Option<&'static str>,
}

impl Events {
    fn new(tag: String) -> Self {
        Events {
            batch: ForwardBatch {
                tag,
                records: Vec::new(),
                dropped: 0,
            },
            now: None,
            first_drop: None,
        }
    }

    /// Adds a Forward/PackedForward entry: `[time, record]` or `[[time, metadata], record]`.
    fn push_entry(&mut self, entry: &ValueRef<'_>) {
        match entry {
            ValueRef::Array(pair) if pair.len() == 2 => {
                let time = match &pair[0] {
                    ValueRef::Array(time_and_metadata) if time_and_metadata.len() == 2 => {
                        &time_and_metadata[0]
                    }
                    time => time,
                };
                self.push_event(time, &pair[1]);
            }
            _ => self.drop_entry("entry is not a [time, record] array"),
        }
    }

    fn push_event(&mut self, time: &ValueRef<'_>, record: &ValueRef<'_>) {
        let time = match event_time(time, &mut self.now) {
            Ok(time) => time,
            Err(reason) => return self.drop_entry(reason),
        };
        match record {
            ValueRef::Map(pairs) => self.batch.records.push(ForwardRecord {
                time,
                record: Json::Object(map_to_json(pairs)),
            }),
            _ => self.drop_entry("record is not a map"),
        }
    }

    fn drop_entry(&mut self, reason: &'static str) {
        self.batch.dropped += 1;
        self.first_drop.get_or_insert(reason);
    }
}

/// Reads exactly one msgpack value from `frame`.
pub(crate) fn read_one(frame: &[u8]) -> Result<ValueRef<'_>, ProtocolError> {
    let mut rest = frame;
    let value = rmpv::decode::read_value_ref_with_max_depth(&mut rest, MAX_RMPV_DEPTH)
        .map_err(|error| garbage(format!("not msgpack: {error}")))?;
    if !rest.is_empty() {
        return Err(garbage("trailing bytes after a msgpack value"));
    }
    Ok(value)
}

/// One value of a bare msgpack stream (see [`read_entries`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StreamEntry {
    /// A map, alone or as the record of a `[time, map]` or `[[time, metadata], map]`
    /// entry (the time is not read: CloudTrail records carry their own).
    Record(Json),
    /// Any other value; says what it is.
    Other(String),
}

/// The values of a bare msgpack stream, and where it stopped decoding, if it did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entries {
    /// Each value, in order.
    pub(crate) entries: Vec<StreamEntry>,
    /// The byte offset at which the stream stopped being msgpack, and why.
    pub(crate) broken: Option<(usize, String)>,
}

/// Reads a stream of concatenated msgpack values outside the Forward protocol: what
/// Fluent Bit's `out_http` posts with `Format msgpack` (its chunk, one entry per record).
/// Each map, or the record of each Forward-style entry, is converted with [`to_json`].
pub(crate) fn read_entries(bytes: &[u8]) -> Entries {
    let mut rest = bytes;
    let mut entries = Vec::new();
    while !rest.is_empty() {
        let offset = bytes.len() - rest.len();
        let value = match rmpv::decode::read_value_ref_with_max_depth(&mut rest, MAX_RMPV_DEPTH) {
            Ok(value) => value,
            Err(error) => {
                return Entries {
                    entries,
                    broken: Some((offset, error.to_string())),
                };
            }
        };
        let record = match &value {
            ValueRef::Map(pairs) => Some(pairs),
            ValueRef::Array(pair) if pair.len() == 2 && is_entry_time(&pair[0]) => match &pair[1] {
                ValueRef::Map(pairs) => Some(pairs),
                _ => None,
            },
            _ => None,
        };
        entries.push(match record {
            Some(pairs) => StreamEntry::Record(Json::Object(map_to_json(pairs))),
            None => StreamEntry::Other(match &value {
                ValueRef::Array(items) => format!("an array of {} items", items.len()),
                other => kind(other).to_string(),
            }),
        });
    }
    Entries {
        entries,
        broken: None,
    }
}

/// Whether a value can be the time of an entry: seconds, an EventTime, nil, or Fluent
/// Bit's `[time, metadata]`.
fn is_entry_time(value: &ValueRef<'_>) -> bool {
    match value {
        ValueRef::Integer(_)
        | ValueRef::F32(_)
        | ValueRef::F64(_)
        | ValueRef::Nil
        | ValueRef::Ext(EVENT_TIME_EXT, _) => true,
        ValueRef::Array(pair) => pair.len() == 2 && is_entry_time(&pair[0]),
        _ => false,
    }
}

/// Converts a Fluent time (integer seconds, EventTime, float, or nil for "now").
fn event_time(
    value: &ValueRef<'_>,
    now: &mut Option<ForwardTime>,
) -> Result<ForwardTime, &'static str> {
    match value {
        ValueRef::Integer(seconds) => seconds
            .as_u64()
            .map(|seconds| ForwardTime { seconds, nanos: 0 })
            .ok_or("time is negative"),
        ValueRef::F32(seconds) => float_time(f64::from(*seconds)),
        ValueRef::F64(seconds) => float_time(*seconds),
        ValueRef::Ext(EVENT_TIME_EXT, bytes) => {
            decode_event_time(bytes).ok_or("EventTime is not 8 bytes")
        }
        ValueRef::Nil => Ok(*now.get_or_insert_with(current_time)),
        _ => Err("time is not a number or an EventTime"),
    }
}

/// Decodes the 8-byte EventTime payload: big-endian u32 seconds, then u32 nanoseconds.
fn decode_event_time(bytes: &[u8]) -> Option<ForwardTime> {
    let bytes: &[u8; 8] = bytes.try_into().ok()?;
    let seconds = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let nanos = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    Some(ForwardTime {
        seconds: u64::from(seconds) + u64::from(nanos / 1_000_000_000),
        nanos: nanos % 1_000_000_000,
    })
}

fn float_time(seconds: f64) -> Result<ForwardTime, &'static str> {
    if !seconds.is_finite() || seconds < 0.0 || seconds >= u64::MAX as f64 {
        return Err("time is a float out of range");
    }
    let whole = seconds.trunc();
    let nanos = ((seconds - whole) * 1e9).round() as u32;
    let whole = whole as u64;
    Ok(if nanos >= 1_000_000_000 {
        ForwardTime {
            seconds: whole + 1,
            nanos: nanos - 1_000_000_000,
        }
    } else {
        ForwardTime {
            seconds: whole,
            nanos,
        }
    })
}

fn current_time() -> ForwardTime {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    ForwardTime {
        seconds: since.as_secs(),
        nanos: since.subsec_nanos(),
    }
}

/// Converts a msgpack value to JSON: strings and binaries as (lossy) UTF-8, EventTime as
/// fractional seconds, other ext types as null, non-finite floats as null.
pub(crate) fn to_json(value: &ValueRef<'_>) -> Json {
    match value {
        ValueRef::Nil => Json::Null,
        ValueRef::Boolean(flag) => Json::Bool(*flag),
        ValueRef::Integer(number) => {
            if let Some(unsigned) = number.as_u64() {
                Json::from(unsigned)
            } else if let Some(signed) = number.as_i64() {
                Json::from(signed)
            } else {
                Json::Null
            }
        }
        ValueRef::F32(number) => float_json(f64::from(*number)),
        ValueRef::F64(number) => float_json(*number),
        ValueRef::String(text) => Json::String(lossy(text.as_bytes())),
        ValueRef::Binary(bytes) => Json::String(lossy(bytes)),
        ValueRef::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        ValueRef::Map(pairs) => Json::Object(map_to_json(pairs)),
        ValueRef::Ext(EVENT_TIME_EXT, bytes) => match decode_event_time(bytes) {
            Some(time) => float_json(time.seconds as f64 + f64::from(time.nanos) / 1e9),
            None => Json::Null,
        },
        ValueRef::Ext(..) => Json::Null,
    }
}

fn map_to_json(pairs: &[(ValueRef<'_>, ValueRef<'_>)]) -> Map<String, Json> {
    let mut map = Map::new();
    for (key, value) in pairs {
        let key = match key {
            ValueRef::String(text) => lossy(text.as_bytes()),
            ValueRef::Binary(bytes) => lossy(bytes),
            other => to_json(other).to_string(),
        };
        map.insert(key, to_json(value));
    }
    map
}

fn float_json(number: f64) -> Json {
    serde_json::Number::from_f64(number).map_or(Json::Null, Json::Number)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn kind(value: &ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Nil => "nil",
        ValueRef::Boolean(_) => "a boolean",
        ValueRef::Integer(_) => "an integer",
        ValueRef::F32(_) | ValueRef::F64(_) => "a float",
        ValueRef::String(_) => "a string",
        ValueRef::Binary(_) => "a binary",
        ValueRef::Array(_) => "an array",
        ValueRef::Map(_) => "a map",
        ValueRef::Ext(..) => "an ext value",
    }
}

/// Inflates one or more concatenated gzip members, refusing more than `limit` bytes out.
pub(crate) fn gunzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::new();
    if bytes.is_empty() {
        return Ok(out);
    }
    MultiGzDecoder::new(bytes)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|error| garbage(format!("the gzip payload does not inflate: {error}")))?;
    if out.len() > limit {
        return Err(ProtocolError::TooLarge {
            what: "decompressed payload",
            limit,
        });
    }
    Ok(out)
}

fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).expect("writing msgpack to a Vec cannot fail");
    out
}

/// Encodes the ack reply: a one-entry map `{"ack": chunk}` echoing the client's chunk id.
pub(crate) fn encode_ack(chunk: &ValueRef<'_>) -> Vec<u8> {
    let mut out = vec![0x81, 0xa3, b'a', b'c', b'k'];
    rmpv::encode::write_value_ref(&mut out, chunk).expect("writing msgpack to a Vec cannot fail");
    out
}

/// Encodes HELO: `["HELO", {"nonce": <bin>, "auth": "", "keepalive": true}]`; the empty
/// `auth` tells the client that no user/password authentication is required.
pub(crate) fn encode_helo(nonce: &[u8]) -> Vec<u8> {
    encode(&Value::Array(vec![
        Value::from("HELO"),
        Value::Map(vec![
            (Value::from("nonce"), Value::Binary(nonce.to_vec())),
            (Value::from("auth"), Value::from("")),
            (Value::from("keepalive"), Value::Boolean(true)),
        ]),
    ]))
}

/// Encodes PONG: `["PONG", accepted, reason, self_hostname, digest]`.
pub(crate) fn encode_pong(
    accepted: bool,
    reason: &str,
    self_hostname: &str,
    digest: &str,
) -> Vec<u8> {
    encode(&Value::Array(vec![
        Value::from("PONG"),
        Value::Boolean(accepted),
        Value::from(reason),
        Value::from(self_hostname),
        Value::from(digest),
    ]))
}

/// Lower-case hex SHA-512 of the concatenated parts, as the handshake digests are defined.
pub(crate) fn sha512_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha512::new();
    for part in parts {
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The server's answer to the client's first message when a shared key is configured.
#[derive(Debug)]
pub(crate) struct PingVerdict {
    /// The encoded PONG to send.
    pub(crate) pong: Vec<u8>,
    /// Why the client was refused, or `None` when it authenticated.
    pub(crate) refusal: Option<String>,
    /// The hostname the client announced, if it got that far.
    pub(crate) client_hostname: Option<String>,
}

/// Checks a PING (`["PING", client_hostname, salt, digest, username, password]`) against
/// the nonce sent in HELO and the shared key, and prepares the PONG.
pub(crate) fn answer_ping(
    frame: &[u8],
    nonce: &[u8],
    shared_key: &str,
    self_hostname: &str,
) -> PingVerdict {
    let refuse = |reason: &str, client_hostname: Option<String>| PingVerdict {
        pong: encode_pong(false, reason, self_hostname, ""),
        refusal: Some(reason.to_owned()),
        client_hostname,
    };
    let Ok(ValueRef::Array(items)) = read_one(frame) else {
        return refuse("expected a PING message", None);
    };
    let text = |value: &ValueRef<'_>| match value {
        ValueRef::String(text) => Some(text.as_bytes().to_vec()),
        ValueRef::Binary(bytes) => Some(bytes.to_vec()),
        _ => None,
    };
    let (Some(ping), Some(hostname), Some(salt), Some(digest)) = (
        items.first().and_then(text),
        items.get(1).and_then(text),
        items.get(2).and_then(text),
        items.get(3).and_then(text),
    ) else {
        return refuse("expected a PING message", None);
    };
    if ping != b"PING" || items.len() != 6 {
        return refuse("expected a PING message", None);
    }
    let client_hostname = Some(lossy(&hostname));
    if hostname == self_hostname.as_bytes() {
        return refuse(
            "same hostname between input and output: invalid configuration",
            client_hostname,
        );
    }
    let expected = sha512_hex(&[&salt, &hostname, nonce, shared_key.as_bytes()]);
    if !constant_time_eq(expected.as_bytes(), &digest.to_ascii_lowercase()) {
        return refuse("shared key mismatch", client_hostname);
    }
    let proof = sha512_hex(&[
        &salt,
        self_hostname.as_bytes(),
        nonce,
        shared_key.as_bytes(),
    ]);
    PingVerdict {
        pong: encode_pong(true, "", self_hostname, &proof),
        refusal: None,
        client_hostname,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
