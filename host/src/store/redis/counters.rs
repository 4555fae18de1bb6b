//! Counters and series in Redis: `add` (answered by `add.lua`), `record_values`
//! (queued, folded per series) and `histogram` (read once per batch, then kept up to
//! date with the batch's own changes). A failed call answers conservatively: each
//! counter at its own increment, no history.

use anyhow::anyhow;
use minewatch_guest::baseline::{apply_value_change, merge_histograms};
use minewatch_guest::{Timestamp, ValueChange};

use super::RedisStore;
use super::cache::CachedSeries;
use super::scripts::Script;

impl RedisStore {
    pub(super) fn add(
        &mut self,
        tenant: &str,
        counter: &str,
        increments: &[(&str, Timestamp, u64)],
    ) -> Vec<u64> {
        let mut args = vec![
            self.key(tenant, "counter", counter),
            self.journal(),
            self.add_mark(),
        ];
        for (key, bucket, delta) in increments {
            args.extend([(*key).to_string(), bucket.to_string(), delta.to_string()]);
        }
        let conservative = || increments.iter().map(|(_, _, d)| *d).collect();
        let Some(answer) = self.call(Script::Add, args) else {
            return conservative();
        };
        match redis::from_redis_value::<Vec<u64>>(answer) {
            Ok(values) if values.len() == increments.len() => values,
            Ok(_) => {
                self.fail(anyhow!(
                    "Redis answered a counter call with the wrong count"
                ));
                conservative()
            }
            Err(error) => {
                self.fail(error.into());
                conservative()
            }
        }
    }

    pub(super) fn record_values(&mut self, tenant: &str, series: &str, changes: &[ValueChange]) {
        if self.failure.is_some() {
            return;
        }
        let key = self.key(tenant, "series", series);
        if let Some(cached) = self.series.get_mut(&key) {
            for c in changes
                .iter()
                .filter(|c| (cached.lo..=cached.hi).contains(&c.bucket))
            {
                let histogram = cached.buckets.entry(c.bucket).or_default();
                apply_value_change(histogram, c);
            }
        }
        // Marks count calls, not queued groups: where a group is cut depends on the
        // cache, which a rerun of the batch may find warmer.
        self.records += 1;
        let (mark, journal) = (format!("record|{}", self.records), self.journal());
        let (_, args) = self
            .queued
            .records
            .entry(key)
            .or_insert_with(|| (journal, Vec::new()));
        for c in changes {
            args.extend([
                mark.clone(),
                c.bucket.to_string(),
                c.previous.to_string(),
                c.current.to_string(),
            ]);
        }
    }

    /// Merges a series' buckets `from..=to`. The first read of a series in a batch
    /// fetches its buckets (one round trip); later reads of the batch are answered from
    /// them with the batch's own changes applied, so history reflects other sidecars
    /// as of the start of the batch. Counters, which decide crossings, are always exact.
    pub(super) fn histogram(
        &mut self,
        tenant: &str,
        series: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<(u64, u64)> {
        if from > to {
            return Vec::new();
        }
        let key = self.key(tenant, "series", series);
        let covered = self
            .series
            .get(&key)
            .is_some_and(|c| c.lo <= from && to <= c.hi);
        if !covered {
            let (lo, hi) = match self.series.get(&key) {
                Some(c) => (c.lo.min(from), c.hi.max(to)),
                None => (from, to),
            };
            let args = vec![key.clone(), lo.to_string(), hi.to_string()];
            let Some(answer) = self.call(Script::Buckets, args) else {
                return Vec::new();
            };
            match redis::from_redis_value::<Vec<(Timestamp, Vec<(u64, u64)>)>>(answer) {
                Ok(buckets) => {
                    let buckets = buckets
                        .into_iter()
                        .map(|(bucket, values)| (bucket, values.into_iter().collect()))
                        .collect();
                    self.series
                        .insert(key.clone(), CachedSeries { lo, hi, buckets });
                }
                Err(error) => {
                    self.fail(error.into());
                    return Vec::new();
                }
            }
        }
        let cached = &self.series[&key];
        merge_histograms(&cached.buckets, from, to)
    }
}
