//! The baseline store around a batch: the detector run (and its alerts correlated)
//! between `begin_batch` and `take_failure`, then the commit; while a store that can
//! fail is failing, both are retried with backoff (50 ms doubling up to 2 s) and a
//! warning every 30 s, holding the batch.

use std::time::{Duration, Instant};

use anyhow::Result;
use minewatch_guest::Outcome;
use minewatch_guest::batch::PackedBatch;

use super::Pipeline;
use crate::incidents::Incident;
use crate::runtime::lock;

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

impl Pipeline {
    /// Runs the detector over a batch and correlates its alerts into incidents. While
    /// the baseline store fails (Redis down or slow), the batch is held and run again
    /// until it succeeds: nothing is lost, and the queue in front of the pipeline fills
    /// until sources answer with back-pressure.
    pub(super) fn detect(&mut self, batch: &PackedBatch) -> (Result<Outcome>, Vec<Incident>) {
        if !lock(&self.baselines).can_fail() {
            lock(&self.baselines).begin_batch(false);
            let result = self.detector.detect(&self.options.tenant, batch);
            let incidents = self.correlate(&result);
            return (result, incidents);
        }
        let mut outage = Outage::default();
        let mut retry = false;
        loop {
            lock(&self.baselines).begin_batch(retry);
            let result = self.detector.detect(&self.options.tenant, batch);
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
        match (result, &self.wiring.correlator) {
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
    pub(super) fn commit(&mut self) -> Result<()> {
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
}
