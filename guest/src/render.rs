//! The native alert format: a detector's finding enriched with its catalogue entry, the
//! tenant and the detector's name and version, as one JSON object.
//!
//! Every Rust host of the detections renders through here (the `minewatch` binary's
//! native format and passthrough field, the Fluent Bit plugin's `minewatch_alerts`), so
//! their alerts are the same JSON by construction.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Value, json};

use crate::model::{Alert, Detection, DetectorInfo, EventSummary, Evidence, Severity, Sighting};
use crate::time::format_time;

/// An alert in minewatch's native format.
#[derive(Debug, Clone, Serialize)]
pub struct NativeAlert<'a> {
    /// Detection slug.
    pub detection: &'a str,
    /// Splunk detection id.
    pub detection_id: &'a str,
    /// Detection title.
    pub name: &'a str,
    /// Severity.
    pub severity: Severity,
    /// 0-100.
    pub risk_score: u8,
    /// ATT&CK technique ids.
    pub mitre_attack: &'a [String],
    /// The new value, or the principal.
    pub key: &'a str,
    /// One sentence for a human.
    pub message: &'a str,
    /// Event time, RFC 3339.
    pub time: String,
    /// Tenant whose baselines judged it.
    pub tenant: &'a str,
    /// The triggering event.
    pub event: &'a EventSummary,
    /// Why it fired.
    pub evidence: Value,
    /// The detector that produced it.
    pub detector: DetectorRef<'a>,
}

/// Which detector produced an alert.
#[derive(Debug, Clone, Serialize)]
pub struct DetectorRef<'a> {
    /// Package name.
    pub name: &'a str,
    /// Package version.
    pub version: &'a str,
}

/// The catalogue entry of `slug` in `info`; for a slug the detector did not describe, a
/// stand-in named after the slug (medium severity, risk 50, no Splunk id).
pub fn detection<'a>(info: &'a DetectorInfo, slug: &str) -> Cow<'a, Detection> {
    match info.detections.iter().find(|d| d.slug == slug) {
        Some(d) => Cow::Borrowed(d),
        None => Cow::Owned(Detection {
            slug: slug.to_string(),
            splunk_id: String::new(),
            name: slug.to_string(),
            description: String::new(),
            severity: Severity::Medium,
            risk_score: 50,
            mitre_attack: Vec::new(),
        }),
    }
}

/// One alert of the detector described by `info`, in the native format.
pub fn native(info: &DetectorInfo, detection: &Detection, alert: &Alert, tenant: &str) -> Value {
    serde_json::to_value(NativeAlert {
        detection: &alert.detection,
        detection_id: &detection.splunk_id,
        name: &detection.name,
        severity: detection.severity,
        risk_score: detection.risk_score,
        mitre_attack: &detection.mitre_attack,
        key: &alert.key,
        message: &alert.message,
        time: format_time(alert.time),
        tenant,
        event: &alert.event,
        evidence: evidence(&alert.evidence),
        detector: DetectorRef {
            name: &info.name,
            version: &info.version,
        },
    })
    .expect("alerts serialize: every field is a string, number, list or struct")
}

fn sighting(s: &Sighting) -> Value {
    json!({ "first_seen": format_time(s.first_seen), "last_seen": format_time(s.last_seen), "count": s.count })
}

/// The evidence of an alert with its times in RFC 3339.
pub fn evidence(evidence: &Evidence) -> Value {
    match evidence {
        Evidence::Unseen(u) => json!({
            "baseline": u.baseline,
            "baseline_size": u.baseline_size,
            "learning_start": format_time(u.learning_start),
            "previous": u.previous.as_ref().map(sighting),
        }),
        Evidence::Rate(r) => json!({
            "window_start": format_time(r.window_start),
            "count": r.count,
            "history_windows": r.history_windows,
            "mean": r.mean,
            "stdev": r.stdev,
            "threshold": r.threshold,
            "tail_probability": r.tail_probability,
            "method": r.method,
        }),
    }
}
