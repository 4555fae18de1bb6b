//! Google Cloud and Azure beside CloudTrail: the generated multi-cloud scenario through
//! `run` (native and OCSF), `serve` over HTTP and the Node host, each cloud's incidents
//! alerting and their benign neighbours quiet; the public samples of both clouds run
//! without a crash, with every skip explained.

use std::collections::BTreeMap;

use minewatch_generator::{Layout, Scenario, Spec};

use crate::node_host::{embedded_component, host_alerts, node_alerts, node_host_ready};
use crate::util::{
    Dir, Server, alerts, command, data, expected_pairs, gzip, incidents, post, scenario_spec,
    setup, unique_pairs, write_scenario,
};

/// The 45-day scenario of `seed` with Google Cloud and Azure, as NDJSON in `output`.
fn multicloud(dir: &Dir, seed: u64, output: &str) -> Scenario {
    let spec = Spec {
        other_clouds: true,
        ..scenario_spec(seed)
    };
    write_scenario(dir, &spec, Layout::Ndjson, output)
}

/// How many expected alerts each cloud's slugs name.
fn per_cloud(pairs: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (detection, _) in pairs {
        let cloud = detection.split('-').next().unwrap().to_string();
        *counts.entry(cloud).or_insert(0) += 1;
    }
    counts
}

#[test]
fn run_gives_each_clouds_incident_alerts_and_none_for_their_benign_neighbours() {
    let (dir, _) = setup();
    let scenario = multicloud(&dir, 11, "clouds.ndjson");
    let want = expected_pairs(&scenario);
    let counts = per_cloud(want.clone());
    assert_eq!(counts["gcp"], 6, "{want:?}");
    assert_eq!(counts["azure"], 6, "{want:?}");
    assert!(counts["ec2"] >= 8, "{want:?}");
    let out = command(&dir)
        .args(["run", "--memory", "--input", "clouds.ndjson"])
        .ok(&dir);
    assert_eq!(unique_pairs(&alerts(&out.stdout)), want);
    // The stolen key of each cloud opens one incident, its principal's.
    let mut opened: Vec<String> = incidents(&out.stdout)
        .iter()
        .filter(|i| i["status"] == "open")
        .map(|i| i["principal"].as_str().unwrap().to_string())
        .collect();
    opened.sort();
    assert_eq!(
        opened,
        [
            "2b7e1f40-5c8d-4e3a-9f61-0d4c2b8a7e15",
            "arn:aws:iam::111122223333:user/alice",
            "deployer@acme-analytics-prod.iam.gserviceaccount.com",
        ]
    );
    // Each cloud's incident names what was new in that cloud's words.
    for (principal, new) in [
        (
            "deployer@acme-analytics-prod.iam.gserviceaccount.com",
            "first use of image ubuntu-os-cloud/family/ubuntu-2204-lts, machine type n1-highmem-16 and region asia-southeast1",
        ),
        (
            "2b7e1f40-5c8d-4e3a-9f61-0d4c2b8a7e15",
            "first use of image microsoft-dsvm:ubuntu-hpc:2204, region southeastasia and VM size standard_nc24ads_a100_v4",
        ),
    ] {
        let summaries: Vec<String> = incidents(&out.stdout)
            .iter()
            .filter(|i| i["principal"] == principal)
            .map(|i| i["summary"].as_str().unwrap().to_string())
            .collect();
        assert!(
            !summaries.is_empty() && summaries.iter().all(|s| s.contains(new)),
            "{principal}: {summaries:#?}"
        );
    }
    // The benign neighbours reached the detector and were judged as failed calls, not
    // skipped: a refused insert and a failed last entry (Google), a failed creation
    // (Azure), each delivered once or twice.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(", 0 skipped,"), "{stderr}");
    let text = std::fs::read_to_string(dir.join("clouds.ndjson")).unwrap();
    let others: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("\"eventID\""))
        .collect();
    let failures = others
        .iter()
        .filter(|l| {
            l.contains("\"QUOTA_EXCEEDED\"")
                || l.contains("\"PERMISSION_DENIED\"")
                || l.contains("\"resultType\":\"Failure\"")
        })
        .count();
    assert!(failures >= 3, "the scenario's failures: {failures}");
    dir.write("others.ndjson", others.join("\n"));
    let out = command(&dir)
        .args(["run", "--memory", "--input", "others.ndjson"])
        .ok(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("({failures} failed calls)")),
        "{stderr}"
    );
}

#[test]
fn ocsf_findings_name_each_clouds_provider_and_hold_to_the_schema() {
    let (dir, _) = setup();
    multicloud(&dir, 11, "clouds.ndjson");
    let out = command(&dir)
        .args([
            "run",
            "--memory",
            "--format",
            "ocsf",
            "--input",
            "clouds.ndjson",
        ])
        .ok(&dir);
    let findings = alerts(&out.stdout);
    let mut providers: BTreeMap<(String, String), usize> = BTreeMap::new();
    for finding in &findings {
        let problems = crate::ocsf::problems(finding);
        assert!(problems.is_empty(), "{problems:#?}\n{finding}");
        let slug = finding["finding_info"]["types"][0].as_str().unwrap();
        let provider = finding["cloud"]["provider"].as_str().unwrap();
        let cloud = slug.split('-').next().unwrap();
        *providers
            .entry((cloud.to_string(), provider.to_string()))
            .or_insert(0) += 1;
    }
    let pairs: Vec<(&str, &str)> = providers
        .keys()
        .map(|(c, p)| (c.as_str(), p.as_str()))
        .collect();
    assert_eq!(pairs, [("azure", "Azure"), ("ec2", "AWS"), ("gcp", "GCP")]);
    for incident in incidents(&out.stdout) {
        assert!(crate::ocsf::problems(&incident).is_empty(), "{incident}");
    }
}

#[test]
fn serve_over_http_gives_the_alerts_of_run() {
    let (dir, _) = setup();
    multicloud(&dir, 5, "clouds.ndjson");
    let want = unique_pairs(&host_alerts(&dir, &[], &dir.join("clouds.ndjson")));
    assert!(per_cloud(want.clone()).len() == 3, "{want:?}");
    let text = std::fs::read_to_string(dir.join("clouds.ndjson")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let server = Server::start(
        &dir,
        &[
            "--http",
            "127.0.0.1:0",
            "--memory",
            "--output",
            "served.ndjson",
        ],
    );
    for batch in lines.chunks(1000) {
        // Gzipped NDJSON, as Vector's http sink sends it.
        let body = gzip(batch.join("\n").as_bytes());
        let (status, reply) = post(
            &server.url("/events"),
            &body,
            &[
                ("Content-Encoding", "gzip"),
                ("Content-Type", "application/x-ndjson"),
            ],
        );
        assert_eq!(status, 200, "{reply}");
    }
    let log = server.stop();
    let served = std::fs::read(dir.join("served.ndjson")).unwrap();
    assert_eq!(unique_pairs(&alerts(&served)), want, "{log}");
}

#[test]
fn the_node_host_gives_the_alerts_of_the_rust_host() {
    if !node_host_ready() {
        return;
    }
    let (dir, _) = setup();
    multicloud(&dir, 11, "clouds.ndjson");
    let input = dir.join("clouds.ndjson");
    let expected = host_alerts(&dir, &[], &input);
    assert_eq!(per_cloud(unique_pairs(&expected)).len(), 3);
    assert_eq!(node_alerts(&embedded_component(&dir), &input), expected);
}

/// What `run` says of one sample file: records read, records for the detector, failed
/// calls, and skips by reason.
fn summary(dir: &Dir, path: &std::path::Path) -> (u64, u64, BTreeMap<String, u64>) {
    let out = command(dir)
        .args(["run", "--memory", "--input"])
        .args([path])
        .ok(dir);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let line = stderr
        .lines()
        .find(|l| l.starts_with("minewatch: "))
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    let number = |after: &str| -> u64 {
        line.split(after)
            .next()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let mut skips = BTreeMap::new();
    for l in stderr.lines() {
        if let Some((reason, n)) = l
            .trim()
            .strip_prefix("skipped ")
            .and_then(|r| r.split_once(": "))
        {
            skips.insert(reason.to_string(), n.parse().unwrap());
        }
    }
    (number(" records read"), number(" for the detector"), skips)
}

/// A sample file, the records `run` reads in it, those for the detector, and its skips
/// by reason.
type Sample = (&'static str, u64, u64, &'static [(&'static str, u64)]);

#[test]
fn public_samples_run_without_a_crash_and_every_skip_is_explained() {
    let (dir, _) = setup();
    // (file, records read, for the detector, skips): see each PROVENANCE.md.
    let cases: [Sample; 11] = [
        // 8 first/last pairs of beta inserts: the first entries are launches, the last
        // entries are read and passed over.
        ("gcp/dftimewolf/gcp-project-logs.ndjson", 98, 16, &[]),
        // One line is a jsonPayload log entry (no audit log): not-cloudtrail.
        (
            "gcp/gce-license-tracker/cs_test_events.ndjson",
            56,
            13,
            &[("not-cloudtrail", 1)],
        ),
        (
            "gcp/gce-license-tracker/history_instance-1.ndjson",
            9,
            2,
            &[],
        ),
        (
            "gcp/gce-license-tracker/history_instance-2.ndjson",
            4,
            2,
            &[],
        ),
        (
            "gcp/gce-license-tracker/history_instance-3.ndjson",
            7,
            2,
            &[],
        ),
        (
            "gcp/gce-license-tracker/history_instance-4.ndjson",
            55,
            2,
            &[],
        ),
        // Panther's records rename `@type`; its times have a space instead of `T`.
        (
            "gcp/panther-analysis/panther_gcp_audit_selected.ndjson",
            17,
            3,
            &[],
        ),
        // Two entries are Cloud Logging records of other kinds (no protoPayload).
        (
            "gcp/plaso/gcp_logging.ndjson",
            9,
            3,
            &[("not-cloudtrail", 2)],
        ),
        // The REST form: a support ticket, not a VM write.
        (
            "azure/azure-rest-api-specs/GetActivityLogsFiltered_value.ndjson",
            1,
            0,
            &[],
        ),
        // Hand-made REST stubs with `caller` and `eventTimestamp`.
        (
            "azure/cloud-custodian/c7n_azure_activity_log_stubs.ndjson",
            2,
            2,
            &[],
        ),
        // Line 3 is a stub with only Panther's fields and an operation name.
        (
            "azure/panther-analysis/panther_azure_monitor_activity_selected.ndjson",
            12,
            2,
            &[("not-cloudtrail", 1)],
        ),
    ];
    for (file, read, subscribed, skips) in cases {
        let (got_read, got_subscribed, got_skips) = summary(&dir, &data(file));
        let want: BTreeMap<String, u64> = skips.iter().map(|(r, n)| (r.to_string(), *n)).collect();
        assert_eq!(
            (got_read, got_subscribed, got_skips),
            (read, subscribed, want),
            "{file}"
        );
    }
    // The Python SDK's `as_dict()` form (snake_case keys, as plaso stores it) is no
    // export a pipeline delivers: its four records are skipped as not audit-log records.
    let (read, _, skips) = summary(&dir, &data("azure/plaso/azure_activity_log.ndjson"));
    assert_eq!(read, 0);
    assert_eq!(skips.get("not-cloudtrail"), Some(&4));
    // The Event Hubs document of the OpenTelemetry fixture opens into its record.
    let (read, _, skips) = summary(
        &dir,
        &data("azure/otel-collector-contrib/administrative_valid_1.ndjson"),
    );
    assert_eq!((read, skips.len()), (1, 0));
}

#[test]
fn a_cloud_logging_sink_pushed_by_pub_sub_gives_the_google_alerts_of_run() {
    use base64::Engine as _;
    let (dir, _) = setup();
    multicloud(&dir, 11, "clouds.ndjson");
    let text = std::fs::read_to_string(dir.join("clouds.ndjson")).unwrap();
    let entries: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"protoPayload\""))
        .collect();
    dir.write("gcp.ndjson", entries.join("\n"));
    let want = unique_pairs(&host_alerts(&dir, &[], &dir.join("gcp.ndjson")));
    assert_eq!(per_cloud(want.clone()), BTreeMap::from([("gcp".into(), 6)]));
    let config = dir.write(
        "minewatch.toml",
        "memory = true\nsettle_ms = 0\n[sources.http]\nlisten = \"127.0.0.1:0\"\n",
    );
    let server = Server::start(
        &dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "--output",
            "pushed.ndjson",
        ],
    );
    // One message a request, as a push subscription delivers them.
    for (i, entry) in entries.iter().enumerate() {
        let push = serde_json::json!({
            "message": {
                "data": base64::engine::general_purpose::STANDARD.encode(entry),
                "attributes": {"logging.googleapis.com/timestamp": "x"},
                "messageId": format!("{}", 9_000_000 + i),
                "publishTime": "2026-01-05T00:00:00.000Z",
            },
            "subscription": "projects/acme-analytics-prod/subscriptions/minewatch-push",
        });
        let (status, reply) = post(
            &server.url("/events"),
            push.to_string().as_bytes(),
            &[("Content-Type", "application/json")],
        );
        assert_eq!(status, 200, "{reply}");
    }
    let log = server.stop();
    let pushed = std::fs::read(dir.join("pushed.ndjson")).unwrap();
    assert_eq!(unique_pairs(&alerts(&pushed)), want, "{log}");
}
