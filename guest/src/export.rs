//! The baseline export format: NDJSON, one entry per line, tagged by `kind`, times in
//! RFC 3339 so a seed file can be written by hand.
//!
//! `minewatch baseline export` writes it and `baseline import` merges it; the Fluent Bit
//! plugin seeds its in-memory baselines from it. Defined here, beside the detections,
//! so every host reads the same format.

use serde::{Deserialize, Serialize};

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExportEntry {
    /// A first-seen set's metadata.
    Set {
        /// Owning tenant.
        tenant: String,
        /// Set name.
        set: String,
        /// Earliest first sighting.
        learning_start: String,
        /// Forget window (0: never).
        forget_after_ms: i64,
        /// Latest sighting of any key.
        latest: String,
    },
    /// One key of a first-seen set.
    Sighting {
        /// Owning tenant.
        tenant: String,
        /// Set name.
        set: String,
        /// The key.
        key: String,
        /// First sighting.
        first_seen: String,
        /// Last sighting.
        last_seen: String,
        /// Sightings counted.
        count: u64,
    },
    /// One counter value in one bucket.
    Counter {
        /// Owning tenant.
        tenant: String,
        /// Counter name.
        counter: String,
        /// The counted key.
        key: String,
        /// Bucket start.
        bucket: String,
        /// Value.
        value: u64,
    },
    /// One histogram entry of a series in one bucket.
    Histogram {
        /// Owning tenant.
        tenant: String,
        /// Series name.
        series: String,
        /// Bucket start.
        bucket: String,
        /// The value.
        value: u64,
        /// How many times it occurs.
        frequency: u64,
    },
}

impl ExportEntry {
    /// The tenant the entry belongs to.
    pub fn tenant(&self) -> &str {
        match self {
            ExportEntry::Set { tenant, .. }
            | ExportEntry::Sighting { tenant, .. }
            | ExportEntry::Counter { tenant, .. }
            | ExportEntry::Histogram { tenant, .. } => tenant,
        }
    }
}
