//! Domain types of the detector, mirroring the WIT `types` interface.
//!
//! The detection logic works only with these plain Rust types, so it compiles and
//! runs natively as well as inside the component; `bindings.rs` converts between
//! them and the WIT types at the component edge, and the host does the same on its side.

use serde::Serialize;

/// Milliseconds since the Unix epoch, UTC.
pub type Timestamp = i64;

/// One minute, one hour and one day in [`Timestamp`] units.
pub const MINUTE_MS: i64 = 60_000;
/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The value the host found at one declared field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// Missing or null.
    Absent,
    /// A string.
    Text(String),
    /// Every string reached through an array step, in order.
    Texts(Vec<String>),
    /// Any other JSON value, as compact JSON text.
    Other(String),
}

/// One event projected to the detector's declared fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// One entry per declared field path, in declaration order.
    pub fields: Vec<Field>,
}

/// Which events a detector wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscription {
    /// CloudTrail `eventSource`.
    pub event_source: String,
    /// CloudTrail `eventName` values.
    pub event_names: Vec<String>,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Context only.
    Informational,
    /// Worth a look.
    Low,
    /// Likely misuse.
    Medium,
    /// Likely compromise.
    High,
    /// Act now.
    Critical,
}

/// One detection and its catalogue entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detection {
    /// Stable short name, e.g. `ec2-unseen-region`.
    pub slug: String,
    /// The Splunk detection id this re-implements.
    pub splunk_id: String,
    /// Human title.
    pub name: String,
    /// What it catches, one paragraph.
    pub description: String,
    /// How bad a finding is.
    pub severity: Severity,
    /// 0-100 risk score.
    pub risk_score: u8,
    /// MITRE ATT&CK technique ids.
    pub mitre_attack: Vec<String>,
}

/// What a detector tells the host before any event is sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectorInfo {
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// The detections it implements.
    pub detections: Vec<Detection>,
    /// The events it wants.
    pub subscriptions: Vec<Subscription>,
    /// Field paths to project.
    pub fields: Vec<String>,
    /// Default settings as a JSON object.
    pub default_settings: String,
}

impl DetectorInfo {
    /// Every `(eventSource, eventName)` pair the detector subscribes to.
    pub fn subscribed_events(&self) -> Vec<(String, String)> {
        self.subscriptions
            .iter()
            .flat_map(|s| {
                s.event_names
                    .iter()
                    .map(|n| (s.event_source.clone(), n.clone()))
            })
            .collect()
    }
}

/// The state of a key in a first-seen set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Sighting {
    /// First sighting (event time).
    pub first_seen: Timestamp,
    /// Latest sighting (event time).
    pub last_seen: Timestamp,
    /// Sightings so far.
    pub count: u64,
}

impl Sighting {
    /// Two records of the same key as one, as a baseline import merges them: the
    /// earliest first sighting, the latest last one, the larger count (so merging a
    /// record into itself, an import run twice, changes nothing).
    pub fn merge(self, other: Sighting) -> Sighting {
        Sighting {
            first_seen: self.first_seen.min(other.first_seen),
            last_seen: self.last_seen.max(other.last_seen),
            count: self.count.max(other.count),
        }
    }
}

/// Evidence for an alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Evidence {
    /// A value that the baseline had not seen.
    Unseen(UnseenEvidence),
    /// An abnormal launch count.
    Rate(RateEvidence),
}

/// Why a previously unseen value alerted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnseenEvidence {
    /// Name of the first-seen set.
    pub baseline: String,
    /// Keys in the set before this sighting.
    pub baseline_size: u64,
    /// When the set started learning.
    pub learning_start: Timestamp,
    /// The key's state before, when it had been seen and then forgotten.
    pub previous: Option<Sighting>,
}

/// Why a launch count alerted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateEvidence {
    /// Start of the 10-minute window.
    pub window_start: Timestamp,
    /// Launches in the window so far.
    pub count: u64,
    /// Windows of history behind the statistics.
    pub history_windows: u64,
    /// Mean window count of the history.
    pub mean: f64,
    /// Sample standard deviation of the history.
    pub stdev: f64,
    /// The count that had to be exceeded.
    pub threshold: f64,
    /// Upper-tail probability of the count (density rule).
    pub tail_probability: Option<f64>,
    /// How the threshold was derived.
    pub method: String,
}

/// Fields of the triggering event an analyst needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventSummary {
    /// CloudTrail `eventID`; Google's `insertId`; Azure's `eventDataId`, or
    /// `correlationId|resourceId` in Event Hubs records (one id for every record of a launch).
    pub event_id: String,
    /// CloudTrail `eventName`; Google's `methodName`; Azure's `operationName`.
    pub event_name: String,
    /// The normalised principal.
    pub principal: String,
    /// The principal as logged: `userIdentity.arn`, `principalEmail`, Azure's caller.
    pub arn: String,
    /// Account the event belongs to: AWS account, Google project id, Azure subscription.
    pub account: String,
    /// Region (a Google zone without its letter; an Azure location).
    pub region: String,
    /// Caller IP address.
    pub source_ip: String,
    /// Caller user agent.
    pub user_agent: String,
    /// Instances launched or started.
    pub instance_ids: Vec<String>,
    /// Instance type (machine type, VM size) launched.
    pub instance_type: String,
    /// Machine images launched.
    pub image_ids: Vec<String>,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Detection slug.
    pub detection: String,
    /// Index of the triggering event in its batch.
    pub event_index: u32,
    /// The new value, or the principal for rate detections.
    pub key: String,
    /// One sentence for a human.
    pub message: String,
    /// Event time.
    pub time: Timestamp,
    /// The triggering event.
    pub event: EventSummary,
    /// Why it fired.
    pub evidence: Evidence,
}

/// An event the detector could not use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    /// Index of the event in its batch.
    pub event_index: u32,
    /// A reason from a small fixed set (`bad-time`, `bad-field`).
    pub reason: String,
    /// Detail for the log.
    pub detail: String,
}

/// The result of one batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Outcome {
    /// Alerts, in event order.
    pub alerts: Vec<Alert>,
    /// Events that could not be used.
    pub skipped: Vec<Skip>,
    /// Events that were failed calls.
    pub failed_calls: u32,
}

impl Outcome {
    /// Every one of `events` skipped as `bad-batch` with `detail`: the batch itself could
    /// not be read.
    pub fn refused(events: usize, detail: &str) -> Outcome {
        Outcome {
            skipped: (0..events as u32)
                .map(|event_index| Skip {
                    event_index,
                    reason: "bad-batch".to_string(),
                    detail: detail.to_string(),
                })
                .collect(),
            ..Outcome::default()
        }
    }
}
