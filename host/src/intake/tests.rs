use std::io::Write;

use serde_json::json;

use super::*;

#[derive(Default)]
struct Collect {
    records: Vec<(Value, String)>,
    skips: Vec<(SkipReason, String)>,
}

impl Visitor for Collect {
    fn record(&mut self, record: Value, location: Location) -> Result<()> {
        self.records.push((record, location.to_string()));
        Ok(())
    }

    fn skip(&mut self, skip: Skip) {
        self.skips.push((skip.reason, skip.location.to_string()));
    }
}

fn read(bytes: &[u8]) -> Collect {
    let mut out = Collect::default();
    read_stream(bytes, "in".into(), ReadOptions::default(), &mut out).unwrap();
    out
}

fn record(id: &str) -> Value {
    json!({"eventVersion": "1.09", "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances", "eventID": id})
}

fn ids(c: &Collect) -> Vec<&str> {
    c.records
        .iter()
        .map(|(r, _)| r["eventID"].as_str().unwrap())
        .collect()
}

#[test]
fn ndjson_with_garbage_keeps_good_lines_and_reports_bad_ones_by_line() {
    let text = format!(
        "{}\n{{\"eventVersion\":\"1.0\",\"eventSo\nnot json at all\n\n42\n{{\"msg\":\"hello\"}}\n{}",
        record("a"),
        record("b")
    );
    let c = read(text.as_bytes());
    assert_eq!(ids(&c), ["a", "b"]);
    assert_eq!(c.records[1].1, "in:7");
    assert_eq!(
        c.skips,
        [
            (SkipReason::InvalidJson, "in:2".to_string()),
            (SkipReason::InvalidJson, "in:3".to_string()),
            (SkipReason::NotAnObject, "in:5".to_string()),
            (SkipReason::NotCloudTrail, "in:6".to_string()),
        ]
    );
}

#[test]
fn a_garbage_first_line_does_not_lose_the_file() {
    let text = format!(
        "{{\"eventVersion\":\"1.0\",\"trunc\n{}\n{}\n",
        record("a"),
        record("b")
    );
    let c = read(text.as_bytes());
    assert_eq!(ids(&c), ["a", "b"]);
    assert_eq!(c.skips, [(SkipReason::InvalidJson, "in:1".to_string())]);
}

#[test]
fn delivery_files_arrays_and_envelopes_are_unwrapped() {
    let delivery = json!({"Records": [record("a"), record("b")]}).to_string();
    assert_eq!(ids(&read(delivery.as_bytes())), ["a", "b"]);
    let pretty = serde_json::to_string_pretty(&json!({"Records": [record("c")]})).unwrap();
    assert_eq!(ids(&read(pretty.as_bytes())), ["c"]);
    let array = serde_json::to_string_pretty(&json!([record("d"), record("e")])).unwrap();
    let c = read(array.as_bytes());
    assert_eq!(ids(&c), ["d", "e"]);
    assert_eq!(c.records[1].1, "in:1 (record 2)");
    let envelope = json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "detail": record("f")});
    assert_eq!(
        ids(&read(format!("{envelope}\n{envelope}").as_bytes())).len(),
        2
    );
    let concatenated = format!("{}{}", record("g"), record("h"));
    assert_eq!(ids(&read(concatenated.as_bytes())), ["g", "h"]);
}

#[test]
fn empty_inputs_are_reported() {
    for empty in ["", "  \n", "[]", "{\"Records\": []}"] {
        let c = read(empty.as_bytes());
        assert!(c.records.is_empty());
        assert_eq!(
            c.skips,
            [(SkipReason::EmptyInput, "in".to_string())],
            "{empty:?}"
        );
    }
}

#[test]
fn oversized_lines_are_skipped_without_losing_neighbours() {
    let huge =
        json!({"eventSource": "x", "eventName": "y", "blob": "z".repeat(2 << 20)}).to_string();
    let text = format!("{}\n{huge}\n{}\n", record("a"), record("b"));
    let c = read(text.as_bytes());
    assert_eq!(ids(&c), ["a", "b"]);
    assert_eq!(c.skips, [(SkipReason::Oversized, "in:2".to_string())]);
}

#[test]
fn a_large_single_line_delivery_file_is_not_oversized() {
    let records: Vec<Value> = (0..2000)
        .map(|i| record(&format!("{i}-{}", "x".repeat(600))))
        .collect();
    let text = json!({ "Records": records }).to_string();
    assert!(text.len() > 1 << 20);
    let c = read(text.as_bytes());
    assert_eq!(c.records.len(), 2000);
    assert!(c.skips.is_empty());
}

#[test]
fn a_truncated_document_is_one_skip() {
    let pretty =
        serde_json::to_string_pretty(&json!({"Records": [record("a"), record("b")]})).unwrap();
    let c = read(&pretty.as_bytes()[..pretty.len() / 2]);
    assert!(c.records.is_empty());
    assert_eq!(c.skips, [(SkipReason::InvalidJson, "in:1".to_string())]);
}

#[test]
fn gzip_is_sniffed_and_directories_read_in_delivery_order() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("AWSLogs/1/CloudTrail/us-east-1/2026/01/05");
    std::fs::create_dir_all(&deep).unwrap();
    let write_gz = |name: &str, id: &str| {
        let file = std::fs::File::create(deep.join(name)).unwrap();
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        gz.write_all(json!({"Records": [record(id)]}).to_string().as_bytes())
            .unwrap();
        gz.finish().unwrap();
    };
    write_gz("1_CloudTrail_us-east-1_20260105T0010Z_b.json.gz", "second");
    write_gz("1_CloudTrail_us-east-1_20260105T0005Z_a.json.gz", "first");
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let eu = dir.path().join("AWSLogs/1/CloudTrail/eu-west-1/2026/01/05");
    std::fs::create_dir_all(&eu).unwrap();
    std::fs::write(
        eu.join("1_CloudTrail_eu-west-1_20260105T0007Z_c.json"),
        json!({"Records": [record("middle")]}).to_string(),
    )
    .unwrap();
    let files = list_files(dir.path()).unwrap();
    assert_eq!(files.len(), 3);
    let mut c = Collect::default();
    for file in files {
        read_file(&file, ReadOptions::default(), &mut c).unwrap();
    }
    assert_eq!(ids(&c), ["first", "middle", "second"]);
}

#[test]
fn a_missing_input_is_an_error() {
    let err = list_files(Path::new("/nonexistent/minewatch")).unwrap_err();
    assert!(format!("{err:#}").contains("failed to read input /nonexistent/minewatch"));
}
