//! The component and the native build of the same logic give identical alerts.

use crate::util::{data, generate_scenario, setup};

fn run(engine: &str, input: &std::path::Path) -> Vec<u8> {
    let (dir, mut cmd) = setup();
    cmd.args(["run", "--memory", "--engine", engine, "--input"])
        .args([input])
        .ok(&dir)
        .stdout
}

fn assert_identical(input: &std::path::Path) {
    let component = run("component", input);
    let native = run("native", input);
    assert!(!component.is_empty(), "{} produced alerts", input.display());
    assert!(
        component == native,
        "component and native differ on {}:\n{}\n---\n{}",
        input.display(),
        String::from_utf8_lossy(&component),
        String::from_utf8_lossy(&native)
    );
}

#[test]
fn identical_alerts_on_the_generated_scenario() {
    let (dir, _) = setup();
    generate_scenario(&dir, 7, "scenario.ndjson");
    assert_identical(&dir.join("scenario.ndjson"));
}

#[test]
fn identical_alerts_on_the_conformance_cases_and_real_records() {
    for case in ["spike-dedup", "failures-ignored", "forget-window"] {
        assert_identical(&data("conformance").join(case).join("events.ndjson"));
    }
    assert_identical(&data("cloudtrail"));
}
