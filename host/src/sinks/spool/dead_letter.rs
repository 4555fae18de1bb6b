//! The dead-letter file of a spool: lines a receiver refused for good.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Lines a receiver refused for good, kept for an operator in the spool directory.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    path: PathBuf,
}

impl DeadLetter {
    /// A dead-letter file at `path`, created at the first write.
    pub fn new(path: PathBuf) -> DeadLetter {
        DeadLetter { path }
    }

    /// Where the lines go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `lines` (one per line) and fsyncs them.
    ///
    /// # Errors
    /// The file cannot be opened, written or synced.
    pub fn write(&self, lines: &[&[u8]]) -> Result<()> {
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for line in lines {
            buf.extend_from_slice(line);
            buf.push(b'\n');
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("failed to open {}", self.path.display()))?;
        file.write_all(&buf)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("failed to write {}", self.path.display()))
    }
}
