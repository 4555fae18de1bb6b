//! Tests against real Forward clients: the npm packages `@fluent-org/logger` and
//! `fluent-logger` and PyPI's `fluent-logger`, driven by the scripts in
//! `tests/peers/fluent/`. Each test starts the server with a collecting handler, runs one
//! script as a child process against it, and checks that every record arrived exactly once,
//! unchanged, in order and with the time the script gave it (and, with acks, that the script
//! saw every ack, and, counted apart from the client by a proxy between the two, that the
//! server acknowledged every chunk the client asked an ack for).
//!
//! The clients must be installed (CI does it; see [`INSTALL`]): a missing client fails the
//! test with instructions, unless `MINEWATCH_SKIP_PEERS=1` is set.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::tests::TestServer;
use super::{ForwardBatch, ForwardConfig, ForwardTime};

/// How to install the peers, from the repository root.
const INSTALL: &str = "install the real Fluent clients from the repository root with \
     `npm ci --prefix tests/peers/fluent` and \
     `python3 -m pip install -r tests/peers/fluent/requirements.txt`, \
     or set MINEWATCH_SKIP_PEERS=1 to skip the peer tests";

/// The scripts' default time base: record i is sent at this many seconds plus i.
const TIME_BASE: u64 = 1_700_000_000;

/// How long the scripts may take before they give up on their own.
const SCRIPT_TIMEOUT_MS: u64 = 10_000;

/// How long a script may run before the test kills it.
const KILL_AFTER: Duration = Duration::from_secs(30);

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/fluent")
}

fn skipping() -> bool {
    let skip = std::env::var_os("MINEWATCH_SKIP_PEERS").is_some_and(|value| value == "1");
    assert!(
        !skip || std::env::var_os("CI").is_none(),
        "MINEWATCH_SKIP_PEERS=1 under CI=true: the Fluent peer tests cannot skip; {INSTALL}"
    );
    if skip {
        eprintln!("MINEWATCH_SKIP_PEERS=1: not running this Fluent peer test.");
    }
    skip
}

/// Whether to run a Node peer test; panics with install instructions when Node or the npm
/// packages are missing.
fn node_peers_ready() -> bool {
    if skipping() {
        return false;
    }
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|output| output.status.success()),
        "`node` is not on PATH: install Node.js, then {INSTALL}"
    );
    let modules = peers_dir().join("node_modules");
    for package in ["@fluent-org/logger", "fluent-logger"] {
        assert!(
            modules.join(package).join("package.json").is_file(),
            "the npm package {package} is not installed in {}: {INSTALL}",
            modules.display()
        );
    }
    true
}

/// Whether to run the Python peer test; panics with install instructions when Python or
/// PyPI's fluent-logger is missing.
fn python_peer_ready() -> bool {
    if skipping() {
        return false;
    }
    let import = Command::new(python())
        .args(["-c", "import fluent.sender, fluent.asyncsender"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        import.is_ok_and(|status| status.success()),
        "{} cannot import PyPI's fluent-logger (module `fluent`): {INSTALL}, and set MINEWATCH_PYTHON to the environment's python",
        python()
    );
    true
}

/// The Python with PyPI's fluent-logger: `MINEWATCH_PYTHON` (`.ci/run` points it at the
/// virtual environment it installs the client into), else `python3`.
fn python() -> String {
    std::env::var("MINEWATCH_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// CloudTrail-like records with every JSON type, non-ASCII text, and one record large
/// enough (300 KiB) that its message spans many TCP segments.
fn test_records() -> Vec<Value> {
    let mut records: Vec<Value> = (0..40u32)
        .map(|i| {
            json!({
                "eventVersion": "1.08",
                "eventTime": format!("2023-11-14T22:13:{:02}Z", i % 60),
                "eventSource": "ec2.amazonaws.com",
                "eventName": if i % 3 == 0 { "RunInstances" } else { "DescribeInstances" },
                "awsRegion": "us-east-1",
                "sourceIPAddress": format!("203.0.113.{i}"),
                "userIdentity": {
                    "type": "IAMUser",
                    "accountId": "123456789012",
                    "userName": format!("user-{i}"),
                },
                "requestParameters": {
                    "instanceType": "p3.16xlarge",
                    "minCount": i,
                    "ratio": f64::from(i) + 0.25,
                    "tags": ["miner", i, null, true, {"k": "v"}],
                    "empty": {},
                    "none": [],
                },
                "responseElements": null,
                "readOnly": i % 2 == 0,
                "negative": -i64::from(i) - 1,
                "limit": u32::MAX,
                "note": "日本語 ✓ émoji 🚀 \"quoted\" \\ back\nslash",
            })
        })
        .collect();
    records.push(json!({
        "eventName": "PutObject",
        "eventSource": "s3.amazonaws.com",
        "blob": "x".repeat(300 * 1024),
    }));
    records
}

/// What one script run printed and how it ended (`None` when it had to be killed).
struct Run {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// The JSON summary the scripts print as their last stdout line.
    fn summary(&self) -> Value {
        let line = self.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("no JSON summary ({error}):\n{}", self.describe()))
    }
}

/// Runs `program script args...` in the peers directory, off the async runtime.
async fn run_script(program: &str, script: &str, args: Vec<String>, scratch: &Path) -> Run {
    let program = program.to_owned();
    let script = peers_dir().join(script);
    let stdout_path = scratch.join("stdout.txt");
    let stderr_path = scratch.join("stderr.txt");
    tokio::task::spawn_blocking(move || {
        // The Python peers run under the Python that has their client.
        let program = if program == "python3" {
            python()
        } else {
            program
        };
        let mut child = Command::new(&program)
            .arg(&script)
            .args(&args)
            .current_dir(peers_dir())
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_path).unwrap())
            .stderr(File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {program}: {error}; {INSTALL}"));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > KILL_AFTER {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Run {
            status,
            stdout: std::fs::read_to_string(&stdout_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
        }
    })
    .await
    .unwrap()
}

/// One delivery through a real client.
struct Delivery {
    program: &'static str,
    script: &'static str,
    args: Vec<&'static str>,
    config: ForwardConfig,
    event_time: bool,
    ack: bool,
}

impl Delivery {
    fn node(script: &'static str, args: &[&'static str]) -> Self {
        Delivery {
            program: "node",
            script,
            args: args.to_vec(),
            config: ForwardConfig {
                udp_heartbeat: false,
                ..ForwardConfig::default()
            },
            event_time: args.contains(&"--event-time"),
            ack: args.contains(&"--ack"),
        }
    }

    fn python(args: &[&'static str]) -> Self {
        Delivery {
            program: "python3",
            script: "send_fluent_logger.py",
            ..Self::node("", args)
        }
    }

    fn with_shared_key(mut self) -> Self {
        self.config.shared_key = Some("peer-s3cret".to_owned());
        self.config.self_hostname = "minewatch-peer-test".to_owned();
        self.args.extend([
            "--shared-key",
            "peer-s3cret",
            "--client-hostname",
            "peer.client",
        ]);
        self
    }

    /// Runs the script and checks that the server got every record exactly as sent.
    async fn check(self) {
        let records = test_records();
        let scratch = tempfile::tempdir().unwrap();
        let ndjson = scratch.path().join("records.ndjson");
        let lines: Vec<String> = records.iter().map(Value::to_string).collect();
        std::fs::write(&ndjson, lines.join("\n") + "\n").unwrap();

        let mut server = TestServer::start(self.config.clone()).await;
        let proxy = AckProxy::start(server.addr).await;
        let tag = "aws.cloudtrail.peer";
        let mut args = vec![
            "--host".to_owned(),
            "127.0.0.1".to_owned(),
            "--port".to_owned(),
            proxy.addr.port().to_string(),
            "--tag".to_owned(),
            tag.to_owned(),
            "--records".to_owned(),
            ndjson.display().to_string(),
        ];
        if self.program == "node" {
            args.extend(["--timeout-ms".to_owned(), SCRIPT_TIMEOUT_MS.to_string()]);
        }
        args.extend(self.args.iter().map(|arg| (*arg).to_owned()));
        let run = run_script(self.program, self.script, args, scratch.path()).await;
        assert!(
            run.status.is_some_and(|status| status.success()),
            "{} {:?} failed:\n{}",
            self.script,
            self.args,
            run.describe()
        );
        let summary = run.summary();
        assert_eq!(summary["sent"], json!(records.len()), "{}", run.describe());
        if self.ack {
            assert_eq!(summary["acked"], json!(records.len()), "{}", run.describe());
            // What the client's library reports is not evidence: count on the wire.
            let (asked, acked) = proxy.chunks();
            assert!(!asked.is_empty(), "the client asked for no ack");
            assert_eq!(
                acked, asked,
                "chunks acknowledged on the wire vs chunks asked"
            );
        }

        let mut batches: Vec<ForwardBatch> = Vec::new();
        while batches.iter().map(|b| b.records.len()).sum::<usize>() < records.len() {
            batches.push(server.next_batch().await);
        }
        let extra = server.stop().await;
        assert!(
            extra.is_empty(),
            "{} extra batch(es) after all records arrived: {:?}",
            extra.len(),
            extra.iter().map(|b| b.records.len()).collect::<Vec<_>>()
        );
        let received: Vec<_> = batches
            .iter()
            .inspect(|batch| {
                assert_eq!(batch.tag, tag);
                assert_eq!(batch.dropped, 0);
            })
            .flat_map(|batch| &batch.records)
            .collect();
        assert_eq!(received.len(), records.len());
        for (i, (got, sent)) in received.iter().zip(&records).enumerate() {
            assert!(
                got.record == *sent,
                "record {i} differs:\n got {}\nsent {}",
                got.record,
                sent
            );
            let expected = ForwardTime {
                seconds: TIME_BASE + i as u64,
                nanos: if self.event_time {
                    i as u32 * 1000 + 7
                } else {
                    0
                },
            };
            assert_eq!(got.time, expected, "time of record {i}");
        }
    }
}

#[tokio::test]
async fn fluent_org_logger_message_mode_with_acks_and_event_time() {
    if node_peers_ready() {
        Delivery::node(
            "send_fluent_org_logger.js",
            &["--mode", "Message", "--ack", "--event-time"],
        )
        .check()
        .await;
    }
}

#[tokio::test]
async fn fluent_org_logger_forward_mode_with_acks() {
    if node_peers_ready() {
        Delivery::node("send_fluent_org_logger.js", &["--mode", "Forward", "--ack"])
            .check()
            .await;
    }
}

#[tokio::test]
async fn fluent_org_logger_packed_forward_without_acks() {
    if node_peers_ready() {
        Delivery::node(
            "send_fluent_org_logger.js",
            &["--mode", "PackedForward", "--event-time"],
        )
        .check()
        .await;
    }
}

#[tokio::test]
async fn fluent_org_logger_compressed_packed_forward_with_shared_key_and_acks() {
    if node_peers_ready() {
        Delivery::node(
            "send_fluent_org_logger.js",
            &["--mode", "CompressedPackedForward", "--ack", "--event-time"],
        )
        .with_shared_key()
        .check()
        .await;
    }
}

#[tokio::test]
async fn fluent_org_logger_with_a_wrong_shared_key_is_refused() {
    if !node_peers_ready() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let ndjson = scratch.path().join("records.ndjson");
    std::fs::write(&ndjson, "{\"eventName\":\"RunInstances\"}\n").unwrap();
    let config = ForwardConfig {
        shared_key: Some("the-right-key".to_owned()),
        udp_heartbeat: false,
        ..ForwardConfig::default()
    };
    let server = TestServer::start(config).await;
    let args = [
        "--port",
        &server.addr.port().to_string(),
        "--tag",
        "refused",
        "--records",
        &ndjson.display().to_string(),
        "--ack",
        "--shared-key",
        "a-wrong-key",
        "--client-hostname",
        "peer.client",
        "--timeout-ms",
        "5000",
    ]
    .map(str::to_owned)
    .to_vec();
    let run = run_script("node", "send_fluent_org_logger.js", args, scratch.path()).await;
    assert!(
        run.status.is_some_and(|status| !status.success()),
        "the client should fail:\n{}",
        run.describe()
    );
    assert!(
        run.stderr.contains("shared key mismatch"),
        "the client should report the server's reason:\n{}",
        run.describe()
    );
    assert!(
        server.stop().await.is_empty(),
        "an unauthenticated batch got through"
    );
}

#[tokio::test]
async fn fluent_logger_node_message_mode_with_acks() {
    if node_peers_ready() {
        Delivery::node("send_fluent_logger.js", &["--mode", "Message", "--ack"])
            .check()
            .await;
    }
}

#[tokio::test]
async fn fluent_logger_node_packed_forward_with_event_time() {
    if node_peers_ready() {
        Delivery::node(
            "send_fluent_logger.js",
            &["--mode", "PackedForward", "--event-time"],
        )
        .check()
        .await;
    }
}

#[tokio::test]
async fn fluent_logger_node_compressed_packed_forward_with_shared_key_and_acks() {
    if node_peers_ready() {
        Delivery::node(
            "send_fluent_logger.js",
            &["--mode", "CompressedPackedForward", "--ack", "--event-time"],
        )
        .with_shared_key()
        .check()
        .await;
    }
}

#[tokio::test]
async fn fluent_logger_python_sync_sender_with_event_time() {
    if python_peer_ready() {
        Delivery::python(&["--event-time"]).check().await;
    }
}

#[tokio::test]
async fn fluent_logger_python_async_sender() {
    if python_peer_ready() {
        Delivery::python(&["--async"]).check().await;
    }
}

/// A TCP proxy between a script and the server that reads the msgpack both ways: the
/// `chunk` ids the client asks acks for and the `ack` ids the server sends back, counted
/// independently of what the client's library reports.
struct AckProxy {
    addr: std::net::SocketAddr,
    asked: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    acked: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
}

impl AckProxy {
    async fn start(server: std::net::SocketAddr) -> AckProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Default::default()));
        let acked = std::sync::Arc::new(std::sync::Mutex::new(Default::default()));
        let (to_server, to_client) = (asked.clone(), acked.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(upstream) = tokio::net::TcpStream::connect(server).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = upstream.into_split();
                tokio::spawn(relay(client_read, server_write, to_server.clone(), "chunk"));
                tokio::spawn(relay(server_read, client_write, to_client.clone(), "ack"));
            }
        });
        AckProxy { addr, asked, acked }
    }

    /// The chunk ids asked for and the ids acknowledged so far.
    fn chunks(
        &self,
    ) -> (
        std::collections::BTreeSet<String>,
        std::collections::BTreeSet<String>,
    ) {
        (
            self.asked.lock().unwrap().clone(),
            self.acked.lock().unwrap().clone(),
        )
    }
}

/// Copies bytes from `from` to `to`, decoding the msgpack values that pass and recording
/// the string under `field` of each map found at the top or last in a top-level array
/// (a message's options).
async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    ids: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    field: &'static str,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Recorded before it is passed on, so the count is complete once the peer has it.
        pending.extend_from_slice(&buf[..n]);
        loop {
            let mut cursor = std::io::Cursor::new(&pending[..]);
            let Ok(value) = rmpv::decode::read_value(&mut cursor) else {
                break;
            };
            let used = cursor.position() as usize;
            pending.drain(..used);
            let options = match &value {
                rmpv::Value::Map(_) => Some(&value),
                rmpv::Value::Array(items) => items.last().filter(|v| v.is_map()),
                _ => None,
            };
            let id = options
                .and_then(rmpv::Value::as_map)
                .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some(field)))
                .and_then(|(_, v)| v.as_str().map(str::to_string));
            if let Some(id) = id {
                ids.lock().unwrap().insert(id);
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut to).await;
}
