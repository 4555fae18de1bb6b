//! What an operator of `serve` relies on: a reloaded token is in force, and
//! what a reload cannot apply is named; HTTP errors in JSON and counted; `localhost`
//! listeners; `/metrics` by Prometheus conventions from start-up; `/ready` that follows
//! the store, the outputs and the pipelines.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fleet::Redis;
use crate::util::{Dir, Server, gzip, launch, ndjson, post, setup};

/// GETs a path with an optional bearer token; returns status and body.
fn get(server: &Server, path: &str, token: Option<&str>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.get(&server.url(path));
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let mut response = request.call().unwrap();
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// Polls `check` every 100 ms until it holds; panics with `what` and the log after a
/// minute.
fn eventually(server: &Server, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} never happened:\n{}", server.log());
}

/// The status `/events` answers a small valid body sent with `token`.
fn events_status(server: &Server, token: &str) -> u16 {
    let body = ndjson(&[launch(
        "2024-01-01T00:00:00Z",
        "arn:aws:iam::111122223333:user/ops",
        "us-east-1",
        "ami-1",
        "t3.micro",
        "0001",
    )]);
    let auth = format!("Bearer {token}");
    post(
        &server.url("/events"),
        body.as_bytes(),
        &[("Authorization", &auth)],
    )
    .0
}

fn config(dir: &Dir, token: &str, extra: &str) -> PathBuf {
    dir.write(
        "minewatch.toml",
        format!(
            "memory = true\nspool_dir = \"spool\"\nsettle_ms = 0\n{extra}\n[sources.http]\ntoken = \"{token}\"\n\n[[outputs]]\ntype = \"file\"\npath = \"alerts.ndjson\"\n"
        ),
    )
}

#[test]
fn a_token_changed_in_the_config_is_in_force_after_sighup() {
    let (dir, _) = setup();
    config(&dir, "old-token", "");
    let server = Server::start(
        &dir,
        &["--config", "minewatch.toml", "--http", "localhost:0"],
    );
    assert_eq!(events_status(&server, "old-token"), 200);
    assert_eq!(events_status(&server, "new-token"), 401);

    config(&dir, "new-token", "");
    server.signal("HUP");
    eventually(&server, "the new token taking over", || {
        events_status(&server, "new-token") == 200
    });
    assert_eq!(events_status(&server, "old-token"), 401);
    assert_eq!(get(&server, "/metrics", Some("old-token")).0, 401);
    assert_eq!(get(&server, "/metrics", Some("new-token")).0, 200);
    server.wait_for_log("The HTTP token changed", 1);
    assert!(!server.log().contains("new-token"), "{}", server.log());

    // What a reload cannot apply is refused by name, never silently ignored.
    config(&dir, "new-token", "queue_batches = 3\nbatch_events = 7");
    server.signal("HUP");
    server.wait_for_log("Refused to reload settings that need a restart", 1);
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("Refused to reload settings"))
        .unwrap();
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("queue_batches"), "{line}");
    assert!(line.contains("batch_events"), "{line}");
    assert!(!line.contains("sources.http.listen"), "{line}");
    assert_eq!(events_status(&server, "new-token"), 200);
    server.stop();
}

#[test]
fn a_reload_keeps_the_token_of_the_environment_and_names_a_new_listen_address() {
    let (dir, _) = setup();
    let file = |listen: &str, token: &str| {
        format!(
            "memory = true\nspool_dir = \"spool\"\nsettle_ms = 0\n[sources.http]\nlisten = \"{listen}\"\ntoken = \"{token}\"\n\n[[outputs]]\ntype = \"file\"\npath = \"alerts.ndjson\"\n"
        )
    };
    dir.write("minewatch.toml", file("127.0.0.1:0", "file-token"));
    let server = Server::start_env(
        &dir,
        &["--config", "minewatch.toml"],
        &["HTTP"],
        &[("MINEWATCH_HTTP_TOKEN", "env-token")],
    );
    assert_eq!(events_status(&server, "env-token"), 200);
    assert_eq!(events_status(&server, "file-token"), 401);

    dir.write("minewatch.toml", file("localhost:1", "file-token-2"));
    server.signal("HUP");
    server.wait_for_log("Refused to reload settings that need a restart", 1);
    assert!(
        server.log().contains("sources.http.listen"),
        "{}",
        server.log()
    );
    assert_eq!(events_status(&server, "env-token"), 200);
    assert_eq!(events_status(&server, "file-token-2"), 401);
    server.stop();
}

/// Request headers, as `post` takes them.
type Headers = Vec<(&'static str, &'static str)>;

#[test]
fn http_errors_are_json_and_every_answer_is_counted() {
    let (dir, _) = setup();
    dir.write(
        "minewatch.toml",
        "memory = true\nspool_dir = \"spool\"\nsettle_ms = 0\n[sources.http]\nlisten = \"localhost:0\"\nmax_body_bytes = 4096\n\n[[outputs]]\ntype = \"file\"\npath = \"alerts.ndjson\"\n",
    );
    let server = Server::start(&dir, &["--config", "minewatch.toml"]);
    let big = "x".repeat(10_000);
    let cases: Vec<(&str, u16, Vec<u8>, Headers)> = vec![
        (
            "brotli",
            415,
            b"{}".to_vec(),
            vec![("Content-Encoding", "br")],
        ),
        (
            "broken gzip",
            400,
            b"not gzip at all".to_vec(),
            vec![("Content-Encoding", "gzip")],
        ),
        ("oversized", 413, big.clone().into_bytes(), vec![]),
        (
            "oversized once decompressed",
            413,
            gzip(big.as_bytes()),
            vec![("Content-Encoding", "gzip")],
        ),
    ];
    for (what, status, body, headers) in &cases {
        let (got, reply) = post(&server.url("/events"), body, headers);
        assert_eq!(got, *status, "{what}: {reply}");
        let json: Value = serde_json::from_str(&reply)
            .unwrap_or_else(|e| panic!("{what}: the {got} body is not JSON ({e}): {reply:?}"));
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {reply}"
        );
    }
    let (got, reply) = post(&server.url("/no-such-path"), b"{}", &[]);
    assert_eq!(got, 404);
    let json: Value = serde_json::from_str(&reply).expect("a JSON 404");
    assert!(json["error"].is_string(), "{reply}");
    let (got, reply) = get(&server, "/events", None);
    assert_eq!(got, 405);
    let json: Value = serde_json::from_str(&reply).expect("a JSON 405");
    assert!(json["error"].is_string(), "{reply}");

    let metrics = get(&server, "/metrics", None).1;
    for (status, count) in [("415", 1), ("400", 1), ("413", 2), ("404", 1), ("405", 1)] {
        let sample =
            format!("minewatch_requests_total{{source=\"http\",status=\"{status}\"}} {count}");
        assert!(metrics.contains(&sample), "{sample} missing:\n{metrics}");
    }
    server.stop();
}

/// The metric names `serve`'s README (host/src/serve/README.md) documents, from the table
/// of its "Metrics" section.
fn documented_metrics() -> BTreeMap<String, String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/serve/README.md"))
            .unwrap();
    let section = readme
        .split("\n### Metrics\n")
        .nth(1)
        .expect("host/src/serve/README.md has a Metrics section")
        .split("\n#")
        .next()
        .unwrap();
    let documented: BTreeMap<String, String> = section
        .lines()
        .filter_map(|line| {
            let name = line.strip_prefix("| `")?.split('`').next()?;
            let kind = line.split('|').nth(2)?.trim();
            Some((name.to_string(), kind.to_string()))
        })
        .collect();
    assert!(documented.len() >= 25, "{documented:?}");
    documented
}

#[test]
fn metrics_follow_prometheus_conventions_from_start_up() {
    let (dir, _) = setup();
    let nobody = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = nobody.local_addr().unwrap();
    drop(nobody);
    dir.write(
        "minewatch.toml",
        format!(
            "memory = true\nspool_dir = \"spool\"\n[sources.http]\nlisten = \"localhost:0\"\n[sources.forward]\nlisten = \"localhost:0\"\n\n\
             [[outputs]]\ntype = \"http\"\nname = \"siem\"\nendpoint = \"http://{dead}/\"\n\n\
             [[outputs]]\ntype = \"file\"\nname = \"archive\"\npath = \"alerts.ndjson\"\n"
        ),
    );
    let server = Server::start_with(
        &dir,
        &["--config", "minewatch.toml"],
        &["HTTP", "Fluent Forward"],
    );
    let text = get(&server, "/metrics", None).1;

    let mut help = BTreeSet::new();
    let mut types = BTreeMap::new();
    let mut samples = BTreeSet::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, words) = rest.split_once(' ').unwrap();
            assert!(!words.trim().is_empty(), "{line}");
            help.insert(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_string(), kind.to_string());
        } else {
            let name = line.split(['{', ' ']).next().unwrap();
            samples.insert(name.to_string());
        }
    }
    for name in &samples {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(help.contains(family), "no HELP for {family}:\n{text}");
        assert!(types.contains_key(family), "no TYPE for {family}:\n{text}");
    }
    assert!(!types.values().any(|t| t == "summary"), "{text}");
    for latency in [
        "minewatch_ack_seconds",
        "minewatch_guest_call_seconds",
        "minewatch_store_call_seconds",
        "minewatch_store_commit_seconds",
    ] {
        assert_eq!(
            types.get(latency).map(String::as_str),
            Some("histogram"),
            "{latency}:\n{text}"
        );
    }
    for (name, kind) in documented_metrics() {
        if name == "minewatch_tls_handshake_errors_total" {
            continue; // Documented as present with TLS only.
        }
        assert_eq!(
            types.get(&name),
            Some(&kind),
            "{name} is documented as a {kind}:\n{text}"
        );
    }
    for sample in [
        "minewatch_requests_total{source=\"forward\",status=\"ok\"} 0",
        "minewatch_requests_total{source=\"http\",status=\"200\"} 0",
        "minewatch_ack_seconds_count{source=\"forward\"} 0",
        "minewatch_alerts_sent_total{output=\"archive\"} 0",
        "minewatch_alerts_sent_total{output=\"siem\"} 0",
        "minewatch_spool_bytes{output=\"siem\"} 0",
        "minewatch_events_skipped_total{reason=\"invalid-json\"} 0",
        "minewatch_guest_call_seconds_count{tenant=\"default\"} 0",
        "minewatch_store_up 1",
    ] {
        assert!(text.contains(sample), "{sample} missing:\n{text}");
    }
    server.stop();
}

#[test]
fn alerts_written_to_a_file_are_counted_as_sent() {
    let (dir, _) = setup();
    dir.write(
        "minewatch.toml",
        "memory = true\nspool_dir = \"spool\"\nsettle_ms = 0\n[sources.http]\nlisten = \"127.0.0.1:0\"\n\n[[outputs]]\ntype = \"file\"\nname = \"archive\"\npath = \"alerts.ndjson\"\npassthrough = true\n",
    );
    let server = Server::start(&dir, &["--config", "minewatch.toml"]);
    assert_eq!(events_status(&server, "unused"), 200);
    let text = get(&server, "/metrics", None).1;
    assert!(
        text.contains("minewatch_alerts_sent_total{output=\"archive\"} 1"),
        "{text}"
    );
    server.stop();
}

/// `/ready`'s status and reasons.
fn readiness(server: &Server) -> (u16, Vec<String>) {
    let (status, body) = get(server, "/ready", None);
    let json: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let reasons = json["reasons"]
        .as_array()
        .map(|r| r.iter().map(|r| r.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    match status {
        200 => assert_eq!(json["status"], "ready", "{body}"),
        _ => assert_eq!(json["status"], "not ready", "{body}"),
    }
    (status, reasons)
}

#[test]
fn ready_fails_while_redis_is_down_and_recovers_with_it() {
    let (dir, _) = setup();
    let mut redis = Redis::start(&dir.join("redis"));
    let url = redis.url();
    let server = Server::start(
        &dir,
        &[
            "--http",
            "127.0.0.1:0",
            "--redis",
            &url,
            "--http-token",
            "secret",
        ],
    );
    assert_eq!(readiness(&server), (200, Vec::new()));
    assert_eq!(get(&server, "/health", None).0, 200);

    redis.kill();
    let mut seen = Vec::new();
    eventually(&server, "/ready answering 503 for the store", || {
        let (status, reasons) = readiness(&server);
        seen = reasons;
        status == 503
    });
    assert!(
        seen.iter()
            .any(|r| r.starts_with("store:") && r.contains("Redis")),
        "{seen:?}"
    );
    let metrics = get(&server, "/metrics", Some("secret")).1;
    assert!(metrics.contains("minewatch_store_up 0"), "{metrics}");

    redis.launch();
    eventually(&server, "/ready answering 200 again", || {
        readiness(&server).0 == 200
    });
    let metrics = get(&server, "/metrics", Some("secret")).1;
    assert!(metrics.contains("minewatch_store_up 1"), "{metrics}");
    server.stop();
}

#[test]
fn ready_names_an_output_whose_spool_is_full() {
    let (dir, _) = setup();
    let nobody = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = nobody.local_addr().unwrap();
    drop(nobody);
    dir.write(
        "minewatch.toml",
        format!(
            "settle_ms = 0\n[sources.http]\nlisten = \"127.0.0.1:0\"\n\n\
             [[outputs]]\ntype = \"http\"\nname = \"siem\"\nendpoint = \"http://{dead}/\"\n\
             passthrough = true\nspool_max_bytes = 512\n"
        ),
    );
    let server = Server::start(&dir, &["--config", "minewatch.toml", "--state", "state"]);
    assert_eq!(readiness(&server), (200, Vec::new()));
    let records: Vec<Value> = (0..5)
        .map(|i| {
            launch(
                "2024-01-01T00:00:00Z",
                "arn:aws:iam::111122223333:user/ops",
                "us-east-1",
                "ami-1",
                "t3.micro",
                &format!("{i:04}"),
            )
        })
        .collect();
    let (status, reply) = post(&server.url("/events"), ndjson(&records).as_bytes(), &[]);
    assert_eq!(status, 200, "{reply}");
    let (status, reasons) = readiness(&server);
    assert_eq!(status, 503, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("output siem:") && r.contains("spool is full")),
        "{reasons:?}"
    );
    server.stop();
}
