//! The `splunk_hec` output: batches of spooled items sent to a Splunk HTTP Event
//! Collector (or anything that speaks its protocol, such as Fluent Bit's `in_splunk`
//! or Vector's `splunk_hec` source).
//!
//! Each batch is one POST to `<endpoint>/services/collector/event` with
//! `Authorization: Splunk <token>`; its body is the items' event envelopes one after
//! another, `{"time": <epoch seconds>, "host": …, "source": "minewatch", "sourcetype":
//! "minewatch:alert", "index": …, "event": <item>}`, `time` taken from the item (see
//! [`super::http`]) and left out when it has none (Splunk then uses the arrival time).
//! Incident records (native `incident_id`, OCSF class 2005) go under their own
//! sourcetype, `minewatch:incident` by default.
//! HEC answers `{"text":"Success","code":0}`. A 503 (code 9, server busy, or the
//! unhealthy codes 18-20), another 5xx, 408 or 429 is retried with backoff; 400, 401,
//! 403 and every other status moves the batch to the dead-letter file with an error
//! naming the HEC code. Indexer acknowledgement (channels, `/services/collector/ack`)
//! is not used: a 200 means HEC received the batch.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Result, anyhow, bail};
use serde::Deserialize;

use super::http::{Answer, Compression, Poster, Secret, endpoint_tls, item_time, parse_endpoint};
use super::settings::{Destination, NetworkOutput};
use super::spool::{Delivery, DeliveryError};
use crate::tls::client::ClientTls;

/// The HEC path events are posted to.
pub const EVENT_PATH: &str = "/services/collector/event";

/// The `splunk_hec` output's settings: [`HecDestination`] with the TLS and spool settings.
pub type HecConfig = NetworkOutput<HecDestination>;

/// The Splunk HTTP Event Collector the `splunk_hec` output sends to, and the events'
/// metadata.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HecDestination {
    /// Base URL of the collector, e.g. `https://http-inputs-acme.splunkcloud.com` or
    /// `http://splunk:8088`; `/services/collector/event` is added unless the path already
    /// names a collector endpoint. Splunk Cloud takes `https://` only.
    pub endpoint: String,
    /// The HEC token, sent as `Authorization: Splunk <token>`.
    pub token: Secret,
    /// The events' `host` (default: this machine's host name).
    #[serde(default)]
    pub host: Option<String>,
    /// The events' `source`.
    #[serde(default = "default_source")]
    pub source: String,
    /// The alerts' `sourcetype`.
    #[serde(default = "default_sourcetype")]
    pub sourcetype: String,
    /// The incident records' `sourcetype`.
    #[serde(default = "default_incident_sourcetype")]
    pub incident_sourcetype: String,
    /// The index to write to (default: the token's default index).
    #[serde(default)]
    pub index: Option<String>,
    /// Body compression: `none` (the default) or `gzip`.
    #[serde(default)]
    pub compression: Compression,
    /// Timeout of one whole request (connect, send, answer), in seconds.
    #[serde(default = "super::http::default_timeout_secs")]
    pub timeout_secs: u64,
}

/// Default `source` of the events.
pub const DEFAULT_SOURCE: &str = "minewatch";

/// Default `sourcetype` of the events.
pub const DEFAULT_SOURCETYPE: &str = "minewatch:alert";

fn default_source() -> String {
    DEFAULT_SOURCE.to_string()
}

fn default_sourcetype() -> String {
    DEFAULT_SOURCETYPE.to_string()
}

/// Default `sourcetype` of incident records.
pub const DEFAULT_INCIDENT_SOURCETYPE: &str = "minewatch:incident";

fn default_incident_sourcetype() -> String {
    DEFAULT_INCIDENT_SOURCETYPE.to_string()
}

impl Destination for HecDestination {
    type Delivery = HecDelivery;
    const TYPE: &'static str = "splunk_hec";

    fn uses_tls(&self) -> bool {
        self.endpoint.starts_with("https:")
    }

    fn delivery(&self, tls: &ClientTls, name: &str) -> Result<HecDelivery> {
        let url = event_url(&self.endpoint)?;
        let token = self.token.expose().trim();
        if token.is_empty() {
            bail!(
                "token is empty; set it to the HEC token from Splunk's Data inputs > HTTP Event Collector"
            );
        }
        let mut headers = BTreeMap::new();
        headers.insert(
            "Authorization".to_string(),
            Secret::new(format!("Splunk {token}")),
        );
        let tls = endpoint_tls(&url, tls, name)?;
        let poster = Poster::new(
            url,
            &headers,
            self.compression,
            self.timeout_secs,
            tls,
            "Splunk HEC",
        )?;
        let host = self.host.clone().or_else(super::http::hostname);
        let envelope = |sourcetype: &str| {
            let mut fields = serde_json::Map::new();
            if let Some(host) = &host {
                fields.insert("host".into(), host.clone().into());
            }
            fields.insert("source".into(), self.source.clone().into());
            fields.insert("sourcetype".into(), sourcetype.into());
            if let Some(index) = &self.index {
                fields.insert("index".into(), index.clone().into());
            }
            // The shared fields as `"k":v,` text, written into every envelope.
            let mut text = String::new();
            for (key, value) in &fields {
                let _ = write!(text, "{}:{},", serde_json::Value::from(key.as_str()), value);
            }
            text
        };
        let incident_envelope = envelope(&self.incident_sourcetype);
        let envelope = envelope(&self.sourcetype);
        Ok(HecDelivery {
            poster,
            envelope,
            incident_envelope,
        })
    }
}

/// The event endpoint for a configured collector URL.
fn event_url(endpoint: &str) -> Result<ureq::http::Uri> {
    let uri = parse_endpoint(endpoint, "endpoint")?;
    let path = uri.path().trim_end_matches('/');
    if path.contains("/services/collector") {
        return Ok(uri);
    }
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    let scheme = uri.scheme_str().unwrap_or("http");
    let full = format!("{scheme}://{authority}{path}{EVENT_PATH}{query}");
    full.parse().map_err(|error| {
        anyhow!("endpoint {endpoint:?} gives an invalid event URL {full:?}: {error}")
    })
}

/// Sends batches of event envelopes to HEC.
pub struct HecDelivery {
    poster: Poster,
    envelope: String,
    incident_envelope: String,
}

/// The fields that tell an incident record from an alert.
#[derive(serde::Deserialize)]
struct Kind {
    incident_id: Option<serde::de::IgnoredAny>,
    class_uid: Option<u64>,
}

/// Whether a spooled item is an incident record (native or OCSF class 2005).
fn is_incident(line: &[u8]) -> bool {
    serde_json::from_slice::<Kind>(line)
        .is_ok_and(|k| k.incident_id.is_some() || k.class_uid == Some(2005))
}

impl HecDelivery {
    /// The request body for `lines`: one envelope per item.
    pub fn body(&self, lines: &[&[u8]]) -> Vec<u8> {
        let size = lines
            .iter()
            .map(|l| l.len() + self.envelope.len() + 40)
            .sum();
        let mut body = Vec::with_capacity(size);
        for line in lines {
            body.push(b'{');
            if let Some((secs, nanos)) = item_time(line).filter(|&(secs, _)| secs >= 0) {
                let millis = nanos / 1_000_000;
                let time = if millis == 0 {
                    format!("\"time\":{secs},")
                } else {
                    format!("\"time\":{secs}.{millis:03},")
                };
                body.extend_from_slice(time.as_bytes());
            }
            let envelope = if is_incident(line) {
                &self.incident_envelope
            } else {
                &self.envelope
            };
            body.extend_from_slice(envelope.as_bytes());
            body.extend_from_slice(b"\"event\":");
            body.extend_from_slice(line);
            body.extend_from_slice(b"}\n");
        }
        body
    }
}

impl Delivery for HecDelivery {
    fn deliver(&mut self, lines: &[&[u8]]) -> Result<(), DeliveryError> {
        let answer = self.poster.post("application/json", self.body(lines))?;
        match answer.classify() {
            Ok(()) => Ok(()),
            Err(DeliveryError::Retry(_)) => Err(DeliveryError::Retry(explain(&answer))),
            Err(DeliveryError::Rejected(_)) => Err(DeliveryError::Rejected(explain(&answer))),
        }
    }
}

/// What HEC's answer means, with what to do about it.
fn explain(answer: &Answer) -> anyhow::Error {
    #[derive(Deserialize)]
    struct HecAnswer {
        text: Option<String>,
        code: Option<i64>,
        #[serde(rename = "invalid-event-number")]
        invalid_event: Option<i64>,
    }
    let parsed: Option<HecAnswer> = serde_json::from_str(&answer.body).ok();
    let Some(parsed) = parsed else {
        return answer.error();
    };
    let hint = match parsed.code {
        Some(1) => "the token is disabled; enable it in Splunk",
        Some(2..=4) => "check the output's token",
        Some(7) => "the token may not write to this index; check the output's index",
        Some(9) => "HEC is busy; retrying",
        Some(18..=20) => "HEC is unhealthy; retrying",
        Some(5 | 6 | 12 | 13) => "the events were malformed",
        _ => "",
    };
    let mut message = format!(
        "Splunk HEC answered HTTP {} with code {}: {}",
        answer.status,
        parsed
            .code
            .map_or_else(|| "none".to_string(), |c| c.to_string()),
        parsed.text.as_deref().unwrap_or("(no text)")
    );
    if !hint.is_empty() {
        let _ = write!(message, " ({hint})");
    }
    if let Some(n) = parsed.invalid_event {
        let _ = write!(message, "; events before #{n} of the batch were indexed");
    }
    anyhow!(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str) -> HecConfig {
        serde_json::from_value(serde_json::json!({"endpoint": endpoint, "token": "abc"})).unwrap()
    }

    #[test]
    fn event_urls_get_the_collector_path_once() {
        for (endpoint, url) in [
            (
                "http://splunk:8088",
                "http://splunk:8088/services/collector/event",
            ),
            (
                "http://splunk:8088/",
                "http://splunk:8088/services/collector/event",
            ),
            (
                "http://proxy/splunk/",
                "http://proxy/splunk/services/collector/event",
            ),
            (
                "http://splunk:8088/services/collector",
                "http://splunk:8088/services/collector",
            ),
            (
                "http://splunk:8088/services/collector/event?channel=x",
                "http://splunk:8088/services/collector/event?channel=x",
            ),
            (
                "https://http-inputs-acme.splunkcloud.com",
                "https://http-inputs-acme.splunkcloud.com/services/collector/event",
            ),
        ] {
            assert_eq!(event_url(endpoint).unwrap().to_string(), url);
        }
    }

    #[test]
    fn envelopes_carry_time_metadata_and_the_item() {
        let mut config = config("http://splunk:8088");
        config.destination.host = Some("sensor-1".into());
        config.destination.index = Some("security".into());
        let delivery = config.delivery().unwrap();
        let body = delivery.body(&[
            br#"{"time":"2024-12-16T18:41:07.250Z","detection":"x"}"#,
            br#"{"detection":"y"}"#,
        ]);
        let events: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&body)
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["time"].as_f64(), Some(1_734_374_467.25));
        assert_eq!(events[0]["host"], "sensor-1");
        assert_eq!(events[0]["source"], "minewatch");
        assert_eq!(events[0]["sourcetype"], "minewatch:alert");
        assert_eq!(events[0]["index"], "security");
        assert_eq!(events[0]["event"]["detection"], "x");
        assert!(events[1].get("time").is_none());
        assert_eq!(events[1]["event"]["detection"], "y");
    }

    #[test]
    fn incident_records_go_under_their_own_sourcetype() {
        let delivery = config("http://splunk:8088").delivery().unwrap();
        let body = delivery.body(&[
            br#"{"detection":"x","key":"k"}"#,
            br#"{"incident_id":"389a5209","status":"open","alerts":[]}"#,
            br#"{"class_uid":2005,"finding_info_list":[]}"#,
            br#"{"class_uid":2004,"finding_info":{}}"#,
        ]);
        let sourcetypes: Vec<String> = serde_json::Deserializer::from_slice(&body)
            .into_iter::<serde_json::Value>()
            .map(|e| e.unwrap()["sourcetype"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            sourcetypes,
            [
                "minewatch:alert",
                "minewatch:incident",
                "minewatch:incident",
                "minewatch:alert"
            ]
        );
    }

    #[test]
    fn a_missing_or_empty_token_is_refused() {
        let missing =
            serde_json::from_value::<HecConfig>(serde_json::json!({"endpoint": "http://s:8088"}));
        assert!(missing.is_err());
        let mut empty = config("http://s:8088");
        empty.destination.token = Secret::new(" ");
        assert!(
            empty
                .delivery()
                .err()
                .unwrap()
                .to_string()
                .contains("token")
        );
        assert!(!format!("{:?}", config("http://s:8088")).contains("abc"));
    }

    #[test]
    fn answers_are_explained() {
        let answer = Answer {
            receiver: "Splunk HEC",
            status: 403,
            body: r#"{"text":"Invalid token","code":4}"#.into(),
        };
        let text = explain(&answer).to_string();
        assert!(text.contains("code 4") && text.contains("token"), "{text}");
    }
}
