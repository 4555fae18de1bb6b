//! The detections against an independent oracle: `tests/oracle/detections.py`, a naive
//! Python reading of guest/README.md and DESIGN.md section 4 that shares no code with the
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

/// A 45-day stream built around the spike threshold: three principals (one an assumed
/// role with a new session name each day) launching in 10-minute windows whose counts
/// are mostly small, often between 10 and 30 and now and then far above, with failed
/// calls, DryRuns and redelivered events among them, and a new region, AMI or instance
/// type every few days. Many windows reach `min_count`, so whether they alert depends on
/// the mean and the `k` standard deviations, not on the floor.
fn threshold_stream() -> Vec<Value> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let principals = [
        "arn:aws:iam::111122223333:user/alice",
        "arn:aws:iam::111122223333:user/bob",
        "arn:aws:sts::111122223333:assumed-role/deploy/session-0",
    ];
    let regions = [
        "us-east-1",
        "us-east-2",
        "eu-west-1",
        "ap-south-1",
        "sa-east-1",
    ];
    let types = [
        "t3.micro",
        "m5.large",
        "c5.xlarge",
        "g4dn.xlarge",
        "p3.2xlarge",
    ];
    let mut records = Vec::new();
    let mut serial = 0;
    for day in 0..45u32 {
        let date =
            chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new(day.into());
        for slot in 0..8u32 {
            let who = next(3) as usize;
            let arn = if who == 2 {
                format!("arn:aws:sts::111122223333:assumed-role/deploy/session-{day}")
            } else {
                principals[who].to_string()
            };
            let count = match next(20) {
                0..=9 => 1 + next(5),
                10..=16 => 8 + next(12),
                17 | 18 => 20 + next(40),
                _ => 50 + next(150),
            };
            let region = regions[(next(5) as u32).min(day / 9) as usize];
            let kind = types[(next(5) as u32).min(day / 9) as usize];
            let ami = format!("ami-{:017x}", next(3 + u64::from(day / 5)));
            for i in 0..count {
                let time = format!(
                    "{date}T{:02}:{:02}:{:02}Z",
                    slot * 2 + 4,
                    next(10) as u32 + 10,
                    (i % 60) as u32
                );
                serial += 1;
                let mut record =
                    crate::util::launch(&time, &arn, region, &ami, kind, &format!("ev-{serial}"));
                match next(20) {
                    0 => record["errorCode"] = "Client.UnauthorizedOperation".into(),
                    1 => record["errorCode"] = "Client.DryRunOperation".into(),
                    2 => records.push(record.clone()),
                    _ => {}
                }
                records.push(record);
            }
        }
    }
    records
}

#[test]
fn a_stream_around_the_spike_threshold_gets_the_oracles_alerts() {
    let (dir, _) = setup();
    let input = dir.write("threshold.ndjson", crate::util::ndjson(&threshold_stream()));
    let want = oracle(&input);
    let spikes = want
        .iter()
        .filter(|(d, _, _)| d == "ec2-launch-spike")
        .count();
    assert!(
        spikes >= 3,
        "the stream fires the spike now and then: {want:?}"
    );
    assert_agree(&dir, &input);
}
