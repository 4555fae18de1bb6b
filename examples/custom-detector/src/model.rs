//! Plain Rust mirrors of the WIT types the detection uses.
//!
//! The WIT types that `wit_bindgen::generate!` produces exist only when compiling to
//! wasm32, so the logic works with these instead and `bindings.rs` converts at the edge.

/// Milliseconds since the Unix epoch, UTC (WIT `timestamp`).
pub type Timestamp = i64;

/// The value the host found at one declared field path (WIT `field`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// The path is missing or null.
    Absent,
    /// A string.
    Text(String),
    /// Every string reached through a `[]` step, in order.
    Texts(Vec<String>),
    /// Any other JSON value, as compact JSON text.
    Other(String),
}

/// A key's state in a first-seen set (WIT `sighting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sighting {
    /// First sighting (event time).
    pub first_seen: Timestamp,
    /// Latest sighting (event time).
    pub last_seen: Timestamp,
    /// Sightings so far.
    pub count: u64,
}

/// What a first-seen set knew when a key was observed (WIT `baseline.observed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// The key's state before this observation; `None` the first time.
    pub previous: Option<Sighting>,
    /// Keys in the set before this observation.
    pub set_size: u64,
    /// Earliest sighting the set has recorded, this one included.
    pub learning_start: Timestamp,
}

/// The host-side state the detection needs: the `observe` import of WIT `baseline`.
///
/// The component implements it with the import; the unit tests with a map.
pub trait Baseline {
    /// Records `(key, time)` sightings in the first-seen set `set`, in order, and returns
    /// what the set knew before each. `forget_after` is in milliseconds; 0 never forgets.
    fn observe(
        &mut self,
        set: &str,
        forget_after: i64,
        sightings: &[(&str, Timestamp)],
    ) -> Vec<Observed>;
}

/// Fields of the triggering event an analyst needs (WIT `event-summary`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// CloudTrail `eventID`.
    pub event_id: String,
    /// The principal: `userIdentity.arn`.
    pub principal: String,
    /// `recipientAccountId`.
    pub account: String,
    /// `awsRegion`.
    pub region: String,
    /// `sourceIPAddress`.
    pub source_ip: String,
    /// `userAgent`.
    pub user_agent: String,
    /// Instances launched.
    pub instance_ids: Vec<String>,
    /// Instance type launched.
    pub instance_type: String,
    /// AMIs launched.
    pub image_ids: Vec<String>,
}

/// One alert of the detection (a WIT `alert` with `unseen` evidence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Index of the triggering event in the batch.
    pub event_index: u32,
    /// The principal that launched the GPU instance.
    pub key: String,
    /// One sentence for a human.
    pub message: String,
    /// Event time.
    pub time: Timestamp,
    /// The triggering event.
    pub event: Summary,
    /// Name of the first-seen set of GPU launchers.
    pub baseline: String,
    /// Principals in that set before this launch.
    pub baseline_size: u64,
    /// When that set started learning.
    pub learning_start: Timestamp,
    /// The principal's earlier GPU launches; `None` for its first.
    pub previous: Option<Sighting>,
}

/// An event the detection could not use (WIT `skip`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// Index of the event in the batch.
    pub event_index: u32,
    /// `bad-time` or `bad-field`.
    pub reason: String,
    /// What was wrong, for the host's log.
    pub detail: String,
}

/// The result of one batch (WIT `outcome`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Alerts, in event order.
    pub findings: Vec<Finding>,
    /// Events that could not be used.
    pub skipped: Vec<Skip>,
    /// Failed calls (`errorCode` set): seen, not learned.
    pub failed_calls: u32,
}
