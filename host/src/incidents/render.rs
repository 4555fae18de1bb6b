//! Incident records as they leave minewatch: the native JSON object, or an OCSF 1.1
//! Incident Finding (class 2005) linking the Detection Findings of its alerts.

use std::collections::BTreeSet;

use minewatch_guest::catalog::{Cloud, Kind};
use minewatch_guest::time::format_time;
use serde_json::{Value, json};

use super::Incident;
use crate::alert::OcsfCloud;

/// What the incident says about its contributions, gathered once for both formats.
struct Facts {
    detections: BTreeSet<String>,
    techniques: BTreeSet<String>,
    regions: BTreeSet<String>,
    instance_types: BTreeSet<String>,
    images: BTreeSet<String>,
    /// Instances launched by the distinct events that triggered its alerts.
    instances: u64,
    /// Largest launch count of a rate window.
    window_count: Option<u64>,
}

fn facts(incident: &Incident) -> Facts {
    let mut f = Facts {
        detections: BTreeSet::new(),
        techniques: BTreeSet::new(),
        regions: BTreeSet::new(),
        instance_types: BTreeSet::new(),
        images: BTreeSet::new(),
        instances: 0,
        window_count: None,
    };
    let mut events = BTreeSet::new();
    for (_, c) in &incident.contributions {
        f.detections.insert(c.detection.clone());
        f.techniques.extend(c.techniques.iter().cloned());
        let nonempty = |s: &String| !s.is_empty();
        f.regions
            .extend(Some(&c.region).filter(|s| nonempty(s)).cloned());
        f.instance_types
            .extend(Some(&c.instance_type).filter(|s| nonempty(s)).cloned());
        f.images.extend(c.images.iter().cloned());
        if events.insert(c.event_id.clone()) {
            f.instances += c.instances;
        }
        f.window_count = f.window_count.max(c.window_count);
    }
    f
}

/// The one sentence an analyst reads first: whose key, what was new, how much.
pub fn summary(incident: &Incident) -> String {
    let f = facts(incident);
    let first_uses: Vec<String> = incident
        .contributions
        .iter()
        .filter_map(|(_, c)| {
            let (cloud, kind) = Cloud::of_slug(&c.detection)?;
            let nouns = cloud.nouns();
            let what = match kind {
                Kind::UnseenRegion => "region",
                Kind::UnseenImage => nouns.image,
                Kind::UnseenInstanceType => nouns.instance_type,
                Kind::UnseenUser => return Some("the first launch by this principal".to_string()),
                Kind::LaunchSpike | Kind::LaunchSpikeDensity => return None,
            };
            Some(format!("{what} {}", c.key))
        })
        .collect();
    let minutes = (incident.last_time() - incident.first_time()) / 60_000;
    let span = match minutes {
        0 => "within a minute".to_string(),
        1 => "within 1 minute".to_string(),
        m if m < 120 => format!("within {m} minutes"),
        m => format!("within {} hours", m / 60),
    };
    let mut parts = vec![format!(
        "Probable cryptomining with the credentials of {}: {} detections {span} (risk {}, threshold {})",
        incident.principal,
        f.detections.len(),
        incident.risk,
        incident.threshold
    )];
    if !first_uses.is_empty() {
        parts.push(format!("first use of {}", join(&first_uses)));
    }
    if let Some(count) = f.window_count {
        parts.push(format!(
            "an abnormal launch rate ({count} launches in one window)"
        ));
    }
    if !f.instance_types.is_empty() && !f.regions.is_empty() {
        let types: Vec<String> = f.instance_types.iter().cloned().collect();
        let regions: Vec<String> = f.regions.iter().cloned().collect();
        parts.push(format!("launching {} in {}", join(&types), join(&regions)));
    }
    format!("{}.", parts.join("; "))
}

fn join(items: &[String]) -> String {
    match items {
        [] => "-".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The native incident record.
pub fn native(incident: &Incident) -> Value {
    let f = facts(incident);
    let alerts: Vec<Value> = incident
        .contributions
        .iter()
        .map(|(time, c)| {
            json!({
                "detection": c.detection,
                "key": c.key,
                "time": format_time(*time),
                "event_id": c.event_id,
                "risk_score": c.risk,
            })
        })
        .collect();
    json!({
        "incident_id": incident.id,
        "status": if incident.opened { "open" } else { "updated" },
        "tenant": incident.tenant,
        "principal": incident.principal,
        "account": incident.account,
        "first_time": format_time(incident.first_time()),
        "last_time": format_time(incident.last_time()),
        // Named `time` too, so outputs that stamp records by their time (HEC) use it.
        "time": format_time(incident.last_time()),
        "risk_score": incident.risk,
        "threshold": incident.threshold,
        "window_hours": incident.window_hours,
        "alerts": alerts,
        "mitre_attack": f.techniques,
        "regions": f.regions,
        "instance_types": f.instance_types,
        "images": f.images,
        "instances_launched": f.instances,
        "max_window_launches": f.window_count,
        "summary": summary(incident),
    })
}

/// The incident as an OCSF 1.1 Incident Finding (class 2005); each contribution is a
/// `finding_info_list` entry whose `uid` is the Detection Finding's `finding_info.uid`.
pub fn ocsf(incident: &Incident) -> Value {
    let f = facts(incident);
    let (activity_id, activity) = if incident.opened {
        (1, "Create")
    } else {
        (2, "Update")
    };
    let findings: Vec<Value> = incident
        .contributions
        .iter()
        .map(|(time, c)| {
            json!({
                "uid": c.finding_uid(),
                "title": c.detection,
                "types": [c.detection],
                "first_seen_time": time,
                "attacks": c.techniques.iter().map(|t| json!({ "technique": { "uid": t }, "version": "15.1" })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let summary = summary(incident);
    // A principal belongs to one cloud, and so do its incident's detections.
    let first = incident
        .contributions
        .first()
        .map(|(_, c)| c.detection.as_str());
    let cloud = OcsfCloud::of(first.unwrap_or_default(), "");
    json!({
        "class_uid": 2005,
        "class_name": "Incident Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": activity_id,
        "activity_name": activity,
        "type_uid": 200500 + activity_id,
        "type_name": format!("Incident Finding: {activity}"),
        "severity_id": 4,
        "severity": "High",
        "status_id": 1,
        "status": "New",
        "time": incident.last_time(),
        "start_time": incident.first_time(),
        "end_time": incident.last_time(),
        "message": summary,
        "desc": summary,
        "metadata": {
            "version": "1.1.0",
            "profiles": ["cloud"],
            "uid": incident.id,
            "product": { "name": "minewatch", "vendor_name": "minewatch", "version": env!("CARGO_PKG_VERSION") },
            "tenant_uid": incident.tenant,
        },
        "cloud": { "provider": cloud.provider, "account": { "uid": incident.account, "type_id": cloud.account_type_id, "type": cloud.account_type } },
        "finding_info_list": findings,
        "attacks": f.techniques.iter().map(|t| json!({ "technique": { "uid": t }, "version": "15.1" })).collect::<Vec<_>>(),
        "assignee_group": { "name": incident.assignee_group },
        "unmapped": {
            "incident_id": incident.id,
            "principal": incident.principal,
            "risk_score": incident.risk,
            "threshold": incident.threshold,
            "regions": f.regions,
            "instance_types": f.instance_types,
            "images": f.images,
            "instances_launched": f.instances,
        },
    })
}
