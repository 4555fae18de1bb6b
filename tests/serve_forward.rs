//! `minewatch serve` fed by real Fluent Forward clients, and outputs that go down.
//!
//! The Forward clients are npm `@fluent-org/logger` and PyPI `fluent-logger`, installed
//! by `.ci/run` (see tests/peers/fluent/README.md).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{
    Receiver, Server, alerts, command, generate_scenario, gzip, post, setup, unique_pairs,
};

/// The Python with the PyPI Forward client: `MINEWATCH_PYTHON` (`.ci/run` points it at
/// the virtual environment it installs into), else `python3`.
fn python() -> String {
    std::env::var("MINEWATCH_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn peers() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/fluent")
}

fn scenario(dir: &crate::util::Dir) -> std::collections::BTreeSet<(String, String)> {
    generate_scenario(dir, 3, "scenario.ndjson");
    let mut run = command(dir);
    unique_pairs(&alerts(
        &run.args(["run", "--memory", "--input", "scenario.ndjson"])
            .ok(dir)
            .stdout,
    ))
}

#[test]
fn the_scenario_over_forward_from_fluent_org_logger_gives_the_alerts_of_run() {
    assert!(
        peers().join("node_modules/@fluent-org/logger").exists(),
        "install the Forward peers: npm ci --prefix tests/peers/fluent"
    );
    let (dir, _) = setup();
    let expected = scenario(&dir);
    let server = Server::start_with(
        &dir,
        &[
            "--forward",
            "127.0.0.1:0",
            "--memory",
            "--output",
            "alerts.ndjson",
        ],
        &["Fluent Forward"],
    );
    let status = Command::new("node")
        .arg(peers().join("send_fluent_org_logger.js"))
        .args([
            "--port",
            &server.forward.port().to_string(),
            "--tag",
            "cloudtrail",
            "--mode",
            "PackedForward",
            "--ack",
        ])
        .args(["--event-time", "--timeout-ms", "120000", "--records"])
        .arg(dir.join("scenario.ndjson"))
        .status()
        .unwrap();
    assert!(status.success(), "every chunk acknowledged");
    server.stop();
    assert_eq!(
        unique_pairs(&alerts(&std::fs::read(dir.join("alerts.ndjson")).unwrap())),
        expected
    );
}

#[test]
fn fluent_logger_for_python_reaches_the_detector() {
    let probe = Command::new(python())
        .args(["-c", "import fluent.sender"])
        .status()
        .unwrap();
    assert!(
        probe.success(),
        "install the Forward peers: python3 -m venv tests/peers/fluent/.venv && tests/peers/fluent/.venv/bin/pip install -r tests/peers/fluent/requirements.txt, and set MINEWATCH_PYTHON=tests/peers/fluent/.venv/bin/python"
    );
    let (dir, _) = setup();
    let server = Server::start_with(
        &dir,
        &[
            "--forward",
            "127.0.0.1:0",
            "--memory",
            "--output",
            "alerts.ndjson",
        ],
        &["Fluent Forward"],
    );
    let status = Command::new(python())
        .arg(peers().join("send_fluent_logger.py"))
        .args([
            "--port",
            &server.forward.port().to_string(),
            "--tag",
            "cloudtrail",
            "--records",
        ])
        .arg(crate::util::data(
            "conformance/failures-ignored/events.ndjson",
        ))
        .status()
        .unwrap();
    assert!(status.success());
    // The Python sender does not wait for acks: wait until the alerts are written (each
    // record is its own message, judged after the settle time), then drain.
    let written = || {
        std::fs::read(dir.join("alerts.ndjson"))
            .map(|bytes| unique_pairs(&alerts(&bytes)))
            .unwrap_or_default()
    };
    for _ in 0..600 {
        if written().len() >= 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop();
    let got = written();
    assert_eq!(got.len(), 4, "{got:?}");
}

#[test]
fn an_alert_receiver_down_for_30_seconds_loses_and_duplicates_nothing() {
    let (dir, _) = setup();
    let expected = scenario(&dir);
    let mut receiver = Receiver::start();
    let config = dir.write(
        "outputs.toml",
        format!(
            "memory = true\nspool_dir = \"spool\"\n[[outputs]]\ntype = \"http\"\nname = \"receiver\"\nendpoint = \"http://{}/alerts\"\nretry_max_ms = 1000\n",
            receiver.addr
        ),
    );
    let server = Server::start(
        &dir,
        &[
            "--http",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(dir.join("scenario.ndjson")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let send = |part: &[&str]| {
        for batch in part.chunks(1000) {
            let (status, reply) = post(
                &server.url("/events"),
                &gzip(batch.join("\n").as_bytes()),
                &[("Content-Encoding", "gzip")],
            );
            assert_eq!(status, 200, "{reply}");
        }
    };
    send(first);
    receiver.stop();
    send(second);
    std::thread::sleep(Duration::from_secs(30));
    receiver.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    while receiver.lines().len() < expected.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    server.stop();
    let received: Vec<serde_json::Value> = receiver
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(unique_pairs(&received), expected, "each alert exactly once");
}

#[test]
fn a_full_output_spool_turns_into_503_with_retry_after() {
    let (dir, _) = setup();
    // Nothing listens on the receiver's port, and the spool holds about one alert.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = dir.write(
        "tiny.toml",
        format!(
            "memory = true\nspool_dir = \"spool\"\n[[outputs]]\ntype = \"http\"\nname = \"down\"\nendpoint = \"http://{dead}/\"\nspool_max_bytes = 100\n"
        ),
    );
    let server = Server::start(
        &dir,
        &[
            "--http",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let history = std::fs::read(crate::util::data(
        "conformance/failures-ignored/events.ndjson",
    ))
    .unwrap();
    let (status, reply) = post(&server.url("/events"), &history, &[]);
    assert_eq!(
        status, 200,
        "the batch with four alerts is spooled: {reply}"
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .post(server.url("/events"))
        .send(&history[..])
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        503,
        "the spool is over its limit"
    );
    assert_eq!(response.headers().get("retry-after").unwrap(), "1");
    server.stop();
}
