//! What the plugin reads at start: the settings file and the seed it names.
//!
//! Fluent Bit passes a `filter_wasm` module no arguments and no environment, only the
//! directories of `accessible_paths`. So the plugin looks for one JSON file,
//! [`SETTINGS_FILE`], relative to the working directory (reachable when
//! `accessible_paths` holds `.`, Fluent Bit's default); without it every setting keeps its
//! default. Relative paths inside it resolve the same way; absolute ones must lie under
//! an accessible path.

use serde::Deserialize;
use serde_json::{Map, Value};

/// The settings file's name, looked up in the working directory.
pub const SETTINGS_FILE: &str = "minewatch-filter.json";

/// The contents of [`SETTINGS_FILE`]; every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginSettings {
    /// Tenant named in alerts; also the tenant whose entries of the seed are loaded.
    pub tenant: String,
    /// A `minewatch baseline export` file to load before the first record.
    pub seed: Option<String>,
    /// The detector's settings: what the host's `[detector]` table holds, as JSON.
    pub detector: Map<String, Value>,
}

impl Default for PluginSettings {
    fn default() -> Self {
        PluginSettings {
            tenant: "default".into(),
            seed: None,
            detector: Map::new(),
        }
    }
}

impl PluginSettings {
    /// Parses the settings file's text.
    ///
    /// # Errors
    /// Not JSON, an unknown key or a value of the wrong type, naming it.
    pub fn from_json(text: &str) -> Result<PluginSettings, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_optional_and_unknown_keys_are_refused() {
        assert_eq!(
            PluginSettings::from_json("{}"),
            Ok(PluginSettings::default())
        );
        let s = PluginSettings::from_json(
            r#"{"tenant":"acme","seed":"baseline.ndjson","detector":{"identity":"arn"}}"#,
        )
        .unwrap();
        assert_eq!(s.tenant, "acme");
        assert_eq!(s.seed.as_deref(), Some("baseline.ndjson"));
        assert_eq!(s.detector["identity"], "arn");
        let error = PluginSettings::from_json(r#"{"tennant":"acme"}"#).unwrap_err();
        assert!(error.contains("unknown field `tennant`"), "{error}");
    }
}
