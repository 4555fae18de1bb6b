//! The shipped examples, run unmodified against the real Fluent Bit and Vector.
//!
//! Each test copies an example's own config files into a test directory, substitutes
//! only ports and paths, starts `minewatch serve` and the real peer (at its default
//! concurrency), replays the generated 45-day scenario (CloudTrail with Google Cloud's and
//! Azure's audit logs beside it) through it from the head of the file, and checks that the alerts which come back into the peer are exactly the alerts
//! `minewatch run` gives over the same file.
//!
//! The peers are found through `MINEWATCH_FLUENT_BIT` and `MINEWATCH_VECTOR`, by default
//! `../shared/peers/fluent-bit` and `../shared/peers/vector` beside the checkout. Where
//! one is missing the test fails under `CI=true` and says so on stderr otherwise.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fluent_bit::plugin_wasm;
use crate::util::{
    Dir, Server, alerts, command, incidents, is_incident, pairs, records, scenario_spec, setup,
    write_scenario,
};

/// The real peer binary `name` (`fluent-bit`, `vector`), or `None` (with a notice) where
/// it is missing outside CI.
pub fn peer(name: &str) -> Option<PathBuf> {
    let var = format!("MINEWATCH_{}", name.replace('-', "_").to_uppercase());
    let path = std::env::var_os(&var)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/peers")
                .join(name)
        });
    if path.is_file() {
        return Some(path);
    }
    let why = format!(
        "the real {name} is not at {} (set {var}); the example tests against it cannot run",
        path.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("SKIPPED: {why}");
    None
}

/// The path of an example file.
fn example(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(path)
}

/// Copies an example file into `dir`, replacing each `(from, to)`; every `from` must
/// occur, so a changed example cannot silently escape the substitution.
fn copy_example(dir: &Dir, path: &str, substitutions: &[(&str, String)]) -> PathBuf {
    let mut text = std::fs::read_to_string(example(path)).unwrap();
    for (from, to) in substitutions {
        assert!(text.contains(from), "{path} no longer contains {from:?}");
        text = text.replace(from, to);
    }
    let name = Path::new(path).file_name().unwrap().to_str().unwrap();
    dir.write(name, text)
}

/// A loopback address with a port nobody listens on right now.
fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// A running peer, killed when dropped; its stdout is collected line by line.
struct Peer {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Peer {
    fn start(program: &Path, args: &[&str], dir: &Dir) -> Peer {
        let mut child = Command::new(program)
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let lines = stdout.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let log = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                log.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        Peer {
            child,
            stdout,
            stderr,
        }
    }

    /// The JSON objects it printed so far.
    fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// The alerts the wasm filter added to the records it printed.
    fn tagged_alerts(&self) -> Vec<Value> {
        self.json_lines()
            .iter()
            .flat_map(|r| {
                r["minewatch_alerts"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `count()` reaches `expected` and then stays put for a few seconds (so
/// that extra alerts would show); gives up after ten minutes.
fn wait_until_settled(expected: usize, count: impl Fn() -> usize) {
    let started = Instant::now();
    let mut last = (usize::MAX, Instant::now());
    loop {
        let now = count();
        if now != last.0 {
            last = (now, Instant::now());
        }
        if now >= expected && last.1.elapsed() >= Duration::from_secs(4) {
            return;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The alerts as sorted JSON texts, without the fields a peer adds (`date`,
/// `timestamp`, `path`, `source_type`), fractional numbers to 12 significant digits
/// (Fluent Bit writes doubles with 16, so the 17th of a mean or a threshold may differ).
fn canonical(alerts: &[Value]) -> Vec<String> {
    let mut texts: Vec<String> = alerts
        .iter()
        .map(|a| {
            let mut a = a.clone();
            if let Value::Object(map) = &mut a {
                for added in ["date", "timestamp", "path", "source_type"] {
                    map.remove(added);
                }
            }
            round_fractions(&mut a);
            a.to_string()
        })
        .collect();
    texts.sort();
    texts
}

/// Writes every non-integer number of `value` as text with 12 significant digits.
fn round_fractions(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            *value = Value::String(format!("{:.11e}", n.as_f64().unwrap_or_default()));
        }
        Value::Array(items) => items.iter_mut().for_each(round_fractions),
        Value::Object(map) => map.values_mut().for_each(round_fractions),
        _ => {}
    }
}

/// Asserts two alert lists are equal as sets of whole alerts, printing the difference.
fn assert_same_alerts(got: &[Value], want: &[Value], context: &str) {
    let (got, want) = (canonical(got), canonical(want));
    if got != want {
        let missing: Vec<&String> = want.iter().filter(|a| !got.contains(a)).collect();
        let extra: Vec<&String> = got.iter().filter(|a| !want.contains(a)).collect();
        panic!(
            "{context}: {} alerts, `minewatch run` gives {}\nmissing: {missing:#?}\nextra: {extra:#?}",
            got.len(),
            want.len()
        );
    }
}

/// The generated multi-cloud scenario in `dir/cloudtrail/trail.ndjson` and what `run`
/// writes over it: its alerts and its incident records, in all three clouds.
fn scenario(dir: &Dir) -> (PathBuf, Vec<Value>) {
    std::fs::create_dir_all(dir.join("cloudtrail")).unwrap();
    let spec = minewatch_generator::Spec {
        other_clouds: true,
        ..scenario_spec(11)
    };
    write_scenario(
        dir,
        &spec,
        minewatch_generator::Layout::Ndjson,
        "cloudtrail/trail.ndjson",
    );
    let trail = dir.join("cloudtrail/trail.ndjson");
    let out = command(dir)
        .args(["run", "--memory", "--input"])
        .args([&trail])
        .ok(dir);
    let clouds: std::collections::BTreeSet<String> = pairs(&alerts(&out.stdout))
        .into_iter()
        .map(|(detection, _)| detection.split('-').next().unwrap().to_string())
        .collect();
    assert_eq!(clouds.len(), 3, "every cloud alerts: {clouds:?}");
    assert!(incidents(&out.stdout).len() >= 3);
    (trail, records(&out.stdout))
}

#[test]
fn vector_example_replays_the_scenario_with_the_alerts_of_run() {
    let Some(vector) = peer("vector") else { return };
    let (dir, _) = setup();
    let (_, expected) = scenario(&dir);
    let (events, alerts_in) = (free_port(), free_port());
    let data_dir = dir.join("vector-data");
    std::fs::create_dir_all(&data_dir).unwrap();
    copy_example(
        &dir,
        "vector/vector.toml",
        &[
            (
                "/var/log/cloudtrail/*.ndjson",
                dir.join("cloudtrail/*.ndjson").display().to_string(),
            ),
            ("/tmp/vector-minewatch", data_dir.display().to_string()),
            ("127.0.0.1:8686", events.clone()),
            ("127.0.0.1:8687", alerts_in.clone()),
        ],
    );
    copy_example(
        &dir,
        "vector/minewatch.toml",
        &[("127.0.0.1:8686", events), ("127.0.0.1:8687", alerts_in)],
    );
    let server = Server::start(&dir, &["--config", "minewatch.toml"]);
    let vector = Peer::start(&vector, &["--config", "vector.toml"], &dir);
    assert_replay_gives(server, &vector, &expected, "Vector");
}

/// Waits for the alerts to come back into `peer`, stops `server`, and checks that they
/// are `expected` and that the server logged no error.
fn assert_replay_gives(server: Server, peer: &Peer, expected: &[Value], what: &str) {
    wait_until_settled(expected.len(), || peer.json_lines().len());
    let got = peer.json_lines();
    let log = server.stop();
    assert_same_alerts(&got, expected, &format!("{what}\n{}", peer.log()));
    assert!(!log.contains("ERROR"), "{log}");
}

/// Starts `minewatch serve` and the real Fluent Bit with the shipped example configs
/// (ports and paths made local, `changes` applied to fluent-bit.conf), over the scenario
/// in `dir`; returns both.
fn start_fluent_bit_example(
    fluent_bit: &Path,
    dir: &Dir,
    changes: &[(&str, String)],
) -> (Server, Peer) {
    let forward = free_port();
    let (_, forward_port) = forward.split_once(':').unwrap();
    let http = free_port();
    let (_, http_port) = http.split_once(':').unwrap();
    let mut substitutions = vec![
        (
            "/var/log/cloudtrail/*.ndjson",
            dir.join("cloudtrail/*.ndjson").display().to_string(),
        ),
        (
            "/var/lib/fluent-bit/cloudtrail-tail.db",
            dir.join("tail.db").display().to_string(),
        ),
        ("Port                 24224", format!("Port {forward_port}")),
        ("Port   9880", format!("Port {http_port}")),
    ];
    substitutions.extend(changes.iter().cloned());
    copy_example(dir, "fluent-bit/fluent-bit.conf", &substitutions);
    copy_example(dir, "fluent-bit/parsers.conf", &[]);
    copy_example(
        dir,
        "fluent-bit/minewatch.toml",
        &[
            ("127.0.0.1:24224", forward.clone()),
            ("127.0.0.1:9880", http.clone()),
        ],
    );
    let server = Server::start_with(dir, &["--config", "minewatch.toml"], &["Fluent Forward"]);
    let peer = Peer::start(fluent_bit, &["-c", "fluent-bit.conf"], dir);
    (server, peer)
}

#[test]
fn fluent_bit_example_replays_the_scenario_with_the_alerts_of_run() {
    let Some(fluent_bit) = peer("fluent-bit") else {
        return;
    };
    let (dir, _) = setup();
    let (_, expected) = scenario(&dir);
    let (server, fluent_bit) = start_fluent_bit_example(&fluent_bit, &dir, &[]);
    assert_replay_gives(server, &fluent_bit, &expected, "Fluent Bit");
}

#[test]
fn fluent_bit_tail_without_a_parser_needs_no_record_field() {
    let Some(fluent_bit) = peer("fluent-bit") else {
        return;
    };
    let (dir, _) = setup();
    let (_, expected) = scenario(&dir);
    // The example with its parser taken out: every line arrives as a string under `log`.
    let no_parser = [("Parser           json", String::new())];
    let (server, fluent_bit) = start_fluent_bit_example(&fluent_bit, &dir, &no_parser);
    assert_replay_gives(
        server,
        &fluent_bit,
        &expected,
        "Fluent Bit without a parser",
    );
}

/// Fluent Bit running the filter example's files, unmodified, with the built plugin, in
/// `dir` (whose `cloudtrail/` it tails).
fn start_filter_example(fluent_bit: &Path, dir: &Dir) -> Peer {
    for file in [
        "fluent-bit-filter/fluent-bit.conf",
        "fluent-bit-filter/parsers.conf",
        "fluent-bit-filter/minewatch-filter.json",
    ] {
        copy_example(dir, file, &[]);
    }
    std::fs::copy(plugin_wasm(), dir.join("minewatch_fluent_bit.wasm")).unwrap();
    Peer::start(fluent_bit, &["-c", "fluent-bit.conf"], dir)
}

#[test]
fn fluent_bit_filter_example_tags_the_alerts_of_run() {
    let Some(fluent_bit) = peer("fluent-bit") else {
        return;
    };
    let (dir, _) = setup();
    // The filter judges each record as it passes, in the file's order, as `run` does;
    // incidents are the host's.
    let (_, written) = scenario(&dir);
    let expected: Vec<Value> = written.into_iter().filter(|r| !is_incident(r)).collect();
    let fluent_bit = start_filter_example(&fluent_bit, &dir);
    wait_until_settled(expected.len(), || fluent_bit.tagged_alerts().len());
    let got = fluent_bit.tagged_alerts();
    let log = fluent_bit.log();
    assert_same_alerts(&got, &expected, &format!("Fluent Bit filter_wasm\n{log}"));
    assert!(!log.contains("wasm operand stack overflow"), "{log}");
}

/// A RunInstances of `instances` instances as the real ones look: each response item
/// with its network interface, security groups and tags (about 2.5 KB an instance with
/// `rich`, about 600 bytes without).
fn mass_launch(
    time: &str,
    user: &str,
    ami: &str,
    kind: &str,
    instances: usize,
    rich: bool,
) -> Value {
    let mut record = crate::util::launch(
        time,
        &format!("arn:aws:iam::111122223333:user/{user}"),
        "us-east-1",
        ami,
        kind,
        &format!("{user}-{time}"),
    );
    let items: Vec<Value> = (0..instances)
        .map(|i| {
            let mut item = serde_json::json!({
                "instanceId": format!("i-{i:017x}"), "imageId": ami, "instanceType": kind,
                "instanceState": {"code": 0, "name": "pending"}, "amiLaunchIndex": i,
                "privateDnsName": format!("ip-10-0-{}-{}.ec2.internal", i / 250, i % 250),
                "placement": {"availabilityZone": "us-east-1a", "tenancy": "default"},
                "subnetId": "subnet-0123456789abcdef0", "vpcId": "vpc-0123456789abcdef0",
                "tagSet": {"items": [{"key": "Name", "value": format!("worker-{i}")}]},
                "privateIpAddress": format!("10.0.{}.{}", i / 250, i % 250),
                "launchTime": 1_772_323_200_000u64, "monitoring": {"state": "disabled"},
                "architecture": "x86_64", "rootDeviceType": "ebs", "virtualizationType": "hvm",
                "hypervisor": "xen", "productCodes": {}, "enaSupport": true,
            });
            if rich {
                item["networkInterfaceSet"] = serde_json::json!({"items": [{
                    "networkInterfaceId": format!("eni-{i:017x}"), "status": "in-use",
                    "macAddress": "0a:1b:2c:3d:4e:5f", "privateIpAddress": "10.0.0.7",
                    "groupSet": {"items": [{"groupId": "sg-0123456789abcdef0", "groupName": "default"}]},
                    "attachment": {"attachmentId": "eni-attach-0123456789abcdef0", "deviceIndex": 0,
                        "status": "attaching", "deleteOnTermination": true},
                    "privateIpAddressesSet": {"item": [{"privateIpAddress": "10.0.0.7", "primary": true}]},
                    "tagSet": {}}]});
                item["metadataOptions"] = serde_json::json!({"state": "pending",
                    "httpTokens": "required", "httpPutResponseHopLimit": 2, "httpEndpoint": "enabled",
                    "httpProtocolIpv4": "enabled", "httpProtocolIpv6": "disabled",
                    "instanceMetadataTags": "disabled"});
                for (key, value) in [
                    ("stateReason", serde_json::json!({"code": "pending", "message": "pending"})),
                    ("rootDeviceName", "/dev/xvda".into()),
                    ("blockDeviceMapping", serde_json::json!({"items": [{"deviceName": "/dev/xvda",
                        "ebs": {"volumeId": format!("vol-{i:017x}"), "status": "attaching",
                        "deleteOnTermination": true}}]})),
                    ("groupSet", serde_json::json!({"items": [{"groupId": "sg-0123456789abcdef0", "groupName": "default"}]})),
                    ("sourceDestCheck", true.into()),
                    ("ebsOptimized", false.into()),
                    ("cpuOptions", serde_json::json!({"coreCount": 1, "threadsPerCore": 2})),
                    ("capacityReservationSpecification", serde_json::json!({"capacityReservationPreference": "open"})),
                    ("enclaveOptions", serde_json::json!({"enabled": false})),
                    ("maintenanceOptions", serde_json::json!({"autoRecovery": "default"})),
                    ("privateDnsNameOptions", serde_json::json!({"hostnameType": "ip-name",
                        "enableResourceNameDnsARecord": false, "enableResourceNameDnsAAAARecord": false})),
                    ("currentInstanceBootMode", "legacy-bios".into()),
                ] {
                    item[key] = value;
                }
                item["tagSet"]["items"]
                    .as_array_mut()
                    .unwrap()
                    .extend(
                        [
                            ("team", "data-platform"),
                            ("cost-center", "cc-1234"),
                            ("environment", "production"),
                            ("owner", "platform-oncall@example.com"),
                            ("aws:autoscaling:groupName", "batch-workers-asg"),
                            ("aws:ec2launchtemplate:id", "lt-0123456789abcdef0"),
                            ("aws:ec2launchtemplate:version", "17"),
                            ("service", "nightly-etl"),
                        ]
                        .map(|(key, value)| serde_json::json!({"key": key, "value": value})),
                    );
            }
            item
        })
        .collect();
    record["requestParameters"]["instancesSet"]["items"][0]["minCount"] = instances.into();
    record["requestParameters"]["instancesSet"]["items"][0]["maxCount"] = instances.into();
    record["responseElements"]["instancesSet"]["items"] = Value::Array(items);
    record
}

/// Fluent Bit's resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn fluent_bit_filter_example_passes_mass_launches_without_a_trap() {
    let Some(fluent_bit) = peer("fluent-bit") else {
        return;
    };
    let (dir, _) = setup();
    // 20,000 launches of 4 instances (about 11 KB each) by 20 known users over three
    // weeks, then two newcomers: one with a new AMI, type and region, and one launching
    // 2,000 instances at once (about 1.2 MB on one line).
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z").unwrap();
    let at = |step: i64| {
        (start + chrono::Duration::seconds(90 * step))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let mut trail = String::new();
    for k in 0..20_000i64 {
        let launch = mass_launch(
            &at(k),
            &format!("builder-{}", k % 20),
            &format!("ami-{:017x}", k % 10),
            ["c5.large", "m5.large", "t3.micro"][(k % 3) as usize],
            4,
            true,
        );
        trail.push_str(&format!("{launch}\n"));
    }
    let average = trail.len() / 20_000;
    assert!(
        (9_000..14_000).contains(&average),
        "{average} bytes a launch"
    );
    let mut newcomer = mass_launch(
        &at(20_000),
        "mallory",
        "ami-0badbadbadbadbad0",
        "p4d.24xlarge",
        4,
        true,
    );
    newcomer["awsRegion"] = "ap-southeast-1".into();
    let mass = mass_launch(
        &at(20_001),
        "miner",
        "ami-0c0ffeec0ffeec0ff",
        "g5.12xlarge",
        2_000,
        false,
    );
    let mass = mass.to_string();
    assert!(
        (1_000_000..1_500_000).contains(&mass.len()),
        "{} bytes",
        mass.len()
    );
    trail.push_str(&format!("{newcomer}\n{mass}\n"));
    std::fs::create_dir_all(dir.join("cloudtrail")).unwrap();
    dir.write("cloudtrail/mass.ndjson", &trail);

    let peer = start_filter_example(&fluent_bit, &dir);
    let archived = || {
        std::fs::read_to_string(dir.join("archive/aws.cloudtrail"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    // Resident memory once a quarter of the 20,000 launches are through and near their
    // end, before the mass launch (whose 1.2 MB grows the module's memory once).
    let started = Instant::now();
    let reach = |count: usize| {
        while archived() < count && started.elapsed() < Duration::from_secs(900) {
            std::thread::sleep(Duration::from_millis(100));
        }
        rss_kib(peer.child.id())
    };
    let early = reach(5_000);
    let late = reach(19_500);
    wait_until_settled(20_002, archived);
    let log = peer.log();
    assert_eq!(archived(), 20_002, "every record passes the filter:\n{log}");
    assert!(!log.contains("exception"), "{log}");
    assert!(
        late < early + 16 * 1024,
        "Fluent Bit grew from {early} KiB to {late} KiB over 14,500 launches"
    );
    let tagged = pairs(&peer.tagged_alerts());
    for expected in [
        ("ec2-unseen-user", "arn:aws:iam::111122223333:user/mallory"),
        ("ec2-unseen-ami", "ami-0badbadbadbadbad0"),
        ("ec2-unseen-instance-type", "p4d.24xlarge"),
        ("ec2-unseen-region", "ap-southeast-1"),
        ("ec2-unseen-user", "arn:aws:iam::111122223333:user/miner"),
        ("ec2-unseen-ami", "ami-0c0ffeec0ffeec0ff"),
        ("ec2-unseen-instance-type", "g5.12xlarge"),
    ] {
        assert!(
            tagged.contains(&(expected.0.to_string(), expected.1.to_string())),
            "no {expected:?} among {tagged:?}"
        );
    }
}

/// Fails, naming each one and how to install it, when any peer or shared data that some
/// test skips without is missing: a skip is printed on stderr, which cargo captures, so
/// this test is how a local run says that it did not test everything. (Under `CI=true`
/// the skipping tests fail themselves.)
#[test]
fn peers_are_installed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shared = root.join("../shared");
    let mut missing = Vec::new();
    for name in ["fluent-bit", "vector"] {
        let var = format!("MINEWATCH_{}", name.replace('-', "_").to_uppercase());
        let path = std::env::var_os(&var)
            .map(PathBuf::from)
            .unwrap_or_else(|| shared.join("peers").join(name));
        if !path.is_file() {
            missing.push(format!(
                "the real {name} at {} (set {var}; tests/peers.rs, serve_http, tls_peers)",
                path.display()
            ));
        }
    }
    for data in ["conformance", "data/cloudtrail"] {
        if !shared.join(data).exists() {
            missing.push(format!(
                "shared/{data} beside the checkout (tests/conformance.rs, tests/real_data.rs)"
            ));
        }
    }
    let installed = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !installed("node", &["--version"]) {
        missing.push("Node.js 20 or later (`node` on PATH)".to_string());
    }
    if !root
        .join("examples/node-host/node_modules/@bytecodealliance/jco")
        .is_dir()
    {
        missing.push("jco: `npm ci --prefix examples/node-host`".to_string());
    }
    for package in ["@fluent-org/logger", "fluent-logger"] {
        if !root
            .join("tests/peers/fluent/node_modules")
            .join(package)
            .is_dir()
        {
            missing.push(format!(
                "npm {package}: `npm ci --prefix tests/peers/fluent`"
            ));
        }
    }
    let python = std::env::var("MINEWATCH_PYTHON").unwrap_or_else(|_| "python3".into());
    if !installed(&python, &["-c", "import fluent.sender"]) {
        missing.push(format!(
            "PyPI fluent-logger for {python}: `python3 -m venv tests/peers/fluent/.venv && \
             tests/peers/fluent/.venv/bin/pip install -r tests/peers/fluent/requirements.txt`, \
             and MINEWATCH_PYTHON=tests/peers/fluent/.venv/bin/python"
        ));
    }
    if !installed("redis-server", &["--version"]) {
        missing.push("redis-server (Debian package redis-server)".to_string());
    }
    if std::env::var_os("MINEWATCH_SKIP_PEERS").is_some_and(|v| v == "1") {
        missing.push("MINEWATCH_SKIP_PEERS=1 is set: the peer tests skip".to_string());
    }
    assert!(
        missing.is_empty(),
        "tests that need these skipped instead of running (`.ci/run` installs them all):\n  {}",
        missing.join("\n  ")
    );
}
