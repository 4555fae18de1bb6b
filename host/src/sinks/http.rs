//! The `http` output: batches of spooled items POSTed to an HTTP receiver, and the HTTP
//! plumbing (client, status classification, redacted secrets, event times) that the
//! Splunk HEC and Fluent Forward outputs share.
//!
//! Two body formats cover the common receivers: `ndjson` (one JSON object per line,
//! `Content-Type: application/x-ndjson`), for Vector's `http_server` source with
//! `decoding.codec = "json"` and `framing.method = "newline_delimited"` and for
//! Fluentd's `in_http`; and `json_array` (one JSON array of objects,
//! `Content-Type: application/json`), for Fluent Bit's `in_http`, which takes a JSON
//! object or an array of them (its URL path is the tag). A 2xx answer means delivered;
//! 408, 429, 5xx and transport errors are retried with backoff; any other status
//! moves the batch to the dead-letter file with an error log carrying the status and
//! the receiver's answer.
//!
//! `https://` endpoints are verified against the system trust store, or against
//! `ca_file` alone, and can present a client certificate (`tls_cert`, `tls_key`); see
//! [`crate::tls`]. The endpoint's host name is sent as SNI and must be one of the
//! certificate's names.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

use super::settings::{Destination, NetworkOutput};
use super::spool::{Delivery, DeliveryError};
use crate::tls::client::{ClientTls, Probe};

/// A configuration value kept out of logs and `Debug` output (tokens, keys, headers).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// How a batch is laid out in the request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpFormat {
    /// One JSON object per line, `application/x-ndjson` (Vector, Fluentd).
    #[default]
    Ndjson,
    /// One JSON array of objects, `application/json` (Fluent Bit `in_http`).
    JsonArray,
}

/// Request body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Uncompressed.
    #[default]
    None,
    /// Gzip, sent with `Content-Encoding: gzip`.
    Gzip,
}

/// The `http` output's settings: [`HttpDestination`] with the TLS and spool settings.
pub type HttpConfig = NetworkOutput<HttpDestination>;

/// Where and how the `http` output POSTs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpDestination {
    /// The `http://` or `https://` URL to POST to, e.g. `http://127.0.0.1:8080/` for
    /// Vector or `https://alerts.example.com:9880/minewatch.alert` for Fluent Bit (the
    /// path is the tag).
    pub endpoint: String,
    /// How alerts are framed in a request body: `ndjson` (the default) or `json_array`.
    /// (Named `framing` because `format` chooses native or OCSF alerts on every output.)
    #[serde(default)]
    pub framing: HttpFormat,
    /// Body compression: `none` (the default) or `gzip`.
    #[serde(default)]
    pub compression: Compression,
    /// Extra request headers, e.g. `Authorization = "Bearer …"`; values never appear in logs.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Timeout of one whole request (connect, send, answer), in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

/// Default request timeout, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

pub(super) fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

impl Destination for HttpDestination {
    type Delivery = HttpDelivery;
    const TYPE: &'static str = "http";

    fn delivery(&self, tls: &ClientTls, name: &str) -> Result<HttpDelivery> {
        let url = parse_endpoint(&self.endpoint, "endpoint")?;
        let tls = endpoint_tls(&url, tls, name)?;
        let poster = Poster::new(
            url,
            &self.headers,
            self.compression,
            self.timeout_secs,
            tls,
            "HTTP receiver",
        )?;
        Ok(HttpDelivery {
            poster,
            format: self.framing,
        })
    }

    fn uses_tls(&self) -> bool {
        self.endpoint.starts_with("https:")
    }
}

/// POSTs batches as NDJSON or as a JSON array.
pub struct HttpDelivery {
    poster: Poster,
    format: HttpFormat,
}

impl Delivery for HttpDelivery {
    fn deliver(&mut self, lines: &[&[u8]]) -> Result<(), DeliveryError> {
        let size = lines.iter().map(|l| l.len() + 1).sum::<usize>() + 2;
        let mut body = Vec::with_capacity(size);
        let content_type = match self.format {
            HttpFormat::Ndjson => {
                for line in lines {
                    body.extend_from_slice(line);
                    body.push(b'\n');
                }
                "application/x-ndjson"
            }
            HttpFormat::JsonArray => {
                body.push(b'[');
                for (i, line) in lines.iter().enumerate() {
                    if i > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(line);
                }
                body.push(b']');
                "application/json"
            }
        };
        let answer = self.poster.post(content_type, body)?;
        answer.classify()
    }
}

/// Checks that `endpoint` is an `http://` or `https://` URL with a host.
///
/// # Errors
/// It is not, with what to write instead.
pub(super) fn parse_endpoint(endpoint: &str, setting: &str) -> Result<ureq::http::Uri> {
    let uri: ureq::http::Uri = endpoint.parse().map_err(|error| {
        anyhow!(
            "{setting} {endpoint:?} is not a URL ({error}); write it like http://127.0.0.1:8080/"
        )
    })?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => bail!("{setting} {endpoint:?} must start with http:// or https://"),
    }
    if uri.host().is_none_or(str::is_empty) {
        bail!("{setting} {endpoint:?} has no host; write it like http://127.0.0.1:8080/");
    }
    Ok(uri)
}

/// The TLS settings ureq uses for `url`, with a probe to explain lost connections:
/// none for `http://`, where setting any TLS key is an error.
///
/// # Errors
/// A TLS key on a plaintext endpoint, or TLS files that do not load.
pub(super) fn endpoint_tls(
    url: &ureq::http::Uri,
    tls: &ClientTls,
    output: &str,
) -> Result<Option<(ureq::tls::TlsConfig, Probe)>> {
    if url.scheme_str() == Some("https") {
        let (ureq, rustls) = tls.ureq(output)?;
        let host = url.host().unwrap_or_default();
        let probe = Probe::new(rustls, host, url.port_u16().unwrap_or(443))
            .with_context(|| format!("endpoint {url}"))?;
        return Ok(Some((ureq, probe)));
    }
    if tls.any_set() {
        bail!(
            "ca_file, tls_verify, tls_cert and tls_key apply to https:// endpoints, and {url} is \
             plain http://"
        );
    }
    Ok(None)
}

/// A receiver's answer: status and (the start of) its body.
#[derive(Debug, Clone)]
pub(super) struct Answer {
    /// Who answered, for messages.
    pub(super) receiver: &'static str,
    /// HTTP status.
    pub(super) status: u16,
    /// Body, cut to a length fit for a log line.
    pub(super) body: String,
}

impl Answer {
    /// 2xx is delivered; 408, 429 and 5xx are retried; anything else is refused.
    pub(super) fn classify(&self) -> Result<(), DeliveryError> {
        match self.status {
            200..=299 => Ok(()),
            408 | 429 | 500..=599 => Err(DeliveryError::Retry(self.error())),
            _ => Err(DeliveryError::Rejected(self.error())),
        }
    }

    /// The answer as an error.
    pub(super) fn error(&self) -> anyhow::Error {
        anyhow!(
            "{} answered HTTP {}: {}",
            self.receiver,
            self.status,
            if self.body.is_empty() {
                "(empty body)"
            } else {
                &self.body
            }
        )
    }
}

/// An HTTP client for one endpoint, with fixed headers and compression.
pub(super) struct Poster {
    agent: ureq::Agent,
    probe: Option<Probe>,
    timeout: Duration,
    url: String,
    headers: Vec<(String, Secret)>,
    compression: Compression,
    receiver: &'static str,
}

/// Headers minewatch sets itself.
const RESERVED_HEADERS: [&str; 5] = [
    "content-type",
    "content-encoding",
    "content-length",
    "transfer-encoding",
    "host",
];

/// Longest answer body kept for logs, in characters.
const ANSWER_LOG_CHARS: usize = 512;

impl Poster {
    /// A client for `url`; `receiver` names the other side in messages.
    ///
    /// # Errors
    /// A header name or value is invalid, or the timeout is zero.
    pub(super) fn new(
        url: ureq::http::Uri,
        headers: &BTreeMap<String, Secret>,
        compression: Compression,
        timeout_secs: u64,
        tls: Option<(ureq::tls::TlsConfig, Probe)>,
        receiver: &'static str,
    ) -> Result<Poster> {
        if timeout_secs == 0 {
            bail!("timeout_secs must be above 0");
        }
        let mut checked = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let header = ureq::http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| anyhow!("headers: {name:?} is not a valid header name"))?;
            if RESERVED_HEADERS.contains(&header.as_str()) {
                bail!(
                    "headers: {name} is set by minewatch (from framing and compression); remove it"
                );
            }
            ureq::http::HeaderValue::from_str(value.expose()).map_err(|_| {
                anyhow!("headers: the value of {name} holds characters not allowed in a header")
            })?;
            checked.push((name.clone(), value.clone()));
        }
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(timeout_secs)))
            .user_agent(concat!("minewatch/", env!("CARGO_PKG_VERSION")));
        let mut probe = None;
        if let Some((tls, tls_probe)) = tls {
            config = config.tls_config(tls);
            probe = Some(tls_probe);
        }
        let agent: ureq::Agent = config.build().into();
        Ok(Poster {
            agent,
            probe,
            timeout: Duration::from_secs(timeout_secs),
            url: url.to_string(),
            headers: checked,
            compression,
            receiver,
        })
    }

    /// POSTs `body`; a transport failure is a [`DeliveryError::Retry`].
    pub(super) fn post(&self, content_type: &str, body: Vec<u8>) -> Result<Answer, DeliveryError> {
        let body = match self.compression {
            Compression::None => body,
            Compression::Gzip => gzip(&body).map_err(DeliveryError::Retry)?,
        };
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", content_type);
        if self.compression == Compression::Gzip {
            request = request.header("Content-Encoding", "gzip");
        }
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.expose());
        }
        let mut response = request.send(&body[..]).map_err(|error| {
            let mut why = crate::tls::explain_ureq(&error);
            if let (Some(probe), ureq::Error::Io(io)) = (&self.probe, &error)
                && crate::tls::client::connection_lost(io)
                && let Some(found) = probe.diagnose(self.timeout.min(Duration::from_secs(5)))
            {
                why = format!("{why}; a TLS probe of the receiver found: {found}");
            }
            DeliveryError::Retry(anyhow!(
                "could not reach the {} at {}: {why}",
                self.receiver,
                self.url
            ))
        })?;
        let status = response.status().as_u16();
        // Reading the whole answer also lets the connection be reused.
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
            .unwrap_or_default();
        Ok(Answer {
            receiver: self.receiver,
            status,
            body: text.chars().take(ANSWER_LOG_CHARS).collect(),
        })
    }
}

fn gzip(body: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::default(),
    );
    encoder
        .write_all(body)
        .context("failed to compress a request body")?;
    encoder
        .finish()
        .context("failed to compress a request body")
}

/// The machine's host name, if it has one.
pub(super) fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// When an item happened, as seconds and nanoseconds since the Unix epoch.
///
/// Taken from its `time` field (RFC 3339 text as in native alerts, or a number: epoch
/// milliseconds as in OCSF, or epoch seconds when below 10^11), else from `eventTime`
/// (a passed-through CloudTrail record).
pub(super) fn item_time(line: &[u8]) -> Option<(i64, u32)> {
    #[derive(Deserialize)]
    struct Times {
        time: Option<serde_json::Value>,
        #[serde(rename = "eventTime")]
        event_time: Option<serde_json::Value>,
    }
    // Only objects: serde would also read a struct from an array.
    if line.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let times: Times = serde_json::from_slice(line).ok()?;
    let from = |value: &serde_json::Value| match value {
        serde_json::Value::String(text) => parse_rfc3339(text),
        serde_json::Value::Number(number) => {
            let n = number.as_i64()?;
            if n.unsigned_abs() >= 100_000_000_000 {
                Some((n.div_euclid(1000), (n.rem_euclid(1000) * 1_000_000) as u32))
            } else {
                Some((n, 0))
            }
        }
        _ => None,
    };
    times
        .time
        .as_ref()
        .and_then(from)
        .or_else(|| times.event_time.as_ref().and_then(from))
}

/// Parses an RFC 3339 timestamp (`2024-12-16T18:41:07.250Z`, `…+01:00`; a space for the
/// `T` and a missing offset, read as UTC, are accepted too).
pub(super) fn parse_rfc3339(text: &str) -> Option<(i64, u32)> {
    let b = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let minutes = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset;
    Some((secs, nanos))
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Count in years starting on March 1st, so the leap day ends a year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let m = (month + 9) % 12;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse() {
        let z = 1_734_374_467;
        assert_eq!(parse_rfc3339("2024-12-16T18:41:07Z"), Some((z, 0)));
        assert_eq!(
            parse_rfc3339("2024-12-16T18:41:07.250Z"),
            Some((z, 250_000_000))
        );
        assert_eq!(parse_rfc3339("2024-12-16T19:41:07+01:00"), Some((z, 0)));
        assert_eq!(parse_rfc3339("2024-12-16T17:11:07-01:30"), Some((z, 0)));
        assert_eq!(parse_rfc3339("2024-12-16 18:41:07"), Some((z, 0)));
        assert_eq!(
            parse_rfc3339("2024-12-16T18:41:07.123456789123Z"),
            Some((z, 123_456_789))
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z"),
            Some((951_782_400, 0))
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some((-1, 0)));
        for bad in [
            "",
            "2024-12-16",
            "2024-13-16T18:41:07Z",
            "2024-12-16T18:41:07Zx",
            "2024-12-16T18:41:07.",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn item_times_come_from_time_or_event_time() {
        assert_eq!(
            item_time(br#"{"time":"2024-12-16T18:41:07.5Z"}"#),
            Some((1_734_374_467, 500_000_000))
        );
        assert_eq!(
            item_time(br#"{"time":1734374467250}"#),
            Some((1_734_374_467, 250_000_000))
        );
        assert_eq!(
            item_time(br#"{"time":1734374467}"#),
            Some((1_734_374_467, 0))
        );
        assert_eq!(
            item_time(br#"{"eventTime":"2024-12-16T18:41:07Z","x":[1]}"#),
            Some((1_734_374_467, 0))
        );
        assert_eq!(item_time(br#"{"time":"yesterday"}"#), None);
        assert_eq!(item_time(br#"[1,2]"#), None);
    }

    #[test]
    fn endpoints_must_be_http_or_https_urls() {
        assert!(parse_endpoint("http://127.0.0.1:8080/", "endpoint").is_ok());
        assert!(parse_endpoint("https://splunk:8088", "endpoint").is_ok());
        let ftp = parse_endpoint("ftp://splunk:8088", "endpoint").unwrap_err();
        assert!(ftp.to_string().contains("https://"), "{ftp}");
        assert!(parse_endpoint("splunk:8088", "endpoint").is_err());
        assert!(parse_endpoint("not a url", "endpoint").is_err());
    }

    #[test]
    fn tls_settings_on_a_plaintext_endpoint_are_refused() {
        let config: HttpConfig = serde_json::from_value(serde_json::json!({
            "endpoint": "http://127.0.0.1:9/", "ca_file": "/nonexistent/ca.pem"
        }))
        .unwrap();
        let error = config.delivery().err().unwrap().to_string();
        assert!(error.contains("apply to https://"), "{error}");
        let mut https = config.clone();
        https.destination.endpoint = "https://127.0.0.1:9/".into();
        let error = format!("{:#}", https.delivery().err().unwrap());
        assert!(
            error.contains("ca_file /nonexistent/ca.pem: cannot read it"),
            "{error}"
        );
    }

    #[test]
    fn configs_default_and_refuse_unknown_or_reserved_settings() {
        let config: HttpConfig = serde_json::from_value(serde_json::json!({
            "endpoint": "http://127.0.0.1:9/",
            "headers": {"Authorization": "Bearer s3cret"}
        }))
        .unwrap();
        assert_eq!(config.destination.framing, HttpFormat::Ndjson);
        assert_eq!(config.destination.timeout_secs, 30);
        assert_eq!(config.spool.batch_max_events, 500);
        assert_eq!(config.spool.retry_initial_ms, 200);
        assert!(!format!("{config:?}").contains("s3cret"));
        assert!(config.delivery().is_ok());
        let unknown = serde_json::from_value::<HttpConfig>(serde_json::json!({
            "endpoint": "http://127.0.0.1:9/", "endpont": "x"
        }));
        assert!(unknown.is_err());
        let mut reserved = config.clone();
        reserved
            .destination
            .headers
            .insert("Content-Type".into(), Secret::new("text/plain"));
        assert!(reserved.delivery().is_err());
        let tmp = tempfile::tempdir().unwrap();
        let mut bad = config.clone();
        bad.spool.batch_max_events = 0;
        let error = bad.build("web", tmp.path()).err().unwrap();
        assert!(
            format!("{error:#}").contains("batch_max_events"),
            "{error:#}"
        );
    }
}
