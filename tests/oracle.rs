//! The detections against an independent oracle: `tests/oracle/detections.py`, a naive
//! Python reading of the README and DESIGN.md section 4 that shares no code with the
//! guest crate, run with `python3` over the generated scenario and every conformance
//! case. The four unseen-value rules and `ec2-launch-spike` must give the same alerts,
//! for the same events; the density rule is left out (see the script's doc string).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::{Dir, alerts, command, data, generate_scenario, setup};

/// `(detection, key, event_id)` of each alert, sorted, repeats kept.
type Answers = Vec<(String, String, String)>;

fn oracle(input: &Path) -> Answers {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/oracle/detections.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(input)
        .output()
        .expect("python3 runs the detection oracle (tests/oracle/detections.py)");
    assert!(
        out.status.success(),
        "the oracle failed on {}:\n{}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut answers: Answers = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let text = |k: &str| v[k].as_str().unwrap().to_string();
            (text("detection"), text("key"), text("event_id"))
        })
        .collect();
    answers.sort();
    answers
}

fn minewatch(dir: &Dir, input: &Path) -> Answers {
    let out = command(dir)
        .args(["run", "--memory", "--input"])
        .args([input])
        .ok(dir);
    let mut answers: Answers = alerts(&out.stdout)
        .iter()
        .filter(|a| a["detection"] != "ec2-launch-spike-density")
        .map(|a| {
            let text = |v: &Value| v.as_str().unwrap().to_string();
            (
                text(&a["detection"]),
                text(&a["key"]),
                text(&a["event"]["event_id"]),
            )
        })
        .collect();
    answers.sort();
    answers
}

fn assert_agree(dir: &Dir, input: &Path) {
    let want = oracle(input);
    let got = minewatch(dir, input);
    assert_eq!(
        got,
        want,
        "minewatch (left) and the oracle (right) disagree on {}",
        input.display()
    );
}

#[test]
fn the_generated_scenarios_alerts_are_the_oracles() {
    for seed in [5, 11] {
        let (dir, _) = setup();
        generate_scenario(&dir, seed, "scenario.ndjson");
        let input = dir.join("scenario.ndjson");
        let want = oracle(&input);
        let detections: std::collections::BTreeSet<&str> =
            want.iter().map(|(d, _, _)| d.as_str()).collect();
        assert_eq!(
            detections.len(),
            5,
            "seed {seed}: the scenario exercises every rule compared: {want:?}"
        );
        assert_agree(&dir, &input);
    }
}

#[test]
fn every_conformance_cases_alerts_are_the_oracles() {
    let (dir, _) = setup();
    let root = data("conformance");
    let mut cases = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let case = entry.unwrap().path();
        if case.join("events.ndjson").is_file() {
            assert_agree(&dir, &case.join("events.ndjson"));
            cases += 1;
        }
    }
    assert!(cases >= 8, "{cases} conformance cases");
}
