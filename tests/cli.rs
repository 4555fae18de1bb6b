//! The subcommands other tools rely on, and the alert formats.

use serde_json::Value;

use crate::util::{alerts, command, data, launch, ndjson, setup};

fn conformance(case: &str) -> std::path::PathBuf {
    data("conformance").join(case).join("events.ndjson")
}

#[test]
fn detections_lists_six_per_cloud_with_splunk_ids() {
    let (dir, mut cmd) = setup();
    let out = cmd.args(["detections", "--json"]).ok(&dir);
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<(&str, &str)> = info["detections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["slug"].as_str().unwrap(),
                d["splunk_id"].as_str().unwrap(),
            )
        })
        .collect();
    let region = "fa4089e2-50e3-40f7-8469-d2cc1564ca59";
    let image = "bc24922d-987c-4645-b288-f8c73ec194c4";
    let kind = "c6ddbf53-9715-49f3-bb4c-fb2e8a309cda";
    let user = "37a0ec8d-827e-4d6d-8025-cedf31f3a149";
    let density = "f2361e9f-3928-496c-a556-120cd4223a65";
    assert_eq!(
        ids,
        [
            ("ec2-unseen-region", "ada0f478-84a8-4641-a3f3-d82362d6fd75"),
            ("ec2-unseen-ami", "347ec301-601b-48b9-81aa-9ddf9c829dd3"),
            (
                "ec2-unseen-instance-type",
                "65541c80-03c7-4e05-83c8-1dcd57a2e1ad"
            ),
            ("ec2-unseen-user", "22773e84-bac0-4595-b086-20d3f735b4f1"),
            ("ec2-launch-spike", "2a9b80d3-6340-4345-b5ad-290bf5d0dac4"),
            (
                "ec2-launch-spike-density",
                "dec41ad5-d579-42cb-b4c6-f5dbb778bbe5"
            ),
            ("gcp-unseen-region", region),
            ("gcp-unseen-image", image),
            ("gcp-unseen-machine-type", kind),
            ("gcp-unseen-user", user),
            ("gcp-launch-spike", ""),
            ("gcp-launch-spike-density", density),
            ("azure-unseen-region", region),
            ("azure-unseen-image", image),
            ("azure-unseen-vm-size", kind),
            ("azure-unseen-user", user),
            ("azure-launch-spike", ""),
            ("azure-launch-spike-density", density),
        ]
    );
    assert_eq!(
        info["default_settings"]["unseen_region"]["learning_days"],
        14
    );
    assert_eq!(
        info["default_settings"]["clouds"],
        serde_json::json!(["aws", "gcp", "azure"])
    );
    let sources: Vec<&str> = info["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["event_source"].as_str().unwrap())
        .collect();
    assert_eq!(
        sources,
        [
            "ec2.amazonaws.com",
            "compute.googleapis.com",
            "Microsoft.Compute"
        ]
    );
    assert_eq!(
        info["subscriptions"][0]["event_names"],
        serde_json::json!(["RunInstances", "StartInstances"])
    );
    let (dir, mut cmd) = setup();
    let table = String::from_utf8(cmd.args(["detections"]).ok(&dir).stdout).unwrap();
    for slug in [
        "ec2-launch-spike-density",
        "gcp-unseen-machine-type",
        "azure-unseen-vm-size",
    ] {
        assert!(
            table.contains(slug) && table.contains("T1078.004"),
            "{table}"
        );
    }
}

#[test]
fn validate_accepts_a_good_config_and_names_every_problem_in_a_bad_one() {
    let (dir, mut cmd) = setup();
    let good = dir.write(
        "good.toml",
        "memory = true\n[detector]\nidentity = \"arn\"\n[detector.launch_spike]\nk = 3.0\n",
    );
    cmd.args(["validate", "--config"]).args([&good]).ok(&dir);

    let (dir, mut cmd) = setup();
    let typo = dir.write("typo.toml", "batch_event = 5\n");
    let out = cmd
        .args(["validate", "--config"])
        .args([&typo])
        .assert_exit(&dir, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `batch_event`"));

    let (dir, mut cmd) = setup();
    let bad = dir.write(
        "bad.toml",
        "component = \"missing.wasm\"\nstate_dir = \"/proc/minewatch-cannot-be-here\"\n",
    );
    let out = cmd
        .args(["validate", "--config"])
        .args([&bad])
        .assert_exit(&dir, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("failed to read component missing.wasm"),
        "{stderr}"
    );
    assert!(
        stderr.contains("state_dir /proc/minewatch-cannot-be-here: /proc is read-only"),
        "both problems are reported: {stderr}"
    );

    let (dir, mut cmd) = setup();
    let setting = dir.write(
        "setting.toml",
        "memory = true\n[detector.unseen_region]\nlearning = 3\n",
    );
    let out = cmd
        .args(["validate", "--config"])
        .args([&setting])
        .assert_exit(&dir, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `learning`"));
}

#[test]
fn baseline_build_learns_without_alerting_and_run_then_knows_the_keys() {
    let (dir, mut cmd) = setup();
    let history = conformance("failures-ignored");
    let out = cmd
        .args(["baseline", "build", "--state", "state", "--input"])
        .args([&history])
        .ok(&dir);
    assert!(out.stdout.is_empty(), "build prints no alerts");
    let mut show = command(&dir);
    let table = show
        .args(["baseline", "show", "--keys", "--state"])
        .args([dir.join("state")])
        .ok(&dir)
        .stdout;
    let table = String::from_utf8(table).unwrap();
    assert!(
        table.contains("ec2-unseen-region") && table.contains("sa-east-1"),
        "{table}"
    );

    // The same user, region, AMI and type again: nothing is new any more.
    let again = launch(
        "2026-03-30T10:00:00Z",
        "arn:aws:iam::111122223333:user/mallory",
        "sa-east-1",
        "ami-0bad0bad0bad0bad1",
        "p3.2xlarge",
        "again-1",
    );
    let mut run = command(&dir);
    let out = run
        .args(["run", "--state"])
        .args([dir.join("state")])
        .stdin(ndjson(&[again]))
        .ok(&dir);
    assert_eq!(alerts(&out.stdout), Vec::<Value>::new());
}

#[test]
fn export_and_import_move_a_baseline() {
    let (dir, mut cmd) = setup();
    cmd.args(["baseline", "build", "--state", "a", "--input"])
        .args([conformance("learning-gate")])
        .ok(&dir);
    let mut export = command(&dir);
    export
        .args(["baseline", "export", "--state"])
        .args([dir.join("a")])
        .args(["--output"])
        .args([dir.join("seed.ndjson")]);
    export.ok(&dir);
    let seed = std::fs::read_to_string(dir.join("seed.ndjson")).unwrap();
    assert!(
        seed.lines()
            .any(|l| l.contains("\"kind\":\"sighting\"") && l.contains("ap-south-1")),
        "{seed}"
    );
    let mut import = command(&dir);
    import
        .args(["baseline", "import", "--state"])
        .args([dir.join("b")])
        .args(["--input"])
        .args([dir.join("seed.ndjson")]);
    import.ok(&dir);
    let mut export_b = command(&dir);
    let copy = export_b
        .args(["baseline", "export", "--state"])
        .args([dir.join("b")])
        .ok(&dir)
        .stdout;
    assert_eq!(String::from_utf8(copy).unwrap(), seed);
}

#[test]
fn alerts_carry_the_contract_fields_and_the_why() {
    let (dir, mut cmd) = setup();
    let out = cmd
        .args(["run", "--memory", "--input"])
        .args([conformance("failures-ignored")])
        .ok(&dir);
    let all = alerts(&out.stdout);
    let region = all
        .iter()
        .find(|a| a["detection"] == "ec2-unseen-region")
        .unwrap();
    for field in [
        "detection",
        "detection_id",
        "name",
        "severity",
        "risk_score",
        "mitre_attack",
        "key",
        "message",
        "time",
        "tenant",
        "event",
        "evidence",
    ] {
        assert!(!region[field].is_null(), "missing {field}: {region:#}");
    }
    assert_eq!(region["time"], "2026-03-24T14:00:00Z");
    assert_eq!(region["tenant"], "default");
    assert_eq!(
        region["mitre_attack"],
        serde_json::json!(["T1535", "T1496"])
    );
    assert_eq!(
        region["event"]["principal"],
        "arn:aws:iam::111122223333:user/mallory"
    );
    assert_eq!(region["event"]["instance_ids"][0], "i-02dd9b99eeb654b05");
    assert_eq!(region["evidence"]["baseline_size"], 1);
    assert_eq!(region["evidence"]["learning_start"], "2026-03-02T10:00:00Z");
    assert!(region["evidence"]["previous"].is_null());

    let (dir, mut cmd) = setup();
    let out = cmd
        .args(["run", "--memory", "--input"])
        .args([conformance("spike-dedup")])
        .ok(&dir);
    let spike = alerts(&out.stdout)
        .into_iter()
        .find(|a| a["detection"] == "ec2-launch-spike")
        .unwrap();
    let why = &spike["evidence"];
    assert!(why["count"].as_u64().unwrap() > why["threshold"].as_f64().unwrap() as u64);
    assert!(why["history_windows"].as_u64().unwrap() >= 24);
    assert!(why["mean"].as_f64().unwrap() > 1.0 && why["stdev"].as_f64().unwrap() > 0.0);
}

#[test]
fn ocsf_output_is_a_detection_finding() {
    let (dir, mut cmd) = setup();
    let out = cmd
        .args(["run", "--memory", "--format", "ocsf", "--input"])
        .args([conformance("failures-ignored")])
        .ok(&dir);
    let findings = alerts(&out.stdout);
    assert_eq!(findings.len(), 4);
    for f in &findings {
        assert_eq!(f["class_uid"], 2004);
        assert_eq!(f["type_uid"], 200401);
        assert_eq!(f["metadata"]["profiles"], serde_json::json!(["cloud"]));
        assert_eq!(f["cloud"]["provider"], "AWS");
        assert!(
            f["finding_info"]["attacks"][0]["technique"]["uid"]
                .as_str()
                .unwrap()
                .starts_with('T')
        );
    }
}

#[test]
fn the_example_configs_validate() {
    let examples = data("../../examples");
    let mut checked = 0;
    for entry in walkdir::WalkDir::new(&examples)
        .into_iter()
        .filter_map(Result::ok)
    {
        let path = entry.path();
        let name = path.file_name().unwrap().to_string_lossy();
        if name == "minimal.toml" || name == "minewatch.toml" {
            let (dir, mut cmd) = setup();
            cmd.args(["validate", "--config"]).args([path]).ok(&dir);
            checked += 1;
        }
    }
    assert!(
        checked >= 4,
        "minimal, vector, fluent-bit and fluentd configs: {checked}"
    );
}

/// Runs the bundled sample into `output` and returns (stdout, stderr).
fn sample_into(output: &str) -> (Vec<u8>, Vec<u8>) {
    let (dir, mut cmd) = setup();
    let sample = data("../../examples/data/sample-trail.ndjson.gz");
    let out = cmd
        .args(["run", "--memory", "--output", output, "--input"])
        .args([&sample])
        .ok(&dir);
    (out.stdout, out.stderr)
}

#[test]
fn alerts_go_to_special_files_that_cannot_sync() {
    // The kernel refuses fsync on character devices and pipes; writing to them must
    // still work (benchmarks, shell pipes and systemd units use exactly these).
    let (stdout, stderr) = sample_into("/dev/null");
    assert!(stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&stderr).contains("alerts"),
        "{}",
        String::from_utf8_lossy(&stderr)
    );

    // The test harness gives the child a pipe as stdout and stderr.
    let (stdout, _) = sample_into("/dev/stdout");
    let piped = alerts(&stdout);
    assert!(
        piped.len() >= 5,
        "{} alerts through /dev/stdout",
        piped.len()
    );
    let (_, stderr) = sample_into("/dev/stderr");
    let on_stderr = String::from_utf8_lossy(&stderr)
        .lines()
        .filter(|l| l.starts_with("{\"detection\""))
        .count();
    assert_eq!(on_stderr, piped.len());
}

#[test]
fn alerts_go_to_a_fifo() {
    let (dir, mut cmd) = setup();
    let fifo = dir.join("alerts.fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    // A reader on the other end, as a log shipper would be.
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let sample = data("../../examples/data/sample-trail.ndjson.gz");
    cmd.args(["run", "--memory", "--output"])
        .args([&fifo])
        .args(["--input"])
        .args([&sample])
        .ok(&dir);
    let received = alerts(&reader.join().unwrap());
    let (stdout, _) = sample_into("-");
    assert_eq!(received, alerts(&stdout));
}
