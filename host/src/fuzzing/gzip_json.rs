//! Structure-aware CloudTrail input: valid gzip of CloudTrail-shaped JSON, built from
//! the fuzzer's bytes, in the layouts CloudTrail leaves AWS in, with hostile content.
//!
//! Random bytes almost never inflate to JSON; this builder always does, then adds what a
//! stranger would: arbitrary Unicode in every string, integers at the edges, nesting
//! past the parser's limit, records over `max_record_bytes`, gzip cut short, a second
//! member that inflates past the limit. When it adds none of those the input is honest
//! and must round-trip: the HTTP body decoder and the file reader each hand on exactly
//! the records built, in order, equal as JSON.

use std::io::BufReader;

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Value, json};

use super::{BUDGET, LIMIT, bomb, check_records, gzip, prefilter, text};
use crate::intake::{ReadOptions, read_stream};
use crate::sources::Collected;
use crate::sources::budget::Budget;

/// `max_record_bytes` of the prefiltered reads: small, so that the field cut runs.
const CUT_RECORD_BYTES: usize = 4 * 1024;

/// Builds a gzip body from `data` and reads it as an HTTP body and as a file, once as
/// the product does (prefilter, field cut) and once keeping everything, checking the
/// round trip when the input is honest.
pub fn gzip_json(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok((body, expected)) = build(&mut u) else {
        return;
    };
    for keep_all in [false, true] {
        let read = ReadOptions {
            max_record_bytes: if keep_all { LIMIT } else { CUT_RECORD_BYTES },
        };
        let filtered = || Collected {
            prefilter: (!keep_all).then(prefilter),
            ..Collected::default()
        };
        let budget = Budget::new(BUDGET);
        let mut http = filtered();
        let decoded = crate::sources::http::payload::decode(
            &body,
            false,
            "fuzz".into(),
            read,
            LIMIT,
            &budget,
            &mut http,
        );
        check_records(&http);
        assert_eq!(budget.in_use(), 0, "the budget was not given back");
        let mut file = filtered();
        let _ = read_stream(
            BufReader::new(body.as_slice()),
            "fuzz".into(),
            read,
            &mut file,
        );
        check_records(&file);
        if let (true, Some(expected)) = (keep_all, &expected) {
            assert!(decoded.is_ok(), "an honest body refused");
            let got = |c: &Collected| c.records.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>();
            assert_eq!(&got(&http), expected, "an honest body changed over HTTP");
            assert_eq!(&got(&file), expected, "an honest file changed");
        }
    }
}

/// The gzip body, and when it is honest, the records it holds.
fn build(u: &mut Unstructured) -> Result<(Vec<u8>, Option<Vec<Value>>)> {
    let mut honest = true;
    let mut records = Vec::new();
    for _ in 0..u.int_in_range(0..=6usize)? {
        records.push(record(u)?);
    }
    let mut text = match u.int_in_range(0..=3u8)? {
        0 => records.iter().map(|r| format!("{r}\n")).collect::<String>(),
        1 => json!({ "Records": records }).to_string(),
        2 => serde_json::to_string_pretty(&json!({ "Records": records })).expect("JSON"),
        // Firehose's concatenated documents, no separator.
        _ => records.iter().map(Value::to_string).collect::<String>(),
    };
    if records.is_empty() {
        // An empty body or an empty `Records` list: nothing to hand on, no round trip.
        honest = false;
    }
    if u.ratio(1, 8)? {
        // A record nesting past serde_json's recursion limit of 128.
        let depth = u.int_in_range(100..=1000usize)?;
        text.push_str(r#"{"eventName":"RunInstances","x":"#);
        text.push_str(&"[".repeat(depth));
        text.push_str(&"]".repeat(depth));
        text.push_str("}\n");
        honest = false;
    }
    if u.ratio(1, 8)? {
        // A line over max_record_bytes whose subscribed fields fit.
        let pad = "A".repeat(u.int_in_range(CUT_RECORD_BYTES..=4 * CUT_RECORD_BYTES)?);
        let long = json!({
            "eventSource": "ec2.amazonaws.com",
            "eventName": "RunInstances",
            "awsRegion": "us-east-1",
            "responseElements": { "pad": pad },
        });
        text.push_str(&format!("{long}\n"));
        honest = false;
    }
    let bytes = text.into_bytes();
    let split = u.int_in_range(0..=bytes.len())?;
    let mut body = gzip(&bytes[..split]);
    if split < bytes.len() {
        body.extend(gzip(&bytes[split..]));
    }
    if u.ratio(1, 16)? {
        body.truncate(u.int_in_range(0..=body.len())?);
        honest = false;
    }
    if u.ratio(1, 32)? {
        body.extend_from_slice(bomb());
        honest = false;
    }
    Ok((body, honest.then_some(records)))
}

/// A CloudTrail-shaped record: the fields the detectors read, from a few likely values
/// or any text, and a few others holding any JSON.
pub(super) fn record(u: &mut Unstructured) -> Result<Value> {
    let mut record = Map::new();
    let mut put = |key: &str, value: Value| {
        record.insert(key.to_string(), value);
    };
    put("eventVersion", json!("1.08"));
    put(
        "eventSource",
        pick(u, &["ec2.amazonaws.com", "s3.amazonaws.com"])?,
    );
    put(
        "eventName",
        pick(u, &["RunInstances", "StartInstances", "DescribeInstances"])?,
    );
    put(
        "eventTime",
        pick(u, &["2024-03-01T12:00:00Z", "2024-13-45"])?,
    );
    put("awsRegion", pick(u, &["us-east-1", "ap-southeast-2"])?);
    put("eventID", Value::String(text(u)?));
    put(
        "userIdentity",
        json!({ "type": "IAMUser", "arn": pick(u, &["arn:aws:iam::123456789012:user/alice"])? }),
    );
    put(
        "requestParameters",
        json!({
            "instanceType": pick(u, &["t3.micro", "p3.16xlarge"])?,
            "instancesSet": { "items": [ { "imageId": pick(u, &["ami-0abcdef1234567890"])? } ] },
        }),
    );
    for key in ["responseElements", "additionalEventData", "resources"] {
        if u.ratio(1, 3)? {
            put(key, any(u, 0)?);
        }
    }
    Ok(Value::Object(record))
}

/// One of `likely`, or any text, or (rarely) not a string at all.
fn pick(u: &mut Unstructured, likely: &[&str]) -> Result<Value> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 => Value::String(text(u)?),
        1 => any(u, 3)?,
        _ => Value::String(u.choose(likely)?.to_string()),
    })
}

/// Any JSON value without floats (a float's text need not parse back to the same bits).
fn any(u: &mut Unstructured, depth: u32) -> Result<Value> {
    let kind = if depth >= 5 {
        u.int_in_range(0..=4u8)?
    } else {
        u.int_in_range(0..=6u8)?
    };
    Ok(match kind {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => Value::from(u.arbitrary::<u64>()?),
        4 => Value::String(text(u)?),
        5 => Value::Array(
            (0..u.int_in_range(0..=4usize)?)
                .map(|_| any(u, depth + 1))
                .collect::<Result<_>>()?,
        ),
        _ => {
            let mut map = Map::new();
            for _ in 0..u.int_in_range(0..=4usize)? {
                map.insert(text(u)?, any(u, depth + 1)?);
            }
            Value::Object(map)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Some inputs build honest bodies, whose round trip is then checked.
    #[test]
    fn honest_bodies_are_built_and_round_trip() {
        let mut honest = 0;
        for seed in 0..100u64 {
            let data = super::super::noise(seed, 600);
            if let Ok((_, Some(_))) = build(&mut Unstructured::new(&data)) {
                honest += 1;
            }
            gzip_json(&data);
        }
        assert!(honest >= 10, "{honest} of 100 inputs built honest bodies");
    }
}
