//! Client event messages: Message, Forward, PackedForward and CompressedPackedForward
//! decoded into a [`ForwardBatch`] with the option map (`chunk`, `size`, `compressed`,
//! `fluent_signal`) applied, malformed entries dropped and counted, and the ack reply
//! encoded. Sizes are bytes; times go through [`event_time`].

use rmpv::ValueRef;
use serde_json::Value as Json;
use tracing::debug;

use super::gzip::gunzip;
use super::json::{kind, lossy, map_to_json, to_json};
use super::time::event_time;
use super::{MAX_RMPV_DEPTH, ProtocolError, garbage, read_one};
use crate::sources::budget::{Budget, Reservation};
use crate::sources::fluent::{ForwardBatch, ForwardRecord, ForwardTime};

/// Limits that apply while decoding one message.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Largest decompressed CompressedPackedForward payload.
    pub(crate) max_decompressed_bytes: usize,
    /// The sources' memory budget: the inflated payload and the parsed events are
    /// covered by it.
    pub(crate) budget: Budget,
}

/// Parsed events are counted as this many times the msgpack bytes they came from.
const PARSED_PER_MSGPACK_BYTE: usize = 2;

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
    /// The share of the memory budget the events hold until they are handed over.
    pub(crate) held: Reservation,
}

/// Decodes one complete message (as delimited by [`FrameScanner`]).
pub(crate) fn decode_message(frame: &[u8], limits: &Limits) -> Result<Decoded, ProtocolError> {
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
    let mut held = limits.budget.reservation("forward");
    let mut msgpack_bytes = frame.len();
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
                inflated = gunzip(
                    payload,
                    limits.max_decompressed_bytes,
                    &limits.budget,
                    "forward",
                )?;
                msgpack_bytes = inflated.bytes.len();
                &inflated.bytes[..]
            } else {
                payload
            };
            held.cover(PARSED_PER_MSGPACK_BYTE * msgpack_bytes)
                .map_err(ProtocolError::OverBudget)?;
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
    held.cover(PARSED_PER_MSGPACK_BYTE * msgpack_bytes)
        .map_err(ProtocolError::OverBudget)?;
    let ack = options.chunk.map(encode_ack);
    let foreign_signal = options.foreign_signal();
    Ok(Decoded::Events(Chunk {
        batch: events.batch,
        ack,
        foreign_signal,
        first_drop: events.first_drop,
        held,
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

/// Encodes the ack reply: a one-entry map `{"ack": chunk}` echoing the client's chunk id.
pub(crate) fn encode_ack(chunk: &ValueRef<'_>) -> Vec<u8> {
    let mut out = vec![0x81, 0xa3, b'a', b'c', b'k'];
    rmpv::encode::write_value_ref(&mut out, chunk).expect("writing msgpack to a Vec cannot fail");
    out
}
