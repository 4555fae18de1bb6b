//! Alerts as they leave minewatch: the detector's finding enriched by the host with the
//! detection's catalogue entry and the tenant, in the native format or as an OCSF
//! Detection Finding. The native format itself is `minewatch_guest::render`, shared with
//! the Fluent Bit plugin (`guest/fluent-bit/`).

use minewatch_guest::catalog::Cloud;
use minewatch_guest::render;
use minewatch_guest::{Alert, Detection, DetectorInfo};
use serde_json::{Value, json};

pub use minewatch_guest::render::{DetectorRef, NativeAlert};

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

/// Renders alerts for one detector.
#[derive(Debug, Clone)]
pub struct Renderer {
    info: DetectorInfo,
    format: Format,
}

impl Renderer {
    /// A renderer for alerts of the detector described by `info`.
    pub fn new(info: DetectorInfo, format: Format) -> Renderer {
        Renderer { info, format }
    }

    /// One alert as a JSON object.
    pub fn render(&self, alert: &Alert, tenant: &str) -> Value {
        let detection = render::detection(&self.info, &alert.detection);
        match self.format {
            Format::Native => render::native(&self.info, &detection, alert, tenant),
            Format::Ocsf => self.ocsf(alert, &detection, tenant),
        }
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
        let cloud = OcsfCloud::of(&alert.detection, &e.event_name);
        let attacks: Vec<Value> = detection
            .mitre_attack
            .iter()
            .map(|t| json!({ "technique": { "uid": t }, "version": "15.1" }))
            .collect();
        // The triggering call as OCSF 1.1.0 holds a detection's evidence: the caller
        // (`actor` is top-level only with the host profile, meant for hosts), the API and
        // where the call came from, which CloudTrail gives as an IP address or, for a call
        // an AWS service made, as the service's name.
        let mut evidence = json!({
            "api": { "operation": e.event_name },
            "data": {
                "event_id": e.event_id,
                "instance_type": e.instance_type,
                "image_ids": e.image_ids,
                "user_agent": e.user_agent,
            },
        });
        let mut observables = Vec::new();
        if !e.principal.is_empty() || !e.arn.is_empty() {
            let mut user = serde_json::Map::new();
            if !e.principal.is_empty() {
                user.insert("uid".into(), e.principal.clone().into());
                observables.push(json!({ "name": "evidences.actor.user.uid", "type_id": 21, "type": "User", "value": e.principal }));
            }
            if !e.arn.is_empty() {
                user.insert("name".into(), e.arn.clone().into());
            }
            evidence["actor"] = json!({ "user": user });
        }
        if e.source_ip.parse::<std::net::IpAddr>().is_ok() {
            evidence["src_endpoint"] = json!({ "ip": e.source_ip });
            observables.push(json!({ "name": "evidences.src_endpoint.ip", "type_id": 2, "type": "IP Address", "value": e.source_ip }));
        } else if !e.source_ip.is_empty() {
            evidence["src_endpoint"] = json!({ "svc_name": e.source_ip });
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
                "src_url": cloud.story_url,
            },
            "cloud": { "provider": cloud.provider, "region": e.region, "account": { "uid": e.account, "type_id": cloud.account_type_id, "type": cloud.account_type } },
            "api": { "operation": e.event_name, "service": { "name": cloud.service } },
            "resources": e.instance_ids.iter().map(|i| json!({ "uid": i, "type": cloud.instance_type })).collect::<Vec<_>>(),
            "evidences": [evidence],
            "observables": observables,
            // The key has no attribute of its own (a region, AMI, instance type or
            // principal, by detection), so no observable can point at it.
            "unmapped": { "key": alert.key, "evidence": render::evidence(&alert.evidence) },
        })
    }
}

/// How OCSF findings name a cloud: its provider, the kind of account, the compute
/// service and its instances, and the Splunk story the detections come from.
pub(crate) struct OcsfCloud {
    pub(crate) provider: &'static str,
    /// OCSF 1.1 `account.type_id`: 10 AWS Account, 5 GCP Account (a project), 99 Other
    /// (an Azure subscription has no id of its own).
    pub(crate) account_type_id: u8,
    pub(crate) account_type: &'static str,
    pub(crate) service: &'static str,
    pub(crate) instance_type: &'static str,
    pub(crate) story_url: &'static str,
}

impl OcsfCloud {
    /// The cloud of a detection (by its slug; a custom detection's by how its event
    /// names the operation, see [`Cloud::of_operation`]).
    pub(crate) fn of(detection: &str, operation: &str) -> OcsfCloud {
        let cloud = Cloud::of_slug(detection)
            .map(|(cloud, _)| cloud)
            .unwrap_or_else(|| Cloud::of_operation(operation));
        let cloud_story = "https://research.splunk.com/stories/cloud_cryptomining/";
        match cloud {
            Cloud::Aws => OcsfCloud {
                provider: cloud.provider(),
                account_type_id: 10,
                account_type: "AWS Account",
                service: "ec2.amazonaws.com",
                instance_type: "AWS::EC2::Instance",
                story_url: "https://research.splunk.com/stories/aws_cryptomining/",
            },
            Cloud::Gcp => OcsfCloud {
                provider: cloud.provider(),
                account_type_id: 5,
                account_type: "GCP Account",
                service: "compute.googleapis.com",
                instance_type: "gce_instance",
                story_url: cloud_story,
            },
            Cloud::Azure => OcsfCloud {
                provider: cloud.provider(),
                account_type_id: 99,
                account_type: "Azure Subscription",
                service: "Microsoft.Compute",
                instance_type: "Microsoft.Compute/virtualMachines",
                story_url: cloud_story,
            },
        }
    }
}
