//! TLS with the real peers in `../shared/peers/` (found through `MINEWATCH_FLUENT_BIT`
//! and `MINEWATCH_VECTOR`): Fluent Bit's `out_forward` with `tls on` and Vector's `http`
//! sink with `tls.ca_file` feed `minewatch serve`, and the alerts equal `minewatch run`
//! over the same slice of the generated scenario; minewatch's `forward` output with
//! `tls = true` feeds Fluent Bit's `in_forward` with `tls on`.
//!
//! The slice is the three days from the first incident on; both sides start from the
//! same baselines, built from everything before it, so the peers' default concurrency
//! (several chunks or requests in flight, arriving out of order) cannot change which
//! values are new. Under `CI=true` a missing peer fails the test; elsewhere it is
//! skipped with a note.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::peers::peer;
use crate::pki::Pki;
use crate::util::{Dir, Server, alerts, command, generate_scenario, setup, unique_pairs};

/// A peer process, killed when dropped; its output goes to a file in the test directory.
struct Peer {
    child: Child,
    log: PathBuf,
}

impl Peer {
    fn start(binary: &Path, args: &[&str], dir: &Dir, log: &str) -> Peer {
        let log = dir.join(log);
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary)
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", binary.display()));
        Peer { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The slice and the alerts `minewatch run` raises over it.
struct Slice {
    /// Records of the slice, one per line.
    lines: usize,
    /// `(detection, key)` of the alerts of `run`.
    expected: std::collections::BTreeSet<(String, String)>,
}

/// Writes `slice.ndjson` (three days from the first incident), builds the baselines of
/// everything before it into `serve-state`, and runs `minewatch run` over the slice
/// from a copy of the same baselines.
fn slice(dir: &Dir, seed: u64) -> Slice {
    generate_scenario(dir, seed, "scenario.ndjson");
    let full = alerts(
        &command(dir)
            .args(["run", "--memory", "--input", "scenario.ndjson"])
            .ok(dir)
            .stdout,
    );
    let first = full
        .iter()
        .filter_map(|a| a["time"].as_str())
        .min()
        .expect("the scenario has incidents")
        .to_string();
    let day = |t: &str| chrono::NaiveDate::parse_from_str(&t[..10], "%Y-%m-%d").unwrap();
    let from = day(&first);
    let to = from + chrono::Days::new(3);
    let text = std::fs::read_to_string(dir.join("scenario.ndjson")).unwrap();
    let (mut history, mut slice) = (String::new(), String::new());
    let mut lines = 0;
    for line in text.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let when = day(record["eventTime"].as_str().unwrap());
        if when < from {
            history.push_str(line);
            history.push('\n');
        } else if when < to {
            slice.push_str(line);
            slice.push('\n');
            lines += 1;
        }
    }
    dir.write("history.ndjson", history);
    dir.write("slice.ndjson", slice);
    command(dir)
        .args([
            "baseline",
            "build",
            "--input",
            "history.ndjson",
            "--state",
            "serve-state",
        ])
        .ok(dir);
    copy_dir(&dir.join("serve-state"), &dir.join("run-state"));
    let expected = unique_pairs(&alerts(
        &command(dir)
            .args(["run", "--state", "run-state", "--input", "slice.ndjson"])
            .ok(dir)
            .stdout,
    ));
    assert!(
        expected.len() >= 2,
        "the slice holds an incident: {expected:?}"
    );
    Slice { lines, expected }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The records `serve` has taken (`minewatch_events_received_total` of `/metrics`).
fn records_taken(agent: &ureq::Agent, url: &str, token: Option<&str>) -> u64 {
    let mut request = agent.get(url);
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let text = request
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .unwrap_or_default();
    text.lines()
        .find(|l| l.split([' ', '{']).next() == Some("minewatch_events_received_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Waits (up to five minutes) until `serve` has taken every record of the slice.
fn wait_for_records(taken: impl Fn() -> u64, lines: usize, server: &Server, peer: &Peer) {
    for _ in 0..3000 {
        if taken() >= lines as u64 {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "serve took {} of {lines} records\nserve:\n{}\npeer:\n{}",
        taken(),
        server.log(),
        peer.log()
    );
}

#[test]
fn fluent_bit_forwards_over_verified_tls_and_the_alerts_are_those_of_run() {
    let Some(fluent_bit) = peer("fluent-bit") else {
        return;
    };
    let (dir, _) = setup();
    let slice = slice(&dir, 11);
    let pki = Pki::new(dir.path(), "fluent");
    let identity = pki.server("minewatch");
    let config = dir.write(
        "serve.toml",
        format!(
            "state_dir = \"serve-state\"\nrecord_field = \"log\"\n\
             [sources.http]\nlisten = \"127.0.0.1:0\"\n\
             [sources.forward]\nlisten = \"127.0.0.1:0\"\nshared_key = \"fluent-s3cret\"\n\
             tls_cert = {:?}\ntls_key = {:?}\n\
             [[outputs]]\ntype = \"file\"\npath = \"served.ndjson\"\n",
            identity.cert(),
            identity.key()
        ),
    );
    let server = Server::start_with(
        &dir,
        &["--config", config.to_str().unwrap()],
        &["HTTP", "Fluent Forward"],
    );
    let fluent_config = dir.write(
        "fluent-bit.conf",
        format!(
            "[SERVICE]\n    Flush 1\n    Log_Level info\n\n\
             [INPUT]\n    Name tail\n    Path {slice}\n    Tag cloudtrail\n    Read_from_Head true\n\
             \x20   Buffer_Max_Size 1M\n\n\
             [OUTPUT]\n    Name forward\n    Match cloudtrail\n    Host 127.0.0.1\n    Port {port}\n\
             \x20   Shared_Key fluent-s3cret\n    Self_Hostname fluent-bit-test\n\
             \x20   Require_ack_response true\n\
             \x20   tls on\n    tls.verify on\n    tls.verify_hostname on\n    tls.vhost localhost\n\
             \x20   tls.ca_file {ca}\n",
            slice = dir.join("slice.ndjson").display(),
            port = server.forward.port(),
            ca = pki.ca().display(),
        ),
    );
    let fluent = Peer::start(
        &fluent_bit,
        &["-c", fluent_config.to_str().unwrap()],
        &dir,
        "fluent-bit.log",
    );
    let plain: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let metrics = server.url("/metrics");
    wait_for_records(
        || records_taken(&plain, &metrics, None),
        slice.lines,
        &server,
        &fluent,
    );
    let log = server.stop();
    assert!(
        !log.contains("TLS handshake failed"),
        "every handshake succeeded:\n{log}"
    );
    let served = unique_pairs(&alerts(&std::fs::read(dir.join("served.ndjson")).unwrap()));
    assert_eq!(served, slice.expected, "fluent bit:\n{}", fluent.log());
}

#[test]
fn vector_posts_over_tls_with_its_ca_file_and_the_alerts_are_those_of_run() {
    let Some(vector) = peer("vector") else {
        return;
    };
    let (dir, _) = setup();
    let slice = slice(&dir, 12);
    let pki = Pki::new(dir.path(), "vector");
    let identity = pki.server("minewatch");
    let config = dir.write(
        "serve.toml",
        format!(
            "state_dir = \"serve-state\"\n\
             [sources.http]\nlisten = \"127.0.0.1:0\"\ntls_cert = {:?}\ntls_key = {:?}\n\
             [[outputs]]\ntype = \"file\"\npath = \"served.ndjson\"\n",
            identity.cert(),
            identity.key()
        ),
    );
    let server = Server::start_env(
        &dir,
        &["--config", config.to_str().unwrap()],
        &["HTTP"],
        &[("MINEWATCH_HTTP_TOKEN", "vector-t0ken")],
    );
    std::fs::create_dir_all(dir.join("vector-data")).unwrap();
    let vector_config = dir.write(
        "vector.toml",
        format!(
            "data_dir = {data:?}\n\n\
             [sources.trail]\ntype = \"file\"\ninclude = [{slice:?}]\nread_from = \"beginning\"\n\n\
             [transforms.records]\ntype = \"remap\"\ninputs = [\"trail\"]\n\
             source = '. = parse_json!(string!(.message))'\n\n\
             [sinks.minewatch]\ntype = \"http\"\ninputs = [\"records\"]\n\
             uri = \"https://localhost:{port}/events\"\nmethod = \"post\"\ncompression = \"gzip\"\n\
             encoding.codec = \"json\"\nframing.method = \"newline_delimited\"\n\
             batch.max_events = 200\nbatch.timeout_secs = 1\n\
             request.headers.Authorization = \"Bearer vector-t0ken\"\n\
             tls.ca_file = {ca:?}\nacknowledgements.enabled = true\n",
            data = dir.join("vector-data").to_str().unwrap(),
            slice = dir.join("slice.ndjson").to_str().unwrap(),
            port = server.http.port(),
            ca = pki.ca_str(),
        ),
    );
    let vector = Peer::start(
        &vector,
        &["--config", vector_config.to_str().unwrap()],
        &dir,
        "vector.log",
    );
    let agent = crate::pki::https_agent(&pki.ca(), None);
    let metrics = format!("https://localhost:{}/metrics", server.http.port());
    wait_for_records(
        || records_taken(&agent, &metrics, Some("vector-t0ken")),
        slice.lines,
        &server,
        &vector,
    );
    let log = server.stop();
    assert!(!log.contains("TLS handshake failed"), "{log}");
    let served = unique_pairs(&alerts(&std::fs::read(dir.join("served.ndjson")).unwrap()));
    assert_eq!(served, slice.expected, "vector:\n{}", vector.log());
}

#[test]
fn minewatch_forwards_alerts_to_fluent_bit_in_forward_over_tls() {
    let Some(fluent_bit) = peer("fluent-bit") else {
        return;
    };
    let (dir, _) = setup();
    let pki = Pki::new(dir.path(), "in-forward");
    let identity = pki.server("fluent-bit");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let fluent_config = dir.write(
        "fluent-bit.conf",
        format!(
            "[SERVICE]\n    Flush 1\n    Log_Level info\n\n\
             [INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port {port}\n\
             \x20   tls on\n    tls.verify off\n    tls.crt_file {cert}\n    tls.key_file {key}\n\n\
             [OUTPUT]\n    Name file\n    Match minewatch.*\n    Path {out}\n    File alerts.out\n\
             \x20   Format plain\n",
            cert = identity.cert(),
            key = identity.key(),
            out = dir.path().display(),
        ),
    );
    let fluent = Peer::start(
        &fluent_bit,
        &["-c", fluent_config.to_str().unwrap()],
        &dir,
        "fluent-bit.log",
    );
    let config = dir.write(
        "serve.toml",
        format!(
            "memory = true\nspool_dir = \"spool\"\n[[outputs]]\ntype = \"forward\"\nname = \"fluent-bit\"\n\
             address = \"127.0.0.1:{port}\"\ntls = true\ntls_server_name = \"localhost\"\n\
             ca_file = {:?}\nretry_max_ms = 500\n",
            pki.ca_str()
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
    let events = std::fs::read(crate::util::data(
        "conformance/failures-ignored/events.ndjson",
    ))
    .unwrap();
    let (status, reply) = crate::util::post(&server.url("/events"), &events, &[]);
    assert_eq!(status, 200, "{reply}");
    let mut got = Vec::new();
    for _ in 0..1200 {
        got = std::fs::read(dir.join("alerts.out"))
            .map(|b| alerts(&b))
            .unwrap_or_default();
        if got.len() >= 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop();
    assert_eq!(
        got.len(),
        4,
        "fluent bit wrote {got:?}\nfluent bit:\n{}",
        fluent.log()
    );
    let detections: std::collections::BTreeSet<&str> =
        got.iter().filter_map(|a| a["detection"].as_str()).collect();
    assert_eq!(detections.len(), 4, "{got:?}");
}
