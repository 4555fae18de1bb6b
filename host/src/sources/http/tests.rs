//! Decoding of events and Firehose bodies, byte for byte; the routes themselves are
//! tested through the real binary in `tests/serve_http.rs` and `tests/firehose.rs`.

use std::io::Write;
use std::path::Path;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use base64::Engine as _;
use rmpv::Value as Msgpack;
use serde_json::{Value, json};

use super::{Outcome, firehose, payload};
use crate::intake::{ReadOptions, SkipReason};
use crate::sources::Collected;
use crate::sources::budget::Budget;

fn field_case(path: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/field-cases")
        .join(path);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn launch(id: &str) -> Value {
    json!({
        "eventVersion": "1.09", "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
        "eventTime": "2024-09-11T09:28:29Z", "awsRegion": "us-east-1", "eventID": id,
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"},
        "requestParameters": {"instanceType": "c5.large"},
    })
}

fn envelope(kind: &str, messages: &[String]) -> Vec<u8> {
    let events: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| json!({"id": i.to_string(), "timestamp": 1_726_046_911_000u64, "message": m}))
        .collect();
    serde_json::to_vec(&json!({
        "messageType": kind, "owner": "111122223333", "logGroup": "trail",
        "logStream": "111122223333_CloudTrail_us-east-1", "subscriptionFilters": ["all"],
        "logEvents": events,
    }))
    .unwrap()
}

fn collected(record_field: Option<&str>) -> Collected {
    Collected {
        record_field: record_field.map(str::to_string),
        ..Collected::default()
    }
}

/// The status and reason of a refusal; panics on anything else.
fn refusal(result: Result<impl std::fmt::Debug, Outcome>) -> (StatusCode, String) {
    match result {
        Err(Outcome::Refused { status, reason, .. }) => (status, reason),
        other => panic!("not refused: {other:?}"),
    }
}

fn reasons(collected: &Collected) -> Vec<(Option<u64>, SkipReason)> {
    collected
        .skips
        .iter()
        .map(|s| (s.location.record, s.reason))
        .collect()
}

#[test]
fn firehose_records_are_read_each_at_its_index() {
    let data = [
        gzip(&envelope(
            "DATA_MESSAGE",
            &[launch("a").to_string(), launch("b").to_string()],
        )),
        launch("c").to_string().into_bytes(),
        gzip(&envelope(
            "CONTROL_MESSAGE",
            &["CWL CONTROL MESSAGE: Checking health of destination Firehose.".into()],
        )),
        vec![0x1f, 0x8b, 8, 0, 1, 2, 3],
        b"{\"hello\": \"world\"}".to_vec(),
    ];
    let mut records: Vec<Value> = data.iter().map(|d| json!({"data": base64(d)})).collect();
    records.push(json!({"data": "not base64!"}));
    let body = json!({"requestId": "r-1", "timestamp": 1, "records": records});
    let mut found = collected(None);
    let request_id = firehose::decode(
        &serde_json::to_vec(&body).unwrap(),
        "http:/firehose".into(),
        ReadOptions::default(),
        1 << 20,
        &Budget::default(),
        &mut found,
    )
    .unwrap();
    assert_eq!(request_id.as_deref(), Some("r-1"));
    let ids: Vec<(&str, Option<u64>, &str)> = found
        .records
        .iter()
        .map(|(r, at)| (r["eventID"].as_str().unwrap(), at.record, &*at.source))
        .collect();
    assert_eq!(
        ids,
        [
            ("a", Some(1), "http:/firehose"),
            ("b", Some(1), "http:/firehose"),
            ("c", Some(2), "http:/firehose")
        ]
    );
    assert_eq!(
        reasons(&found),
        [
            (Some(3), SkipReason::ControlMessage),
            (Some(4), SkipReason::InvalidJson),
            (Some(5), SkipReason::NotCloudTrail),
            (Some(6), SkipReason::InvalidJson),
        ]
    );
    assert!(
        found.skips[3].detail.contains("not base64"),
        "{:?}",
        found.skips[3]
    );
}

#[test]
fn the_field_case_delivery_holds_one_launch_and_a_health_check() {
    let mut found = collected(None);
    let request_id = firehose::decode(
        &field_case("12-firehose-http-endpoint/input.body.json"),
        "http:/firehose".into(),
        ReadOptions::default(),
        1 << 20,
        &Budget::default(),
        &mut found,
    )
    .unwrap();
    assert_eq!(
        request_id.as_deref(),
        Some("9ec6b6f8-8b93-4734-8521-3e78a9517f5f")
    );
    assert_eq!(found.records.len(), 1);
    assert_eq!(
        found.records[0].0["responseElements"]["instancesSet"]["items"][0]["instanceId"],
        "i-3e30ff3e3cdf6b4c6"
    );
    assert_eq!(reasons(&found), [(Some(1), SkipReason::ControlMessage)]);
}

#[test]
fn a_body_that_is_not_a_delivery_is_refused_and_records_cannot_inflate_without_bound() {
    for body in [
        &b"this is not json"[..],
        b"[{\"data\": \"e30=\"}]",
        b"{\"requestId\": \"r\", \"records\": \"e30=\"}",
        b"{\"Records\": []}",
    ] {
        let (status, reason) = refusal(firehose::decode(
            body,
            "http:/firehose".into(),
            ReadOptions::default(),
            1 << 20,
            &Budget::default(),
            &mut collected(None),
        ));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(reason.starts_with("not a Firehose delivery"), "{reason}");
    }
    // Two records of 60 KB each (a few hundred bytes gzipped) against a 100 KB budget.
    let big = gzip(&vec![b' '; 60_000]);
    let body =
        json!({"requestId": "r", "records": [{"data": base64(&big)}, {"data": base64(&big)}]});
    let (status, reason) = refusal(firehose::decode(
        &serde_json::to_vec(&body).unwrap(),
        "http:/firehose".into(),
        ReadOptions::default(),
        100_000,
        &Budget::default(),
        &mut collected(None),
    ));
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reason.contains("max_body_bytes (100000 bytes)"), "{reason}");
}

fn headers(content_type: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap(),
    );
    headers
}

fn decode_events(
    body: &[u8],
    content_type: &str,
    record_field: Option<&str>,
) -> Result<Collected, Outcome> {
    let mut found = collected(record_field);
    payload::decode(
        body,
        payload::is_msgpack(&headers(content_type)),
        "http:/events".into(),
        ReadOptions::default(),
        1 << 20,
        &Budget::default(),
        &mut found,
    )
    .map(|()| found)
}

#[test]
fn well_formed_bodies_without_cloudtrail_are_read_as_skips_and_garbage_is_refused() {
    let found = decode_events(
        b"[{\"bucket\": \"b\", \"object\": \"k\"}, 7]",
        "application/json",
        None,
    )
    .unwrap();
    assert!(found.records.is_empty());
    assert_eq!(
        reasons(&found),
        [
            (Some(1), SkipReason::NotCloudTrail),
            (Some(2), SkipReason::NotAnObject)
        ]
    );
    // Text where a record was expected, inside well-formed JSON: the records' problem.
    let found = decode_events(
        b"[{\"log\": \"GET / 200\"}]",
        "application/json",
        Some("log"),
    )
    .unwrap();
    assert_eq!(reasons(&found), [(Some(1), SkipReason::InvalidJson)]);
    let (status, reason) = refusal(decode_events(
        b"this is not json\nnor this",
        "text/plain",
        None,
    ));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reason.contains("(invalid-json)"), "{reason}");
    assert!(!reason.contains("it is msgpack"), "{reason}");
    // Fluent Bit's msgpack chunk sent as JSON: refused, saying what it is.
    let msgpack = field_case("08-fluent-bit-out-http-formats/input.body-msgpack.bin");
    let (status, reason) = refusal(decode_events(&msgpack, "application/json", Some("log")));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        reason.contains("it is msgpack: send it with Content-Type: application/msgpack"),
        "{reason}"
    );
}

fn encode(values: &[Msgpack]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        rmpv::encode::write_value(&mut out, value).unwrap();
    }
    out
}

fn msgpack_map(record: &Value) -> Msgpack {
    let mut bytes = Vec::new();
    rmp_serde::encode::write_named(&mut bytes, record).unwrap();
    rmpv::decode::read_value(&mut &bytes[..]).unwrap()
}

#[test]
fn msgpack_bodies_take_maps_and_both_entry_layouts() {
    let body = field_case("08-fluent-bit-out-http-formats/input.body-msgpack.bin");
    for content_type in [
        "application/msgpack",
        "application/x-msgpack; charset=binary",
    ] {
        let found = decode_events(&body, content_type, Some("log")).unwrap();
        let names: Vec<&str> = found
            .records
            .iter()
            .map(|(r, _)| r["eventName"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["RunInstances", "DescribeInstances"]);
        assert_eq!(
            found.records[0].0["eventID"],
            "cf625293-e47a-d7d5-0119-f26d01b12aca"
        );
    }
    let event_time = Msgpack::Ext(0, vec![0x66, 0xe1, 0x62, 0xbf, 0, 0, 0, 1]);
    let mut body = encode(&[
        msgpack_map(&launch("plain")),
        Msgpack::Array(vec![
            Msgpack::from(1_726_046_911),
            msgpack_map(&launch("v1")),
        ]),
        Msgpack::Array(vec![
            Msgpack::Array(vec![event_time, Msgpack::Map(Vec::new())]),
            msgpack_map(&launch("v2")),
        ]),
        Msgpack::from(42),
        Msgpack::Array(vec![Msgpack::from("tag"), Msgpack::from("no map")]),
    ]);
    // A stream cut short inside its last map.
    let last = encode(&[msgpack_map(&launch("cut"))]);
    body.extend_from_slice(&last[..last.len() / 2]);
    let found = decode_events(&gzip(&body), "application/msgpack", None).unwrap();
    let ids: Vec<(&str, Option<u64>)> = found
        .records
        .iter()
        .map(|(r, at)| (r["eventID"].as_str().unwrap(), at.record))
        .collect();
    assert_eq!(ids, [("plain", Some(1)), ("v1", Some(2)), ("v2", Some(3))]);
    assert_eq!(
        reasons(&found),
        [
            (Some(4), SkipReason::NotAnObject),
            (Some(5), SkipReason::NotAnObject),
            (Some(6), SkipReason::InvalidJson),
        ]
    );
    assert!(
        found.skips[2].detail.starts_with("msgpack breaks at byte"),
        "{:?}",
        found.skips[2]
    );
}

#[test]
fn bodies_labelled_msgpack_that_are_not_are_refused_with_the_reason() {
    let json = field_case("08-fluent-bit-out-http-formats/input.body-json.json");
    let (status, reason) = refusal(decode_events(&json, "application/msgpack", Some("log")));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        reason.contains("holds no map or [time, map] entry")
            && reason.contains("it looks like JSON: send it with Content-Type: application/json"),
        "{reason}"
    );
    // An array of two that ends after its first item.
    let (status, reason) = refusal(decode_events(&[0x92, 0x01], "application/msgpack", None));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reason.contains("is not msgpack"), "{reason}");
    let (status, _) = refusal(decode_events(
        &[0x1f, 0x8b, 8, 0, 9, 9],
        "application/msgpack",
        None,
    ));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // An empty body is an empty batch, as with JSON.
    let found = decode_events(b"", "application/msgpack", None).unwrap();
    assert_eq!(reasons(&found), [(None, SkipReason::EmptyInput)]);
}
