//! `minewatch serve` as the HTTP endpoint of an Amazon Data Firehose stream fed by a
//! CloudWatch Logs subscription: the field case's delivery, Firehose's access key and
//! reply shape, refusals, and the 45-day scenario delivered the way Firehose delivers it.

use std::io::Write;

use base64::Engine as _;
use minewatch_generator::Layout;
use serde_json::{Value, json};

use crate::util::{Dir, Server, alerts, data, gzip, post, scenario_in, setup, unique_pairs};

const CASE: &str = "field-cases/12-firehose-http-endpoint";
const TOKEN: &str = "firehose-access-key-0123";

/// `serve` with HTTP on a free port, each request run on arrival, alerts to
/// `alerts.ndjson`, and the token when given.
fn start(dir: &Dir, token: Option<&str>) -> Server {
    let mut config =
        "memory = true\nsettle_ms = 0\n[sources.http]\nlisten = \"127.0.0.1:0\"\n".to_string();
    if let Some(token) = token {
        config.push_str(&format!("token = \"{token}\"\n"));
    }
    let config = dir.write("minewatch.toml", config);
    Server::start(
        dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "--output",
            "alerts.ndjson",
        ],
    )
}

/// The field case's request headers (Host and Content-Length are the client's to set),
/// with the access key replaced by `key`, or left out when `None`.
fn case_headers(key: Option<&str>) -> Vec<(String, String)> {
    std::fs::read_to_string(data(&format!("{CASE}/input.headers.txt")))
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(": "))
        .filter(|(name, _)| !["Host", "Content-Length"].contains(name))
        .filter_map(|(name, value)| match name {
            "X-Amz-Firehose-Access-Key" => Some((name.to_string(), key?.to_string())),
            _ => Some((name.to_string(), value.to_string())),
        })
        .collect()
}

fn post_owned(url: &str, body: &[u8], headers: &[(String, String)]) -> (u16, String) {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    post(url, body, &headers)
}

/// A Prometheus sample of `/metrics` (`name{labels}` as rendered), if present.
fn metric(server: &Server, sample: &str, token: Option<&str>) -> Option<f64> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.get(&server.url("/metrics"));
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let text = request.call().unwrap().body_mut().read_to_string().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

/// Asserts the reply is exactly Firehose's success shape for `request_id`.
fn assert_firehose_ok(status: u16, reply: &str, request_id: &str) {
    assert_eq!(status, 200, "{reply}");
    let reply: Value = serde_json::from_str(reply).unwrap();
    let fields: Vec<&String> = reply.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["requestId", "timestamp"], "{reply}");
    assert_eq!(reply["requestId"], request_id);
    assert!(
        reply["timestamp"]
            .as_u64()
            .is_some_and(|t| t > 1_700_000_000_000),
        "milliseconds since the epoch: {reply}"
    );
}

#[test]
fn the_field_case_delivery_is_acknowledged_the_way_firehose_reads_it() {
    let (dir, _) = setup();
    let server = start(&dir, Some(TOKEN));
    let body = std::fs::read(data(&format!("{CASE}/input.body.json"))).unwrap();
    let request_id = "9ec6b6f8-8b93-4734-8521-3e78a9517f5f";
    // As recorded: POSTed to /events, recognised by its Firehose headers.
    let (status, reply) = post_owned(&server.url("/events"), &body, &case_headers(Some(TOKEN)));
    assert_firehose_ok(status, &reply, request_id);
    // And to the Firehose route, gzip-encoded as a stream with GZIP content encoding sends it.
    let mut headers = case_headers(Some(TOKEN));
    headers.push(("Content-Encoding".into(), "gzip".into()));
    let (status, reply) = post_owned(&server.url("/firehose"), &gzip(&body), &headers);
    assert_firehose_ok(status, &reply, request_id);
    // Each delivery: the launch read, the health check counted under its own reason.
    let received = metric(&server, "minewatch_events_received_total", Some(TOKEN));
    assert_eq!(received, Some(2.0));
    let controls = metric(
        &server,
        "minewatch_events_skipped_total{reason=\"cwl-control-message\"}",
        Some(TOKEN),
    );
    assert_eq!(controls, Some(2.0));
    server.stop();
}

#[test]
fn firehose_requests_need_the_access_key_and_get_their_errors_in_firehose_shape() {
    let (dir, _) = setup();
    let server = start(&dir, Some(TOKEN));
    let body = std::fs::read(data(&format!("{CASE}/input.body.json"))).unwrap();
    let url = server.url("/firehose");
    for key in [None, Some("wrong")] {
        let (status, reply) = post_owned(&url, &body, &case_headers(key));
        assert_eq!(status, 401, "{reply}");
        let reply: Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(reply["requestId"], "9ec6b6f8-8b93-4734-8521-3e78a9517f5f");
        assert!(reply["timestamp"].is_u64(), "{reply}");
        assert!(
            reply["errorMessage"]
                .as_str()
                .unwrap()
                .contains("X-Amz-Firehose-Access-Key"),
            "{reply}"
        );
    }
    // A bearer token does as well as the access key.
    let mut headers = case_headers(None);
    headers.push(("Authorization".into(), format!("Bearer {TOKEN}")));
    let (status, reply) = post_owned(&url, &body, &headers);
    assert_firehose_ok(status, &reply, "9ec6b6f8-8b93-4734-8521-3e78a9517f5f");
    // The access key is no way into the events routes for anything but a Firehose request.
    let (status, _) = post(
        &server.url("/events"),
        b"{}",
        &[("X-Amz-Firehose-Access-Key", TOKEN)],
    );
    assert_eq!(status, 401);

    // A body that is not a delivery: 400, with the header's request id.
    let headers = case_headers(Some(TOKEN));
    let (status, reply) = post_owned(&url, b"{\"Records\": []}", &headers);
    assert_eq!(status, 400, "{reply}");
    let reply: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["requestId"], "9ec6b6f8-8b93-4734-8521-3e78a9517f5f");
    assert!(
        reply["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("not a Firehose delivery"),
        "{reply}"
    );
    // Without the header, the body's request id is echoed.
    let delivery =
        json!({"requestId": "from-the-body", "timestamp": 1, "records": [{"data": "e30="}]});
    let (status, reply) = post(
        &url,
        delivery.to_string().as_bytes(),
        &[("X-Amz-Firehose-Access-Key", TOKEN)],
    );
    assert_firehose_ok(status, &reply, "from-the-body");
    // An unknown tenant: 404 in Firehose's shape.
    let (status, reply) = post_owned(&server.url("/tenants/nobody/firehose"), &body, &headers);
    assert_eq!(status, 404);
    assert!(
        reply.contains("\"errorMessage\":\"no tenant named"),
        "{reply}"
    );
    server.stop();
}

/// A CloudWatch Logs subscription envelope of `lines`, gzipped as CloudWatch Logs sends it.
fn data_message(lines: &[&str], first_id: usize) -> Vec<u8> {
    let events: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            json!({"id": format!("{:056}", first_id + i), "timestamp": 1_726_046_911_000u64, "message": line})
        })
        .collect();
    let envelope = json!({
        "messageType": "DATA_MESSAGE",
        "owner": "111122223333",
        "logGroup": "aws-cloudtrail-logs-111122223333",
        "logStream": "111122223333_CloudTrail_us-east-1",
        "subscriptionFilters": ["cloudtrail-to-firehose"],
        "logEvents": events,
    });
    gzip(envelope.to_string().as_bytes())
}

fn control_message() -> Vec<u8> {
    let envelope = json!({
        "messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "",
        "logStream": "", "subscriptionFilters": [],
        "logEvents": [{"id": "", "timestamp": 1_726_046_800_000u64,
            "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}],
    });
    gzip(envelope.to_string().as_bytes())
}

#[test]
fn the_scenario_through_cloudwatch_logs_and_firehose_gives_every_expected_alert() {
    let (dir, _) = setup();
    let expected = scenario_in(&dir, Layout::Ndjson, "scenario.ndjson");
    let text = std::fs::read_to_string(dir.join("scenario.ndjson")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // 50 log events an envelope, a health check now and then, 10 records a request.
    let mut records = Vec::new();
    for (i, chunk) in lines.chunks(50).enumerate() {
        if i % 7 == 0 {
            records.push(control_message());
        }
        records.push(data_message(chunk, i * 50));
    }
    let server = start(&dir, Some(TOKEN));
    let b64 = base64::engine::general_purpose::STANDARD;
    for (n, batch) in records.chunks(10).enumerate() {
        let request_id = format!("00000000-0000-4000-8000-{n:012}");
        let body = json!({
            "requestId": request_id,
            "timestamp": 1_726_046_915_123u64 + n as u64,
            "records": batch.iter().map(|r| json!({"data": b64.encode(r)})).collect::<Vec<_>>(),
        });
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(body.to_string().as_bytes()).unwrap();
        let (status, reply) = post(
            &server.url("/firehose"),
            &encoder.finish().unwrap(),
            &[
                ("Content-Type", "application/json"),
                ("Content-Encoding", "gzip"),
                ("X-Amz-Firehose-Protocol-Version", "1.0"),
                ("X-Amz-Firehose-Request-Id", &request_id),
                ("X-Amz-Firehose-Access-Key", TOKEN),
            ],
        );
        assert_firehose_ok(status, &reply, &request_id);
    }
    let received = metric(&server, "minewatch_events_received_total", Some(TOKEN));
    assert_eq!(received, Some(lines.len() as f64));
    server.stop();
    let served = unique_pairs(&alerts(&std::fs::read(dir.join("alerts.ndjson")).unwrap()));
    assert_eq!(served, expected);
}
