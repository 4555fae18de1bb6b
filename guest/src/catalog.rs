//! The six detections of Splunk's "AWS Cryptomining" analytic story.

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

/// The catalogue, in the order alerts of one event are emitted.
pub fn detections() -> Vec<Detection> {
    let d =
        |slug: &str, id: &str, name: &str, description: &str, severity, risk, mitre: &[&str]| {
            Detection {
                slug: slug.into(),
                splunk_id: id.into(),
                name: name.into(),
                description: description.into(),
                severity,
                risk_score: risk,
                mitre_attack: mitre.iter().map(|m| m.to_string()).collect(),
            }
        };
    vec![
        d(
            UNSEEN_REGION,
            "ada0f478-84a8-4641-a3f3-d82362d6fd75",
            "EC2 Instance Started In Previously Unseen Region",
            "A successful RunInstances or StartInstances call in an AWS region that no earlier launch used, once the region baseline has learned for 14 days. Miners with stolen keys favour regions nobody watches.",
            Severity::Medium,
            42,
            &["T1535", "T1496"],
        ),
        d(
            UNSEEN_AMI,
            "347ec301-601b-48b9-81aa-9ddf9c829dd3",
            "EC2 Instance Started With Previously Unseen AMI",
            "A successful RunInstances call with a machine image (AMI) no earlier launch used, once the AMI baseline has learned for 7 days. Mining campaigns bring their own images.",
            Severity::Medium,
            42,
            &["T1496"],
        ),
        d(
            UNSEEN_INSTANCE_TYPE,
            "65541c80-03c7-4e05-83c8-1dcd57a2e1ad",
            "EC2 Instance Started With Previously Unseen Instance Type",
            "A successful RunInstances call with an instance type (including one taken from a launch template's response) no earlier launch used, once the baseline has learned for 14 days. GPU and large compute types are the miner's choice.",
            Severity::Medium,
            42,
            &["T1496"],
        ),
        d(
            UNSEEN_USER,
            "22773e84-bac0-4595-b086-20d3f735b4f1",
            "EC2 Instance Started With Previously Unseen User",
            "A successful RunInstances call by a principal (IAM user, or role for assumed-role sessions) that never launched an instance before, once the baseline has learned for 7 days.",
            Severity::Medium,
            42,
            &["T1078.004"],
        ),
        d(
            LAUNCH_SPIKE,
            "2a9b80d3-6340-4345-b5ad-290bf5d0dac4",
            "Abnormally High AWS Instances Launched by User",
            "A principal's successful RunInstances calls in a 10-minute window exceed the mean plus 4 standard deviations of the window counts of the trailing 30 days; fires as soon as the running count crosses.",
            Severity::High,
            64,
            &["T1078.004", "T1496"],
        ),
        d(
            LAUNCH_SPIKE_DENSITY,
            "dec41ad5-d579-42cb-b4c6-f5dbb778bbe5",
            "Abnormally High AWS Instances Launched by User - MLTK",
            "A principal's launches in a 10-minute window have an upper-tail probability below 0.0005 under the distribution of window counts of the trailing 90 days (empirical when the history is large, an exponential fit when short): the DensityFunction model of the Splunk MLTK search.",
            Severity::High,
            64,
            &["T1078.004", "T1496"],
        ),
    ]
}
