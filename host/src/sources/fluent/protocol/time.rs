//! Fluent event times: integer seconds, EventTime (ext type 0: big-endian u32 seconds,
//! u32 nanoseconds), a float, or nil for the arrival time, as a [`ForwardTime`]; a time
//! that is none of these is a reason to drop its entry.

use std::time::{SystemTime, UNIX_EPOCH};

use rmpv::ValueRef;

use super::EVENT_TIME_EXT;
use crate::sources::fluent::ForwardTime;

/// Converts a Fluent time (integer seconds, EventTime, float, or nil for "now").
pub(super) fn event_time(
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
pub(super) fn decode_event_time(bytes: &[u8]) -> Option<ForwardTime> {
    let bytes: &[u8; 8] = bytes.try_into().ok()?;
    let seconds = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let nanos = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    Some(ForwardTime {
        seconds: u64::from(seconds) + u64::from(nanos / 1_000_000_000),
        nanos: nanos % 1_000_000_000,
    })
}

pub(super) fn float_time(seconds: f64) -> Result<ForwardTime, &'static str> {
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

pub(super) fn current_time() -> ForwardTime {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    ForwardTime {
        seconds: since.as_secs(),
        nanos: since.subsec_nanos(),
    }
}
