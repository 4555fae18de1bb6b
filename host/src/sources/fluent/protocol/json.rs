//! msgpack values as JSON: strings and binaries as lossy UTF-8, EventTime as fractional
//! seconds, other ext types and non-finite floats as null, map keys as text; and what
//! kind of value an error message names.

use rmpv::ValueRef;
use serde_json::{Map, Value as Json};

use super::EVENT_TIME_EXT;
use super::time::decode_event_time;

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

pub(super) fn map_to_json(pairs: &[(ValueRef<'_>, ValueRef<'_>)]) -> Map<String, Json> {
    let mut map = Map::new();
    for (key, value) in pairs {
        let key = match key {
            ValueRef::String(text) => lossy(text.as_bytes()),
            ValueRef::Binary(bytes) => lossy(bytes),
            // A container as a key is named by its kind, not written out: its own keys
            // would be escaped again at every level, and a few hundred bytes of nested
            // maps would become gigabytes of text (found by the forward_stream target).
            ValueRef::Array(_) | ValueRef::Map(_) | ValueRef::Ext(..) => kind(key).to_string(),
            scalar => to_json(scalar).to_string(),
        };
        map.insert(key, to_json(value));
    }
    map
}

pub(super) fn float_json(number: f64) -> Json {
    serde_json::Number::from_f64(number).map_or(Json::Null, Json::Number)
}

pub(super) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(super) fn kind(value: &ValueRef<'_>) -> &'static str {
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
