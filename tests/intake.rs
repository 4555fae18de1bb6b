//! The roads CloudTrail leaves AWS by, read without configuration: the field cases of
//! tests/data/field-cases (each NOTES.md names its source and the right outcome) and
//! the generated scenario sent down each road.

use std::collections::BTreeSet;
use std::io::Read;

use minewatch_generator::Layout;
use serde_json::{Value, json};

use crate::util::{
    Dir, alerts, command, data, launch, pairs, scenario_in, setup, summary_count, unique_pairs,
};

/// The keys `baseline build` learned from `input`, as `(set, key)`, with its stderr.
fn learned(
    input: &std::path::Path,
    config: Option<&str>,
) -> (BTreeSet<(String, String)>, Vec<Value>, String) {
    let (dir, mut cmd) = setup();
    cmd.args(["baseline", "build", "--state", "state", "--input"])
        .args([input]);
    if let Some(config) = config {
        cmd.args(["--config"])
            .args([dir.write("config.toml", config)]);
    }
    let out = cmd.ok(&dir);
    let export = command(&dir)
        .args(["baseline", "export", "--state", "state"])
        .ok(&dir);
    let entries: Vec<Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let keys = entries
        .iter()
        .filter(|e| e["kind"] == "sighting" && !e["set"].as_str().unwrap().starts_with("rate/"))
        .map(|e| {
            (
                e["set"].as_str().unwrap().to_string(),
                e["key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (
        keys,
        entries,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn keys(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(s, k)| (s.to_string(), k.to_string()))
        .collect()
}

#[test]
fn cloudwatch_logs_envelopes_give_their_launch_in_every_form() {
    let want = keys(&[
        ("ec2-unseen-ami", "ami-0bad0bad0bad0bad1"),
        ("ec2-unseen-instance-type", "p3.2xlarge"),
        ("ec2-unseen-region", "us-east-1"),
        ("ec2-unseen-user", "arn:aws:iam::111122223333:user/alice"),
    ]);
    for (file, controls) in [
        ("input.ndjson", 1),
        ("input.reordered.json", 0),
        ("input.lambda-event.json", 0),
        ("input.firehose-s3-object.gz", 1),
    ] {
        let input = data(&format!("field-cases/03-cwl-subscription-envelope/{file}"));
        let (got, entries, stderr) = learned(&input, None);
        assert_eq!(got, want, "{file}: {stderr}");
        let launch = entries
            .iter()
            .find(|e| e["set"] == "rate/event-ids" && e["kind"] == "sighting")
            .unwrap();
        assert_eq!(
            launch["key"], "9f8d8781-54cf-10be-0c68-dc6f712ae4e1",
            "{file}"
        );
        // The PutObject beside it is read and not subscribed; the health check is counted
        // under its own reason, and not warned about.
        assert!(
            stderr.contains("from 2 records: 1 for the detector"),
            "{file}: {stderr}"
        );
        assert_eq!(
            summary_count(stderr.as_bytes(), "skipped cwl-control-message"),
            (controls > 0).then_some(controls),
            "{file}: {stderr}"
        );
        assert!(!stderr.contains("Skipped input"), "{file}: {stderr}");
    }
}

#[test]
fn lookup_events_output_gives_the_inner_records_timed_by_their_own_clock() {
    for file in ["input.json", "input.cli-v1.json", "input.events.ndjson"] {
        let input = data(&format!("field-cases/04-lookup-events-output/{file}"));
        let (got, entries, stderr) = learned(&input, None);
        assert!(
            got.contains(&("ec2-unseen-instance-type".into(), "g4dn.xlarge".into())),
            "{file}: {stderr}"
        );
        assert!(
            got.contains(&(
                "ec2-unseen-user".into(),
                "arn:aws:iam::111122223333:user/alice".into()
            )),
            "{file}"
        );
        assert!(
            stderr.contains("1 not subscribed, 0 skipped"),
            "{file}: {stderr}"
        );
        let user = entries
            .iter()
            .find(|e| e["set"] == "ec2-unseen-user" && e["kind"] == "sighting")
            .unwrap();
        // The inner UTC eventTime, not the outer local-time EventTime (11:28:29+02:00).
        assert_eq!(user["first_seen"], "2024-09-11T09:28:29Z", "{file}");
        assert!(
            stderr.contains("from 2 records: 1 for the detector"),
            "{file}: {stderr}"
        );
    }
}

/// The 500-instance launch of field case 05, as one NDJSON line.
fn mass_launch() -> Value {
    let mut text = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(data(
            "field-cases/05-oversized-runinstances/input.ndjson.gz",
        ))
        .unwrap(),
    )
    .read_to_string(&mut text)
    .unwrap();
    serde_json::from_str(text.lines().nth(1).unwrap()).unwrap()
}

#[test]
fn a_launch_over_max_record_bytes_counts_every_instance_beside_the_small_one() {
    let config = "[detector]\nrate.count = \"instances\"\n";
    for file in ["input.ndjson.gz", "input.json.gz"] {
        let input = data(&format!("field-cases/05-oversized-runinstances/{file}"));
        let (got, entries, stderr) = learned(&input, Some(config));
        assert!(
            got.contains(&("ec2-unseen-instance-type".into(), "g4dn.12xlarge".into())),
            "{file}: {stderr}"
        );
        assert!(
            got.contains(&("ec2-unseen-instance-type".into(), "t3.micro".into())),
            "{file}"
        );
        let counted: Vec<(&str, u64)> = entries
            .iter()
            .filter(|e| e["kind"] == "counter")
            .map(|e| (e["counter"].as_str().unwrap(), e["value"].as_u64().unwrap()))
            .collect();
        // Both launches in one 10-minute window: 1 + 500 instances.
        assert_eq!(counted, [("rate/instances", 501)], "{file}");
        assert!(!stderr.contains("oversized"), "{file}: {stderr}");
    }
}

#[test]
fn a_2000_instance_launch_by_a_new_principal_raises_its_alerts() {
    let mut big = mass_launch();
    let template = big["responseElements"]["instancesSet"]["items"][0].clone();
    let items: Vec<Value> = (0..2000)
        .map(|i| {
            let mut item = template.clone();
            item["instanceId"] = json!(format!("i-{i:017x}"));
            item
        })
        .collect();
    big["responseElements"]["instancesSet"]["items"] = json!(items);
    big["userIdentity"]["arn"] = json!("arn:aws:iam::111122223333:user/mallory");
    big["awsRegion"] = json!("ap-south-1");
    big["eventTime"] = json!("2024-09-21T14:00:00Z");
    let mut text: String = (1..=20)
        .map(|day| {
            let record = launch(
                &format!("2024-09-{day:02}T10:00:00Z"),
                "arn:aws:iam::111122223333:user/alice",
                "us-east-1",
                "ami-0aaaaaaaaaaaa0001",
                "t3.micro",
                &format!("alice-{day}"),
            );
            format!("{record}\n")
        })
        .collect();
    let line = big.to_string();
    assert!(line.len() > 4 << 20, "{} bytes", line.len());
    text.push_str(&line);
    text.push('\n');
    let (dir, mut cmd) = setup();
    let input = dir.write("mass.ndjson", &text);
    let out = cmd
        .args(["run", "--memory", "--input"])
        .args([&input])
        .ok(&dir);
    let got = alerts(&out.stdout);
    let mut want = vec![
        (
            "ec2-unseen-ami".to_string(),
            "ami-0f1e2d3c4b5a69788".to_string(),
        ),
        ("ec2-unseen-instance-type".into(), "g4dn.12xlarge".into()),
        ("ec2-unseen-region".into(), "ap-south-1".into()),
        (
            "ec2-unseen-user".into(),
            "arn:aws:iam::111122223333:user/mallory".into(),
        ),
    ];
    want.sort();
    let mut keys = pairs(&got);
    keys.sort();
    assert_eq!(keys, want, "{}", String::from_utf8_lossy(&out.stderr));
    for alert in &got {
        assert_eq!(
            alert["event"]["instance_ids"].as_array().unwrap().len(),
            2000
        );
        assert!(
            alert["message"]
                .as_str()
                .unwrap()
                .contains("launched 2000 instances"),
            "{alert}"
        );
    }
}

/// Unique (detection, key) pairs of `baseline build` over `history` and `run` over `rest`.
fn build_then_run(
    dir: &Dir,
    history: &std::path::Path,
    rest: &std::path::Path,
) -> BTreeSet<(String, String)> {
    let state = dir.join(&format!(
        "state-{}",
        history.file_name().unwrap().to_string_lossy()
    ));
    command(dir)
        .args(["baseline", "build", "--state"])
        .args([&state])
        .args(["--input"])
        .args([history])
        .ok(dir);
    let out = command(dir)
        .args(["run", "--state"])
        .args([&state])
        .args(["--input"])
        .args([rest])
        .ok(dir);
    unique_pairs(&alerts(&out.stdout))
}

/// `records` as `aws cloudtrail lookup-events` writes them: pretty pages of 50, newest
/// first, each but the last with a NextToken, appended one after another.
fn lookup_pages(records: &[Value]) -> String {
    let newest_first: Vec<&Value> = records.iter().rev().collect();
    let pages: Vec<&[&Value]> = newest_first.chunks(50).collect();
    let mut text = String::new();
    for (i, page) in pages.iter().enumerate() {
        let events: Vec<Value> = page
            .iter()
            .map(|r| json!({"EventId": r["eventID"], "EventName": r["eventName"], "EventTime": r["eventTime"], "CloudTrailEvent": r.to_string()}))
            .collect();
        let mut doc = json!({ "Events": events });
        if i + 1 < pages.len() {
            doc["NextToken"] = json!(format!("token-{i}"));
        }
        text.push_str(&serde_json::to_string_pretty(&doc).unwrap());
        text.push('\n');
    }
    text
}

#[test]
fn lookup_events_bootstrap_then_run_gives_the_alerts_of_plain_ndjson() {
    let (dir, _) = setup();
    let expected = scenario_in(&dir, Layout::Ndjson, "scenario.ndjson");
    let records: Vec<Value> = std::fs::read_to_string(dir.join("scenario.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The incidents start after day 20; the first 20 days are the history a team
    // without S3 access pulls from event history.
    let start =
        chrono::DateTime::parse_from_rfc3339(records[0]["eventTime"].as_str().unwrap()).unwrap();
    let cut = (start + chrono::Duration::days(20))
        .to_utc()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let (history, rest): (Vec<Value>, Vec<Value>) = records
        .into_iter()
        .partition(|r| r["eventTime"].as_str().unwrap() < cut.as_str());
    let ndjson = |name: &str, records: &[Value]| {
        dir.write(
            name,
            records.iter().map(|r| format!("{r}\n")).collect::<String>(),
        )
    };
    let plain = build_then_run(
        &dir,
        &ndjson("history.ndjson", &history),
        &ndjson("rest.ndjson", &rest),
    );
    let paged = build_then_run(
        &dir,
        &dir.write("history.lookup.json", lookup_pages(&history)),
        &dir.write("rest.lookup.json", lookup_pages(&rest)),
    );
    assert_eq!(plain, expected);
    assert_eq!(paged, plain);
}
