//! Delivery: the [`Delivery`] each network output implements, the [`DeliveryError`]s that
//! decide a batch's fate, and the thread of a [`SpooledSink`](super::SpooledSink) that
//! reads batches, hands them over, retries, dead-letters and records progress.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use anyhow::anyhow;

use super::dead_letter::DeadLetter;
use super::reader::{Batch, SpoolReader};
use super::{IDLE_WAIT, Position};
use crate::sinks::retry::{Backoff, StopSignal};

/// Why a delivery failed, which decides what happens to the batch.
#[derive(Debug)]
pub enum DeliveryError {
    /// The receiver cannot take the batch now (unreachable, busy, timed out): the same
    /// batch is tried again after a backoff.
    Retry(anyhow::Error),
    /// The receiver refused the batch for good: it goes to the dead-letter file.
    Rejected(anyhow::Error),
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryError::Retry(error) => write!(f, "{error:#}"),
            DeliveryError::Rejected(error) => write!(f, "rejected: {error:#}"),
        }
    }
}

impl std::error::Error for DeliveryError {}

/// Sends batches of spooled lines to one receiver.
pub trait Delivery: Send + 'static {
    /// Sends `lines` (JSON documents, without newlines, in spool order); Ok means the
    /// receiver took them all and they may be forgotten.
    ///
    /// # Errors
    /// See [`DeliveryError`] for how each kind of failure is treated.
    fn deliver(&mut self, lines: &[&[u8]]) -> Result<(), DeliveryError>;
}

/// The delivery thread's state.
pub(super) struct Worker<D: Delivery> {
    pub(super) name: String,
    pub(super) reader: SpoolReader,
    pub(super) delivery: D,
    pub(super) dead_letter: DeadLetter,
    pub(super) backoff: Backoff,
    /// When the current run of failures began.
    pub(super) outage: Option<Instant>,
    pub(super) max_events: usize,
    pub(super) max_bytes: usize,
    pub(super) stop: Arc<StopSignal>,
}

impl<D: Delivery> Worker<D> {
    pub(super) fn run(mut self) {
        while !self.stop.is_raised() {
            let batch = match self
                .reader
                .next_batch(self.max_events, self.max_bytes, IDLE_WAIT)
            {
                Ok(Some(batch)) => batch,
                Ok(None) => continue,
                Err(error) => {
                    tracing::error!(
                        output = %self.name,
                        error = format!("{error:#}"),
                        "Could not read the spool; retrying."
                    );
                    if self.stop.sleep(self.backoff.next_delay()) {
                        break;
                    }
                    continue;
                }
            };
            if !self.handle(&batch) {
                break;
            }
        }
    }

    /// Delivers one batch until it is delivered or dead-lettered (true), or the thread
    /// is asked to stop (false).
    fn handle(&mut self, batch: &Batch) -> bool {
        let (valid, invalid): (Vec<&[u8]>, Vec<&[u8]>) = batch
            .lines()
            .partition(|line| serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok());
        if !invalid.is_empty() && !self.dead_letter_lines(&invalid, "Spooled lines are not JSON") {
            return false;
        }
        loop {
            let result = if valid.is_empty() {
                Ok(())
            } else {
                let delivery = &mut self.delivery;
                std::panic::catch_unwind(AssertUnwindSafe(|| delivery.deliver(&valid)))
                    .unwrap_or_else(|_| Err(DeliveryError::Retry(anyhow!("the delivery panicked"))))
            };
            match result {
                Ok(()) => {
                    metrics::counter!("minewatch_alerts_sent_total", "output" => self.name.clone())
                        .increment(valid.len() as u64);
                    self.recovered();
                    self.commit(batch.end());
                    return true;
                }
                Err(DeliveryError::Retry(error)) => {
                    metrics::counter!("minewatch_output_errors_total", "output" => self.name.clone())
                        .increment(1);
                    if self.outage.is_none() {
                        self.outage = Some(Instant::now());
                        tracing::warn!(
                            output = %self.name,
                            lines = valid.len(),
                            error = format!("{error:#}"),
                            "Delivery failed; retrying with backoff."
                        );
                    } else {
                        tracing::debug!(
                            output = %self.name,
                            failures = self.backoff.failures() + 1,
                            error = format!("{error:#}"),
                            "Delivery failed again."
                        );
                    }
                    if self.stop.sleep(self.backoff.next_delay()) {
                        return false;
                    }
                }
                Err(DeliveryError::Rejected(error)) => {
                    metrics::counter!("minewatch_output_errors_total", "output" => self.name.clone())
                        .increment(1);
                    let reason = format!("Receiver refused a batch ({error:#})");
                    if !self.dead_letter_lines(&valid, &reason) {
                        return false;
                    }
                    self.recovered();
                    self.commit(batch.end());
                    return true;
                }
            }
        }
    }

    /// Appends `lines` to the dead-letter file, retrying until it works (true) or the
    /// thread is asked to stop (false).
    fn dead_letter_lines(&mut self, lines: &[&[u8]], reason: &str) -> bool {
        loop {
            match self.dead_letter.write(lines) {
                Ok(()) => {
                    metrics::counter!("minewatch_output_dead_letter_total", "output" => self.name.clone())
                        .increment(lines.len() as u64);
                    tracing::error!(
                        output = %self.name,
                        lines = lines.len(),
                        path = %self.dead_letter.path().display(),
                        "{reason}; moved the lines to the dead-letter file."
                    );
                    return true;
                }
                Err(error) => {
                    tracing::error!(
                        output = %self.name,
                        lines = lines.len(),
                        error = format!("{error:#}"),
                        "{reason}, and the dead-letter file cannot be written; retrying."
                    );
                    if self.stop.sleep(self.backoff.next_delay()) {
                        return false;
                    }
                }
            }
        }
    }

    fn recovered(&mut self) {
        if let Some(since) = self.outage.take() {
            tracing::info!(
                output = %self.name,
                failures = self.backoff.failures(),
                outage_secs = since.elapsed().as_secs_f64(),
                "Delivery recovered."
            );
        }
        self.backoff.reset();
    }

    fn commit(&mut self, upto: Position) {
        if let Err(error) = self.reader.commit(upto) {
            tracing::warn!(
                output = %self.name,
                error = format!("{error:#}"),
                "Could not record the delivered position; these lines may be sent again after a restart."
            );
        }
    }
}
