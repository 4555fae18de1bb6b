//! The pieces of a Forward-mode message: EventTime, records as MessagePack, chunk ids.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rmpv::Value as Pack;

use crate::sinks::retry::random_u64;
/// An EventTime: ext type 0, big-endian seconds then nanoseconds.
pub(super) fn event_time(secs: u32, nanos: u32) -> Pack {
    let mut data = Vec::with_capacity(8);
    data.extend_from_slice(&secs.to_be_bytes());
    data.extend_from_slice(&nanos.to_be_bytes());
    Pack::Ext(0, data)
}

/// A JSON value as MessagePack.
pub(super) fn to_pack(value: serde_json::Value) -> Pack {
    match value {
        serde_json::Value::Null => Pack::Nil,
        serde_json::Value::Bool(b) => Pack::Boolean(b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Pack::from(u)
            } else if let Some(i) = n.as_i64() {
                Pack::from(i)
            } else {
                Pack::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Pack::from(s),
        serde_json::Value::Array(items) => Pack::Array(items.into_iter().map(to_pack).collect()),
        serde_json::Value::Object(map) => Pack::Map(
            map.into_iter()
                .map(|(k, v)| (Pack::from(k), to_pack(v)))
                .collect(),
        ),
    }
}

/// A unique chunk id: 16 random bytes in base64.
pub(super) fn chunk_id() -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&random_u64().to_le_bytes());
    STANDARD.encode(bytes)
}
