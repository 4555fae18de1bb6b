//! Bare msgpack streams outside the Forward protocol (Fluent Bit's `out_http` with
//! `Format msgpack`): each value a record, a Forward-style entry, or something else,
//! and the byte offset where the stream stopped being msgpack.

use rmpv::ValueRef;
use serde_json::Value as Json;

use super::json::{kind, map_to_json};
use super::{EVENT_TIME_EXT, MAX_RMPV_DEPTH};

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
