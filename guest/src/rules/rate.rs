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
use crate::baseline::{Baseline, Observed, ValueChange};
use crate::catalog::{Cloud, Kind};
use crate::model::{Alert, DAY_MS, Evidence, MINUTE_MS, RateEvidence};
use crate::settings::{CountMode, Population, Settings};
use crate::time::format_time;

/// A history of window counts: how many windows had each count, with the sums its
/// statistics come from, kept as windows are added and removed (no pass over the
/// histogram for the mean and standard deviation).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Count → windows with it.
    histogram: BTreeMap<u64, u64>,
    windows: u64,
    /// Sum of the counts.
    sum: u128,
    /// Sum of the squared counts.
    squares: u128,
}

impl History {
    /// A history of `(count, windows)` pairs.
    pub fn new(histogram: impl IntoIterator<Item = (u64, u64)>) -> History {
        let mut history = History::default();
        for (count, windows) in histogram {
            history.add(count, windows);
        }
        history
    }

    /// A history without one window with `count`, if it has one (the window being
    /// judged).
    pub fn without(histogram: impl IntoIterator<Item = (u64, u64)>, count: u64) -> History {
        let mut history = History::new(histogram);
        history.remove(count);
        history
    }

    /// Adds `windows` windows with `count`.
    pub fn add(&mut self, count: u64, windows: u64) {
        if windows == 0 {
            return;
        }
        *self.histogram.entry(count).or_insert(0) += windows;
        self.windows += windows;
        self.sum += u128::from(count) * u128::from(windows);
        self.squares += u128::from(count) * u128::from(count) * u128::from(windows);
    }

    /// Removes one window with `count`; false when there is none.
    pub fn remove(&mut self, count: u64) -> bool {
        let Some(windows) = self.histogram.get_mut(&count) else {
            return false;
        };
        *windows -= 1;
        if *windows == 0 {
            self.histogram.remove(&count);
        }
        self.windows -= 1;
        self.sum -= u128::from(count);
        self.squares -= u128::from(count) * u128::from(count);
        true
    }

    /// Applies one window's change of count, as
    /// [`crate::baseline::apply_value_change`] applies it to a histogram.
    pub fn apply(&mut self, change: &ValueChange) {
        if change.previous > 0 {
            self.remove(change.previous);
        }
        if change.current > 0 {
            self.add(change.current, 1);
        }
    }

    /// `(count, windows)` pairs, ascending by count.
    pub fn histogram(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.histogram
            .iter()
            .map(|(&count, &windows)| (count, windows))
    }

    /// Number of windows.
    pub fn windows(&self) -> u64 {
        self.windows
    }

    /// Mean count; 0 without windows.
    pub fn mean(&self) -> f64 {
        if self.windows == 0 {
            return 0.0;
        }
        self.sum as f64 / self.windows as f64
    }

    /// Sample standard deviation of the counts; 0 below two windows. The sum of squared
    /// deviations is exact (`n * Σc² - (Σc)²` in integers) before the one division.
    pub fn stdev(&self) -> f64 {
        if self.windows < 2 {
            return 0.0;
        }
        let n = u128::from(self.windows);
        let deviations = n * self.squares - self.sum * self.sum;
        (deviations as f64 / (n * (n - 1)) as f64).sqrt()
    }

    /// Upper-tail probability `P(X >= count)` and the count that must be exceeded for it
    /// to fall below `p0`, with the method used.
    ///
    /// With at least `empirical_min` windows the empirical distribution answers; below
    /// that, an exponential fitted to `count - 1` (counts start at 1), which is the
    /// maximum-likelihood fit of a memoryless tail on small histories. Linear in the
    /// histogram.
    pub fn tail(&self, count: u64, p0: f64, empirical_min: u64) -> (f64, f64, TailMethod) {
        let windows = self.windows;
        if windows >= empirical_min {
            let n = windows as f64;
            let at_least: u64 = self.histogram.range(count..).map(|(_, f)| f).sum();
            // The smallest history value q with P(X > q) < p0 (0 if none). P(X > v)
            // falls as v rises, so walking down from the largest value, q is the last
            // one that passes: only the upper tail is read.
            let mut q = 0;
            let mut above = 0;
            for (&v, &f) in self.histogram.iter().rev() {
                if (above as f64) / n >= p0 {
                    break;
                }
                q = v;
                above += f;
            }
            (
                at_least as f64 / n,
                q as f64,
                TailMethod::Empirical { windows },
            )
        } else {
            let mean = self.mean();
            let excess_mean = mean - 1.0;
            if excess_mean <= 0.0 {
                let p = if count > 1 { 0.0 } else { 1.0 };
                return (p, 1.0, TailMethod::AllOnes { windows });
            }
            let p = (-((count as f64) - 1.0) / excess_mean).exp();
            let threshold = 1.0 + excess_mean * (1.0 / p0).ln();
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
    launches: &[&EventView<'_>],
    baseline: &mut B,
) -> Vec<bool> {
    let dedup = i64::from(settings.rate.dedup_hours) * 3_600_000;
    let mut first = vec![true; launches.len()];
    let with_ids = (0..launches.len()).filter(|&i| !launches[i].summary.event_id.is_empty());
    for (scope, list) in by_scope(launches, with_ids) {
        let requests: Vec<(&str, i64)> = list
            .iter()
            .map(|&i| (&*launches[i].summary.event_id, launches[i].time))
            .collect();
        let set = format!("{scope}rate/event-ids");
        for (&i, seen) in list.iter().zip(baseline.observe(&set, dedup, &requests)) {
            first[i] = seen.is_new;
        }
    }
    first
}

/// The launches `indices` grouped by baseline scope, in order of first appearance.
fn by_scope<'v>(
    launches: &[&'v EventView<'_>],
    indices: impl Iterator<Item = usize>,
) -> Vec<(&'v str, Vec<usize>)> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for i in indices {
        let scope = &*launches[i].scope;
        match groups.iter_mut().find(|(s, _)| *s == scope) {
            Some((_, list)) => list.push(i),
            None => groups.push((scope, vec![i])),
        }
    }
    groups
}

/// What the window counters count (`calls` or `instances`), for their names.
fn mode(settings: &Settings) -> &'static str {
    match settings.rate.count {
        CountMode::Calls => "calls",
        CountMode::Instances => "instances",
    }
}

/// The amount one launch adds to its window's count.
fn delta(settings: &Settings, event: &EventView<'_>) -> u64 {
    match settings.rate.count {
        CountMode::Calls => 1,
        CountMode::Instances => event.summary.instance_ids.len().max(1) as u64,
    }
}

/// The start of the window an event falls in.
fn window_of(settings: &Settings, event: &EventView<'_>) -> i64 {
    let width = i64::from(settings.rate.window_minutes) * MINUTE_MS;
    event.time.div_euclid(width) * width
}

/// Counts the batch's launches (first deliveries with a principal, in order) in their
/// windows and returns each launch's window count after its own addition: one `add` per
/// counter (`<scope>rate/<mode>`) for the whole batch, which answers exactly as one call
/// per launch would.
pub fn count_launches<B: Baseline + ?Sized>(
    settings: &Settings,
    launches: &[&EventView<'_>],
    baseline: &mut B,
) -> Vec<u64> {
    let mut counts = vec![0; launches.len()];
    for (scope, list) in by_scope(launches, 0..launches.len()) {
        let increments: Vec<(&str, i64, u64)> = list
            .iter()
            .map(|&i| {
                let event = launches[i];
                let principal = event.principal.as_deref().unwrap_or_default();
                (
                    principal,
                    window_of(settings, event),
                    delta(settings, event),
                )
            })
            .collect();
        let name = format!("{scope}rate/{}", mode(settings));
        for (&i, count) in list.iter().zip(baseline.add(&name, &increments)) {
            counts[i] = count;
        }
    }
    counts
}

/// Judges one counted launch (see [`count_launches`]; `count` is its window's count
/// after it) and returns the alerts of both rate rules.
pub fn check<B: Baseline + ?Sized>(
    settings: &Settings,
    event: &EventView<'_>,
    event_index: u32,
    count: u64,
    baseline: &mut BatchSeries<'_, B>,
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
    let mode = mode(settings);
    let change = [ValueChange {
        bucket: day,
        previous: count - delta(settings, event),
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
    let from = |history_days: u32| day - i64::from(history_days.saturating_sub(1)) * DAY_MS;
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
    // Each rule tests the cheap conditions first: most launches leave their window below
    // `min_count`, and then neither history is read.
    if spike.enabled
        && count >= spike.min_count
        && !spike.allow_principals.iter().any(|p| p == principal)
    {
        let history = baseline.judge(
            series(spike.population),
            from(spike.history_days),
            day,
            count,
            Stats::of,
        );
        let threshold = history.mean + spike.k * history.stdev;
        if history.windows >= spike.min_history_windows
            && count as f64 > threshold
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
                history,
                threshold,
                None,
                method,
            ));
        }
    }
    if density.enabled
        && count >= density.min_count
        && !density.allow_principals.iter().any(|p| p == principal)
    {
        let judged = baseline.judge(
            series(density.population),
            from(density.history_days),
            day,
            count,
            |history| {
                (history.windows() >= density.min_history_windows).then(|| {
                    let tail = history.tail(
                        count,
                        density.tail_probability,
                        density.empirical_min_windows,
                    );
                    (Stats::of(history), tail)
                })
            },
        );
        if let Some((history, (p, threshold, method))) = judged
            && p < density.tail_probability
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
                history,
                threshold,
                Some(p),
                method,
            ));
        }
    }
    alerts
}

/// The baseline as [`check`] sees it through one batch: each histogram range is read
/// from the host once and then kept current with the batch's own value changes (as
/// the host's [`crate::baseline::apply_value_change`] would change it), which reach the
/// host in one `record-values` call per series, before any new range of that series is
/// read and at [`BatchSeries::finish`]. A launch thus costs no host call of its own (it cost three:
/// one change and two histogram reads), and no pass over a histogram for its mean and
/// standard deviation; the answers are those of calling through.
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
    /// Merged over the range.
    history: History,
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

    /// Runs `judge` on the history of `series` over buckets `from..=to` without one
    /// window with `count` (the window being judged, already counted).
    pub fn judge<T>(
        &mut self,
        series: &str,
        from: i64,
        to: i64,
        count: u64,
        judge: impl FnOnce(&History) -> T,
    ) -> T {
        let history = self.history(series, from, to);
        let removed = history.remove(count);
        let answer = judge(history);
        if removed {
            history.add(count, 1);
        }
        answer
    }

    /// The history of `series` over buckets `from..=to`, read from the host the first
    /// time.
    fn history(&mut self, series: &str, from: i64, to: i64) -> &mut History {
        let cached = self
            .reads
            .iter()
            .position(|r| r.series == series && r.from == from && r.to == to);
        let at = match cached {
            Some(at) => at,
            None => {
                self.send(series);
                let history = History::new(self.inner.histogram(series, from, to));
                self.reads.push(Read {
                    series: series.to_string(),
                    from,
                    to,
                    history,
                });
                self.reads.len() - 1
            }
        };
        &mut self.reads[at].history
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
                read.history.apply(change);
            }
        }
        match self.pending.iter_mut().find(|(s, _)| s == series) {
            Some((_, pending)) => pending.extend_from_slice(changes),
            None => self.pending.push((series.to_string(), changes.to_vec())),
        }
    }

    fn histogram(&mut self, series: &str, from: i64, to: i64) -> Vec<(u64, u64)> {
        self.history(series, from, to).histogram().collect()
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

/// What a rule read of a history, as its alert shows it.
#[derive(Debug, Clone, Copy)]
struct Stats {
    windows: u64,
    mean: f64,
    stdev: f64,
}

impl Stats {
    fn of(history: &History) -> Stats {
        Stats {
            windows: history.windows(),
            mean: history.mean(),
            stdev: history.stdev(),
        }
    }
}

/// A window whose count a rate rule judges, with what its alert says about it.
struct Crossing<'a> {
    window_minutes: u32,
    event: &'a EventView<'a>,
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
        history: Stats,
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
            event: event.summary(),
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
    use crate::baseline::apply_value_change;

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
        assert_eq!(h.windows(), 4);
        assert_eq!(h.mean(), 2.0);
        assert!((h.stdev() - (4.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn a_history_kept_by_changes_matches_its_histogram() {
        // Windows rising one launch at a time, as the rules see them, against the
        // statistics recomputed from the histogram with a two-pass mean and deviation.
        let mut kept = History::new(vec![(1, 40), (2, 7)]);
        let mut windows: Vec<u64> = vec![0; 9];
        for step in 0..200u64 {
            let w = ((step * 7) % 9) as usize;
            let previous = windows[w];
            windows[w] += 1 + step % 3;
            kept.apply(&ValueChange {
                bucket: 0,
                previous,
                current: windows[w],
            });
            let rebuilt = History::new(kept.histogram().collect::<Vec<_>>());
            assert_eq!(kept, rebuilt, "step {step}");
            let pairs: Vec<(u64, u64)> = kept.histogram().collect();
            let n = kept.windows() as f64;
            let mean = pairs.iter().map(|&(v, f)| (v * f) as f64).sum::<f64>() / n;
            let squares: f64 = pairs
                .iter()
                .map(|&(v, f)| f as f64 * (v as f64 - mean).powi(2))
                .sum();
            assert_eq!(kept.mean(), mean);
            assert!((kept.stdev() - (squares / (n - 1.0)).sqrt()).abs() < 1e-9);
        }
        assert_eq!(kept.windows(), 47 + 9);
    }

    #[test]
    fn the_judged_window_is_left_out() {
        let h = History::without(vec![(1, 3), (40, 1)], 40);
        assert_eq!(h.histogram().collect::<Vec<_>>(), vec![(1, 3)]);
        assert_eq!(h.mean(), 1.0);
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
        // The threshold is the smallest value with P(X > value) < p0, by definition.
        let pairs: Vec<(u64, u64)> = h.histogram().collect();
        for p0 in [0.0, 1e-5, 0.0005, 0.001, 0.0011, 0.05, 0.5, 1.0] {
            let above = |v: u64| {
                pairs
                    .iter()
                    .filter(|(w, _)| *w > v)
                    .map(|(_, f)| f)
                    .sum::<u64>()
            };
            let expected = pairs
                .iter()
                .map(|(v, _)| *v)
                .find(|&v| (above(v) as f64) / 10_000.0 < p0)
                .unwrap_or(0);
            assert_eq!(h.tail(1, p0, 2000).1, expected as f64, "p0 {p0}");
        }
    }
}
