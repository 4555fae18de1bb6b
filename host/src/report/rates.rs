//! Launch rates per principal and window, with the thresholds both rate rules applied.
//!
//! The counts are the detector's own: every launch the tap saw, with the window count
//! the store answered (duplicates already dropped, failures never counted). The
//! thresholds are recomputed here, in the host, by replaying those counts in the order
//! the detector counted them into per-day histograms of window counts (seeded with the
//! history the store held before the run), and asking the guest's own statistics
//! ([`History`]) what each rule would have compared a window's count with when that
//! window's last launch was judged: mean + k·stdev of the trailing `history_days` for
//! `ec2-launch-spike`, the count where the upper-tail probability falls below
//! `tail_probability` for `ec2-launch-spike-density`, the judged window left out, as
//! the rules do. A rule that has fewer than `min_history_windows` windows of history
//! cannot fire, and has no threshold then.
//!
//! The thresholds of a window that fired can differ a little from those in its alert:
//! the alert is judged at the launch that crossed, this replay at the window's last
//! launch, and windows of other principals counted in between move the history.

use std::collections::{BTreeMap, HashMap};

use minewatch_guest::baseline::apply_value_change;
use minewatch_guest::rules::rate::History;
use minewatch_guest::settings::{Population, Settings};
use minewatch_guest::{DAY_MS, Timestamp, ValueChange};

use super::tap::TapLog;

/// Thresholds of both rules at one moment; `None` where a rule is off or not armed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Thresholds {
    /// `ec2-launch-spike`: mean + k·stdev.
    pub stdev: Option<f64>,
    /// `ec2-launch-spike-density`: the count whose tail probability is the limit.
    pub density: Option<f64>,
}

/// One window with launches of one principal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowRate {
    /// Window start, ms since the epoch.
    pub start: Timestamp,
    /// Calls (or instances) counted in the window.
    pub count: u64,
    /// What each rule compared the count with at the window's last launch.
    pub thresholds: Thresholds,
}

/// Every window with launches of one principal.
#[derive(Debug, Clone, PartialEq)]
pub struct PrincipalRates {
    /// Baseline scope: empty, or `<account>/` with `scope = "account"`.
    pub scope: String,
    /// Principal ARN (the rate rules' key).
    pub principal: String,
    /// Calls (or instances) counted over the run.
    pub launches: u64,
    /// Windows with launches, by start.
    pub windows: Vec<WindowRate>,
}

/// Rates of every principal, and each scope's thresholds over time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rates {
    /// Principals, most launches first.
    pub principals: Vec<PrincipalRates>,
    /// Per scope: the thresholds of the global population at each window start that had
    /// launches (by anyone), as judged at the last such launch.
    pub timelines: BTreeMap<String, Vec<(Timestamp, Thresholds)>>,
}

/// The scope part of a counter name (`<scope>rate/<mode>`).
pub fn scope_of(counter: &str) -> &str {
    counter.rfind("rate/").map_or("", |at| &counter[..at])
}

/// A per-day histogram series with a cache of the merged days before the judged one.
#[derive(Debug, Default)]
struct Series {
    days: BTreeMap<Timestamp, BTreeMap<u64, u64>>,
    /// history_days -> (day, merged histogram of the history days before `day`).
    before: HashMap<u32, (Timestamp, BTreeMap<u64, u64>)>,
}

impl Series {
    fn seeded(days: Option<&BTreeMap<Timestamp, BTreeMap<u64, u64>>>) -> Series {
        Series {
            days: days.cloned().unwrap_or_default(),
            before: HashMap::new(),
        }
    }

    fn apply(&mut self, change: &ValueChange) {
        apply_value_change(self.days.entry(change.bucket).or_default(), change);
        self.before.retain(|_, (day, _)| *day <= change.bucket);
    }

    /// The merged `(value, windows)` histogram of days `day - (days - 1) ..= day`.
    fn merged(&mut self, day: Timestamp, days: u32) -> Vec<(u64, u64)> {
        let from = day - i64::from(days.saturating_sub(1)) * DAY_MS;
        let cached = self.before.get(&days).is_some_and(|(d, _)| *d == day);
        if !cached {
            let mut merged = BTreeMap::new();
            for histogram in self.days.range(from..day).map(|(_, h)| h) {
                for (value, frequency) in histogram {
                    *merged.entry(*value).or_insert(0) += frequency;
                }
            }
            self.before.insert(days, (day, merged));
        }
        let mut merged = self.before[&days].1.clone();
        if let Some(today) = self.days.get(&day) {
            for (value, frequency) in today {
                *merged.entry(*value).or_insert(0) += frequency;
            }
        }
        merged.into_iter().collect()
    }
}

/// Replays the tap's launches under `settings` (see the module docs).
pub fn replay(log: &TapLog, settings: &Settings) -> Rates {
    let spike = &settings.launch_spike;
    let density = &settings.launch_spike_density;
    let per_principal =
        spike.population == Population::Principal || density.population == Population::Principal;
    // The last launch of each (counter, principal, window): where the window is judged.
    let mut last: HashMap<(u32, u32, Timestamp), usize> = HashMap::new();
    for (i, launch) in log.launches.iter().enumerate() {
        last.insert((launch.counter, launch.principal, launch.window), i);
    }
    let mut global: HashMap<u32, Series> = HashMap::new();
    let mut own: HashMap<(u32, u32), Series> = HashMap::new();
    let mut windows: HashMap<(u32, u32), (u64, Vec<WindowRate>)> = HashMap::new();
    let mut timelines: HashMap<u32, BTreeMap<Timestamp, Thresholds>> = HashMap::new();
    for (i, launch) in log.launches.iter().enumerate() {
        let counter = &log.counters[launch.counter as usize];
        let day = launch.window.div_euclid(DAY_MS) * DAY_MS;
        let change = ValueChange {
            bucket: day,
            previous: launch.count.saturating_sub(launch.delta),
            current: launch.count,
        };
        let global = global
            .entry(launch.counter)
            .or_insert_with(|| Series::seeded(log.seeds.get(&format!("{counter}/global"))));
        global.apply(&change);
        let mut own_series = per_principal.then(|| {
            let principal = &log.principals[launch.principal as usize];
            own.entry((launch.counter, launch.principal))
                .or_insert_with(|| {
                    Series::seeded(log.seeds.get(&format!("{counter}/principal/{principal}")))
                })
        });
        if let Some(series) = own_series.as_deref_mut() {
            series.apply(&change);
        }
        let entry = windows
            .entry((launch.counter, launch.principal))
            .or_insert_with(|| (0, Vec::new()));
        entry.0 += launch.delta;
        if last[&(launch.counter, launch.principal, launch.window)] != i {
            continue;
        }
        let mut judge = |population: Population, history_days: u32| {
            let series = match (population, own_series.as_deref_mut()) {
                (Population::Principal, Some(series)) => series,
                _ => &mut *global,
            };
            History::without(series.merged(day, history_days), launch.count)
        };
        let mut thresholds = Thresholds::default();
        if spike.enabled {
            let history = judge(spike.population, spike.history_days);
            thresholds.stdev = (history.windows() >= spike.min_history_windows)
                .then_some(history.mean() + spike.k * history.stdev());
        }
        if density.enabled {
            let history = judge(density.population, density.history_days);
            thresholds.density = (history.windows() >= density.min_history_windows).then(|| {
                history
                    .tail(
                        launch.count,
                        density.tail_probability,
                        density.empirical_min_windows,
                    )
                    .1
            });
        }
        entry.1.push(WindowRate {
            start: launch.window,
            count: launch.count,
            thresholds,
        });
        timelines
            .entry(launch.counter)
            .or_default()
            .insert(launch.window, thresholds);
    }
    let mut principals: Vec<PrincipalRates> = windows
        .into_iter()
        .map(|((counter, principal), (launches, mut windows))| {
            windows.sort_by_key(|w| w.start);
            PrincipalRates {
                scope: scope_of(&log.counters[counter as usize]).to_string(),
                principal: log.principals[principal as usize].clone(),
                launches,
                windows,
            }
        })
        .collect();
    principals.sort_by(|a, b| {
        b.launches
            .cmp(&a.launches)
            .then_with(|| (&a.scope, &a.principal).cmp(&(&b.scope, &b.principal)))
    });
    let timelines = timelines
        .into_iter()
        .map(|(counter, points)| {
            (
                scope_of(&log.counters[counter as usize]).to_string(),
                points.into_iter().collect(),
            )
        })
        .collect();
    Rates {
        principals,
        timelines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tap::Launch;

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    const WINDOW: i64 = 600_000;

    fn log(launches: &[(u32, i64, u64)]) -> TapLog {
        TapLog {
            counters: vec!["rate/calls".into()],
            principals: vec![
                "arn:aws:iam::1:user/ci".into(),
                "arn:aws:iam::1:user/eve".into(),
            ],
            launches: launches
                .iter()
                .map(|&(principal, window, count)| Launch {
                    counter: 0,
                    principal,
                    window,
                    count,
                    delta: 1,
                })
                .collect(),
            ..TapLog::default()
        }
    }

    /// Thirty windows of one launch each (a day apart, so every day has history), then
    /// a window of 12 by the second principal.
    fn quiet_then_burst() -> Vec<(u32, i64, u64)> {
        let mut launches: Vec<(u32, i64, u64)> = (0..30).map(|d| (0, T0 + d * DAY_MS, 1)).collect();
        launches.push((0, T0 + 30 * DAY_MS, 1));
        launches.push((0, T0 + 30 * DAY_MS + WINDOW, 1));
        launches.push((0, T0 + 30 * DAY_MS + WINDOW, 2));
        let burst = T0 + 30 * DAY_MS + 2 * WINDOW;
        launches.extend((1..=12).map(|c| (1, burst, c)));
        launches
    }

    #[test]
    fn thresholds_are_the_guests_statistics_of_the_history_before() {
        let launches = quiet_then_burst();
        let rates = replay(&log(&launches), &Settings::default());
        let eve = rates
            .principals
            .iter()
            .find(|p| p.principal.ends_with("eve"))
            .unwrap();
        assert_eq!(eve.launches, 12);
        assert_eq!(eve.windows.len(), 1);
        let burst = eve.windows[0];
        assert_eq!(burst.count, 12);
        // History at the burst's last launch: the 32 windows of the trailing 30 days
        // (29 days back plus today: days 1..=30) with counts 1 (x30) and 2 (x1), the
        // judged window left out.
        let spike = History::new(vec![(1, 30), (2, 1)]);
        let stdev = burst.thresholds.stdev.unwrap();
        assert!(
            (stdev - (spike.mean() + 4.0 * spike.stdev())).abs() < 1e-9,
            "{stdev}"
        );
        // Density: 90 days, so day 0 counts too: 31 windows of 1, one of 2.
        let density = History::new(vec![(1, 31), (2, 1)]);
        let expected = density.tail(12, 0.0005, 2000).1;
        assert_eq!(burst.thresholds.density, Some(expected));
        assert!(burst.count as f64 > stdev && burst.count as f64 > expected);
    }

    #[test]
    fn rules_are_not_armed_before_enough_history() {
        let launches: Vec<(u32, i64, u64)> = (0..10).map(|d| (0, T0 + d * WINDOW, 1)).collect();
        let rates = replay(&log(&launches), &Settings::default());
        assert!(
            rates.principals[0]
                .windows
                .iter()
                .all(|w| w.thresholds == Thresholds::default())
        );
    }

    #[test]
    fn seeds_from_the_store_count_as_history() {
        let mut log = log(&[(1, T0 + 40 * DAY_MS, 1)]);
        let day = T0 + 39 * DAY_MS;
        log.seeds.insert(
            "rate/calls/global".into(),
            BTreeMap::from([(day, BTreeMap::from([(1, 30), (3, 2)]))]),
        );
        let rates = replay(&log, &Settings::default());
        let history = History::new(vec![(1, 30), (3, 2)]);
        assert_eq!(
            rates.principals[0].windows[0].thresholds.stdev,
            Some(history.mean() + 4.0 * history.stdev())
        );
    }

    #[test]
    fn the_timeline_has_one_point_per_window_start() {
        let launches = quiet_then_burst();
        let rates = replay(&log(&launches), &Settings::default());
        let timeline = &rates.timelines[""];
        assert_eq!(timeline.len(), 33);
        assert!(timeline.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn scope_is_the_prefix_of_the_counter() {
        assert_eq!(scope_of("rate/calls"), "");
        assert_eq!(scope_of("111122223333/rate/instances"), "111122223333/");
    }
}
