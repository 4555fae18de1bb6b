//! The Forward protocol's wire format: finding where one msgpack message ends in a byte
//! stream (`frame`), decoding the four event modes into a [`ForwardBatch`](super::ForwardBatch)
//! and encoding acks (`message`), times (`time`), records as JSON (`json`), gzip
//! payloads (`gzip`), bare msgpack streams (`stream`), and the HELO/PING/PONG
//! handshake with the shared-key digests (`handshake`). This file has the errors and
//! the limits they share.
//!
//! Everything here is synchronous and socket-free so that it can be unit-tested byte for byte
//! and, for large messages, run on a blocking thread.

mod frame;
mod gzip;
mod handshake;
mod json;
mod message;
mod stream;
mod time;

use std::fmt;

use rmpv::ValueRef;

use crate::sources::budget::OverBudget;

pub(crate) use frame::FrameScanner;
pub(crate) use gzip::gunzip;
pub(crate) use handshake::{answer_ping, encode_helo, sha512_hex};
#[cfg(test)]
pub(crate) use json::to_json;
#[cfg(test)]
pub(crate) use message::encode_ack;
pub(crate) use message::{Decoded, Limits, decode_message};
pub(crate) use stream::{StreamEntry, read_entries};

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
    /// The sources' memory budget could not cover it; the sender should retry later.
    OverBudget(OverBudget),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Garbage(reason) => f.write_str(reason),
            ProtocolError::TooLarge { what, limit } => {
                write!(f, "{what} is larger than {limit} bytes")
            }
            ProtocolError::OverBudget(over) => over.fmt(f),
        }
    }
}

fn garbage(reason: impl Into<String>) -> ProtocolError {
    ProtocolError::Garbage(reason.into())
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
