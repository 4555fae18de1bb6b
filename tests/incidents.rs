//! Risk-based incidents on the generated scenario: one incident for the stolen key,
//! none for benign firsts, one across a restart, OCSF Incident Findings that link their
//! Detection Findings. (Three sidecars sharing Redis: see `fleet`.)

use std::collections::BTreeSet;

use minewatch_generator::Layout;
use serde_json::Value;

use crate::util::{Dir, alerts, command, incidents, records, scenario_in, setup};

/// Generates the 45-day scenario; returns its lines.
fn scenario(dir: &Dir) -> Vec<String> {
    scenario_in(dir, Layout::Ndjson, "scenario.ndjson");
    std::fs::read_to_string(dir.join("scenario.ndjson"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The principal of the injected campaign: the one both rate rules fired on.
fn campaign_principal(alerts: &[Value]) -> String {
    let spiking: BTreeSet<&str> = alerts
        .iter()
        .filter(|a| a["detection"] == "ec2-launch-spike")
        .map(|a| a["event"]["principal"].as_str().unwrap())
        .collect();
    assert_eq!(spiking.len(), 1, "{spiking:?}");
    spiking.into_iter().next().unwrap().to_string()
}

fn detections_of(alerts: &[Value], principal: &str) -> BTreeSet<String> {
    alerts
        .iter()
        .filter(|a| a["event"]["principal"] == principal)
        .map(|a| a["detection"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_scenario_gives_one_incident_for_the_stolen_key_listing_all_its_detections() {
    let (dir, _) = setup();
    scenario(&dir);
    let out = command(&dir)
        .args(["run", "--memory", "--input", "scenario.ndjson"])
        .ok(&dir);
    let raised = alerts(&out.stdout);
    let principal = campaign_principal(&raised);
    let campaign = detections_of(&raised, &principal);
    assert!(campaign.len() >= 5, "{campaign:?}");
    let records = incidents(&out.stdout);
    let opened: Vec<&Value> = records.iter().filter(|r| r["status"] == "open").collect();
    assert_eq!(opened.len(), 1, "{records:#?}");
    let id = &opened[0]["incident_id"];
    assert!(
        records
            .iter()
            .all(|r| &r["incident_id"] == id && r["principal"] == principal.as_str())
    );
    let last = records.last().unwrap();
    let listed: BTreeSet<String> = last["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["detection"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, campaign);
    assert!(last["risk_score"].as_u64().unwrap() >= 100);
    assert!(last["summary"].as_str().unwrap().starts_with(&format!(
        "Probable cryptomining with the credentials of {principal}"
    )));
    // Every other principal's alerts are single benign firsts: no incident.
    let others: BTreeSet<&str> = raised
        .iter()
        .map(|a| a["event"]["principal"].as_str().unwrap())
        .filter(|p| *p != principal)
        .collect();
    assert!(!others.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("incidents opened: 1"));
}

#[test]
fn a_restart_in_the_middle_of_a_campaign_continues_its_incident() {
    let (dir, _) = setup();
    let lines = scenario(&dir);
    let whole = command(&dir)
        .args(["run", "--memory", "--input", "scenario.ndjson"])
        .ok(&dir);
    let raised = alerts(&whole.stdout);
    let principal = campaign_principal(&raised);
    let opening = incidents(&whole.stdout)
        .into_iter()
        .find(|r| r["status"] == "open")
        .unwrap();
    // Cut the input right after the event that opened the incident.
    let last_id = opening["alerts"].as_array().unwrap().last().unwrap()["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    let cut = lines.iter().position(|l| l.contains(&last_id)).unwrap() + 1;
    dir.write("before.ndjson", lines[..cut].join("\n") + "\n");
    dir.write("after.ndjson", lines[cut..].join("\n") + "\n");
    let before = command(&dir)
        .args(["run", "--state", "state", "--input", "before.ndjson"])
        .ok(&dir);
    let after = command(&dir)
        .args(["run", "--state", "state", "--input", "after.ndjson"])
        .ok(&dir);
    let first = incidents(&before.stdout);
    let then = incidents(&after.stdout);
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(first[0]["status"], "open");
    assert!(!then.is_empty(), "the rate rules join after the restart");
    assert!(
        then.iter()
            .all(|r| r["status"] == "updated" && r["incident_id"] == first[0]["incident_id"]),
        "{then:#?}"
    );
    let listed: BTreeSet<String> = then.last().unwrap()["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["detection"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, detections_of(&raised, &principal));
    // The same records as one uninterrupted run.
    let mut split: Vec<Value> = first.into_iter().chain(then).collect();
    let mut uninterrupted = incidents(&whole.stdout);
    split.sort_by_key(Value::to_string);
    uninterrupted.sort_by_key(Value::to_string);
    assert_eq!(split, uninterrupted);
}

#[test]
fn ocsf_incident_findings_reference_the_detection_findings_beside_them() {
    let (dir, _) = setup();
    scenario(&dir);
    let out = command(&dir)
        .args([
            "run",
            "--memory",
            "--format",
            "ocsf",
            "--input",
            "scenario.ndjson",
        ])
        .ok(&dir);
    let all = records(&out.stdout);
    let findings: BTreeSet<&str> = all
        .iter()
        .filter(|r| r["class_uid"] == 2004)
        .map(|r| r["finding_info"]["uid"].as_str().unwrap())
        .collect();
    let incidents: Vec<&Value> = all.iter().filter(|r| r["class_uid"] == 2005).collect();
    assert!(!incidents.is_empty());
    assert_eq!(incidents[0]["activity_id"], 1);
    assert!(incidents[1..].iter().all(|r| r["activity_id"] == 2));
    for incident in &incidents {
        for linked in incident["finding_info_list"].as_array().unwrap() {
            let uid = linked["uid"].as_str().unwrap();
            assert!(
                findings.contains(uid),
                "{uid} links to no Detection Finding"
            );
        }
    }
}

#[test]
fn incidents_can_be_switched_off() {
    let (dir, _) = setup();
    scenario(&dir);
    let config = dir.write("minewatch.toml", "[incidents]\nenabled = false\n");
    let out = command(&dir)
        .args(["run", "--memory", "--input", "scenario.ndjson", "--config"])
        .args([&config])
        .ok(&dir);
    assert!(incidents(&out.stdout).is_empty());
    assert!(alerts(&out.stdout).len() >= 8);
}
