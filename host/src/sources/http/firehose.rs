//! Amazon Data Firehose deliveries to an HTTP endpoint: a JSON object
//! `{"requestId", "timestamp", "records": [{"data": <base64>}, ...]}`.
//!
//! Each record's data is read like a small input file: gzip by its magic bytes (a
//! CloudWatch Logs subscription sends gzip envelopes; a stream fed directly sends the
//! events themselves), then whatever JSON shape it holds. What a record holds that is not a
//! CloudTrail event is a counted skip located at `source (record N)`; only a body that is
//! not such an object is refused. The records' decoded data, together, may take at most
//! `max_body_bytes`, so a small body cannot inflate without bound.

use std::sync::Arc;

use anyhow::Result;
use axum::http::StatusCode;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use super::Outcome;
use crate::intake::{Location, ReadOptions, Skip, SkipReason, Visitor, read_stream};
use crate::sources::Collected;
use crate::sources::budget::Budget;
use crate::sources::fluent::{ProtocolError, gunzip};

/// The body of a delivery; other fields (`timestamp`) are not needed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delivery {
    /// The id to echo (the same as the request's header).
    request_id: Option<String>,
    /// The records, in order.
    records: Vec<DeliveryRecord>,
}

#[derive(Debug, Deserialize)]
struct DeliveryRecord {
    /// Base64 of the record's bytes.
    data: String,
}

/// Reads a delivery's records into `collected`; returns the `requestId` of its body.
///
/// # Errors
/// 400 for a body that is not a delivery, 413 when the records inflate past `limit`.
pub(super) fn decode(
    body: &[u8],
    source: Arc<str>,
    read: ReadOptions,
    limit: usize,
    memory: &Budget,
    collected: &mut Collected,
) -> Result<Option<String>, Outcome> {
    let delivery: Delivery = serde_json::from_slice(body).map_err(|error| {
        Outcome::refused(
            StatusCode::BAD_REQUEST,
            format!(
                "not a Firehose delivery (a JSON object with requestId and records[].data): \
                 {error}"
            ),
        )
    })?;
    let mut budget = limit;
    let skip = |collected: &mut Collected, index: usize, detail: String| {
        collected.skip(Skip {
            reason: SkipReason::InvalidJson,
            detail,
            location: at(&source, index),
        });
    };
    for (index, record) in delivery.records.iter().enumerate() {
        let decoded = match base64::engine::general_purpose::STANDARD.decode(&record.data) {
            Ok(decoded) => decoded,
            Err(error) => {
                skip(collected, index, format!("data is not base64: {error}"));
                continue;
            }
        };
        let data = if decoded.starts_with(&[0x1f, 0x8b]) {
            match gunzip(&decoded, budget, memory, "http") {
                Ok(inflated) => inflated.bytes,
                Err(ProtocolError::OverBudget(over)) => return Err(Outcome::over_budget(over)),
                Err(ProtocolError::TooLarge { .. }) => {
                    return Err(Outcome::refused(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "the records' data inflates past max_body_bytes ({limit} bytes): \
                             lower the Firehose stream's buffer size"
                        ),
                    ));
                }
                Err(ProtocolError::Garbage(why)) => {
                    skip(collected, index, why);
                    continue;
                }
            }
        } else {
            decoded
        };
        budget = budget.saturating_sub(data.len());
        let mut visitor = AtRecord {
            inner: collected,
            record: index as u64 + 1,
        };
        if let Err(error) = read_stream(&data[..], source.clone(), read, &mut visitor) {
            skip(collected, index, format!("{error:#}"));
        }
    }
    if delivery.records.is_empty() {
        collected.skip(Skip {
            reason: SkipReason::EmptyInput,
            detail: "a Firehose delivery without records".into(),
            location: Location {
                source: source.clone(),
                line: None,
                record: None,
            },
        });
    }
    Ok(delivery.request_id)
}

/// The location of the record at `index`.
fn at(source: &Arc<str>, index: usize) -> Location {
    Location {
        source: source.clone(),
        line: None,
        record: Some(index as u64 + 1),
    }
}

/// Passes what the intake finds in one Firehose record to the collection, located at
/// that record (the line inside it is kept).
struct AtRecord<'a> {
    inner: &'a mut Collected,
    record: u64,
}

impl Visitor for AtRecord<'_> {
    fn record(&mut self, record: Value, mut location: Location) -> Result<()> {
        location.record = Some(self.record);
        self.inner.record(record, location)
    }

    fn skip(&mut self, mut skip: Skip) {
        skip.location.record = Some(self.record);
        self.inner.skip(skip);
    }

    fn record_field(&self) -> Option<&str> {
        self.inner.record_field()
    }

    fn wants(&self, line: &[u8]) -> bool {
        self.inner.wants(line)
    }

    fn filtered(&mut self, lines: u64) {
        self.inner.filtered(lines);
    }

    fn fields(&self) -> Option<&crate::intake::FieldSet> {
        self.inner.fields()
    }

    fn cut_fields(&self) -> Option<&crate::intake::FieldSet> {
        self.inner.cut_fields()
    }
}
