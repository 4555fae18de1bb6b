//! The settings every network output shares (TLS client files; spool, batch and retry
//! limits) and the one way a network output is checked and started from them.
//!
//! An output is one flat TOML table (`[[outputs]]` with `type = "http"`, say): its own
//! keys and the shared ones side by side. [`NetworkOutput`] reads that table, takes the
//! shared keys out into [`ClientTls`] and [`SpoolSettings`], and hands the rest to the
//! output's own settings (a [`Destination`]), each part rejecting keys it does not know.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::spool::{self, Delivery, SinkOptions, SpoolOptions, SpooledSink};
use crate::tls::Finding;
use crate::tls::client::ClientTls;

/// An output's own settings: where it sends and how, without the shared ones.
pub trait Destination: DeserializeOwned {
    /// What sends one batch.
    type Delivery: Delivery;

    /// The output type, as in `type = "..."` (for messages).
    const TYPE: &'static str;

    /// Checks the settings and makes the delivery; `tls` are the output's TLS settings,
    /// `name` names it in logs.
    ///
    /// # Errors
    /// A setting is invalid; the message names it.
    fn delivery(&self, tls: &ClientTls, name: &str) -> Result<Self::Delivery>;

    /// Whether the output speaks TLS (an `https://` endpoint, or `tls = true`).
    fn uses_tls(&self) -> bool;
}

/// The spool, batch and retry settings of a network output.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolSettings {
    /// Most items in one request or message.
    pub batch_max_events: usize,
    /// Most bytes of items (as JSON lines) in one request or message, before envelopes
    /// and compression (a bigger single item goes alone).
    pub batch_max_bytes: usize,
    /// Undelivered bytes the spool holds before minewatch pushes back on its input.
    pub spool_max_bytes: u64,
    /// Size of one spool segment file, in bytes.
    pub spool_segment_bytes: u64,
    /// Delay before the first retry of a failed send, in milliseconds.
    pub retry_initial_ms: u64,
    /// Longest delay between retries, in milliseconds.
    pub retry_max_ms: u64,
}

impl Default for SpoolSettings {
    fn default() -> Self {
        SpoolSettings {
            batch_max_events: spool::DEFAULT_BATCH_MAX_EVENTS,
            batch_max_bytes: spool::DEFAULT_BATCH_MAX_BYTES,
            spool_max_bytes: spool::DEFAULT_SPOOL_MAX_BYTES,
            spool_segment_bytes: spool::DEFAULT_SEGMENT_BYTES,
            retry_initial_ms: super::retry::DEFAULT_INITIAL_MS,
            retry_max_ms: super::retry::DEFAULT_MAX_MS,
        }
    }
}

impl SpoolSettings {
    /// The keys of these settings in an output's table.
    pub const KEYS: [&'static str; 6] = [
        "batch_max_events",
        "batch_max_bytes",
        "spool_max_bytes",
        "spool_segment_bytes",
        "retry_initial_ms",
        "retry_max_ms",
    ];

    /// The spooled sink's options.
    pub fn sink_options(&self) -> SinkOptions {
        SinkOptions {
            spool: SpoolOptions {
                max_bytes: self.spool_max_bytes,
                segment_bytes: self.spool_segment_bytes,
            },
            batch_max_events: self.batch_max_events,
            batch_max_bytes: self.batch_max_bytes,
            retry_initial: Duration::from_millis(self.retry_initial_ms),
            retry_max: Duration::from_millis(self.retry_max_ms),
            ..SinkOptions::default()
        }
    }
}

/// The keys of [`ClientTls`] in an output's table.
const TLS_KEYS: [&str; 4] = ["ca_file", "tls_verify", "tls_cert", "tls_key"];

/// A network output's settings: its own (`T`), its TLS client settings and its spool.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkOutput<T> {
    /// The output's own settings.
    pub destination: T,
    /// Whom to trust and which client certificate to present.
    pub tls: ClientTls,
    /// Spool, batch and retry limits.
    pub spool: SpoolSettings,
}

impl<T: Destination> NetworkOutput<T> {
    /// Checks the settings and starts the output, spooling in `<spool_dir>/<name>/`.
    ///
    /// # Errors
    /// A setting is invalid (the message names it), or the spool cannot be opened.
    pub fn build(&self, name: &str, spool_dir: &Path) -> Result<SpooledSink<T::Delivery>> {
        let delivery = self
            .destination
            .delivery(&self.tls, name)
            .with_context(|| format!("output {name}: invalid {} settings", T::TYPE))?;
        let dir = spool::output_dir(spool_dir, name)?;
        SpooledSink::new(name, &dir, delivery, self.spool.sink_options())
            .with_context(|| format!("output {name}: failed to start"))
    }

    /// The delivery alone, for tests and embedding.
    ///
    /// # Errors
    /// A setting is invalid; the message names it.
    pub fn delivery(&self) -> Result<T::Delivery> {
        self.destination.delivery(&self.tls, T::TYPE)
    }

    /// Checks the settings without starting the output (for `minewatch validate`):
    /// everything [`build`](Self::build) checks but the spool, and every TLS file named,
    /// with what is worth a warning in them (certificates close to expiry, say).
    ///
    /// # Errors
    /// An invalid setting, named.
    pub fn check(&self) -> Result<Vec<Finding>> {
        self.delivery()?;
        self.spool.sink_options().validate()?;
        if self.destination.uses_tls() {
            self.tls.findings()
        } else {
            Ok(Vec::new())
        }
    }
}

impl<'de, T: Destination> Deserialize<'de> for NetworkOutput<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut table = Map::deserialize(deserializer)?;
        let mut take = |keys: &[&str]| -> Value {
            let part = keys.iter().filter_map(|key| table.remove_entry(*key));
            Value::Object(part.collect())
        };
        let tls = serde_json::from_value(take(&TLS_KEYS)).map_err(D::Error::custom)?;
        let spool = serde_json::from_value(take(&SpoolSettings::KEYS)).map_err(D::Error::custom)?;
        let destination = serde_json::from_value(Value::Object(table)).map_err(|error| {
            let message = error.to_string();
            if message.starts_with("unknown field") {
                D::Error::custom(format!(
                    "{message}, or one every network output takes: {}, {}",
                    TLS_KEYS.join(", "),
                    SpoolSettings::KEYS.join(", ")
                ))
            } else {
                D::Error::custom(message)
            }
        })?;
        Ok(NetworkOutput {
            destination,
            tls,
            spool,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sinks::http::HttpConfig;

    #[test]
    fn the_shared_keys_are_exactly_the_settings_fields() {
        let spool = serde_json::to_value(SpoolSettings::default()).unwrap();
        let keys: Vec<&str> = spool
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = SpoolSettings::KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want);
        let tls = serde_json::to_value(ClientTls::default()).unwrap();
        let keys: Vec<&str> = tls
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = TLS_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want);
    }

    #[test]
    fn one_flat_table_fills_all_three_parts() {
        let output: HttpConfig = serde_json::from_value(json!({
            "endpoint": "https://alerts.example.com/",
            "framing": "json_array",
            "tls_verify": false,
            "ca_file": "/etc/ca.pem",
            "batch_max_events": 10,
            "retry_max_ms": 5000,
        }))
        .unwrap();
        assert_eq!(output.destination.endpoint, "https://alerts.example.com/");
        assert!(!output.tls.verify);
        assert_eq!(
            output.tls.ca_file.as_deref(),
            Some(Path::new("/etc/ca.pem"))
        );
        assert_eq!(output.spool.batch_max_events, 10);
        assert_eq!(output.spool.retry_max_ms, 5000);
        assert_eq!(
            output.spool.spool_max_bytes,
            SpoolSettings::default().spool_max_bytes
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_every_key_that_would_do() {
        let error = serde_json::from_value::<HttpConfig>(json!({
            "endpoint": "http://127.0.0.1:9/",
            "batch_max_event": 10,
        }))
        .unwrap_err()
        .to_string();
        assert!(error.contains("unknown field `batch_max_event`"), "{error}");
        assert!(error.contains("endpoint"), "{error}");
        assert!(error.contains("batch_max_events"), "{error}");
        assert!(error.contains("tls_verify"), "{error}");
    }
}
