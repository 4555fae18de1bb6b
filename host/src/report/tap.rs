//! A baseline store wrapper that watches what a detector learns, for reports.
//!
//! [`Tap`] sits between a pipeline and its real store ([`BaselineStore`] or
//! [`RedisStore`]) and forwards every call unchanged. On the way it notes what the
//! detector taught each first-seen set (keys, new keys, learning start) and, when asked,
//! every launch the rate rules counted: the counter, principal, window and the window's
//! count after the launch, exactly as the store answered the detector. It relies on the
//! built-in detections' naming of counters (`<scope>rate/calls` or
//! `<scope>rate/instances`, keyed by principal and window start) and series
//! (`<counter>/global`, `<counter>/principal/<arn>`); a custom component that names
//! them otherwise still gets its first-seen sets watched, but no launches.
//!
//! A batch's notes are kept aside until the store commits it, and dropped when the host
//! runs the batch again after a failed call, so a Redis outage does not count twice.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Result;
use minewatch_guest::{Baseline, DAY_MS, Observed, Sighting, Timestamp, ValueChange};

use crate::store::redis::RedisStore;
use crate::store::{Activity, BaselineBackend, BaselineStore, Episode};

/// What the tap records besides first-seen sets.
#[derive(Debug, Clone, Copy, Default)]
pub struct TapOptions {
    /// Keep every counted launch (for the rate charts) and read the rate history the
    /// store held before the run; without it launches are only counted.
    pub launches: bool,
    /// Days of rate history read from the store before the first launch of each
    /// counter, so a replay can start from what the store already knew (`--state`).
    pub seed_days: u32,
    /// Also read the per-principal series' history (rules with `population = "principal"`).
    pub seed_principals: bool,
}

/// What one run taught a first-seen set.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SetLearning {
    /// Keys in the set before this run's first observation of it.
    pub keys_before: u64,
    /// Keys that were new to the set (first sightings, or forgotten keys seen again).
    pub new_keys: u64,
    /// Sightings recorded.
    pub sightings: u64,
    /// The set's learning start (its earliest first sighting), ms since the epoch.
    pub learning_start: Timestamp,
    /// Earliest and latest sighting of this run, ms since the epoch.
    pub first: Timestamp,
    /// See `first`.
    pub last: Timestamp,
}

/// One launch as the rate rules counted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launch {
    /// Index into [`TapLog::counters`]: the counter (`<scope>rate/<mode>`).
    pub counter: u32,
    /// Index into [`TapLog::principals`].
    pub principal: u32,
    /// Window start, ms since the epoch.
    pub window: Timestamp,
    /// The window's count after this launch.
    pub count: u64,
    /// What this launch added (1 per call, or its instances).
    pub delta: u64,
}

/// Everything the tap saw, in the order the detector did it.
#[derive(Debug, Clone, Default)]
pub struct TapLog {
    /// First-seen sets by name (internal `rate/` sets left out).
    pub sets: BTreeMap<String, SetLearning>,
    /// Rate counters' names, indexed by [`Launch::counter`].
    pub counters: Vec<String>,
    /// Principals that launched, indexed by [`Launch::principal`].
    pub principals: Vec<String>,
    /// Every counted launch, in counting order (with [`TapOptions::launches`]).
    pub launches: Vec<Launch>,
    /// Launches counted by the rate rules (duplicates and failures are not).
    pub launches_counted: u64,
    /// (principal, window) counts this run started (windows new to the store).
    pub windows_started: u64,
    /// Per-day histograms (`value -> windows`) of rate series before the run, by series name.
    pub seeds: HashMap<String, BTreeMap<Timestamp, BTreeMap<u64, u64>>>,
}

/// What a batch did, applied to the log when the batch is committed.
#[derive(Debug)]
enum Note {
    Observed {
        set: String,
        size_before: u64,
        new_keys: u64,
        sightings: u64,
        learning_start: Timestamp,
        first: Timestamp,
        last: Timestamp,
    },
    Launch {
        counter: String,
        principal: String,
        window: Timestamp,
        count: u64,
        delta: u64,
    },
    Seed {
        series: String,
        day: Timestamp,
        histogram: Vec<(u64, u64)>,
    },
}

/// The tap's own state, apart from the store it wraps.
#[derive(Debug, Default)]
struct TapState {
    options: TapOptions,
    log: TapLog,
    counter_ids: HashMap<String, u32>,
    principal_ids: HashMap<String, u32>,
    staged: Vec<Note>,
    /// Series whose history was read, and those read in the current batch.
    seeded: HashSet<String>,
    staged_seeded: Vec<String>,
}

/// A baseline store that records what the detector learns (see the module docs).
pub struct Tap<B> {
    inner: B,
    state: TapState,
}

impl<B: BaselineBackend> Tap<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, options: TapOptions) -> Tap<B> {
        Tap {
            inner,
            state: TapState {
                options,
                ..TapState::default()
            },
        }
    }

    /// What was recorded so far (committed batches only).
    pub fn log(&self) -> &TapLog {
        &self.state.log
    }

    /// Takes the log, leaving an empty one.
    pub fn take_log(&mut self) -> TapLog {
        self.state.apply();
        std::mem::take(&mut self.state.log)
    }

    /// The wrapped store.
    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }
}

impl<B> std::fmt::Debug for Tap<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap")
            .field("launches", &self.state.log.launches.len())
            .field("sets", &self.state.log.sets.len())
            .finish()
    }
}

impl TapState {
    fn apply(&mut self) {
        self.staged_seeded.clear();
        for note in std::mem::take(&mut self.staged) {
            match note {
                Note::Observed {
                    set,
                    size_before,
                    new_keys,
                    sightings,
                    learning_start,
                    first,
                    last,
                } => {
                    let entry = self.log.sets.entry(set).or_insert_with(|| SetLearning {
                        keys_before: size_before,
                        learning_start,
                        first,
                        last,
                        ..SetLearning::default()
                    });
                    entry.new_keys += new_keys;
                    entry.sightings += sightings;
                    entry.learning_start = entry.learning_start.min(learning_start);
                    entry.first = entry.first.min(first);
                    entry.last = entry.last.max(last);
                }
                Note::Launch {
                    counter,
                    principal,
                    window,
                    count,
                    delta,
                } => {
                    let counter = intern(&mut self.counter_ids, &mut self.log.counters, counter);
                    let principal =
                        intern(&mut self.principal_ids, &mut self.log.principals, principal);
                    self.log.launches_counted += 1;
                    if count == delta {
                        self.log.windows_started += 1;
                    }
                    if self.options.launches {
                        self.log.launches.push(Launch {
                            counter,
                            principal,
                            window,
                            count,
                            delta,
                        });
                    }
                }
                Note::Seed {
                    series,
                    day,
                    histogram,
                } => {
                    self.log
                        .seeds
                        .entry(series)
                        .or_default()
                        .insert(day, histogram.into_iter().collect());
                }
            }
        }
    }

    fn rollback(&mut self) {
        self.staged.clear();
        for series in self.staged_seeded.drain(..) {
            self.seeded.remove(&series);
        }
    }
}

fn intern(ids: &mut HashMap<String, u32>, names: &mut Vec<String>, name: String) -> u32 {
    if let Some(id) = ids.get(&name) {
        return *id;
    }
    let id = names.len() as u32;
    names.push(name.clone());
    ids.insert(name, id);
    id
}

/// Whether a counter is one of the built-in rate counters (`<scope>rate/<mode>`).
pub fn is_rate_counter(counter: &str) -> bool {
    counter.ends_with("rate/calls") || counter.ends_with("rate/instances")
}

impl<B: BaselineBackend> BaselineBackend for Tap<B> {
    fn tenant<'a>(&'a mut self, tenant: &'a str) -> Box<dyn Baseline + 'a> {
        Box::new(TapView {
            inner: self.inner.tenant(tenant),
            state: &mut self.state,
        })
    }

    fn begin_batch(&mut self, retry: bool) {
        if retry {
            self.state.rollback();
        } else {
            self.state.apply();
        }
        self.inner.begin_batch(retry);
    }

    fn take_failure(&mut self) -> Option<anyhow::Error> {
        self.inner.take_failure()
    }

    fn can_fail(&self) -> bool {
        self.inner.can_fail()
    }

    fn commit(&mut self) -> Result<()> {
        self.inner.commit()?;
        self.state.apply();
        Ok(())
    }

    fn commit_tenant(&mut self, tenant: &str) -> Result<()> {
        self.inner.commit_tenant(tenant)?;
        self.state.apply();
        Ok(())
    }

    fn keys(&mut self, tenant: &str, set: &str) -> Vec<(String, Sighting)> {
        self.inner.keys(tenant, set)
    }

    fn episode(&mut self, tenant: &str, activity: Activity<'_>) -> Episode {
        self.inner.episode(tenant, activity)
    }
}

/// One tenant's view through the tap.
struct TapView<'a> {
    inner: Box<dyn Baseline + 'a>,
    state: &'a mut TapState,
}

impl TapView<'_> {
    /// Reads a series' per-day history before its first use in this run.
    fn seed(&mut self, series: String, first_window: Timestamp) {
        if self.state.seeded.contains(&series) {
            return;
        }
        let last_day = first_window.div_euclid(DAY_MS) * DAY_MS;
        for back in 0..=i64::from(self.state.options.seed_days) {
            let day = last_day - back * DAY_MS;
            let histogram = self.inner.histogram(&series, day, day);
            if !histogram.is_empty() {
                self.state.staged.push(Note::Seed {
                    series: series.clone(),
                    day,
                    histogram,
                });
            }
        }
        self.state.seeded.insert(series.clone());
        self.state.staged_seeded.push(series);
    }
}

impl Baseline for TapView<'_> {
    fn observe(
        &mut self,
        set: &str,
        forget_after: i64,
        sightings: &[(&str, Timestamp)],
    ) -> Vec<Observed> {
        let observed = self.inner.observe(set, forget_after, sightings);
        if !set.contains("rate/")
            && let Some(first) = observed.first()
        {
            let times = sightings.iter().map(|(_, t)| *t);
            self.state.staged.push(Note::Observed {
                set: set.to_string(),
                size_before: first.set_size,
                new_keys: observed.iter().filter(|o| o.is_new).count() as u64,
                sightings: observed.len() as u64,
                learning_start: observed
                    .iter()
                    .map(|o| o.learning_start)
                    .min()
                    .unwrap_or(first.learning_start),
                first: times.clone().min().unwrap_or_default(),
                last: times.max().unwrap_or_default(),
            });
        }
        observed
    }

    fn add(&mut self, counter: &str, increments: &[(&str, Timestamp, u64)]) -> Vec<u64> {
        let watched = is_rate_counter(counter);
        let seed = watched && self.state.options.launches;
        if seed && let Some(first) = increments.iter().map(|i| i.1).min() {
            self.seed(format!("{counter}/global"), first);
            if self.state.options.seed_principals {
                for (principal, window, _) in increments {
                    self.seed(format!("{counter}/principal/{principal}"), *window);
                }
            }
        }
        let counts = self.inner.add(counter, increments);
        if watched {
            for (&(principal, window, delta), &count) in increments.iter().zip(&counts) {
                self.state.staged.push(Note::Launch {
                    counter: counter.to_string(),
                    principal: principal.to_string(),
                    window,
                    count,
                    delta,
                });
            }
        }
        counts
    }

    fn record_values(&mut self, series: &str, changes: &[ValueChange]) {
        self.inner.record_values(series, changes);
    }

    fn histogram(&mut self, series: &str, from: Timestamp, to: Timestamp) -> Vec<(u64, u64)> {
        self.inner.histogram(series, from, to)
    }
}

/// A store whose first-seen sets a report can list after the run.
pub trait SetSource: BaselineBackend {
    /// The store's state for `tenant` as an embedded store (a copy for network stores).
    ///
    /// # Errors
    /// A network store could not be read.
    fn sets_of(&mut self, tenant: &str) -> Result<SetsView<'_>>;
}

/// A borrowed or copied embedded store holding a tenant's sets.
pub enum SetsView<'a> {
    /// The store itself.
    Borrowed(&'a BaselineStore),
    /// A copy read from a network store.
    Owned(Box<BaselineStore>),
}

impl std::ops::Deref for SetsView<'_> {
    type Target = BaselineStore;

    fn deref(&self) -> &BaselineStore {
        match self {
            SetsView::Borrowed(store) => store,
            SetsView::Owned(store) => store,
        }
    }
}

impl SetSource for BaselineStore {
    fn sets_of(&mut self, _tenant: &str) -> Result<SetsView<'_>> {
        Ok(SetsView::Borrowed(self))
    }
}

impl SetSource for RedisStore {
    fn sets_of(&mut self, tenant: &str) -> Result<SetsView<'_>> {
        Ok(SetsView::Owned(Box::new(self.snapshot(Some(tenant))?)))
    }
}
