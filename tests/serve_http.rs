//! `minewatch serve` over HTTP, fed the way Vector's `http` sink feeds it.

use crate::util::{Server, alerts, command, generate_scenario, gzip, post, setup, unique_pairs};

/// `(detection, key, eventID)` of each alert, sorted, repeats kept: which event raised
/// it matters (a rate alert fired one launch early is a different alert).
fn judged(alerts: &[serde_json::Value]) -> Vec<(String, String, String)> {
    let mut list: Vec<_> = alerts
        .iter()
        .map(|a| {
            let text = |v: &serde_json::Value| v.as_str().unwrap().to_string();
            (
                text(&a["detection"]),
                text(&a["key"]),
                text(&a["event"]["event_id"]),
            )
        })
        .collect();
    list.sort();
    list
}

/// The alerts `minewatch run` raises over `lines`.
fn run_over(dir: &crate::util::Dir, lines: &[&str]) -> Vec<(String, String, String)> {
    dir.write("input.ndjson", lines.join("\n"));
    judged(&alerts(
        &command(dir)
            .args(["run", "--memory", "--input", "input.ndjson"])
            .ok(dir)
            .stdout,
    ))
}

/// The lines of `batch` again with new eventIDs: what a retry would count if the rate
/// rules did not drop the eventIDs they have counted.
fn renamed(batch: &[&str]) -> Vec<String> {
    batch
        .iter()
        .map(|l| {
            let mut record: serde_json::Value = serde_json::from_str(l).unwrap();
            if let Some(id) = record["eventID"].as_str() {
                record["eventID"] = format!("{id}-again").into();
            }
            record.to_string()
        })
        .collect()
}

#[test]
fn the_scenario_in_vector_batches_gives_the_alerts_of_run() {
    let (dir, _) = setup();
    generate_scenario(&dir, 5, "scenario.ndjson");
    let text = std::fs::read_to_string(dir.join("scenario.ndjson")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let expected = run_over(&dir, &lines);
    assert!(expected.len() >= 8);
    // The batch to retry ends just before the launch that fires the spike: it holds the
    // first launches of the incident's window, so counted twice they would fire the spike
    // earlier (checked below by running that double count), and the comparison at the
    // end fails if a retry counts twice.
    let (_, _, spike) = expected
        .iter()
        .find(|(detection, _, _)| detection == "ec2-launch-spike")
        .expect("the scenario's launch spike");
    let cut = lines
        .iter()
        .position(|l| l.contains(spike.as_str()))
        .unwrap();
    let batches: Vec<&[&str]> = lines[..cut]
        .chunks(1000)
        .chain(lines[cut..].chunks(1000))
        .collect();
    let retried = lines[..cut].chunks(1000).count() - 1;
    let mut doubled: Vec<String> = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        doubled.extend(batch.iter().map(|l| l.to_string()));
        if i == retried {
            doubled.extend(renamed(batch));
        }
    }
    let doubled: Vec<&str> = doubled.iter().map(String::as_str).collect();
    assert_ne!(
        run_over(&dir, &doubled),
        expected,
        "counting the retried batch twice changes the alerts"
    );

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
    for (i, batch) in batches.iter().enumerate() {
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
        if i == retried {
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
    let served = judged(&alerts(&std::fs::read(dir.join("served.ndjson")).unwrap()));
    assert_eq!(served, expected, "retried batch {retried}");
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

/// SIGTERM while a batch holding alerts is inside the pipeline (held there by the test
/// hook, so the signal provably lands mid-stream): that batch is finished, its alerts
/// written and it is acknowledged; later batches are refused; and the alerts written are
/// exactly those `run` raises over the acknowledged batches. Every 200 finds its
/// batch's alerts already in the output.
#[test]
fn sigterm_mid_stream_loses_nothing_that_was_acknowledged() {
    let (dir, _) = setup();
    generate_scenario(&dir, 5, "scenario.ndjson");
    let text = std::fs::read_to_string(dir.join("scenario.ndjson")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let batches: Vec<Vec<String>> = lines
        .chunks(500)
        .map(|c| c.iter().map(|l| l.to_string()).collect())
        .collect();
    let everything = run_over(&dir, &lines);
    let batch_of = |event_id: &str| {
        batches
            .iter()
            .position(|b| b.iter().any(|l| l.contains(event_id)))
            .unwrap()
    };
    // The batch in flight at the signal: the last one with alerts that is not the last.
    let held = everything
        .iter()
        .map(|(_, _, id)| batch_of(id))
        .filter(|&b| b + 1 < batches.len())
        .max()
        .expect("alerts before the last batch");
    let until = |last: usize| -> Vec<(String, String, String)> {
        everything
            .iter()
            .filter(|(_, _, id)| batch_of(id) <= last)
            .cloned()
            .collect()
    };

    let release = dir.write("release", "");
    let config = dir.write("minewatch.toml", "memory = true\nsettle_ms = 0\n");
    let server = Server::start_env(
        &dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
            "--output",
            "alerts.ndjson",
        ],
        &["HTTP"],
        &[
            ("MINEWATCH_TEST_HOOK", "pause@before-detect"),
            ("MINEWATCH_TEST_RELEASE", release.to_str().unwrap()),
        ],
    );
    let url = server.url("/events");
    let alerts_file = dir.join("alerts.ndjson");
    let written = move || judged(&alerts(&std::fs::read(&alerts_file).unwrap_or_default()));
    // Sends batches from `first` until one is not answered 200; checks each 200 finds
    // the alerts of every batch up to it written; returns the records acknowledged and
    // the batches.
    let raised_in: Vec<_> = everything
        .iter()
        .map(|alert| (alert.clone(), batch_of(&alert.2)))
        .collect();
    let send = {
        let batches = batches.clone();
        move |range: std::ops::Range<usize>| {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let mut acknowledged = (0u64, Vec::new());
            for i in range {
                let body = gzip(batches[i].join("\n").as_bytes());
                match agent
                    .post(&url)
                    .header("Content-Encoding", "gzip")
                    .send(&body[..])
                {
                    Ok(mut response) if response.status() == 200 => {
                        let got = written();
                        let due = raised_in.iter().filter(|(_, b)| *b <= i);
                        for (alert, _) in due {
                            assert!(
                                got.contains(alert),
                                "batch {i} acknowledged before {alert:?} was written"
                            );
                        }
                        let receipt: serde_json::Value =
                            serde_json::from_str(&response.body_mut().read_to_string().unwrap())
                                .unwrap();
                        acknowledged.0 += receipt["records"].as_u64().unwrap();
                        acknowledged.1.push(i);
                    }
                    _ => break,
                }
            }
            acknowledged
        }
    };
    let before = send.clone()(0..held);
    assert_eq!(before.1, (0..held).collect::<Vec<_>>());
    // Hold the next batch inside the pipeline, then signal.
    std::fs::remove_file(&release).unwrap();
    let count = batches.len();
    let client = std::thread::spawn(move || send(held..count));
    server.wait_for_log("Test hook: paused at before-detect", 1);
    server.signal("TERM");
    server.wait_for_log("Shutting down", 1);
    std::fs::write(&release, "").unwrap();
    let after = client.join().unwrap();
    let log = server.stop();
    assert_eq!(
        after.1,
        [held],
        "the batch in flight at the signal is acknowledged, none after it:\n{log}"
    );
    let acknowledged = before.0 + after.0;
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
    let served = judged(&alerts(&std::fs::read(dir.join("alerts.ndjson")).unwrap()));
    assert!(
        until(held).len() > until(held - 1).len(),
        "the batch in flight holds alerts"
    );
    assert_eq!(
        served,
        until(held),
        "the alerts of the acknowledged batches"
    );
}

/// `serve` on a free HTTP port with `record_field` when given, each request run on
/// arrival, alerts to `alerts.ndjson`.
fn serve_with_record_field(dir: &crate::util::Dir, record_field: Option<&str>) -> Server {
    let mut config = "memory = true\nsettle_ms = 0\n".to_string();
    if let Some(field) = record_field {
        config.push_str(&format!("record_field = \"{field}\"\n"));
    }
    config.push_str("[sources.http]\nlisten = \"127.0.0.1:0\"\n");
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

/// `(records, skipped)` of a 200 reply.
fn counts(status: u16, reply: &str) -> (u64, u64) {
    assert_eq!(status, 200, "{reply}");
    let receipt: serde_json::Value = serde_json::from_str(reply).unwrap();
    (
        receipt["records"].as_u64().unwrap(),
        receipt["skipped"].as_u64().unwrap(),
    )
}

/// A field case's file.
fn case(path: &str) -> Vec<u8> {
    std::fs::read(crate::util::data(&format!("field-cases/{path}"))).unwrap()
}

/// A counter of `/metrics` (no token), 0 when absent.
fn counter(server: &Server, sample: &str) -> u64 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let text = agent
        .get(&server.url("/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn well_formed_bodies_without_cloudtrail_are_answered_200_with_their_skips() {
    let (dir, _) = setup();
    let server = serve_with_record_field(&dir, None);
    let url = server.url("/events");
    // Vector's aws_s3 events whose message is a log line, not CloudTrail: skipped, counted,
    // and acknowledged (Vector drops a batch answered 400 for good).
    let mut events: Vec<serde_json::Value> =
        serde_json::from_slice(&case("07-vector-aws-s3-to-http/input.body.json")).unwrap();
    for event in &mut events {
        event["message"] = "GET /index.html 200".into();
    }
    let body = gzip(&serde_json::to_vec(&events).unwrap());
    let (status, reply) = post(
        &url,
        &body,
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
    );
    assert_eq!(counts(status, &reply), (0, 2), "{reply}");
    let (status, reply) = post(&url, b"{\"hello\": \"world\"}\n[1, 2]\n", &[]);
    assert_eq!(counts(status, &reply), (0, 3), "{reply}");
    // Only a body with nothing decodable is a 400.
    let (status, reply) = post(&url, &gzip(b"not json\nnor this\n"), &[]);
    assert_eq!(status, 400, "{reply}");
    assert!(reply.contains("invalid-json"), "{reply}");
    let (status, reply) = post(
        &url,
        &[0x1f, 0x8b, 8, 0, 0, 0],
        &[("Content-Type", "application/json")],
    );
    assert_eq!(status, 400, "broken gzip: {reply}");
    // Fluent Bit's msgpack labelled JSON: refused, saying what it is.
    let (status, reply) = post(
        &url,
        &case("08-fluent-bit-out-http-formats/input.body-msgpack.bin"),
        &[("Content-Type", "application/json")],
    );
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply.contains("send it with Content-Type: application/msgpack"),
        "{reply}"
    );
    assert_eq!(
        counter(
            &server,
            "minewatch_events_skipped_total{reason=\"not-cloudtrail\"}"
        ),
        3
    );
    server.stop();
}

#[test]
fn vector_aws_s3_delivery_files_inside_message_are_read() {
    let headers = [
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
        ("User-Agent", "Vector/0.58.0 (x86_64-unknown-linux-gnu)"),
    ];
    for record_field in [None, Some("message")] {
        let (dir, _) = setup();
        let server = serve_with_record_field(&dir, record_field);
        let url = server.url("/events");
        // The message as JSON text (as sent), and as an object (after a parse_json remap).
        let plain = post(
            &url,
            &case("07-vector-aws-s3-to-http/input.body.json.gz"),
            &headers,
        );
        let parsed = post(
            &url,
            &gzip(&case("07-vector-aws-s3-to-http/input.body-parsed.json")),
            &headers,
        );
        for (status, reply) in [plain, parsed] {
            assert_eq!(counts(status, &reply), (3, 0), "{record_field:?}: {reply}");
        }
        // Each body: two launches and a DescribeInstances the detector does not subscribe to.
        assert_eq!(counter(&server, "minewatch_events_received_total"), 6);
        assert_eq!(counter(&server, "minewatch_events_unsubscribed_total"), 2);
        server.stop();
    }
}

#[test]
fn fluent_bit_out_http_bodies_in_every_format_are_read() {
    let bodies = [
        ("input.body-json.json", "application/json"),
        ("input.body-json_lines.ndjson", "application/json"),
        ("input.body-msgpack.bin", "application/msgpack"),
    ];
    for record_field in [Some("log"), None] {
        let (dir, _) = setup();
        let server = serve_with_record_field(&dir, record_field);
        for (file, content_type) in bodies {
            let body = gzip(&case(&format!("08-fluent-bit-out-http-formats/{file}")));
            let (status, reply) = post(
                &server.url("/events"),
                &body,
                &[
                    ("Content-Type", content_type),
                    ("Content-Encoding", "gzip"),
                    ("User-Agent", "Fluent-Bit"),
                ],
            );
            let (records, skipped) = counts(status, &reply);
            match record_field {
                // The RunInstances and the DescribeInstances beside it.
                Some(_) => assert_eq!((records, skipped), (2, 0), "{file}: {reply}"),
                // Without record_field the intake finds the record under `log` itself.
                None => assert_eq!(records + skipped, 2, "{file}: {reply}"),
            }
        }
        if record_field.is_some() {
            assert_eq!(counter(&server, "minewatch_events_received_total"), 6);
            assert_eq!(counter(&server, "minewatch_events_unsubscribed_total"), 3);
        }
        server.stop();
    }
}

/// Fluent Bit, tailing `dir/cloudtrail/*.ndjson` with the json parser, posting to `port`
/// with `out_http` in msgpack; killed when dropped.
struct FluentBit(std::process::Child);

impl Drop for FluentBit {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn fluent_bit_out_http_in_msgpack_reaches_the_detector() {
    let Some(fluent_bit) = crate::peers::peer("fluent-bit") else {
        return;
    };
    let (dir, _) = setup();
    std::fs::create_dir_all(dir.join("cloudtrail")).unwrap();
    std::fs::copy(
        crate::util::data("conformance/failures-ignored/events.ndjson"),
        dir.join("cloudtrail/trail.ndjson"),
    )
    .unwrap();
    let server = serve_with_record_field(&dir, None);
    dir.write(
        "parsers.conf",
        "[PARSER]\n    Name   json\n    Format json\n",
    );
    // Fluent Bit 5.1.1 defaults to Format json; msgpack is asked for, and comes as
    // application/msgpack, gzip-encoded, one [[time, metadata], record] entry per line.
    let config = format!(
        "[SERVICE]\n    Flush 1\n    Parsers_File parsers.conf\n\n\
         [INPUT]\n    Name tail\n    Path {}\n    Tag cloudtrail\n    Parser json\n    Read_from_Head true\n\n\
         [OUTPUT]\n    Name http\n    Match cloudtrail\n    Host 127.0.0.1\n    Port {}\n    URI /events\n    Format msgpack\n    compress gzip\n",
        dir.join("cloudtrail/*.ndjson").display(),
        server.http.port()
    );
    dir.write("fluent-bit.conf", config);
    let log = std::fs::File::create(dir.join("fluent-bit.log")).unwrap();
    let _peer = FluentBit(
        std::process::Command::new(&fluent_bit)
            .args(["-c", "fluent-bit.conf"])
            .current_dir(dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let written = || {
        std::fs::read(dir.join("alerts.ndjson"))
            .map(|bytes| unique_pairs(&alerts(&bytes)))
            .unwrap_or_default()
    };
    for _ in 0..600 {
        if written().len() >= 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let peer_log = std::fs::read_to_string(dir.join("fluent-bit.log")).unwrap_or_default();
    server.stop();
    let got = written();
    let keys: Vec<&str> = got.iter().map(|(_, key)| key.as_str()).collect();
    assert_eq!(
        got.len(),
        4,
        "mallory's four new values: {got:?}\n{peer_log}"
    );
    assert!(
        keys.contains(&"arn:aws:iam::111122223333:user/mallory"),
        "{keys:?}"
    );
    assert!(peer_log.contains("HTTP status=200"), "{peer_log}");
    assert!(!peer_log.contains("HTTP status=4"), "{peer_log}");
}
