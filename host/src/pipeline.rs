//! The path of a record through minewatch: subscription filter, projection, batch,
//! detector, alerts out, baselines committed.
//!
//! Records the detector does not subscribe to are dropped after a look at two fields,
//! before any projection. A batch is flushed when it is full, when the input goes idle,
//! and at the end; a flush writes and syncs the alerts first and commits the baselines
//! second, so a crash in between repeats alerts instead of losing them.

use anyhow::Result;
use minewatch_guest::projection::{FieldPath, project};
use minewatch_guest::{DetectorInfo, Event};
use serde_json::Value;

use crate::alert::{Format, Renderer};
use crate::intake::{Consumer, Location, Skip, Visitor};
use crate::runtime::{DetectorEngine, SharedStore, lock};
use crate::sinks::AlertSink;
use crate::summary::RunSummary;

/// How a pipeline treats what it reads.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Tenant whose baselines are used.
    pub tenant: String,
    /// Events handed to the detector per call.
    pub batch_events: usize,
    /// Learn the baselines without emitting alerts (`baseline build`).
    pub learn_only: bool,
    /// Output format.
    pub format: Format,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            tenant: "default".into(),
            batch_events: 512,
            learn_only: false,
            format: Format::Native,
        }
    }
}

/// One detector with its baselines and outputs.
pub struct Pipeline {
    detector: Box<dyn DetectorEngine>,
    /// (eventSource, eventName) pairs; a handful, so a scan beats hashing.
    subscriptions: Vec<(String, String)>,
    paths: Vec<FieldPath>,
    baselines: SharedStore,
    renderer: Renderer,
    sinks: Vec<Box<dyn AlertSink>>,
    options: PipelineOptions,
    batch: Vec<Event>,
    locations: Vec<Location>,
    summary: RunSummary,
}

impl Pipeline {
    /// Wires a configured detector to its baselines and sinks.
    ///
    /// # Errors
    /// The detector declared a field path that does not parse.
    pub fn new(
        detector: Box<dyn DetectorEngine>,
        baselines: SharedStore,
        sinks: Vec<Box<dyn AlertSink>>,
        options: PipelineOptions,
    ) -> Result<Pipeline> {
        let info: &DetectorInfo = detector.info();
        let paths = info
            .fields
            .iter()
            .map(|p| FieldPath::parse(p).map_err(anyhow::Error::msg))
            .collect::<Result<Vec<_>>>()?;
        let subscriptions = info
            .subscriptions
            .iter()
            .flat_map(|s| {
                s.event_names
                    .iter()
                    .map(|n| (s.event_source.clone(), n.clone()))
            })
            .collect();
        let renderer = Renderer::new(info.clone(), options.format);
        Ok(Pipeline {
            detector,
            subscriptions,
            paths,
            baselines,
            renderer,
            sinks,
            batch: Vec::with_capacity(options.batch_events),
            locations: Vec::with_capacity(options.batch_events),
            options,
            summary: RunSummary::default(),
        })
    }

    /// What the pipeline has seen so far.
    pub fn summary(&self) -> &RunSummary {
        &self.summary
    }

    /// Takes one CloudTrail record.
    ///
    /// # Errors
    /// A flush it triggered failed (see [`Pipeline::flush`]).
    pub fn push(&mut self, record: &Value, location: Location) -> Result<()> {
        self.summary.records += 1;
        if !self.subscribed(record) {
            self.summary.unsubscribed += 1;
            return Ok(());
        }
        self.batch.push(project(record, &self.paths));
        self.locations.push(location);
        if self.batch.len() >= self.options.batch_events {
            self.flush()?;
        }
        Ok(())
    }

    fn subscribed(&self, record: &Value) -> bool {
        match (record.get("eventSource"), record.get("eventName")) {
            (Some(Value::String(source)), Some(Value::String(name))) => {
                // Avoid allocating: the set is tiny, so scan it.
                self.subscriptions
                    .iter()
                    .any(|(s, n)| s == source && n == name)
            }
            _ => false,
        }
    }

    /// Runs the detector over the pending batch, writes and syncs its alerts, then
    /// commits the baselines.
    ///
    /// # Errors
    /// An output or the baseline store failed; the alerts of this batch may have been
    /// written but its baselines are not committed, so a rerun repeats them.
    pub fn flush(&mut self) -> Result<()> {
        let pending = self.batch.len();
        if pending > 0 {
            let events = std::mem::take(&mut self.batch);
            let locations = std::mem::take(&mut self.locations);
            self.run_batch(events, &locations)?;
            self.locations = locations;
            self.locations.clear();
        }
        for sink in &mut self.sinks {
            sink.flush()?;
        }
        lock(&self.baselines).commit()?;
        if pending > 0 {
            tracing::debug!(events = pending, "Committed baselines.");
        }
        Ok(())
    }

    fn run_batch(&mut self, events: Vec<Event>, locations: &[Location]) -> Result<()> {
        let count = events.len() as u64;
        let outcome = match self.detector.detect(&self.options.tenant, events) {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    first = %locations[0],
                    events = count,
                    "Detector failed on a batch; its events are counted as skipped."
                );
                *self
                    .summary
                    .skipped
                    .entry("detector-trap".into())
                    .or_insert(0) += count;
                return Ok(());
            }
        };
        self.summary.processed += count;
        self.summary.failed_calls += u64::from(outcome.failed_calls);
        for skip in &outcome.skipped {
            let location = locations.get(skip.event_index as usize);
            let at: &dyn std::fmt::Display = match location {
                Some(l) => l,
                None => &"?",
            };
            self.summary.skip(&skip.reason, &skip.detail, at);
        }
        for alert in &outcome.alerts {
            *self
                .summary
                .alerts
                .entry(alert.detection.clone())
                .or_insert(0) += 1;
            if self.options.learn_only {
                continue;
            }
            let rendered = self.renderer.render(alert, &self.options.tenant);
            for sink in &mut self.sinks {
                sink.write(&rendered)?;
            }
        }
        Ok(())
    }

    /// Flushes what is pending and returns the summary.
    ///
    /// # Errors
    /// The final flush failed.
    pub fn finish(mut self) -> Result<RunSummary> {
        self.flush()?;
        Ok(self.summary)
    }
}

impl Visitor for Pipeline {
    fn record(&mut self, record: Value, location: Location) -> Result<()> {
        self.push(&record, location)
    }

    fn skip(&mut self, skip: Skip) {
        self.summary
            .skip(skip.reason.as_str(), &skip.detail, &skip.location);
    }
}

impl Consumer for Pipeline {
    fn unreadable(&mut self, error: anyhow::Error) {
        tracing::error!(error = format!("{error:#}"), "Input could not be read.");
        self.summary.unreadable_inputs += 1;
    }

    fn idle(&mut self) -> Result<()> {
        self.flush()
    }
}
