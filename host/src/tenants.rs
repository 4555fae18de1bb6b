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

use anyhow::{Result, bail, ensure};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{Config, EngineKind};
use crate::runtime::GuestLimits;

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

fn check_name(name: &str) -> Result<()> {
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
    fn spec(&self, defaults: &GuestLimits) -> TenantSpec {
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

impl Config {
    /// Every tenant, the default one (`tenant`) first.
    ///
    /// # Errors
    /// A name is invalid or repeated, a limit is out of range, a route value or tag
    /// prefix is claimed twice, or `route_values` are set without `route_field`.
    pub fn tenant_specs(&self) -> Result<Vec<TenantSpec>> {
        check_name(&self.tenant)?;
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
            check_name(&entry.name)?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
