//! The detections embedded in Node.js through jco (`examples/node-host`): the very
//! component the host embeds gives, in Node, alerts identical to `minewatch run`'s, on
//! every conformance case and on the generated 45-day scenario.
//!
//! Needs Node.js and the example's packages (`npm ci --prefix examples/node-host`);
//! without the packages these tests fail with that command, unless
//! `MINEWATCH_SKIP_PEERS=1` is set.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{Dir, alerts, command, data, generate_scenario, setup};

/// The command that installs the Node host's packages, from the repository root.
const INSTALL: &str = "npm ci --prefix examples/node-host";

/// The repository root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// True when the Node host can run. Without its packages: false after saying so when
/// `MINEWATCH_SKIP_PEERS=1`, otherwise a failure naming the install command.
pub fn node_host_ready() -> bool {
    let jco = repo().join("examples/node-host/node_modules/@bytecodealliance/jco");
    if jco.is_dir() {
        return true;
    }
    if std::env::var_os("MINEWATCH_SKIP_PEERS").is_some_and(|value| value == "1") {
        assert!(
            std::env::var_os("CI").is_none(),
            "MINEWATCH_SKIP_PEERS=1 under CI=true: examples/node-host is not installed \
             (`npm ci --prefix examples/node-host`)"
        );
        eprintln!("MINEWATCH_SKIP_PEERS=1: examples/node-host is not installed; not running it.");
        return false;
    }
    panic!(
        "examples/node-host has no node_modules: run `{INSTALL}` from the repository root \
         (Node.js 20 or later), or set MINEWATCH_SKIP_PEERS=1 to skip the Node host"
    );
}

/// The alerts of `node examples/node-host/run.mjs --component COMPONENT --input INPUT`.
pub fn node_alerts(component: &Path, input: &Path) -> Vec<Value> {
    let out = Command::new("node")
        .current_dir(repo())
        .arg("examples/node-host/run.mjs")
        .arg("--component")
        .arg(component)
        .arg("--input")
        .arg(input)
        .env_remove("MINEWATCH_COMPONENT")
        .output()
        .unwrap_or_else(|e| panic!("cannot run node ({e}); install Node.js 20 or later"));
    assert!(
        out.status.success(),
        "the Node host failed on {}: {:?}\n{}",
        input.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    alerts(&out.stdout)
}

/// The alerts of `minewatch run --memory` (with `extra` arguments) on `input`.
pub fn host_alerts(dir: &Dir, extra: &[&str], input: &Path) -> Vec<Value> {
    let out = command(dir)
        .args(["run", "--memory"])
        .args(extra)
        .args(["--input"])
        .args([input])
        .ok(dir);
    alerts(&out.stdout)
}

/// The component the host embeds, written into `dir`.
pub fn embedded_component(dir: &Dir) -> PathBuf {
    dir.write("cryptomining.wasm", minewatch::GUEST_COMPONENT)
}

#[test]
fn every_conformance_case_gives_identical_alerts_in_node() {
    if !node_host_ready() {
        return;
    }
    let (dir, _) = setup();
    let component = embedded_component(&dir);
    let cases: Vec<PathBuf> = std::fs::read_dir(data("conformance"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(cases.len(), 8, "the suite has eight cases: {cases:?}");
    for case in cases {
        let events = case.join("events.ndjson");
        let expected = host_alerts(&dir, &[], &events);
        assert!(!expected.is_empty(), "{}: no alerts", case.display());
        assert_eq!(
            node_alerts(&component, &events),
            expected,
            "{}: Node and Rust hosts disagree",
            case.display()
        );
    }
}

#[test]
fn the_generated_scenario_gives_identical_alerts_in_node() {
    if !node_host_ready() {
        return;
    }
    let (dir, _) = setup();
    generate_scenario(&dir, 7, "s.ndjson");
    let scenario = dir.join("s.ndjson");
    let expected = host_alerts(&dir, &[], &scenario);
    let detections: std::collections::BTreeSet<&str> = expected
        .iter()
        .map(|a| a["detection"].as_str().unwrap())
        .collect();
    assert_eq!(detections.len(), 6, "every detection fires: {detections:?}");
    assert_eq!(node_alerts(&embedded_component(&dir), &scenario), expected);
}
