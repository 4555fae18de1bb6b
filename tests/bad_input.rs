//! Bad input is skipped, counted and located; it never stops the run or loses good records.

use serde_json::{Value, json};

use crate::util::{alerts, launch, ndjson, pairs, setup, summary_count};

/// Twenty days of one user launching in us-east-1, then a stranger in sa-east-1.
fn history() -> Vec<Value> {
    let mut records: Vec<Value> = (1..=20)
        .map(|day| {
            launch(
                &format!("2026-03-{day:02}T10:00:00Z"),
                "arn:aws:iam::111122223333:user/alice",
                "us-east-1",
                "ami-0aaaaaaaaaaaa0001",
                "t3.micro",
                &format!("alice-{day}"),
            )
        })
        .collect();
    records.push(launch(
        "2026-03-21T14:00:00Z",
        "arn:aws:iam::111122223333:user/mallory",
        "sa-east-1",
        "ami-0bad0bad0bad0bad1",
        "p3.2xlarge",
        "mallory-1",
    ));
    records
}

#[test]
fn garbage_mixed_into_ndjson_is_skipped_by_reason_with_file_and_line() {
    let records = history();
    let mut wrong_type = launch(
        "2026-03-21T15:00:00Z",
        "arn:aws:iam::111122223333:user/bob",
        "us-east-1",
        "ami-0aaaaaaaaaaaa0001",
        "t3.micro",
        "bob-1",
    );
    wrong_type["requestParameters"]["instanceType"] = json!({"value": "g5.48xlarge"});
    let mut numeric_region = launch(
        "2026-03-21T15:01:00Z",
        "arn:aws:iam::111122223333:user/eve",
        "ap-east-1",
        "ami-0aaaaaaaaaaaa0001",
        "t3.micro",
        "eve-1",
    );
    numeric_region["awsRegion"] = json!(5);
    let mut bad_time = records[0].clone();
    bad_time["eventTime"] = json!("redacted");
    bad_time["eventID"] = json!("bad-time-1");
    let truncated = &records[3].to_string()[..200];
    // Over max_record_bytes in a field the detector reads: even cut down, too big.
    let huge = json!({"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances", "userAgent": "x".repeat(2 << 20)});
    let mut text = String::new();
    for (i, record) in records.iter().enumerate() {
        text.push_str(&format!("{record}\n"));
        match i {
            2 => text.push_str(&format!("{truncated}\n")),
            4 => text.push_str("this is not json\n"),
            6 => text.push_str(&format!("{huge}\n")),
            8 => text.push_str("{\"msg\":\"healthcheck ok\"}\n[1,2,3]\n42\n\n"),
            10 => text.push_str(&format!("{wrong_type}\n{numeric_region}\n{bad_time}\n")),
            _ => {}
        }
    }
    let (dir, mut cmd) = setup();
    let input = dir.write("mixed.ndjson", &text);
    let out = cmd
        .args(["run", "--memory", "--input"])
        .args([&input])
        .ok(&dir);
    let mut got = pairs(&alerts(&out.stdout));
    got.sort();
    let mallory = "arn:aws:iam::111122223333:user/mallory";
    let mut want = vec![
        (
            "ec2-unseen-ami".to_string(),
            "ami-0bad0bad0bad0bad1".to_string(),
        ),
        ("ec2-unseen-instance-type".into(), "p3.2xlarge".into()),
        ("ec2-unseen-region".into(), "sa-east-1".into()),
        ("ec2-unseen-user".into(), mallory.into()),
    ];
    want.sort();
    assert_eq!(got, want, "the wrong-typed records neither alert nor learn");
    for (label, n) in [
        ("skipped invalid-json", 2),
        ("skipped oversized", 1),
        ("skipped not-cloudtrail", 1),
        ("skipped not-an-object", 4),
        ("skipped bad-field", 2),
        ("skipped bad-time", 1),
    ] {
        assert_eq!(summary_count(&out.stderr, label), Some(n), "{label}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mixed.ndjson:4"),
        "the truncated line is located: {stderr}"
    );
    assert!(
        stderr.contains("awsRegion: expected a string, found a number"),
        "{stderr}"
    );
    assert!(
        stderr.contains("24 for the detector"),
        "21 launches and 3 malformed ones: {stderr}"
    );
}

#[test]
fn an_unreadable_input_exits_3_after_processing_the_others() {
    let (dir, mut cmd) = setup();
    let good = dir.write("good.ndjson", ndjson(&history()));
    let empty = dir.write("empty.json", "");
    let out = cmd
        .args(["run", "--memory", "--input", "missing.json", "--input"])
        .args([&empty])
        .args(["--input"])
        .args([&good])
        .assert_exit(&dir, 3);
    assert_eq!(alerts(&out.stdout).len(), 4);
    assert_eq!(summary_count(&out.stderr, "unreadable inputs"), Some(1));
    assert_eq!(summary_count(&out.stderr, "skipped empty-input"), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed to read input missing.json"));
}

#[test]
fn stdin_is_read_when_no_input_is_given() {
    let (dir, mut cmd) = setup();
    let out = cmd
        .args(["run", "--memory"])
        .stdin(ndjson(&history()))
        .ok(&dir);
    assert_eq!(alerts(&out.stdout).len(), 4);
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let (dir, _) = setup();
    let input = dir.write("in.ndjson", ndjson(&history()));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_minewatch"))
        .args(["run", "--memory", "--input"])
        .arg(&input)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
