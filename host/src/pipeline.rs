//! The path of a record through minewatch: subscription filter, projection, batch,
//! detector, outputs, baselines committed.
//!
//! Records the detector does not subscribe to are dropped after a look at two fields,
//! before any projection (passthrough outputs still get them, unchanged, in order). A
//! batch is flushed when it is full, when the input goes idle, at the end of a served
//! request, and at the end; a flush writes and syncs every output first and commits the
//! baselines second, so a crash in between repeats alerts instead of losing them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use minewatch_guest::projection::{FieldPath, project};
use minewatch_guest::{Alert, DetectorInfo, Event, Outcome};
use serde_json::Value;

use crate::alert::{Format, Renderer};
use crate::dead_letter::{DeadBatch, DeadLetter};
use crate::incidents::{Correlator, Incident, IncidentSettings};
use crate::intake::{Consumer, Location, Prefilter, Skip, Visitor};
use crate::runtime::{DetectorEngine, GuestStopped, SharedStore, lock};
use crate::sinks::AlertSink;
use crate::summary::RunSummary;

/// The field passthrough outputs add to an event: the alerts it triggered.
pub const ALERTS_FIELD: &str = "minewatch_alerts";

/// A passed-through line with `alerts` added: as the last key of the object it holds,
/// the rest of its bytes unchanged; a line that is not an object (an array of records)
/// becomes `{"records": <line>, "minewatch_alerts": [...]}`.
fn with_alerts(line: &[u8], alerts: &[Value]) -> Vec<u8> {
    let field =
        serde_json::to_vec(&serde_json::json!({ ALERTS_FIELD: alerts })).expect("alerts serialize");
    // `{"minewatch_alerts":[...]}` without its braces.
    let member = &field[1..field.len() - 1];
    let trimmed = line.trim_ascii_end();
    let mut out = Vec::with_capacity(line.len() + field.len() + 12);
    match trimmed
        .strip_suffix(b"}")
        .filter(|_| trimmed.trim_ascii_start().starts_with(b"{"))
    {
        Some(body) => {
            out.extend_from_slice(body);
            if !body.trim_ascii_start()[1..].trim_ascii().is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(member);
            out.push(b'}');
        }
        None => {
            out.extend_from_slice(b"{\"records\":");
            out.extend_from_slice(trimmed);
            out.push(b',');
            out.extend_from_slice(member);
            out.push(b'}');
        }
    }
    out
}

/// How a pipeline treats what it reads.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Tenant whose baselines are used.
    pub tenant: String,
    /// Events handed to the detector per call.
    pub batch_events: usize,
    /// Learn the baselines without emitting alerts (`baseline build`).
    pub learn_only: bool,
    /// Where batches go when the detector is stopped on them; without one they are
    /// logged and counted only.
    pub dead_letter: Option<Arc<DeadLetter>>,
    /// How alerts add up to incidents (not in `learn_only` runs).
    pub incidents: IncidentSettings,
    /// The detector's settings as JSON (its `scope` decides the incidents' risk object).
    pub detector_settings: String,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            tenant: "default".into(),
            batch_events: 512,
            learn_only: false,
            dead_letter: None,
            incidents: IncidentSettings::default(),
            detector_settings: "{}".into(),
        }
    }
}

/// One destination with what it wants.
pub struct Output {
    /// Name for logs and metrics.
    pub name: String,
    /// Where items go.
    pub sink: Box<dyn AlertSink>,
    /// Alert format.
    pub format: Format,
    /// Every input event, with its alerts in [`ALERTS_FIELD`], instead of alerts alone.
    pub passthrough: bool,
}

impl Output {
    /// An alert output in the native format.
    pub fn alerts(name: &str, sink: Box<dyn AlertSink>) -> Output {
        Output {
            name: name.to_string(),
            sink,
            format: Format::Native,
            passthrough: false,
        }
    }
}

/// What a passthrough output passes on, waiting for its batch's alerts.
enum Pending {
    /// A record that came without its line (a request or chunk of `serve`), and its
    /// index in the batch when the detector subscribes to it.
    Record { record: Value, event: Option<usize> },
    /// A line of input as it was read, and the batch indices of its records.
    Line { raw: Vec<u8>, events: Vec<usize> },
}

/// A baseline store outage as the pipeline waits it out: backoff and sparse logs.
#[derive(Default)]
struct Outage {
    since: Option<Instant>,
    logged: Option<Instant>,
    retries: u32,
}

impl Outage {
    /// Longest pause between two tries.
    const MAX_BACKOFF: Duration = Duration::from_secs(2);
    /// How often a continuing outage is logged again.
    const LOG_EVERY: Duration = Duration::from_secs(30);

    fn wait(&mut self, error: &anyhow::Error) {
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        if self.logged.is_none_or(|at| now - at >= Self::LOG_EVERY) {
            tracing::warn!(
                error = format!("{error:#}"),
                down_secs = (now - since).as_secs(),
                "Baseline store unavailable; holding the batch and retrying."
            );
            self.logged = Some(now);
        }
        metrics::gauge!("minewatch_store_up").set(0.0);
        metrics::counter!("minewatch_store_retries_total").increment(1);
        let backoff = Duration::from_millis(50) * 2u32.saturating_pow(self.retries.min(6));
        self.retries += 1;
        std::thread::sleep(backoff.min(Self::MAX_BACKOFF));
    }

    fn over(&self) {
        if let Some(since) = self.since {
            tracing::info!(
                down_secs = since.elapsed().as_secs(),
                retries = self.retries,
                "Baseline store is back; the held batch went through."
            );
        }
        metrics::gauge!("minewatch_store_up").set(1.0);
    }
}

/// What a pipeline derives from its detector's description.
struct Wiring {
    subscriptions: Vec<(String, String)>,
    paths: Vec<FieldPath>,
    renderers: [Renderer; 2],
    prefilter: Option<Prefilter>,
    correlator: Option<Correlator>,
}

impl Wiring {
    fn new(info: &DetectorInfo, passthrough: bool, options: &PipelineOptions) -> Result<Wiring> {
        let paths = info
            .fields
            .iter()
            .map(|p| FieldPath::parse(p).map_err(anyhow::Error::msg))
            .collect::<Result<Vec<_>>>()?;
        let subscriptions = info.subscribed_events();
        let renderers = [
            Renderer::new(info.clone(), Format::Native),
            Renderer::new(info.clone(), Format::Ocsf),
        ];
        let prefilter = (!passthrough).then(|| {
            Prefilter::new(
                info.subscriptions
                    .iter()
                    .flat_map(|s| s.event_names.iter().map(String::as_str)),
                info.fields.iter().map(String::as_str),
            )
        });
        let correlator = if options.learn_only {
            None
        } else {
            Correlator::new(&options.incidents, info, &options.detector_settings)
        };
        Ok(Wiring {
            subscriptions,
            paths,
            renderers,
            prefilter,
            correlator,
        })
    }
}

/// One detector with its baselines and outputs.
pub struct Pipeline {
    detector: Box<dyn DetectorEngine>,
    /// (eventSource, eventName) pairs; a handful, so a scan beats hashing.
    subscriptions: Vec<(String, String)>,
    paths: Vec<FieldPath>,
    baselines: SharedStore,
    renderers: [Renderer; 2],
    outputs: Vec<Output>,
    passthrough: bool,
    prefilter: Option<Prefilter>,
    correlator: Option<Correlator>,
    options: PipelineOptions,
    batch: Vec<Event>,
    /// The raw records of `batch`, kept only for the dead-letter file.
    batch_records: Vec<Value>,
    locations: Vec<Location>,
    pending: Vec<Pending>,
    /// Lines come with their records ([`Visitor::raw`]): batches end between lines.
    by_line: bool,
    /// Where the records of the line being read start in `pending`.
    line_start: usize,
    summary: RunSummary,
}

impl Pipeline {
    /// Wires a configured detector to its baselines and outputs.
    ///
    /// # Errors
    /// The detector declared a field path that does not parse.
    pub fn new(
        detector: Box<dyn DetectorEngine>,
        baselines: SharedStore,
        outputs: Vec<Output>,
        options: PipelineOptions,
    ) -> Result<Pipeline> {
        let passthrough = outputs.iter().any(|o| o.passthrough);
        let Wiring {
            subscriptions,
            paths,
            renderers,
            prefilter,
            correlator,
        } = Wiring::new(detector.info(), passthrough, &options)?;
        Ok(Pipeline {
            detector,
            subscriptions,
            paths,
            baselines,
            renderers,
            outputs,
            passthrough,
            prefilter,
            correlator,
            batch: Vec::with_capacity(options.batch_events),
            batch_records: Vec::new(),
            locations: Vec::with_capacity(options.batch_events),
            pending: Vec::new(),
            by_line: false,
            line_start: 0,
            options,
            summary: RunSummary::default(),
        })
    }

    /// Replaces the detector between batches (a hot reload): what is pending is run by
    /// the old one and committed first; baselines and outputs carry over.
    ///
    /// # Errors
    /// The pending flush failed (the old detector stays), or the new detector declared
    /// a field path that does not parse (the old one stays, after the flush).
    pub fn swap_detector(&mut self, detector: Box<dyn DetectorEngine>) -> Result<()> {
        self.flush()?;
        let Wiring {
            subscriptions,
            paths,
            renderers,
            prefilter,
            correlator,
        } = Wiring::new(detector.info(), self.passthrough, &self.options)?;
        self.detector = detector;
        self.subscriptions = subscriptions;
        self.paths = paths;
        self.renderers = renderers;
        self.prefilter = prefilter;
        self.correlator = correlator;
        Ok(())
    }

    /// The byte-level prefilter for this detector's subscription; none when a
    /// passthrough output needs every event.
    pub fn prefilter(&self) -> Option<Prefilter> {
        self.prefilter.clone()
    }

    /// What the pipeline has seen so far.
    pub fn summary(&self) -> &RunSummary {
        &self.summary
    }

    /// Takes one CloudTrail record.
    ///
    /// # Errors
    /// A flush it triggered failed (see [`Pipeline::flush`]).
    pub fn push(&mut self, record: Value, location: Location) -> Result<()> {
        self.summary.records += 1;
        metrics::counter!("minewatch_events_received_total").increment(1);
        let subscribed = self.subscribed(&record);
        let mut record = Some(record);
        if let Some(subscribed_record) = record.as_ref().filter(|_| subscribed) {
            self.batch.push(project(subscribed_record, &self.paths));
            self.locations.push(location);
            if self.options.dead_letter.is_some() {
                let kept = if self.passthrough {
                    subscribed_record.clone()
                } else {
                    record.take().expect("checked above")
                };
                self.batch_records.push(kept);
            }
        } else {
            self.summary.unsubscribed += 1;
            metrics::counter!("minewatch_events_unsubscribed_total").increment(1);
        }
        if self.passthrough
            && let Some(record) = record
        {
            self.pending.push(Pending::Record {
                record,
                event: subscribed.then(|| self.batch.len() - 1),
            });
        }
        if !self.by_line {
            self.flush_if_full()?;
        }
        Ok(())
    }

    fn flush_if_full(&mut self) -> Result<()> {
        if self.batch.len() >= self.options.batch_events
            || self.pending.len() >= 8 * self.options.batch_events
        {
            self.flush()?;
        }
        Ok(())
    }

    /// Whether this pipeline passes its input on, and so wants each line whole.
    pub fn keeps_raw(&self) -> bool {
        self.passthrough
    }

    /// Takes the line the records pushed since the previous line came from: a
    /// passthrough output writes it unchanged, or with the alerts of its records added.
    ///
    /// # Errors
    /// A flush it triggered failed (see [`Pipeline::flush`]).
    pub fn raw(&mut self, line: &[u8]) -> Result<()> {
        if !self.passthrough {
            return Ok(());
        }
        self.by_line = true;
        let events = self
            .pending
            .drain(self.line_start..)
            .filter_map(|p| match p {
                Pending::Record { event, .. } => event,
                Pending::Line { .. } => None,
            })
            .collect();
        self.pending.push(Pending::Line {
            raw: line.to_vec(),
            events,
        });
        self.line_start = self.pending.len();
        self.flush_if_full()
    }

    fn subscribed(&self, record: &Value) -> bool {
        match (record.get("eventSource"), record.get("eventName")) {
            (Some(Value::String(source)), Some(Value::String(name))) => self
                .subscriptions
                .iter()
                .any(|(s, n)| s == source && n == name),
            _ => false,
        }
    }

    /// Runs the detector over the pending batch, writes its alerts (and passthrough
    /// events) to every output and syncs them, then commits the baselines.
    ///
    /// # Errors
    /// An output or the baseline store failed; the alerts of this batch may have been
    /// written but its baselines are not committed, so a rerun repeats them.
    pub fn flush(&mut self) -> Result<()> {
        let pending = self.batch.len();
        let mut alerts = Vec::new();
        let mut incidents = Vec::new();
        if pending > 0 {
            let events = std::mem::take(&mut self.batch);
            let locations = std::mem::take(&mut self.locations);
            let records = std::mem::take(&mut self.batch_records);
            crate::test_hook::point("before-detect");
            let result = self.run_batch(events, &locations, &records);
            self.locations = locations;
            self.locations.clear();
            self.batch_records = records;
            self.batch_records.clear();
            (alerts, incidents) = result?;
        }
        if !alerts.is_empty() {
            crate::test_hook::point("before-write");
        }
        self.emit(&alerts, &incidents)?;
        for output in &mut self.outputs {
            output.sink.flush()?;
        }
        if !alerts.is_empty() {
            crate::test_hook::point("before-commit");
        }
        let started = Instant::now();
        self.commit()?;
        metrics::histogram!("minewatch_store_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        if pending > 0 {
            tracing::debug!(
                events = pending,
                alerts = alerts.len(),
                "Committed baselines."
            );
        }
        Ok(())
    }

    /// Runs the detector and adds its alerts up to incidents; a stopped detector costs
    /// its batch (dead-lettered, counted), not the run.
    ///
    /// # Errors
    /// The batch could not be written to the dead-letter file.
    fn run_batch(
        &mut self,
        events: Vec<Event>,
        locations: &[Location],
        records: &[Value],
    ) -> Result<(Vec<Alert>, Vec<Incident>)> {
        let count = events.len() as u64;
        let started = Instant::now();
        let (result, incidents) = self.detect(events);
        metrics::histogram!("minewatch_guest_call_seconds", "tenant" => self.options.tenant.clone())
            .record(started.elapsed().as_secs_f64());
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(error) => {
                self.stopped(&error, count, locations, records)?;
                return Ok((Vec::new(), Vec::new()));
            }
        };
        for incident in &incidents {
            let status = if incident.opened { "open" } else { "updated" };
            if incident.opened {
                self.summary.incidents += 1;
            }
            metrics::counter!("minewatch_incidents_total", "status" => status).increment(1);
        }
        self.summary.processed += count;
        self.summary.failed_calls += u64::from(outcome.failed_calls);
        metrics::counter!("minewatch_failed_calls_total")
            .increment(u64::from(outcome.failed_calls));
        for skip in &outcome.skipped {
            let at: &dyn std::fmt::Display = match locations.get(skip.event_index as usize) {
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
            metrics::counter!("minewatch_alerts_total", "detection" => alert.detection.clone())
                .increment(1);
        }
        Ok((outcome.alerts, incidents))
    }

    /// Logs, counts and dead-letters a batch the detector was stopped on.
    fn stopped(
        &mut self,
        error: &anyhow::Error,
        count: u64,
        locations: &[Location],
        records: &[Value],
    ) -> Result<()> {
        let (reason, detail) = match error.downcast_ref::<GuestStopped>() {
            Some(stopped) => (stopped.reason.as_str(), stopped.detail.as_str()),
            // Not a guest stop (the rebuild after one failed): still this batch's end.
            None => ("trap", "the detector failed and could not be rebuilt"),
        };
        let tenant = self.options.tenant.clone();
        let first = locations[0].to_string();
        tracing::error!(
            error = format!("{error:#}"),
            %tenant,
            reason,
            %first,
            events = count,
            "Detector stopped on a batch; the batch is dead-lettered and the instance rebuilt."
        );
        *self
            .summary
            .skipped
            .entry("detector-trap".into())
            .or_insert(0) += count;
        metrics::counter!("minewatch_events_skipped_total", "reason" => "detector-trap")
            .increment(count);
        metrics::counter!("minewatch_guest_stops_total", "tenant" => tenant.clone(), "reason" => reason)
            .increment(1);
        if let Some(dead_letter) = &self.options.dead_letter {
            let info = self.detector.info();
            dead_letter.write(&DeadBatch {
                tenant: &tenant,
                reason,
                detail,
                detector: &format!("{} {}", info.name, info.version),
                first: &first,
                records,
            })?;
            metrics::counter!("minewatch_dead_letter_events_total", "tenant" => tenant, "reason" => reason)
                .increment(count);
        }
        Ok(())
    }

    /// Runs the detector over a batch and correlates its alerts into incidents. While
    /// the baseline store fails (Redis down or slow), the batch is held and run again
    /// until it succeeds: nothing is lost, and the queue in front of the pipeline fills
    /// until sources answer with back-pressure.
    fn detect(&mut self, events: Vec<Event>) -> (Result<Outcome>, Vec<Incident>) {
        if !lock(&self.baselines).can_fail() {
            lock(&self.baselines).begin_batch(false);
            let result = self.detector.detect(&self.options.tenant, events);
            let incidents = self.correlate(&result);
            return (result, incidents);
        }
        let mut outage = Outage::default();
        let mut retry = false;
        loop {
            lock(&self.baselines).begin_batch(retry);
            let result = self.detector.detect(&self.options.tenant, events.clone());
            let incidents = self.correlate(&result);
            let failure = lock(&self.baselines).take_failure();
            match failure {
                None => {
                    outage.over();
                    return (result, incidents);
                }
                Some(error) => outage.wait(&error),
            }
            retry = true;
        }
    }

    /// The incident records a detector run's alerts open or update.
    fn correlate(&self, result: &Result<Outcome>) -> Vec<Incident> {
        match (result, &self.correlator) {
            (Ok(outcome), Some(correlator)) if !outcome.alerts.is_empty() => correlator.correlate(
                &self.options.tenant,
                &outcome.alerts,
                &mut *lock(&self.baselines),
            ),
            _ => Vec::new(),
        }
    }

    /// Commits this tenant's baselines; a store that can fail is retried until it
    /// succeeds.
    fn commit(&mut self) -> Result<()> {
        let tenant = &self.options.tenant;
        if !lock(&self.baselines).can_fail() {
            return lock(&self.baselines).commit_tenant(tenant);
        }
        let mut outage = Outage::default();
        loop {
            let result = lock(&self.baselines).commit_tenant(tenant);
            match result {
                Ok(()) => {
                    outage.over();
                    return Ok(());
                }
                Err(error) => outage.wait(&error),
            }
        }
    }

    /// Writes alerts and then incident records to alert outputs, and the pending
    /// events to passthrough outputs.
    fn emit(&mut self, alerts: &[Alert], incidents: &[Incident]) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        self.line_start = 0;
        if self.options.learn_only {
            return Ok(());
        }
        let tenant = &self.options.tenant;
        let rendered: Vec<[Value; 2]> = if self.outputs.is_empty() {
            Vec::new()
        } else {
            alerts
                .iter()
                .map(|a| {
                    [
                        self.renderers[0].render(a, tenant),
                        self.renderers[1].render(a, tenant),
                    ]
                })
                .collect()
        };
        let incidents: Vec<[Value; 2]> = incidents
            .iter()
            .map(|i| {
                [
                    crate::incidents::render::native(i),
                    crate::incidents::render::ocsf(i),
                ]
            })
            .collect();
        if self.outputs.iter().all(|o| o.passthrough) {
            // A transform writes its input's lines only; the incident must not vanish.
            for [native, _] in &incidents {
                tracing::warn!(
                    incident = %native,
                    "An incident record has no alert output to go to (only passthrough \
                     outputs); add an alert output, or turn incidents off with \
                     [incidents] enabled = false."
                );
            }
        }
        for output in &mut self.outputs {
            let format = match output.format {
                Format::Native => 0,
                Format::Ocsf => 1,
            };
            if !output.passthrough {
                for record in rendered.iter().chain(&incidents) {
                    output.sink.write(&record[format])?;
                }
                continue;
            }
            for item in &pending {
                let triggered = |events: &[usize]| -> Vec<Value> {
                    alerts
                        .iter()
                        .zip(&rendered)
                        .filter(|(a, _)| events.contains(&(a.event_index as usize)))
                        .map(|(_, r)| r[format].clone())
                        .collect()
                };
                match item {
                    Pending::Line { raw, events } => {
                        let triggered = triggered(events);
                        if triggered.is_empty() {
                            output.sink.write_line(raw)?;
                        } else {
                            output.sink.write_line(&with_alerts(raw, &triggered))?;
                        }
                    }
                    Pending::Record { record, event } => {
                        let triggered = triggered(event.as_slice());
                        if triggered.is_empty() {
                            output.sink.write(record)?;
                        } else {
                            let mut enriched = record.clone();
                            if let Value::Object(map) = &mut enriched {
                                map.insert(ALERTS_FIELD.to_string(), Value::Array(triggered));
                            }
                            output.sink.write(&enriched)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Refuses work while an output is full.
    ///
    /// # Errors
    /// An output has no room; nothing was read or changed.
    pub fn check_ready(&self) -> Result<()> {
        match self.outputs.iter().find(|o| !o.sink.has_room()) {
            Some(full) => bail!("output {} is full; retry later", full.name),
            None => Ok(()),
        }
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
        self.push(record, location)
    }

    fn keeps_raw(&self) -> bool {
        Pipeline::keeps_raw(self)
    }

    fn raw(&mut self, line: &[u8]) -> Result<()> {
        Pipeline::raw(self, line)
    }

    fn wants(&self, line: &[u8]) -> bool {
        self.prefilter.as_ref().is_none_or(|p| p.wants(line))
    }

    fn filtered(&mut self, lines: u64) {
        self.summary.records += lines;
        self.summary.unsubscribed += lines;
        metrics::counter!("minewatch_events_received_total").increment(lines);
        metrics::counter!("minewatch_events_unsubscribed_total").increment(lines);
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
