use std::io::Write;

use serde_json::json;

use super::*;

#[derive(Default)]
struct Collect {
    records: Vec<(Value, String)>,
    skips: Vec<(SkipReason, String)>,
    fields: Option<FieldSet>,
}

impl Visitor for Collect {
    fn record(&mut self, record: Value, location: Location) -> Result<()> {
        self.records.push((record, location.to_string()));
        Ok(())
    }

    fn skip(&mut self, skip: Skip) {
        self.skips.push((skip.reason, skip.location.to_string()));
    }

    fn fields(&self) -> Option<&FieldSet> {
        self.fields.as_ref()
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
fn oversized_lines_without_a_field_set_are_skipped_without_losing_neighbours() {
    let huge =
        json!({"eventSource": "x", "eventName": "y", "blob": "z".repeat(2 << 20)}).to_string();
    let text = format!("{}\n{huge}\n{}\n", record("a"), record("b"));
    let c = read(text.as_bytes());
    assert_eq!(ids(&c), ["a", "b"]);
    assert_eq!(c.skips, [(SkipReason::Oversized, "in:2".to_string())]);
}

/// The projection of the built-in detector, as `describe` declares it.
fn detector_fields() -> FieldSet {
    FieldSet::new([
        "awsRegion",
        "userIdentity.arn",
        "requestParameters.instanceType",
        "requestParameters.instancesSet.items[].imageId",
        "responseElements.instancesSet.items[].instanceType",
        "responseElements.instancesSet.items[].imageId",
        "responseElements.instancesSet.items[].instanceId",
    ])
}

/// A RunInstances of `count` instances with the bulk of a real response (about 1 KB
/// of fields per instance that no detector reads).
fn mass_launch(id: &str, count: usize) -> Value {
    let items: Vec<Value> = (0..count)
        .map(|i| {
            json!({
                "instanceId": format!("i-{i:017x}"),
                "imageId": "ami-0f1e2d3c4b5a69788",
                "instanceType": "g4dn.12xlarge",
                "networkInterfaceSet": {"items": [{"description": "x".repeat(900), "privateIpAddress": "10.0.0.1"}]},
                "placement": {"availabilityZone": "us-east-1a"},
            })
        })
        .collect();
    json!({
        "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances", "eventID": id,
        "eventTime": "2024-09-11T09:28:29Z", "awsRegion": "us-east-1",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "accessKeyId": "AKIAEXAMPLE"},
        "requestParameters": {"instanceType": "g4dn.12xlarge", "instancesSet": {"items": [{"imageId": "ami-0f1e2d3c4b5a69788", "minCount": count, "maxCount": count}]}},
        "responseElements": {"reservationId": "r-1", "instancesSet": {"items": items}},
    })
}

fn read_with(bytes: &[u8], fields: FieldSet, capacity: usize) -> Collect {
    let mut out = Collect {
        fields: Some(fields),
        ..Collect::default()
    };
    let reader = std::io::BufReader::with_capacity(capacity, bytes);
    read_stream(reader, "in".into(), ReadOptions::default(), &mut out).unwrap();
    out
}

#[test]
fn a_mass_launch_over_the_limit_is_cut_to_the_fields_read_and_kept() {
    let big = mass_launch("big", 2000);
    let line = big.to_string();
    assert!(line.len() > 2 << 20, "{}", line.len());
    // First, middle and last line, and read through small and large buffers: the cut
    // happens while the line streams past, whatever the chunking.
    for capacity in [7, 1 << 16] {
        let text = format!("{}\n{line}\n{}\n{line}", record("a"), record("b"));
        let c = read_with(text.as_bytes(), detector_fields(), capacity);
        assert_eq!(ids(&c), ["a", "big", "b", "big"], "capacity {capacity}");
        assert!(c.skips.is_empty(), "{:?}", c.skips);
        let cut = &c.records[1].0;
        let items = cut["responseElements"]["instancesSet"]["items"]
            .as_array()
            .unwrap();
        assert_eq!(items.len(), 2000);
        assert_eq!(
            items[1999],
            json!({"instanceId": format!("i-{:017x}", 1999), "imageId": "ami-0f1e2d3c4b5a69788", "instanceType": "g4dn.12xlarge"})
        );
        assert_eq!(
            cut["userIdentity"],
            json!({"arn": "arn:aws:iam::111122223333:user/alice"})
        );
        assert_eq!(cut["eventTime"], "2024-09-11T09:28:29Z");
        assert!(cut["responseElements"].get("reservationId").is_none());
        assert!(cut.to_string().len() < line.len() / 10);
        assert_eq!(c.records[3].0, *cut);
    }
    let first = read_with(
        format!("{line}\n{}", record("a")).as_bytes(),
        detector_fields(),
        1 << 16,
    );
    assert_eq!(ids(&first), ["big", "a"]);
}

#[test]
fn concatenated_delivery_files_over_the_limit_keep_every_record() {
    let file =
        json!({"Records": [mass_launch("one", 600), record("two"), mass_launch("three", 600)]});
    let text = format!("{}\n{file}\n", record("a"));
    let c = read_with(text.as_bytes(), detector_fields(), 1 << 16);
    assert_eq!(ids(&c), ["a", "one", "two", "three"]);
}

#[test]
fn a_line_whose_read_fields_alone_pass_the_limit_or_that_breaks_is_skipped_alone() {
    let mut huge_agent = record("agent");
    huge_agent["awsRegion"] = json!("x".repeat(2 << 20));
    let broken = &mass_launch("broken", 1500).to_string()[..(1 << 20) + 100];
    let text = format!("{}\n{huge_agent}\n{broken}\n{}\n", record("a"), record("b"));
    let c = read_with(text.as_bytes(), detector_fields(), 1 << 16);
    assert_eq!(ids(&c), ["a", "b"]);
    assert_eq!(
        c.skips,
        [
            (SkipReason::Oversized, "in:2".to_string()),
            (SkipReason::InvalidJson, "in:3".to_string()),
        ]
    );
}

fn case(path: &str) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/field-cases");
    std::fs::read(root.join(path)).unwrap()
}

fn reasons(c: &Collect) -> Vec<SkipReason> {
    c.skips.iter().map(|(reason, _)| *reason).collect()
}

#[test]
fn cloudwatch_logs_envelopes_give_their_log_events_in_every_form() {
    let launch = "9f8d8781-54cf-10be-0c68-dc6f712ae4e1";
    for (file, control) in [
        ("03-cwl-subscription-envelope/input.ndjson", true),
        ("03-cwl-subscription-envelope/input.reordered.json", false),
        (
            "03-cwl-subscription-envelope/input.lambda-event.json",
            false,
        ),
        (
            "03-cwl-subscription-envelope/input.firehose-s3-object.gz",
            true,
        ),
    ] {
        let c = read(&case(file));
        let names: Vec<&str> = c
            .records
            .iter()
            .map(|(r, _)| r["eventName"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["RunInstances", "PutObject"], "{file}");
        assert_eq!(c.records[0].0["eventID"], launch, "{file}");
        assert_eq!(c.records[0].1, "in:1 (record 1)", "{file}");
        let want: &[SkipReason] = if control {
            &[SkipReason::ControlMessage]
        } else {
            &[]
        };
        assert_eq!(reasons(&c), want, "{file}");
    }
}

#[test]
fn lookup_events_pages_give_the_inner_records_in_every_form() {
    let launch = "8d1454ef-b1fd-03eb-bc0e-49b320b90d0a";
    for file in [
        "04-lookup-events-output/input.json",
        "04-lookup-events-output/input.cli-v1.json",
        "04-lookup-events-output/input.events.ndjson",
    ] {
        let c = read(&case(file));
        assert_eq!(c.records.len(), 2, "{file}");
        let run = c
            .records
            .iter()
            .find(|(r, _)| r["eventName"] == "RunInstances")
            .unwrap();
        assert_eq!(run.0["eventID"], launch, "{file}");
        assert_eq!(run.0["eventTime"], "2024-09-11T09:28:29Z", "{file}");
        let times: Vec<&str> = c
            .records
            .iter()
            .map(|(r, _)| r["eventTime"].as_str().unwrap())
            .collect();
        if file.ends_with(".json") {
            // Pages list newest first; they are handed over oldest first.
            assert!(times[0] < times[1], "{file}: {times:?}");
        }
        assert!(c.skips.is_empty(), "{file}: {:?}", c.skips);
    }
    // Pages written one after another, as a paginating script appends them.
    let page = case("04-lookup-events-output/input.json");
    let two = [&page[..], b"\n", &page[..]].concat();
    assert_eq!(read(&two).records.len(), 4);
}

#[test]
fn shippers_wrappers_are_unwrapped_and_plain_text_is_not() {
    let delivery = json!({"Records": [record("a"), record("b")]}).to_string();
    let vector_s3 = json!([
        {"bucket": "b", "message": delivery, "object": "o.json.gz", "source_type": "aws_s3"},
        {"message": {"Records": [record("c")]}, "source_type": "aws_s3"},
    ]);
    let c = read(vector_s3.to_string().as_bytes());
    assert_eq!(ids(&c), ["a", "b", "c"]);
    let lines = [
        json!({"date": 1726046911.5, "log": record("d").to_string()}),
        json!({"log": "hello from a container", "stream": "stdout"}),
        json!({"msg": "hello"}),
        json!({"event": record("e")}),
        json!({"message": "{\"eventSource\": \"ec2.amazonaws.com\", \"eventNa"}),
    ];
    let c = read(ndjson_of(&lines).as_bytes());
    assert_eq!(ids(&c), ["d", "e"]);
    assert_eq!(
        reasons(&c),
        [
            SkipReason::NotCloudTrail,
            SkipReason::NotCloudTrail,
            SkipReason::InvalidJson
        ]
    );
}

#[test]
fn digests_and_insights_are_their_own_skips() {
    let digest = json!({
        "awsAccountId": "111122223333", "digestStartTime": "2024-09-11T08:00:00Z",
        "digestEndTime": "2024-09-11T09:00:00Z", "digestS3Bucket": "trail",
        "logFiles": [{"s3Bucket": "trail", "s3Object": "x.json.gz", "hashValue": "00"}],
    });
    let insight = json!({"Records": [{
        "eventVersion": "1.08", "eventTime": "2024-09-11T09:00:00Z", "awsRegion": "us-east-1",
        "eventID": "i-1", "eventType": "AwsCloudTrailInsight", "recipientAccountId": "111122223333",
        "sharedEventID": "s-1", "insightDetails": {"state": "Start", "eventSource": "ec2.amazonaws.com",
        "eventName": "RunInstances", "insightType": "ApiCallRateInsight"}, "eventCategory": "Insight",
        "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
    }, record("a")]});
    let c = read(digest.to_string().as_bytes());
    assert_eq!(reasons(&c), [SkipReason::Digest]);
    let c = read(insight.to_string().as_bytes());
    assert_eq!(ids(&c), ["a"]);
    assert_eq!(reasons(&c), [SkipReason::Insight]);
}

#[test]
fn wrapping_stops_at_a_depth() {
    let mut value = record("deep");
    for _ in 0..12 {
        value = json!({ "message": value.to_string() });
    }
    let c = read(value.to_string().as_bytes());
    assert!(c.records.is_empty());
    assert_eq!(reasons(&c), [SkipReason::NotCloudTrail]);
    let mut value = record("shallow");
    for _ in 0..3 {
        value = json!({ "log": value.to_string() });
    }
    assert_eq!(ids(&read(value.to_string().as_bytes())), ["shallow"]);
}

fn ndjson_of(values: &[Value]) -> String {
    values.iter().map(|v| format!("{v}\n")).collect()
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

#[test]
fn every_field_set_keeps_the_keys_the_envelopes_are_opened_by() {
    // A shipper's event holding the record as JSON text in each wrapper field, with a
    // field the detectors do not read beside it: the cut keeps the wrapper whole.
    let fields = detector_fields();
    for field in WRAPPER_FIELDS {
        let inner = record("e1").to_string();
        let text = json!({ field: inner, "host": "ip-10-0-0-1" }).to_string();
        let cut = fields.parse(text.as_bytes()).unwrap();
        assert_eq!(cut.get(field), Some(&Value::String(inner)), "{field}");
        assert!(cut.get("host").is_none());
    }
}

#[test]
fn a_cut_object_is_recognised_exactly_when_the_whole_one_opens() {
    // What `shape` decides from the cut equals what it decides from the whole object,
    // near misses included: those are read again whole so their skip lists their keys.
    let fields = detector_fields();
    for (text, opens) in [
        (
            json!({"messageType": "DATA_MESSAGE", "logEvents": []}),
            true,
        ),
        (json!({"messageType": "DATA_MESSAGE", "owner": "1"}), false),
        (json!({"digestStartTime": "x", "logFiles": []}), true),
        (json!({"digestStartTime": "x", "bucket": "b"}), false),
        (
            json!({"detail-type": "AWS API Call via CloudTrail", "detail": record("e1")}),
            true,
        ),
        (json!({"detail-type": "x", "detail": {"foo": 1}}), false),
        (json!({"Records": [record("e1"), {"foo": 1}]}), false),
        (json!({"message": "not json", "host": "h"}), false),
    ] {
        let cut = fields.parse(text.to_string().as_bytes()).unwrap();
        assert_eq!(super::envelope::recognised(&cut), opens, "{text}");
    }
}
