//! The report's alerts: each raised alert in the native format, with what the report
//! links it by (anchor, detection, event time in ms, scope and principal, rate window).

use minewatch_guest::Timestamp;
use minewatch_guest::catalog::{LAUNCH_SPIKE, LAUNCH_SPIKE_DENSITY};
use minewatch_guest::settings::Scope;
use minewatch_guest::time::parse_event_time;
use serde::Serialize;
use serde_json::Value;

/// One alert.
#[derive(Debug, Clone, Serialize)]
pub struct AlertFacts {
    /// Anchor in the HTML (`alert-1`, ...).
    pub id: String,
    /// Anchor of the chart of the alert's principal, when charted.
    pub chart: Option<String>,
    /// The alert in the native format.
    pub alert: Value,
    /// Detection slug.
    #[serde(skip)]
    pub detection: String,
    /// Event time, ms since the epoch.
    #[serde(skip)]
    pub time: Timestamp,
    /// Baseline scope and principal of the triggering event.
    #[serde(skip)]
    pub principal: (String, String),
    /// Window start of a rate alert.
    #[serde(skip)]
    pub window: Option<Timestamp>,
}

impl AlertFacts {
    /// The rate evidence's number `field` (`count`, `threshold`, ...).
    pub fn evidence(&self, field: &str) -> Option<f64> {
        self.alert["evidence"][field].as_f64()
    }
}

/// The facts of the `index`th alert (0-based), its principal scoped as `scope` has it.
pub(super) fn alert_facts(index: usize, alert: Value, scope: Scope) -> AlertFacts {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let detection = text(&alert["detection"]);
    let rate = detection == LAUNCH_SPIKE || detection == LAUNCH_SPIKE_DENSITY;
    let principal = if rate {
        text(&alert["key"])
    } else {
        text(&alert["event"]["principal"])
    };
    let scope = match scope {
        Scope::Global => String::new(),
        Scope::Account => format!("{}/", text(&alert["event"]["account"])),
    };
    let window = alert["evidence"]["window_start"]
        .as_str()
        .filter(|_| rate)
        .and_then(parse_event_time);
    AlertFacts {
        id: format!("alert-{}", index + 1),
        chart: None,
        time: alert["time"]
            .as_str()
            .and_then(parse_event_time)
            .unwrap_or_default(),
        detection,
        principal: (scope, principal),
        window,
        alert,
    }
}
