//! The body of an events request, into [`Collected`]: JSON in any of its shapes through the
//! intake, or msgpack (Fluent Bit's `out_http` default) through the Forward source's
//! converter; and which bodies count as undecodable (a 400) rather than as records that
//! are not CloudTrail (counted skips in a 200).

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};

use super::Outcome;
use crate::intake::{Location, ReadOptions, Skip, SkipReason, Visitor, read_stream, visit_value};
use crate::sources::Collected;
use crate::sources::budget::Budget;
use crate::sources::fluent::{ProtocolError, StreamEntry, gunzip, read_entries};

/// Whether the request says its body is msgpack (`application/msgpack`, or the older
/// `application/x-msgpack`); every other type is read as JSON, whatever it says.
pub(super) fn is_msgpack(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| {
            matches!(
                v.as_str(),
                "application/msgpack" | "application/x-msgpack" | "application/vnd.msgpack"
            )
        })
}

/// Reads an events body into `collected`.
///
/// # Errors
/// The refusal for a body that does not decode at all: broken compression, not JSON,
/// NDJSON or msgpack anywhere (one whose records are merely not CloudTrail is read, as
/// counted skips).
pub(crate) fn decode(
    body: &[u8],
    msgpack: bool,
    source: Arc<str>,
    read: ReadOptions,
    limit: usize,
    budget: &Budget,
    collected: &mut Collected,
) -> Result<(), Outcome> {
    crate::test_hook::point("decode");
    if msgpack {
        return decode_msgpack(body, source, limit, budget, collected);
    }
    if let Err(error) = read_stream(body, source, read, collected) {
        return Err(Outcome::refused(
            StatusCode::BAD_REQUEST,
            format!("failed to read the body: {error:#}"),
        ));
    }
    // Invalid JSON inside a well-formed body (a wrapper field holding text) is the
    // records' problem, not the body's.
    let nothing_parsed = collected.records.is_empty()
        && collected.filtered == 0
        && !collected.skips.is_empty()
        && collected
            .skips
            .iter()
            .all(|s| s.reason == SkipReason::InvalidJson);
    if nothing_parsed && !holds_json(body, limit, budget) {
        let first = &collected.skips[0];
        return Err(Outcome::refused(
            StatusCode::BAD_REQUEST,
            format!(
                "the body is not JSON, NDJSON or msgpack: {} ({}){}",
                first.detail,
                first.reason.as_str(),
                msgpack_hint(body)
            ),
        ));
    }
    Ok(())
}

/// Whether some top-level value of the body (gunzipped by its magic bytes) is JSON: the
/// body as a whole, its first value, or one of its lines.
fn holds_json(body: &[u8], limit: usize, budget: &Budget) -> bool {
    let inflated;
    let bytes = if body.starts_with(&[0x1f, 0x8b]) {
        match gunzip(body, limit, budget, "http") {
            Ok(bytes) => {
                inflated = bytes;
                &inflated.bytes[..]
            }
            Err(_) => return false,
        }
    } else {
        body
    };
    let parses = |bytes: &[u8]| {
        serde_json::Deserializer::from_slice(bytes)
            .into_iter::<serde::de::IgnoredAny>()
            .next()
            .is_some_and(|value| value.is_ok())
    };
    parses(bytes) || bytes.split(|&b| b == b'\n').any(parses)
}

/// A hint for a body labelled JSON that is msgpack records.
fn msgpack_hint(body: &[u8]) -> &'static str {
    let container = matches!(body.first(), Some(0x80..=0x9f | 0xdc..=0xdf));
    if container
        && read_entries(body)
            .entries
            .iter()
            .any(|e| matches!(e, StreamEntry::Record(_)))
    {
        "; it is msgpack: send it with Content-Type: application/msgpack"
    } else {
        ""
    }
}

/// Reads a msgpack stream: each map, or the map of each `[time, map]` or
/// `[[time, metadata], map]` entry, is a record (unwrapped like a JSON one); other values
/// are skipped as not objects, and a stream that breaks part-way keeps what came before.
/// Gzip is inflated by its magic bytes when no `Content-Encoding` said so.
fn decode_msgpack(
    body: &[u8],
    source: Arc<str>,
    limit: usize,
    budget: &Budget,
    collected: &mut Collected,
) -> Result<(), Outcome> {
    let inflated;
    let bytes = if body.starts_with(&[0x1f, 0x8b]) {
        inflated = gunzip(body, limit, budget, "http").map_err(|error| match error {
            ProtocolError::TooLarge { .. } => Outcome::refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body over max_body_bytes: {error}"),
            ),
            ProtocolError::Garbage(why) => Outcome::refused(StatusCode::BAD_REQUEST, why),
            ProtocolError::OverBudget(over) => Outcome::over_budget(over),
        })?;
        &inflated.bytes[..]
    } else {
        body
    };
    let read = read_entries(bytes);
    if !read
        .entries
        .iter()
        .any(|e| matches!(e, StreamEntry::Record(_)))
    {
        let looks_like_json = matches!(
            bytes.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[')
        );
        let hint = if looks_like_json {
            "; it looks like JSON: send it with Content-Type: application/json"
        } else {
            ""
        };
        let why = match (read.entries.first(), &read.broken) {
            (Some(StreamEntry::Other(what)), _) => Some(format!(
                "the body is labelled msgpack but holds no map or [time, map] entry (its first \
                 value is {what}){hint}"
            )),
            (_, Some((_, error))) => Some(format!(
                "the body is labelled msgpack but is not msgpack: {error}{hint}"
            )),
            _ => None,
        };
        if let Some(why) = why {
            return Err(Outcome::refused(StatusCode::BAD_REQUEST, why));
        }
    }
    let at = |index: usize| Location {
        source: source.clone(),
        line: None,
        record: Some(index as u64 + 1),
    };
    let count = read.entries.len();
    for (index, entry) in read.entries.into_iter().enumerate() {
        match entry {
            StreamEntry::Record(record) => {
                // Collecting never fails.
                let _ = visit_value(record, &at(index), collected);
            }
            StreamEntry::Other(what) => collected.skip(Skip {
                reason: SkipReason::NotAnObject,
                detail: format!("msgpack {what} instead of a map or [time, map] entry"),
                location: at(index),
            }),
        }
    }
    if let Some((offset, error)) = read.broken {
        collected.skip(Skip {
            reason: SkipReason::InvalidJson,
            detail: format!("msgpack breaks at byte {offset}: {error}"),
            location: at(count),
        });
    } else if count == 0 {
        collected.skip(Skip {
            reason: SkipReason::EmptyInput,
            detail: "an empty msgpack body".into(),
            location: Location {
                source,
                line: None,
                record: None,
            },
        });
    }
    Ok(())
}
