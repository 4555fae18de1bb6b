//! The report's launch rates: per principal the detector's window counts with both rate
//! rules' thresholds (charted for principals with alerts and the busiest, totals for the
//! rest), per scope the global thresholds over time, and the rules in words. Counts are
//! calls or instances per window; times are ms since the epoch (RFC 3339 in JSON).

use std::collections::{BTreeMap, HashMap};

use minewatch_guest::Timestamp;
use minewatch_guest::catalog::{LAUNCH_SPIKE, LAUNCH_SPIKE_DENSITY};
use minewatch_guest::settings::{Population, Settings};
use serde::Serialize;
use serde_json::Value;

use super::rates::{self, Rates, Thresholds};
use super::{AlertFacts, ReportOptions};

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
    #[serde(serialize_with = "super::rfc3339::time")]
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

/// The rate facts of a replay's `rates`, linking `alerts` to their principals' charts.
pub(super) fn rate_facts(
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
