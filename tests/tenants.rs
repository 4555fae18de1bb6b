//! Tenants in one `serve`: hostile components (an endless loop, a memory bomb, a
//! panic) run beside the built-in detections; the server stays up, the built-in
//! tenant's alerts are exactly those of `minewatch run` on the same events, and every
//! hostile batch is dead-lettered with its reason, counted in `/metrics`.

use minewatch_generator::{Layout, Spec};
use serde_json::Value;

use crate::sandbox::{dead_letters, hostile_config, launches};
use crate::util::{Dir, Server, alerts, post, setup, write_scenario};

/// (detection, key, event id) of each alert, sorted.
fn fingerprints(alerts: &[Value]) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = alerts
        .iter()
        .map(|a| {
            (
                a["detection"].as_str().unwrap_or_default().to_string(),
                a["key"].as_str().unwrap_or_default().to_string(),
                a["event"]["event_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The value of a Prometheus counter with these labels, if rendered.
fn counter(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn hostile_tenants_beside_the_builtin_detections() {
    let (dir, _) = setup();
    let spec = Spec {
        days: 30,
        events_per_day: 300,
        ..Spec::default()
    };
    write_scenario(&dir, &spec, Layout::Ndjson, "events.ndjson");
    let events = dir.join("events.ndjson");
    let config = hostile_config(
        &dir,
        &[
            ("looper", "loop", "batch_cpu_ms = 100"),
            ("bomb", "memory", "memory_mb = 32"),
            ("crasher", "panic", ""),
        ],
        &format!(
            "[sources.http]\nlisten = \"127.0.0.1:0\"\n[[outputs]]\ntype = \"file\"\npath = {:?}\n",
            dir.join("served.ndjson")
        ),
    );
    // The config's batch_events = 2 makes many batches; the built-in tenant gets 512.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("batch_events = 2", "batch_events = 512");
    std::fs::write(&config, text).unwrap();

    let server = Server::start(
        &dir,
        &["--config", config.to_str().unwrap(), "--state", "state"],
    );
    let hostile_batch = crate::util::ndjson(&launches("hostile"));
    let lines: Vec<String> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    for (i, chunk) in lines.chunks(2000).enumerate() {
        let (status, body) = post(&server.url("/events"), chunk.join("\n").as_bytes(), &[]);
        assert_eq!(status, 200, "{body}");
        // Interleave the hostile tenants' batches with the built-in one's.
        if i < 2 {
            for tenant in ["looper", "bomb", "crasher"] {
                let url = server.url(&format!("/tenants/{tenant}/events"));
                let (status, body) = post(&url, hostile_batch.as_bytes(), &[]);
                assert_eq!(status, 200, "{tenant}: {body}");
            }
        }
    }
    let (status, _) = post(&server.url("/tenants/nobody/events"), b"{}", &[]);
    assert_eq!(status, 404);
    let metrics = ureq::get(&server.url("/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    server.stop();

    // Every hostile batch was dead-lettered with its reason and tenant.
    let dead = dead_letters(&dir.join("dead.ndjson"));
    for (tenant, reason) in [
        ("looper", "cpu_deadline"),
        ("bomb", "memory"),
        ("crasher", "trap"),
    ] {
        let mine: Vec<&Value> = dead.iter().filter(|d| d["tenant"] == tenant).collect();
        assert_eq!(mine.len(), 2, "{tenant}: {mine:?}");
        assert!(
            mine.iter().all(|d| d["reason"] == reason),
            "{tenant}: {mine:?}"
        );
        assert_eq!(
            counter(
                &metrics,
                "minewatch_guest_stops_total",
                &[("tenant", tenant), ("reason", reason)]
            ),
            Some(2.0),
            "{tenant}: {metrics}"
        );
    }
    assert!(dead.iter().all(|d| d["tenant"] != "default"), "{dead:?}");

    // The built-in tenant's alerts are exactly what a plain run finds.
    let served: Vec<Value> = alerts(&std::fs::read(dir.join("served.ndjson")).unwrap());
    assert!(served.iter().all(|a| a["tenant"] == "default"));
    let out = crate::util::command(&dir)
        .args(["run", "--memory", "--input"])
        .args([&events])
        .ok(&dir);
    let expected = alerts(&out.stdout);
    assert!(!expected.is_empty());
    assert_eq!(fingerprints(&served), fingerprints(&expected));

    // The looping guest's baseline write before its deadline stays, in its own namespace.
    let export = crate::util::command(&dir)
        .args([
            "baseline", "export", "--state", "state", "--tenant", "looper",
        ])
        .ok(&dir);
    let text = String::from_utf8_lossy(&export.stdout);
    assert!(text.contains("learned-before-loop"), "{text}");
    let export = crate::util::command(&dir)
        .args([
            "baseline", "export", "--state", "state", "--tenant", "default",
        ])
        .ok(&dir);
    assert!(!String::from_utf8_lossy(&export.stdout).contains("learned-before-loop"));
}

/// Replaces a file the way a deploy does: write beside it, then rename over it.
fn replace(path: &std::path::Path, bytes: &[u8]) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, bytes).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

/// Posts a Saturday-night GPU launch by alice to tenant `gpu`; returns the alerts count.
fn launch_gpu(server: &Server, id: &str, minute: u32) -> u64 {
    let record = crate::util::launch(
        &format!("2026-03-07T03:{minute:02}:00Z"),
        "arn:aws:iam::111122223333:user/alice",
        "us-east-1",
        "ami-0a1b2c3d4e5f60001",
        "g4dn.xlarge",
        id,
    );
    let (status, body) = post(
        &server.url("/tenants/gpu/events"),
        record.to_string().as_bytes(),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["alerts"]
        .as_u64()
        .unwrap()
}

/// Starts `serve` from a config file with tenant `gpu` running `component` and alerts
/// going to `served.ndjson`; returns the config's path and text, and the server.
fn serve_gpu(dir: &Dir, component: &std::path::Path) -> (std::path::PathBuf, String, Server) {
    let config_text = format!(
        "[sources.http]\nlisten = \"127.0.0.1:0\"\n[[outputs]]\ntype = \"file\"\npath = {:?}\n\
         [[tenants]]\nname = \"gpu\"\ncomponent = {component:?}\n",
        dir.join("served.ndjson")
    );
    let config = dir.write("minewatch.toml", &config_text);
    let server = Server::start(
        dir,
        &["--config", config.to_str().unwrap(), "--state", "state"],
    );
    (config, config_text, server)
}

#[test]
fn a_replaced_component_takes_over_without_losing_a_learned_key() {
    let (dir, _) = setup();
    let gpu = std::fs::read(crate::custom_detector::component()).unwrap();
    let hostile = std::fs::read(crate::sandbox::hostile()).unwrap();
    let component = dir.write("detector.wasm", &gpu);
    let (config, config_text, server) = serve_gpu(&dir, &component);
    // The GPU detector learns alice (and alerts: her first off-hours GPU launch).
    assert_eq!(launch_gpu(&server, "gpu-1", 0), 1);

    // A new component file takes over: the quiet hostile build raises nothing.
    replace(&component, &hostile);
    server.wait_for_log("Tenant now runs the new detector.", 1);
    assert_eq!(launch_gpu(&server, "gpu-2", 10), 0);

    // A broken component and a broken config are rejected; the running one stays.
    replace(&component, b"not a component");
    server.wait_for_log("Rejected the new detector; the old one keeps running.", 1);
    replace(&config, b"tenants = 3");
    server.wait_for_log("Rejected the new configuration", 1);
    assert_eq!(launch_gpu(&server, "gpu-3", 20), 0);

    // The GPU detector comes back and still knows alice's first launch.
    replace(&config, config_text.as_bytes());
    replace(&component, &gpu);
    server.wait_for_log("Tenant now runs the new detector.", 2);
    assert_eq!(launch_gpu(&server, "gpu-4", 30), 1);
    server.stop();
    let served = alerts(&std::fs::read(dir.join("served.ndjson")).unwrap());
    assert_eq!(served.len(), 2, "{served:?}");
    assert_eq!(served[0]["evidence"]["previous"], Value::Null);
    assert_eq!(
        served[1]["evidence"]["previous"]["count"], 1,
        "{}",
        served[1]
    );
    assert_eq!(served[1]["event"]["event_id"], "gpu-4");
}

#[test]
fn sighup_rereads_the_config_and_keeps_what_did_not_change() {
    let (dir, _) = setup();
    let (_, _, server) = serve_gpu(&dir, crate::custom_detector::component());
    assert_eq!(launch_gpu(&server, "gpu-1", 0), 1);
    // Nothing changed: the reload re-reads and checks everything, swaps nothing, and
    // the tenant goes on with what it learned.
    server.signal("HUP");
    server.wait_for_log("SIGHUP: reloading the configuration.", 1);
    server.signal("HUP");
    server.wait_for_log("SIGHUP: reloading the configuration.", 2);
    assert_eq!(launch_gpu(&server, "gpu-2", 10), 1);
    let log = server.stop();
    assert!(!log.contains("Tenant now runs the new detector."), "{log}");
    assert!(!log.contains("Rejected"), "{log}");
    let served = alerts(&std::fs::read(dir.join("served.ndjson")).unwrap());
    assert_eq!(served.len(), 2, "{served:?}");
    assert_eq!(
        served[1]["evidence"]["previous"]["count"], 1,
        "{}",
        served[1]
    );
}

#[test]
fn records_are_routed_by_account_to_their_tenant() {
    let (dir, _) = setup();
    let config = hostile_config(
        &dir,
        &[("other", "probe", "route_values = [\"444455556666\"]")],
        &format!(
            "route_field = \"recipientAccountId\"\n[sources.http]\nlisten = \"127.0.0.1:0\"\n\
             [[outputs]]\ntype = \"file\"\npath = {:?}\n",
            dir.join("served.ndjson")
        ),
    );
    let server = Server::start(&dir, &["--config", config.to_str().unwrap(), "--memory"]);
    let mut records = launches("ours");
    // Past the default tenant's 14 days of learning: alice in a region new to it alerts
    // there, and bob, were he routed there too, would alert four times (all new to it).
    records.push(crate::util::launch(
        "2026-03-20T10:00:00Z",
        "arn:aws:iam::111122223333:user/alice",
        "eu-west-3",
        "ami-0abc",
        "t3.micro",
        "ours-late",
    ));
    records.push(crate::util::launch(
        "2026-03-20T11:00:00Z",
        "arn:aws:iam::444455556666:user/bob",
        "ap-south-1",
        "ami-0b0b",
        "m5.large",
        "theirs-1",
    ));
    let (status, body) = post(
        &server.url("/events"),
        crate::util::ndjson(&records).as_bytes(),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    server.stop();
    // Only bob's record reached the probing tenant: one batch, one alert per probed name;
    // alice's five stayed with the default tenant, and only they: its one alert is
    // alice's new region, none of bob's.
    let served = alerts(&std::fs::read(dir.join("served.ndjson")).unwrap());
    let (theirs, ours): (Vec<_>, Vec<_>) = served.iter().partition(|a| a["tenant"] == "other");
    assert_eq!(theirs.len(), crate::sandbox::PROBED_NAMES, "{served:?}");
    let ours: Vec<(&str, &str, &str)> = ours
        .iter()
        .map(|a| {
            (
                a["tenant"].as_str().unwrap(),
                a["key"].as_str().unwrap(),
                a["event"]["event_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ours,
        [("default", "eu-west-3", "ours-late")],
        "the default tenant's alerts"
    );
}

#[test]
fn forward_tags_with_a_tenant_prefix_go_to_that_tenant() {
    let peers = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/fluent");
    assert!(
        peers.join("node_modules/@fluent-org/logger").exists(),
        "install the Forward peers: npm ci --prefix tests/peers/fluent"
    );
    let (dir, _) = setup();
    // The prefixed tenant panics on every batch, so the dead-letter file shows exactly
    // which records reached it.
    let config = hostile_config(
        &dir,
        &[("other", "panic", "")],
        &format!(
            "[sources.forward]\nlisten = \"127.0.0.1:0\"\n[[outputs]]\ntype = \"file\"\npath = {:?}\n",
            dir.join("served.ndjson")
        ),
    );
    let server = Server::start_with(
        &dir,
        &["--config", config.to_str().unwrap(), "--memory"],
        &["Fluent Forward"],
    );
    for (tag, prefix) in [
        ("cloudtrail", "ours"),
        ("tenants.other.cloudtrail", "theirs"),
    ] {
        // Past the default tenant's learning, a region new to it: it alerts there on
        // ours, and would on theirs if they reached it.
        let mut launches = launches(prefix);
        launches.push(crate::util::launch(
            "2026-03-20T10:00:00Z",
            "arn:aws:iam::111122223333:user/alice",
            if prefix == "ours" {
                "eu-west-3"
            } else {
                "ap-south-1"
            },
            "ami-0abc",
            "t3.micro",
            &format!("{prefix}-late"),
        ));
        let records = dir.write(&format!("{prefix}.ndjson"), crate::util::ndjson(&launches));
        let status = std::process::Command::new("node")
            .arg(peers.join("send_fluent_org_logger.js"))
            .args(["--port", &server.forward.port().to_string(), "--tag", tag])
            .args([
                "--mode",
                "Forward",
                "--ack",
                "--timeout-ms",
                "60000",
                "--records",
            ])
            .arg(&records)
            .status()
            .unwrap();
        assert!(status.success(), "{tag}: every chunk acknowledged");
    }
    server.stop();
    let mut reached: Vec<String> = dead_letters(&dir.join("dead.ndjson"))
        .iter()
        .inspect(|d| assert_eq!(d["tenant"], "other", "{d}"))
        .flat_map(|d| d["records"].as_array().cloned().unwrap_or_default())
        .map(|r| r["eventID"].as_str().unwrap_or_default().to_string())
        .collect();
    reached.sort();
    assert_eq!(
        reached,
        [
            "theirs-1",
            "theirs-2",
            "theirs-3",
            "theirs-4",
            "theirs-late"
        ]
    );
    // And the default tenant got ours and only ours.
    let served = alerts(&std::fs::read(dir.join("served.ndjson")).unwrap());
    let ours: Vec<(&str, &str, &str)> = served
        .iter()
        .map(|a| {
            (
                a["tenant"].as_str().unwrap(),
                a["key"].as_str().unwrap(),
                a["event"]["event_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ours,
        [("default", "eu-west-3", "ours-late")],
        "the default tenant's alerts"
    );
}
