//! `minewatch report`: a backtest of the detections over inputs, as one self-contained
//! HTML page to look at, or its facts as JSON.
//!
//! The inputs are replayed like `run` does (same store, settings, component, tenant),
//! over a [`tap::Tap`] on the baseline store, with the alerts kept in memory. From what
//! the pipeline reports (alerts, counts), what the tap saw (the detector's own window
//! counts, what each first-seen set learned) and the store after the run (every key
//! with its first and last sighting), [`Report::build`] gathers the facts:
//! - the summary: records read, skips by reason, failed calls, alerts by detection, the
//!   event-time span;
//! - every alert with its evidence;
//! - per principal with launches, every window's count with the thresholds of both
//!   rate rules as they stood (recomputed in the host, see [`rates`]);
//! - each first-seen set's keys: learned while the set was learning, alerted, or known.
//!
//! `html` renders them with inline SVG charts (drawn by `plotters`, see [`charts`]) and
//! inline CSS: no script, no font or image to fetch. Charts are capped (see
//! [`ReportOptions`] and [`Limits`]) so a year of data stays a page a browser opens at once;
//! the JSON has every window of the charted principals and totals for the others.

//!
//! Each section of the report is built in its own file: [`alerts`](AlertFacts),
//! `rate_facts` ([`RateFacts`]) and `set_facts` ([`SetFacts`]); this file replays the
//! inputs and gathers the [`Report`].

mod alerts;
pub mod charts;
mod html;
mod rate_facts;
pub mod rates;
mod set_facts;
pub mod tap;

use std::io::Write;

use anyhow::{Context, Result};
use minewatch_guest::settings::{Population, Scope, Settings};
use minewatch_guest::time::format_time;
use minewatch_guest::{Detection, Timestamp};
use serde::Serialize;

use crate::config::Config;
use crate::replay::{TapRequest, Tapped, replay_tapped};
use crate::summary::RunSummary;
pub use alerts::AlertFacts;
pub use rate_facts::{PrincipalChart, PrincipalTotals, RateFacts, WindowFacts};
pub use set_facts::{KeyFacts, KeyStatus, SetFacts};
use tap::TapOptions;

/// Principals charted besides those with alerts, by default.
pub const DEFAULT_TOP_PRINCIPALS: usize = 12;
/// Points a chart draws at most; busier principals are drawn one point per column
/// (the column's busiest window), windows that fired always drawn.
pub const MAX_CHART_POINTS: usize = 1500;
/// Keys a first-seen set lists in the HTML (alerted keys first); the JSON has all.
pub const MAX_SET_ROWS: usize = 200;

/// What `minewatch report` is asked for.
#[derive(Debug, Clone, Copy)]
pub struct ReportOptions {
    /// Principals with the most launches that get a chart, besides every principal with
    /// an alert.
    pub top_principals: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            top_principals: DEFAULT_TOP_PRINCIPALS,
        }
    }
}

/// Replays `inputs` as `run` would, into a report.
///
/// # Errors
/// As [`replay_tapped`].
pub fn backtest(config: &Config, inputs: &[String], options: ReportOptions) -> Result<Report> {
    let settings = config.default_tenant()?.settings;
    let request = TapRequest {
        learn_only: false,
        alerts: true,
        sets: true,
        tap: tap_options(&settings),
    };
    let tapped = replay_tapped(config, crate::replay::inputs(inputs), request)?;
    let labels = if inputs.is_empty() {
        vec!["-".to_string()]
    } else {
        inputs.to_vec()
    };
    Ok(Report::build(tapped, labels, options))
}

/// The tap options a report needs under the detector `settings` (a JSON object): the
/// rate history to read before the run covers the longer of the two rules' histories.
pub fn tap_options(settings: &str) -> TapOptions {
    let parsed = Settings::from_json(settings).unwrap_or_default();
    let spike = &parsed.launch_spike;
    let density = &parsed.launch_spike_density;
    TapOptions {
        launches: true,
        seed_days: spike.history_days.max(density.history_days),
        seed_principals: spike.population == Population::Principal
            || density.population == Population::Principal,
    }
}

/// Milliseconds since the epoch, serialized as RFC 3339.
mod rfc3339 {
    use minewatch_guest::time::format_time;
    use serde::Serializer;

    pub fn time<S: Serializer>(t: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_time(*t))
    }

    pub fn option<S: Serializer>(t: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format_time(*t)),
            None => s.serialize_none(),
        }
    }
}

/// Everything a report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// minewatch's version.
    pub minewatch_version: String,
    /// The detector (name and version).
    pub detector: String,
    /// The tenant whose baselines were used.
    pub tenant: String,
    /// The `--input` values.
    pub inputs: Vec<String>,
    /// First and last event time of the subscribed records.
    pub span: Option<SpanFacts>,
    /// Counts of the run.
    pub summary: RunSummary,
    /// The detector's catalogue (names, severities).
    pub detections: Vec<Detection>,
    /// Every alert, in the order raised.
    pub alerts: Vec<AlertFacts>,
    /// Launch rates and thresholds.
    pub rates: RateFacts,
    /// First-seen sets after the run.
    pub sets: Vec<SetFacts>,
    /// Where the report is capped.
    pub limits: Limits,
}

/// First and last event time.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SpanFacts {
    /// First event time.
    #[serde(serialize_with = "rfc3339::time")]
    pub first: Timestamp,
    /// Last event time.
    #[serde(serialize_with = "rfc3339::time")]
    pub last: Timestamp,
}

/// Where the report is capped.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    /// Principals charted for their launches, besides those with alerts.
    pub top_principals: usize,
    /// Points a chart draws at most.
    pub max_chart_points: usize,
    /// Keys a set lists in the HTML.
    pub max_set_rows: usize,
}

impl Report {
    /// Gathers the facts of a tapped replay (see the module docs).
    pub fn build(tapped: Tapped, inputs: Vec<String>, options: ReportOptions) -> Report {
        let settings = Settings::from_json(&tapped.settings).ok();
        let scope = settings.as_ref().map_or(Scope::Global, |s| s.scope);
        let mut alerts: Vec<AlertFacts> = tapped
            .alerts
            .into_iter()
            .enumerate()
            .map(|(i, alert)| alerts::alert_facts(i, alert, scope))
            .collect();
        let rates = settings
            .as_ref()
            .map(|s| rates::replay(&tapped.log, s))
            .unwrap_or_default();
        let rate_facts = rate_facts::rate_facts(&rates, settings.as_ref(), &mut alerts, options);
        let sets = set_facts::set_facts(&tapped.sets, &tapped.log.sets, settings.as_ref(), &alerts);
        Report {
            minewatch_version: env!("CARGO_PKG_VERSION").to_string(),
            detector: format!("{} {}", tapped.info.name, tapped.info.version),
            tenant: tapped.tenant,
            inputs,
            span: tapped
                .driven
                .span
                .map(|(first, last)| SpanFacts { first, last }),
            summary: tapped.driven.summary,
            detections: tapped.info.detections,
            alerts,
            rates: rate_facts,
            sets,
            limits: Limits {
                top_principals: options.top_principals,
                max_chart_points: MAX_CHART_POINTS,
                max_set_rows: MAX_SET_ROWS,
            },
        }
    }

    /// The report as one HTML page.
    pub fn html(&self) -> String {
        html::render(self)
    }

    /// Writes the HTML page (or, with `json`, the facts as one JSON object) to `path`,
    /// or stdout for `-`.
    ///
    /// # Errors
    /// The file cannot be created or written.
    pub fn write(&self, path: &str, json: bool) -> Result<()> {
        let mut out: Box<dyn Write> = if path == "-" {
            Box::new(std::io::stdout().lock())
        } else {
            Box::new(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("failed to create report {path}"))?,
            ))
        };
        if json {
            serde_json::to_writer(&mut out, self)?;
            out.write_all(b"\n")?;
        } else {
            out.write_all(self.html().as_bytes())?;
        }
        out.flush()
            .with_context(|| format!("failed to write report {path}"))
    }

    /// The catalogue entry of `slug`, if the detector described it.
    pub fn detection(&self, slug: &str) -> Option<&Detection> {
        self.detections.iter().find(|d| d.slug == slug)
    }
}

/// A time as shown in the report.
pub fn show_time(t: Timestamp) -> String {
    format_time(t).replace('T', " ").replace('Z', " UTC")
}
