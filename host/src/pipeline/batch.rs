//! One detector call's bookkeeping: the run summary and metrics of its outcome
//! (processed, skips, alerts, incidents), and a batch the detector was stopped on
//! logged, counted and dead-lettered.

use std::time::Instant;

use anyhow::Result;
use minewatch_guest::Alert;
use minewatch_guest::batch::PackedBatch;
use serde_json::Value;

use super::Pipeline;
use crate::dead_letter::DeadBatch;
use crate::incidents::Incident;
use crate::intake::Location;
use crate::runtime::GuestStopped;

impl Pipeline {
    /// Runs the detector and adds its alerts up to incidents; a stopped detector costs
    /// its batch (dead-lettered, counted), not the run.
    ///
    /// # Errors
    /// The batch could not be written to the dead-letter file.
    pub(super) fn run_batch(
        &mut self,
        batch: &PackedBatch,
        locations: &[Location],
        records: &[Value],
    ) -> Result<(Vec<Alert>, Vec<Incident>)> {
        let count = batch.len() as u64;
        let started = Instant::now();
        let (result, incidents) = self.detect(batch);
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
}
