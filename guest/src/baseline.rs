//! The host-side baseline operations the detections rely on.
//!
//! Inside the component these are WIT imports (`bindings.rs`); natively the host, or
//! a test, passes any implementation. Semantics are those of the WIT `baseline` interface.

use std::collections::BTreeMap;

use crate::model::{Sighting, Timestamp};

/// What a first-seen set knew when a key was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// The key's state before this observation, including a forgotten one the host still holds.
    pub previous: Option<Sighting>,
    /// True when the key was absent or forgotten.
    pub is_new: bool,
    /// Keys in the set before this observation.
    pub set_size: u64,
    /// Earliest first sighting the set has recorded, this one included.
    pub learning_start: Timestamp,
}

/// One value of a series moving between two numbers in a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueChange {
    /// The histogram bucket (start time).
    pub bucket: Timestamp,
    /// The value before; 0 adds a value.
    pub previous: u64,
    /// The value after; 0 removes one.
    pub current: u64,
}

/// Host-side state, scoped to one tenant.
pub trait Baseline {
    /// Records sightings in a first-seen set, in order; `forget_after` 0 never forgets.
    fn observe(
        &mut self,
        set: &str,
        forget_after: i64,
        sightings: &[(&str, Timestamp)],
    ) -> Vec<Observed>;
    /// Adds `(key, bucket, delta)` increments to a counter; returns each value after its addition.
    fn add(&mut self, counter: &str, increments: &[(&str, Timestamp, u64)]) -> Vec<u64>;
    /// Applies value changes to a series' per-bucket histograms.
    fn record_values(&mut self, series: &str, changes: &[ValueChange]);
    /// Merged `(value, frequency)` histogram over buckets `from..=to`, ascending by value.
    fn histogram(&mut self, series: &str, from: Timestamp, to: Timestamp) -> Vec<(u64, u64)>;
}

/// Applies one observation to a key's state with the forget-window rule of the WIT contract.
///
/// Returns the new state and whether the key counts as new. Shared by every
/// [`Baseline`] implementation so they agree to the millisecond.
pub fn apply_sighting(
    previous: Option<Sighting>,
    time: Timestamp,
    forget_after: i64,
) -> (Sighting, bool) {
    match previous {
        Some(p) if forget_after <= 0 || time - p.last_seen <= forget_after => (
            Sighting {
                first_seen: p.first_seen.min(time),
                last_seen: p.last_seen.max(time),
                count: p.count + 1,
            },
            false,
        ),
        _ => (
            Sighting {
                first_seen: time,
                last_seen: time,
                count: 1,
            },
            true,
        ),
    }
}

/// Applies one value change to its bucket's histogram (value → frequency): the previous
/// value loses one occurrence (dropped at zero), the current one gains one. Shared by
/// every [`Baseline`] implementation.
pub fn apply_value_change(histogram: &mut BTreeMap<u64, u64>, change: &ValueChange) {
    if change.previous > 0
        && let Some(frequency) = histogram.get_mut(&change.previous)
    {
        *frequency -= 1;
        if *frequency == 0 {
            histogram.remove(&change.previous);
        }
    }
    if change.current > 0 {
        *histogram.entry(change.current).or_insert(0) += 1;
    }
}

/// Merges the per-bucket histograms of buckets `from..=to` into `(value, frequency)`
/// pairs, ascending by value, as [`Baseline::histogram`] answers.
pub fn merge_histograms(
    buckets: &BTreeMap<Timestamp, BTreeMap<u64, u64>>,
    from: Timestamp,
    to: Timestamp,
) -> Vec<(u64, u64)> {
    let mut merged: BTreeMap<u64, u64> = BTreeMap::new();
    if from <= to {
        for histogram in buckets.range(from..=to).map(|(_, h)| h) {
            for (value, frequency) in histogram {
                *merged.entry(*value).or_insert(0) += frequency;
            }
        }
    }
    merged.into_iter().collect()
}
