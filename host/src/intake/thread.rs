//! Reading inputs on their own thread, so the pipeline can flush while input is idle.
//!
//! A live stdin may go quiet for minutes; a batch must not wait that long for its
//! alerts. The reader thread sends what it decodes over a bounded channel and the
//! pipeline side flushes whenever nothing arrived for the idle interval. Decoding on a
//! second thread also puts the machine's second core to work.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use super::{Location, ReadOptions, Skip, Visitor, list_files, read_file, read_stdin};

/// One `--input`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input (`-`).
    Stdin,
    /// A file or directory.
    Path(PathBuf),
}

impl From<&str> for Input {
    fn from(s: &str) -> Input {
        if s == "-" {
            Input::Stdin
        } else {
            Input::Path(s.into())
        }
    }
}

/// What the reader thread sends.
#[derive(Debug)]
pub enum Item {
    /// A record.
    Record(Value, Location),
    /// Something skipped.
    Skip(Skip),
    /// An input that could not be read at all.
    Unreadable(anyhow::Error),
}

struct Sender(SyncSender<Item>, Option<String>);

impl Visitor for Sender {
    fn record(&mut self, record: Value, location: Location) -> Result<()> {
        self.0
            .send(Item::Record(record, location))
            .map_err(|_| anyhow::anyhow!("the pipeline stopped"))
    }

    fn skip(&mut self, skip: Skip) {
        let _ = self.0.send(Item::Skip(skip));
    }

    fn record_field(&self) -> Option<&str> {
        self.1.as_deref()
    }
}

/// Starts a thread reading `inputs` in order; `record_field` is as in [`Visitor::record_field`].
pub fn spawn_reader(
    inputs: Vec<Input>,
    options: ReadOptions,
    record_field: Option<String>,
) -> (Receiver<Item>, JoinHandle<()>) {
    let (tx, rx) = mpsc::sync_channel(4096);
    let handle = std::thread::Builder::new()
        .name("minewatch-reader".into())
        .spawn(move || {
            let mut sender = Sender(tx, record_field);
            for input in inputs {
                if !read_input(input, options, &mut sender) {
                    return;
                }
            }
        })
        .expect("spawning the reader thread");
    (rx, handle)
}

/// Reads one input, reporting what cannot be read; false once the pipeline has stopped.
fn read_input(input: Input, options: ReadOptions, sender: &mut Sender) -> bool {
    let files = match input {
        Input::Stdin => vec![None],
        Input::Path(path) => match list_files(&path) {
            Ok(files) => files.into_iter().map(Some).collect(),
            Err(error) => return sender.0.send(Item::Unreadable(error)).is_ok(),
        },
    };
    for file in files {
        let result = match &file {
            None => read_stdin(options, sender),
            Some(file) => read_file(file, options, sender),
        };
        if let Err(error) = result
            && sender.0.send(Item::Unreadable(error)).is_err()
        {
            return false;
        }
    }
    true
}

/// What the consuming side does with items.
pub trait Consumer: Visitor {
    /// An input could not be read.
    fn unreadable(&mut self, error: anyhow::Error);
    /// Nothing arrived for the idle interval.
    ///
    /// # Errors
    /// Flushing failed.
    fn idle(&mut self) -> Result<()>;
}

/// Feeds every item to `consumer`, calling `idle` after `idle_after` without input.
///
/// # Errors
/// The consumer failed; reading stops.
pub fn drain(rx: Receiver<Item>, idle_after: Duration, consumer: &mut dyn Consumer) -> Result<()> {
    loop {
        match rx.recv_timeout(idle_after) {
            Ok(Item::Record(record, location)) => consumer.record(record, location)?,
            Ok(Item::Skip(skip)) => consumer.skip(skip),
            Ok(Item::Unreadable(error)) => consumer.unreadable(error),
            Err(RecvTimeoutError::Timeout) => consumer.idle()?,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}
