//! Google Cloud Audit Logs (Admin Activity) of two projects.
//!
//! Normal: two engineers, a CI service account and the managed-instance-group service
//! agent launch instances in known zones, machine types and images (every one used on
//! day 0, so nothing is new once the baselines have learned); each launch is an
//! `operation.first` entry followed by its `operation.last`; autoscaling adds bursts of
//! up to 8 launches and now and then a bulkInsert with its per-instance inserts; deletes,
//! stops and firewall changes go beside them.
//!
//! Incidents (after day 20): the CI account's key launches 30 high-memory instances in
//! a new region from a new image within six minutes (region, machine type, image, both
//! rate rules); a new engineer launches one ordinary instance (new user). Benign
//! neighbours that must give nothing: a new principal's insert refused synchronously in
//! a new region, an accepted launch whose `last` entry fails, an 8-instance bulkInsert.

use rand::RngExt;
use rand::seq::IndexedRandom;
use serde_json::json;

use super::{Activity, fmt_fraction, office_time};
use crate::ExpectedAlert;
use crate::records::{DAY, Rng, hex};

const PROJECTS: [&str; 2] = ["acme-analytics-prod", "acme-web-dev"];
const ZONES: [&str; 4] = [
    "us-central1-a",
    "us-central1-c",
    "europe-west1-b",
    "europe-west1-c",
];
const TYPES: [&str; 3] = ["e2-medium", "e2-standard-4", "n2-standard-8"];
const IMAGES: [&str; 3] = [
    "projects/debian-cloud/global/images/family/debian-12",
    "https://www.googleapis.com/compute/v1/projects/cos-cloud/global/images/family/cos-stable",
    "projects/acme-analytics-prod/global/images/app-2026-01",
];
const ENGINEERS: [&str; 2] = ["dana@acme.example", "eli@acme.example"];
const DEPLOYER: &str = "deployer@acme-analytics-prod.iam.gserviceaccount.com";
const MIG_AGENT: &str = "731822301428@cloudservices.gserviceaccount.com";
const OFFICE_IP: &str = "198.51.100.23";
const ATTACKER_IP: &str = "203.0.113.66";

/// One `compute.instances.*` call.
struct Insert<'a> {
    t_ms: i64,
    principal: &'a str,
    project: &'a str,
    zone: &'a str,
    machine_type: &'a str,
    image: &'a str,
    ip: &'a str,
    agent: &'a str,
}

struct Gcp<'a> {
    rng: Rng,
    activity: &'a mut Activity,
}

pub(super) fn generate(start: i64, days: u32, incidents: bool, rng: Rng, activity: &mut Activity) {
    let mut gcp = Gcp { rng, activity };
    gcp.normal(start, days);
    if incidents {
        gcp.incidents(start);
    }
}

impl Gcp<'_> {
    fn normal(&mut self, start: i64, days: u32) {
        // Day 0: every zone, machine type and image, by every launcher.
        let launchers = [ENGINEERS[0], ENGINEERS[1], DEPLOYER, MIG_AGENT];
        for (i, zone) in ZONES.iter().enumerate() {
            for (j, machine_type) in TYPES.iter().enumerate() {
                let t = start + 3600 * (8 + i as i64) + 600 * j as i64;
                let principal = launchers[(i + j) % launchers.len()];
                self.launch(t * 1000, principal, zone, machine_type, IMAGES[(i + j) % 3]);
            }
        }
        for day in 1..days {
            for engineer in ENGINEERS {
                for _ in 0..self.rng.random_range(0..=3) {
                    let t = office_time(&mut self.rng, start, day);
                    self.random_launch(t, engineer);
                }
            }
            for _ in 0..self.rng.random_range(2..=6) {
                let t = start + i64::from(day) * DAY + self.rng.random_range(0..DAY);
                self.random_launch(t, DEPLOYER);
            }
            // The instance group's work, one piece in each quarter of the day at most,
            // so no 10-minute window holds more than 8 of its launches.
            let quarter = |rng: &mut Rng, q: i64| {
                start + i64::from(day) * DAY + q * DAY / 4 + rng.random_range(0..DAY / 4 - 600)
            };
            for q in 0..self.rng.random_range(1..=2) {
                let t = quarter(&mut self.rng, q);
                let n = self.rng.random_range(3..=8);
                self.burst(t, MIG_AGENT, n);
            }
            if self.rng.random_bool(0.2) {
                let t = quarter(&mut self.rng, 2);
                self.bulk(t, 3);
            }
            for _ in 0..self.rng.random_range(5..=15) {
                let t = office_time(&mut self.rng, start, day);
                self.other_call(t);
            }
        }
    }

    fn incidents(&mut self, start: i64) {
        // The CI account's key, from elsewhere: 30 launches in six minutes, aligned to a
        // 10-minute window.
        let t0 = start + 30 * DAY + 2 * 3600 + 60;
        for i in 0..30 {
            let insert = Insert {
                t_ms: (t0 + i * 12) * 1000,
                principal: DEPLOYER,
                project: PROJECTS[0],
                zone: "asia-southeast1-b",
                machine_type: "n1-highmem-16",
                image: "projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts",
                ip: ATTACKER_IP,
                agent: "google-cloud-sdk gcloud/466.0.0 command/gcloud.compute.instances.create",
            };
            self.insert(&insert, "beta", Outcome::Done);
        }
        for (detection, key) in [
            ("gcp-unseen-region", "asia-southeast1"),
            ("gcp-unseen-machine-type", "n1-highmem-16"),
            ("gcp-unseen-image", "ubuntu-os-cloud/family/ubuntu-2204-lts"),
            ("gcp-launch-spike", DEPLOYER),
            ("gcp-launch-spike-density", DEPLOYER),
        ] {
            self.activity
                .expected
                .push(ExpectedAlert::new(detection, key));
        }
        // A new engineer's first, ordinary launch.
        let t = start + 33 * DAY + 10 * 3600;
        self.launch(
            t * 1000,
            "intern@acme.example",
            ZONES[0],
            TYPES[0],
            IMAGES[0],
        );
        self.activity
            .expected
            .push(ExpectedAlert::new("gcp-unseen-user", "intern@acme.example"));
        // Benign: refused at once (no operation) for a new principal in a new region.
        let refused = Insert {
            t_ms: (start + 27 * DAY + 11 * 3600) * 1000,
            principal: "auditor@acme.example",
            project: PROJECTS[1],
            zone: "asia-east1-a",
            machine_type: "c2-standard-60",
            image: IMAGES[0],
            ip: OFFICE_IP,
            agent: "Mozilla/5.0 (console)",
        };
        self.insert(&refused, "v1", Outcome::Refused);
        // Benign: accepted, then failed for quota.
        let quota = Insert {
            t_ms: (start + 35 * DAY + 9 * 3600) * 1000,
            principal: ENGINEERS[0],
            project: PROJECTS[0],
            zone: ZONES[1],
            machine_type: TYPES[2],
            image: IMAGES[1],
            ip: OFFICE_IP,
            agent: "google-cloud-sdk gcloud/466.0.0",
        };
        self.insert(&quota, "v1", Outcome::FailsLater);
        // Benign: an 8-instance bulkInsert by the instance-group agent.
        self.bulk(start + 36 * DAY + 20 * 3600 + 60, 8);
    }

    fn random_launch(&mut self, t: i64, principal: &str) {
        let zone = *ZONES.choose(&mut self.rng).expect("zones");
        let machine_type = *TYPES.choose(&mut self.rng).expect("types");
        let image = *IMAGES.choose(&mut self.rng).expect("images");
        let t_ms = t * 1000 + self.rng.random_range(0..1000);
        self.launch(t_ms, principal, zone, machine_type, image);
    }

    fn launch(&mut self, t_ms: i64, principal: &str, zone: &str, machine_type: &str, image: &str) {
        let (ip, agent) = match principal {
            MIG_AGENT => ("", "GCE Managed Instance Group"),
            DEPLOYER => (
                "35.192.0.17",
                "Terraform/1.9.5 terraform-provider-google/5.40.0",
            ),
            _ => (
                OFFICE_IP,
                "google-cloud-sdk gcloud/466.0.0 command/gcloud.compute.instances.create",
            ),
        };
        let project = if principal == ENGINEERS[1] {
            PROJECTS[1]
        } else {
            PROJECTS[0]
        };
        let insert = Insert {
            t_ms,
            principal,
            project,
            zone,
            machine_type,
            image,
            ip,
            agent,
        };
        self.insert(&insert, "v1", Outcome::Done);
    }

    /// `n` launches by `principal` within five minutes of `t`.
    fn burst(&mut self, t: i64, principal: &str, n: u32) {
        let zone = *ZONES.choose(&mut self.rng).expect("zones");
        let machine_type = *TYPES.choose(&mut self.rng).expect("types");
        for _ in 0..n {
            let at = (t + self.rng.random_range(0..300)) * 1000;
            self.launch(at, principal, zone, machine_type, IMAGES[2]);
        }
    }

    /// A bulkInsert of `count` instances and the per-instance inserts it causes.
    fn bulk(&mut self, t: i64, count: u32) {
        let zone = *ZONES.choose(&mut self.rng).expect("zones");
        let machine_type = *TYPES.choose(&mut self.rng).expect("types");
        let project = PROJECTS[0];
        let operation = format!("operation-{}-{}", t * 1000, hex(&mut self.rng, 12));
        let entry = json!({
            "insertId": format!("-{}", hex(&mut self.rng, 12)),
            "logName": format!("projects/{project}/logs/cloudaudit.googleapis.com%2Factivity"),
            "operation": {"id": operation, "producer": "compute.googleapis.com", "first": true, "last": true},
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "authenticationInfo": {"principalEmail": MIG_AGENT},
                "requestMetadata": {"callerSuppliedUserAgent": "GCE Managed Instance Group"},
                "serviceName": "compute.googleapis.com",
                "methodName": "v1.compute.instances.bulkInsert",
                "resourceName": format!("projects/{project}/zones/{zone}/instances"),
                "request": {
                    "@type": "type.googleapis.com/compute.instances.bulkInsert",
                    "count": count.to_string(),
                    "namePattern": "batch-####",
                    "instanceProperties": {
                        "machineType": machine_type,
                        "disks": [{"boot": true, "autoDelete": true, "initializeParams": {"sourceImage": IMAGES[2]}}],
                    },
                },
                "resourceLocation": {"currentLocations": [zone]},
            },
            "resource": {"type": "audited_resource", "labels": {"project_id": project, "service": "compute.googleapis.com", "method": "v1.compute.instances.bulkInsert"}},
            "timestamp": fmt_fraction(t * 1000, 6),
            "severity": "NOTICE",
        });
        self.activity.records.push((t, entry));
        for i in 0..count {
            let at = (t + 5 + i64::from(i)) * 1000;
            self.launch(at, MIG_AGENT, zone, machine_type, IMAGES[2]);
        }
    }

    fn insert(&mut self, insert: &Insert<'_>, version: &str, outcome: Outcome) {
        let name = format!("vm-{}", hex(&mut self.rng, 8));
        let operation = format!("operation-{}-{}", insert.t_ms, hex(&mut self.rng, 12));
        let zone = insert.zone;
        let project = insert.project;
        let mut metadata = json!({"callerSuppliedUserAgent": insert.agent});
        if !insert.ip.is_empty() {
            metadata["callerIp"] = insert.ip.into();
        }
        let request = json!({
            "@type": "type.googleapis.com/compute.instances.insert",
            "name": name,
            "machineType": format!("https://www.googleapis.com/compute/{version}/projects/{project}/zones/{zone}/machineTypes/{}", insert.machine_type),
            "disks": [
                {"boot": true, "autoDelete": true, "initializeParams": {"sourceImage": insert.image, "diskSizeGb": "20"}},
                {"boot": false, "autoDelete": true, "initializeParams": {"diskSizeGb": "100"}},
            ],
            "networkInterfaces": [{"network": format!("projects/{project}/global/networks/default")}],
        });
        let mut entry = json!({
            "insertId": format!("-{}", hex(&mut self.rng, 12)),
            "logName": format!("projects/{project}/logs/cloudaudit.googleapis.com%2Factivity"),
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "authenticationInfo": {"principalEmail": insert.principal},
                "requestMetadata": metadata,
                "serviceName": "compute.googleapis.com",
                "methodName": format!("{version}.compute.instances.insert"),
                "authorizationInfo": [{"permission": "compute.instances.create", "granted": outcome != Outcome::Refused,
                    "resourceAttributes": {"service": "compute", "name": format!("projects/{project}/zones/{zone}/instances/{name}"), "type": "compute.instances"}}],
                "resourceName": format!("projects/{project}/zones/{zone}/instances/{name}"),
                "request": request,
                "resourceLocation": {"currentLocations": [zone]},
            },
            "resource": {"type": "gce_instance", "labels": {"instance_id": format!("{}", self.rng.random_range(10u64.pow(17)..10u64.pow(18))), "project_id": project, "zone": zone}},
            "timestamp": fmt_fraction(insert.t_ms, 6),
            "severity": "NOTICE",
            "receiveTimestamp": fmt_fraction(insert.t_ms + 400, 9),
        });
        if outcome == Outcome::Refused {
            entry["severity"] = "ERROR".into();
            entry["protoPayload"]["status"] = json!({"code": 7, "message": "PERMISSION_DENIED"});
            self.activity.records.push((insert.t_ms / 1000, entry));
            return;
        }
        entry["operation"] =
            json!({"id": operation, "producer": "compute.googleapis.com", "first": true});
        entry["protoPayload"]["response"] = json!({
            "@type": "type.googleapis.com/operation", "id": format!("{}", insert.t_ms),
            "name": operation, "operationType": "insert", "status": "RUNNING",
            "zone": format!("https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}"),
        });
        let mut last = entry.clone();
        let done_ms = insert.t_ms + self.rng.random_range(20_000..90_000);
        last["insertId"] = format!("-{}", hex(&mut self.rng, 12)).into();
        last["operation"] =
            json!({"id": operation, "producer": "compute.googleapis.com", "last": true});
        last["protoPayload"]["request"] =
            json!({"@type": "type.googleapis.com/compute.instances.insert"});
        last["protoPayload"]
            .as_object_mut()
            .expect("payload")
            .remove("response");
        last["timestamp"] = fmt_fraction(done_ms, 6).into();
        if outcome == Outcome::FailsLater {
            last["severity"] = "ERROR".into();
            last["protoPayload"]["status"] = json!({"code": 8, "message": "QUOTA_EXCEEDED"});
        }
        self.activity.records.push((insert.t_ms / 1000, entry));
        self.activity.records.push((done_ms / 1000, last));
    }

    /// A call no detection subscribes to.
    fn other_call(&mut self, t: i64) {
        let (method, resource) = *[
            ("v1.compute.instances.delete", "instances"),
            ("v1.compute.instances.stop", "instances"),
            ("v1.compute.firewalls.insert", "firewalls"),
            ("v1.compute.disks.createSnapshot", "disks"),
        ]
        .choose(&mut self.rng)
        .expect("calls");
        let principal = *[ENGINEERS[0], ENGINEERS[1], DEPLOYER]
            .choose(&mut self.rng)
            .expect("principals");
        let project = PROJECTS[0];
        let zone = *ZONES.choose(&mut self.rng).expect("zones");
        let entry = json!({
            "insertId": format!("-{}", hex(&mut self.rng, 12)),
            "logName": format!("projects/{project}/logs/cloudaudit.googleapis.com%2Factivity"),
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "authenticationInfo": {"principalEmail": principal},
                "requestMetadata": {"callerIp": OFFICE_IP},
                "serviceName": "compute.googleapis.com",
                "methodName": method,
                "resourceName": format!("projects/{project}/zones/{zone}/{resource}/r-{}", hex(&mut self.rng, 6)),
            },
            "resource": {"type": "gce_instance", "labels": {"project_id": project, "zone": zone}},
            "timestamp": fmt_fraction(t * 1000, 6),
            "severity": "NOTICE",
        });
        self.activity.records.push((t, entry));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Accepted (`first`) and done (`last`).
    Done,
    /// Refused at once: one ERROR entry without an operation.
    Refused,
    /// Accepted, then the `last` entry fails.
    FailsLater,
}
