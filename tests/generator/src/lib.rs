//! Seeded CloudTrail scenario generator: the synthetic workload of minewatch's
//! tests, benchmarks and sample data — weeks of normal multi-account AWS
//! activity (humans, CI roles, autoscaling, applications, AWS services), with
//! Google Cloud and Azure audit logs beside it on request ([`Spec::other_clouds`]),
//! injected cryptojacking incidents, the exact list of alerts the detector is
//! expected to raise (an oracle derived from what was injected, never from
//! detection logic), and writing a scenario to disk as NDJSON, a CloudTrail S3
//! archive, EventBridge envelopes, CloudWatch Logs envelopes, `lookup-events`
//! pages, or NDJSON with garbage lines.
//!
//! Output is a pure function of [`Spec`]: the same spec gives byte-identical
//! events and files. The `minewatch-generate` binary writes one from the command
//! line; tests and benchmarks call [`generate`] and [`write`]:
//!
//! ```no_run
//! use minewatch_generator::{Layout, Spec, generate, write};
//!
//! # fn main() -> anyhow::Result<()> {
//! let scenario = generate(&Spec { days: 30, ..Spec::default() });
//! let written = write(&scenario, Layout::Ndjson, std::path::Path::new("trail.ndjson"))?;
//! assert_eq!(written.records, scenario.events.len());
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod actors;
mod background;
mod clouds;
mod delivery;
mod ec2;
mod incidents;
mod layout;
mod normal;
mod records;
#[cfg(test)]
mod tests;

use chrono::{DateTime, TimeZone, Utc};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

pub use layout::{Layout, WriteSummary, write};

/// The detection slugs expected alerts name, from the detector's own catalogue.
pub use minewatch_guest::catalog::{
    LAUNCH_SPIKE, LAUNCH_SPIKE_DENSITY, UNSEEN_AMI, UNSEEN_INSTANCE_TYPE, UNSEEN_REGION,
    UNSEEN_USER,
};

/// The accounts of the simulated organisation: prod, dev and shared services.
pub const ACCOUNTS: [&str; 3] = [actors::PROD, actors::DEV, actors::SHARED];

/// What to generate: seed, length, start, volume and whether to inject incidents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Seed of every random choice; the same spec always gives the same output.
    pub seed: u64,
    /// Number of simulated days (at least 21 when `incidents` is set).
    pub days: u32,
    /// Start of day 0 (event times run from here for `days` days).
    pub start: DateTime<Utc>,
    /// Approximate number of distinct normal records per day, before duplicates and incidents.
    pub events_per_day: u32,
    /// Whether to inject the cryptojacking incidents (and the golden AMI rollout) after day 20.
    pub incidents: bool,
    /// Whether Google Cloud and Azure audit logs join CloudTrail (each with its own
    /// incidents when `incidents` is set); their records only go in NDJSON layouts.
    pub other_clouds: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            seed: 7,
            days: 45,
            start: Utc
                .with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
                .single()
                .expect("valid default start"),
            events_per_day: 1000,
            incidents: true,
            other_clouds: false,
        }
    }
}

/// A generated scenario: audit-log records in delivery order plus the expected alerts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scenario {
    /// CloudTrail records in delivery order (slightly out of time order, ~2% exact duplicates).
    pub events: Vec<serde_json::Value>,
    /// Alerts the detector must raise with default settings, sorted and deduplicated.
    pub expected: Vec<ExpectedAlert>,
}

/// One alert the detector is expected to raise: a detection name and the alert key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExpectedAlert {
    /// Detection name, one of the `UNSEEN_*` / `LAUNCH_SPIKE*` constants.
    pub detection: String,
    /// Alert key: a region, image, instance type or principal.
    pub key: String,
}

impl ExpectedAlert {
    /// Builds an expected alert from a detection name and key.
    pub fn new(detection: &str, key: impl Into<String>) -> Self {
        Self {
            detection: detection.to_string(),
            key: key.into(),
        }
    }
}

/// Generates the scenario described by `spec`; panics if incidents are requested with fewer than 21 days.
pub fn generate(spec: &Spec) -> Scenario {
    if spec.incidents {
        assert!(
            spec.days >= 21,
            "minewatch_generator::generate: incidents are placed after day 20, so a spec with incidents \
             needs days >= 21 (got days = {}); set incidents = false for shorter scenarios",
            spec.days
        );
    }
    let start = spec.start.timestamp();
    let world = actors::World::new(&mut stream(spec.seed, 1));
    let schedule = spec
        .incidents
        .then(|| incidents::Schedule::new(start, spec.days));
    let rollout = schedule.as_ref().map(incidents::Schedule::rollout);
    let mut recs = normal::generate(
        &world,
        stream(spec.seed, 2),
        normal::Window {
            start,
            days: spec.days,
            events_per_day: spec.events_per_day,
        },
        rollout,
    );
    let mut expected = match &schedule {
        Some(s) => incidents::inject(&world, stream(spec.seed, 3), s, &mut recs),
        None => Vec::new(),
    };
    if spec.other_clouds {
        let other = clouds::generate(
            start,
            spec.days,
            spec.incidents,
            stream(spec.seed, 5),
            stream(spec.seed, 6),
        );
        recs.extend(other.records);
        expected.extend(other.expected);
    }
    expected.sort();
    expected.dedup();
    let events = delivery::deliver(recs, &mut stream(spec.seed, 4));
    Scenario { events, expected }
}

/// One independent random stream of the seed, so that parts do not shift each other.
fn stream(seed: u64, n: u64) -> records::Rng {
    let mut rng = records::Rng::seed_from_u64(seed);
    rng.set_stream(n);
    rng
}
