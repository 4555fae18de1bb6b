//! The path of a record through minewatch: subscription filter, projection, batch,
//! detector, outputs, baselines committed.
//!
//! Records the detector does not subscribe to are dropped after a look at two fields,
//! before any projection (passthrough outputs still get them, unchanged, in order). A
//! batch is flushed when it is full, when the input goes idle, at the end of a served
//! request, and at the end; a flush writes and syncs every output first and commits the
//! baselines second, so a crash in between repeats alerts instead of losing them.
//!
//! This file has the pipeline and its intake side (subscription check, projection,
//! batching, lines for passthrough); `options` what it is built with, `wiring` what it
//! derives from its detector, `store` the baseline store around a batch (retries while
//! it fails, commit), `batch` the counting and dead-lettering of a detector call, and
//! `emit` the writing to outputs.

mod batch;
mod emit;
mod options;
mod store;
mod wiring;

use std::time::Instant;

use anyhow::{Result, bail};
use minewatch_guest::batch::PackedBatch;
use serde_json::Value;

pub use emit::ALERTS_FIELD;
use emit::Pending;
pub use options::{Output, PipelineOptions};
use wiring::Wiring;

use crate::intake::audit::Call;
use crate::intake::{Consumer, Location, Prefilter, Skip, SkipReason, Visitor};
use crate::runtime::{DetectorEngine, SharedStore};
use crate::summary::RunSummary;

/// A batch whose strings reach this many bytes is run at once, whatever its event
/// count, so that its offsets (`u32`) cannot overflow short of one record's fields
/// passing 3 GiB.
const MAX_BATCH_TEXT: usize = 1 << 30;

/// One detector with its baselines and outputs.
pub struct Pipeline {
    detector: Box<dyn DetectorEngine>,
    /// What is derived from the detector's description.
    wiring: Wiring,
    baselines: SharedStore,
    outputs: Vec<Output>,
    passthrough: bool,
    options: PipelineOptions,
    /// The subscribed records of the batch, projected to the detector's field paths.
    batch: PackedBatch,
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
        let wiring = Wiring::new(detector.info(), passthrough, &options)?;
        let batch = PackedBatch::new(wiring.paths.len());
        Ok(Pipeline {
            detector,
            wiring,
            baselines,
            outputs,
            passthrough,
            batch,
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
        self.wiring = Wiring::new(detector.info(), self.passthrough, &self.options)?;
        self.batch = PackedBatch::new(self.wiring.paths.len());
        self.detector = detector;
        Ok(())
    }

    /// The byte-level prefilter for this detector's subscription; none when a
    /// passthrough output needs every event.
    pub fn prefilter(&self) -> Option<Prefilter> {
        self.wiring.prefilter.clone()
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
        if !subscribed {
            self.summary.unsubscribed += 1;
            metrics::counter!("minewatch_events_unsubscribed_total").increment(1);
        }
        let batched = subscribed && self.project(&record, &location);
        let mut record = Some(record);
        if let Some(batched_record) = record.as_ref().filter(|_| batched) {
            self.locations.push(location);
            if self.options.dead_letter.is_some() {
                let kept = if self.passthrough {
                    batched_record.clone()
                } else {
                    record.take().expect("checked above")
                };
                self.batch_records.push(kept);
            }
        }
        if self.passthrough
            && let Some(record) = record
        {
            self.pending.push(Pending::Record {
                record,
                event: batched.then(|| self.batch.len() - 1),
            });
        }
        if !self.by_line {
            self.flush_if_full()?;
        }
        Ok(())
    }

    /// Adds `record` to the batch, projected; false when it was skipped instead, its
    /// fields passing what a packed batch's offsets reach (see [`MAX_BATCH_TEXT`]).
    fn project(&mut self, record: &Value, location: &Location) -> bool {
        match self.batch.push_record(record, &self.wiring.paths) {
            Ok(()) => true,
            Err(error) => {
                self.summary
                    .skip(SkipReason::Oversized.as_str(), &error, location);
                false
            }
        }
    }

    fn flush_if_full(&mut self) -> Result<()> {
        if self.batch.len() >= self.options.batch_events
            || self.batch.text().len() >= MAX_BATCH_TEXT
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
        Call::of(record).is_some_and(|call| call.is_in(&self.wiring.subscriptions))
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
            let batch = std::mem::take(&mut self.batch);
            let locations = std::mem::take(&mut self.locations);
            let records = std::mem::take(&mut self.batch_records);
            crate::test_hook::point("before-detect");
            let result = self.run_batch(&batch, &locations, &records);
            self.batch = batch;
            self.batch.clear();
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
        self.wiring.prefilter.as_ref().is_none_or(|p| p.wants(line))
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
