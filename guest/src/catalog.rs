//! The detections: Splunk's "AWS Cryptomining" story for CloudTrail, and the same six
//! kinds over Google Cloud and Azure audit logs (Splunk's "Cloud Cryptomining" story).
//!
//! Every cloud has its own six slugs, so alerts, settings of custom hosts, baselines and
//! risk scores never mix clouds; the AWS slugs are the original ones.

use serde::{Deserialize, Serialize};

use crate::model::{Detection, Severity};

/// `ec2-unseen-region`.
pub const UNSEEN_REGION: &str = "ec2-unseen-region";
/// `ec2-unseen-ami`.
pub const UNSEEN_AMI: &str = "ec2-unseen-ami";
/// `ec2-unseen-instance-type`.
pub const UNSEEN_INSTANCE_TYPE: &str = "ec2-unseen-instance-type";
/// `ec2-unseen-user`.
pub const UNSEEN_USER: &str = "ec2-unseen-user";
/// `ec2-launch-spike`.
pub const LAUNCH_SPIKE: &str = "ec2-launch-spike";
/// `ec2-launch-spike-density`.
pub const LAUNCH_SPIKE_DENSITY: &str = "ec2-launch-spike-density";

/// The audit log an event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    /// AWS CloudTrail.
    Aws,
    /// Google Cloud Audit Logs (Admin Activity).
    Gcp,
    /// Azure Activity Log.
    Azure,
}

/// The six kinds of detection, in the order alerts of one event are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A launch in a region no earlier launch used.
    UnseenRegion,
    /// A launch from a machine image no earlier launch used.
    UnseenImage,
    /// A launch of an instance type (machine type, VM size) no earlier launch used.
    UnseenInstanceType,
    /// A launch by a principal that never launched before.
    UnseenUser,
    /// A principal's launches in a window above mean + k standard deviations.
    LaunchSpike,
    /// A principal's launches in a window in the far upper tail of their density.
    LaunchSpikeDensity,
}

impl Kind {
    /// Every kind, in catalogue order.
    pub const ALL: [Kind; 6] = [
        Kind::UnseenRegion,
        Kind::UnseenImage,
        Kind::UnseenInstanceType,
        Kind::UnseenUser,
        Kind::LaunchSpike,
        Kind::LaunchSpikeDensity,
    ];

    /// Position in [`Kind::ALL`]: the order of one event's alerts.
    pub fn order(self) -> usize {
        self as usize
    }
}

impl Cloud {
    /// Every cloud, in catalogue order.
    pub const ALL: [Cloud; 3] = [Cloud::Aws, Cloud::Gcp, Cloud::Azure];

    /// The slug of this cloud's detection of `kind`.
    pub fn slug(self, kind: Kind) -> &'static str {
        const SLUGS: [[&str; 6]; 3] = [
            [
                UNSEEN_REGION,
                UNSEEN_AMI,
                UNSEEN_INSTANCE_TYPE,
                UNSEEN_USER,
                LAUNCH_SPIKE,
                LAUNCH_SPIKE_DENSITY,
            ],
            [
                "gcp-unseen-region",
                "gcp-unseen-image",
                "gcp-unseen-machine-type",
                "gcp-unseen-user",
                "gcp-launch-spike",
                "gcp-launch-spike-density",
            ],
            [
                "azure-unseen-region",
                "azure-unseen-image",
                "azure-unseen-vm-size",
                "azure-unseen-user",
                "azure-launch-spike",
                "azure-launch-spike-density",
            ],
        ];
        SLUGS[self as usize][kind.order()]
    }

    /// The cloud and kind of a slug of [`detections`].
    pub fn of_slug(slug: &str) -> Option<(Cloud, Kind)> {
        Cloud::ALL.into_iter().find_map(|cloud| {
            Kind::ALL
                .into_iter()
                .find(|kind| cloud.slug(*kind) == slug)
                .map(|kind| (cloud, kind))
        })
    }

    /// The cloud whose audit log names an operation this way (an alert's
    /// `event.event-name`): Google's methods are dotted (`v1.compute.instances.insert`),
    /// Azure's are resource-provider paths (`Microsoft.Compute/virtualMachines/write`),
    /// CloudTrail's are single words (`RunInstances`).
    pub fn of_operation(name: &str) -> Cloud {
        if name.contains('/') {
            Cloud::Azure
        } else if name.contains('.') {
            Cloud::Gcp
        } else {
            Cloud::Aws
        }
    }

    /// The name OCSF gives the provider (`cloud.provider`).
    pub fn provider(self) -> &'static str {
        match self {
            Cloud::Aws => "AWS",
            Cloud::Gcp => "GCP",
            Cloud::Azure => "Azure",
        }
    }

    /// What a machine image, an instance type and an account are called in this cloud.
    pub fn nouns(self) -> Nouns {
        match self {
            Cloud::Aws => Nouns {
                image: "AMI",
                instance_type: "instance type",
                account: "AWS account",
            },
            Cloud::Gcp => Nouns {
                image: "image",
                instance_type: "machine type",
                account: "project",
            },
            Cloud::Azure => Nouns {
                image: "image",
                instance_type: "VM size",
                account: "subscription",
            },
        }
    }

    /// The prefix of this cloud's baseline names: empty for AWS (the names baselines had
    /// before other clouds), `gcp/` and `azure/` otherwise.
    pub fn baseline_prefix(self) -> &'static str {
        match self {
            Cloud::Aws => "",
            Cloud::Gcp => "gcp/",
            Cloud::Azure => "azure/",
        }
    }
}

/// A cloud's words for what its launches carry, for messages.
#[derive(Debug, Clone, Copy)]
pub struct Nouns {
    /// `AMI`, `image`.
    pub image: &'static str,
    /// `instance type`, `machine type`, `VM size`.
    pub instance_type: &'static str,
    /// `AWS account`, `project`, `subscription`.
    pub account: &'static str,
}

/// The catalogue: the six AWS detections, then Google Cloud's and Azure's, each cloud
/// in [`Kind::ALL`] order.
pub fn detections() -> Vec<Detection> {
    Cloud::ALL
        .into_iter()
        .flat_map(|cloud| {
            Kind::ALL
                .into_iter()
                .map(move |kind| detection(cloud, kind))
        })
        .collect()
}

/// One detection of the catalogue.
pub fn detection(cloud: Cloud, kind: Kind) -> Detection {
    let (id, name, description, severity, risk, mitre): (&str, String, String, _, u8, &[&str]) =
        match cloud {
            Cloud::Aws => aws(kind),
            Cloud::Gcp | Cloud::Azure => other_cloud(cloud, kind),
        };
    Detection {
        slug: cloud.slug(kind).into(),
        splunk_id: id.into(),
        name,
        description,
        severity,
        risk_score: risk,
        mitre_attack: mitre.iter().map(|m| m.to_string()).collect(),
    }
}

type Entry = (
    &'static str,
    String,
    String,
    Severity,
    u8,
    &'static [&'static str],
);

fn aws(kind: Kind) -> Entry {
    let (id, name, description, severity, risk, mitre): (_, &str, &str, _, _, &'static [&str]) =
        match kind {
            Kind::UnseenRegion => (
                "ada0f478-84a8-4641-a3f3-d82362d6fd75",
                "EC2 Instance Started In Previously Unseen Region",
                "A successful RunInstances or StartInstances call in an AWS region that no earlier launch used, once the region baseline has learned for 14 days. Miners with stolen keys favour regions nobody watches.",
                Severity::Medium,
                42,
                &["T1535", "T1496"],
            ),
            Kind::UnseenImage => (
                "347ec301-601b-48b9-81aa-9ddf9c829dd3",
                "EC2 Instance Started With Previously Unseen AMI",
                "A successful RunInstances call with a machine image (AMI) no earlier launch used, once the AMI baseline has learned for 7 days. Mining campaigns bring their own images.",
                Severity::Medium,
                42,
                &["T1496"],
            ),
            Kind::UnseenInstanceType => (
                "65541c80-03c7-4e05-83c8-1dcd57a2e1ad",
                "EC2 Instance Started With Previously Unseen Instance Type",
                "A successful RunInstances call with an instance type (including one taken from a launch template's response) no earlier launch used, once the baseline has learned for 14 days. GPU and large compute types are the miner's choice.",
                Severity::Medium,
                42,
                &["T1496"],
            ),
            Kind::UnseenUser => (
                "22773e84-bac0-4595-b086-20d3f735b4f1",
                "EC2 Instance Started With Previously Unseen User",
                "A successful RunInstances call by a principal (IAM user, or role for assumed-role sessions) that never launched an instance before, once the baseline has learned for 7 days.",
                Severity::Medium,
                42,
                &["T1078.004"],
            ),
            Kind::LaunchSpike => (
                "2a9b80d3-6340-4345-b5ad-290bf5d0dac4",
                "Abnormally High AWS Instances Launched by User",
                "A principal's successful RunInstances calls in a 10-minute window exceed the mean plus 4 standard deviations of the window counts of the trailing 30 days; fires as soon as the running count crosses.",
                Severity::High,
                64,
                &["T1078.004", "T1496"],
            ),
            Kind::LaunchSpikeDensity => (
                "dec41ad5-d579-42cb-b4c6-f5dbb778bbe5",
                "Abnormally High AWS Instances Launched by User - MLTK",
                "A principal's launches in a 10-minute window have an upper-tail probability below 0.0005 under the distribution of window counts of the trailing 90 days (empirical when the history is large, an exponential fit when short): the DensityFunction model of the Splunk MLTK search.",
                Severity::High,
                64,
                &["T1078.004", "T1496"],
            ),
        };
    (id, name.into(), description.into(), severity, risk, mitre)
}

/// Google Cloud's and Azure's detections: the "Cloud Cryptomining" searches where Splunk
/// has one (the standard-deviation rate rule has none), same risk as their AWS twins.
fn other_cloud(cloud: Cloud, kind: Kind) -> Entry {
    let (what, launch, by) = match cloud {
        Cloud::Gcp => (
            "Google Cloud",
            "A successful compute.instances.insert or bulkInsert (v1, beta or alpha)",
            "principal (authenticationInfo.principalEmail)",
        ),
        _ => (
            "Azure",
            "A Microsoft.Compute virtualMachines or virtualMachineScaleSets write that did not fail",
            "caller (UPN, or object id of a service principal)",
        ),
    };
    let nouns = cloud.nouns();
    let (id, name, description, severity, risk, mitre): (_, String, String, _, _, &'static [&str]) =
        match kind {
            Kind::UnseenRegion => (
                "fa4089e2-50e3-40f7-8469-d2cc1564ca59",
                format!("Cloud Compute Instance Created In Previously Unused Region ({what})"),
                format!("{launch} in a region no earlier launch used, once the region baseline has learned for 14 days."),
                Severity::Medium,
                42,
                &["T1535", "T1496"],
            ),
            Kind::UnseenImage => (
                "bc24922d-987c-4645-b288-f8c73ec194c4",
                format!("Cloud Compute Instance Created With Previously Unseen Image ({what})"),
                format!("{launch} from a machine image no earlier launch used, once the image baseline has learned for 7 days; launches without an image (an existing disk) are not judged."),
                Severity::Medium,
                42,
                &["T1496"],
            ),
            Kind::UnseenInstanceType => (
                "c6ddbf53-9715-49f3-bb4c-fb2e8a309cda",
                format!("Cloud Compute Instance Created With Previously Unseen Instance Type ({what})"),
                format!("{launch} of a {} no earlier launch used, once the baseline has learned for 14 days.", nouns.instance_type),
                Severity::Medium,
                42,
                &["T1496"],
            ),
            Kind::UnseenUser => (
                "37a0ec8d-827e-4d6d-8025-cedf31f3a149",
                format!("Cloud Compute Instance Created By Previously Unseen User ({what})"),
                format!("{launch} by a {by} that never launched an instance before, once the baseline has learned for 7 days."),
                Severity::Medium,
                42,
                &["T1078.004"],
            ),
            Kind::LaunchSpike => (
                "",
                format!("Abnormally High Instances Launched by User ({what})"),
                "A principal's launches in a 10-minute window exceed the mean plus 4 standard deviations of the window counts of the trailing 30 days; fires as soon as the running count crosses.".to_string(),
                Severity::High,
                64,
                &["T1078.004", "T1496"],
            ),
            Kind::LaunchSpikeDensity => (
                "f2361e9f-3928-496c-a556-120cd4223a65",
                format!("Abnormally High Number Of Cloud Instances Launched ({what})"),
                "A principal's launches in a 10-minute window have an upper-tail probability below 0.0005 under the distribution of window counts of the trailing 90 days (the density model of the Splunk search).".to_string(),
                Severity::High,
                64,
                &["T1078.004", "T1496"],
            ),
        };
    (id, name, description, severity, risk, mitre)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slug_names_one_cloud_and_kind() {
        let all = detections();
        assert_eq!(all.len(), 18);
        for d in &all {
            let (cloud, kind) = Cloud::of_slug(&d.slug).unwrap();
            assert_eq!(cloud.slug(kind), d.slug);
        }
        assert_eq!(all[0].slug, UNSEEN_REGION);
        assert_eq!(Cloud::of_slug("s3-unseen-bucket"), None);
    }

    #[test]
    fn operations_name_their_cloud() {
        assert_eq!(Cloud::of_operation("RunInstances"), Cloud::Aws);
        assert_eq!(
            Cloud::of_operation("beta.compute.instances.insert"),
            Cloud::Gcp
        );
        assert_eq!(
            Cloud::of_operation("MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE"),
            Cloud::Azure
        );
    }
}
