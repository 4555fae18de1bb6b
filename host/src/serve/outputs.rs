//! The `[[outputs]]` of the configuration and building them.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Deserialize;

use crate::alert::Format;
use crate::pipeline::Output;
use crate::sinks::{AlertSink, FileSink, StdoutSink};

/// One output: where alerts (or passthrough events) go, and in which format.
#[derive(Debug, Clone, Deserialize)]
pub struct OutputConfig {
    /// Name in logs, metrics and the spool directory [default: the type, numbered].
    #[serde(default)]
    pub name: Option<String>,
    /// Alert format.
    #[serde(default)]
    pub format: Format,
    /// Send every input event with its alerts in `minewatch_alerts`, instead of alerts alone.
    #[serde(default)]
    pub passthrough: bool,
    /// The destination.
    #[serde(flatten)]
    pub kind: OutputKind,
}

/// Output destinations.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OutputKind {
    /// Standard output, NDJSON.
    Stdout {},
    /// An NDJSON file, appended and fsynced per batch.
    File {
        /// The file.
        path: PathBuf,
    },
}

impl OutputConfig {
    /// An output for a `--output` flag: `-` is stdout, anything else a file.
    pub fn from_flag(flag: &str, format: Format, passthrough: bool) -> OutputConfig {
        let kind = match flag {
            "-" => OutputKind::Stdout {},
            path => OutputKind::File { path: path.into() },
        };
        OutputConfig {
            name: None,
            format,
            passthrough,
            kind,
        }
    }

    fn type_name(&self) -> &'static str {
        match self.kind {
            OutputKind::Stdout {} => "stdout",
            OutputKind::File { .. } => "file",
        }
    }

    /// Opens the output; `index` numbers unnamed outputs, `spool_root` holds spools.
    ///
    /// # Errors
    /// The destination cannot be opened or its settings are invalid.
    pub fn build(&self, index: usize, _spool_root: &Path) -> Result<Output> {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{index}", self.type_name()));
        let sink: Box<dyn AlertSink> = match &self.kind {
            OutputKind::Stdout {} => Box::new(StdoutSink::new()),
            OutputKind::File { path } => Box::new(FileSink::open(path)?),
        };
        Ok(Output {
            name,
            sink,
            format: self.format,
            passthrough: self.passthrough,
        })
    }
}
