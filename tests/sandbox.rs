//! The sandbox against hostile guests (`tests/components/hostile`): each misbehaviour is
//! stopped at its limit, its batch is dead-lettered with the reason and tenant, and the
//! next batch runs on a fresh instance; a guest cannot reach another tenant's baselines.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use minewatch::config::EngineKind;
use minewatch::runtime::{Engines, GuestLimits, GuestStopped, StopReason};
use minewatch::store::BaselineStore;
use minewatch::{DetectorSpec, build_limited_detector, share};
use minewatch_guest::batch::PackedBatch;
use serde_json::Value;

use crate::util::{Dir, alerts, build_component, data, launch, setup};

/// Builds the hostile component for `wasm32-wasip2` once per test run, in its own
/// target directory under cargo's per-target temporary directory; returns its path.
pub fn hostile() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_component("tests/components/hostile", "minewatch_hostile.wasm"))
}

/// How many set names the `probe` behaviour tries (`PROBE_SETS` of the component).
pub const PROBED_NAMES: usize = 8;

/// Four successful launches, a day apart.
pub fn launches(prefix: &str) -> Vec<Value> {
    (1..=4)
        .map(|day| {
            launch(
                &format!("2026-03-{day:02}T10:00:00Z"),
                "arn:aws:iam::111122223333:user/alice",
                "us-east-1",
                "ami-0abc",
                "t3.micro",
                &format!("{prefix}-{day}"),
            )
        })
        .collect()
}

/// The dead-letter lines of a file (none when it does not exist).
pub fn dead_letters(path: &Path) -> Vec<Value> {
    match std::fs::read(path) {
        Ok(bytes) => alerts(&bytes),
        Err(_) => Vec::new(),
    }
}

/// A config with one tenant per (name, behaviour, extra TOML keys), all running the
/// hostile component, beside the default tenant's built-in detections.
pub fn hostile_config(dir: &Dir, tenants: &[(&str, &str, &str)], extra: &str) -> PathBuf {
    let mut text = format!(
        "dead_letter_path = {:?}\nbatch_events = 2\n{extra}\n",
        dir.join("dead.ndjson")
    );
    for (name, behaviour, keys) in tenants {
        text.push_str(&format!(
            "[[tenants]]\nname = \"{name}\"\ncomponent = {:?}\n{keys}\n[tenants.detector]\nbehaviour = \"{behaviour}\"\n",
            hostile()
        ));
    }
    dir.write("minewatch.toml", text)
}

/// Runs `minewatch run --tenant <tenant>` over `records` with `config`.
fn run_tenant(dir: &Dir, config: &Path, tenant: &str, records: &[Value]) -> Vec<Value> {
    let out = crate::util::command(dir)
        .args(["run", "--state", "state", "--tenant", tenant, "--config"])
        .args([config])
        .stdin(crate::util::ndjson(records))
        .ok(dir);
    alerts(&out.stdout)
}

#[test]
fn flooding_import_abuse_and_fuel_are_stopped_and_dead_lettered() {
    let (dir, _) = setup();
    let config = hostile_config(
        &dir,
        &[
            ("flooder", "alerts", "max_alerts = 1000"),
            ("hammerer", "hammer", "max_import_calls = 500"),
            ("chatterer", "hammer", "max_import_bytes = 4096"),
            ("burner", "loop", "fuel = 5000000\nbatch_cpu_ms = 600000"),
        ],
        "",
    );
    for (tenant, reason) in [
        ("flooder", "alert_limit"),
        ("hammerer", "import_calls"),
        ("chatterer", "import_bytes"),
        ("burner", "fuel"),
    ] {
        let records = launches(tenant);
        let raised = run_tenant(&dir, &config, tenant, &records);
        assert!(raised.is_empty(), "{tenant}: {raised:?}");
        let lines: Vec<Value> = dead_letters(&dir.join("dead.ndjson"))
            .into_iter()
            .filter(|l| l["tenant"] == tenant)
            .collect();
        // Two batches of two: both stopped, the second on a fresh instance (a poisoned
        // store would fail differently, as a plain trap).
        assert_eq!(lines.len(), 2, "{tenant}: {lines:?}");
        for (line, batch) in lines.iter().zip(records.chunks(2)) {
            assert_eq!(line["reason"], reason, "{line}");
            assert_eq!(line["events"], 2);
            assert_eq!(line["records"].as_array().unwrap(), batch);
            assert_eq!(line["detector"], "minewatch-hostile 0.1.0");
        }
    }
}

#[test]
fn a_fresh_instance_takes_over_after_a_trap() {
    let wasm = hostile();
    let baselines = share(BaselineStore::in_memory());
    let spec = DetectorSpec {
        engine: EngineKind::Component,
        component: Some(wasm),
        settings: r#"{"behaviour": "panic"}"#,
        limits: GuestLimits::default(),
    };
    let mut detector = build_limited_detector(&Engines::new().unwrap(), &spec, baselines).unwrap();
    let empty = PackedBatch::new(detector.info().fields.len());
    let error = detector.detect("t", &empty).unwrap_err();
    let stopped = error.downcast_ref::<GuestStopped>().expect("a guest stop");
    assert_eq!(stopped.reason, StopReason::Trap, "{error:#}");
    // The trapped store is gone: the rebuilt instance takes new settings and runs.
    detector.configure(r#"{"behaviour": "quiet"}"#).unwrap();
    let outcome = detector.detect("t", &empty).unwrap();
    assert!(outcome.alerts.is_empty());
}

#[test]
fn a_guest_cannot_reach_another_tenants_baselines() {
    let (dir, mut cmd) = setup();
    let config = hostile_config(&dir, &[("prober", "probe", "")], "");
    // The default tenant learns regions from real-shaped launches.
    cmd.args(["run", "--state", "state", "--config"])
        .args([&config])
        .args(["--input"])
        .args([data("conformance/learning-gate/events.ndjson")])
        .ok(&dir);
    let before = export(&dir, "default");
    assert!(
        before
            .iter()
            .any(|e| e.to_string().contains("ec2-unseen-region")),
        "{before:?}"
    );
    let raised = run_tenant(&dir, &config, "prober", &launches("probe"));
    // Two batches, eight names each: every set it reached was its own and empty at first.
    let first_batch: Vec<String> = raised[..PROBED_NAMES]
        .iter()
        .map(|a| a["key"].as_str().unwrap().to_string())
        .collect();
    assert!(
        first_batch.iter().all(|k| k.ends_with("=0")),
        "{first_batch:?}"
    );
    assert!(raised.iter().all(|a| a["tenant"] == "prober"));
    assert_eq!(export(&dir, "default"), before);
    let probed = export(&dir, "prober");
    assert!(
        probed
            .iter()
            .any(|e| e.to_string().contains("default/ec2-unseen-region")),
        "{probed:?}"
    );
}

/// `baseline export --tenant` as values.
fn export(dir: &Dir, tenant: &str) -> Vec<Value> {
    let out = crate::util::command(dir)
        .args(["baseline", "export", "--state", "state", "--tenant", tenant])
        .ok(dir);
    alerts(&out.stdout)
}

#[test]
fn validate_builds_every_tenant_and_names_the_broken_one() {
    let (dir, mut cmd) = setup();
    let config = hostile_config(&dir, &[("fine", "quiet", "")], "");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[[tenants]]\nname = \"ghost\"\ncomponent = \"missing.wasm\"\n");
    std::fs::write(&config, text).unwrap();
    let out = cmd
        .args(["validate", "--config"])
        .args([&config])
        .assert_exit(&dir, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tenant ghost"), "{stderr}");
    assert!(stderr.contains("missing.wasm"), "{stderr}");
    assert!(!stderr.contains("tenant fine"), "{stderr}");
}
