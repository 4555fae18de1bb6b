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

use super::{Location, Prefilter, ReadOptions, Skip, Visitor, list_files, read_file, read_stdin};

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
    /// Lines the prefilter rejected since the last item.
    Filtered(u64),
    /// For a reader that keeps raw lines: the records and skips of one line, with the
    /// line itself (see [`Visitor::raw`]).
    Line(Vec<Item>, Vec<u8>),
}

/// The reader side: forwards items, and counts prefiltered lines in bulk.
struct Sender {
    tx: SyncSender<Item>,
    record_field: Option<String>,
    prefilter: Option<Prefilter>,
    filtered: u64,
    /// The items of the current line, when raw lines are kept.
    line: Option<Vec<Item>>,
}

impl Sender {
    /// Sends what the current line buffered without its line (the input ended or
    /// failed mid-line), so nothing waits for a line that will not come.
    fn flush_line(&mut self) -> bool {
        let Some(items) = self.line.as_mut().map(std::mem::take) else {
            return true;
        };
        items.into_iter().all(|item| self.tx.send(item).is_ok())
    }

    fn send(&mut self, item: Item) -> bool {
        if let Some(line) = &mut self.line {
            line.push(item);
            return true;
        }
        if self.filtered > 0 {
            let n = std::mem::take(&mut self.filtered);
            if self.tx.send(Item::Filtered(n)).is_err() {
                return false;
            }
        }
        self.tx.send(item).is_ok()
    }
}

impl Visitor for Sender {
    fn record(&mut self, record: Value, location: Location) -> Result<()> {
        if self.send(Item::Record(record, location)) {
            Ok(())
        } else {
            Err(anyhow::anyhow!("the pipeline stopped"))
        }
    }

    fn skip(&mut self, skip: Skip) {
        self.send(Item::Skip(skip));
    }

    fn record_field(&self) -> Option<&str> {
        self.record_field.as_deref()
    }

    fn prefilter(&self) -> Option<&Prefilter> {
        self.prefilter.as_ref()
    }

    fn filtered(&mut self, lines: u64) {
        self.filtered += lines;
    }

    fn keeps_raw(&self) -> bool {
        self.line.is_some()
    }

    fn raw(&mut self, line: &[u8]) -> Result<()> {
        if let Some(items) = self.line.replace(Vec::new())
            && self.tx.send(Item::Line(items, line.to_vec())).is_err()
        {
            return Err(anyhow::anyhow!("the pipeline stopped"));
        }
        Ok(())
    }
}

/// Starts a thread reading `inputs` in order; `record_field` is as in
/// [`Visitor::record_field`], lines `prefilter` rejects are only counted, and with
/// `keep_raw` every line is sent with what it held ([`Item::Line`]).
pub fn spawn_reader(
    inputs: Vec<Input>,
    options: ReadOptions,
    record_field: Option<String>,
    prefilter: Option<Prefilter>,
    keep_raw: bool,
) -> (Receiver<Item>, JoinHandle<()>) {
    let (tx, rx) = mpsc::sync_channel(4096);
    let handle = std::thread::Builder::new()
        .name("minewatch-reader".into())
        .spawn(move || {
            let mut sender = Sender {
                tx,
                record_field,
                prefilter,
                filtered: 0,
                line: keep_raw.then(Vec::new),
            };
            for input in inputs {
                if !read_input(input, options, &mut sender) {
                    return;
                }
            }
            let rest = std::mem::take(&mut sender.filtered);
            if rest > 0 {
                let _ = sender.tx.send(Item::Filtered(rest));
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
            Err(error) => return sender.send(Item::Unreadable(error)),
        },
    };
    for file in files {
        let result = match &file {
            None => read_stdin(options, sender),
            Some(file) => read_file(file, options, sender),
        };
        if !sender.flush_line() {
            return false;
        }
        if let Err(error) = result
            && sender.tx.send(Item::Unreadable(error)).is_err()
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
            Ok(item) => hand(item, consumer)?,
            Err(RecvTimeoutError::Timeout) => consumer.idle()?,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

/// Gives one item to the consumer; a line's items and the line itself go together, so
/// no idle flush falls between them.
fn hand(item: Item, consumer: &mut dyn Consumer) -> Result<()> {
    match item {
        Item::Record(record, location) => consumer.record(record, location)?,
        Item::Skip(skip) => consumer.skip(skip),
        Item::Unreadable(error) => consumer.unreadable(error),
        Item::Filtered(lines) => consumer.filtered(lines),
        Item::Line(items, line) => {
            for item in items {
                hand(item, consumer)?;
            }
            consumer.raw(&line)?;
        }
    }
    Ok(())
}
