//! [`SpooledSink`]: the [`AlertSink`] that writes into a spool while a background
//! thread hands its lines to a [`Delivery`].

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::dead_letter::DeadLetter;
use super::delivery::{Delivery, Worker};
use super::writer::{SpoolHandle, SpoolWriter};
use super::{
    DEAD_LETTER_FILE, DEFAULT_BATCH_MAX_BYTES, DEFAULT_BATCH_MAX_EVENTS, Depth, SpoolOptions, open,
};
use crate::sinks::AlertSink;
use crate::sinks::retry::{Backoff, StopSignal};

/// How a [`SpooledSink`] spools and delivers.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Spool size limits.
    pub spool: SpoolOptions,
    /// Most lines in one delivery.
    pub batch_max_events: usize,
    /// Most bytes in one delivery (a longer single line still goes alone).
    pub batch_max_bytes: usize,
    /// Delay before the first retry of a failed delivery.
    pub retry_initial: Duration,
    /// Longest delay between retries.
    pub retry_max: Duration,
    /// How long [`SpooledSink::shutdown`] waits for a delivery in flight.
    pub shutdown_wait: Duration,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            spool: SpoolOptions::default(),
            batch_max_events: DEFAULT_BATCH_MAX_EVENTS,
            batch_max_bytes: DEFAULT_BATCH_MAX_BYTES,
            retry_initial: Duration::from_millis(crate::sinks::retry::DEFAULT_INITIAL_MS),
            retry_max: Duration::from_millis(crate::sinks::retry::DEFAULT_MAX_MS),
            shutdown_wait: Duration::from_secs(5),
        }
    }
}

impl SinkOptions {
    /// Checks the settings, naming the one to fix.
    ///
    /// # Errors
    /// A batch limit is zero or a spool limit is invalid.
    pub fn validate(&self) -> Result<()> {
        self.spool.validate()?;
        if self.batch_max_events == 0 {
            bail!("batch_max_events must be above 0");
        }
        if self.batch_max_bytes == 0 {
            bail!("batch_max_bytes must be above 0");
        }
        Ok(())
    }
}

/// An output that spools every flushed item on disk and delivers it from a
/// background thread through `D`.
pub struct SpooledSink<D: Delivery> {
    name: String,
    writer: SpoolWriter,
    line: Vec<u8>,
    stop: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
    shutdown_wait: Duration,
    dead_letter: PathBuf,
    _delivery: PhantomData<fn() -> D>,
}

impl<D: Delivery> SpooledSink<D> {
    /// Opens the spool in `dir` (see [`output_dir`]) and starts delivering from it.
    ///
    /// # Errors
    /// The options are invalid, the spool cannot be opened, or the thread cannot start.
    pub fn new(
        name: &str,
        dir: &Path,
        delivery: D,
        options: SinkOptions,
    ) -> Result<SpooledSink<D>> {
        options.validate()?;
        let (writer, reader) = open(dir, name, &options.spool)?;
        let stop = Arc::new(StopSignal::new());
        let dead_letter = dir.join(DEAD_LETTER_FILE);
        let worker = Worker {
            name: name.to_string(),
            reader,
            delivery,
            dead_letter: DeadLetter::new(dead_letter.clone()),
            backoff: Backoff::new(options.retry_initial, options.retry_max),
            outage: None,
            max_events: options.batch_max_events,
            max_bytes: options.batch_max_bytes,
            stop: Arc::clone(&stop),
        };
        let thread = std::thread::Builder::new()
            .name(format!("out-{name}"))
            .spawn(move || worker.run())
            .with_context(|| format!("failed to start the delivery thread of output {name}"))?;
        Ok(SpooledSink {
            name: name.to_string(),
            writer,
            line: Vec::new(),
            stop,
            thread: Some(thread),
            shutdown_wait: options.shutdown_wait,
            dead_letter,
            _delivery: PhantomData,
        })
    }

    /// The output's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The synced lines not delivered yet.
    pub fn depth(&self) -> Depth {
        self.writer.depth()
    }

    /// A handle to watch the spool after the sink is boxed into the pipeline.
    pub fn handle(&self) -> SpoolHandle {
        self.writer.handle()
    }

    /// The spool directory.
    pub fn spool_dir(&self) -> &Path {
        self.writer.dir()
    }

    /// The file refused lines go to.
    pub fn dead_letter_path(&self) -> &Path {
        &self.dead_letter
    }

    /// Waits up to `wait` for the spool to drain, then stops delivery; true if
    /// everything flushed was delivered. Lines written but not flushed are discarded
    /// (they were never acknowledged); undelivered ones stay for the next start.
    pub fn close(&mut self, wait: Duration) -> bool {
        let drained = self.writer.wait_drained(wait);
        if !drained {
            let depth = self.writer.depth();
            tracing::info!(
                output = %self.name,
                lines = depth.lines,
                bytes = depth.bytes,
                "Closing with undelivered lines; they stay in the spool for the next start."
            );
        }
        self.shutdown();
        drained
    }

    /// Stops the delivery thread, waiting for a delivery in flight for at most the
    /// configured `shutdown_wait`; nothing undelivered is lost.
    pub fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.raise();
        self.writer.wake_reader();
        let deadline = Instant::now() + self.shutdown_wait;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if !thread.is_finished() {
            tracing::warn!(
                output = %self.name,
                "Delivery is still waiting for the receiver; leaving it behind. Undelivered lines stay in the spool."
            );
        } else if thread.join().is_err() {
            tracing::error!(output = %self.name, "Delivery thread panicked; undelivered lines stay in the spool.");
        }
    }
}

impl<D: Delivery> Drop for SpooledSink<D> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl<D: Delivery> AlertSink for SpooledSink<D> {
    fn write(&mut self, item: &Value) -> Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, item).context("failed to serialize an item")?;
        self.writer.append(&self.line)
    }

    /// Deliveries frame items as JSON (HEC envelopes, Forward records), so a line goes
    /// in as the item it holds ([`super::line_item`]).
    fn write_line(&mut self, line: &[u8]) -> Result<()> {
        self.write(&crate::sinks::line_item(line))
    }

    fn flush(&mut self) -> Result<()> {
        self.writer
            .sync()
            .with_context(|| format!("failed to spool output {}", self.name))
    }

    fn has_room(&self) -> bool {
        self.writer.has_room()
    }

    fn spool(&self) -> Option<SpoolHandle> {
        Some(self.writer.handle())
    }
}
