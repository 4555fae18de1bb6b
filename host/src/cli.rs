//! The command line, as typed clap definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use minewatch::alert::Format;
use minewatch::config::EngineKind;

const EXIT_CODES: &str = "\
Exit status:
  0  success (skipped records are counted and logged, not errors)
  1  configuration, startup or output error
  2  command-line usage error
  3  an input could not be read at all (the other inputs were processed)

Logs go to stderr; set MINEWATCH_LOG (e.g. debug, or minewatch=debug) to change the level.";

/// Streaming detector for cryptojacking in AWS CloudTrail, Google Cloud Audit Logs and the
/// Azure Activity Log (Splunk's AWS and Cloud Cryptomining stories).
#[derive(Debug, Parser)]
#[command(name = "minewatch", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, global = true, default_value = "text")]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read audit-log records, run the detections, write alerts.
    Run(RunArgs),
    /// Run as a sidecar: HTTP and Fluent Forward ingest, alerts to one or more outputs.
    Serve(ServeArgs),
    /// Build, inspect and move baselines.
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// List the detections of the built-in (or a given) component.
    Detections(DetectionsArgs),
    /// Check a configuration file: parse it, build the detector, check the state directory,
    /// the listeners' exposure and every TLS certificate and key.
    Validate(ValidateArgs),
    /// Replay inputs like `run` and write a backtest report: one HTML page with the
    /// alerts, launch-rate charts with both rules' thresholds, and the first-seen sets.
    Report(ReportArgs),
}

/// The inputs of commands that replay records.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// Input file or directory (recursively: .json, .json.gz, .ndjson, .jsonl, .log), or - for stdin.
    /// Repeatable; stdin when absent.
    #[arg(long, short, value_name = "PATH")]
    pub input: Vec<String>,
}

/// Options shared by commands that run the detector.
#[derive(Debug, Clone, Args)]
pub struct DetectorArgs {
    /// Configuration file (TOML). `serve` reloads its detectors on SIGHUP and when it
    /// or a component it names changes.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Baseline state directory [default: ./minewatch-state].
    #[arg(long, value_name = "DIR", conflicts_with = "memory")]
    pub state: Option<PathBuf>,
    /// Keep baselines in memory only; nothing is written to disk.
    #[arg(long)]
    pub memory: bool,
    /// Keep baselines in this Redis (or Valkey), shared with other sidecars.
    #[arg(long, value_name = "URL", conflicts_with_all = ["memory", "state"])]
    pub redis: Option<String>,
    /// Run this detector component instead of the built-in one.
    #[arg(long, value_name = "FILE.wasm")]
    pub component: Option<PathBuf>,
    /// Run the component (sandboxed) or the native build of the built-in detections.
    #[arg(long, value_enum)]
    pub engine: Option<EngineKind>,
    /// Tenant whose baselines are used [default: default].
    #[arg(long)]
    pub tenant: Option<String>,
    /// A field of each input object that holds the CloudTrail record (a JSON string such
    /// as Fluent Bit's `log`, or an object); objects without it are read as records.
    #[arg(long, value_name = "FIELD")]
    pub record_field: Option<String>,
}

/// `minewatch run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Inputs.
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Alert output file (NDJSON, appended), or - for stdout [default: -].
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<String>,
    /// Alert format.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Transform mode: write every input event, unchanged but for a `minewatch_alerts`
    /// field on those that triggered alerts, instead of the alerts alone.
    #[arg(long)]
    pub passthrough: bool,
    /// Detector and baseline options.
    #[command(flatten)]
    pub detector: DetectorArgs,
}

/// `minewatch serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Listen for HTTP (`POST /events`, `/firehose`, `/tenants/{name}/...`, `GET /health`, `/ready`, `/metrics`) on this address (`host:port`; port 0 picks a free one, logged at start).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<minewatch::sources::ListenAddr>,
    /// Listen for the Fluent Forward protocol (Fluent Bit / Fluentd `out_forward`) on this address.
    #[arg(long, value_name = "ADDR")]
    pub forward: Option<minewatch::sources::ListenAddr>,
    /// Alert output: a file (NDJSON, appended) or - for stdout. Repeatable; replaces the
    /// config's outputs [default: -].
    #[arg(long, short, value_name = "PATH")]
    pub output: Vec<String>,
    /// Alert format of the outputs given with --output.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Outputs given with --output write every event with its alerts attached.
    #[arg(long)]
    pub passthrough: bool,
    /// The sources' secrets.
    #[command(flatten)]
    pub secrets: SecretArgs,
    /// Detector and baseline options.
    #[command(flatten)]
    pub detector: DetectorArgs,
}

/// `minewatch report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Inputs.
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Report file (HTML, or JSON with --json), or - for stdout [default: -].
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<String>,
    /// Write the report's facts as JSON instead of the HTML page.
    #[arg(long)]
    pub json: bool,
    /// Chart the launches of this many principals with the most launches, besides every
    /// principal with an alert.
    #[arg(long, value_name = "N", default_value_t = minewatch::report::DEFAULT_TOP_PRINCIPALS)]
    pub top_principals: usize,
    /// Detector and baseline options.
    #[command(flatten)]
    pub detector: DetectorArgs,
}

/// Secrets of the sources, from flags or (better: `ps` does not show them) the
/// environment, e.g. a systemd `EnvironmentFile` or a Kubernetes secret.
#[derive(Debug, Clone, Args)]
pub struct SecretArgs {
    /// Bearer token the HTTP source requires; overrides `[sources.http] token`.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "MINEWATCH_HTTP_TOKEN",
        hide_env_values = true
    )]
    pub http_token: Option<String>,
    /// Shared key of the Forward source's handshake; overrides `[sources.forward]
    /// shared_key`.
    #[arg(
        long,
        value_name = "KEY",
        env = "MINEWATCH_FORWARD_SHARED_KEY",
        hide_env_values = true
    )]
    pub forward_shared_key: Option<String>,
}

/// `minewatch baseline ...`.
#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Replay history into the baselines without alerting (Splunk's support searches).
    Build(BuildArgs),
    /// Summarise the baselines.
    Show(ShowArgs),
    /// Write the baselines as NDJSON.
    Export(ExportArgs),
    /// Merge an NDJSON export into the baselines.
    Import(ImportArgs),
}

/// `minewatch baseline build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Input file or directory, or - for stdin. Repeatable.
    #[arg(long, short, value_name = "PATH", required = true)]
    pub input: Vec<String>,
    /// Detector and baseline options.
    #[command(flatten)]
    pub detector: DetectorArgs,
}

/// `minewatch baseline show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Baseline state directory [default: the config's `state_dir`, else ./minewatch-state].
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Configuration file: its `state_dir` (and, for export, its Redis store) apply.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also list the keys of every set (not the internal rate sets).
    #[arg(long)]
    pub keys: bool,
}

/// `minewatch baseline export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Baseline state directory [default: the config's `state_dir`, else ./minewatch-state].
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Configuration file: its `state_dir` (and, for export, its Redis store) apply.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Export the baselines a fleet keeps in this Redis instead.
    #[arg(long, value_name = "URL", conflicts_with = "state")]
    pub redis: Option<String>,
    /// Key prefix of the fleet's Redis keys (`[store.redis] key_prefix`).
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "minewatch",
        requires = "redis"
    )]
    pub key_prefix: String,
    /// Output file, or - for stdout [default: -].
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<String>,
    /// Export only this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
}

/// `minewatch baseline import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Baseline state directory [default: the config's `state_dir`, else ./minewatch-state].
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Configuration file: its `state_dir` (and, for export, its Redis store) apply.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// An export file, or - for stdin.
    #[arg(long, short, value_name = "PATH")]
    pub input: String,
}

/// `minewatch detections`.
#[derive(Debug, Args)]
pub struct DetectionsArgs {
    /// Print the full description (catalogue, subscription, fields, default settings) as JSON.
    #[arg(long)]
    pub json: bool,
    /// Describe this component instead of the built-in one.
    #[arg(long, value_name = "FILE.wasm")]
    pub component: Option<PathBuf>,
}

/// `minewatch validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The sources' secrets, as `serve` takes them.
    #[command(flatten)]
    pub secrets: SecretArgs,
}
