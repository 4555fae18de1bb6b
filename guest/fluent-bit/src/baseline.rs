//! The plugin's baselines: first-seen sets, counters and histograms in the instance's memory.
//!
//! The semantics are those of the host's store (`host/src/store/mod.rs`) without a
//! state directory: the forget window through [`apply_sighting`], `set_size` before
//! the observation, `learning_start` the earliest sighting, counters per key and bucket,
//! histograms merged over a range of buckets in ascending value order. [`MemoryBaseline::prune`]
//! drops what the durable store drops, since an instance may live for months. One instance
//! serves one tenant, so there is no tenant level.

use std::collections::BTreeMap;

use minewatch_guest::baseline::{apply_sighting, apply_value_change, merge_histograms};
use minewatch_guest::{Baseline, Observed, Sighting, Timestamp, ValueChange};

/// Counter buckets this far behind a counter's newest bucket are pruned (as the store does).
const COUNTER_RETENTION_MS: i64 = 7 * 86_400_000;

/// A first-seen set.
#[derive(Debug, Default)]
struct Set {
    /// Earliest first sighting ever recorded.
    learning_start: Option<Timestamp>,
    /// The forget window last asked for (0: never).
    forget_after: i64,
    /// Latest sighting of any key.
    latest: Timestamp,
    keys: BTreeMap<String, Sighting>,
}

/// All baselines of the plugin instance.
#[derive(Debug, Default)]
pub struct MemoryBaseline {
    sets: BTreeMap<String, Set>,
    counters: BTreeMap<String, BTreeMap<String, BTreeMap<Timestamp, u64>>>,
    series: BTreeMap<String, BTreeMap<Timestamp, BTreeMap<u64, u64>>>,
}

impl MemoryBaseline {
    /// Merges a set's entry as `minewatch baseline import` does: the earliest learning
    /// start and the latest sighting win, the forget window is taken.
    pub fn merge_set(&mut self, set: &str, start: Timestamp, forget_after: i64, latest: Timestamp) {
        let entry = self.sets.entry(set.to_string()).or_default();
        entry.learning_start = Some(entry.learning_start.map_or(start, |s| s.min(start)));
        entry.forget_after = forget_after;
        entry.latest = entry.latest.max(latest);
    }

    /// Merges a key's sighting, as `minewatch baseline import` does: earliest first,
    /// latest last, counts added.
    pub fn merge_sighting(&mut self, set: &str, key: &str, sighting: Sighting) {
        let entry = self.sets.entry(set.to_string()).or_default();
        let merged = entry.keys.get(key).map_or(sighting, |s| s.merge(sighting));
        entry.keys.insert(key.to_string(), merged);
        let start = sighting.first_seen;
        entry.learning_start = Some(entry.learning_start.map_or(start, |s| s.min(start)));
        entry.latest = entry.latest.max(sighting.last_seen);
    }

    /// Sets one counter value.
    pub fn set_counter(&mut self, counter: &str, key: &str, bucket: Timestamp, value: u64) {
        self.counters
            .entry(counter.to_string())
            .or_default()
            .entry(key.to_string())
            .or_default()
            .insert(bucket, value);
    }

    /// Sets how many values of a series' bucket are `value`.
    pub fn set_frequency(&mut self, series: &str, bucket: Timestamp, value: u64, frequency: u64) {
        self.series
            .entry(series.to_string())
            .or_default()
            .entry(bucket)
            .or_default()
            .insert(value, frequency);
    }

    /// Drops what no detection can still use, as the durable store does: keys more than
    /// twice their set's forget window behind the set's latest sighting, and counter
    /// buckets a week behind their counter's newest.
    pub fn prune(&mut self) {
        for set in self.sets.values_mut() {
            if set.forget_after > 0 {
                let cutoff = set
                    .latest
                    .saturating_sub(set.forget_after.saturating_mul(2));
                set.keys.retain(|_, s| s.last_seen >= cutoff);
            }
        }
        for counter in self.counters.values_mut() {
            let newest = counter
                .values()
                .filter_map(|buckets| buckets.keys().next_back())
                .max()
                .copied();
            if let Some(newest) = newest {
                let cutoff = newest.saturating_sub(COUNTER_RETENTION_MS);
                for buckets in counter.values_mut() {
                    buckets.retain(|bucket, _| *bucket >= cutoff);
                }
                counter.retain(|_, buckets| !buckets.is_empty());
            }
        }
    }

    /// Keys held in a first-seen set.
    pub fn set_len(&self, set: &str) -> usize {
        self.sets.get(set).map_or(0, |s| s.keys.len())
    }
}

impl Baseline for MemoryBaseline {
    fn observe(
        &mut self,
        set: &str,
        forget_after: i64,
        sightings: &[(&str, Timestamp)],
    ) -> Vec<Observed> {
        let entry = self.sets.entry(set.to_string()).or_default();
        entry.forget_after = forget_after;
        sightings
            .iter()
            .map(|&(key, time)| {
                let set_size = entry.keys.len() as u64;
                let previous = entry.keys.get(key).copied();
                let (next, is_new) = apply_sighting(previous, time, forget_after);
                entry.keys.insert(key.to_string(), next);
                let learning_start = entry.learning_start.map_or(time, |s| s.min(time));
                entry.learning_start = Some(learning_start);
                entry.latest = entry.latest.max(time);
                Observed {
                    previous,
                    is_new,
                    set_size,
                    learning_start,
                }
            })
            .collect()
    }

    fn add(&mut self, counter: &str, increments: &[(&str, Timestamp, u64)]) -> Vec<u64> {
        let entry = self.counters.entry(counter.to_string()).or_default();
        increments
            .iter()
            .map(|&(key, bucket, delta)| {
                let value = entry
                    .entry(key.to_string())
                    .or_default()
                    .entry(bucket)
                    .or_insert(0);
                *value += delta;
                *value
            })
            .collect()
    }

    fn record_values(&mut self, series: &str, changes: &[ValueChange]) {
        let entry = self.series.entry(series.to_string()).or_default();
        for change in changes {
            let histogram = entry.entry(change.bucket).or_default();
            apply_value_change(histogram, change);
        }
    }

    fn histogram(&mut self, series: &str, from: Timestamp, to: Timestamp) -> Vec<(u64, u64)> {
        let Some(buckets) = self.series.get(series) else {
            return Vec::new();
        };
        merge_histograms(buckets, from, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observe_follows_the_store_semantics() {
        let mut b = MemoryBaseline::default();
        let day = 86_400_000;
        let first = b.observe(
            "s",
            10 * day,
            &[("a", 5 * day), ("b", 3 * day), ("a", 6 * day)],
        );
        assert!(first[0].is_new && first[1].is_new && !first[2].is_new);
        assert_eq!(
            first.iter().map(|o| o.set_size).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(first[2].learning_start, 3 * day);
        assert_eq!(first[2].previous.unwrap().count, 1);
        // Unseen for more than the forget window: new again, with its old state reported.
        let later = b.observe("s", 10 * day, &[("a", 17 * day)]);
        assert!(later[0].is_new);
        assert_eq!(
            later[0].previous,
            Some(Sighting {
                first_seen: 5 * day,
                last_seen: 6 * day,
                count: 2
            })
        );
    }

    #[test]
    fn counters_and_histograms_follow_the_store_semantics() {
        let mut b = MemoryBaseline::default();
        assert_eq!(
            b.add("c", &[("k", 0, 1), ("k", 0, 2), ("k", 600, 1)]),
            [1, 3, 1]
        );
        let change = |bucket, previous, current| ValueChange {
            bucket,
            previous,
            current,
        };
        b.record_values("h", &[change(0, 0, 1), change(0, 1, 2), change(10, 0, 1)]);
        b.record_values("h", &[change(20, 0, 5)]);
        assert_eq!(b.histogram("h", 0, 10), [(1, 1), (2, 1)]);
        assert_eq!(b.histogram("h", 0, 20), [(1, 1), (2, 1), (5, 1)]);
        assert_eq!(b.histogram("h", 20, 0), []);
        assert_eq!(b.histogram("missing", 0, 20), []);
    }

    #[test]
    fn prune_drops_what_the_store_drops() {
        let day = 86_400_000;
        let mut b = MemoryBaseline::default();
        b.observe(
            "s",
            10 * day,
            &[("old", 0), ("kept", 5 * day), ("new", 25 * day)],
        );
        b.observe("never", 0, &[("old", 0), ("new", 25 * day)]);
        b.add("c", &[("k", 0, 1), ("k", 8 * day, 1), ("j", day, 1)]);
        b.prune();
        assert_eq!(b.set_len("s"), 2);
        assert_eq!(b.set_len("never"), 2);
        // A week behind the newest bucket (8 days): bucket 0 goes, day 1 stays.
        assert_eq!(
            b.add("c", &[("k", 0, 0), ("k", 8 * day, 0), ("j", day, 0)]),
            [0, 1, 1]
        );
    }
}
