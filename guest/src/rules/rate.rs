//! The two "abnormally high instances launched" detections.
//!
//! Successful RunInstances are counted per principal in aligned UTC windows (10 minutes
//! by default); CloudTrail's duplicate deliveries are dropped by `eventID` first. Every
//! window count is kept host-side as a per-day histogram, updated as the count rises, so
//! the history of "(window, principal) counts" is exact without waiting for windows to
//! close. A rule compares the running count with the trailing history (the current window
//! left out) and fires once per window and principal, as soon as the count crosses.

use std::collections::BTreeMap;
use std::fmt;

use crate::audit::EventView;
use crate::baseline::{Baseline, Observed, ValueChange, apply_value_change};
use crate::catalog::{Cloud, Kind};
use crate::model::{Alert, DAY_MS, Evidence, MINUTE_MS, RateEvidence};
use crate::settings::{CountMode, Population, Settings};
use crate::time::format_time;

/// Summary statistics of a history of window counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// `(count, windows)` pairs, ascending by count.
    pub histogram: Vec<(u64, u64)>,
    /// Number of windows.
    pub windows: u64,
    /// Mean count.
    pub mean: f64,
    /// Sample standard deviation.
    pub stdev: f64,
}

impl History {
    /// Summarises a histogram.
    pub fn new(histogram: Vec<(u64, u64)>) -> History {
        let windows: u64 = histogram.iter().map(|(_, f)| f).sum();
        if windows == 0 {
            return History::default();
        }
        let n = windows as f64;
        let mean = histogram
            .iter()
            .map(|&(v, f)| v as f64 * f as f64)
            .sum::<f64>()
            / n;
        let squares: f64 = histogram
            .iter()
            .map(|&(v, f)| f as f64 * (v as f64 - mean).powi(2))
            .sum();
        let stdev = if windows > 1 {
            (squares / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        History {
            histogram,
            windows,
            mean,
            stdev,
        }
    }

    /// Summarises a histogram without one window with `count`, if present (the window
    /// being judged).
    pub fn without(mut histogram: Vec<(u64, u64)>, count: u64) -> History {
        if let Some(slot) = histogram.iter_mut().find(|(v, _)| *v == count) {
            slot.1 -= 1;
        }
        histogram.retain(|(_, f)| *f > 0);
        History::new(histogram)
    }

    /// Upper-tail probability `P(X >= count)` and the count that must be exceeded for it
    /// to fall below `p0`, with the method used.
    ///
    /// With at least `empirical_min` windows the empirical distribution answers; below
    /// that, an exponential fitted to `count - 1` (counts start at 1), which is the
    /// maximum-likelihood fit of a memoryless tail on small histories. Linear in the
    /// histogram (its values are distinct and ascending).
    pub fn tail(&self, count: u64, p0: f64, empirical_min: u64) -> (f64, f64, TailMethod) {
        let windows = self.windows;
        if windows >= empirical_min {
            let n = windows as f64;
            let at_least: u64 = self
                .histogram
                .iter()
                .filter(|(v, _)| *v >= count)
                .map(|(_, f)| f)
                .sum();
            // The smallest history value q with P(X > q) < p0: walking up, the windows
            // above a value are those not yet passed.
            let mut above = windows;
            let q = self
                .histogram
                .iter()
                .find_map(|&(v, f)| {
                    above -= f;
                    ((above as f64) / n < p0).then_some(v)
                })
                .unwrap_or(0);
            (
                at_least as f64 / n,
                q as f64,
                TailMethod::Empirical { windows },
            )
        } else {
            let excess_mean = self.mean - 1.0;
            if excess_mean <= 0.0 {
                let p = if count > 1 { 0.0 } else { 1.0 };
                return (p, 1.0, TailMethod::AllOnes { windows });
            }
            let p = (-((count as f64) - 1.0) / excess_mean).exp();
            let threshold = 1.0 + excess_mean * (1.0 / p0).ln();
            let mean = self.mean;
            (p, threshold, TailMethod::Exponential { mean, windows })
        }
    }
}

/// How [`History::tail`] answered; its text ends an alert's `method`, written only for
/// an alert.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TailMethod {
    /// The empirical distribution of `windows` windows.
    Empirical {
        /// Windows in the history.
        windows: u64,
    },
    /// Every window had one launch, so any more is beyond the history.
    AllOnes {
        /// Windows in the history.
        windows: u64,
    },
    /// An exponential fitted to a short history.
    Exponential {
        /// Mean count of the history.
        mean: f64,
        /// Windows in the history.
        windows: u64,
    },
}

impl fmt::Display for TailMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TailMethod::Empirical { windows } => {
                write!(f, "from the empirical distribution of {windows} windows")
            }
            TailMethod::AllOnes { windows } => {
                write!(f, "as every one of {windows} windows had 1 launch")
            }
            TailMethod::Exponential { mean, windows } => write!(
                f,
                "from an exponential fit (mean {mean:.2}) on {windows} windows"
            ),
        }
    }
}

/// Which launches of a batch are first deliveries: CloudTrail delivers some events
/// twice, and an `eventID` already counted within `dedup_hours` must not count again.
/// One `observe` per dedup set (per account with `scope = "account"`) for the batch.
pub fn first_deliveries<B: Baseline + ?Sized>(
    settings: &Settings,
    launches: &[&EventView],
    baseline: &mut B,
) -> Vec<bool> {
    let dedup = i64::from(settings.rate.dedup_hours) * 3_600_000;
    let mut first = vec![true; launches.len()];
    let mut sets: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, event) in launches.iter().enumerate() {
        if event.summary.event_id.is_empty() {
            continue;
        }
        let set = format!("{}rate/event-ids", event.scope);
        match sets.iter_mut().find(|(name, _)| *name == set) {
            Some((_, list)) => list.push(i),
            None => sets.push((set, vec![i])),
        }
    }
    for (set, list) in &sets {
        let requests: Vec<(&str, i64)> = list
            .iter()
            .map(|&i| (launches[i].summary.event_id.as_str(), launches[i].time))
            .collect();
        for (&i, seen) in list.iter().zip(baseline.observe(set, dedup, &requests)) {
            first[i] = seen.is_new;
        }
    }
    first
}

/// The window counter's name and the amount one launch adds to it.
fn counter(settings: &Settings, event: &EventView) -> (String, &'static str, u64) {
    let (mode, delta) = match settings.rate.count {
        CountMode::Calls => ("calls", 1),
        CountMode::Instances => ("instances", event.summary.instance_ids.len().max(1) as u64),
    };
    (format!("{}rate/{mode}", event.scope), mode, delta)
}

/// The start of the window an event falls in.
fn window_of(settings: &Settings, event: &EventView) -> i64 {
    let width = i64::from(settings.rate.window_minutes) * MINUTE_MS;
    event.time.div_euclid(width) * width
}

/// Counts the batch's launches (first deliveries with a principal, in order) in their
/// windows and returns each launch's window count after its own addition: one `add` per
/// counter for the whole batch, which answers exactly as one call per launch would.
pub fn count_launches<B: Baseline + ?Sized>(
    settings: &Settings,
    launches: &[&EventView],
    baseline: &mut B,
) -> Vec<u64> {
    let mut counts = vec![0; launches.len()];
    let mut counters: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, event) in launches.iter().enumerate() {
        let (name, _, _) = counter(settings, event);
        match counters.iter_mut().find(|(n, _)| *n == name) {
            Some((_, list)) => list.push(i),
            None => counters.push((name, vec![i])),
        }
    }
    for (name, list) in &counters {
        let increments: Vec<(&str, i64, u64)> = list
            .iter()
            .map(|&i| {
                let event = launches[i];
                let principal = event.principal.as_deref().unwrap_or_default();
                let delta = counter(settings, event).2;
                (principal, window_of(settings, event), delta)
            })
            .collect();
        for (&i, count) in list.iter().zip(baseline.add(name, &increments)) {
            counts[i] = count;
        }
    }
    counts
}

/// Judges one counted launch (see [`count_launches`]; `count` is its window's count
/// after it) and returns the alerts of both rate rules.
pub fn check<B: Baseline + ?Sized>(
    settings: &Settings,
    event: &EventView,
    event_index: u32,
    count: u64,
    baseline: &mut B,
) -> Vec<Alert> {
    let spike = &settings.launch_spike;
    let density = &settings.launch_spike_density;
    let Some(principal) = event.principal.as_deref() else {
        return Vec::new();
    };
    if !spike.enabled && !density.enabled {
        return Vec::new();
    }
    let scope = &event.scope;
    let rate = &settings.rate;
    let window = window_of(settings, event);
    let day = window.div_euclid(DAY_MS) * DAY_MS;
    let (_, mode, delta) = counter(settings, event);
    let change = [ValueChange {
        bucket: day,
        previous: count - delta,
        current: count,
    }];
    let global = format!("{scope}rate/{mode}/global");
    baseline.record_values(&global, &change);
    let own = (spike.population == Population::Principal
        || density.population == Population::Principal)
        .then(|| format!("{scope}rate/{mode}/principal/{principal}"));
    if let Some(own) = &own {
        baseline.record_values(own, &change);
    }
    let series = |population| match (population, &own) {
        (Population::Principal, Some(own)) => own,
        _ => &global,
    };
    let mut alerts = Vec::new();
    let judge = |baseline: &mut B, population, history_days: u32| {
        let from = day - i64::from(history_days.saturating_sub(1)) * DAY_MS;
        History::without(baseline.histogram(series(population), from, day), count)
    };
    let crossing = Crossing {
        window_minutes: rate.window_minutes,
        event,
        event_index,
        principal,
        noun: match (rate.count, event.cloud) {
            (CountMode::Calls, Cloud::Aws) => "RunInstances calls",
            (CountMode::Calls, _) => "instance creations",
            (CountMode::Instances, _) => "instances launched",
        },
        window,
        count,
    };
    if spike.enabled && !spike.allow_principals.iter().any(|p| p == principal) {
        let history = judge(baseline, spike.population, spike.history_days);
        let threshold = history.mean + spike.k * history.stdev;
        if history.windows >= spike.min_history_windows
            && count as f64 > threshold
            && count >= spike.min_count
            && first_in_window(
                baseline,
                scope,
                event.cloud.slug(Kind::LaunchSpike),
                window,
                principal,
                event.time,
            )
        {
            let method = format!(
                "mean {:.2} + {} x stdev {:.2} of {} windows in the last {} days",
                history.mean, spike.k, history.stdev, history.windows, spike.history_days
            );
            alerts.push(crossing.alert(
                event.cloud.slug(Kind::LaunchSpike),
                &history,
                threshold,
                None,
                method,
            ));
        }
    }
    if density.enabled && !density.allow_principals.iter().any(|p| p == principal) {
        let history = judge(baseline, density.population, density.history_days);
        let (p, threshold, method) = history.tail(
            count,
            density.tail_probability,
            density.empirical_min_windows,
        );
        if history.windows >= density.min_history_windows
            && p < density.tail_probability
            && count >= density.min_count
            && first_in_window(
                baseline,
                scope,
                event.cloud.slug(Kind::LaunchSpikeDensity),
                window,
                principal,
                event.time,
            )
        {
            let shown = if p == 0.0 {
                "0".to_string()
            } else {
                format!("{p:.2e}")
            };
            let method = format!(
                "P(count >= {count}) = {shown} < {} over the last {} days, {method}",
                density.tail_probability, density.history_days
            );
            alerts.push(crossing.alert(
                event.cloud.slug(Kind::LaunchSpikeDensity),
                &history,
                threshold,
                Some(p),
                method,
            ));
        }
    }
    alerts
}

/// The baseline as [`check`] sees it through one batch: each histogram range is read
/// from the host once and then kept current with the batch's own value changes (the
/// same [`apply_value_change`] the host applies), which reach the host in one
/// `record-values` call per series, before any new range of that series is read and at
/// [`BatchSeries::finish`]. A launch thus costs no host call of its own (it cost three:
/// one change and two histogram reads); the answers are those of calling through.
pub struct BatchSeries<'a, B: Baseline + ?Sized> {
    inner: &'a mut B,
    /// Ranges read, kept current since.
    reads: Vec<Read>,
    /// Changes not yet sent, per series, in order.
    pending: Vec<(String, Vec<ValueChange>)>,
}

/// One histogram range as read, with the batch's changes applied since.
struct Read {
    series: String,
    from: i64,
    to: i64,
    /// Merged over the range: value → frequency.
    histogram: BTreeMap<u64, u64>,
}

impl<'a, B: Baseline + ?Sized> BatchSeries<'a, B> {
    /// Starts a batch over `inner`.
    pub fn new(inner: &'a mut B) -> Self {
        BatchSeries {
            inner,
            reads: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Sends the changes still pending; call once the batch's launches are checked.
    pub fn finish(mut self) {
        for (series, changes) in std::mem::take(&mut self.pending) {
            self.inner.record_values(&series, &changes);
        }
    }

    fn send(&mut self, series: &str) {
        if let Some(at) = self.pending.iter().position(|(s, _)| s == series) {
            let (series, changes) = self.pending.swap_remove(at);
            self.inner.record_values(&series, &changes);
        }
    }
}

impl<B: Baseline + ?Sized> Baseline for BatchSeries<'_, B> {
    fn observe(
        &mut self,
        set: &str,
        forget_after: i64,
        sightings: &[(&str, i64)],
    ) -> Vec<Observed> {
        self.inner.observe(set, forget_after, sightings)
    }

    fn add(&mut self, counter: &str, increments: &[(&str, i64, u64)]) -> Vec<u64> {
        self.inner.add(counter, increments)
    }

    fn record_values(&mut self, series: &str, changes: &[ValueChange]) {
        for read in self.reads.iter_mut().filter(|r| r.series == series) {
            for change in changes
                .iter()
                .filter(|c| (read.from..=read.to).contains(&c.bucket))
            {
                apply_value_change(&mut read.histogram, change);
            }
        }
        match self.pending.iter_mut().find(|(s, _)| s == series) {
            Some((_, pending)) => pending.extend_from_slice(changes),
            None => self.pending.push((series.to_string(), changes.to_vec())),
        }
    }

    fn histogram(&mut self, series: &str, from: i64, to: i64) -> Vec<(u64, u64)> {
        let cached = self
            .reads
            .iter()
            .position(|r| r.series == series && r.from == from && r.to == to);
        let at = match cached {
            Some(at) => at,
            None => {
                self.send(series);
                let histogram = self.inner.histogram(series, from, to).into_iter().collect();
                self.reads.push(Read {
                    series: series.to_string(),
                    from,
                    to,
                    histogram,
                });
                self.reads.len() - 1
            }
        };
        let histogram = &self.reads[at].histogram;
        histogram.iter().map(|(&v, &f)| (v, f)).collect()
    }
}

/// True the first time a rule fires for a window and principal.
fn first_in_window<B: Baseline + ?Sized>(
    baseline: &mut B,
    scope: &str,
    slug: &str,
    window: i64,
    principal: &str,
    time: i64,
) -> bool {
    let key = format!("{window}|{principal}");
    baseline.observe(&format!("{scope}rate/alerted/{slug}"), 0, &[(&key, time)])[0].is_new
}

/// A window whose count a rate rule judges, with what its alert says about it.
struct Crossing<'a> {
    window_minutes: u32,
    event: &'a EventView,
    event_index: u32,
    principal: &'a str,
    /// What the count counts (`RunInstances calls`, `instances launched`).
    noun: &'a str,
    /// Window start (ms).
    window: i64,
    count: u64,
}

impl Crossing<'_> {
    /// The alert of rule `slug` for this window, above `threshold` of `history`.
    fn alert(
        &self,
        slug: &str,
        history: &History,
        threshold: f64,
        tail_probability: Option<f64>,
        method: String,
    ) -> Alert {
        let Crossing {
            window_minutes,
            event,
            event_index,
            principal,
            noun,
            window,
            count,
        } = *self;
        Alert {
            detection: slug.to_string(),
            event_index,
            key: principal.to_string(),
            message: format!(
                "{principal} made {count} {noun} in the {window_minutes}-minute window from {}, above the threshold of {threshold:.2} ({method}).",
                format_time(window)
            ),
            time: event.time,
            event: event.summary.clone(),
            evidence: Evidence::Rate(RateEvidence {
                window_start: window,
                count,
                history_windows: history.windows,
                mean: history.mean,
                stdev: history.stdev,
                threshold,
                tail_probability,
                method,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-bucket histograms as the host keeps them, counting calls.
    #[derive(Default)]
    struct Series {
        buckets: BTreeMap<String, BTreeMap<i64, BTreeMap<u64, u64>>>,
        calls: usize,
    }

    impl Baseline for Series {
        fn observe(&mut self, _: &str, _: i64, _: &[(&str, i64)]) -> Vec<Observed> {
            unreachable!("not used by the series")
        }

        fn add(&mut self, _: &str, _: &[(&str, i64, u64)]) -> Vec<u64> {
            unreachable!("not used by the series")
        }

        fn record_values(&mut self, series: &str, changes: &[ValueChange]) {
            self.calls += 1;
            let buckets = self.buckets.entry(series.to_string()).or_default();
            for change in changes {
                apply_value_change(buckets.entry(change.bucket).or_default(), change);
            }
        }

        fn histogram(&mut self, series: &str, from: i64, to: i64) -> Vec<(u64, u64)> {
            self.calls += 1;
            self.buckets
                .get(series)
                .map(|b| crate::baseline::merge_histograms(b, from, to))
                .unwrap_or_default()
        }
    }

    #[test]
    fn a_batch_through_the_series_cache_answers_as_calling_through() {
        // Two series, two days, two ranges: each launch records its window's new count
        // and reads both ranges, as `check` does.
        let mut direct = Series::default();
        let mut cached = Series::default();
        let mut through = BatchSeries::new(&mut cached);
        let mut answers = (Vec::new(), Vec::new());
        let mut counts: BTreeMap<(&str, i64), u64> = BTreeMap::new();
        for step in 0..60u64 {
            let series = if step % 3 == 0 { "b" } else { "a" };
            let day = if step < 40 { 10 * DAY_MS } else { 11 * DAY_MS };
            let window = day + (step % 4) as i64;
            let count = counts.entry((series, window)).or_insert(0);
            *count += 1 + step % 2;
            let change = [ValueChange {
                bucket: day,
                previous: *count - (1 + step % 2),
                current: *count,
            }];
            for (baseline, answers) in [
                (&mut direct as &mut dyn Baseline, &mut answers.0),
                (&mut through as &mut dyn Baseline, &mut answers.1),
            ] {
                baseline.record_values(series, &change);
                answers.push(baseline.histogram(series, day - 29 * DAY_MS, day));
                answers.push(baseline.histogram(series, day - 89 * DAY_MS, day));
            }
        }
        through.finish();
        assert_eq!(answers.0, answers.1);
        assert_eq!(direct.buckets, cached.buckets, "what reached the host");
        assert!(cached.calls * 10 < direct.calls, "{} calls", cached.calls);
    }

    #[test]
    fn history_statistics_are_sample_statistics() {
        let h = History::new(vec![(1, 2), (3, 2)]);
        assert_eq!(h.windows, 4);
        assert_eq!(h.mean, 2.0);
        assert!((h.stdev - (4.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn the_judged_window_is_left_out() {
        let h = History::without(vec![(1, 3), (40, 1)], 40);
        assert_eq!(h.histogram, vec![(1, 3)]);
        assert_eq!(h.mean, 1.0);
    }

    #[test]
    fn exponential_tail_on_short_history() {
        let h = History::new(vec![(1, 50), (2, 30), (3, 20)]);
        let (p, threshold, _) = h.tail(40, 0.0005, 2000);
        assert!(p < 1e-10, "{p}");
        let (p3, ..) = h.tail(3, 0.0005, 2000);
        assert!(p3 > 0.05, "{p3}");
        // The threshold is where the fitted tail crosses p0.
        let (at, ..) = h.tail(threshold.ceil() as u64, 0.0005, 2000);
        assert!(at < 0.0005);
        let (below, ..) = h.tail(threshold.floor() as u64, 0.0005, 2000);
        assert!(below >= 0.0005);
    }

    #[test]
    fn empirical_tail_on_long_history() {
        let h = History::new(vec![(1, 9000), (2, 990), (9, 10)]);
        let (p, q, method) = h.tail(9, 0.0005, 2000);
        assert_eq!(p, 10.0 / 10_000.0);
        assert_eq!(q, 9.0);
        assert!(method.to_string().starts_with("from the empirical"));
        let (p10, ..) = h.tail(10, 0.0005, 2000);
        assert_eq!(p10, 0.0);
    }
}
