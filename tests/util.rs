//! Helpers for driving the `minewatch` binary in tests.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use minewatch_generator::{Layout, Scenario, Spec};
use serde_json::Value;

/// A temporary directory for one test, removed when dropped.
pub struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    /// The directory's path.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Writes a file inside the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn listing(&self) -> String {
        walkdir::WalkDir::new(self.path())
            .into_iter()
            .filter_map(Result::ok)
            .map(|e| format!("  {}", e.path().display()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The `minewatch` binary with a clean environment, run in a test directory.
pub struct TestCommand {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

/// A fresh directory and a command for the binary running in it.
pub fn setup() -> (Dir, TestCommand) {
    let dir = Dir {
        tmp: tempfile::Builder::new()
            .prefix("minewatch-test-")
            .tempdir()
            .unwrap(),
    };
    let cmd = command(&dir);
    (dir, cmd)
}

/// Like [`setup`], with the directory inside `parent` (for fixtures a test file keeps
/// for all its tests in a `static`, which is never dropped: under the target directory
/// rather than in /tmp).
pub fn setup_in(parent: &Path) -> (Dir, TestCommand) {
    std::fs::create_dir_all(parent).unwrap();
    let dir = Dir {
        tmp: tempfile::Builder::new()
            .prefix("minewatch-test-")
            .tempdir_in(parent)
            .unwrap(),
    };
    let cmd = command(&dir);
    (dir, cmd)
}

/// Builds a component crate of this repository (`crate_path` from the repository root,
/// with its own lock file) for `wasm32-wasip2`, in release, in its own target directory
/// under cargo's per-target temporary directory, and returns the path of `artifact`
/// (the `.wasm` file name). Call it once per test run (behind a `OnceLock`).
pub fn build_component(crate_path: &str, artifact: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join(crate_path.replace('/', "-"));
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(&root)
        .args([
            "build",
            "--locked",
            "--release",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--manifest-path")
        .arg(root.join(crate_path).join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS");
    if std::env::var_os("CI").is_some() {
        cargo.env("RUSTFLAGS", "-D warnings");
    }
    let status = cargo.status().expect("cargo runs");
    assert!(
        status.success(),
        "{crate_path} did not build ({status}); is the wasm32-wasip2 target installed? \
         (`rustup target add wasm32-wasip2`)"
    );
    target.join("wasm32-wasip2/release").join(artifact)
}

/// Writes the scenario of `spec` in `layout` to `output` in `dir` (with the generator
/// library, as `minewatch-generate` does) and returns it.
pub fn write_scenario(dir: &Dir, spec: &Spec, layout: Layout, output: &str) -> Scenario {
    let scenario = minewatch_generator::generate(spec);
    minewatch_generator::write(&scenario, layout, &dir.join(output)).unwrap();
    scenario
}

/// The generated 45-day scenario (300 events a day, incidents included) with `seed`.
pub fn scenario_spec(seed: u64) -> Spec {
    Spec {
        seed,
        days: 45,
        events_per_day: 300,
        ..Spec::default()
    }
}

/// Writes the generated 45-day scenario (300 events a day, incidents included) with
/// `seed` to `output` in `dir`.
pub fn generate_scenario(dir: &Dir, seed: u64, output: &str) {
    write_scenario(dir, &scenario_spec(seed), Layout::Ndjson, output);
}

/// The (detection, key) pairs of a scenario's expected alerts.
pub fn expected_pairs(scenario: &Scenario) -> BTreeSet<(String, String)> {
    scenario
        .expected
        .iter()
        .map(|alert| (alert.detection.clone(), alert.key.clone()))
        .collect()
}

/// Writes the generated 45-day scenario with seed 11 (300 events a day) in `layout` to
/// `output` in `dir`, and returns the (detection, key) pairs of the alerts it must give.
pub fn scenario_in(dir: &Dir, layout: Layout, output: &str) -> BTreeSet<(String, String)> {
    let want = expected_pairs(&write_scenario(dir, &scenario_spec(11), layout, output));
    assert!(want.len() >= 8, "the scenario injects incidents: {want:?}");
    want
}

/// Another command for the binary, running in an existing test directory.
pub fn command(dir: &Dir) -> TestCommand {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_minewatch"));
    cmd.current_dir(dir.path());
    for (key, _) in std::env::vars() {
        if key.starts_with("MINEWATCH_") {
            cmd.env_remove(key);
        }
    }
    TestCommand { cmd, stdin: None }
}

impl TestCommand {
    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable (the clean environment has no `MINEWATCH_*`).
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        self.cmd.env(key, value);
        self
    }

    /// Feeds these bytes on stdin.
    pub fn stdin(&mut self, bytes: impl Into<Vec<u8>>) -> &mut Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Runs to completion.
    pub fn output_raw(&mut self) -> Output {
        self.cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("minewatch runs");
        if let Some(bytes) = self.stdin.take() {
            let mut stdin = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            });
        }
        child.wait_with_output().unwrap()
    }

    /// Runs and asserts the exit status, printing everything on failure.
    pub fn assert_exit(&mut self, dir: &Dir, code: i32) -> Output {
        let out = self.output_raw();
        if out.status.code() != Some(code) {
            panic!(
                "\n\nexpected exit {code}, got {:?}\ncommand: {:?}\ndir:\n{}\n\nstdout:\n{}\nstderr:\n{}\n",
                out.status,
                self.cmd,
                dir.listing(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out
    }

    /// Runs and asserts success.
    pub fn ok(&mut self, dir: &Dir) -> Output {
        self.assert_exit(dir, 0)
    }
}

/// A file under `tests/data`.
pub fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(path)
}

/// A path under the team's `shared/` folder beside the checkout, when it is there. Under
/// `CI=true` a missing one fails the test that asked, with the reason; elsewhere the
/// test skips it and `peers::peers_are_installed` fails to say so.
pub fn shared(path: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared")
        .join(path);
    assert!(
        p.exists() || std::env::var_os("CI").is_none(),
        "{} is missing (the team's shared/ folder beside the checkout); under CI=true the \
         tests that read it cannot skip",
        p.display()
    );
    p.exists().then_some(p)
}

/// Every record of NDJSON output: alerts and incident records.
pub fn records(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("record is not JSON ({e}): {l}"))
        })
        .collect()
}

/// Whether an output record is an incident record (native or OCSF class 2005).
pub fn is_incident(record: &Value) -> bool {
    record.get("incident_id").is_some() || record["class_uid"] == 2005
}

/// The alerts of NDJSON output (incident records left out).
pub fn alerts(stdout: &[u8]) -> Vec<Value> {
    records(stdout)
        .into_iter()
        .filter(|r| !is_incident(r))
        .collect()
}

/// The incident records of NDJSON output.
pub fn incidents(stdout: &[u8]) -> Vec<Value> {
    records(stdout).into_iter().filter(is_incident).collect()
}

/// `(detection, key)` of each alert, in order (incident records left out).
pub fn pairs(alerts: &[Value]) -> Vec<(String, String)> {
    alerts
        .iter()
        .filter(|a| !is_incident(a))
        .map(|a| {
            (
                a["detection"].as_str().unwrap().to_string(),
                a["key"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `(detection, key)` pairs as a set, asserting none repeats.
pub fn unique_pairs(alerts: &[Value]) -> BTreeSet<(String, String)> {
    let list = pairs(alerts);
    let set: BTreeSet<_> = list.iter().cloned().collect();
    assert_eq!(set.len(), list.len(), "an alert repeats: {list:#?}");
    set
}

/// A line of the end-of-run summary on stderr, e.g. `skipped invalid-json: 3`.
pub fn summary_count(stderr: &[u8], label: &str) -> Option<u64> {
    String::from_utf8_lossy(stderr).lines().find_map(|l| {
        let l = l.trim();
        l.strip_prefix(label)?.strip_prefix(": ")?.parse().ok()
    })
}

/// A CloudTrail RunInstances record (successful unless `error` is set).
pub fn launch(
    time: &str,
    arn: &str,
    region: &str,
    ami: &str,
    instance_type: &str,
    id: &str,
) -> Value {
    let account = arn.split(':').nth(4).unwrap_or("111122223333");
    let (kind, issuer) = if arn.contains(":assumed-role/") {
        let role = arn.split('/').nth(1).unwrap();
        (
            "AssumedRole",
            serde_json::json!({"sessionIssuer": {"type": "Role", "arn": format!("arn:aws:iam::{account}:role/{role}"), "accountId": account, "userName": role}}),
        )
    } else {
        ("IAMUser", Value::Null)
    };
    serde_json::json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": kind, "arn": arn, "accountId": account, "sessionContext": issuer},
        "eventTime": time,
        "eventSource": "ec2.amazonaws.com",
        "eventName": "RunInstances",
        "awsRegion": region,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"instancesSet": {"items": [{"imageId": ami, "minCount": 1, "maxCount": 1}]}, "instanceType": instance_type},
        "responseElements": {"instancesSet": {"items": [{"instanceId": format!("i-{id}"), "imageId": ami, "instanceType": instance_type}]}},
        "eventID": id,
        "recipientAccountId": account,
    })
}

/// Records as NDJSON text.
pub fn ndjson(records: &[Value]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

/// A running `minewatch serve`, killed when dropped.
pub struct Server {
    child: std::process::Child,
    /// The HTTP listener's address.
    pub http: std::net::SocketAddr,
    /// The Forward listener's address.
    pub forward: std::net::SocketAddr,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    /// Starts `minewatch serve` with `args` in `dir` (add `--http 127.0.0.1:0`) and waits
    /// until it listens for HTTP.
    pub fn start(dir: &Dir, args: &[&str]) -> Server {
        Server::start_with(dir, args, &["HTTP"])
    }

    /// Starts `minewatch serve` and waits for each listener named (`HTTP`, `Fluent Forward`).
    pub fn start_with(dir: &Dir, args: &[&str], listeners: &[&str]) -> Server {
        Server::start_env(dir, args, listeners, &[])
    }

    /// [`Server::start_with`], with environment variables set for the server.
    pub fn start_env(dir: &Dir, args: &[&str], listeners: &[&str], env: &[(&str, &str)]) -> Server {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_minewatch"))
            .current_dir(dir.path())
            .arg("serve")
            .args(args)
            .env_remove("MINEWATCH_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let (Some(kind), Some(addr)) = (
                    line.split("Listening for ")
                        .nth(1)
                        .and_then(|k| k.split('.').next()),
                    line.split("address=").nth(1),
                ) {
                    let _ = tx.send((kind.to_string(), addr.trim().to_string()));
                }
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let mut found = std::collections::HashMap::new();
        while found.len() < listeners.len() {
            let (kind, addr) = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("serve did not start: {}", log.lock().unwrap()));
            found.insert(kind, addr.parse::<std::net::SocketAddr>().unwrap());
        }
        let unbound: std::net::SocketAddr = "0.0.0.0:0".parse().unwrap();
        Server {
            child,
            http: found.get("HTTP").copied().unwrap_or(unbound),
            forward: found.get("Fluent Forward").copied().unwrap_or(unbound),
            stderr: log,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The URL of a path on the HTTP listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// Waits until the server has logged `needle` at least `times` times; panics with
    /// the log if that does not happen within a minute.
    pub fn wait_for_log(&self, needle: &str, times: usize) {
        for _ in 0..600 {
            if self.stderr.lock().unwrap().matches(needle).count() >= times {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "serve never logged {needle:?} {times} times:\n{}",
            self.stderr.lock().unwrap()
        );
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends a signal (`HUP`, `TERM`, ...) with `kill`.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Sends SIGTERM and waits for a clean exit; returns what it logged.
    pub fn stop(mut self) -> String {
        self.signal("TERM");
        let exit = self.child.wait().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let log = self.stderr.lock().unwrap().clone();
        assert!(exit.success(), "serve exited with {exit:?}:\n{log}");
        log
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs a body to the server with headers; returns status and body.
pub fn post(url: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.post(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut response = request.send(body).unwrap();
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// Gzips bytes.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A minimal HTTP receiver on loopback that stores every NDJSON line POSTed to it and
/// answers 200; it can be stopped and restarted on the same port.
pub struct Receiver {
    /// Its address.
    pub addr: std::net::SocketAddr,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Starts on a free port.
    pub fn start() -> Receiver {
        Receiver::on("127.0.0.1:0".parse().unwrap(), Default::default())
    }

    fn on(
        addr: std::net::SocketAddr,
        lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ) -> Receiver {
        use std::io::{BufRead, Read};
        let listener = std::net::TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (store, stopped) = (lines.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    let mut started = false;
                    while reader.read_line(&mut line).unwrap_or(0) > 0 {
                        started = true;
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                        line.clear();
                    }
                    if !started {
                        break;
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let text = String::from_utf8(body).unwrap();
                    store
                        .lock()
                        .unwrap()
                        .extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
                    let mut out = &stream;
                    out.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .unwrap();
                }
            }
        });
        Receiver {
            addr,
            lines,
            stop,
            thread: Some(thread),
        }
    }

    /// Every line received so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Stops listening (connections are refused until [`Receiver::restart`]).
    pub fn stop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }

    /// Listens again on the same port, keeping what was received.
    pub fn restart(&mut self) {
        *self = Receiver::on(self.addr, self.lines.clone());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}
