//! Finding the audit-log records inside one JSON value, whichever road it came by.
//!
//! | shape | recognised by | records |
//! |---|---|---|
//! | delivery file (S3), Azure Event Hubs / storage export, Cloud Logging `entries.list` | `Records`, `records` or `entries` array | each element |
//! | EventBridge event | `detail-type` + `detail` object | `detail` |
//! | an audit-log record | see [`super::audit`]: CloudTrail's `eventSource`/`eventName`, Google's `protoPayload`, Azure's `operationName` | itself (CloudTrail Insights events skipped) |
//! | CloudWatch Logs subscription | `messageType` + `logEvents` | each `logEvents[].message` of a `DATA_MESSAGE` |
//! | the same, as a Lambda gets it | `awslogs.data` (base64 of gzip) | as above |
//! | `aws cloudtrail lookup-events` | `Events` array | each `Events[].CloudTrailEvent`, oldest first |
//! | Pub/Sub push (a Cloud Logging sink's topic pushed to an HTTP endpoint) | `message` object with `data` text | `message.data` (base64 of the entry) |
//! | CloudTrail digest file | `digestStartTime` + `logFiles` | none (skipped) |
//! | a shipper's event | a [`WRAPPER_FIELDS`] field holding any of the above | those |
//!
//! A field named by `record_field` is taken first, before any of these. Wrapped values
//! may be objects or JSON text; unwrapping stops [`MAX_NESTING`] levels down.
//!
//! `lookup-events` lists the newest events first, and a script that pages through it
//! appends older pages after newer ones. Read in that order, every key would look
//! first seen at its latest sighting and no baseline would ever have learned long
//! enough, so the events of a page (and of all pages in one stream, see
//! [`super::read_stream`]) are handed over in event-time order.

use std::io::Read;

use anyhow::Result;
use base64::Engine;
use flate2::read::MultiGzDecoder;
use serde_json::{Map, Value};

use super::{Location, Skip, SkipReason, Visitor};

/// Fields that wrap a record in shippers' events, tried in this order when an object is
/// not CloudTrail itself: `message` (Vector's file, `aws_s3` and syslog sources,
/// Fluentd), `log` (Fluent Bit's tail without a parser, Docker), `CloudTrailEvent`
/// (`lookup-events`), `detail` (EventBridge without `detail-type`), `event` (Splunk
/// HEC), `body` (OpenTelemetry logs).
pub const WRAPPER_FIELDS: [&str; 6] = [
    "message",
    "log",
    "CloudTrailEvent",
    "detail",
    "event",
    "body",
];

/// How many wrappers deep a record may sit (a Firehose record holding an envelope
/// holding a record is two).
const MAX_NESTING: u32 = 8;

/// Largest inflated `awslogs.data` (a Lambda event is at most 6 MB).
const MAX_INFLATED_BYTES: u64 = 64 << 20;

/// Hands the records inside one JSON value to the visitor (see the module table);
/// returns how many it found. What holds none is reported as a skip.
///
/// # Errors
/// The visitor failed.
pub fn visit_value(value: Value, location: &Location, visitor: &mut dyn Visitor) -> Result<u64> {
    visit(value, location, visitor, 0)
}

fn visit(value: Value, at: &Location, visitor: &mut dyn Visitor, depth: u32) -> Result<u64> {
    if depth > MAX_NESTING {
        skip(
            visitor,
            SkipReason::NotCloudTrail,
            format!("a value wrapped more than {MAX_NESTING} levels deep"),
            at,
        );
        return Ok(0);
    }
    match value {
        Value::Object(map) => visit_object(map, at, visitor, depth),
        Value::Array(items) => visit_elements(items, at, visitor, depth),
        other => {
            let what = format!("a JSON {} instead of a record", kind(&other));
            skip(visitor, SkipReason::NotAnObject, what, at);
            Ok(0)
        }
    }
}

fn visit_object(
    mut map: Map<String, Value>,
    at: &Location,
    visitor: &mut dyn Visitor,
    depth: u32,
) -> Result<u64> {
    if let Some(field) = visitor.record_field().map(str::to_string)
        && let Some(inner) = map.remove(&field)
    {
        return visit_wrapped(inner, &field, at, visitor, depth);
    }
    match shape(&map) {
        Shape::Records(key) => {
            let records = take(&mut map, key);
            visit_elements(array(records), at, visitor, depth)
        }
        Shape::EventBridge => visit(take(&mut map, "detail"), at, visitor, depth + 1),
        Shape::Record => {
            let insight = map.get("eventType").and_then(Value::as_str)
                == Some("AwsCloudTrailInsight")
                || map.get("eventCategory").and_then(Value::as_str) == Some("Insight");
            if insight {
                let what = "a CloudTrail Insights event, not an API call".to_string();
                skip(visitor, SkipReason::Insight, what, at);
                return Ok(0);
            }
            visitor.record(Value::Object(map), at.clone())?;
            Ok(1)
        }
        Shape::LogEvents => {
            let kind = map["messageType"].as_str().unwrap_or_default().to_string();
            visit_log_events(kind, map, at, visitor, depth)
        }
        Shape::Lambda => {
            let data = map["awslogs"]["data"].as_str().unwrap_or_default();
            visit_awslogs(data, at, visitor, depth)
        }
        Shape::PubSubPush => {
            let data = map["message"]["data"].as_str().unwrap_or_default();
            visit_pubsub(data, at, visitor, depth)
        }
        Shape::Lookup => {
            let events = array(take(&mut map, "Events"));
            visit_elements(oldest_first(events), at, visitor, depth)
        }
        Shape::Digest => {
            let what = "a CloudTrail digest file, which holds hashes and no events".to_string();
            skip(visitor, SkipReason::Digest, what, at);
            Ok(0)
        }
        Shape::Wrapped(field) => visit_wrapped(take(&mut map, field), field, at, visitor, depth),
        Shape::Unknown => {
            let keys: Vec<&str> = map.keys().take(5).map(String::as_str).collect();
            let what = format!(
                "an object that is no audit-log record: no eventSource or eventName, protoPayload or operationName (keys: {})",
                keys.join(", ")
            );
            skip(visitor, SkipReason::NotCloudTrail, what, at);
            Ok(0)
        }
    }
}

/// What [`visit_object`] makes of an object, by its keys, in the order it tries them
/// (after a configured `record_field`, which comes first).
enum Shape {
    /// A delivery file, an Event Hubs export, an `entries.list` page: an array of
    /// records under this key ([`RECORD_ARRAYS`]).
    Records(&'static str),
    /// An EventBridge event: `detail-type` and a `detail` object.
    EventBridge,
    /// An audit-log record (or a CloudTrail Insights event), see [`super::audit::cloud_of`].
    Record,
    /// A CloudWatch Logs subscription envelope: `messageType` text and `logEvents`.
    LogEvents,
    /// The same as a Lambda gets it: `awslogs.data` text.
    Lambda,
    /// An `aws cloudtrail lookup-events` page: an `Events` array.
    Lookup,
    /// A Pub/Sub push request: a `message` object with base64 `data`.
    PubSubPush,
    /// A CloudTrail digest file: `digestStartTime` and `logFiles`.
    Digest,
    /// A shipper's event holding JSON in this wrapper field.
    Wrapped(&'static str),
    /// None of these: skipped as not CloudTrail.
    Unknown,
}

/// The keys of arrays of records: CloudTrail's delivery files, Azure's Event Hubs and
/// storage exports, Cloud Logging's `entries.list` answers.
pub(super) const RECORD_ARRAYS: [&str; 3] = ["Records", "records", "entries"];

/// The keys [`shape`] reads besides [`RECORD_ARRAYS`], the record's own and
/// [`WRAPPER_FIELDS`]: every field cut keeps them whole (see [`super::FieldSet`]).
pub(super) const SHAPE_KEYS: [&str; 7] = [
    "detail-type",
    "messageType",
    "logEvents",
    "awslogs",
    "Events",
    "digestStartTime",
    "logFiles",
];

fn shape(map: &Map<String, Value>) -> Shape {
    if let Some(key) = RECORD_ARRAYS
        .into_iter()
        .find(|key| matches!(map.get(*key), Some(Value::Array(_))))
    {
        Shape::Records(key)
    } else if map.contains_key("detail-type") && matches!(map.get("detail"), Some(Value::Object(_)))
    {
        Shape::EventBridge
    } else if super::audit::cloud_of(map).is_some() {
        Shape::Record
    } else if matches!(map.get("messageType"), Some(Value::String(_)))
        && map.contains_key("logEvents")
    {
        Shape::LogEvents
    } else if map
        .get("awslogs")
        .and_then(|awslogs| awslogs.get("data"))
        .is_some_and(Value::is_string)
    {
        Shape::Lambda
    } else if matches!(map.get("Events"), Some(Value::Array(_))) {
        Shape::Lookup
    } else if map
        .get("message")
        .and_then(|message| message.get("data"))
        .is_some_and(Value::is_string)
    {
        Shape::PubSubPush
    } else if map.contains_key("digestStartTime") && map.contains_key("logFiles") {
        Shape::Digest
    } else if let Some(field) = WRAPPER_FIELDS.into_iter().find(|f| holds_json(map.get(*f))) {
        Shape::Wrapped(field)
    } else {
        Shape::Unknown
    }
}

/// Whether a wrapper field's value is a record or JSON text of one.
fn holds_json(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Object(_)) => true,
        Some(Value::String(text)) => {
            matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['))
        }
        _ => false,
    }
}

/// Takes a field [`shape`] found out of the object.
fn take(map: &mut Map<String, Value>, key: &str) -> Value {
    map.remove(key).unwrap_or_default()
}

/// The items of an array [`shape`] found (an array by then).
fn array(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}

/// Whether every object in `value`, read with the field cut, has a [`Shape`] other than
/// `Unknown` (the cut keeps every key [`shape`] reads, so it finds what it would in the
/// whole object); an object skipped as not CloudTrail is read again whole, so that the
/// skip lists its own keys.
pub(super) fn recognised(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().all(recognised),
        Value::Object(map) => match shape(map) {
            Shape::Records(key) => map[key].as_array().into_iter().flatten().all(recognised),
            Shape::EventBridge => recognised(&map["detail"]),
            Shape::Unknown => false,
            _ => true,
        },
        _ => true,
    }
}

/// Whether `value` is an `aws cloudtrail lookup-events` page.
pub(super) fn is_lookup_page(value: &Value) -> bool {
    value.get("Events").is_some_and(Value::is_array) && value.get("eventSource").is_none()
}

/// The entries of `lookup-events` pages in event-time order (entries whose record has
/// no readable time first, in their order); each `CloudTrailEvent` text is parsed on
/// the way, so it is not parsed twice.
pub(super) fn oldest_first(mut events: Vec<Value>) -> Vec<Value> {
    for event in &mut events {
        if let Some(text) = event.get("CloudTrailEvent").and_then(Value::as_str)
            && let Ok(record @ Value::Object(_)) = serde_json::from_str::<Value>(text)
        {
            event["CloudTrailEvent"] = record;
        }
    }
    events.sort_by_cached_key(|event| {
        event
            .pointer("/CloudTrailEvent/eventTime")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    events
}

/// The value inside a wrapper field: parsed when it is JSON text.
fn visit_wrapped(
    inner: Value,
    field: &str,
    at: &Location,
    visitor: &mut dyn Visitor,
    depth: u32,
) -> Result<u64> {
    let Value::String(text) = inner else {
        return visit(inner, at, visitor, depth + 1);
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(value @ (Value::Object(_) | Value::Array(_))) => visit(value, at, visitor, depth + 1),
        Ok(other) => {
            let what = format!(
                "field {field} holds a JSON {} instead of a record",
                kind(&other)
            );
            skip(visitor, SkipReason::NotAnObject, what, at);
            Ok(0)
        }
        Err(error) => {
            let what = format!("field {field} is not JSON: {error}");
            skip(visitor, SkipReason::InvalidJson, what, at);
            Ok(0)
        }
    }
}

/// A CloudWatch Logs subscription envelope: each `logEvents[].message` of a
/// `DATA_MESSAGE` is one record; a `CONTROL_MESSAGE` is the subscription's health check.
fn visit_log_events(
    kind: String,
    mut map: Map<String, Value>,
    at: &Location,
    visitor: &mut dyn Visitor,
    depth: u32,
) -> Result<u64> {
    match kind.as_str() {
        "DATA_MESSAGE" => {}
        "CONTROL_MESSAGE" => {
            let what = "a CloudWatch Logs control message (the subscription's health check)";
            skip(visitor, SkipReason::ControlMessage, what.to_string(), at);
            return Ok(0);
        }
        other => {
            let what = format!("a CloudWatch Logs envelope of unknown messageType {other:?}");
            skip(visitor, SkipReason::NotCloudTrail, what, at);
            return Ok(0);
        }
    }
    let Some(Value::Array(events)) = map.remove("logEvents") else {
        let what = "a CloudWatch Logs envelope whose logEvents is not a list".to_string();
        skip(visitor, SkipReason::NotAnObject, what, at);
        return Ok(0);
    };
    let mut found = 0;
    for (i, mut event) in events.into_iter().enumerate() {
        let at = Location {
            record: Some(i as u64 + 1),
            ..at.clone()
        };
        found += match event.get_mut("message").map(Value::take) {
            Some(message) => visit_wrapped(message, "logEvents[].message", &at, visitor, depth)?,
            None => {
                let what = "a CloudWatch Logs event without a message".to_string();
                skip(visitor, SkipReason::NotCloudTrail, what, &at);
                0
            }
        };
    }
    Ok(found)
}

/// The Lambda form of a subscription envelope: base64 of its gzip.
/// A Pub/Sub push request's `message.data`: base64 of one message, a Cloud Logging entry
/// for a sink's topic.
fn visit_pubsub(data: &str, at: &Location, visitor: &mut dyn Visitor, depth: u32) -> Result<u64> {
    let problem = match base64::engine::general_purpose::STANDARD.decode(data.trim()) {
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(value) => return visit(value, at, visitor, depth + 1),
            Err(error) => format!("message.data does not hold JSON: {error}"),
        },
        Err(error) => format!("message.data is not base64: {error}"),
    };
    skip(visitor, SkipReason::InvalidJson, problem, at);
    Ok(0)
}

fn visit_awslogs(data: &str, at: &Location, visitor: &mut dyn Visitor, depth: u32) -> Result<u64> {
    let bytes = match base64::engine::general_purpose::STANDARD.decode(data.trim()) {
        Ok(bytes) => bytes,
        Err(error) => {
            let what = format!("awslogs.data is not base64: {error}");
            skip(visitor, SkipReason::InvalidJson, what, at);
            return Ok(0);
        }
    };
    let mut json = Vec::new();
    let inflated = MultiGzDecoder::new(&bytes[..])
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut json);
    let problem = match inflated {
        Err(error) => Some((
            SkipReason::InvalidJson,
            format!("awslogs.data is not gzip: {error}"),
        )),
        Ok(n) if n as u64 > MAX_INFLATED_BYTES => Some((
            SkipReason::Oversized,
            format!("awslogs.data inflates past {MAX_INFLATED_BYTES} bytes"),
        )),
        Ok(_) => None,
    };
    if let Some((reason, what)) = problem {
        skip(visitor, reason, what, at);
        return Ok(0);
    }
    match serde_json::from_slice::<Value>(&json) {
        Ok(value) => visit(value, at, visitor, depth + 1),
        Err(error) => {
            let what = format!("awslogs.data does not hold JSON: {error}");
            skip(visitor, SkipReason::InvalidJson, what, at);
            Ok(0)
        }
    }
}

fn visit_elements(
    items: Vec<Value>,
    at: &Location,
    visitor: &mut dyn Visitor,
    depth: u32,
) -> Result<u64> {
    let mut found = 0;
    for (i, item) in items.into_iter().enumerate() {
        let at = Location {
            record: Some(i as u64 + 1),
            ..at.clone()
        };
        found += match item {
            Value::Array(_) => {
                let what = "a nested array instead of a record".to_string();
                skip(visitor, SkipReason::NotAnObject, what, &at);
                0
            }
            item => visit(item, &at, visitor, depth + 1)?,
        };
    }
    Ok(found)
}

fn skip(visitor: &mut dyn Visitor, reason: SkipReason, detail: String, at: &Location) {
    visitor.skip(Skip {
        reason,
        detail,
        location: at.clone(),
    });
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
