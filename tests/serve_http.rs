//! `minewatch serve` over HTTP, fed the way Vector's `http` sink feeds it.

use crate::util::{Server, alerts, command, generate_scenario, gzip, post, setup, unique_pairs};

#[test]
fn the_scenario_in_vector_batches_gives_the_alerts_of_run() {
    let (dir, _) = setup();
    generate_scenario(&dir, 5, "scenario.ndjson");
    let mut run = command(&dir);
    let expected = unique_pairs(&alerts(
        &run.args(["run", "--memory", "--input", "scenario.ndjson"])
            .ok(&dir)
            .stdout,
    ));
    assert!(expected.len() >= 8);

    let server = Server::start(
        &dir,
        &[
            "--http",
            "127.0.0.1:0",
            "--memory",
            "--output",
            "served.ndjson",
        ],
    );
    let text = std::fs::read_to_string(dir.join("scenario.ndjson")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for (i, batch) in lines.chunks(1000).enumerate() {
        // Gzipped NDJSON, the last line without its newline, as Vector sends it.
        let body = gzip(batch.join("\n").as_bytes());
        let (status, reply) = post(
            &server.url("/events"),
            &body,
            &[
                ("Content-Encoding", "gzip"),
                ("Content-Type", "application/x-ndjson"),
            ],
        );
        assert_eq!(status, 200, "{reply}");
        if i == 3 {
            // A retry of a batch Vector thought had failed: nothing may count twice.
            let (status, _) = post(
                &server.url("/events"),
                &body,
                &[("Content-Encoding", "gzip")],
            );
            assert_eq!(status, 200);
        }
    }
    let log = server.stop();
    assert!(log.contains("Shutting down"), "{log}");
    let served = unique_pairs(&alerts(&std::fs::read(dir.join("served.ndjson")).unwrap()));
    assert_eq!(served, expected);
}

#[test]
fn bodies_in_every_shape_and_encoding_are_read() {
    let (dir, _) = setup();
    let server = Server::start(
        &dir,
        &[
            "--http",
            "127.0.0.1:0",
            "--memory",
            "--output",
            "alerts.ndjson",
        ],
    );
    let history = std::fs::read_to_string(crate::util::data(
        "conformance/failures-ignored/events.ndjson",
    ))
    .unwrap();
    let records: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (first, rest) = records.split_at(10);
    // A JSON array, deflate-encoded.
    let array = serde_json::to_vec(first).unwrap();
    let mut deflated = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut deflated, &array).unwrap();
    let (status, reply) = post(
        &server.url("/events"),
        &deflated.finish().unwrap(),
        &[("Content-Encoding", "deflate")],
    );
    assert_eq!(
        (status, reply.contains("\"records\":10")),
        (200, true),
        "{reply}"
    );
    // Concatenated objects, zstd-encoded.
    let concatenated: String = rest[..10].iter().map(|r| r.to_string()).collect();
    let zstd = zstd_encode(concatenated.as_bytes());
    let (status, reply) = post(
        &server.url("/events"),
        &zstd,
        &[("Content-Encoding", "zstd")],
    );
    assert_eq!(
        (status, reply.contains("\"records\":10")),
        (200, true),
        "{reply}"
    );
    // EventBridge envelopes as NDJSON.
    let envelopes: String = rest[10..]
        .iter()
        .map(|r| format!("{}\n", serde_json::json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "detail": r})))
        .collect();
    let (status, reply) = post(&server.url("/events"), envelopes.as_bytes(), &[]);
    assert_eq!(status, 200, "{reply}");
    server.stop();
    let got = unique_pairs(&alerts(&std::fs::read(dir.join("alerts.ndjson")).unwrap()));
    assert_eq!(got.len(), 4, "mallory's four new values: {got:?}");
}

fn zstd_encode(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 1).unwrap()
}

#[test]
fn records_inside_a_log_field_are_unwrapped() {
    let (dir, _) = setup();
    let config = dir.write("fluent.toml", "memory = true\nrecord_field = \"log\"\n");
    let config = config.to_str().unwrap();
    let server = Server::start(
        &dir,
        &[
            "--http",
            "127.0.0.1:0",
            "--config",
            config,
            "--output",
            "alerts.ndjson",
        ],
    );
    let history = std::fs::read_to_string(crate::util::data(
        "conformance/start-instances/events.ndjson",
    ))
    .unwrap();
    // Fluent Bit tailing a CloudTrail NDJSON file: each record {"date": ..., "log": "<json>"}.
    let wrapped: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::json!({"date": 1_700_000_000.5, "log": l}))
        .collect();
    let (status, reply) = post(
        &server.url("/events"),
        &serde_json::to_vec(&wrapped).unwrap(),
        &[("Content-Type", "application/json")],
    );
    assert_eq!(status, 200, "{reply}");
    server.stop();
    let got = unique_pairs(&alerts(&std::fs::read(dir.join("alerts.ndjson")).unwrap()));
    assert!(
        got.contains(&("ec2-unseen-region".to_string(), "ca-central-1".to_string())),
        "{got:?}"
    );
}

#[test]
fn bad_requests_tokens_health_and_metrics() {
    let (dir, _) = setup();
    let config = dir.write("token.toml", "memory = true\n[sources.http]\nlisten = \"127.0.0.1:0\"\ntoken = \"s3cret\"\nmax_body_bytes = 100000\n");
    let server = Server::start(
        &dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "--output",
            "alerts.ndjson",
        ],
    );
    let auth = [("Authorization", "Bearer s3cret")];
    assert_eq!(post(&server.url("/events"), b"{}", &[]).0, 401);
    assert_eq!(
        post(
            &server.url("/events"),
            b"{}",
            &[("Authorization", "Bearer wrong")]
        )
        .0,
        401
    );
    let (status, reply) = post(&server.url("/events"), b"this is not json", &auth);
    assert_eq!(status, 400);
    assert!(reply.contains("invalid-json"), "{reply}");
    let (status, _) = post(
        &server.url("/events"),
        &gzip(&vec![b' '; 200_000]),
        &[("Content-Encoding", "gzip"), auth[0]],
    );
    assert_eq!(status, 413, "the limit applies after decompression");
    let (status, _) = post(&server.url("/events"), b"", &auth);
    assert_eq!(status, 200, "an empty body is an empty batch");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    assert_eq!(
        agent
            .get(&server.url("/health"))
            .call()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let mut metrics = agent
        .get(&server.url("/metrics"))
        .header("Authorization", "Bearer s3cret")
        .call()
        .unwrap();
    let text = metrics.body_mut().read_to_string().unwrap();
    assert!(
        text.contains("minewatch_requests_total{source=\"http\",status=\"400\"} 1"),
        "{text}"
    );
    server.stop();
}

#[test]
fn passthrough_emits_every_event_with_its_alerts() {
    let (dir, mut cmd) = setup();
    let input = crate::util::data("conformance/failures-ignored/events.ndjson");
    let out = cmd
        .args(["run", "--memory", "--passthrough", "--input"])
        .args([&input])
        .ok(&dir);
    let events = alerts(&out.stdout);
    let original: Vec<serde_json::Value> = std::fs::read_to_string(&input)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), original.len());
    let mut with_alerts = 0;
    for (got, want) in events.iter().zip(&original) {
        let mut stripped = got.clone();
        if let Some(list) = stripped.as_object_mut().unwrap().remove("minewatch_alerts") {
            with_alerts += 1;
            assert_eq!(
                list.as_array().unwrap().len(),
                4,
                "mallory's launch carries its four alerts"
            );
            assert_eq!(got["eventID"], "918c4681-46ba-4b7c-b507-9687625b5736");
        }
        assert_eq!(
            &stripped, want,
            "events pass through unchanged and in order"
        );
    }
    assert_eq!(with_alerts, 1);
}

#[test]
fn sigterm_mid_stream_loses_nothing_that_was_acknowledged() {
    let (dir, mut cmd) = setup();
    cmd.args([
        "generate",
        "--days",
        "60",
        "--events-per-day",
        "300",
        "--no-incidents",
        "--output",
        "scenario.ndjson",
    ])
    .ok(&dir);
    let server = Server::start(
        &dir,
        &[
            "--http",
            "127.0.0.1:0",
            "--memory",
            "--output",
            "alerts.ndjson",
        ],
    );
    let text = std::fs::read_to_string(dir.join("scenario.ndjson")).unwrap();
    let batches: Vec<Vec<u8>> = text
        .lines()
        .collect::<Vec<_>>()
        .chunks(200)
        .map(|c| gzip(c.join("\n").as_bytes()))
        .collect();
    let url = server.url("/events");
    let client = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut acknowledged = 0u64;
        for body in batches {
            match agent
                .post(&url)
                .header("Content-Encoding", "gzip")
                .send(&body[..])
            {
                Ok(mut response) if response.status() == 200 => {
                    let receipt: serde_json::Value =
                        serde_json::from_str(&response.body_mut().read_to_string().unwrap())
                            .unwrap();
                    acknowledged += receipt["records"].as_u64().unwrap();
                }
                _ => break,
            }
        }
        acknowledged
    });
    std::thread::sleep(std::time::Duration::from_millis(700));
    let log = server.stop();
    let acknowledged = client.join().unwrap();
    assert!(
        acknowledged > 0,
        "some batches went through before the signal"
    );
    let processed: u64 = log
        .lines()
        .find_map(|l| {
            l.strip_prefix("minewatch: ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .expect("summary line");
    assert_eq!(
        processed, acknowledged,
        "every acknowledged record was processed, and only those:\n{log}"
    );
}
