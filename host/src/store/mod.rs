//! Host-side baselines: first-seen sets, counters and histograms, per tenant.
//!
//! The whole state lives in hashbrown maps (the hot cache every import call hits);
//! with a state directory, every change is also written to an embedded
//! [redb](https://docs.rs/redb) database at [`BaselineStore::commit`], which fsyncs
//! before it returns, so a baseline acknowledged as learned survives `kill -9`. On
//! open the database is read back into the maps.
//!
//! Tenants are the top-level namespace: a detector names sets, counters and series,
//! and [`TenantBaseline`] pins every call to one tenant, so no name reaches another's.
//!
//! [`BaselineBackend`] is what the host runs detectors over: this embedded store, or
//! [`redis::RedisStore`], which a fleet of sidecars shares.

mod durable;
mod exchange;
pub mod redis;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use hashbrown::{HashMap, HashSet};
use minewatch_guest::baseline::{apply_sighting, apply_value_change, merge_histograms};
use minewatch_guest::{Baseline, Observed, Sighting, Timestamp, ValueChange};

use durable::Durable;
pub use exchange::ImportSummary;

/// Counter buckets older than this behind a counter's newest bucket are dropped by [`BaselineStore::prune`].
const COUNTER_RETENTION_MS: i64 = 7 * 86_400_000;
/// Commits between two automatic prunes.
const PRUNE_EVERY_COMMITS: u64 = 256;

/// Where baselines live, as the host drives it around each batch.
///
/// A batch is one `detect` call: [`begin_batch`](BaselineBackend::begin_batch), the
/// detector's calls through [`tenant`](BaselineBackend::tenant), then
/// [`take_failure`](BaselineBackend::take_failure) and, once the alerts are out,
/// [`commit`](BaselineBackend::commit). A backend whose calls can fail (a network store)
/// answers a failed call conservatively (nothing new, no history), reports the failure
/// through `take_failure`, and must give the same answers when the host runs the same
/// batch again.
pub trait BaselineBackend: Send {
    /// A view pinned to one tenant: every name the detector passes stays inside it.
    fn tenant<'a>(&'a mut self, tenant: &'a str) -> Box<dyn Baseline + 'a>;
    /// Starts a batch; `retry` runs the previous batch again after a failure.
    fn begin_batch(&mut self, retry: bool) {
        let _ = retry;
    }
    /// Why a call of the current batch failed, if one did; its answers are then unusable.
    fn take_failure(&mut self) -> Option<anyhow::Error> {
        None
    }
    /// True when calls can fail, so the host must keep a batch until it succeeds.
    fn can_fail(&self) -> bool {
        false
    }
    /// Makes every change so far durable (or shared).
    ///
    /// # Errors
    /// The write failed; the changes stay pending for the next commit.
    fn commit(&mut self) -> Result<()>;
    /// Makes one tenant's changes durable, leaving other tenants' half-done batches
    /// pending; a store used by one pipeline alone commits everything.
    ///
    /// # Errors
    /// As [`commit`](BaselineBackend::commit).
    fn commit_tenant(&mut self, tenant: &str) -> Result<()> {
        let _ = tenant;
        self.commit()
    }
    /// The keys of one of `tenant`'s first-seen sets with their sightings, sorted by
    /// key: for host-side readers (incidents); a detector cannot list a set. A failed
    /// call answers nothing and is reported by `take_failure`.
    fn keys(&mut self, tenant: &str, set: &str) -> Vec<(String, Sighting)>;
    /// Starts or continues the episode of the activity's key in `tenant`'s set at its
    /// event time: it continues while activity comes within the window of its latest,
    /// otherwise a new one starts. Atomic: among processes sharing the store exactly one
    /// starts a given episode. A failed call starts nothing and is reported by
    /// `take_failure`.
    fn episode(&mut self, tenant: &str, activity: Activity<'_>) -> Episode;
}

/// Activity of one key that starts or continues its episode (see
/// [`BaselineBackend::episode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity<'a> {
    /// The first-seen set whose keys have episodes.
    pub set: &'a str,
    /// The key.
    pub key: &'a str,
    /// Event time of the activity (ms).
    pub time: Timestamp,
    /// How close (ms) to the episode's latest activity this must come to continue it.
    pub window: i64,
}

/// The state of an episode (see [`BaselineBackend::episode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Episode {
    /// How many episodes the key has had, this one included (0: unknown after a failure).
    pub generation: u64,
    /// Event time the episode started (ms); it never moves.
    pub start: Timestamp,
    /// This call started it.
    pub started: bool,
}

impl BaselineBackend for BaselineStore {
    fn tenant<'a>(&'a mut self, tenant: &'a str) -> Box<dyn Baseline + 'a> {
        Box::new(BaselineStore::tenant(self, tenant))
    }

    fn commit(&mut self) -> Result<()> {
        BaselineStore::commit(self)
    }

    fn commit_tenant(&mut self, tenant: &str) -> Result<()> {
        BaselineStore::commit_tenant(self, tenant)
    }

    fn keys(&mut self, tenant: &str, set: &str) -> Vec<(String, Sighting)> {
        BaselineStore::keys(self, tenant, set)
    }

    fn episode(&mut self, tenant: &str, activity: Activity<'_>) -> Episode {
        let Activity {
            set,
            key,
            time,
            window,
        } = activity;
        let state = self.tenants.entry(tenant.to_string()).or_default();
        let entry = state.sets.entry(set.to_string()).or_default();
        entry.forget_after = window;
        let episode = match entry.keys.get(key) {
            Some(s) if time - s.last_seen <= window => Episode {
                generation: s.count,
                start: s.first_seen,
                started: false,
            },
            stored => Episode {
                generation: stored.map_or(0, |s| s.count) + 1,
                start: time,
                started: true,
            },
        };
        let last_seen = match entry.keys.get(key) {
            Some(s) if !episode.started => s.last_seen.max(time),
            _ => time,
        };
        entry.keys.insert(
            key.into(),
            Sighting {
                first_seen: episode.start,
                last_seen,
                count: episode.generation,
            },
        );
        entry.learning_start = Some(entry.learning_start.map_or(time, |s| s.min(time)));
        entry.latest = entry.latest.max(time);
        self.mark(|| Dirty::Set {
            tenant: tenant.to_string(),
            set: set.to_string(),
        });
        self.mark(|| Dirty::Sighting {
            tenant: tenant.to_string(),
            set: set.to_string(),
            key: key.into(),
        });
        episode
    }
}

/// All baselines of all tenants.
#[derive(Default)]
pub struct BaselineStore {
    tenants: HashMap<String, TenantState>,
    durable: Option<Durable>,
    dirty: HashSet<Dirty>,
    commits: u64,
}

/// One tenant's state.
#[derive(Debug, Default, Clone)]
pub(crate) struct TenantState {
    pub(crate) sets: HashMap<String, SetState>,
    pub(crate) counters: HashMap<String, HashMap<Box<str>, BTreeMap<Timestamp, u64>>>,
    pub(crate) series: HashMap<String, BTreeMap<Timestamp, BTreeMap<u64, u64>>>,
}

/// A first-seen set.
#[derive(Debug, Default, Clone)]
pub(crate) struct SetState {
    /// Earliest first sighting ever recorded.
    pub(crate) learning_start: Option<Timestamp>,
    /// The forget window the detector last asked for (0: never).
    pub(crate) forget_after: i64,
    /// Latest sighting of any key.
    pub(crate) latest: Timestamp,
    pub(crate) keys: HashMap<Box<str>, Sighting>,
}

/// A changed entry to write at the next commit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Dirty {
    Set {
        tenant: String,
        set: String,
    },
    Sighting {
        tenant: String,
        set: String,
        key: Box<str>,
    },
    Counter {
        tenant: String,
        counter: String,
        key: Box<str>,
        bucket: Timestamp,
    },
    Histogram {
        tenant: String,
        series: String,
        bucket: Timestamp,
        value: u64,
    },
}

impl Dirty {
    fn tenant(&self) -> &str {
        match self {
            Dirty::Set { tenant, .. }
            | Dirty::Sighting { tenant, .. }
            | Dirty::Counter { tenant, .. }
            | Dirty::Histogram { tenant, .. } => tenant,
        }
    }
}

/// What `baseline show` prints about a first-seen set.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SetSummary {
    /// Tenant owning the set.
    pub tenant: String,
    /// Set name, as the detector chose it.
    pub set: String,
    /// Keys held.
    pub keys: usize,
    /// Earliest first sighting.
    pub learning_start: Option<String>,
    /// Latest sighting.
    pub latest: Option<String>,
    /// Forget window in days (0: never).
    pub forget_days: f64,
}

impl std::fmt::Debug for BaselineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaselineStore")
            .field("tenants", &self.tenants.len())
            .field("durable", &self.durable.is_some())
            .field("dirty", &self.dirty.len())
            .finish()
    }
}

impl BaselineStore {
    /// A throw-away store that keeps nothing on disk.
    pub fn in_memory() -> BaselineStore {
        BaselineStore::default()
    }

    /// Opens (or creates) the durable store in `dir` and loads it.
    ///
    /// # Errors
    /// The directory cannot be created, or the database cannot be opened or read
    /// (another minewatch holding it, a corrupt file).
    pub fn open(dir: &Path) -> Result<BaselineStore> {
        let (durable, tenants) = Durable::open(dir)?;
        let mut store = BaselineStore {
            tenants,
            durable: Some(durable),
            ..BaselineStore::default()
        };
        store.prune();
        store.commit()?;
        Ok(store)
    }

    /// Opens the durable store in `dir` only if something was learned there before
    /// (for commands that read baselines: a missing directory is a mistake, not an
    /// empty store, and nothing is created).
    ///
    /// # Errors
    /// `dir` holds no baseline store; as [`BaselineStore::open`].
    pub fn open_existing(dir: &Path) -> Result<BaselineStore> {
        anyhow::ensure!(
            Durable::exists(dir),
            "no baselines in {}: nothing was learned there (learn with `minewatch baseline \
             build --state {0}`, or run or serve with --state {0}; or pass the right --state)",
            dir.display()
        );
        BaselineStore::open(dir)
    }

    /// The tenants holding baselines, sorted.
    pub fn tenant_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tenants.keys().cloned().collect();
        names.sort();
        names
    }

    /// True when changes are written to disk.
    pub fn is_durable(&self) -> bool {
        self.durable.is_some()
    }

    /// A view pinned to one tenant, implementing the detector's [`Baseline`].
    pub fn tenant<'a>(&'a mut self, tenant: &'a str) -> TenantBaseline<'a> {
        TenantBaseline {
            store: self,
            tenant,
        }
    }

    /// Writes every change since the last commit and fsyncs; a no-op in memory.
    ///
    /// # Errors
    /// The write or the fsync failed; the changes stay pending for the next commit.
    pub fn commit(&mut self) -> Result<()> {
        let Some(durable) = &self.durable else {
            return Ok(());
        };
        if self.dirty.is_empty() {
            return Ok(());
        }
        durable.write(&self.tenants, &self.dirty)?;
        self.dirty.clear();
        self.commits += 1;
        if self.commits.is_multiple_of(PRUNE_EVERY_COMMITS) {
            self.prune();
        }
        Ok(())
    }

    /// Like [`BaselineStore::commit`], for one tenant's changes only. Tenants run on
    /// their own threads; one tenant's commit must not make another's half-processed
    /// batch durable before that batch's alerts are written.
    ///
    /// # Errors
    /// The write or the fsync failed; the changes stay pending for the next commit.
    pub fn commit_tenant(&mut self, tenant: &str) -> Result<()> {
        let Some(durable) = &self.durable else {
            return Ok(());
        };
        let mine: HashSet<Dirty> = self.dirty.extract_if(|d| d.tenant() == tenant).collect();
        if mine.is_empty() {
            return Ok(());
        }
        if let Err(error) = durable.write(&self.tenants, &mine) {
            self.dirty.extend(mine);
            return Err(error);
        }
        self.commits += 1;
        if self.commits.is_multiple_of(PRUNE_EVERY_COMMITS) {
            self.prune();
        }
        Ok(())
    }

    /// Drops what no detector can still use: keys more than twice their set's forget
    /// window behind the set's latest sighting, and counter buckets a week behind.
    pub fn prune(&mut self) {
        let track = self.durable.is_some();
        for (tenant, state) in &mut self.tenants {
            for (name, set) in &mut state.sets {
                if set.forget_after <= 0 {
                    continue;
                }
                let cutoff = set
                    .latest
                    .saturating_sub(set.forget_after.saturating_mul(2));
                set.keys.retain(|key, s| {
                    let keep = s.last_seen >= cutoff;
                    if !keep && track {
                        self.dirty.insert(Dirty::Sighting {
                            tenant: tenant.clone(),
                            set: name.clone(),
                            key: key.clone(),
                        });
                    }
                    keep
                });
            }
            for (name, counter) in &mut state.counters {
                let Some(newest) = counter
                    .values()
                    .filter_map(|b| b.keys().next_back())
                    .max()
                    .copied()
                else {
                    continue;
                };
                let cutoff = newest - COUNTER_RETENTION_MS;
                for (key, buckets) in counter.iter_mut() {
                    let old: Vec<Timestamp> = buckets.range(..cutoff).map(|(b, _)| *b).collect();
                    for bucket in old {
                        buckets.remove(&bucket);
                        if track {
                            self.dirty.insert(Dirty::Counter {
                                tenant: tenant.clone(),
                                counter: name.clone(),
                                key: key.clone(),
                                bucket,
                            });
                        }
                    }
                }
                counter.retain(|_, buckets| !buckets.is_empty());
            }
        }
    }

    /// Every first-seen set, sorted by tenant and name.
    pub fn sets(&self) -> Vec<SetSummary> {
        let mut out: Vec<SetSummary> = self
            .tenants
            .iter()
            .flat_map(|(tenant, state)| {
                state.sets.iter().map(move |(name, set)| SetSummary {
                    tenant: tenant.clone(),
                    set: name.clone(),
                    keys: set.keys.len(),
                    learning_start: set.learning_start.map(minewatch_guest::time::format_time),
                    latest: set
                        .learning_start
                        .map(|_| minewatch_guest::time::format_time(set.latest)),
                    forget_days: set.forget_after as f64 / 86_400_000.0,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.tenant, &a.set).cmp(&(&b.tenant, &b.set)));
        out
    }

    /// The keys of one set with their sightings, sorted by key.
    pub fn keys(&self, tenant: &str, set: &str) -> Vec<(String, Sighting)> {
        let mut keys: Vec<(String, Sighting)> = self
            .tenants
            .get(tenant)
            .and_then(|t| t.sets.get(set))
            .map(|s| s.keys.iter().map(|(k, v)| (k.to_string(), *v)).collect())
            .unwrap_or_default();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys
    }

    fn mark(&mut self, dirty: impl FnOnce() -> Dirty) {
        if self.durable.is_some() {
            self.dirty.insert(dirty());
        }
    }
}

/// The baselines of one tenant: what a detector's imports reach.
pub struct TenantBaseline<'a> {
    store: &'a mut BaselineStore,
    tenant: &'a str,
}

impl TenantBaseline<'_> {
    fn state(&mut self) -> &mut TenantState {
        if !self.store.tenants.contains_key(self.tenant) {
            self.store
                .tenants
                .insert(self.tenant.to_string(), TenantState::default());
        }
        self.store
            .tenants
            .get_mut(self.tenant)
            .expect("inserted above")
    }
}

impl Baseline for TenantBaseline<'_> {
    fn observe(
        &mut self,
        set: &str,
        forget_after: i64,
        sightings: &[(&str, Timestamp)],
    ) -> Vec<Observed> {
        let tenant = self.tenant;
        let state = self.state();
        if !state.sets.contains_key(set) {
            state.sets.insert(set.to_string(), SetState::default());
        }
        let entry = state.sets.get_mut(set).expect("inserted above");
        entry.forget_after = forget_after;
        let mut out = Vec::with_capacity(sightings.len());
        let mut changed = Vec::with_capacity(sightings.len());
        for &(key, time) in sightings {
            let set_size = entry.keys.len() as u64;
            let previous = entry.keys.get(key).copied();
            let (next, is_new) = apply_sighting(previous, time, forget_after);
            match entry.keys.get_mut(key) {
                Some(slot) => *slot = next,
                None => {
                    entry.keys.insert(key.into(), next);
                }
            }
            let learning_start = entry.learning_start.map_or(time, |s| s.min(time));
            entry.learning_start = Some(learning_start);
            entry.latest = entry.latest.max(time);
            out.push(Observed {
                previous,
                is_new,
                set_size,
                learning_start,
            });
            changed.push(key);
        }
        if self.store.durable.is_some() {
            self.store.mark(|| Dirty::Set {
                tenant: tenant.to_string(),
                set: set.to_string(),
            });
            for key in changed {
                self.store.mark(|| Dirty::Sighting {
                    tenant: tenant.to_string(),
                    set: set.to_string(),
                    key: key.into(),
                });
            }
        }
        out
    }

    fn add(&mut self, counter: &str, increments: &[(&str, Timestamp, u64)]) -> Vec<u64> {
        let tenant = self.tenant;
        let state = self.state();
        if !state.counters.contains_key(counter) {
            state.counters.insert(counter.to_string(), HashMap::new());
        }
        let entry = state.counters.get_mut(counter).expect("inserted above");
        let mut out = Vec::with_capacity(increments.len());
        for &(key, bucket, delta) in increments {
            if !entry.contains_key(key) {
                entry.insert(key.into(), BTreeMap::new());
            }
            let value = entry
                .get_mut(key)
                .expect("inserted above")
                .entry(bucket)
                .or_insert(0);
            *value += delta;
            out.push(*value);
        }
        for &(key, bucket, _) in increments {
            self.store.mark(|| Dirty::Counter {
                tenant: tenant.to_string(),
                counter: counter.to_string(),
                key: key.into(),
                bucket,
            });
        }
        out
    }

    fn record_values(&mut self, series: &str, changes: &[ValueChange]) {
        let tenant = self.tenant;
        let state = self.state();
        if !state.series.contains_key(series) {
            state.series.insert(series.to_string(), BTreeMap::new());
        }
        let entry = state.series.get_mut(series).expect("inserted above");
        for change in changes {
            let histogram = entry.entry(change.bucket).or_default();
            apply_value_change(histogram, change);
        }
        for change in changes {
            for value in [change.previous, change.current]
                .into_iter()
                .filter(|v| *v > 0)
            {
                self.store.mark(|| Dirty::Histogram {
                    tenant: tenant.to_string(),
                    series: series.to_string(),
                    bucket: change.bucket,
                    value,
                });
            }
        }
    }

    fn histogram(&mut self, series: &str, from: Timestamp, to: Timestamp) -> Vec<(u64, u64)> {
        let Some(buckets) = self.state().series.get(series) else {
            return Vec::new();
        };
        merge_histograms(buckets, from, to)
    }
}

#[cfg(test)]
mod tests;
