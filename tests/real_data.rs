//! Public CloudTrail records (see each folder's PROVENANCE.md under tests/data/cloudtrail).

use std::collections::BTreeSet;

use crate::util::{alerts, data, setup, shared, summary_count};

/// Every skip reason the host or the built-in detector may give.
const KNOWN_REASONS: [&str; 11] = [
    "invalid-json",
    "oversized",
    "not-an-object",
    "not-cloudtrail",
    "empty-input",
    "cloudtrail-digest",
    "cloudtrail-insight",
    "cwl-control-message",
    "bad-time",
    "bad-field",
    "detector-trap",
];

fn skip_reasons(stderr: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("skipped ")?
                .split(':')
                .next()
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn bundled_records_give_exactly_these_alerts_and_explained_skips() {
    let (dir, mut cmd) = setup();
    let out = cmd
        .args(["run", "--memory", "--input"])
        .args([data("cloudtrail")])
        .ok(&dir);
    let got: BTreeSet<(String, String, String)> = alerts(&out.stdout)
        .iter()
        .map(|a| {
            (
                a["detection"].as_str().unwrap().into(),
                a["key"].as_str().unwrap().into(),
                a["event"]["event_id"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String, String)> = [
        // Panther fixtures: real shapes from many years and accounts, replayed in file order.
        (
            "ec2-unseen-region",
            "us-west-2",
            "41fab871-150b-43ad-b42a-39fff3f2ca4e",
        ),
        (
            "ec2-unseen-region",
            "us-east-1",
            "015c585b-cbc2-4f9e-9c52-a2f22f3c09f4",
        ),
        // us-east-1 again, 9 months later: past the 90-day forget window.
        (
            "ec2-unseen-region",
            "us-east-1",
            "e755e09c-42f9-4c5c-9064-EXAMPLE228c7",
        ),
        (
            "ec2-unseen-ami",
            "ami-020a359780bc6f835",
            "cd7919fe-34a2-4d26-b038-23a2556a79fb",
        ),
        (
            "ec2-unseen-ami",
            "ami-08038de0f4f90a9f0",
            "cd7919fe-34a2-4d26-b038-23a2556a79fb",
        ),
        (
            "ec2-unseen-instance-type",
            "t3a.micro",
            "cd7919fe-34a2-4d26-b038-23a2556a79fb",
        ),
        // An SSO role session, named by its role (with its path).
        (
            "ec2-unseen-user",
            "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/us-west-2/ARole",
            "cd7919fe-34a2-4d26-b038-23a2556a79fb",
        ),
        (
            "ec2-unseen-ami",
            "ami-092e3b17e435e5e58",
            "762b9172-6148-4c76-aee4-f6fc0fd140af",
        ),
        (
            "ec2-unseen-instance-type",
            "t3a.nano",
            "762b9172-6148-4c76-aee4-f6fc0fd140af",
        ),
        // Invictus: the one successful launch of a real trail; its failed retries do not alert.
        (
            "ec2-unseen-ami",
            "ami-029eb80bc237bec6f",
            "86eac0ac-8521-4126-aa32-a22f2b74d02e",
        ),
        (
            "ec2-unseen-instance-type",
            "t3.micro",
            "86eac0ac-8521-4126-aa32-a22f2b74d02e",
        ),
        (
            "ec2-unseen-user",
            "arn:aws:iam::123837392027:user/bert-jan",
            "86eac0ac-8521-4126-aa32-a22f2b74d02e",
        ),
    ]
    .into_iter()
    .map(|(a, b, c)| (a.into(), b.into(), c.into()))
    .collect();
    assert_eq!(got, want);
    assert_eq!(
        summary_count(&out.stderr, "skipped bad-field"),
        Some(1),
        "Panther's object-typed instanceType"
    );
    assert_eq!(
        summary_count(&out.stderr, "skipped empty-input"),
        Some(4),
        "TrailDiscover's empty arrays"
    );
    assert_eq!(
        summary_count(&out.stderr, "skipped not-cloudtrail"),
        Some(11),
        "Panther stubs with only p_* fields"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("requestParameters.instanceType: expected a string, found an object"),
        "{stderr}"
    );
    assert!(
        stderr.contains("panther_cloudtrail_test_events.ndjson:"),
        "skips name file and line: {stderr}"
    );
    assert!(stderr.contains("1233 records read"), "{stderr}");
}

#[test]
fn every_shared_file_runs_with_its_skips_explained() {
    let Some(root) = shared("data/cloudtrail") else {
        return;
    };
    let (dir, mut cmd) = setup();
    let out = cmd
        .args(["run", "--memory", "--input"])
        .args([&root])
        .ok(&dir);
    assert_eq!(summary_count(&out.stderr, "unreadable inputs"), None);
    for reason in skip_reasons(&out.stderr) {
        assert!(
            KNOWN_REASONS.contains(&reason.as_str()),
            "unexplained skip reason {reason}"
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let read: u64 = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("minewatch: ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .expect("summary line");
    assert!(read >= 4000, "all sources read: {stderr}");
}
