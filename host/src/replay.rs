//! One-shot replays of inputs through one pipeline: `run` and `baseline build`.
//!
//! [`drive`] reads the inputs on the reader thread into a pipeline, with a progress bar
//! on stderr when it is a terminal ([`crate::progress`]), and notes the event-time span
//! of the records the detector subscribes to.

use std::time::Duration;

use anyhow::Result;
use minewatch_guest::Timestamp;
use minewatch_guest::time::parse_event_time;
use serde_json::Value;

use crate::config::Config;
use crate::intake::{Consumer, Input, Location, ReadOptions, Skip, Visitor, drain, spawn_reader};
use crate::pipeline::Pipeline;
use crate::progress::Progress;
use crate::summary::RunSummary;

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
        let field = |name| record.get(name).and_then(Value::as_str);
        let (Some(source), Some(name)) = (field("eventSource"), field("eventName")) else {
            return;
        };
        if !subscriptions.iter().any(|(s, n)| s == source && n == name) {
            return;
        }
        if let Some(time) = field("eventTime").and_then(parse_event_time) {
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
}

impl Consumer for Watched<'_> {
    fn unreadable(&mut self, error: anyhow::Error) {
        self.pipeline.unreadable(error);
    }

    fn idle(&mut self) -> Result<()> {
        self.pipeline.idle()
    }
}
