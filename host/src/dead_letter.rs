//! The dead-letter file: batches a detector was stopped on, kept for an operator.
//!
//! One NDJSON line per stopped batch, appended and fsynced before the batch is
//! acknowledged upstream:
//!
//! ```json
//! {"time":"2026-11-28T04:12:09.120Z","tenant":"acme","reason":"cpu_deadline",
//!  "detail":"...","detector":"minewatch-guest 0.1.0","first":"http:/events line 3",
//!  "events":512,"records":[{...CloudTrail record...}, ...]}
//! ```
//!
//! `time` is the host's wall clock when the batch was stopped; `reason` is one of the
//! [`StopReason`](crate::runtime::StopReason) labels; `records` are the raw records the
//! detector was given (the subscribed ones of the batch), as they arrived. Replaying
//! them is `jq -c '.records[]' dead-letter.ndjson | minewatch run ...`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde_json::{Value, json};

/// An append-only dead-letter file shared by every tenant's pipeline.
#[derive(Debug)]
pub struct DeadLetter {
    path: PathBuf,
    file: Mutex<File>,
}

/// One stopped batch.
#[derive(Debug)]
pub struct DeadBatch<'a> {
    /// The tenant whose detector was stopped.
    pub tenant: &'a str,
    /// The stop reason label.
    pub reason: &'a str,
    /// What happened.
    pub detail: &'a str,
    /// Detector name and version.
    pub detector: &'a str,
    /// Where the batch's first record came from.
    pub first: &'a str,
    /// The raw records.
    pub records: &'a [Value],
}

impl DeadLetter {
    /// Opens (creating, appending to) the file at `path`.
    ///
    /// # Errors
    /// The file or its directory cannot be created.
    pub fn open(path: &Path) -> Result<DeadLetter> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("failed to create dead-letter directory {}", dir.display())
            })?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("failed to open dead-letter file {}", path.display()))?;
        Ok(DeadLetter {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one batch as one line and syncs it to disk.
    ///
    /// # Errors
    /// The write or the sync failed.
    pub fn write(&self, batch: &DeadBatch<'_>) -> Result<()> {
        let line = json!({
            "time": minewatch_guest::time::format_time(now_ms()),
            "tenant": batch.tenant,
            "reason": batch.reason,
            "detail": batch.detail,
            "detector": batch.detector,
            "first": batch.first,
            "events": batch.records.len(),
            "records": batch.records,
        });
        let mut bytes = serde_json::to_vec(&line)?;
        bytes.push(b'\n');
        let file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out = BufWriter::new(&*file);
        out.write_all(&bytes)
            .and_then(|()| out.flush())
            .and_then(|()| file.sync_data())
            .with_context(|| format!("failed to write dead-letter file {}", self.path.display()))
    }
}

/// The wall clock in milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
