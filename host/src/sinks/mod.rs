//! Where alerts go: stdout, an NDJSON file, or a network output behind a durable
//! spool ([`http`], [`hec`] for Splunk, [`forward`] for Fluent Bit / Fluentd).
//!
//! A sink buffers lines and makes them durable at [`AlertSink::flush`], which the
//! pipeline calls before committing the baselines of the same batch: a crash between
//! the two repeats an alert rather than losing it.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

pub mod forward;
pub mod hec;
pub mod http;
#[cfg(test)]
mod network_tests;
pub mod retry;
pub mod settings;
mod sink;
pub mod spool;

pub use sink::{AlertSink, line_item};

/// One sink written by several pipelines (one per tenant): each call takes the lock,
/// so lines never interleave; a flush makes every tenant's queued lines durable.
#[derive(Clone)]
pub struct SharedSink {
    inner: std::sync::Arc<std::sync::Mutex<Box<dyn AlertSink>>>,
}

impl SharedSink {
    /// Wraps a sink for sharing.
    pub fn new(sink: Box<dyn AlertSink>) -> SharedSink {
        SharedSink {
            inner: std::sync::Arc::new(std::sync::Mutex::new(sink)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Box<dyn AlertSink>> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl AlertSink for SharedSink {
    fn write(&mut self, item: &Value) -> Result<()> {
        self.lock().write(item)
    }

    fn write_line(&mut self, line: &[u8]) -> Result<()> {
        self.lock().write_line(line)
    }

    fn flush(&mut self) -> Result<()> {
        self.lock().flush()
    }

    fn has_room(&self) -> bool {
        self.lock().has_room()
    }

    fn spool(&self) -> Option<spool::SpoolHandle> {
        self.lock().spool()
    }
}

/// Alerts to standard output, one JSON object per line.
pub struct StdoutSink {
    out: BufWriter<std::io::Stdout>,
}

impl StdoutSink {
    /// A sink on the process's stdout.
    pub fn new() -> StdoutSink {
        StdoutSink {
            out: BufWriter::new(std::io::stdout()),
        }
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        StdoutSink::new()
    }
}

impl AlertSink for StdoutSink {
    fn write(&mut self, item: &Value) -> Result<()> {
        serde_json::to_writer(&mut self.out, item)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    fn write_line(&mut self, line: &[u8]) -> Result<()> {
        self.out.write_all(line)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

/// Alerts appended to an NDJSON file, fsynced at every flush.
///
/// Special files (`/dev/null`, `/dev/stdout`, a pipe or FIFO, a socket) take the same
/// lines but are only flushed: the kernel refuses fsync on them, and there is nothing on
/// disk to make durable.
pub struct FileSink {
    path: PathBuf,
    out: BufWriter<File>,
    pending: bool,
    /// Whether the file is a regular file, the only kind fsync applies to.
    syncs: bool,
}

impl FileSink {
    /// Opens `path` for appending, creating it and its directory.
    ///
    /// # Errors
    /// The file cannot be created or opened.
    pub fn open(path: &Path) -> Result<FileSink> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("failed to open alert output {}", path.display()))?;
        let syncs = file
            .metadata()
            .with_context(|| format!("failed to inspect alert output {}", path.display()))?
            .is_file();
        Ok(FileSink {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            pending: false,
            syncs,
        })
    }
}

impl AlertSink for FileSink {
    fn write(&mut self, item: &Value) -> Result<()> {
        serde_json::to_writer(&mut self.out, item)?;
        self.out.write_all(b"\n")?;
        self.pending = true;
        Ok(())
    }

    fn write_line(&mut self, line: &[u8]) -> Result<()> {
        self.out.write_all(line)?;
        self.out.write_all(b"\n")?;
        self.pending = true;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if !self.pending {
            return Ok(());
        }
        self.out
            .flush()
            .with_context(|| format!("failed to write {}", self.path.display()))?;
        if self.syncs {
            self.out
                .get_ref()
                .sync_data()
                .with_context(|| format!("failed to sync {}", self.path.display()))?;
        }
        self.pending = false;
        Ok(())
    }
}

/// Alerts collected in memory, for embedding and tests; clones share one list.
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    alerts: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl MemorySink {
    /// Every alert written so far, in order.
    pub fn alerts(&self) -> Vec<Value> {
        self.alerts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl AlertSink for MemorySink {
    fn write(&mut self, item: &Value) -> Result<()> {
        self.alerts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(item.clone());
        Ok(())
    }

    fn write_line(&mut self, line: &[u8]) -> Result<()> {
        self.write(&line_item(line))
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}
