//! The pipeline thread of `serve`: sources hand it jobs and wait for the verdict.
//!
//! Network sources run on tokio; the pipeline (detector calls, fsyncs) is blocking
//! work, so it owns a thread. A job is one request or chunk: its records are pushed,
//! the pipeline is flushed (alerts written and synced, baselines committed), and only
//! then is the job answered, so a source acknowledges upstream after the commit. The
//! queue in front is bounded: when it is full, sources answer with back-pressure
//! instead of buffering without limit. A hot reload sends the thread a new detector
//! through the same queue, so it takes over between two jobs and nothing in flight is
//! lost.

use std::thread::JoinHandle;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::intake::{Location, Prefilter, Skip, Visitor};
use crate::pipeline::Pipeline;
use crate::runtime::DetectorEngine;
use crate::summary::RunSummary;

/// One unit of work from a source.
struct Job {
    records: Vec<(Value, Location)>,
    skips: Vec<Skip>,
    filtered: u64,
    reply: oneshot::Sender<Result<Receipt, Refused>>,
}

/// What the pipeline thread is asked to do.
enum Task {
    /// Process records.
    Work(Job),
    /// Take over a new detector (hot reload); the reply carries the new prefilter.
    Swap {
        detector: Box<dyn DetectorEngine>,
        reply: oneshot::Sender<Result<Option<Prefilter>, String>>,
    },
}

/// What a processed job produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// Records taken.
    pub records: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Input skipped (with reasons in the log).
    pub skipped: u64,
}

/// Why a job was not processed; nothing of it was applied, so the sender should retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The queue in front of the pipeline is full.
    Busy,
    /// An output cannot take more (its spool is full).
    OutputsFull(String),
    /// Processing failed (an output or the store); the job may be partly applied.
    Failed(String),
    /// The server is shutting down.
    Closed,
}

/// The answer to a queued job.
pub type Verdict = oneshot::Receiver<Result<Receipt, Refused>>;

/// A handle for sources to submit jobs; cheap to clone.
#[derive(Debug, Clone)]
pub struct Submitter {
    tx: mpsc::Sender<Task>,
}

impl Submitter {
    /// Submits records (with the skips found while decoding them and the count of
    /// lines the prefilter rejected) and waits until they are processed and committed.
    pub async fn submit(
        &self,
        records: Vec<(Value, Location)>,
        skips: Vec<Skip>,
        filtered: u64,
    ) -> Result<Receipt, Refused> {
        let answer = self.enqueue(records, skips, filtered)?;
        answer.await.unwrap_or(Err(Refused::Closed))
    }

    /// Queues records without waiting; the receiver gets the verdict.
    ///
    /// # Errors
    /// The queue is full or closed; nothing was queued.
    pub fn enqueue(
        &self,
        records: Vec<(Value, Location)>,
        skips: Vec<Skip>,
        filtered: u64,
    ) -> Result<Verdict, Refused> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            records,
            skips,
            filtered,
            reply,
        };
        self.tx.try_send(Task::Work(job)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Refused::Busy,
            mpsc::error::TrySendError::Closed(_) => Refused::Closed,
        })?;
        Ok(answer)
    }

    /// Hands the pipeline a new detector, after the jobs queued before it; returns the
    /// new detector's prefilter.
    ///
    /// # Errors
    /// The pipeline refused it (its pending batch failed to flush, or the detector
    /// declared a bad field path) and keeps the old one; or it has stopped.
    pub async fn swap(
        &self,
        detector: Box<dyn DetectorEngine>,
    ) -> Result<Option<Prefilter>, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Task::Swap { detector, reply })
            .await
            .map_err(|_| "the pipeline has stopped".to_string())?;
        answer
            .await
            .unwrap_or_else(|_| Err("the pipeline has stopped".to_string()))
    }
}

/// Starts `tenant`'s pipeline thread with a queue of `queue` jobs. The thread ends when every
/// [`Submitter`] is dropped, after finishing queued jobs, and returns the run summary.
pub fn spawn(
    tenant: &str,
    pipeline: Pipeline,
    queue: usize,
) -> (Submitter, JoinHandle<Result<RunSummary>>) {
    let (tx, mut rx) = mpsc::channel::<Task>(queue.max(1));
    let handle = std::thread::Builder::new()
        .name(format!("minewatch-pipeline-{tenant}"))
        .spawn(move || {
            let mut pipeline = pipeline;
            while let Some(task) = rx.blocking_recv() {
                match task {
                    Task::Work(job) => {
                        let verdict = process(&mut pipeline, job.records, job.skips, job.filtered);
                        let _ = job.reply.send(verdict);
                    }
                    Task::Swap { detector, reply } => {
                        let swapped = pipeline
                            .swap_detector(detector)
                            .map(|()| pipeline.prefilter())
                            .map_err(|e| format!("{e:#}"));
                        let _ = reply.send(swapped);
                    }
                }
            }
            pipeline.finish()
        })
        .expect("spawning the pipeline thread");
    (Submitter { tx }, handle)
}

fn process(
    pipeline: &mut Pipeline,
    records: Vec<(Value, Location)>,
    skips: Vec<Skip>,
    filtered: u64,
) -> Result<Receipt, Refused> {
    if let Err(full) = pipeline.check_ready() {
        return Err(Refused::OutputsFull(full.to_string()));
    }
    let before = pipeline.summary().clone();
    for skip in skips {
        pipeline.skip(skip);
    }
    pipeline.filtered(filtered);
    let mut result = Ok(());
    for (record, location) in records {
        result = pipeline.push(record, location);
        if result.is_err() {
            break;
        }
    }
    if let Err(error) = result.and_then(|()| pipeline.flush()) {
        tracing::error!(
            error = format!("{error:#}"),
            "Failed to process a batch; it was not acknowledged."
        );
        return Err(Refused::Failed(format!("{error:#}")));
    }
    let after = pipeline.summary();
    Ok(Receipt {
        records: after.records - before.records,
        alerts: after.total_alerts() - before.total_alerts(),
        skipped: after.total_skipped() - before.total_skipped(),
    })
}
