//! Alerts as they leave minewatch: the detector's finding enriched by the host with the
//! detection's catalogue entry and the tenant, in the native format or as an OCSF
//! Detection Finding.

use minewatch_guest::time::format_time;
use minewatch_guest::{Alert, Detection, DetectorInfo, EventSummary, Evidence, Sighting};
use serde::Serialize;
use serde_json::{Value, json};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// minewatch's own JSON object per alert.
    #[default]
    Native,
    /// OCSF 1.1 Detection Finding (class 2004) with the cloud profile.
    Ocsf,
}

/// An alert in minewatch's native format.
#[derive(Debug, Clone, Serialize)]
pub struct NativeAlert<'a> {
    /// Detection slug.
    pub detection: &'a str,
    /// Splunk detection id.
    pub detection_id: &'a str,
    /// Detection title.
    pub name: &'a str,
    /// Severity.
    pub severity: minewatch_guest::Severity,
    /// 0-100.
    pub risk_score: u8,
    /// ATT&CK technique ids.
    pub mitre_attack: &'a [String],
    /// The new value, or the principal.
    pub key: &'a str,
    /// One sentence for a human.
    pub message: &'a str,
    /// Event time, RFC 3339.
    pub time: String,
    /// Tenant whose baselines judged it.
    pub tenant: &'a str,
    /// The triggering event.
    pub event: &'a EventSummary,
    /// Why it fired.
    pub evidence: Value,
    /// The detector that produced it.
    pub detector: DetectorRef<'a>,
}

/// Which detector produced an alert.
#[derive(Debug, Clone, Serialize)]
pub struct DetectorRef<'a> {
    /// Package name.
    pub name: &'a str,
    /// Package version.
    pub version: &'a str,
}

/// Renders alerts for one detector.
#[derive(Debug, Clone)]
pub struct Renderer {
    info: DetectorInfo,
    format: Format,
}

/// A catalogue entry for alerts naming a detection the detector did not describe.
fn unknown(slug: &str) -> Detection {
    Detection {
        slug: slug.to_string(),
        splunk_id: String::new(),
        name: slug.to_string(),
        description: String::new(),
        severity: minewatch_guest::Severity::Medium,
        risk_score: 50,
        mitre_attack: Vec::new(),
    }
}

impl Renderer {
    /// A renderer for alerts of the detector described by `info`.
    pub fn new(info: DetectorInfo, format: Format) -> Renderer {
        Renderer { info, format }
    }

    /// One alert as a JSON object.
    pub fn render(&self, alert: &Alert, tenant: &str) -> Value {
        let fallback;
        let detection = match self
            .info
            .detections
            .iter()
            .find(|d| d.slug == alert.detection)
        {
            Some(d) => d,
            None => {
                fallback = unknown(&alert.detection);
                &fallback
            }
        };
        match self.format {
            Format::Native => self.native(alert, detection, tenant),
            Format::Ocsf => self.ocsf(alert, detection, tenant),
        }
    }

    fn native(&self, alert: &Alert, detection: &Detection, tenant: &str) -> Value {
        serde_json::to_value(NativeAlert {
            detection: &alert.detection,
            detection_id: &detection.splunk_id,
            name: &detection.name,
            severity: detection.severity,
            risk_score: detection.risk_score,
            mitre_attack: &detection.mitre_attack,
            key: &alert.key,
            message: &alert.message,
            time: format_time(alert.time),
            tenant,
            event: &alert.event,
            evidence: evidence(&alert.evidence),
            detector: DetectorRef {
                name: &self.info.name,
                version: &self.info.version,
            },
        })
        .expect("alerts serialize")
    }

    fn ocsf(&self, alert: &Alert, detection: &Detection, tenant: &str) -> Value {
        use minewatch_guest::Severity::*;
        let (severity_id, severity) = match detection.severity {
            Informational => (1, "Informational"),
            Low => (2, "Low"),
            Medium => (3, "Medium"),
            High => (4, "High"),
            Critical => (5, "Critical"),
        };
        let e = &alert.event;
        let attacks: Vec<Value> = detection
            .mitre_attack
            .iter()
            .map(|t| json!({ "technique": { "uid": t }, "version": "15.1" }))
            .collect();
        let mut observables =
            vec![json!({ "name": "key", "type_id": 0, "type": "Other", "value": alert.key })];
        if !e.principal.is_empty() {
            observables.push(json!({ "name": "actor.user.uid", "type_id": 21, "type": "User", "value": e.principal }));
        }
        if !e.source_ip.is_empty() && e.source_ip.parse::<std::net::IpAddr>().is_ok() {
            observables.push(json!({ "name": "src_endpoint.ip", "type_id": 2, "type": "IP Address", "value": e.source_ip }));
        }
        json!({
            "class_uid": 2004,
            "class_name": "Detection Finding",
            "category_uid": 2,
            "category_name": "Findings",
            "activity_id": 1,
            "activity_name": "Create",
            "type_uid": 200401,
            "type_name": "Detection Finding: Create",
            "severity_id": severity_id,
            "severity": severity,
            "status_id": 1,
            "status": "New",
            "time": alert.time,
            "message": alert.message,
            "risk_score": detection.risk_score,
            "metadata": {
                "version": "1.1.0",
                "profiles": ["cloud"],
                "product": { "name": "minewatch", "vendor_name": "minewatch", "version": env!("CARGO_PKG_VERSION") },
                "tenant_uid": tenant,
            },
            "finding_info": {
                "uid": format!("{}:{}:{}", alert.detection, e.event_id, alert.key),
                "title": detection.name,
                "desc": detection.description,
                "types": [alert.detection],
                "analytic": { "uid": detection.splunk_id, "name": detection.name, "type_id": 1, "type": "Rule" },
                "attacks": attacks,
                "src_url": "https://research.splunk.com/stories/aws_cryptomining/",
            },
            "cloud": { "provider": "AWS", "region": e.region, "account": { "uid": e.account, "type_id": 10, "type": "AWS Account" } },
            "actor": { "user": { "uid": e.principal, "name": e.arn } },
            "src_endpoint": { "ip": e.source_ip, "svc_name": e.user_agent },
            "api": { "operation": e.event_name, "service": { "name": "ec2.amazonaws.com" } },
            "resources": e.instance_ids.iter().map(|i| json!({ "uid": i, "type": "AWS::EC2::Instance" })).collect::<Vec<_>>(),
            "evidences": [{ "api": { "operation": e.event_name }, "data": { "event_id": e.event_id, "instance_type": e.instance_type, "image_ids": e.image_ids } }],
            "observables": observables,
            "unmapped": { "evidence": evidence(&alert.evidence) },
        })
    }
}

fn sighting(s: &Sighting) -> Value {
    json!({ "first_seen": format_time(s.first_seen), "last_seen": format_time(s.last_seen), "count": s.count })
}

/// The evidence with times in RFC 3339.
fn evidence(evidence: &Evidence) -> Value {
    match evidence {
        Evidence::Unseen(u) => json!({
            "baseline": u.baseline,
            "baseline_size": u.baseline_size,
            "learning_start": format_time(u.learning_start),
            "previous": u.previous.as_ref().map(sighting),
        }),
        Evidence::Rate(r) => json!({
            "window_start": format_time(r.window_start),
            "count": r.count,
            "history_windows": r.history_windows,
            "mean": r.mean,
            "stdev": r.stdev,
            "threshold": r.threshold,
            "tail_probability": r.tail_probability,
            "method": r.method,
        }),
    }
}
