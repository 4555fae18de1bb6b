use minewatch_guest::{Alert, EventSummary, Evidence, RateEvidence, UnseenEvidence};

use super::*;
use crate::store::BaselineStore;

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;

fn alert(detection: &str, key: &str, principal: &str, time: i64, event_id: &str) -> Alert {
    let rate = detection.starts_with("ec2-launch-spike");
    Alert {
        detection: detection.into(),
        event_index: 0,
        key: key.into(),
        message: String::new(),
        time,
        event: EventSummary {
            event_id: event_id.into(),
            event_name: "RunInstances".into(),
            principal: principal.into(),
            arn: principal.into(),
            account: principal.split(':').nth(4).unwrap_or("").into(),
            region: "ap-northeast-3".into(),
            source_ip: "203.0.113.9".into(),
            user_agent: "aws-cli/2".into(),
            instance_ids: vec![format!("i-{event_id}")],
            instance_type: "p3.16xlarge".into(),
            image_ids: vec!["ami-09c34b9773b132b12".into()],
        },
        evidence: if rate {
            Evidence::Rate(RateEvidence {
                window_start: time,
                count: 10,
                history_windows: 4000,
                mean: 0.1,
                stdev: 0.3,
                threshold: 1.3,
                tail_probability: None,
                method: String::new(),
            })
        } else {
            Evidence::Unseen(UnseenEvidence {
                baseline: String::new(),
                baseline_size: 3,
                learning_start: 0,
                previous: None,
            })
        },
    }
}

fn correlator(settings: IncidentSettings, scope: &str) -> Correlator {
    let info = minewatch_guest::Detector::describe();
    Correlator::new(&settings, &info, &format!(r#"{{"scope":"{scope}"}}"#)).unwrap()
}

/// The campaign of the generated scenario: three first uses, then both rate rules.
fn campaign(t: i64) -> Vec<Alert> {
    vec![
        alert("ec2-unseen-region", "ap-northeast-3", ALICE, t, "e1"),
        alert("ec2-unseen-ami", "ami-09c34b9773b132b12", ALICE, t, "e1"),
        alert("ec2-unseen-instance-type", "p3.16xlarge", ALICE, t, "e1"),
        alert("ec2-launch-spike", ALICE, ALICE, t + MINUTE, "e7"),
        alert("ec2-launch-spike-density", ALICE, ALICE, t + MINUTE, "e7"),
    ]
}

fn statuses(incidents: &[Incident]) -> Vec<(bool, u32, usize)> {
    incidents
        .iter()
        .map(|i| (i.opened, i.risk, i.contributions.len()))
        .collect()
}

#[test]
fn a_campaign_opens_one_incident_at_the_threshold_and_updates_it() {
    let mut store = BaselineStore::in_memory();
    let c = correlator(IncidentSettings::default(), "global");
    let got = c.correlate("default", &campaign(HOUR), &mut store);
    // 42 + 42 = 84 stays below 100; the third first use opens it; the rate rules join.
    assert_eq!(
        statuses(&got),
        [(true, 126, 3), (false, 190, 4), (false, 254, 5)]
    );
    assert!(got.iter().all(|i| i.id == got[0].id));
    let last = &got[2];
    assert_eq!(last.principal, ALICE);
    assert_eq!(last.account, "111122223333");
    assert_eq!((last.first_time(), last.last_time()), (HOUR, HOUR + MINUTE));
    let text = render::summary(last);
    assert!(
        text.contains("5 detections within 1 minute (risk 254, threshold 100)"),
        "{text}"
    );
    assert!(text.contains("first use of AMI ami-09c34b9773b132b12, instance type p3.16xlarge and region ap-northeast-3"), "{text}");
}

#[test]
fn single_benign_firsts_open_nothing() {
    let mut store = BaselineStore::in_memory();
    let c = correlator(IncidentSettings::default(), "global");
    let bob = "arn:aws:iam::111122223333:user/bob";
    let colleague = [
        alert("ec2-unseen-user", bob, bob, HOUR, "b1"),
        alert(
            "ec2-unseen-ami",
            "ami-0aaa",
            "arn:aws:iam::111122223333:role/ci",
            HOUR,
            "c1",
        ),
        alert("ec2-unseen-ami", "ami-0bbb", bob, 30 * HOUR, "b2"),
    ];
    assert!(c.correlate("default", &colleague, &mut store).is_empty());
}

#[test]
fn an_alert_seen_again_or_a_key_already_counted_adds_nothing() {
    let mut store = BaselineStore::in_memory();
    let c = correlator(IncidentSettings::default(), "global");
    let alerts = campaign(HOUR);
    assert_eq!(c.correlate("default", &alerts[..3], &mut store).len(), 1);
    // The same batch again (a replay), and the same new AMI by another event.
    assert!(c.correlate("default", &alerts[..3], &mut store).is_empty());
    let again = alert(
        "ec2-unseen-ami",
        "ami-09c34b9773b132b12",
        ALICE,
        HOUR + 2 * MINUTE,
        "e9",
    );
    assert!(c.correlate("default", &[again], &mut store).is_empty());
    let got = c.correlate("default", &alerts[3..], &mut store);
    assert_eq!(statuses(&got), [(false, 190, 4), (false, 254, 5)]);
}

#[test]
fn the_window_slides_and_a_quiet_object_opens_a_new_incident_later() {
    let mut store = BaselineStore::in_memory();
    let c = correlator(IncidentSettings::default(), "global");
    let first = c.correlate("default", &campaign(HOUR), &mut store);
    // Within 24 h of the latest activity: joins, whatever its own risk.
    let later = alert("ec2-unseen-region", "sa-east-1", ALICE, 20 * HOUR, "e20");
    let joined = c.correlate("default", &[later], &mut store);
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0].id, first[0].id);
    assert!(!joined[0].opened);
    // Two quiet days later the old contributions are out of the window: a single first
    // use is below the threshold, and a new campaign opens a new incident.
    let quiet = alert("ec2-unseen-region", "eu-west-3", ALICE, 70 * HOUR, "e70");
    assert!(c.correlate("default", &[quiet], &mut store).is_empty());
    let again = c.correlate("default", &campaign(72 * HOUR)[1..], &mut store);
    assert!(again[0].opened, "{:?}", statuses(&again));
    assert_ne!(again[0].id, first[0].id);
}

#[test]
fn scores_detections_and_scope_are_settings() {
    let settings = IncidentSettings {
        scores: [("ec2-unseen-region".to_string(), 100)].into(),
        detections: vec!["ec2-unseen-region".into(), "ec2-unseen-ami".into()],
        ..IncidentSettings::default()
    };
    let mut store = BaselineStore::in_memory();
    let got =
        correlator(settings.clone(), "global").correlate("default", &campaign(HOUR), &mut store);
    assert_eq!(statuses(&got), [(true, 100, 1), (false, 142, 2)]);
    // Per account, the same principal name in two accounts is two risk objects.
    let mut store = BaselineStore::in_memory();
    let c = correlator(IncidentSettings::default(), "account");
    let other = "arn:aws:iam::444455556666:user/alice";
    let mut split = campaign(HOUR);
    split[2] = alert("ec2-unseen-instance-type", "p3.16xlarge", other, HOUR, "x1");
    assert!(c.correlate("default", &split[..3], &mut store).is_empty());
    assert!(settings.check().is_ok());
    let bad = IncidentSettings {
        window_hours: 0.0,
        ..IncidentSettings::default()
    };
    assert!(
        bad.check()
            .unwrap_err()
            .to_string()
            .contains("window_hours")
    );
}

#[test]
fn state_survives_a_restart_of_the_durable_store() {
    let dir = tempfile::tempdir().unwrap();
    let c = correlator(IncidentSettings::default(), "global");
    let alerts = campaign(HOUR);
    let opened = {
        let mut store = BaselineStore::open(dir.path()).unwrap();
        let got = c.correlate("default", &alerts[..3], &mut store);
        store.commit().unwrap();
        got
    };
    let mut store = BaselineStore::open(dir.path()).unwrap();
    let got = c.correlate("default", &alerts[3..], &mut store);
    assert_eq!(statuses(&got), [(false, 190, 4), (false, 254, 5)]);
    assert_eq!(got[0].id, opened[0].id);
}

#[test]
fn ocsf_incident_findings_link_their_detection_findings() {
    let mut store = BaselineStore::in_memory();
    let got = correlator(IncidentSettings::default(), "global").correlate(
        "default",
        &campaign(HOUR),
        &mut store,
    );
    let open = render::ocsf(&got[0]);
    assert_eq!(open["class_uid"], 2005);
    assert_eq!(open["type_uid"], 200501);
    assert_eq!(
        open["finding_info_list"][0]["uid"],
        "ec2-unseen-ami:e1:ami-09c34b9773b132b12"
    );
    let update = render::ocsf(&got[2]);
    assert_eq!(
        (update["activity_id"].as_u64(), update["type_uid"].as_u64()),
        (Some(2), Some(200502))
    );
    assert_eq!(update["finding_info_list"].as_array().unwrap().len(), 5);
    let native = render::native(&got[2]);
    assert_eq!(native["status"], "updated");
    assert_eq!(native["alerts"].as_array().unwrap().len(), 5);
    assert_eq!(
        native["mitre_attack"],
        serde_json::json!(["T1078.004", "T1496", "T1535"])
    );
}
