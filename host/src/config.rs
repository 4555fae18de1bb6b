//! The TOML configuration file, and building everything it names before input is read.
//!
//! Every key is optional; command-line flags override the file. The `[detector]` table
//! is handed to the detector's `configure` as JSON, so the detector itself validates
//! its settings and names the offending one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;

use crate::alert::Format;
pub use crate::runtime::EngineKind;
use crate::runtime::GuestLimits;
use crate::serve::outputs::OutputConfig;
use crate::sources::http::HttpSourceConfig;
use crate::store::redis::RedisConfig;
use crate::tenants::{self, TenantConfig, TenantSpec};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Tenant name: the namespace of the baselines, and the `tenant` of every alert.
    pub tenant: String,
    /// Directory of the durable baseline store.
    pub state_dir: PathBuf,
    /// Keep baselines in memory only (nothing survives the run).
    pub memory: bool,
    /// Where baselines live: the embedded store in `state_dir` (default) or Redis.
    pub store: StoreConfig,
    /// A detector component to run instead of the built-in one.
    pub component: Option<PathBuf>,
    /// Run the component or the native build of the built-in detections.
    pub engine: EngineKind,
    /// Alert format.
    pub format: Format,
    /// Events handed to the detector per call.
    pub batch_events: usize,
    /// Longest NDJSON record kept whole; a longer line is cut to the fields the
    /// detectors read while it is parsed, and skipped as `oversized` when even those
    /// are longer.
    pub max_record_bytes: usize,
    /// Flush pending alerts and baselines after this long without input.
    pub idle_flush_ms: u64,
    /// `serve`: how long the pipeline waits for another request or chunk (longer while
    /// one is still being received) before it runs the ones it holds, in the order of
    /// their earliest event time (senders deliver several at once, out of order); 0 runs
    /// each on arrival.
    pub settle_ms: u64,
    /// A field of each input object holding the CloudTrail record (a JSON string such as
    /// Fluent Bit's `log`, or an object); objects without it are read as records.
    pub record_field: Option<String>,
    /// Detector settings (see `minewatch detections --json` for the defaults).
    pub detector: toml::Table,
    /// Network sources of `serve`.
    pub sources: SourcesConfig,
    /// Where alerts go; `run` writes to stdout when there are none and no `--output`.
    pub outputs: Vec<OutputConfig>,
    /// Jobs (requests, chunks) queued in front of the pipeline before sources answer
    /// with back-pressure.
    pub queue_batches: usize,
    /// Sandbox limits of the default tenant, and the defaults of every `[[tenants]]`
    /// entry.
    pub limits: GuestLimits,
    /// Where batches a detector was stopped on are written (NDJSON)
    /// [default: `<state_dir>/dead-letter.ndjson`; none with `memory` or Redis].
    pub dead_letter_path: Option<PathBuf>,
    /// More tenants, each with its own detector, limits, baselines and routes.
    pub tenants: Vec<TenantConfig>,
    /// Dotted path of a record field whose value picks the tenant (see `route_values`).
    pub route_field: Option<String>,
    /// `[incidents]`: how alerts add up to risk-based incidents.
    pub incidents: crate::incidents::IncidentSettings,
    /// Where network outputs spool undelivered alerts (`<spool_dir>/<output name>/`)
    /// [default: `<state_dir>/spool`; required with `memory = true`].
    pub spool_dir: Option<PathBuf>,
}

/// Which baseline store to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// redb in `state_dir` (or memory only with `memory = true`): one process.
    #[default]
    Embedded,
    /// A Redis or Valkey server shared by a fleet of sidecars.
    Redis,
}

/// The `[store]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `embedded` or `redis`.
    pub backend: StoreBackend,
    /// `[store.redis]`: how to reach the server.
    pub redis: RedisConfig,
}

/// The listeners of `serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourcesConfig {
    /// `POST /events` (Vector `http` sink, Fluent Bit / Fluentd `out_http`), `/health`, `/metrics`.
    pub http: Option<HttpSourceConfig>,
    /// The Fluent Forward protocol (Fluent Bit / Fluentd `out_forward`).
    pub forward: Option<crate::sources::fluent::ForwardConfig>,
    /// Bytes all sources together may hold in flight: bodies and messages as they
    /// arrive, inflated, and parsed (see [`crate::sources::budget`]); past it a request
    /// is answered 503 and a Forward connection is closed without its ack, both retried
    /// by the senders.
    pub max_inflight_bytes: usize,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        SourcesConfig {
            http: None,
            forward: None,
            max_inflight_bytes: crate::sources::budget::DEFAULT_MAX_INFLIGHT_BYTES,
        }
    }
}

impl SourcesConfig {
    /// Checks each listener's settings, and refuses listeners beyond loopback that would
    /// send a secret in clear or take events from anyone (see
    /// [`crate::sources::check_exposure`]). Run after the command-line flags and
    /// environment variables are applied, since they can supply the secrets.
    ///
    /// # Errors
    /// Every problem, one per line.
    pub fn check(&self) -> Result<()> {
        let problems: Vec<String> = [
            self.http.as_ref().map(HttpSourceConfig::check),
            self.forward
                .as_ref()
                .map(crate::sources::fluent::ForwardConfig::check),
        ]
        .into_iter()
        .flatten()
        .filter_map(|result| result.err().map(|error| format!("{error:#}")))
        .chain((self.max_inflight_bytes < 1 << 20).then(|| {
            format!(
                "sources.max_inflight_bytes must be at least 1 MiB, not {}",
                self.max_inflight_bytes
            )
        }))
        .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            anyhow::bail!(problems.join("\n"))
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tenant: "default".into(),
            state_dir: PathBuf::from("minewatch-state"),
            memory: false,
            store: StoreConfig::default(),
            component: None,
            engine: EngineKind::Component,
            format: Format::Native,
            batch_events: 512,
            max_record_bytes: 1 << 20,
            idle_flush_ms: 1000,
            settle_ms: 250,
            record_field: None,
            detector: toml::Table::new(),
            sources: SourcesConfig::default(),
            outputs: Vec::new(),
            queue_batches: 16,
            limits: GuestLimits::default(),
            dead_letter_path: None,
            tenants: Vec::new(),
            route_field: None,
            incidents: crate::incidents::IncidentSettings::default(),
            spool_dir: None,
        }
    }
}

impl Config {
    /// Reads and parses a configuration file.
    ///
    /// # Errors
    /// The file cannot be read, or is not valid TOML for this schema (unknown keys included).
    pub fn load(path: &Path) -> Result<Config> {
        let config = Config::parse(path)?;
        config.check_default_tenant()?;
        config.check()?;
        Ok(config)
    }

    /// A `[[tenants]]` entry must not take the default tenant's name: the default
    /// tenant's detector is the top-level `component` and `[detector]`. (`--tenant`
    /// picks an entry as the one `run` uses, after this check.)
    fn check_default_tenant(&self) -> Result<()> {
        anyhow::ensure!(
            !self.tenants.iter().any(|t| t.name == self.tenant),
            "[[tenants]] name = {:?} is the default tenant (`tenant`), whose detector is set by \
             the top-level component and [detector]: rename the entry, or move its settings \
             to the top level",
            self.tenant
        );
        Ok(())
    }

    /// Reads a configuration file without checking its values (see [`Config::problems`]).
    ///
    /// # Errors
    /// The file cannot be read or is not valid TOML of this shape.
    pub fn parse(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))
    }

    /// Checks the values serde cannot.
    ///
    /// # Errors
    /// A value out of range, named.
    pub fn check(&self) -> Result<()> {
        anyhow::ensure!(self.batch_events > 0, "batch_events must be at least 1");
        anyhow::ensure!(
            self.max_record_bytes >= 1024,
            "max_record_bytes must be at least 1024"
        );
        anyhow::ensure!(!self.tenant.is_empty(), "tenant must not be empty");
        anyhow::ensure!(self.queue_batches > 0, "queue_batches must be at least 1");
        anyhow::ensure!(
            !(self.memory && self.store.backend == StoreBackend::Redis),
            "memory = true and store.backend = \"redis\" exclude each other"
        );
        self.incidents.check()?;
        self.check_outputs()?;
        self.tenant_specs()?;
        Ok(())
    }

    /// Every problem [`Config::check`] finds, not only the first (for `validate`).
    pub fn problems(&self) -> Vec<String> {
        let checks: [&dyn Fn() -> Result<()>; 3] = [
            &|| self.check_default_tenant(),
            &|| {
                let mut basic = self.clone();
                basic.outputs.clear();
                basic.tenants.clear();
                basic.route_field = None;
                basic.check()
            },
            &|| self.tenant_specs().map(|_| ()),
        ];
        let mut problems: Vec<String> = checks
            .iter()
            .filter_map(|check| check().err().map(|e| format!("{e:#}")))
            .collect();
        problems.extend(self.output_problems());
        problems
    }

    /// Output names are unique (they name spool directories and metrics), and a spool
    /// has a directory even when nothing else is kept on disk.
    fn check_outputs(&self) -> Result<()> {
        match self.output_problems().into_iter().next() {
            Some(problem) => Err(anyhow::anyhow!(problem)),
            None => Ok(()),
        }
    }

    /// Every problem [`Config::check_outputs`] would name, in order.
    fn output_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, output) in self.outputs.iter().enumerate() {
            let name = output.display_name(i);
            if !names.insert(name.clone()) {
                problems.push(format!(
                    "two outputs are named {name:?}: output names must differ (they name the \
                     spool directories and the metrics)"
                ));
            }
            if output.spools() && self.memory && self.spool_dir.is_none() {
                problems.push(format!(
                    "output {name} (number {}) spools undelivered alerts on disk, but memory = \
                     true keeps nothing there: set spool_dir to the directory it may use",
                    i + 1
                ));
            }
        }
        problems
    }

    /// Where network outputs spool.
    pub fn spool_root(&self) -> PathBuf {
        self.spool_dir
            .clone()
            .unwrap_or_else(|| self.state_dir.join("spool"))
    }

    /// The dead-letter file, if there is one.
    pub fn dead_letter(&self) -> Option<PathBuf> {
        match &self.dead_letter_path {
            Some(path) => Some(path.clone()),
            // Nothing on disk unless asked: in memory, or with the baselines in Redis.
            None if self.memory || self.store.backend == StoreBackend::Redis => None,
            None => Some(self.state_dir.join("dead-letter.ndjson")),
        }
    }

    /// The `[detector]` table as the JSON object `configure` takes.
    pub fn detector_settings(&self) -> String {
        serde_json::to_string(&self.detector).expect("TOML tables convert to JSON")
    }
}

impl Config {
    /// Every tenant, the default one (`tenant`) first.
    ///
    /// # Errors
    /// A name is invalid or repeated, a limit is out of range, a route value or tag
    /// prefix is claimed twice, or `route_values` are set without `route_field`.
    pub fn tenant_specs(&self) -> Result<Vec<TenantSpec>> {
        tenants::check_name(&self.tenant)?;
        let default = match self.tenants.iter().find(|t| t.name == self.tenant) {
            Some(entry) => TenantSpec {
                forward_tag_prefix: None,
                ..entry.spec(&self.limits)
            },
            None => TenantSpec {
                name: self.tenant.clone(),
                engine: self.engine,
                component: self.component.clone(),
                settings: self.detector_settings(),
                limits: self.limits,
                forward_tag_prefix: None,
                route_values: Vec::new(),
            },
        };
        let mut specs = vec![default];
        for entry in self.tenants.iter().filter(|t| t.name != self.tenant) {
            tenants::check_name(&entry.name)?;
            if specs.iter().any(|s| s.name == entry.name) {
                bail!("tenant {:?} is defined twice", entry.name);
            }
            specs.push(entry.spec(&self.limits));
        }
        for spec in &specs {
            spec.limits
                .check()
                .map_err(|e| anyhow::anyhow!("tenant {}: {e}", spec.name))?;
            ensure!(
                spec.route_values.is_empty() || self.route_field.is_some(),
                "tenant {} has route_values but no route_field is set",
                spec.name
            );
        }
        for (i, a) in specs.iter().enumerate() {
            for b in &specs[i + 1..] {
                if let Some(value) = a.route_values.iter().find(|v| b.route_values.contains(v)) {
                    bail!(
                        "route value {value:?} is claimed by tenants {} and {}",
                        a.name,
                        b.name
                    );
                }
                if let (Some(pa), Some(pb)) = (&a.forward_tag_prefix, &b.forward_tag_prefix)
                    && (pa.starts_with(pb.as_str()) || pb.starts_with(pa.as_str()))
                {
                    bail!(
                        "forward tag prefixes {pa:?} ({}) and {pb:?} ({}) overlap",
                        a.name,
                        b.name
                    );
                }
            }
        }
        Ok(specs)
    }

    /// The spec of the tenant `run` and `baseline build` use (`tenant`, or `--tenant`).
    ///
    /// # Errors
    /// As [`Config::tenant_specs`].
    pub fn default_tenant(&self) -> Result<TenantSpec> {
        Ok(self.tenant_specs()?.swap_remove(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenants::Routes;

    #[test]
    fn unknown_keys_are_errors() {
        let err = toml::from_str::<Config>("batch_event = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("batch_event"), "{err}");
    }

    #[test]
    fn detector_table_becomes_json() {
        let config: Config = toml::from_str(
            "tenant = \"acme\"\n[detector]\nidentity = \"arn\"\n[detector.launch_spike]\nk = 3.5\n",
        )
        .unwrap();
        assert_eq!(config.tenant, "acme");
        let json: serde_json::Value = serde_json::from_str(&config.detector_settings()).unwrap();
        assert_eq!(json["identity"], "arn");
        assert_eq!(json["launch_spike"]["k"], 3.5);
    }

    #[test]
    fn redis_store_table() {
        let config: Config = toml::from_str(
            "[store]\nbackend = \"redis\"\n[store.redis]\nurl = \"redis://10.0.0.5:6380/2\"\n",
        )
        .unwrap();
        assert_eq!(config.store.backend, StoreBackend::Redis);
        assert_eq!(config.store.redis.url, "redis://10.0.0.5:6380/2");
        assert_eq!(config.store.redis.key_prefix, "minewatch");
        let both = Config {
            memory: true,
            ..config
        };
        assert!(both.check().unwrap_err().to_string().contains("exclude"));
    }

    fn config(text: &str) -> Config {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn tenants_resolve_with_defaults_and_routes() {
        let config = config(
            r#"
route_field = "recipientAccountId"
[limits]
batch_cpu_ms = 250
[[tenants]]
name = "acme"
memory_mb = 32
route_values = ["111122223333"]
[tenants.detector]
identity = "arn"
"#,
        );
        let specs = config.tenant_specs().unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].name, "default");
        assert_eq!(specs[0].limits.batch_cpu_ms, 250);
        let acme = &specs[1];
        assert_eq!(acme.limits.memory_mb, 32);
        assert_eq!(acme.limits.batch_cpu_ms, 250);
        assert_eq!(acme.settings, r#"{"identity":"arn"}"#);
        assert_eq!(acme.forward_tag_prefix.as_deref(), Some("tenants.acme."));
        let routes = Routes::new(&specs, config.route_field.clone());
        let mine = serde_json::json!({"recipientAccountId": "111122223333"});
        let other = serde_json::json!({"recipientAccountId": "444455556666"});
        assert_eq!(routes.for_record(&mine), "acme");
        assert_eq!(routes.for_record(&other), "default");
        assert_eq!(routes.for_tag("tenants.acme.cloudtrail"), Some("acme"));
        assert_eq!(routes.for_tag("cloudtrail"), None);
    }

    #[test]
    fn bad_tenants_are_named() {
        for (text, expected) in [
            ("[[tenants]]\nname = \"a/b\"\n", "must be 1-64"),
            (
                "[[tenants]]\nname = \"a\"\n[[tenants]]\nname = \"a\"\n",
                "defined twice",
            ),
            (
                "[[tenants]]\nname = \"a\"\nroute_values = [\"1\"]\n",
                "no route_field",
            ),
            (
                "[[tenants]]\nname = \"a\"\nbatch_cpu_ms = 0\n",
                "tenant a: batch_cpu_ms",
            ),
            (
                "[[tenants]]\nname = \"a\"\nforward_tag_prefix = \"x\"\n[[tenants]]\nname = \"b\"\nforward_tag_prefix = \"x.y\"\n",
                "overlap",
            ),
        ] {
            let error = config(text).tenant_specs().unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
