//! The `minewatch-generate` command line: the files it writes are the library's, and its
//! mistakes are named.

use std::path::Path;
use std::process::{Command, Output};

use minewatch_generator::{Layout, Spec};

fn generate(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_minewatch-generate"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("minewatch-generate runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_scenario_needs_21_days_unless_it_has_no_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let out = generate(dir.path(), &["--days", "10", "--output", "g.ndjson"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("add --no-incidents for a shorter one"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("g.ndjson").exists());
    let out = generate(
        dir.path(),
        &["--days", "10", "--no-incidents", "--output", "g.ndjson"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("g.ndjson").exists());
}

#[test]
fn writes_the_librarys_scenario_and_its_expected_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let out = generate(
        dir.path(),
        &[
            "--days",
            "21",
            "--seed",
            "5",
            "--events-per-day",
            "150",
            "--layout",
            "garbage",
            "--output",
            "dirty.ndjson",
            "--expected",
            "expected.ndjson",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let spec = Spec {
        seed: 5,
        days: 21,
        events_per_day: 150,
        ..Spec::default()
    };
    let scenario = minewatch_generator::generate(&spec);
    let again = dir.path().join("again.ndjson");
    let written = minewatch_generator::write(&scenario, Layout::NdjsonWithGarbage, &again).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("dirty.ndjson")).unwrap(),
        std::fs::read(&again).unwrap()
    );
    let expected: Vec<minewatch_generator::ExpectedAlert> =
        std::fs::read_to_string(dir.path().join("expected.ndjson"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
    assert_eq!(expected, scenario.expected);
    assert_eq!(
        stderr(&out),
        format!(
            "minewatch-generate: wrote {} records ({} garbage lines) in 1 files to dirty.ndjson; \
             {} alerts expected\n",
            written.records,
            written.garbage_lines,
            scenario.expected.len()
        )
    );
}

#[test]
fn an_unknown_layout_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = generate(dir.path(), &["--layout", "csv", "--output", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("lookup-events"), "{}", stderr(&out));
}
