//! What a run saw: counts by outcome, the skip log, and the end-of-run summary.
//!
//! Skips are logged with their location: the first [`SKIP_LOG_LIMIT`] of each
//! [`SKIP_LOG_WINDOW`] at WARN, the rest at DEBUG, so a file full of garbage cannot
//! flood the log while a long-running `serve` still shows new trouble; every skip is
//! counted.
//! CloudTrail's expected neighbours (digest files, Insights events, CloudWatch Logs
//! control messages) are counted and logged at DEBUG only: a bucket holds a digest file
//! an hour beside the log files.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// Skip reasons of the host and the built-in detector.
pub const KNOWN_REASONS: [&str; 12] = [
    "invalid-json",
    "oversized",
    "not-an-object",
    "not-cloudtrail",
    "empty-input",
    "cloudtrail-digest",
    "cloudtrail-insight",
    "cwl-control-message",
    "bad-time",
    "bad-field",
    "bad-batch",
    "detector-trap",
];

/// Reasons of CloudTrail's expected neighbours, logged at DEBUG only.
pub const NEIGHBOURS: [&str; 3] = [
    "cloudtrail-digest",
    "cloudtrail-insight",
    "cwl-control-message",
];

/// Skips logged at WARN per [`SKIP_LOG_WINDOW`] before the rest go to DEBUG.
pub const SKIP_LOG_LIMIT: u64 = 50;

/// How often the WARN budget for skips starts again.
pub const SKIP_LOG_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// How many skips were logged at WARN in the current window.
#[derive(Debug, Default, Clone, Copy)]
pub struct SkipLog {
    window: Option<std::time::Instant>,
    warned: u64,
}

/// Log pacing is not part of what a run saw.
impl PartialEq for SkipLog {
    fn eq(&self, _: &SkipLog) -> bool {
        true
    }
}

impl Eq for SkipLog {}

impl SkipLog {
    /// Counts one skip; true when it may be logged at WARN. The first skip past the
    /// budget logs the notice that the rest of the window goes to DEBUG.
    fn warn(&mut self) -> bool {
        let now = std::time::Instant::now();
        if self
            .window
            .is_none_or(|start| now - start >= SKIP_LOG_WINDOW)
        {
            *self = SkipLog {
                window: Some(now),
                warned: 0,
            };
        }
        self.warned += 1;
        if self.warned == SKIP_LOG_LIMIT + 1 {
            tracing::warn!(
                "More than {SKIP_LOG_LIMIT} skips in a minute: the rest of this minute's are counted and logged at debug level only."
            );
        }
        self.warned <= SKIP_LOG_LIMIT
    }
}

/// Counters of one run.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    /// Records decoded from the inputs.
    pub records: u64,
    /// Records the detector does not subscribe to, dropped before the call.
    pub unsubscribed: u64,
    /// Records handed to the detector.
    pub processed: u64,
    /// Processed records that were failed calls (errorCode set).
    pub failed_calls: u64,
    /// Skips by reason (input and detector reasons).
    pub skipped: BTreeMap<String, u64>,
    /// Alerts by detection.
    pub alerts: BTreeMap<String, u64>,
    /// Incidents opened.
    pub incidents: u64,
    /// Pacing of the skip log.
    #[serde(skip)]
    pub skip_log: SkipLog,
    /// Inputs that could not be read at all.
    pub unreadable_inputs: u64,
}

impl RunSummary {
    /// Adds another run's counts (another tenant's) to these.
    pub fn absorb(&mut self, other: &RunSummary) {
        self.records += other.records;
        self.unsubscribed += other.unsubscribed;
        self.processed += other.processed;
        self.failed_calls += other.failed_calls;
        self.unreadable_inputs += other.unreadable_inputs;
        self.incidents += other.incidents;
        for (reason, n) in &other.skipped {
            *self.skipped.entry(reason.clone()).or_insert(0) += n;
        }
        for (detection, n) in &other.alerts {
            *self.alerts.entry(detection.clone()).or_insert(0) += n;
        }
    }

    /// Total skips.
    pub fn total_skipped(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Total alerts.
    pub fn total_alerts(&self) -> u64 {
        self.alerts.values().sum()
    }

    /// Counts a skip and logs it with its location.
    pub fn skip(&mut self, reason: &str, detail: &str, location: &dyn fmt::Display) {
        *self.skipped.entry(reason.to_string()).or_insert(0) += 1;
        // Metric labels come from a bounded set: a custom detector's own reasons are "other".
        let label = KNOWN_REASONS
            .iter()
            .find(|r| **r == reason)
            .copied()
            .unwrap_or("other");
        metrics::counter!("minewatch_events_skipped_total", "reason" => label).increment(1);
        if NEIGHBOURS.contains(&reason) {
            tracing::debug!(%reason, %location, "Skipped input: {detail}.");
            return;
        }
        if self.skip_log.warn() {
            tracing::warn!(%reason, %location, "Skipped input: {detail}.");
        } else {
            tracing::debug!(%reason, %location, "Skipped input: {detail}.");
        }
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "minewatch: {} records read, {} for the detector ({} failed calls), {} not subscribed, {} skipped, {} alerts",
            self.records,
            self.processed,
            self.failed_calls,
            self.unsubscribed,
            self.total_skipped(),
            self.total_alerts()
        )?;
        for (reason, n) in &self.skipped {
            writeln!(f, "  skipped {reason}: {n}")?;
        }
        for (detection, n) in &self.alerts {
            writeln!(f, "  alerts {detection}: {n}")?;
        }
        if self.incidents > 0 {
            writeln!(f, "  incidents opened: {}", self.incidents)?;
        }
        if self.unreadable_inputs > 0 {
            writeln!(f, "  unreadable inputs: {}", self.unreadable_inputs)?;
        }
        Ok(())
    }
}

/// The end-of-run summary of a learn-only run (`baseline build`): what the baselines
/// learned, and the alerts that would have fired had the run been live (none was sent).
#[derive(Debug, Clone, Copy)]
pub struct LearnedSummary<'a> {
    /// The run's counts.
    pub summary: &'a RunSummary,
    /// What the detector taught the baselines, as the store's tap saw it.
    pub learned: &'a crate::report::tap::TapLog,
}

impl fmt::Display for LearnedSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.summary;
        writeln!(
            f,
            "minewatch: learned from {} records: {} for the detector ({} failed calls, not learned), {} not subscribed, {} skipped",
            s.records,
            s.processed,
            s.failed_calls,
            s.unsubscribed,
            s.total_skipped()
        )?;
        for (set, learning) in &self.learned.sets {
            writeln!(
                f,
                "  learned {set}: {} new keys, {} known now ({} sightings), learning since {}",
                learning.new_keys,
                learning.keys_before + learning.new_keys,
                learning.sightings,
                minewatch_guest::time::format_date(learning.learning_start)
            )?;
        }
        let principals = self.learned.principals.len();
        if self.learned.launches_counted > 0 {
            writeln!(
                f,
                "  learned launch rates: {} launches of {principals} principals in {} new windows",
                self.learned.launches_counted, self.learned.windows_started
            )?;
        }
        for (reason, n) in &s.skipped {
            writeln!(f, "  skipped {reason}: {n}")?;
        }
        if s.alerts.is_empty() {
            writeln!(f, "  would have fired: nothing")?;
        }
        for (detection, n) in &s.alerts {
            writeln!(
                f,
                "  would have fired {detection}: {n} (learning only: not sent)"
            )?;
        }
        if s.unreadable_inputs > 0 {
            writeln!(f, "  unreadable inputs: {}", s.unreadable_inputs)?;
        }
        Ok(())
    }
}
