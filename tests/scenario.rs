//! The independent 45-day scenario, in every input layout: every expected alert exactly once.

use minewatch_generator::{Layout, Spec};

use crate::util::{
    alerts, command, expected_pairs, scenario_in, setup, unique_pairs, write_scenario,
};

fn check(layout: Layout, output: &str) {
    let (dir, _) = setup();
    // An independent seed from the bundled sample; 300 events a day keeps the S3 archive small.
    let want = scenario_in(&dir, layout, output);
    let mut run = command(&dir);
    let out = run
        .args(["run", "--memory", "--input"])
        .args([dir.join(output)])
        .ok(&dir);
    let got = unique_pairs(&alerts(&out.stdout));
    assert_eq!(got, want, "layout {layout:?}");
}

#[test]
fn ndjson() {
    check(Layout::Ndjson, "scenario.ndjson");
}

#[test]
fn s3_delivery_archive() {
    check(Layout::S3Archive, "archive");
}

#[test]
fn eventbridge_envelopes() {
    check(Layout::EventBridge, "events.ndjson");
}

#[test]
fn cloudwatch_logs_envelopes_as_firehose_writes_them_to_s3() {
    check(Layout::CloudWatchLogs, "firehose.gz");
}

#[test]
fn lookup_events_pages_newest_first() {
    check(Layout::LookupEvents, "pages.json");
}

#[test]
fn ndjson_with_garbage() {
    check(Layout::NdjsonWithGarbage, "dirty.ndjson");
}

#[test]
fn the_bundled_sample_is_the_generated_scenario_and_gives_its_alerts() {
    let (dir, _) = setup();
    // As examples/data/README.md makes it: 45 days, seed 7, 200 events a day.
    let spec = Spec {
        events_per_day: 200,
        ..Spec::default()
    };
    let scenario = write_scenario(&dir, &spec, Layout::Ndjson, "sample.ndjson");
    let bundled = crate::util::data("../../examples/data/sample-trail.ndjson.gz");
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&bundled).unwrap()),
        &mut unpacked,
    )
    .unwrap();
    assert!(
        unpacked == std::fs::read(dir.join("sample.ndjson")).unwrap(),
        "examples/data/sample-trail.ndjson.gz is stale"
    );
    let mut run = command(&dir);
    let out = run
        .args(["run", "--memory", "--input"])
        .args([&bundled])
        .ok(&dir);
    assert_eq!(
        unique_pairs(&alerts(&out.stdout)),
        expected_pairs(&scenario)
    );
}

#[test]
fn the_prefilter_never_rejects_a_subscribed_event() {
    let (dir, _) = setup();
    let spec = Spec {
        days: 30,
        events_per_day: 300,
        ..Spec::default()
    };
    write_scenario(&dir, &spec, Layout::NdjsonWithGarbage, "dirty.ndjson");
    let prefilter = minewatch::intake::Prefilter::new(["RunInstances", "StartInstances"], []);
    let text = std::fs::read(dir.join("dirty.ndjson")).unwrap();
    let (mut rejected, mut total) = (0, 0);
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        total += 1;
        if prefilter.wants(line) {
            continue;
        }
        rejected += 1;
        let record: serde_json::Value =
            serde_json::from_slice(line).expect("only well-formed objects are rejected");
        let name = record["eventName"].as_str().unwrap_or_default();
        assert!(
            !["RunInstances", "StartInstances"].contains(&name),
            "rejected a subscribed event: {record}"
        );
        assert!(record.get("eventSource").is_some());
    }
    assert!(
        rejected * 100 > total * 90,
        "most of a mixed stream is rejected unparsed: {rejected} of {total}"
    );
}
