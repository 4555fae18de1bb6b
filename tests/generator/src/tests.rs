//! Tests of the scenario generator: determinism, realism invariants, the
//! oracle checked against an independent recomputation from the events,
//! and round trips of every on-disk layout.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use super::*;

const DAY_SECS: i64 = 86_400;
const WINDOW_SECS: i64 = 600;

fn default_scenario() -> &'static Scenario {
    static S: OnceLock<Scenario> = OnceLock::new();
    S.get_or_init(|| generate(&Spec::default()))
}

fn small_spec() -> Spec {
    Spec {
        seed: 11,
        days: 21,
        events_per_day: 250,
        ..Spec::default()
    }
}

fn small_scenario() -> &'static Scenario {
    static S: OnceLock<Scenario> = OnceLock::new();
    S.get_or_init(|| generate(&small_spec()))
}

fn quiet_scenario() -> &'static Scenario {
    static S: OnceLock<Scenario> = OnceLock::new();
    S.get_or_init(|| {
        generate(&Spec {
            seed: 3,
            days: 30,
            events_per_day: 400,
            incidents: false,
            ..Spec::default()
        })
    })
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn name(e: &Value) -> &str {
    text(e, &["eventName"]).unwrap_or("")
}

fn succeeded(e: &Value) -> bool {
    match e.get("errorCode") {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

fn time(e: &Value) -> i64 {
    let s = text(e, &["eventTime"]).expect("eventTime");
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("eventTime parses")
        .timestamp()
}

fn event_id(e: &Value) -> &str {
    text(e, &["eventID"]).expect("eventID")
}

/// The launching principal: the role for assumed-role sessions, the ARN otherwise.
fn principal(e: &Value) -> Option<String> {
    let id = e.get("userIdentity")?;
    if text(id, &["type"]) == Some("AssumedRole") {
        text(id, &["sessionContext", "sessionIssuer", "arn"]).map(str::to_string)
    } else {
        text(id, &["arn"]).map(str::to_string)
    }
}

fn items<'a>(e: &'a Value, part: &str) -> Vec<&'a Value> {
    e.get(part)
        .and_then(|p| p.get("instancesSet"))
        .and_then(|s| s.get("items"))
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn amis(e: &Value) -> Vec<String> {
    let from = |part| -> Vec<String> {
        items(e, part)
            .iter()
            .filter_map(|i| text(i, &["imageId"]).map(str::to_string))
            .collect()
    };
    let req = from("requestParameters");
    if req.is_empty() {
        from("responseElements")
    } else {
        req
    }
}

fn instance_types(e: &Value) -> Vec<String> {
    match text(e, &["requestParameters", "instanceType"]) {
        Some(t) => vec![t.to_string()],
        None => items(e, "responseElements")
            .iter()
            .filter_map(|i| text(i, &["instanceType"]).map(str::to_string))
            .collect(),
    }
}

/// First-seen baseline with a learning period, as the unseen-* detections define it.
struct Baseline {
    learning: i64,
    first: HashMap<String, i64>,
    earliest: Option<i64>,
}

impl Baseline {
    fn new(days: i64) -> Self {
        Self {
            learning: days * DAY_SECS,
            first: HashMap::new(),
            earliest: None,
        }
    }

    fn alerts(&mut self, key: String, t: i64) -> bool {
        if self.first.contains_key(&key) {
            return false;
        }
        let alert = self.earliest.is_some_and(|e| t - e >= self.learning);
        self.earliest = Some(self.earliest.map_or(t, |e| e.min(t)));
        self.first.insert(key, t);
        alert
    }
}

/// Recomputes the alerts from the events alone, independently of the generator's bookkeeping.
fn recompute<'a>(
    events: impl IntoIterator<Item = &'a Value>,
    start_counts_as_user: bool,
) -> BTreeSet<ExpectedAlert> {
    let mut out = BTreeSet::new();
    let mut seen = HashSet::new();
    let mut region = Baseline::new(14);
    let mut ami = Baseline::new(7);
    let mut itype = Baseline::new(14);
    let mut user = Baseline::new(7);
    let mut windows: HashMap<(String, i64), u32> = HashMap::new();
    for e in events {
        if !seen.insert(event_id(e).to_string()) || !succeeded(e) {
            continue;
        }
        let run = name(e) == "RunInstances";
        let start = name(e) == "StartInstances";
        if !run && !start {
            continue;
        }
        let t = time(e);
        let r = text(e, &["awsRegion"]).expect("region").to_string();
        if region.alerts(r.clone(), t) {
            out.insert(ExpectedAlert::new(UNSEEN_REGION, r));
        }
        if (run || start_counts_as_user)
            && let Some(p) = principal(e)
            && user.alerts(p.clone(), t)
        {
            out.insert(ExpectedAlert::new(UNSEEN_USER, p));
        }
        if !run {
            continue;
        }
        for a in amis(e) {
            if ami.alerts(a.clone(), t) {
                out.insert(ExpectedAlert::new(UNSEEN_AMI, a));
            }
        }
        for ty in instance_types(e) {
            if itype.alerts(ty.clone(), t) {
                out.insert(ExpectedAlert::new(UNSEEN_INSTANCE_TYPE, ty));
            }
        }
        if let Some(p) = principal(e) {
            *windows.entry((p, t.div_euclid(WINDOW_SECS))).or_insert(0) += 1;
        }
    }
    let counts: Vec<f64> = windows.values().map(|&c| f64::from(c)).collect();
    let n = counts.len().max(1) as f64;
    let mean = counts.iter().sum::<f64>() / n;
    let sd = (counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / n).sqrt();
    for ((p, _), c) in &windows {
        let c = f64::from(*c);
        if c >= 10.0 && c > mean + 4.0 * sd {
            out.insert(ExpectedAlert::new(LAUNCH_SPIKE, p.clone()));
            out.insert(ExpectedAlert::new(LAUNCH_SPIKE_DENSITY, p.clone()));
        }
    }
    out
}

fn successful_launch_windows(events: &[Value]) -> HashMap<(String, i64), u32> {
    let mut seen = HashSet::new();
    let mut windows = HashMap::new();
    for e in events {
        if name(e) == "RunInstances" && succeeded(e) && seen.insert(event_id(e)) {
            let p = principal(e).expect("launches have a principal");
            *windows
                .entry((p, time(e).div_euclid(WINDOW_SECS)))
                .or_insert(0) += 1;
        }
    }
    windows
}

fn alice() -> String {
    format!("arn:aws:iam::{}:user/alice", actors::PROD)
}

#[test]
fn default_spec_matches_the_brief() {
    let s = Spec::default();
    assert_eq!(s.seed, 7);
    assert_eq!(s.days, 45);
    assert_eq!(s.events_per_day, 1000);
    assert!(s.incidents);
    assert_eq!(s.start.to_rfc3339(), "2026-01-05T00:00:00+00:00");
}

#[test]
fn same_spec_is_byte_identical_and_seeds_differ() {
    let spec = Spec {
        seed: 99,
        days: 21,
        events_per_day: 120,
        ..Spec::default()
    };
    let a = generate(&spec);
    let b = generate(&spec);
    let dump = |s: &Scenario| serde_json::to_string(&s.events).expect("serializes");
    assert_eq!(dump(&a), dump(&b));
    assert_eq!(a.expected, b.expected);
    let c = generate(&Spec { seed: 100, ..spec });
    assert_ne!(dump(&a), dump(&c));
    assert_ne!(a.expected, c.expected, "AMI ids are drawn from the seed");
}

#[test]
fn expected_alerts_of_default_spec() {
    let s = default_scenario();
    let sorted: Vec<_> = {
        let mut v = s.expected.clone();
        v.sort();
        v.dedup();
        v
    };
    assert_eq!(s.expected, sorted, "expected is sorted and deduplicated");
    let by = |d: &str| -> Vec<&str> {
        s.expected
            .iter()
            .filter(|a| a.detection == d)
            .map(|a| a.key.as_str())
            .collect()
    };
    assert_eq!(by(UNSEEN_REGION), ["ap-northeast-3"]);
    assert_eq!(by(UNSEEN_INSTANCE_TYPE), ["p3.16xlarge"]);
    assert_eq!(by(UNSEEN_AMI).len(), 2, "attacker AMI and golden v2");
    assert_eq!(
        by(UNSEEN_USER),
        [
            "arn:aws:iam::111122223333:user/svc-backup-ops",
            "arn:aws:iam::444455556666:role/OrganizationAccountAccessRole",
        ]
    );
    assert_eq!(by(LAUNCH_SPIKE), [alice().as_str()]);
    assert_eq!(by(LAUNCH_SPIKE_DENSITY), [alice().as_str()]);
    assert_eq!(s.expected.len(), 8);
}

#[test]
fn oracle_matches_independent_recomputation() {
    for s in [default_scenario(), small_scenario(), quiet_scenario()] {
        let want: BTreeSet<_> = s.expected.iter().cloned().collect();
        assert_eq!(recompute(&s.events, false), want, "delivery order");
        assert_eq!(recompute(&s.events, true), want, "StartInstances as user");
        let mut by_time: Vec<&Value> = s.events.iter().collect();
        by_time.sort_by_key(|e| time(e));
        assert_eq!(recompute(by_time, false), want, "event-time order");
    }
}

#[test]
fn only_the_burst_reaches_ten_launches_in_a_window() {
    let s = default_scenario();
    let windows = successful_launch_windows(&s.events);
    let mut hot: Vec<_> = windows.iter().filter(|(_, c)| **c >= 10).collect();
    assert_eq!(hot.len(), 1, "exactly one hot window");
    let ((who, _), count) = hot.pop().expect("one");
    assert_eq!(who, &alice());
    assert!(*count >= 40, "burst has {count} calls");
    let normal_max = windows.values().filter(|c| **c < 10).max().copied();
    assert!(
        normal_max.is_some_and(|m| m <= 4),
        "normal max {normal_max:?}"
    );
    // The burst sits well inside its window: from :x1 to before :x9.
    let burst: Vec<i64> = s
        .events
        .iter()
        .filter(|e| {
            name(e) == "RunInstances"
                && succeeded(e)
                && text(e, &["awsRegion"]) == Some("ap-northeast-3")
        })
        .map(time)
        .collect();
    let lo = burst.iter().min().expect("burst") % WINDOW_SECS;
    let hi = burst.iter().max().expect("burst") % WINDOW_SECS;
    assert!(lo >= 60 && hi < 540, "burst offsets {lo}..{hi}");
}

#[test]
fn quiet_scenario_is_silent_and_learns_everything_early() {
    let s = quiet_scenario();
    assert!(s.expected.is_empty());
    let start = Spec::default().start.timestamp();
    let mut first: HashMap<String, i64> = HashMap::new();
    for e in s.events.iter().filter(|e| succeeded(e)) {
        let t = time(e);
        let mut keys = Vec::new();
        match name(e) {
            "RunInstances" => {
                keys.push(format!("region:{}", text(e, &["awsRegion"]).unwrap_or("")));
                keys.extend(amis(e).into_iter().map(|a| format!("ami:{a}")));
                keys.extend(instance_types(e).into_iter().map(|t| format!("type:{t}")));
                keys.extend(principal(e).map(|p| format!("user:{p}")));
            }
            "StartInstances" => {
                keys.push(format!("region:{}", text(e, &["awsRegion"]).unwrap_or("")));
                keys.extend(principal(e).map(|p| format!("user:{p}")));
            }
            _ => {}
        }
        for k in keys {
            let f = first.entry(k).or_insert(t);
            *f = (*f).min(t);
        }
    }
    assert!(first.len() > 20, "{} launch values", first.len());
    for (k, t) in first {
        assert!(
            t < start + 6 * DAY_SECS,
            "{k} first seen on day {}",
            (t - start) / DAY_SECS
        );
    }
}

#[test]
fn run_instances_share_is_one_to_two_percent() {
    let s = default_scenario();
    let runs = s
        .events
        .iter()
        .filter(|e| name(e) == "RunInstances")
        .count();
    let share = runs as f64 / s.events.len() as f64;
    assert!((0.01..=0.02).contains(&share), "share {share}");
    let ec2 = s
        .events
        .iter()
        .filter(|e| {
            text(e, &["eventSource"]) == Some("ec2.amazonaws.com") && e["readOnly"] == false
        })
        .count();
    assert!(
        (ec2 as f64 / s.events.len() as f64) < 0.03,
        "EC2 writes stay rare"
    );
}

#[test]
fn about_two_percent_exact_duplicates() {
    let s = default_scenario();
    let mut by_id: HashMap<&str, &Value> = HashMap::new();
    let mut dups = 0;
    for e in &s.events {
        if let Some(prev) = by_id.insert(event_id(e), e) {
            assert_eq!(prev, e, "a duplicate is the same record");
            dups += 1;
        }
    }
    let share = f64::from(dups) / s.events.len() as f64;
    assert!((0.015..=0.025).contains(&share), "duplicate share {share}");
}

#[test]
fn disorder_is_bounded_by_five_minutes() {
    let s = default_scenario();
    let mut latest = i64::MIN;
    let mut worst = 0;
    let mut late = 0;
    for e in &s.events {
        let t = time(e);
        if t < latest {
            late += 1;
            worst = worst.max(latest - t);
        }
        latest = latest.max(t);
    }
    assert!(late > 100, "{late} late records");
    assert!(worst > 60 && worst <= 300, "worst lateness {worst}s");
}

#[test]
fn records_have_realistic_fields() {
    let s = small_scenario();
    let uuid_v4 = |id: &str| {
        let b = id.as_bytes();
        id.len() == 36
            && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
            && b[14] == b'4'
            && matches!(b[19], b'8' | b'9' | b'a' | b'b')
            && id.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
    };
    let hex17 = |id: &str, prefix: &str| {
        id.strip_prefix(prefix)
            .is_some_and(|h| h.len() == 17 && h.chars().all(|c| c.is_ascii_hexdigit()))
    };
    for e in &s.events {
        for key in [
            "eventVersion",
            "userIdentity",
            "eventTime",
            "eventSource",
            "eventName",
            "awsRegion",
            "sourceIPAddress",
            "userAgent",
            "requestParameters",
            "responseElements",
            "requestID",
            "eventID",
            "readOnly",
            "eventType",
            "managementEvent",
            "recipientAccountId",
            "eventCategory",
        ] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
        assert!(matches!(text(e, &["eventVersion"]), Some("1.08" | "1.09")));
        assert!(uuid_v4(event_id(e)), "eventID {}", event_id(e));
        let t = text(e, &["eventTime"]).expect("time");
        assert_eq!(t.len(), 20);
        assert!(t.ends_with('Z'));
        assert!(ACCOUNTS.contains(&text(e, &["recipientAccountId"]).expect("account")));
        if name(e) != "RunInstances" {
            continue;
        }
        if succeeded(e) {
            let launched = items(e, "responseElements");
            assert!(!launched.is_empty());
            let wanted: u64 = items(e, "requestParameters")
                .iter()
                .map(|i| i["maxCount"].as_u64().expect("maxCount"))
                .sum();
            assert_eq!(launched.len() as u64, wanted, "one item per instance");
            for i in launched {
                assert!(hex17(text(i, &["instanceId"]).expect("id"), "i-"));
                assert!(hex17(text(i, &["imageId"]).expect("ami"), "ami-"));
                assert!(text(i, &["instanceType"]).is_some());
                assert!(text(i, &["placement", "availabilityZone"]).is_some());
            }
            assert!(hex17(
                text(e, &["responseElements", "reservationId"]).expect("r"),
                "r-"
            ));
        } else {
            assert!(text(e, &["errorMessage"]).is_some());
            assert!(e["responseElements"].is_null());
            assert!(matches!(
                text(e, &["errorCode"]),
                Some(
                    "Client.DryRunOperation"
                        | "Client.UnauthorizedOperation"
                        | "Client.VcpuLimitExceeded"
                        | "Client.InvalidParameterValue"
                )
            ));
        }
    }
}

#[test]
fn cast_is_varied() {
    let s = default_scenario();
    let runs: Vec<&Value> = s
        .events
        .iter()
        .filter(|e| name(e) == "RunInstances" && succeeded(e))
        .collect();
    // Multi-AMI requests.
    assert!(runs.iter().any(|e| {
        let a: HashSet<String> = items(e, "requestParameters")
            .iter()
            .filter_map(|i| text(i, &["imageId"]).map(str::to_string))
            .collect();
        a.len() == 2
    }));
    // Autoscaling launches through launch templates.
    let asg: Vec<&&Value> = runs
        .iter()
        .filter(|e| text(e, &["userAgent"]) == Some("autoscaling.amazonaws.com"))
        .collect();
    assert!(!asg.is_empty());
    for e in asg {
        assert!(text(e, &["userIdentity", "arn"]).is_some_and(|a| {
            a.ends_with(":assumed-role/AWSServiceRoleForAutoScaling/AutoScaling")
        }));
        assert_eq!(
            text(e, &["sourceIPAddress"]),
            Some("autoscaling.amazonaws.com")
        );
        assert!(e["requestParameters"]["launchTemplate"]["launchTemplateId"].is_string());
        assert!(e["requestParameters"]["instanceType"].is_null());
        let one = |v: Vec<String>| v.into_iter().collect::<HashSet<_>>().len() == 1;
        assert!(one(amis(e)) && one(instance_types(e)));
    }
    // CI sessions differ per run but map to one role.
    let gha: HashSet<&str> = s
        .events
        .iter()
        .filter(|e| principal(e).is_some_and(|p| p.ends_with(":role/github-actions-deploy")))
        .filter_map(|e| text(e, &["userIdentity", "arn"]))
        .collect();
    assert!(gha.len() > 50, "{} GitHub Actions sessions", gha.len());
    for e in s
        .events
        .iter()
        .filter(|e| text(e, &["userIdentity", "type"]) == Some("AssumedRole"))
    {
        let issuer = &e["userIdentity"]["sessionContext"]["sessionIssuer"];
        assert_eq!(issuer["type"], "Role");
        for k in ["principalId", "arn", "accountId", "userName"] {
            assert!(issuer[k].is_string(), "sessionIssuer.{k}");
        }
        assert!(e["userIdentity"]["sessionContext"]["attributes"]["creationDate"].is_string());
    }
    // Service calls without an ARN.
    let no_arn = s
        .events
        .iter()
        .filter(|e| text(e, &["userIdentity", "type"]) == Some("AWSService"))
        .inspect(|e| assert!(e["userIdentity"].get("arn").is_none()))
        .count();
    assert!(no_arn > 100);
    // Background traffic from many services.
    let sources: HashSet<&str> = s
        .events
        .iter()
        .filter_map(|e| text(e, &["eventSource"]))
        .collect();
    assert!(sources.len() >= 12, "{sources:?}");
    let starts = s
        .events
        .iter()
        .filter(|e| name(e) == "StartInstances")
        .count();
    let stops = s
        .events
        .iter()
        .filter(|e| name(e) == "StopInstances")
        .count();
    assert!(starts > 20 && stops > 20);
}

#[test]
fn failed_launches_use_new_values_but_never_alert() {
    let s = default_scenario();
    let ok: HashSet<String> = s
        .events
        .iter()
        .filter(|e| name(e) == "RunInstances" && succeeded(e))
        .flat_map(|e| {
            instance_types(e)
                .into_iter()
                .chain(text(e, &["awsRegion"]).map(str::to_string))
        })
        .collect();
    let failed: Vec<&Value> = s
        .events
        .iter()
        .filter(|e| name(e) == "RunInstances" && !succeeded(e))
        .collect();
    assert!(failed.len() > 20);
    let fresh = |v: &str| !ok.contains(v);
    assert!(
        failed
            .iter()
            .any(|e| fresh(text(e, &["awsRegion"]).unwrap_or("")))
    );
    assert!(
        failed
            .iter()
            .any(|e| instance_types(e).iter().any(|t| fresh(t)))
    );
    assert!(failed.iter().any(|e| {
        text(e, &["awsRegion"]) == Some("sa-east-1")
            && instance_types(e) == ["g5.12xlarge"]
            && text(e, &["errorCode"]) == Some("Client.DryRunOperation")
    }));
    assert!(fresh("g5.12xlarge") && fresh("sa-east-1"));
    for code in [
        "Client.DryRunOperation",
        "Client.UnauthorizedOperation",
        "Client.VcpuLimitExceeded",
        "Client.InvalidParameterValue",
    ] {
        assert!(
            failed.iter().any(|e| text(e, &["errorCode"]) == Some(code)),
            "{code}"
        );
    }
}

#[test]
fn incidents_need_21_days() {
    let r = std::panic::catch_unwind(|| {
        generate(&Spec {
            days: 20,
            events_per_day: 10,
            ..Spec::default()
        })
    });
    let err = r.expect_err("must panic");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("days >= 21"), "{msg}");
    // Without incidents short scenarios are fine, even empty ones.
    let short = generate(&Spec {
        days: 3,
        events_per_day: 50,
        incidents: false,
        ..Spec::default()
    });
    assert!(short.expected.is_empty() && !short.events.is_empty());
    let empty = generate(&Spec {
        days: 0,
        incidents: false,
        ..Spec::default()
    });
    assert!(empty.events.is_empty());
}

#[test]
fn shortest_incident_scenario_has_every_alert() {
    let s = small_scenario();
    assert_eq!(s.expected.len(), 8, "{:?}", s.expected);
    let end = Spec::default().start.timestamp() + 21 * DAY_SECS;
    assert!(s.events.iter().all(|e| time(e) < end));
}

fn sorted_lines(events: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).expect("serializes"))
        .collect();
    v.sort();
    v
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn ndjson_round_trips() {
    let s = small_scenario();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub/trail.ndjson");
    let summary = write(s, Layout::Ndjson, &path).expect("write");
    assert_eq!(
        summary,
        WriteSummary {
            files: 1,
            records: s.events.len(),
            garbage_lines: 0
        }
    );
    let text = std::fs::read_to_string(&path).expect("read");
    let back: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(back, s.events);
}

#[test]
fn s3_archive_round_trips() {
    // A short scenario: one gzip file per account, region and 5 minutes is a lot of files.
    let s = &generate(&Spec {
        seed: 5,
        days: 4,
        events_per_day: 300,
        incidents: false,
        ..Spec::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = write(s, Layout::S3Archive, dir.path()).expect("write");
    assert_eq!(summary.records, s.events.len());
    let files = files_under(dir.path());
    assert_eq!(files.len(), summary.files);
    let mut back = Vec::new();
    let mut file_of: HashMap<String, Vec<i64>> = HashMap::new();
    for f in &files {
        let rel = f.strip_prefix(dir.path()).expect("under dir");
        let parts: Vec<&str> = rel.iter().map(|p| p.to_str().expect("utf8")).collect();
        assert_eq!(parts.len(), 8, "{rel:?}");
        assert_eq!((parts[0], parts[2]), ("AWSLogs", "CloudTrail"));
        let (account, region) = (parts[1], parts[3]);
        let file = parts[7];
        let stem = file.strip_suffix(".json.gz").expect("json.gz");
        let fields: Vec<&str> = stem.split('_').collect();
        assert_eq!(fields.len(), 5, "{file}");
        assert_eq!(
            (fields[0], fields[1], fields[2]),
            (account, "CloudTrail", region)
        );
        let stamp = fields[3];
        assert_eq!(stamp.len(), 14);
        assert_eq!(&stamp[..8], format!("{}{}{}", parts[4], parts[5], parts[6]));
        assert!(fields[4].len() == 16 && fields[4].chars().all(|c| c.is_ascii_alphanumeric()));
        let at = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%MZ")
            .expect("stamp")
            .and_utc()
            .timestamp();
        let mut raw = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(f).expect("open"))
            .read_to_string(&mut raw)
            .expect("gunzip");
        let doc: Value = serde_json::from_str(&raw).expect("json");
        let records = doc["Records"].as_array().expect("Records");
        assert!(!records.is_empty());
        for r in records {
            assert_eq!(text(r, &["recipientAccountId"]), Some(account));
            assert_eq!(text(r, &["awsRegion"]), Some(region));
            file_of.entry(event_id(r).to_string()).or_default().push(at);
            back.push(r.clone());
        }
    }
    assert_eq!(sorted_lines(&back), sorted_lines(&s.events));
    let mut dups = 0;
    for stamps in file_of.values().filter(|v| v.len() > 1) {
        assert_eq!(stamps.len(), 2);
        assert_eq!((stamps[0] - stamps[1]).abs(), 300, "adjacent files");
        dups += 1;
    }
    assert!(dups > 0);
    // Reproducible names.
    let again = tempfile::tempdir().expect("tempdir");
    write(s, Layout::S3Archive, again.path()).expect("write");
    let names = |d: &Path| -> Vec<PathBuf> {
        files_under(d)
            .into_iter()
            .map(|f| f.strip_prefix(d).expect("under").to_path_buf())
            .collect()
    };
    assert_eq!(names(dir.path()), names(again.path()));
}

#[test]
fn eventbridge_round_trips() {
    let s = small_scenario();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.ndjson");
    let summary = write(s, Layout::EventBridge, &path).expect("write");
    assert_eq!(summary.records, s.events.len());
    let text_all = std::fs::read_to_string(&path).expect("read");
    let mut ids = HashSet::new();
    let mut back = Vec::new();
    for l in text_all.lines() {
        let env: Value = serde_json::from_str(l).expect("json");
        assert_eq!(env["version"], "0");
        assert_eq!(env["detail-type"], "AWS API Call via CloudTrail");
        assert!(ids.insert(env["id"].as_str().expect("id").to_string()));
        let d = &env["detail"];
        let service = text(d, &["eventSource"])
            .expect("source")
            .split('.')
            .next()
            .expect("svc");
        assert_eq!(env["source"], format!("aws.{service}"));
        assert_eq!(env["account"], d["recipientAccountId"]);
        assert_eq!(env["time"], d["eventTime"]);
        assert_eq!(env["region"], d["awsRegion"]);
        assert_eq!(env["resources"], serde_json::json!([]));
        back.push(d.clone());
    }
    assert_eq!(back, s.events);
}

#[test]
fn garbage_layout_keeps_records_and_counts_garbage() {
    let s = small_scenario();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dirty.ndjson");
    let summary = write(s, Layout::NdjsonWithGarbage, &path).expect("write");
    assert_eq!(summary.records, s.events.len());
    let raw = std::fs::read_to_string(&path).expect("read");
    let lines: Vec<&str> = raw.split('\n').collect();
    assert_eq!(lines.last(), Some(&""), "file ends with a newline");
    let lines = &lines[..lines.len() - 1];
    assert_eq!(lines.len(), summary.records + summary.garbage_lines);
    let originals: HashSet<&str> = s.events.iter().map(event_id).collect();
    let mut records = Vec::new();
    let (mut blank, mut broken, mut huge, mut other_json, mut wrong_type) = (0, 0, 0, 0, 0);
    for l in lines {
        if l.trim().is_empty() {
            blank += 1;
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(l) else {
            broken += 1;
            continue;
        };
        if l.len() > 1_900_000 {
            assert!(v.get("eventName").is_none());
            huge += 1;
        } else if v.get("eventName").is_none() {
            other_json += 1;
        } else if originals.contains(event_id(&v)) {
            records.push(v);
        } else {
            let bad_type = v["requestParameters"]["instanceType"].is_object();
            let bad_region = v["awsRegion"].is_number();
            assert!(bad_type ^ bad_region, "one wrong type per copy");
            assert_eq!(name(&v), "RunInstances");
            wrong_type += 1;
        }
    }
    assert_eq!(records, s.events, "records keep their order");
    assert_eq!(huge, 1);
    assert!(blank > 0 && broken > 0 && other_json > 0 && wrong_type >= 2);
    assert_eq!(
        blank + broken + huge + other_json + wrong_type,
        summary.garbage_lines
    );
}

#[test]
fn other_clouds_add_their_records_and_alerts_and_leave_cloudtrails() {
    let spec = Spec {
        days: 40,
        events_per_day: 100,
        ..Spec::default()
    };
    let aws = generate(&spec);
    let all = generate(&Spec {
        other_clouds: true,
        ..spec
    });
    let ids = |s: &Scenario| -> std::collections::BTreeSet<String> {
        s.events
            .iter()
            .filter_map(|e| e.get("eventID").and_then(|v| v.as_str()).map(String::from))
            .collect()
    };
    assert_eq!(ids(&aws), ids(&all), "the same CloudTrail records");
    let others: Vec<&ExpectedAlert> = all
        .expected
        .iter()
        .filter(|a| !aws.expected.contains(a))
        .collect();
    assert_eq!(others.len(), 12, "{others:?}");
    assert!(
        others
            .iter()
            .all(|a| a.detection.starts_with("gcp-") || a.detection.starts_with("azure-"))
    );
    let google = all
        .events
        .iter()
        .filter(|e| e.get("protoPayload").is_some())
        .count();
    let azure = all
        .events
        .iter()
        .filter(|e| e.get("records").is_some())
        .count();
    assert!(
        google > 1000 && azure > 1000,
        "{google} Google entries, {azure} Azure documents"
    );
    let dir = tempfile::tempdir().unwrap();
    let error = write(&all, Layout::S3Archive, &dir.path().join("s3")).unwrap_err();
    assert!(error.to_string().contains("ndjson layouts"), "{error}");
}
