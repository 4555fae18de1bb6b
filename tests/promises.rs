//! The acknowledgement promises of host/src/serve/README.md, each under the fault that would break it,
//! against the real binary: an HTTP 200 or a Forward ack comes only after the alerts are
//! written; an output that cannot write or a full spool withholds it; a crash between
//! the alert sync and the baseline commit repeats alerts and never loses one; learned
//! keys and spooled alerts survive a SIGKILL.
//!
//! Faults are placed with the test-only hook of `host/src/test_hook.rs`
//! (`MINEWATCH_TEST_HOOK=pause@<point>` or `crash@<point>`, debug builds only).

use std::io::Write;
use std::sync::mpsc;

use serde_json::Value;

use crate::util::{Dir, Receiver, Server, alerts, data, setup, unique_pairs};

/// The conformance case whose last launch (mallory's) raises four unseen-value alerts.
fn mallory_case() -> Vec<String> {
    std::fs::read_to_string(data("conformance/failures-ignored/events.ndjson"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Mallory's four alerts, `(detection, key)`.
fn mallory_alerts() -> std::collections::BTreeSet<(String, String)> {
    [
        ("ec2-unseen-user", "arn:aws:iam::111122223333:user/mallory"),
        ("ec2-unseen-region", "sa-east-1"),
        ("ec2-unseen-instance-type", "p3.2xlarge"),
        ("ec2-unseen-ami", "ami-0bad0bad0bad0bad1"),
    ]
    .into_iter()
    .map(|(d, k)| (d.to_string(), k.to_string()))
    .collect()
}

/// The history before mallory's launch (no alerts) and the rest (her launch and after).
fn split_case() -> (String, String) {
    let lines = mallory_case();
    let at = lines
        .iter()
        .position(|l| l.contains("918c4681-46ba-4b7c-b507-9687625b5736"))
        .unwrap();
    (lines[..at].join("\n"), lines[at..].join("\n"))
}

/// `minewatch.toml` for `serve`: a state directory (durable baselines) unless `memory`,
/// each request run on arrival, `extra` appended.
fn config(dir: &Dir, memory: bool, extra: &str) -> String {
    let store = if memory {
        // Nothing on disk but the spools of network outputs, which need a directory.
        format!(
            "memory = true\nspool_dir = \"{}\"\n",
            dir.join("spool").display()
        )
    } else {
        format!("state_dir = \"{}\"\n", dir.join("state").display())
    };
    let path = dir.write("minewatch.toml", format!("{store}settle_ms = 0\n{extra}"));
    path.to_str().unwrap().to_string()
}

/// Starts `serve` on HTTP (and Forward when `forward`), alerts to `alerts.ndjson` unless
/// the config names outputs, with
/// the test hook set to `hook` (and its release file in `dir`) when given.
fn serve(dir: &Dir, config: &str, forward: bool, hook: Option<&str>) -> Server {
    let release = dir.join("release");
    let release = release.to_str().unwrap();
    let mut args = vec!["--config", config, "--http", "127.0.0.1:0"];
    // `--output` replaces the configured outputs; only for a config without any.
    let configured = std::fs::read_to_string(config).unwrap();
    if !configured.contains("[[outputs]]") {
        args.extend(["--output", "alerts.ndjson"]);
    }
    let mut listeners = vec!["HTTP"];
    if forward {
        args.extend(["--forward", "127.0.0.1:0"]);
        listeners.push("Fluent Forward");
    }
    let mut env = vec![("MINEWATCH_TEST_RELEASE", release)];
    if let Some(hook) = hook {
        env.push(("MINEWATCH_TEST_HOOK", hook));
    }
    Server::start_env(dir, &args, &listeners, &env)
}

/// POSTs a body; `None` when the connection broke (the server died).
fn try_post(url: &str, body: &[u8]) -> Option<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent.post(url).send(body).ok()?;
    let status = response.status().as_u16();
    Some((
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    ))
}

/// The `(detection, key)` pairs of the alerts in `dir/alerts.ndjson` (none when absent),
/// repeats kept.
fn written(dir: &Dir) -> Vec<(String, String)> {
    let bytes = std::fs::read(dir.join("alerts.ndjson")).unwrap_or_default();
    crate::util::pairs(&alerts(&bytes))
}

/// Lets a paused server go on.
fn release(dir: &Dir) {
    dir.write("release", "");
}

/// A 200 arrives only once the batch's alerts are in the output: while the server is held
/// before writing them, the client has no answer; when it answers, the alerts are there.
#[test]
fn an_http_200_comes_only_after_the_alerts_are_written() {
    let (dir, _) = setup();
    let config = config(&dir, true, "");
    let alerts_file = dir.join("alerts.ndjson");
    let server = serve(&dir, &config, false, Some("pause@before-write"));
    let (tx, rx) = mpsc::channel();
    let url = server.url("/events");
    let body = mallory_case().join("\n");
    let client = std::thread::spawn(move || {
        let answer = try_post(&url, body.as_bytes());
        // What the output holds at the moment of the answer.
        let at_answer = std::fs::read(&alerts_file).unwrap_or_default();
        tx.send((answer, at_answer)).unwrap();
    });
    server.wait_for_log("Test hook: paused at before-write", 1);
    assert!(
        rx.try_recv().is_err(),
        "the request was answered while its alerts were not yet written"
    );
    release(&dir);
    let (answer, at_answer) = rx.recv().unwrap();
    client.join().unwrap();
    let (status, reply) = answer.expect("an answer");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(unique_pairs(&alerts(&at_answer)), mallory_alerts());
    server.stop();
}

/// An output that cannot take the alerts (a file on a full device: `/dev/full` fails
/// every write with ENOSPC) turns the request into an error, never a 200.
#[test]
fn an_output_that_cannot_write_withholds_the_200() {
    let (dir, _) = setup();
    let config = config(
        &dir,
        true,
        "[[outputs]]\ntype = \"file\"\nname = \"full\"\npath = \"/dev/full\"\n",
    );
    let server = Server::start(&dir, &["--config", &config, "--http", "127.0.0.1:0"]);
    let (history, rest) = split_case();
    // A batch without alerts writes nothing, so the full device does not matter.
    let (status, reply) = try_post(&server.url("/events"), history.as_bytes()).unwrap();
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = try_post(&server.url("/events"), rest.as_bytes()).unwrap();
    assert_eq!(status, 500, "alerts that could not be written: {reply}");
    assert!(reply.contains("No space left on device"), "{reply}");
}

/// A Forward `[tag, entries, {chunk}]` message of NDJSON lines, as msgpack.
fn forward_chunk(tag: &str, lines: &[&str], chunk: &str) -> Vec<u8> {
    let entries: Vec<rmpv::Value> = lines
        .iter()
        .map(|l| {
            let record: Value = serde_json::from_str(l).unwrap();
            rmpv::Value::Array(vec![
                rmpv::Value::from(1_700_000_000u64),
                rmpv::decode::read_value(&mut &rmp_serde::to_vec(&record).unwrap()[..]).unwrap(),
            ])
        })
        .collect();
    let message = rmpv::Value::Array(vec![
        rmpv::Value::from(tag),
        rmpv::Value::Array(entries),
        rmpv::Value::Map(vec![(rmpv::Value::from("chunk"), rmpv::Value::from(chunk))]),
    ]);
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &message).unwrap();
    bytes
}

/// Reads Forward acks (`{"ack": id}`) off a connection and sends each id on.
fn ack_reader(stream: std::net::TcpStream) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(stream);
        while let Ok(value) = rmpv::decode::read_value(&mut reader) {
            let id = value
                .as_map()
                .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some("ack")))
                .and_then(|(_, v)| v.as_str().map(str::to_string))
                .unwrap_or_else(|| panic!("not an ack: {value}"));
            if tx.send(id).is_err() {
                return;
            }
        }
    });
    rx
}

/// A Forward ack comes only after the chunk's alerts are written, as a 200 does.
#[test]
fn a_forward_ack_comes_only_after_the_alerts_are_written() {
    let (dir, _) = setup();
    let config = config(&dir, true, "");
    let server = serve(&dir, &config, true, Some("pause@before-write"));
    let mut stream = std::net::TcpStream::connect(server.forward).unwrap();
    let acks = ack_reader(stream.try_clone().unwrap());
    let lines = mallory_case();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    stream
        .write_all(&forward_chunk("cloudtrail", &lines, "c1"))
        .unwrap();
    server.wait_for_log("Test hook: paused at before-write", 1);
    assert!(
        acks.try_recv().is_err(),
        "the chunk was acknowledged while its alerts were not yet written"
    );
    release(&dir);
    assert_eq!(acks.recv().unwrap(), "c1");
    assert_eq!(
        unique_pairs(&alerts(&std::fs::read(dir.join("alerts.ndjson")).unwrap())),
        mallory_alerts()
    );
    drop(stream);
    server.stop();
}

/// With an output's spool full (its receiver down), a Forward chunk is left
/// unacknowledged: an empty chunk sent after it on the same connection (answered without
/// the pipeline) is acknowledged first, and the refused one never.
#[test]
fn a_full_spool_withholds_the_forward_ack() {
    let (dir, _) = setup();
    let mut receiver = Receiver::start();
    receiver.stop();
    let config = config(
        &dir,
        true,
        &format!(
            "[[outputs]]\ntype = \"http\"\nname = \"down\"\nendpoint = \"http://{}/\"\nspool_max_bytes = 100\n",
            receiver.addr
        ),
    );
    let server = serve(&dir, &config, true, None);
    let (history, rest) = split_case();
    let history: Vec<&str> = history.lines().collect();
    let rest: Vec<&str> = rest.lines().collect();
    let mut stream = std::net::TcpStream::connect(server.forward).unwrap();
    let acks = ack_reader(stream.try_clone().unwrap());
    for (lines, id) in [(&history, "history"), (&rest, "mallory")] {
        stream
            .write_all(&forward_chunk("cloudtrail", lines, id))
            .unwrap();
        assert_eq!(acks.recv().unwrap(), id, "spooled, then acknowledged");
    }
    // The spool now holds four alerts, over its 100 bytes.
    stream
        .write_all(&forward_chunk("cloudtrail", &rest, "refused"))
        .unwrap();
    stream
        .write_all(&forward_chunk("cloudtrail", &[], "empty"))
        .unwrap();
    assert_eq!(
        acks.recv().unwrap(),
        "empty",
        "the chunk that found the spool full was acknowledged"
    );
    drop(stream);
    server.stop();
}

/// SIGKILL after the alerts are synced and before the baselines commit: after a restart
/// the resent batch raises its alerts again (a repeat), and none is lost.
#[test]
fn a_crash_between_the_alert_sync_and_the_commit_repeats_alerts() {
    let (dir, _) = setup();
    let config = config(&dir, false, "");
    let (history, rest) = split_case();
    let server = serve(&dir, &config, false, Some("crash@before-commit"));
    let (status, reply) = try_post(&server.url("/events"), history.as_bytes()).unwrap();
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        try_post(&server.url("/events"), rest.as_bytes()),
        None,
        "the server dies before answering"
    );
    server.wait_for_log("Test hook: crashing at before-commit", 1);
    drop(server);
    let mut first = written(&dir);
    first.sort();
    let want: Vec<_> = mallory_alerts().into_iter().collect();
    assert_eq!(first, want, "the alerts were written before the crash");

    // The sender did not get its 200, so it resends; the restarted server has the
    // history's baselines but not the batch's, and alerts again.
    let server = serve(&dir, &config, false, None);
    let (status, reply) = try_post(&server.url("/events"), rest.as_bytes()).unwrap();
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = try_post(&server.url("/events"), rest.as_bytes()).unwrap();
    assert_eq!(status, 200, "{reply}");
    server.stop();
    let mut all = written(&dir);
    all.sort();
    let twice: Vec<_> = want.iter().flat_map(|p| [p.clone(), p.clone()]).collect();
    assert_eq!(
        all, twice,
        "each alert exactly twice: repeated once by the crash, then committed"
    );
}

/// SIGKILL while a request body is being decoded loses none of the keys learned from
/// the batches acknowledged before it.
#[test]
fn a_crash_while_decoding_a_request_keeps_the_learned_keys() {
    let (dir, _) = setup();
    let config = config(&dir, false, "");
    let (history, rest) = split_case();
    let server = serve(&dir, &config, false, None);
    let (status, reply) = try_post(&server.url("/events"), history.as_bytes()).unwrap();
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = try_post(&server.url("/events"), rest.as_bytes()).unwrap();
    assert_eq!(status, 200, "{reply}");
    server.stop();
    assert_eq!(
        unique_pairs(&alerts(&std::fs::read(dir.join("alerts.ndjson")).unwrap())),
        mallory_alerts()
    );

    // A gzipped batch arrives and the server is killed while decoding it.
    let server = serve(&dir, &config, false, Some("crash@decode"));
    let body = crate::util::gzip(format!("{history}\n{rest}").as_bytes());
    assert_eq!(try_post(&server.url("/events"), &body), None);
    server.wait_for_log("Test hook: crashing at decode", 1);
    drop(server);

    // Restarted, the same launches are known: nothing alerts again.
    let server = serve(&dir, &config, false, None);
    let (status, reply) = try_post(&server.url("/events"), &body).unwrap();
    assert_eq!(status, 200, "{reply}");
    server.stop();
    assert_eq!(
        written(&dir).len(),
        4,
        "the learned keys survived the crash: no alert repeats"
    );
}

/// Alerts spooled for a receiver that is down survive a SIGKILL of the server and are
/// delivered by the next one, once each.
#[test]
fn alerts_in_the_spool_survive_a_crash() {
    let (dir, _) = setup();
    let mut receiver = Receiver::start();
    receiver.stop();
    let config = config(
        &dir,
        false,
        &format!(
            "[[outputs]]\ntype = \"http\"\nname = \"receiver\"\nendpoint = \"http://{}/\"\nretry_max_ms = 200\n",
            receiver.addr
        ),
    );
    let server = serve(&dir, &config, false, None);
    let (status, reply) =
        try_post(&server.url("/events"), mallory_case().join("\n").as_bytes()).unwrap();
    assert_eq!(status, 200, "spooled: {reply}");
    server.signal("KILL");
    drop(server);
    receiver.restart();
    let server = serve(&dir, &config, false, None);
    let received = || {
        receiver
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect::<Vec<Value>>()
    };
    let mut got = received();
    for _ in 0..600 {
        if alerts_count(&got) >= 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        got = received();
    }
    server.stop();
    assert_eq!(unique_pairs(&alerts_only(received())), mallory_alerts());
}

fn alerts_only(records: Vec<Value>) -> Vec<Value> {
    records
        .into_iter()
        .filter(|r| !crate::util::is_incident(r))
        .collect()
}

fn alerts_count(records: &[Value]) -> usize {
    records
        .iter()
        .filter(|r| !crate::util::is_incident(r))
        .count()
}

/// With the pipeline held on one batch and its queue (one job) full, a further request
/// is refused with 429 and `Retry-After` and a Forward chunk is left unacknowledged;
/// the queued request is answered 200 only once the pipeline goes on.
#[test]
fn a_full_queue_withholds_the_200_and_the_forward_ack() {
    let (dir, _) = setup();
    let config = config(&dir, true, "queue_batches = 1\n");
    let server = serve(&dir, &config, true, Some("pause@before-detect"));
    let (history, rest) = split_case();
    let (tx, rx) = mpsc::channel();
    let url = server.url("/events");
    let held = {
        let (tx, url) = (tx.clone(), url.clone());
        std::thread::spawn(move || tx.send(("held", try_post(&url, history.as_bytes()))))
    };
    server.wait_for_log("Test hook: paused at before-detect", 1);
    // Two more: one takes the queue's one place, the other finds it full. Which is which
    // depends on arrival; the first answer is the refusal.
    let others: Vec<_> = ["first", "second"]
        .into_iter()
        .map(|name| {
            let (tx, url, body) = (tx.clone(), url.clone(), rest.clone());
            std::thread::spawn(move || tx.send((name, try_post(&url, body.as_bytes()))))
        })
        .collect();
    // (A deadline, not a measurement: with a queue that never fills, nothing would
    // answer while the pipeline is held.)
    let (refused, answer) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("no request was refused while the queue was full");
    let (status, reply) = answer.expect("an answer");
    assert_eq!((refused, status), (refused, 429), "{reply}");
    assert!(
        rx.try_recv().is_err(),
        "nothing else is answered while held"
    );
    // A Forward chunk now is left unacknowledged; an empty one after it is acked.
    let mut stream = std::net::TcpStream::connect(server.forward).unwrap();
    let acks = ack_reader(stream.try_clone().unwrap());
    let lines: Vec<&str> = rest.lines().collect();
    stream
        .write_all(&forward_chunk("cloudtrail", &lines, "refused"))
        .unwrap();
    stream
        .write_all(&forward_chunk("cloudtrail", &[], "empty"))
        .unwrap();
    assert_eq!(acks.recv().unwrap(), "empty");
    assert!(
        rx.try_recv().is_err(),
        "nothing else is answered while held"
    );
    release(&dir);
    let mut answered: Vec<(&str, u16)> = (0..2)
        .map(|_| {
            let (name, answer) = rx.recv().unwrap();
            (name, answer.expect("an answer").0)
        })
        .collect();
    answered.sort();
    let queued = if refused == "first" {
        "second"
    } else {
        "first"
    };
    let mut want = vec![("held", 200), (queued, 200)];
    want.sort();
    assert_eq!(answered, want);
    held.join().unwrap().unwrap();
    for other in others {
        other.join().unwrap().unwrap();
    }
    drop(stream);
    server.stop();
    assert_eq!(
        unique_pairs(&alerts(&std::fs::read(dir.join("alerts.ndjson")).unwrap())),
        mallory_alerts()
    );
}
