//! Delivery order: CloudTrail hands records over roughly in time order,
//! with some late by up to ~5 minutes and ~2% delivered twice (same record,
//! same eventID).

use rand::RngExt;
use serde_json::Value;

use super::records::Rng;

/// Largest delivery delay in seconds; bounds how far back in time a record can arrive.
pub(crate) const MAX_DELAY: i64 = 295;
/// Probability that a record is delivered a second time.
pub(crate) const DUPLICATE_RATE: f64 = 0.02;

/// Orders `(eventTime, record)` pairs for delivery, adding exact duplicates.
pub(crate) fn deliver(recs: Vec<(i64, Value)>, rng: &mut Rng) -> Vec<Value> {
    // Sort by event time first so the random draws below do not depend on generation order.
    let mut recs = recs;
    recs.sort_by_key(|r| r.0);
    let mut order: Vec<(i64, usize, bool)> = Vec::with_capacity(recs.len() * 103 / 100);
    for (i, (t, _)) in recs.iter().enumerate() {
        let delay = if rng.random_bool(0.9) {
            rng.random_range(0..=20)
        } else {
            rng.random_range(20..=MAX_DELAY)
        };
        order.push((t + delay, i, false));
        if rng.random_bool(DUPLICATE_RATE) {
            order.push((t + rng.random_range(60..=MAX_DELAY), i, true));
        }
    }
    order.sort_unstable();
    let mut slots: Vec<Option<Value>> = recs.into_iter().map(|(_, v)| Some(v)).collect();
    let mut copies = vec![0u8; slots.len()];
    for &(_, i, _) in &order {
        copies[i] += 1;
    }
    order
        .into_iter()
        .map(|(_, i, _)| {
            copies[i] -= 1;
            if copies[i] == 0 {
                slots[i].take().expect("each record is moved out once")
            } else {
                slots[i].clone().expect("record still present")
            }
        })
        .collect()
}
