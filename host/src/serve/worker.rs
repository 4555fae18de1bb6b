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
//!
//! **Delivery order.** First-seen and rate decisions depend on the order events are
//! judged in, and senders keep several jobs in flight (Fluent Bit's `out_forward`
//! sends chunks over several connections, Vector's `http` sink adapts its concurrency),
//! so jobs arrive out of order. The thread therefore holds the jobs that arrive within
//! `settle` of each other, or while another is still being received (see
//! [`Receiving`]), as a group, and runs them in the order of their earliest event time,
//! each job's records in the order they came: the order `minewatch run` reads the same
//! trail in. A job that arrives after jobs of later events were judged is
//! still judged, and its events more than [`LATE_AFTER_MS`] behind them are counted as
//! late (`minewatch_events_late_total`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
    /// When the pipeline thread last took a task off its queue.
    taken: Arc<Taken>,
}

/// When a pipeline thread last took a task, for [`Submitter::stalled`].
#[derive(Debug)]
struct Taken {
    start: Instant,
    /// Milliseconds after `start`.
    at_ms: AtomicU64,
}

impl Taken {
    fn now(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.at_ms.store(ms, Ordering::SeqCst);
    }

    fn since(&self) -> Duration {
        let at = Duration::from_millis(self.at_ms.load(Ordering::SeqCst));
        self.start.elapsed().saturating_sub(at)
    }
}

impl Submitter {
    /// Whether the pipeline thread looks wedged: tasks are waiting in its queue and it
    /// has taken none for longer than `bound` (how long it has not), or it has stopped.
    ///
    /// # Errors
    /// The pipeline thread has stopped (its queue is closed).
    pub fn stalled(&self, bound: Duration) -> Result<Option<Duration>, String> {
        if self.tx.is_closed() {
            return Err("the pipeline thread has stopped".into());
        }
        let queued = self.tx.max_capacity() - self.tx.capacity();
        let idle = self.taken.since();
        Ok((queued > 0 && idle > bound).then_some(idle))
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

/// Requests and chunks that sources have begun to receive and not yet queued.
static RECEIVING: AtomicUsize = AtomicUsize::new(0);

/// A request or chunk being received (from its first bytes until it is queued, when
/// this is dropped). While any is, a pipeline holding jobs waits for it (up to
/// [`MAX_SETTLES`] settle times) before running them, so that what a sender sent
/// together is put in order, however slowly it arrives.
/// Process-wide: a job for any tenant counts.
#[derive(Debug)]
pub struct Receiving(());

impl Receiving {
    /// Marks one request or chunk as being received.
    pub fn start() -> Receiving {
        RECEIVING.fetch_add(1, Ordering::SeqCst);
        Receiving(())
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        RECEIVING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Event-time lag behind the latest event already judged beyond which an event counts
/// as late: CloudTrail itself delivers events up to about 15 minutes out of order.
pub const LATE_AFTER_MS: i64 = 15 * 60 * 1000;

/// Starts `tenant`'s pipeline thread with a queue of `queue` jobs, grouping the jobs
/// that arrive within `settle` of each other or while others are being received (zero:
/// each job runs on arrival). The thread ends when every [`Submitter`] is
/// dropped, after finishing queued jobs, and returns the run summary.
pub fn spawn(
    tenant: &str,
    pipeline: Pipeline,
    queue: usize,
    settle: Duration,
) -> (Submitter, JoinHandle<Result<RunSummary>>) {
    let queue = queue.max(1);
    let (tx, mut rx) = mpsc::channel::<Task>(queue);
    let taken = Arc::new(Taken {
        start: Instant::now(),
        at_ms: AtomicU64::new(0),
    });
    let progress = taken.clone();
    let handle = std::thread::Builder::new()
        .name(format!("minewatch-pipeline-{tenant}"))
        .spawn(move || {
            let clock = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a timer for the pipeline thread");
            let mut pipeline = pipeline;
            let mut group = Group::default();
            loop {
                let task = if group.jobs.is_empty() || settle.is_zero() {
                    rx.blocking_recv()
                } else {
                    let next = async { tokio::time::timeout(settle, rx.recv()).await };
                    match clock.block_on(next) {
                        Ok(task) => task,
                        // Quiet for `settle`: run, unless a request or chunk is still
                        // arriving (then wait for it, up to `MAX_SETTLES` settle times).
                        Err(_quiet) => {
                            let receiving = RECEIVING.load(Ordering::SeqCst) > 0;
                            if !receiving || group.waited >= MAX_SETTLES {
                                group.run(&mut pipeline);
                            } else {
                                group.waited += 1;
                            }
                            continue;
                        }
                    }
                };
                progress.now();
                match task {
                    Some(Task::Work(job)) => {
                        group.jobs.push(job);
                        if settle.is_zero() || group.jobs.len() >= queue {
                            group.run(&mut pipeline);
                        }
                    }
                    Some(Task::Swap { detector, reply }) => {
                        group.run(&mut pipeline);
                        let swapped = pipeline
                            .swap_detector(detector)
                            .map(|()| pipeline.prefilter())
                            .map_err(|e| format!("{e:#}"));
                        let _ = reply.send(swapped);
                    }
                    None => break,
                }
            }
            group.run(&mut pipeline);
            pipeline.finish()
        })
        .expect("spawning the pipeline thread");
    (Submitter { tx, taken }, handle)
}

/// Settle times a group waits, beyond the first, for requests still being received.
const MAX_SETTLES: u32 = 8;

/// Jobs that arrived within the settle time of each other, and the latest event time
/// judged so far (milliseconds).
#[derive(Default)]
struct Group {
    jobs: Vec<Job>,
    /// Settle times waited for requests still being received.
    waited: u32,
    latest_judged: Option<i64>,
}

impl Group {
    /// Runs the held jobs in the order of their earliest event time (arrival order
    /// among equals) and answers each once it is committed.
    fn run(&mut self, pipeline: &mut Pipeline) {
        self.waited = 0;
        let mut jobs: Vec<(i64, usize, Job)> = self
            .jobs
            .drain(..)
            .enumerate()
            .map(|(arrival, job)| {
                let earliest = job
                    .records
                    .iter()
                    .filter_map(|(r, _)| crate::intake::audit::event_time(r))
                    .min();
                (earliest.unwrap_or(i64::MIN), arrival, job)
            })
            .collect();
        jobs.sort_by_key(|(earliest, arrival, _)| (*earliest, *arrival));
        let moved = jobs.iter().enumerate().filter(|(at, j)| j.1 != *at).count();
        if moved > 0 {
            metrics::counter!("minewatch_batches_reordered_total").increment(moved as u64);
        }
        for (_, _, job) in jobs {
            self.count_late(&job.records);
            let verdict = process(pipeline, job.records, job.skips, job.filtered);
            let _ = job.reply.send(verdict);
        }
    }

    /// Counts the records more than [`LATE_AFTER_MS`] behind the latest event judged
    /// before them, and moves that mark.
    fn count_late(&mut self, records: &[(Value, Location)]) {
        let times = records
            .iter()
            .filter_map(|(r, _)| crate::intake::audit::event_time(r));
        let mut late = 0;
        let mut latest = self.latest_judged.unwrap_or(i64::MIN);
        let mark = latest.saturating_sub(LATE_AFTER_MS);
        for time in times {
            late += u64::from(time < mark);
            latest = latest.max(time);
        }
        self.latest_judged = Some(latest);
        if late > 0 {
            metrics::counter!("minewatch_events_late_total").increment(late);
        }
    }
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
