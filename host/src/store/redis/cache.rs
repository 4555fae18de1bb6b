//! What this process remembers of Redis between calls: the first-seen keys known to be
//! known (kept across batches, up to [`CACHE_LIMIT`] keys), and the series read in the
//! current batch.

use std::collections::BTreeMap;

use hashbrown::HashMap;
use minewatch_guest::baseline::apply_sighting;
use minewatch_guest::{Observed, Sighting, Timestamp};

use super::RedisStore;

/// Keys cached across all sets before the cache is emptied.
pub(super) const CACHE_LIMIT: usize = 1 << 20;

/// What this process knows of one first-seen set.
#[derive(Default)]
pub(super) struct CachedSet {
    pub(super) keys: HashMap<Box<str>, Sighting>,
    pub(super) set_size: u64,
    pub(super) learning_start: Option<Timestamp>,
}

/// A series' buckets read in this batch: `lo..=hi` as of the read, plus this batch's
/// own changes.
pub(super) struct CachedSeries {
    pub(super) lo: Timestamp,
    pub(super) hi: Timestamp,
    pub(super) buckets: BTreeMap<Timestamp, BTreeMap<u64, u64>>,
}

impl RedisStore {
    /// Caches keys Redis reported known: a key seen twice is likely seen again, while a
    /// key seen once (an event id in a dedup set) would only crowd the cache.
    pub(super) fn remember(
        &mut self,
        key: String,
        sightings: &[(&str, Timestamp)],
        observed: &[Observed],
    ) {
        if self.cached_keys >= CACHE_LIMIT {
            self.cache.clear();
            self.cached_keys = 0;
        }
        let cached = self.cache.entry(key).or_default();
        for (&(k, time), o) in sightings.iter().zip(observed) {
            cached.set_size = o.set_size + u64::from(o.is_new);
            cached.learning_start = Some(o.learning_start);
            if let Some(previous) = o.previous.filter(|_| !o.is_new) {
                let next = apply_sighting(Some(previous), time, i64::MAX).0;
                if cached.keys.insert(k.into(), next).is_none() {
                    self.cached_keys += 1;
                }
            }
        }
    }
}
