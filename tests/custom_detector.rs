//! The custom-detector kit (`examples/custom-detector`): a second component, built here
//! against version 0.1.0 of the WIT contract (the built-in detections and the hostile
//! components are 0.2.0), so these tests also hold the hosts to running 0.1.0: it is listed by `minewatch detections --component`, raises
//! exactly the expected alerts under `minewatch run --component`, takes its settings from
//! the config file, and gives the same alerts in the Node host (`examples/node-host`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::node_host::{host_alerts, node_alerts, node_host_ready};
use crate::util::{Dir, alerts, build_component, command, setup};

/// The kit's folder.
fn kit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/custom-detector")
}

/// Builds the kit for `wasm32-wasip2` once per test run, in its own target directory
/// under cargo's per-target temporary directory; returns the component's path.
pub fn component() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| build_component("examples/custom-detector", "minewatch_gpu_off_hours.wasm"))
}

/// Recorded events: a GPU launch on Tuesday 10:00 UTC, one on Saturday 03:00 UTC by the
/// same user, and a t3.micro on Saturday 23:30 UTC by another.
fn recorded() -> PathBuf {
    kit().join("tests/gpu-launches.ndjson")
}

/// The alerts the kit's README promises for [`recorded`].
fn expected() -> Vec<Value> {
    alerts(&std::fs::read(kit().join("tests/expected-alerts.ndjson")).unwrap())
}

fn run_kit(dir: &Dir, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["--component", component().to_str().unwrap()];
    args.extend_from_slice(extra);
    host_alerts(dir, &args, &recorded())
}

#[test]
fn detections_lists_the_custom_detection() {
    let (dir, mut cmd) = setup();
    let out = cmd
        .args(["detections", "--component"])
        .args([component()])
        .ok(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("minewatch-gpu-off-hours 0.1.0"), "{text}");
    assert!(text.contains("ec2-gpu-off-hours"), "{text}");
    assert!(
        text.contains("GPU Instance Launched Outside Business Hours"),
        "{text}"
    );

    let out = command(&dir)
        .args(["detections", "--json", "--component"])
        .args([component()])
        .ok(&dir);
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["detections"][0]["slug"], "ec2-gpu-off-hours");
    assert_eq!(info["detections"][0]["mitre_attack"][0], "T1496");
    assert_eq!(
        info["subscriptions"][0]["event_names"],
        serde_json::json!(["RunInstances"])
    );
    assert_eq!(info["default_settings"]["start_hour"], 8);
    assert_eq!(info["default_settings"]["end_hour"], 18);
}

#[test]
fn only_the_off_hours_gpu_launch_alerts() {
    let (dir, _) = setup();
    let got = run_kit(&dir, &[]);
    assert_eq!(got, expected());

    // What the golden file holds, spelled out.
    let [alert] = &got[..] else {
        panic!("one alert: {got:#?}")
    };
    assert_eq!(alert["detection"], "ec2-gpu-off-hours");
    assert_eq!(alert["key"], "arn:aws:iam::111122223333:user/alice");
    assert_eq!(alert["time"], "2026-03-07T03:00:00Z");
    assert_eq!(alert["event"]["instance_type"], "g4dn.xlarge");
    assert_eq!(
        alert["detector"],
        serde_json::json!({"name": "minewatch-gpu-off-hours", "version": "0.1.0"})
    );
    // The host-side first-seen set remembered Tuesday's in-hours launch.
    assert_eq!(alert["evidence"]["baseline"], "gpu-launchers");
    assert_eq!(alert["evidence"]["baseline_size"], 1);
    assert_eq!(
        alert["evidence"]["previous"],
        serde_json::json!({"first_seen": "2026-03-03T10:00:00Z", "last_seen": "2026-03-03T10:00:00Z", "count": 1})
    );
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .ends_with("it had launched GPU instances once before, first on 2026-03-03."),
        "{alert}"
    );
}

#[test]
fn settings_come_from_the_config_file() {
    let (dir, _) = setup();
    // Weekends are business days here, Tuesday is not: only Tuesday's launch alerts.
    let config = dir.write(
        "weekend.toml",
        "[detector]\nbusiness_days = [\"sat\", \"sun\"]\nstart_hour = 0\nend_hour = 24\n",
    );
    let got = run_kit(&dir, &["--config", config.to_str().unwrap()]);
    let times: Vec<&str> = got.iter().map(|a| a["time"].as_str().unwrap()).collect();
    assert_eq!(times, ["2026-03-03T10:00:00Z"]);
    assert_eq!(got[0]["evidence"]["previous"], Value::Null);

    // A bad setting stops the run, named by the component.
    let bad = dir.write("bad.toml", "[detector]\nend_hour = 30\n");
    let out = command(&dir)
        .args(["run", "--memory", "--component"])
        .args([component()])
        .args(["--config"])
        .args([&bad])
        .args(["--input"])
        .args([recorded()])
        .assert_exit(&dir, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("end_hour"), "{stderr}");
}

#[test]
fn the_node_host_runs_the_custom_detector_too() {
    if !node_host_ready() {
        return;
    }
    assert_eq!(node_alerts(component(), &recorded()), expected());
}

#[test]
fn a_custom_detectors_alerts_add_up_to_incidents_with_the_risk_it_describes() {
    let (dir, _) = setup();
    let run = |incidents: &str| {
        let config = dir.write("minewatch.toml", format!("[incidents]\n{incidents}"));
        let out = command(&dir)
            .args(["run", "--memory", "--component"])
            .args([component()])
            .args(["--config"])
            .args([&config])
            .args(["--input"])
            .args([recorded()])
            .ok(&dir);
        crate::util::incidents(&out.stdout)
    };
    // The kit describes its detection with risk 50: its one off-hours GPU launch reaches
    // a threshold of 50, and not one of 51, nor 50 with the score overridden down.
    let opened = run("threshold = 50\n");
    assert_eq!(opened.len(), 1, "{opened:#?}");
    assert_eq!(opened[0]["alerts"][0]["detection"], "ec2-gpu-off-hours");
    assert_eq!(opened[0]["alerts"][0]["risk_score"], 50);
    assert_eq!(
        opened[0]["principal"],
        "arn:aws:iam::111122223333:user/alice"
    );
    assert!(run("threshold = 51\n").is_empty());
    assert!(run("threshold = 50\n[incidents.scores]\nec2-gpu-off-hours = 10\n").is_empty());
}
