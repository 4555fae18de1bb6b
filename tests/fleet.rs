//! Sidecars sharing baselines through a real Redis server (`redis-server`, installed by
//! `.ci/run`): atomic first-seen across processes, exact replays after a failed call, a
//! fleet of `serve` processes, and Redis killed and restarted mid-stream.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use minewatch::store::BaselineBackend;
use minewatch::store::redis::{RedisConfig, RedisStore};
use minewatch_guest::ValueChange;
use serde_json::Value;

use crate::util::{Dir, Server, alerts, command, generate_scenario, incidents, post, setup};

/// A `redis-server` on a free loopback port, persisting every write before it answers
/// (`appendfsync always`), killed when dropped. Other test modules start theirs here too.
pub(crate) struct Redis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    pub(crate) fn start(dir: &Path) -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Redis {
            child: None,
            port,
            dir: dir.to_path_buf(),
        };
        redis.launch();
        redis
    }

    pub(crate) fn launch(&mut self) {
        std::fs::create_dir_all(&self.dir).unwrap();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed for these tests (.ci/run installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.store().ping().is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// SIGKILL: no shutdown save, only what was fsynced survives.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn store(&self) -> RedisStore {
        RedisStore::new(RedisConfig {
            url: self.url(),
            timeout_ms: 1000,
            ..RedisConfig::default()
        })
        .unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Alerts as sorted JSON texts, so two runs compare whole, evidence included.
fn sorted(alerts: Vec<Value>) -> Vec<String> {
    let mut texts: Vec<String> = alerts.iter().map(Value::to_string).collect();
    texts.sort();
    texts
}

/// A generated scenario and the alerts a single `run` over it raises.
fn scenario(dir: &Dir, seed: u64) -> (Vec<String>, Vec<String>) {
    generate_scenario(dir, seed, "scenario.ndjson");
    let expected = alerts(
        &command(dir)
            .args(["run", "--memory", "--input", "scenario.ndjson"])
            .ok(dir)
            .stdout,
    );
    assert!(expected.len() >= 8, "the scenario has its incidents");
    let text = std::fs::read_to_string(dir.join("scenario.ndjson")).unwrap();
    let lines = text.lines().map(str::to_string).collect();
    (lines, sorted(expected))
}

/// POSTs NDJSON until it is accepted, waiting out back-pressure.
fn deliver(server: &Server, lines: &[String]) {
    let body = lines.join("\n");
    loop {
        let (status, reply) = post(&server.url("/events"), body.as_bytes(), &[]);
        match status {
            200 => return,
            429 | 503 => std::thread::sleep(Duration::from_millis(100)),
            _ => panic!("{status}: {reply}"),
        }
    }
}

/// Starts `serve` over HTTP with baselines in `redis`, alerts to `alerts.ndjson`, and
/// the rest of its configuration from `config` (TOML text).
fn serve_with_redis(dir: &Dir, config: &str, redis: &Redis) -> Server {
    let config = dir.write("minewatch.toml", config);
    Server::start(
        dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
            "--redis",
            &redis.url(),
            "--output",
            "alerts.ndjson",
        ],
    )
}

fn read_alerts(dir: &Dir, name: &str) -> Vec<Value> {
    alerts(&std::fs::read(dir.join(name)).unwrap_or_default())
}

#[test]
fn exactly_one_of_two_racing_sidecars_sees_a_key_new() {
    let (dir, _) = setup();
    let redis = Redis::start(&dir.join("redis"));
    let keys: Vec<String> = (0..300).map(|i| format!("ami-{i:08x}")).collect();
    let barrier = Arc::new(Barrier::new(2));
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let (mut store, keys, barrier) = (redis.store(), keys.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut new = BTreeSet::new();
                // One key per call, so the two processes' calls interleave.
                for key in &keys {
                    store.begin_batch(false);
                    let observed = store.tenant("acme").observe(
                        "ec2-unseen-ami",
                        0,
                        &[(key.as_str(), 1_700_000_000_000)],
                    );
                    assert!(store.take_failure().is_none());
                    store.commit().unwrap();
                    if observed[0].is_new {
                        new.insert(key.clone());
                    }
                }
                new
            })
        })
        .collect();
    let [first, second]: [BTreeSet<String>; 2] = racers
        .into_iter()
        .map(|r| r.join().unwrap())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    // Each key new to exactly one of them: none to both, none to neither. (Two `serve`
    // processes racing: `two_serve_processes_racing_new_keys_raise_one_alert_per_key`.)
    assert!(
        first.is_disjoint(&second),
        "{:?}",
        first.intersection(&second).collect::<Vec<_>>()
    );
    assert_eq!(first.len() + second.len(), keys.len());
    // Another tenant shares nothing.
    let mut other = redis.store();
    other.begin_batch(false);
    let seen = other
        .tenant("globex")
        .observe("ec2-unseen-ami", 0, &[(keys[0].as_str(), 1)]);
    assert!(seen[0].is_new);
}

#[test]
fn a_batch_run_again_after_a_failure_gets_the_same_answers() {
    let (dir, _) = setup();
    let redis = Redis::start(&dir.join("redis"));
    let mut store = redis.store();
    let day = 86_400_000;
    // One batch's calls: two sightings of a new region (the second known, so this
    // sidecar caches it), another new region, two launches counted, a window's count
    // moved in the rate history and the history read back.
    let batch = |store: &mut RedisStore| {
        let mut tenant = store.tenant("acme");
        let set = "ec2-unseen-region";
        let mut seen = tenant.observe(set, 90 * day, &[("us-east-1", day), ("us-east-1", 3 * day)]);
        seen.extend(tenant.observe(set, 90 * day, &[("ap-south-1", 2 * day)]));
        let count = tenant.add("rate/calls", &[("alice", 0, 1), ("alice", 0, 1)]);
        let change = ValueChange {
            bucket: 0,
            previous: 0,
            current: 2,
        };
        tenant.record_values("rate/calls/global", &[change]);
        let history = tenant.histogram("rate/calls/global", 0, 0);
        (seen, count, history)
    };
    store.begin_batch(false);
    let first = batch(&mut store);
    assert_eq!(
        first.0.iter().map(|o| o.is_new).collect::<Vec<_>>(),
        [true, false, true]
    );
    assert_eq!(first.1, [1, 2]);
    assert_eq!(first.2, [(2, 1)]);
    // The batch failed later (say, the alerts could not be written): the host runs it
    // again. Keys it claimed are still new to it, even the one it had cached, and
    // counts and histograms are not added to twice.
    store.begin_batch(true);
    let again = batch(&mut store);
    // What alerts are made of: which keys are new, and the baseline size and learning
    // start a new key reports (a known key's size may have grown meanwhile).
    let answers = |seen: &[minewatch_guest::Observed]| {
        seen.iter()
            .map(|o| (o.is_new, o.is_new.then_some(o.set_size), o.learning_start))
            .collect::<Vec<_>>()
    };
    assert_eq!(answers(&again.0), answers(&first.0));
    assert_eq!(again.1, first.1, "the first attempt's answers");
    assert_eq!(again.2, [(2, 1)]);
    store.commit().unwrap();
    // A new batch, or another sidecar: the keys are known now, the launches counted once.
    let mut other = redis.store();
    other.begin_batch(false);
    assert_eq!(
        other.tenant("acme").add("rate/calls", &[("alice", 0, 0)]),
        [2]
    );
    let seen =
        other
            .tenant("acme")
            .observe("ec2-unseen-region", 90 * day, &[("ap-south-1", 4 * day)]);
    assert!(!seen[0].is_new);
    assert_eq!(seen[0].previous.unwrap().count, 1);
}

#[test]
fn three_sidecars_sharing_redis_raise_the_alerts_of_one_run() {
    let (dir, _) = setup();
    let (lines, expected) = scenario(&dir, 11);
    let redis = Redis::start(&dir.join("redis"));
    let url = redis.url();
    let outputs = ["a.ndjson", "b.ndjson", "c.ndjson"];
    let servers: Vec<Server> = outputs
        .iter()
        .map(|out| {
            Server::start(
                &dir,
                &["--http", "127.0.0.1:0", "--redis", &url, "--output", out],
            )
        })
        .collect();
    // Round robin, one request at a time, as a load balancer in front of them would; the
    // minutes of the stolen-key campaign one record a request, the launch that opens its
    // incident and the one that trips the rate rules to different sidecars.
    let line_of = |detection: &str| {
        let alert: Value = expected
            .iter()
            .map(|a| serde_json::from_str::<Value>(a).unwrap())
            .find(|a| a["detection"] == detection)
            .unwrap();
        let id = alert["event"]["event_id"].as_str().unwrap().to_string();
        lines.iter().position(|l| l.contains(&id)).unwrap()
    };
    let (opening, spike) = (
        line_of("ec2-unseen-instance-type"),
        line_of("ec2-launch-spike"),
    );
    assert!(opening < spike);
    let (start, end) = (opening.saturating_sub(30), (spike + 30).min(lines.len()));
    let mut requests: Vec<&[String]> = lines[..start].chunks(400).collect();
    let first_single = requests.len();
    requests.extend(lines[start..end].chunks(1));
    requests.extend(lines[end..].chunks(400));
    let server_of = |i: usize| {
        let spike_request = first_single + spike - start;
        let opening_request = first_single + opening - start;
        if i == spike_request && i % 3 == opening_request % 3 {
            (i + 1) % 3
        } else {
            i % 3
        }
    };
    for (i, request) in requests.into_iter().enumerate() {
        deliver(&servers[server_of(i)], request);
    }
    for server in servers {
        server.stop();
    }
    let raised: Vec<Value> = outputs.iter().flat_map(|o| read_alerts(&dir, o)).collect();
    let spread: BTreeSet<&str> = outputs
        .iter()
        .filter(|o| !incidents(&std::fs::read(dir.join(o)).unwrap_or_default()).is_empty())
        .copied()
        .collect();
    assert!(
        spread.len() >= 2,
        "the campaign's incident records came from {spread:?}"
    );
    assert_eq!(sorted(raised), expected);
    // One incident for the campaign in the whole fleet, whichever sidecar saw what: one
    // opening record, every record under its id, the same records as one run.
    let records: Vec<Value> = outputs
        .iter()
        .flat_map(|o| incidents(&std::fs::read(dir.join(o)).unwrap_or_default()))
        .collect();
    let opened = records.iter().filter(|r| r["status"] == "open").count();
    assert_eq!(opened, 1, "{records:#?}");
    assert!(
        records
            .iter()
            .all(|r| r["incident_id"] == records[0]["incident_id"])
    );
    let single = incidents(
        &command(&dir)
            .args(["run", "--memory", "--input", "scenario.ndjson"])
            .ok(&dir)
            .stdout,
    );
    assert_eq!(sorted(records), sorted(single));
}

#[test]
fn redis_killed_and_restarted_mid_stream_loses_nothing() {
    let (dir, _) = setup();
    let (lines, expected) = scenario(&dir, 12);
    let mut redis = Redis::start(&dir.join("redis"));
    let server = Arc::new(serve_with_redis(&dir, "queue_batches = 2\n", &redis));
    let chunks: Vec<Vec<String>> = lines.chunks(300).map(<[String]>::to_vec).collect();
    let total = chunks.len();
    let delivered = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (server, delivered) = (server.clone(), delivered.clone());
        std::thread::spawn(move || {
            for chunk in chunks {
                deliver(&server, &chunk);
                delivered.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    while delivered.load(Ordering::SeqCst) < total / 2 {
        std::thread::sleep(Duration::from_millis(5));
    }
    redis.kill();
    std::thread::sleep(Duration::from_millis(500));
    // While the pipeline holds its batch, the bounded queue fills and the server answers
    // with back-pressure instead of buffering without limit.
    let other = r#"{"eventVersion":"1.09","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","eventTime":"2026-03-01T00:00:00Z","awsRegion":"us-east-1","eventID":"describe-1"}"#;
    let extra: Vec<_> = (0..4)
        .map(|_| {
            let url = server.url("/events");
            std::thread::spawn(move || post(&url, other.as_bytes(), &[]).0)
        })
        .collect();
    let during = delivered.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1500));
    redis.launch();
    sender.join().unwrap();
    let statuses: Vec<u16> = extra.into_iter().map(|e| e.join().unwrap()).collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [200, 429].contains(s)),
        "{statuses:?}"
    );
    assert!(
        during < total,
        "the outage happened mid-stream ({during} of {total} delivered)"
    );
    let server = Arc::into_inner(server).unwrap();
    let log = server.stop();
    assert!(
        log.contains("Baseline store unavailable"),
        "the outage was noticed:\n{log}"
    );
    assert!(log.contains("Baseline store is back"), "{log}");
    assert_eq!(sorted(read_alerts(&dir, "alerts.ndjson")), expected);
}

#[test]
fn validate_reports_an_unreachable_redis() {
    let (dir, mut cmd) = setup();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.write(
        "fleet.toml",
        format!("[store]\nbackend = \"redis\"\n[store.redis]\nurl = \"redis://127.0.0.1:{port}/0\"\ntimeout_ms = 500\n"),
    );
    let out = cmd
        .args(["validate", "--config", config.to_str().unwrap()])
        .assert_exit(&dir, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot connect to Redis"), "{stderr}");
    let redis = Redis::start(&dir.join("redis"));
    let reachable = dir.write(
        "fleet.toml",
        format!(
            "[store]\nbackend = \"redis\"\n[store.redis]\nurl = \"{}\"\n",
            redis.url()
        ),
    );
    command(&dir)
        .args(["validate", "--config", reachable.to_str().unwrap()])
        .ok(&dir);
}

#[test]
fn tenants_learn_apart_in_one_redis() {
    let (dir, _) = setup();
    let (lines, expected) = scenario(&dir, 13);
    let redis = Redis::start(&dir.join("redis"));
    let config = "tenant = \"default\"\n[[tenants]]\nname = \"acme\"\n";
    let server = serve_with_redis(&dir, config, &redis);
    // The same records for both tenants, their requests in flight together: each tenant
    // learns on its own, in its own keys and its own pipeline.
    for chunk in lines.chunks(500) {
        let body = chunk.join("\n");
        let acme = {
            let url = server.url("/tenants/acme/events");
            let body = body.clone();
            std::thread::spawn(move || post(&url, body.as_bytes(), &[]))
        };
        let (status, reply) = post(&server.url("/events"), body.as_bytes(), &[]);
        assert_eq!(status, 200, "{reply}");
        let (status, reply) = acme.join().unwrap();
        assert_eq!(status, 200, "{reply}");
    }
    server.stop();
    let raised = read_alerts(&dir, "alerts.ndjson");
    for tenant in ["default", "acme"] {
        let mine: Vec<Value> = raised
            .iter()
            .filter(|a| a["tenant"] == tenant)
            .map(|a| {
                let mut a = a.clone();
                a["tenant"] = Value::from("default");
                a
            })
            .collect();
        assert_eq!(sorted(mine), expected, "tenant {tenant}");
    }
}

#[test]
fn a_guest_cannot_reach_another_tenants_keys_in_redis() {
    use crate::sandbox::{PROBED_NAMES, hostile_config, launches};
    let (dir, _) = setup();
    let redis = Redis::start(&dir.join("redis"));
    let config = hostile_config(&dir, &[("prober", "probe", "")], "");
    // The default tenant learns regions from real-shaped launches.
    command(&dir)
        .args(["run", "--redis", &redis.url(), "--config"])
        .args([&config])
        .args(["--input"])
        .args([crate::util::data("conformance/learning-gate/events.ndjson")])
        .ok(&dir);
    // The prober tries set names that would reach them were tenant and name joined
    // without escaping: every set it reaches is its own, and empty at first.
    let out = command(&dir)
        .args([
            "run",
            "--redis",
            &redis.url(),
            "--tenant",
            "prober",
            "--config",
        ])
        .args([&config])
        .stdin(crate::util::ndjson(&launches("probe")))
        .ok(&dir);
    let raised = alerts(&out.stdout);
    let first_batch: Vec<&str> = raised[..PROBED_NAMES]
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    assert!(
        first_batch.iter().all(|k| k.ends_with("=0")),
        "{first_batch:?}"
    );
    // And the default tenant's regions are still known to it alone.
    let mut store = redis.store();
    store.begin_batch(false);
    let seen = store
        .tenant("default")
        .observe("ec2-unseen-region", 0, &[("us-east-1", 1)]);
    assert!(!seen[0].is_new);
}

#[test]
fn a_fleets_baselines_export_like_an_embedded_stores() {
    let (dir, _) = setup();
    let (_, expected) = scenario(&dir, 14);
    assert!(!expected.is_empty());
    let redis = Redis::start(&dir.join("redis"));
    for store in [["--state", "state"], ["--redis", &redis.url()]] {
        command(&dir)
            .args(["run", "--input", "scenario.ndjson"])
            .args(store)
            .ok(&dir);
    }
    let export = |store: &[&str]| -> Vec<Value> {
        let out = command(&dir)
            .args(["baseline", "export", "--tenant", "default"])
            .args(store)
            .ok(&dir);
        alerts(&out.stdout)
            .into_iter()
            // Both stores drop expired event ids and old counter buckets, each on its
            // own schedule; everything else must agree to the entry.
            .filter(|e| e["kind"] != "counter")
            .filter(|e| !(e["kind"] == "sighting" && e["set"] == "rate/event-ids"))
            .collect()
    };
    let embedded = export(&["--state", "state"]);
    let fleet = export(&["--redis", &redis.url()]);
    assert!(
        embedded.iter().any(|e| e["kind"] == "histogram")
            && embedded.iter().any(|e| e["set"] == "ec2-unseen-ami"),
        "{embedded:?}"
    );
    assert_eq!(sorted(fleet), sorted(embedded));
}

/// Starts `n` `serve` processes sharing `redis`, each held before judging its first
/// batch (the test hook) until the release file appears, and sends each the same
/// conformance case (mallory's launch, four keys no one has seen) at once; once all
/// are held, releases them together and returns each one's alerts.
fn race_sidecars(n: usize) -> Vec<Vec<Value>> {
    let (dir, _) = setup();
    let redis = Redis::start(&dir.join("redis"));
    let release = dir.join("release");
    let body = std::fs::read(crate::util::data(
        "conformance/failures-ignored/events.ndjson",
    ))
    .unwrap();
    let sidecars: Vec<(Dir, Server)> = (0..n)
        .map(|_| {
            let (own, _) = setup();
            let config = own.write("minewatch.toml", "settle_ms = 0\n");
            let server = Server::start_env(
                &own,
                &[
                    "--config",
                    config.to_str().unwrap(),
                    "--http",
                    "127.0.0.1:0",
                    "--redis",
                    &redis.url(),
                    "--output",
                    "alerts.ndjson",
                ],
                &["HTTP"],
                &[
                    ("MINEWATCH_TEST_HOOK", "pause@before-detect"),
                    ("MINEWATCH_TEST_RELEASE", release.to_str().unwrap()),
                ],
            );
            (own, server)
        })
        .collect();
    let clients: Vec<_> = sidecars
        .iter()
        .map(|(_, server)| {
            let (url, body) = (server.url("/events"), body.clone());
            std::thread::spawn(move || post(&url, &body, &[]))
        })
        .collect();
    for (_, server) in &sidecars {
        server.wait_for_log("Test hook: paused at before-detect", 1);
    }
    std::fs::write(&release, "").unwrap();
    for client in clients {
        let (status, reply) = client.join().unwrap();
        assert_eq!(status, 200, "{reply}");
    }
    sidecars
        .into_iter()
        .map(|(own, server)| {
            server.stop();
            read_alerts(&own, "alerts.ndjson")
        })
        .collect()
}

/// Each of mallory's four keys alerted by exactly one sidecar of the fleet.
fn assert_one_alert_per_key(fleet: &[Vec<Value>]) {
    let mut per_key = std::collections::BTreeMap::new();
    for (sidecar, alerts) in fleet.iter().enumerate() {
        for (detection, key) in crate::util::pairs(alerts) {
            per_key
                .entry((detection, key))
                .or_insert_with(Vec::new)
                .push(sidecar);
        }
    }
    let keys: BTreeSet<_> = per_key.keys().map(|(d, _)| d.as_str()).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "ec2-unseen-ami",
            "ec2-unseen-instance-type",
            "ec2-unseen-region",
            "ec2-unseen-user"
        ]),
        "{per_key:?}"
    );
    for (key, sidecars) in &per_key {
        assert_eq!(
            sidecars.len(),
            1,
            "{key:?} alerted by sidecars {sidecars:?}"
        );
    }
}

#[test]
fn two_serve_processes_racing_new_keys_raise_one_alert_per_key() {
    assert_one_alert_per_key(&race_sidecars(2));
}

#[test]
fn three_serve_processes_racing_new_keys_raise_one_alert_per_key() {
    assert_one_alert_per_key(&race_sidecars(3));
}

/// A real failure halfway through a batch: `serve` is held (test hook) right after Redis
/// claimed mallory's keys as new, Redis is killed with SIGKILL and restarted (its
/// append-only file keeps the claims), and the batch goes on: its next call fails, the
/// batch is held and run again, and the claimed keys answer "new" again, so the alerts
/// are exactly those of a run without the failure.
#[test]
fn a_batch_failing_halfway_in_redis_is_run_again_with_the_same_alerts() {
    let (dir, _) = setup();
    let mut redis = Redis::start(&dir.join("redis"));
    let release = dir.join("release");
    let config = dir.write("minewatch.toml", "settle_ms = 0\n");
    let server = Server::start_env(
        &dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
            "--redis",
            &redis.url(),
            "--output",
            "alerts.ndjson",
        ],
        &["HTTP"],
        &[
            (
                "MINEWATCH_TEST_HOOK",
                "pause@redis-observed:ec2-unseen-user",
            ),
            ("MINEWATCH_TEST_RELEASE", release.to_str().unwrap()),
        ],
    );
    let body = std::fs::read(crate::util::data(
        "conformance/failures-ignored/events.ndjson",
    ))
    .unwrap();
    let url = server.url("/events");
    let client = std::thread::spawn(move || post(&url, &body, &[]));
    server.wait_for_log("Test hook: paused at redis-observed:ec2-unseen-user", 1);
    redis.kill();
    redis.launch();
    std::fs::write(&release, "").unwrap();
    let (status, reply) = client.join().unwrap();
    assert_eq!(status, 200, "{reply}");
    let log = server.stop();
    assert!(
        log.contains("Baseline store unavailable; holding the batch and retrying."),
        "the batch failed halfway:\n{log}"
    );
    let got = crate::util::unique_pairs(&read_alerts(&dir, "alerts.ndjson"));
    let keys: Vec<&str> = got.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "ami-0bad0bad0bad0bad1",
            "p3.2xlarge",
            "sa-east-1",
            "arn:aws:iam::111122223333:user/mallory"
        ],
        "mallory's four alerts, each once: {got:?}"
    );
}
