//! The component and the native build of the same logic give identical alerts.

use minewatch_generator::Layout;

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

/// `run`'s alerts (stdout) and log and summary with its skips (stderr) on `input`; with a
/// dead-letter file configured, which keeps records whole, or without one, when every
/// record is parsed straight into the detectors' fields.
fn run_parsing(whole: bool, input: &std::path::Path) -> (String, String) {
    let (dir, mut cmd) = setup();
    cmd.args(["run", "--memory", "--input"]).args([input]);
    if whole {
        std::fs::write(
            dir.join("whole.toml"),
            "dead_letter_path = \"dead-letter.ndjson\"\n",
        )
        .unwrap();
        cmd.args(["--config".as_ref(), dir.join("whole.toml").as_os_str()]);
    }
    let out = cmd.ok(&dir);
    // The log lines' timestamps are the only part allowed to differ.
    let stderr = String::from_utf8(out.stderr).unwrap();
    let stderr = stderr
        .lines()
        .map(|line| match line.split_once("Z ") {
            Some((stamp, rest)) if stamp.starts_with("20") && !stamp.contains(' ') => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

/// Records parsed straight into the detectors' fields give what whole records give: the
/// same alerts, the same summary and skips, over every shape of input minewatch reads
/// (the scenario in each layout, envelopes, lookup-events pages, oversized launches,
/// real records, the conformance cases).
#[test]
fn records_cut_to_the_detectors_fields_give_what_whole_records_give() {
    let (dir, _) = setup();
    let spec = crate::util::scenario_spec(7);
    let mut inputs = vec![data("conformance"), data("cloudtrail"), data("field-cases")];
    for (layout, name) in [
        (Layout::Ndjson, "scenario.ndjson"),
        (Layout::NdjsonWithGarbage, "garbage.ndjson"),
        (Layout::EventBridge, "eventbridge.ndjson"),
        (Layout::CloudWatchLogs, "cloudwatch.gz"),
        (Layout::LookupEvents, "lookup.json"),
        (Layout::S3Archive, "archive"),
    ] {
        crate::util::write_scenario(&dir, &spec, layout, name);
        inputs.push(dir.join(name));
    }
    for input in &inputs {
        let cut = run_parsing(false, input);
        let whole = run_parsing(true, input);
        assert!(
            cut == whole,
            "cut and whole records differ on {}:\n{}\n{}\n---\n{}\n{}",
            input.display(),
            cut.0,
            cut.1,
            whole.0,
            whole.1
        );
    }
}
