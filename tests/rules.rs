//! Focused behaviour of each rule and setting, through the library pipeline.

use minewatch::config::EngineKind;
use minewatch::intake::Location;
use minewatch::pipeline::{Output, Pipeline, PipelineOptions};
use minewatch::sinks::MemorySink;
use minewatch::store::BaselineStore;
use serde_json::{Value, json};

use crate::util::{launch, pairs};

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";

/// Runs records through the native detections with the given settings.
fn run(settings: Value, records: &[Value]) -> Vec<(String, String)> {
    let store = minewatch::share(BaselineStore::in_memory());
    let detector = minewatch::build_detector(
        EngineKind::Native,
        None,
        &settings.to_string(),
        store.clone(),
    )
    .unwrap();
    let sink = MemorySink::default();
    let options = PipelineOptions {
        batch_events: 7,
        ..PipelineOptions::default()
    };
    let mut pipeline = Pipeline::new(
        detector,
        store,
        vec![Output::alerts("memory", Box::new(sink.clone()))],
        options,
    )
    .unwrap();
    for (i, record) in records.iter().enumerate() {
        let location = Location {
            source: "test".into(),
            line: Some(i as u64 + 1),
            record: None,
        };
        pipeline.push(record.clone(), location).unwrap();
    }
    pipeline.finish().unwrap();
    pairs(&sink.alerts())
}

/// Sixteen days of alice launching daily in us-east-1 (past every learning period).
fn learned() -> Vec<Value> {
    (1..=16)
        .map(|d| {
            launch(
                &format!("2026-03-{d:02}T10:00:00Z"),
                ALICE,
                "us-east-1",
                "ami-1",
                "t3.micro",
                &format!("a{d}"),
            )
        })
        .collect()
}

fn with(mut records: Vec<Value>, more: impl IntoIterator<Item = Value>) -> Vec<Value> {
    records.extend(more);
    records
}

fn p(detection: &str, key: &str) -> (String, String) {
    (detection.to_string(), key.to_string())
}

#[test]
fn events_out_of_order_by_minutes_do_not_alert_on_known_values() {
    let mut records = learned();
    // A launch delivered eight minutes after a later one, with values learned long ago.
    records.push(launch(
        "2026-03-17T10:10:00Z",
        ALICE,
        "us-east-1",
        "ami-1",
        "t3.micro",
        "late-2",
    ));
    records.push(launch(
        "2026-03-17T10:02:00Z",
        ALICE,
        "us-east-1",
        "ami-1",
        "t3.micro",
        "late-1",
    ));
    assert_eq!(run(json!({}), &records), vec![]);
}

#[test]
fn a_new_value_arriving_out_of_order_alerts_once() {
    let records = with(
        learned(),
        [
            launch(
                "2026-03-17T10:10:00Z",
                ALICE,
                "eu-west-1",
                "ami-1",
                "t3.micro",
                "x2",
            ),
            launch(
                "2026-03-17T10:02:00Z",
                ALICE,
                "eu-west-1",
                "ami-1",
                "t3.micro",
                "x1",
            ),
        ],
    );
    assert_eq!(
        run(json!({}), &records),
        vec![p("ec2-unseen-region", "eu-west-1")]
    );
}

#[test]
fn duplicate_deliveries_alert_once() {
    let new = launch(
        "2026-03-17T10:00:00Z",
        ALICE,
        "us-east-1",
        "ami-2",
        "t3.micro",
        "dup",
    );
    let records = with(learned(), [new.clone(), new.clone(), new]);
    assert_eq!(run(json!({}), &records), vec![p("ec2-unseen-ami", "ami-2")]);
}

#[test]
fn allowlisted_values_learn_without_alerting() {
    let records = with(
        learned(),
        [
            launch(
                "2026-03-17T10:00:00Z",
                ALICE,
                "us-east-1",
                "ami-golden",
                "t3.micro",
                "g1",
            ),
            launch(
                "2026-03-18T10:00:00Z",
                ALICE,
                "us-east-1",
                "ami-golden",
                "t3.micro",
                "g2",
            ),
            launch(
                "2026-03-18T11:00:00Z",
                ALICE,
                "us-east-1",
                "ami-other",
                "t3.micro",
                "g3",
            ),
        ],
    );
    let settings = json!({"unseen_ami": {"allow_keys": ["ami-golden"]}});
    assert_eq!(
        run(settings, &records),
        vec![p("ec2-unseen-ami", "ami-other")]
    );
    let by_principal = json!({"unseen_ami": {"allow_principals": [ALICE]}});
    assert_eq!(run(by_principal, &records), vec![]);
}

#[test]
fn identity_arn_makes_every_session_a_user() {
    let session = |n: u32, day: u32| {
        launch(
            &format!("2026-03-{day:02}T12:00:00Z"),
            &format!("arn:aws:sts::111122223333:assumed-role/deployer/session-{n}"),
            "us-east-1",
            "ami-1",
            "t3.micro",
            &format!("s{n}"),
        )
    };
    let records = with(learned(), [session(1, 2), session(2, 17)]);
    assert_eq!(
        run(json!({}), &records),
        vec![],
        "one role, learned on day 2"
    );
    assert_eq!(
        run(json!({"identity": "arn"}), &records),
        vec![p(
            "ec2-unseen-user",
            "arn:aws:sts::111122223333:assumed-role/deployer/session-2"
        )]
    );
}

#[test]
fn account_scope_keeps_a_baseline_per_account() {
    let bob = "arn:aws:iam::444455556666:user/bob";
    let records: Vec<Value> = learned()
        .into_iter()
        .chain((1..=16).map(|d| {
            launch(
                &format!("2026-03-{d:02}T11:00:00Z"),
                bob,
                "eu-west-1",
                "ami-1",
                "t3.micro",
                &format!("b{d}"),
            )
        }))
        .chain([launch(
            "2026-03-17T10:00:00Z",
            bob,
            "us-east-1",
            "ami-1",
            "t3.micro",
            "b-new",
        )])
        .collect();
    assert_eq!(
        run(json!({}), &records),
        vec![],
        "us-east-1 is known globally"
    );
    assert_eq!(
        run(json!({"scope": "account"}), &records),
        vec![p("ec2-unseen-region", "us-east-1")]
    );
}

#[test]
fn the_splunk_fill_gives_launches_without_a_type_a_key() {
    let mut untyped = launch(
        "2026-03-17T10:00:00Z",
        ALICE,
        "us-east-1",
        "ami-1",
        "t3.micro",
        "u1",
    );
    untyped["requestParameters"]["instanceType"] = Value::Null;
    untyped["responseElements"] = Value::Null;
    let records = with(learned(), [untyped]);
    assert_eq!(run(json!({}), &records), vec![], "no value, no key");
    assert_eq!(
        run(json!({"fill_instance_type": "m1.small"}), &records),
        vec![p("ec2-unseen-instance-type", "m1.small")]
    );
}

/// A month of 1-3 launches per window by three users, then a burst by `who`.
fn spike(who: &str, burst: u32, duplicates: bool) -> Vec<Value> {
    let users = ["alice", "bob", "carol"].map(|u| format!("arn:aws:iam::111122223333:user/{u}"));
    let mut records = Vec::new();
    for day in 1..=28u32 {
        for (u, user) in users.iter().enumerate() {
            for n in 0..(1 + (day + u as u32) % 3) {
                let t = format!("2026-03-{day:02}T{:02}:0{n}:00Z", 9 + u);
                records.push(launch(
                    &t,
                    user,
                    "us-east-1",
                    "ami-1",
                    "t3.micro",
                    &format!("{u}-{day}-{n}"),
                ));
            }
        }
    }
    for n in 0..burst {
        let record = launch(
            &format!("2026-03-29T20:0{}:{:02}Z", n / 60, n % 60),
            who,
            "us-east-1",
            "ami-1",
            "t3.micro",
            &format!("burst-{n}"),
        );
        if duplicates {
            records.push(record.clone());
            records.push(record.clone());
        }
        records.push(record);
    }
    records
}

#[test]
fn a_burst_alerts_once_per_window_on_both_rate_rules() {
    let bob = "arn:aws:iam::111122223333:user/bob";
    assert_eq!(
        run(json!({}), &spike(bob, 40, false)),
        vec![
            p("ec2-launch-spike", bob),
            p("ec2-launch-spike-density", bob)
        ]
    );
}

#[test]
fn duplicated_deliveries_do_not_make_a_burst() {
    let bob = "arn:aws:iam::111122223333:user/bob";
    assert_eq!(
        run(json!({}), &spike(bob, 4, true)),
        vec![],
        "4 distinct launches, each delivered 3 times"
    );
}

#[test]
fn the_floor_and_the_threshold_are_settings() {
    let bob = "arn:aws:iam::111122223333:user/bob";
    let records = spike(bob, 8, false);
    assert_eq!(
        run(json!({}), &records),
        vec![],
        "8 is under the default floor of 10"
    );
    assert_eq!(
        run(
            json!({"launch_spike": {"min_count": 5}, "launch_spike_density": {"enabled": false}}),
            &records
        ),
        vec![p("ec2-launch-spike", bob)]
    );
    assert_eq!(
        run(
            json!({"launch_spike": {"min_count": 5, "k": 50.0}, "launch_spike_density": {"enabled": false}}),
            &records
        ),
        vec![]
    );
}

#[test]
fn failed_calls_neither_alert_nor_learn() {
    let mut dry = launch(
        "2026-03-17T10:00:00Z",
        ALICE,
        "ap-south-1",
        "ami-1",
        "t3.micro",
        "dry",
    );
    dry["errorCode"] = json!("Client.DryRunOperation");
    let records = with(
        learned(),
        [
            dry,
            launch(
                "2026-03-17T11:00:00Z",
                ALICE,
                "ap-south-1",
                "ami-1",
                "t3.micro",
                "real",
            ),
        ],
    );
    let got = run(json!({}), &records);
    assert_eq!(
        got,
        vec![p("ec2-unseen-region", "ap-south-1")],
        "the real launch is the first sighting"
    );
}

#[test]
fn invalid_settings_are_rejected_with_the_setting_named() {
    let store = minewatch::share(BaselineStore::in_memory());
    let Err(error) = minewatch::build_detector(
        EngineKind::Native,
        None,
        r#"{"launch_spike":{"k":-1}}"#,
        store,
    ) else {
        panic!("accepted a negative k");
    };
    assert!(
        format!("{error:#}").contains("launch_spike.k must be positive"),
        "{error:#}"
    );
}
