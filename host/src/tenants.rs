//! Tenants: who runs which detector under which limits, and which events reach whom.
//!
//! The default tenant is the config's `tenant` (built from the top-level `component`,
//! `engine`, `[detector]` and `[limits]`, unless a `[[tenants]]` entry has its name).
//! Every `[[tenants]]` entry adds one: its own component instance and wasmtime `Store`
//! (one engine shared), its own baseline namespace (the host pins the tenant on every
//! import call), its own limits and its own pipeline thread in `serve`, so a guest that
//! loops costs its own batches their deadline and nobody else's.
//!
//! Routing, first match wins: the HTTP path `/tenants/<name>/events`; a Forward tag
//! starting with the tenant's `forward_tag_prefix` (default `tenants.<name>.`); the
//! value of the top-level `route_field` of each record listed in a tenant's
//! `route_values`; otherwise the default tenant.

use std::path::PathBuf;

use anyhow::{Result, ensure};
use serde::Deserialize;
use serde_json::Value;

use crate::runtime::{EngineKind, GuestLimits};

/// One `[[tenants]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Name: the baseline namespace, the `tenant` of its alerts, the metric label, and
    /// the HTTP path segment. Letters, digits, `-` and `_`.
    pub name: String,
    /// A detector component file; the built-in detections when absent.
    #[serde(default)]
    pub component: Option<PathBuf>,
    /// Run the component or the native build of the built-in detections.
    #[serde(default)]
    pub engine: EngineKind,
    /// Detector settings, handed to `configure` as JSON.
    #[serde(default)]
    pub detector: toml::Table,
    /// Largest linear memory, MiB [default: the `[limits]` table's].
    pub memory_mb: Option<u64>,
    /// Deadline of one call, milliseconds [default: the `[limits]` table's].
    pub batch_cpu_ms: Option<u64>,
    /// Fuel per call; runs the tenant on the fuel-metering engine [default: off].
    pub fuel: Option<u64>,
    /// Most alerts per batch [default: the `[limits]` table's].
    pub max_alerts: Option<usize>,
    /// Most import calls per call [default: the `[limits]` table's].
    pub max_import_calls: Option<u64>,
    /// Most bytes passed to imports per call [default: the `[limits]` table's].
    pub max_import_bytes: Option<u64>,
    /// Forward tags starting with this go to this tenant [default: `tenants.<name>.`].
    pub forward_tag_prefix: Option<String>,
    /// Values of the top-level `route_field` that go to this tenant.
    #[serde(default)]
    pub route_values: Vec<String>,
}

/// A tenant with everything resolved: what to build and how to route to it.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSpec {
    /// Name.
    pub name: String,
    /// Component or native.
    pub engine: EngineKind,
    /// Component file, or the built-in one.
    pub component: Option<PathBuf>,
    /// Settings as a JSON object.
    pub settings: String,
    /// Sandbox limits.
    pub limits: GuestLimits,
    /// Forward tag prefix routed here (none for the default tenant, which gets the rest).
    pub forward_tag_prefix: Option<String>,
    /// `route_field` values routed here.
    pub route_values: Vec<String>,
}

/// Checks a tenant name: 1-64 ASCII letters, digits, `-` or `_`.
///
/// # Errors
/// The name breaks that rule; the message quotes it.
pub fn check_name(name: &str) -> Result<()> {
    ensure!(!name.is_empty(), "tenant names must not be empty");
    ensure!(
        name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "tenant name {name:?} must be 1-64 letters, digits, '-' or '_'"
    );
    Ok(())
}

fn settings_json(table: &toml::Table) -> String {
    serde_json::to_string(table).expect("TOML tables convert to JSON")
}

impl TenantConfig {
    /// The tenant resolved: its limits default to `defaults`, its tag prefix to
    /// `tenants.<name>.`.
    pub fn spec(&self, defaults: &GuestLimits) -> TenantSpec {
        let limits = GuestLimits {
            memory_mb: self.memory_mb.unwrap_or(defaults.memory_mb),
            batch_cpu_ms: self.batch_cpu_ms.unwrap_or(defaults.batch_cpu_ms),
            fuel: self.fuel.or(defaults.fuel),
            max_alerts: self.max_alerts.unwrap_or(defaults.max_alerts),
            max_import_calls: self.max_import_calls.unwrap_or(defaults.max_import_calls),
            max_import_bytes: self.max_import_bytes.unwrap_or(defaults.max_import_bytes),
        };
        TenantSpec {
            name: self.name.clone(),
            engine: self.engine,
            component: self.component.clone(),
            settings: settings_json(&self.detector),
            limits,
            forward_tag_prefix: Some(
                self.forward_tag_prefix
                    .clone()
                    .unwrap_or_else(|| format!("tenants.{}.", self.name)),
            ),
            route_values: self.route_values.clone(),
        }
    }
}

/// Picks the tenant of each record.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// The default tenant.
    pub default: String,
    /// (tag prefix, tenant).
    pub tag_prefixes: Vec<(String, String)>,
    /// Dotted path of the routing field.
    pub route_field: Option<String>,
    /// (value, tenant).
    pub route_values: Vec<(String, String)>,
}

impl Routes {
    /// The routes of `specs` (the default tenant first).
    pub fn new(specs: &[TenantSpec], route_field: Option<String>) -> Routes {
        Routes {
            default: specs[0].name.clone(),
            tag_prefixes: specs
                .iter()
                .filter_map(|s| Some((s.forward_tag_prefix.clone()?, s.name.clone())))
                .collect(),
            route_field,
            route_values: specs
                .iter()
                .flat_map(|s| s.route_values.iter().map(|v| (v.clone(), s.name.clone())))
                .collect(),
        }
    }

    /// The tenant a Forward tag pins, if any.
    pub fn for_tag(&self, tag: &str) -> Option<&str> {
        self.tag_prefixes
            .iter()
            .find(|(prefix, _)| tag.starts_with(prefix.as_str()))
            .map(|(_, tenant)| tenant.as_str())
    }

    /// The tenant of one record by its routing field; the default tenant otherwise.
    pub fn for_record(&self, record: &Value) -> &str {
        let Some(path) = &self.route_field else {
            return &self.default;
        };
        let value = path
            .split('.')
            .try_fold(record, |v, step| v.get(step))
            .and_then(Value::as_str);
        value
            .and_then(|value| self.route_values.iter().find(|(v, _)| v == value))
            .map_or(self.default.as_str(), |(_, tenant)| tenant.as_str())
    }
}
