//! Google Cloud and Azure beside AWS: weeks of normal VM launches in each cloud's audit
//! log, a stolen credential turned into a mining burst in each, a new launcher in each,
//! and the benign neighbours that must stay quiet (see [`gcp`] and [`azure`]).
//!
//! Each cloud draws from its own random stream, so adding the clouds changes none of
//! the CloudTrail records or expected alerts, only which records are delivered twice and
//! in what order.

mod azure;
mod gcp;

use rand::RngExt;
use serde_json::Value;

use crate::ExpectedAlert;
use crate::records::{DAY, Rng};

/// What the other clouds add to a scenario: `(event time, record)` pairs and the alerts
/// they must give.
pub(crate) struct Activity {
    pub(crate) records: Vec<(i64, Value)>,
    pub(crate) expected: Vec<ExpectedAlert>,
}

/// Google Cloud's and Azure's activity from `start` (epoch seconds) for `days`, with
/// their incidents when `incidents` is set (placed after day 20, like AWS's).
pub(crate) fn generate(
    start: i64,
    days: u32,
    incidents: bool,
    gcp_rng: Rng,
    azure_rng: Rng,
) -> Activity {
    let mut activity = Activity {
        records: Vec::new(),
        expected: Vec::new(),
    };
    gcp::generate(start, days, incidents, gcp_rng, &mut activity);
    azure::generate(start, days, incidents, azure_rng, &mut activity);
    activity
}

/// A working-hours time on `day`: 08:00 to 18:00 UTC.
fn office_time(rng: &mut Rng, start: i64, day: u32) -> i64 {
    start + i64::from(day) * DAY + rng.random_range(8 * 3600..18 * 3600)
}

/// Formats epoch milliseconds with the fractional seconds each cloud writes
/// (`digits` of them).
fn fmt_fraction(t_ms: i64, digits: usize) -> String {
    let seconds = crate::records::fmt_time(t_ms.div_euclid(1000));
    let fraction = format!(
        "{:03}{}",
        t_ms.rem_euclid(1000),
        "0".repeat(digits.saturating_sub(3))
    );
    format!("{}.{}Z", seconds.trim_end_matches('Z'), &fraction[..digits])
}
