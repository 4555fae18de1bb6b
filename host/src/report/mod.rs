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

pub mod charts;
mod html;
pub mod rates;
pub mod tap;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

use anyhow::{Context, Result};
use minewatch_guest::catalog::{LAUNCH_SPIKE, LAUNCH_SPIKE_DENSITY};
use minewatch_guest::settings::{Population, Scope, Settings};
use minewatch_guest::time::{format_time, parse_event_time};
use minewatch_guest::{DAY_MS, Detection, Timestamp};
use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::replay::{TapRequest, Tapped, replay_tapped};
use crate::summary::RunSummary;
use rates::{Rates, Thresholds};
use tap::{SetLearning, TapOptions};

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

/// Launch rates.
#[derive(Debug, Clone, Serialize)]
pub struct RateFacts {
    /// What a window counts (`RunInstances calls` or `instances launched`).
    pub unit: String,
    /// Window width.
    pub window_minutes: u32,
    /// The rate rules' settings (`rate`, `launch_spike`, `launch_spike_density`), or why none.
    pub settings: Value,
    /// The rate rules in words, from their settings.
    pub rules: String,
    /// How the thresholds were obtained.
    pub method: String,
    /// Principals with at least one counted launch.
    pub principals_with_launches: usize,
    /// Charted principals, those with alerts first.
    pub charts: Vec<PrincipalChart>,
    /// Totals of the principals without a chart.
    pub others: Vec<PrincipalTotals>,
    /// Per scope, the global population's thresholds at each window start with launches.
    pub timelines: BTreeMap<String, Vec<WindowFacts>>,
    /// Rule floors: counts below `min_count` never alert.
    #[serde(skip)]
    pub floors: Vec<(String, u64)>,
    /// Which rules use the per-principal population.
    #[serde(skip)]
    pub per_principal: (bool, bool),
}

/// One charted principal.
#[derive(Debug, Clone, Serialize)]
pub struct PrincipalChart {
    /// Anchor in the HTML (`principal-1`, ...).
    pub id: String,
    /// Baseline scope (empty, or `<account>/`).
    pub scope: String,
    /// Principal ARN.
    pub principal: String,
    /// Calls (or instances) counted.
    pub launches: u64,
    /// Windows with launches.
    pub windows_with_launches: usize,
    /// The busiest window's count.
    pub busiest: u64,
    /// Anchors of the alerts of this principal.
    pub alerts: Vec<String>,
    /// Every window with launches, with thresholds and the alerts it raised.
    pub windows: Vec<WindowFacts>,
}

/// One window of a principal (or, in timelines, a window start with thresholds).
#[derive(Debug, Clone, Serialize)]
pub struct WindowFacts {
    /// Window start.
    #[serde(serialize_with = "rfc3339::time")]
    pub start: Timestamp,
    /// Count (0 in timelines).
    pub count: u64,
    /// `ec2-launch-spike`'s threshold, when armed.
    pub stdev_threshold: Option<f64>,
    /// `ec2-launch-spike-density`'s threshold, when armed.
    pub density_threshold: Option<f64>,
    /// Anchors of the rate alerts raised in this window.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<String>,
}

impl WindowFacts {
    fn new(start: Timestamp, count: u64, thresholds: Thresholds) -> WindowFacts {
        WindowFacts {
            start,
            count,
            stdev_threshold: thresholds.stdev,
            density_threshold: thresholds.density,
            alerts: Vec::new(),
        }
    }
}

/// A principal without a chart.
#[derive(Debug, Clone, Serialize)]
pub struct PrincipalTotals {
    /// Baseline scope.
    pub scope: String,
    /// Principal ARN.
    pub principal: String,
    /// Calls (or instances) counted.
    pub launches: u64,
    /// Windows with launches.
    pub windows: usize,
    /// The busiest window's count.
    pub busiest: u64,
}

/// One first-seen set after the run.
#[derive(Debug, Clone, Serialize)]
pub struct SetFacts {
    /// Set name (`<scope><slug>`).
    pub name: String,
    /// The detection it belongs to, when it is one of the built-in ones.
    pub detection: Option<String>,
    /// Keys held.
    pub keys_total: usize,
    /// Earliest first sighting ever.
    #[serde(serialize_with = "rfc3339::option")]
    pub learning_start: Option<Timestamp>,
    /// Learning period of the detection.
    pub learning_days: Option<u32>,
    /// When the learning period ends (ended).
    #[serde(serialize_with = "rfc3339::option")]
    pub learned_at: Option<Timestamp>,
    /// Latest sighting of any key.
    #[serde(serialize_with = "rfc3339::option")]
    pub latest: Option<Timestamp>,
    /// True when the latest sighting is still inside the learning period: new keys do
    /// not alert yet.
    pub still_learning: bool,
    /// What this run taught the set.
    pub this_run: Option<SetLearning>,
    /// Keys by status.
    pub by_status: BTreeMap<KeyStatus, usize>,
    /// Every key, alerted first, then the newest.
    pub keys: Vec<KeyFacts>,
}

/// Where a key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyStatus {
    /// It raised an alert in this run.
    Alerted,
    /// First seen while the set was learning: learned silently.
    Learning,
    /// First seen after learning without an alert here (allowlisted, or alerted before
    /// this run).
    Known,
}

impl KeyStatus {
    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            KeyStatus::Alerted => "alerted",
            KeyStatus::Learning => "seen while learning",
            KeyStatus::Known => "known, no alert here",
        }
    }
}

/// One key of a set.
#[derive(Debug, Clone, Serialize)]
pub struct KeyFacts {
    /// The value.
    pub key: String,
    /// First sighting.
    #[serde(serialize_with = "rfc3339::time")]
    pub first_seen: Timestamp,
    /// Latest sighting.
    #[serde(serialize_with = "rfc3339::time")]
    pub last_seen: Timestamp,
    /// Sightings.
    pub count: u64,
    /// Status.
    pub status: KeyStatus,
    /// Anchors of its alerts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<String>,
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
            .map(|(i, alert)| alert_facts(i, alert, scope))
            .collect();
        let rates = settings
            .as_ref()
            .map(|s| rates::replay(&tapped.log, s))
            .unwrap_or_default();
        let rate_facts = rate_facts(&rates, settings.as_ref(), &mut alerts, options);
        let sets = set_facts(&tapped.sets, &tapped.log.sets, settings.as_ref(), &alerts);
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

fn alert_facts(index: usize, alert: Value, scope: Scope) -> AlertFacts {
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

fn rate_facts(
    rates: &Rates,
    settings: Option<&Settings>,
    alerts: &mut [AlertFacts],
    options: ReportOptions,
) -> RateFacts {
    let Some(settings) = settings else {
        return RateFacts {
            unit: "launches".into(),
            window_minutes: 0,
            settings: Value::String(
                "the detector's settings are not the built-in detections'; no rate thresholds"
                    .into(),
            ),
            rules: String::new(),
            method: String::new(),
            principals_with_launches: rates.principals.len(),
            charts: Vec::new(),
            others: Vec::new(),
            timelines: BTreeMap::new(),
            floors: Vec::new(),
            per_principal: (false, false),
        };
    };
    // Principals with alerts first (by their first alert), then the busiest.
    let mut first_alert: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, alert) in alerts.iter().enumerate() {
        first_alert
            .entry((&alert.principal.0, &alert.principal.1))
            .or_insert(i);
    }
    let mut order: Vec<(usize, &rates::PrincipalRates)> =
        rates.principals.iter().enumerate().collect();
    order.sort_by_key(|(rank, p)| {
        (
            first_alert
                .get(&(p.scope.as_str(), p.principal.as_str()))
                .copied()
                .unwrap_or(usize::MAX),
            *rank,
        )
    });
    let alerted = order
        .iter()
        .filter(|(_, p)| first_alert.contains_key(&(p.scope.as_str(), p.principal.as_str())))
        .count();
    let mut charts = Vec::new();
    let mut others = Vec::new();
    let mut chart_of: HashMap<(String, String), String> = HashMap::new();
    for (position, (rank, p)) in order.iter().enumerate() {
        let busiest = p.windows.iter().map(|w| w.count).max().unwrap_or(0);
        if position >= alerted && *rank >= options.top_principals {
            others.push(PrincipalTotals {
                scope: p.scope.clone(),
                principal: p.principal.clone(),
                launches: p.launches,
                windows: p.windows.len(),
                busiest,
            });
            continue;
        }
        let id = format!("principal-{}", charts.len() + 1);
        chart_of.insert((p.scope.clone(), p.principal.clone()), id.clone());
        charts.push(PrincipalChart {
            id,
            scope: p.scope.clone(),
            principal: p.principal.clone(),
            launches: p.launches,
            windows_with_launches: p.windows.len(),
            busiest,
            alerts: Vec::new(),
            windows: p
                .windows
                .iter()
                .map(|w| WindowFacts::new(w.start, w.count, w.thresholds))
                .collect(),
        });
    }
    others.sort_by_key(|p| std::cmp::Reverse(p.launches));
    for alert in alerts.iter_mut() {
        let Some(id) = chart_of.get(&alert.principal) else {
            continue;
        };
        alert.chart = Some(id.clone());
        let chart = charts
            .iter_mut()
            .find(|c| &c.id == id)
            .expect("every id names a chart");
        chart.alerts.push(alert.id.clone());
        if let Some(window) = alert.window
            && let Ok(at) = chart.windows.binary_search_by_key(&window, |w| w.start)
        {
            chart.windows[at].alerts.push(alert.id.clone());
        }
    }
    let unit = match settings.rate.count {
        minewatch_guest::settings::CountMode::Calls => "RunInstances calls",
        minewatch_guest::settings::CountMode::Instances => "instances launched",
    };
    let mut floors = Vec::new();
    if settings.launch_spike.enabled {
        floors.push((LAUNCH_SPIKE.to_string(), settings.launch_spike.min_count));
    }
    if settings.launch_spike_density.enabled {
        floors.push((
            LAUNCH_SPIKE_DENSITY.to_string(),
            settings.launch_spike_density.min_count,
        ));
    }
    RateFacts {
        unit: unit.into(),
        window_minutes: settings.rate.window_minutes,
        settings: serde_json::json!({
            "rate": settings.rate,
            "launch_spike": settings.launch_spike,
            "launch_spike_density": settings.launch_spike_density,
        }),
        rules: rules_in_words(settings),
        method: "Window counts are the detector's own (read from its baseline calls). \
                 Thresholds are recomputed by the host: the counts are replayed in the order \
                 the detector counted them into per-day histograms (seeded with the history \
                 the store held before the run), and the guest's statistics give what each \
                 rule compared a window with at its last launch, the window itself left out. \
                 A rule without enough history has no threshold. Alerts carry the threshold \
                 at the launch that crossed it."
            .into(),
        principals_with_launches: rates.principals.len(),
        charts,
        others,
        timelines: rates
            .timelines
            .iter()
            .map(|(scope, points)| {
                (
                    scope.clone(),
                    points
                        .iter()
                        .map(|(start, t)| WindowFacts::new(*start, 0, *t))
                        .collect(),
                )
            })
            .collect(),
        floors,
        per_principal: (
            settings.launch_spike.population == Population::Principal,
            settings.launch_spike_density.population == Population::Principal,
        ),
    }
}

/// The rate rules' settings as a sentence each.
fn rules_in_words(settings: &Settings) -> String {
    let population = |p: Population| match p {
        Population::Global => "every principal's windows",
        Population::Principal => "the principal's own windows",
    };
    let mut out = Vec::new();
    let spike = &settings.launch_spike;
    if spike.enabled {
        out.push(format!(
            "ec2-launch-spike: above mean + {} × stdev of {} of the last {} days, once {} windows are known, and at least {}.",
            spike.k,
            population(spike.population),
            spike.history_days,
            spike.min_history_windows,
            spike.min_count
        ));
    }
    let density = &settings.launch_spike_density;
    if density.enabled {
        out.push(format!(
            "ec2-launch-spike-density: upper-tail probability below {} under {} of the last {} days (empirical from {} windows, an exponential fit below), once {} windows are known, and at least {}.",
            density.tail_probability,
            population(density.population),
            density.history_days,
            density.empirical_min_windows,
            density.min_history_windows,
            density.min_count
        ));
    }
    out.join(" ")
}

/// The learning period of a built-in detection's set.
fn learning_days(settings: &Settings, slug: &str) -> Option<u32> {
    use minewatch_guest::catalog::{UNSEEN_AMI, UNSEEN_INSTANCE_TYPE, UNSEEN_REGION, UNSEEN_USER};
    match slug {
        UNSEEN_REGION => Some(settings.unseen_region.learning_days),
        UNSEEN_AMI => Some(settings.unseen_ami.learning_days),
        UNSEEN_INSTANCE_TYPE => Some(settings.unseen_instance_type.learning_days),
        UNSEEN_USER => Some(settings.unseen_user.learning_days),
        _ => None,
    }
}

fn set_facts(
    stored: &[crate::replay::StoredSet],
    learned: &BTreeMap<String, SetLearning>,
    settings: Option<&Settings>,
    alerts: &[AlertFacts],
) -> Vec<SetFacts> {
    // (set name, key) -> alert anchors; a set is named `<scope><slug>`.
    let mut alerted: HashMap<(String, String), Vec<String>> = HashMap::new();
    for alert in alerts {
        let key = alert.alert["key"].as_str().unwrap_or_default().to_string();
        let set = format!("{}{}", alert.principal.0, alert.detection);
        alerted
            .entry((set, key))
            .or_default()
            .push(alert.id.clone());
    }
    let parse = |t: &Option<String>| t.as_deref().and_then(parse_event_time);
    let mut seen = HashSet::new();
    stored
        .iter()
        .map(|set| {
            seen.insert(set.summary.set.clone());
            let name = &set.summary.set;
            let slug = name.rsplit('/').next().unwrap_or(name);
            let days = settings.and_then(|s| learning_days(s, slug));
            let learning_start = parse(&set.summary.learning_start);
            let latest = parse(&set.summary.latest);
            let learned_at = learning_start
                .zip(days)
                .map(|(start, days)| start + i64::from(days) * DAY_MS);
            let mut keys: Vec<KeyFacts> = set
                .keys
                .iter()
                .map(|(key, sighting)| {
                    let alerts = alerted
                        .get(&(name.clone(), key.clone()))
                        .cloned()
                        .unwrap_or_default();
                    let status = if !alerts.is_empty() {
                        KeyStatus::Alerted
                    } else if learned_at.is_some_and(|at| sighting.first_seen < at) {
                        KeyStatus::Learning
                    } else {
                        KeyStatus::Known
                    };
                    KeyFacts {
                        key: key.clone(),
                        first_seen: sighting.first_seen,
                        last_seen: sighting.last_seen,
                        count: sighting.count,
                        status,
                        alerts,
                    }
                })
                .collect();
            keys.sort_by(|a, b| {
                (
                    a.status != KeyStatus::Alerted,
                    std::cmp::Reverse(a.first_seen),
                    &a.key,
                )
                    .cmp(&(
                        b.status != KeyStatus::Alerted,
                        std::cmp::Reverse(b.first_seen),
                        &b.key,
                    ))
            });
            let mut by_status = BTreeMap::new();
            for key in &keys {
                *by_status.entry(key.status).or_insert(0) += 1;
            }
            SetFacts {
                name: name.clone(),
                detection: days.map(|_| slug.to_string()),
                keys_total: set.summary.keys,
                learning_start,
                learning_days: days,
                learned_at,
                latest,
                still_learning: learned_at.zip(latest).is_some_and(|(at, l)| l < at),
                this_run: learned.get(name).cloned(),
                by_status,
                keys,
            }
        })
        .collect()
}

/// A time as shown in the report.
pub fn show_time(t: Timestamp) -> String {
    format_time(t).replace('T', " ").replace('Z', " UTC")
}
