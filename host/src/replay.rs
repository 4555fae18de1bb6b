//! One-shot replays of inputs through one pipeline: `run`, `baseline build` and `report`.
//!
//! [`drive`] reads the inputs on the reader thread into a pipeline, with a progress bar
//! on stderr when it is a terminal ([`crate::progress`]), and notes the event-time span
//! of the records the detector subscribes to. [`replay_tapped`] builds the default
//! tenant's pipeline itself, over a [`Tap`] on its baseline store, for the commands that
//! want to know what the detector learned and would have fired (`baseline build`) or
//! everything it did (`report`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use minewatch_guest::{DetectorInfo, Sighting, Timestamp};
use serde_json::Value;

use crate::config::{Config, StoreBackend};
use crate::dead_letter::DeadLetter;
use crate::incidents::IncidentSettings;
use crate::intake::audit::{self, Call};
use crate::intake::{Consumer, Input, Location, ReadOptions, Skip, Visitor, drain, spawn_reader};
use crate::pipeline::{Output, Pipeline, PipelineOptions};
use crate::progress::Progress;
use crate::report::tap::{SetSource, Tap, TapLog, TapOptions};
use crate::runtime::{Engines, SharedStore};
use crate::sinks::MemorySink;
use crate::store::redis::RedisStore;
use crate::store::{BaselineStore, SetSummary};
use crate::summary::RunSummary;
use crate::{DetectorSpec, build_limited_detector};

/// First and last event time (ms since the epoch) of the records read.
pub type Span = (Timestamp, Timestamp);

/// What [`drive`] saw.
#[derive(Debug, Clone, Default)]
pub struct Driven {
    /// The pipeline's counts.
    pub summary: RunSummary,
    /// Event-time span of the subscribed records, when it was asked for and any had a time.
    pub span: Option<Span>,
}

/// The `--input` values as inputs; stdin when there are none.
pub fn inputs(flags: &[String]) -> Vec<Input> {
    if flags.is_empty() {
        vec![Input::Stdin]
    } else {
        flags.iter().map(|i| Input::from(i.as_str())).collect()
    }
}

/// Reads `inputs` into `pipeline` and finishes it. With `subscriptions` (the detector's
/// `(eventSource, eventName)` pairs) the event-time span of those records is noted.
///
/// # Errors
/// The pipeline failed (an output or the store); the reader thread panicked.
pub fn drive(
    config: &Config,
    inputs: Vec<Input>,
    mut pipeline: Pipeline,
    subscriptions: Option<Vec<(String, String)>>,
) -> Result<Driven> {
    let read = ReadOptions {
        max_record_bytes: config.max_record_bytes,
    };
    let progress = Progress::for_inputs(&inputs);
    let (rx, reader) = spawn_reader(
        inputs,
        read,
        config.record_field.clone(),
        pipeline.prefilter(),
        pipeline.keeps_raw(),
    );
    let mut watched = Watched {
        pipeline: &mut pipeline,
        progress,
        subscriptions,
        span: None,
    };
    let drained = drain(
        rx,
        Duration::from_millis(config.idle_flush_ms),
        &mut watched,
    );
    let Watched { progress, span, .. } = watched;
    progress.finish();
    drained?;
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the input reader thread panicked"))?;
    let summary = pipeline.finish()?;
    Ok(Driven { summary, span })
}

/// The pipeline as [`drive`] feeds it: progress and span on the way.
struct Watched<'a> {
    pipeline: &'a mut Pipeline,
    progress: Progress,
    subscriptions: Option<Vec<(String, String)>>,
    span: Option<Span>,
}

impl Watched<'_> {
    fn note_time(&mut self, record: &Value) {
        let Some(subscriptions) = &self.subscriptions else {
            return;
        };
        if !Call::of(record).is_some_and(|call| call.is_in(subscriptions)) {
            return;
        }
        if let Some(time) = audit::event_time(record) {
            self.span = Some(match self.span {
                Some((first, last)) => (first.min(time), last.max(time)),
                None => (time, time),
            });
        }
    }
}

impl Visitor for Watched<'_> {
    fn record(&mut self, record: Value, location: Location) -> Result<()> {
        self.progress.records(1);
        self.note_time(&record);
        self.pipeline.push(record, location)
    }

    fn skip(&mut self, skip: Skip) {
        Visitor::skip(self.pipeline, skip);
    }

    fn filtered(&mut self, lines: u64) {
        self.progress.records(lines);
        self.pipeline.filtered(lines);
    }

    fn keeps_raw(&self) -> bool {
        self.pipeline.keeps_raw()
    }

    fn raw(&mut self, line: &[u8]) -> Result<()> {
        self.pipeline.raw(line)
    }
}

impl Consumer for Watched<'_> {
    fn unreadable(&mut self, error: anyhow::Error) {
        self.pipeline.unreadable(error);
    }

    fn idle(&mut self) -> Result<()> {
        self.pipeline.idle()
    }
}

/// What [`replay_tapped`] collects.
#[derive(Debug, Clone, Copy, Default)]
pub struct TapRequest {
    /// Learn only: no alerts are written (`baseline build`); they are still counted.
    pub learn_only: bool,
    /// Keep every alert, in the native format.
    pub alerts: bool,
    /// List the first-seen sets and their keys from the store after the run.
    pub sets: bool,
    /// What the tap records.
    pub tap: TapOptions,
}

/// A first-seen set of the store after the run, with its keys.
#[derive(Debug, Clone)]
pub struct StoredSet {
    /// Name, tenant, size and times.
    pub summary: SetSummary,
    /// Keys with their sightings, sorted by key.
    pub keys: Vec<(String, Sighting)>,
}

/// Everything a tapped replay saw.
#[derive(Debug)]
pub struct Tapped {
    /// Counts and span.
    pub driven: Driven,
    /// The detector's description.
    pub info: DetectorInfo,
    /// The tenant whose baselines were used.
    pub tenant: String,
    /// The detector's settings as given (a JSON object).
    pub settings: String,
    /// Alerts in the native format, when asked for.
    pub alerts: Vec<Value>,
    /// What the tap recorded.
    pub log: TapLog,
    /// The tenant's first-seen sets after the run (internal `rate/` sets left out), when asked for.
    pub sets: Vec<StoredSet>,
}

/// Replays `inputs` through the default tenant's detector over a [`Tap`] on the store
/// the config names (embedded, memory or Redis).
///
/// # Errors
/// The store, detector or dead-letter file could not be opened; the run failed (see
/// [`drive`]); a network store could not be read back.
pub fn replay_tapped(config: &Config, inputs: Vec<Input>, request: TapRequest) -> Result<Tapped> {
    match config.store.backend {
        StoreBackend::Redis => replay_over(
            RedisStore::new(config.store.redis.clone())?,
            config,
            inputs,
            request,
        ),
        StoreBackend::Embedded if config.memory => {
            replay_over(BaselineStore::in_memory(), config, inputs, request)
        }
        StoreBackend::Embedded => replay_over(
            BaselineStore::open(&config.state_dir)?,
            config,
            inputs,
            request,
        ),
    }
}

fn replay_over<B: SetSource + 'static>(
    store: B,
    config: &Config,
    inputs: Vec<Input>,
    request: TapRequest,
) -> Result<Tapped> {
    let spec = config.default_tenant()?;
    let tap = Arc::new(Mutex::new(Tap::new(store, request.tap)));
    let shared: SharedStore = tap.clone();
    let detector = build_limited_detector(
        &Engines::new()?,
        &DetectorSpec {
            engine: spec.engine,
            component: spec.component.as_deref(),
            settings: &spec.settings,
            limits: spec.limits,
        },
        shared.clone(),
    )?;
    let info = detector.info().clone();
    let sink = MemorySink::default();
    let outputs = if request.alerts {
        vec![Output::alerts("report", Box::new(sink.clone()))]
    } else {
        Vec::new()
    };
    let dead_letter = config
        .dead_letter()
        .map(|path| DeadLetter::open(&path).map(Arc::new))
        .transpose()?;
    // The report tells alerts apart; incidents stay out of its state and its list.
    let options = PipelineOptions {
        tenant: spec.name.clone(),
        batch_events: config.batch_events,
        learn_only: request.learn_only,
        dead_letter,
        incidents: IncidentSettings {
            enabled: false,
            ..IncidentSettings::default()
        },
        detector_settings: spec.settings.clone(),
    };
    let pipeline = Pipeline::new(detector, shared, outputs, options)?;
    let driven = drive(config, inputs, pipeline, Some(info.subscribed_events()))?;
    let mut tap = tap.lock().unwrap_or_else(|p| p.into_inner());
    let log = tap.take_log();
    let mut sets = Vec::new();
    if request.sets {
        let view = tap
            .inner_mut()
            .sets_of(&spec.name)
            .context("failed to read the baselines back")?;
        sets = view
            .sets()
            .into_iter()
            .filter(|s| s.tenant == spec.name && !s.set.contains("rate/"))
            .map(|summary| StoredSet {
                keys: view.keys(&summary.tenant, &summary.set),
                summary,
            })
            .collect();
    }
    Ok(Tapped {
        driven,
        info,
        tenant: spec.name,
        settings: spec.settings,
        alerts: sink.alerts(),
        log,
        sets,
    })
}
