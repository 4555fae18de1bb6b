//! The `[[outputs]]` of the configuration and building them.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Deserialize;

use crate::alert::Format;
use crate::pipeline::Output;
use crate::sinks::{AlertSink, FileSink, StdoutSink};

/// One output: where alerts (or passthrough events) go, and in which format.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OutputKind {
    /// Standard output, NDJSON.
    Stdout {},
    /// An NDJSON file, appended and fsynced per batch.
    File {
        /// The file.
        path: PathBuf,
    },
    /// HTTP POST of NDJSON or a JSON array (Vector `http_server`, Fluent Bit / Fluentd `in_http`).
    Http(crate::sinks::http::HttpConfig),
    /// Splunk HTTP Event Collector.
    SplunkHec(crate::sinks::hec::HecConfig),
    /// Fluent Forward with acknowledgements (Fluent Bit / Fluentd `in_forward`).
    Forward(crate::sinks::forward::ForwardConfig),
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
            OutputKind::Http(_) => "http",
            OutputKind::SplunkHec(_) => "splunk_hec",
            OutputKind::Forward(_) => "forward",
        }
    }

    /// Whether the output spools undelivered alerts on disk (the network outputs).
    pub fn spools(&self) -> bool {
        matches!(
            self.kind,
            OutputKind::Http(_) | OutputKind::SplunkHec(_) | OutputKind::Forward(_)
        )
    }

    /// The output's name: `name`, or its type numbered by `index`.
    pub fn display_name(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}-{index}", self.type_name()))
    }

    /// Checks the settings of a network output without starting it (for `minewatch
    /// validate`): endpoints, headers, timeouts, and every TLS file it names.
    ///
    /// # Errors
    /// The first invalid setting, named.
    pub fn check(&self) -> Result<Vec<crate::tls::Finding>> {
        match &self.kind {
            OutputKind::Stdout {} | OutputKind::File { .. } => Ok(Vec::new()),
            OutputKind::Http(config) => config.check(),
            OutputKind::SplunkHec(config) => config.check(),
            OutputKind::Forward(config) => config.check(),
        }
    }

    /// Opens the output; `index` numbers unnamed outputs, `spool_root` holds the spools
    /// of network outputs (`<spool_root>/<name>/`).
    ///
    /// # Errors
    /// The destination cannot be opened or its settings are invalid.
    pub fn build(&self, index: usize, spool_root: &Path) -> Result<Output> {
        let name = self.display_name(index);
        let sink: Box<dyn AlertSink> = match &self.kind {
            OutputKind::Stdout {} => Box::new(Counted::new(&name, Box::new(StdoutSink::new()))),
            OutputKind::File { path } => {
                Box::new(Counted::new(&name, Box::new(FileSink::open(path)?)))
            }
            OutputKind::Http(config) => Box::new(config.build(&name, spool_root)?),
            OutputKind::SplunkHec(config) => Box::new(config.build(&name, spool_root)?),
            OutputKind::Forward(config) => Box::new(config.build(&name, spool_root)?),
        };
        Ok(Output {
            name,
            sink,
            format: self.format,
            passthrough: self.passthrough,
        })
    }
}

/// An output written synchronously (stdout, a file), counting in
/// `minewatch_alerts_sent_total{output}` the items each successful flush wrote out, as
/// the spooled outputs count what their receiver took.
struct Counted {
    name: String,
    sink: Box<dyn AlertSink>,
    /// Items written since the last successful flush.
    pending: u64,
}

impl Counted {
    fn new(name: &str, sink: Box<dyn AlertSink>) -> Counted {
        Counted {
            name: name.to_string(),
            sink,
            pending: 0,
        }
    }
}

impl AlertSink for Counted {
    fn write(&mut self, item: &serde_json::Value) -> Result<()> {
        self.sink.write(item)?;
        self.pending += 1;
        Ok(())
    }

    fn write_line(&mut self, line: &[u8]) -> Result<()> {
        self.sink.write_line(line)?;
        self.pending += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.sink.flush()?;
        if self.pending > 0 {
            metrics::counter!("minewatch_alerts_sent_total", "output" => self.name.clone())
                .increment(std::mem::take(&mut self.pending));
        }
        Ok(())
    }

    fn has_room(&self) -> bool {
        self.sink.has_room()
    }
}
