//! The four "previously unseen" detections and their support searches in one rule.
//!
//! Every qualifying sighting updates the key's first-seen state, alert or not. A key
//! alerts on its first sighting (or its first after the forget window) once the set has
//! learned long enough: its earliest first sighting is at least the learning period
//! older than the event (Splunk's `enough_data`). Allowlisted keys and principals learn
//! but never alert.

use crate::baseline::Baseline;
use crate::cloudtrail::EventView;
use crate::model::{Alert, DAY_MS, Evidence, UnseenEvidence};
use crate::settings::UnseenSettings;
use crate::time::format_date;

/// One unseen-value detection bound to its settings.
#[derive(Debug, Clone, Copy)]
pub struct UnseenRule<'a> {
    /// Detection slug, also the base name of its first-seen set.
    pub slug: &'static str,
    /// What a key is, for messages (`region`, `AMI`, ...).
    pub noun: &'static str,
    /// The detection's settings.
    pub settings: &'a UnseenSettings,
}

impl UnseenRule<'_> {
    /// Observes `keys` of one event and returns an alert per key that is new and past learning.
    pub fn check<B: Baseline + ?Sized>(
        &self,
        event: &EventView,
        event_index: u32,
        keys: &[&str],
        baseline: &mut B,
    ) -> Vec<Alert> {
        let keys: Vec<&str> = keys.iter().copied().filter(|k| !k.is_empty()).collect();
        if !self.settings.enabled || keys.is_empty() {
            return Vec::new();
        }
        let set = format!("{}{}", event.scope, self.slug);
        let forget_after = i64::from(self.settings.forget_days) * DAY_MS;
        let learning = i64::from(self.settings.learning_days) * DAY_MS;
        let sightings: Vec<(&str, i64)> = keys.iter().map(|k| (*k, event.time)).collect();
        let observed = baseline.observe(&set, forget_after, &sightings);
        let principal_allowed = event
            .principal
            .as_ref()
            .is_some_and(|p| self.settings.allow_principals.contains(p));
        let mut alerts = Vec::new();
        for (key, seen) in keys.iter().zip(observed) {
            let learned = event.time - seen.learning_start >= learning;
            let allowed = principal_allowed || self.settings.allow_keys.iter().any(|a| a == key);
            if !(seen.is_new && learned) || allowed {
                continue;
            }
            let who = event.principal.as_deref().unwrap_or("an unknown principal");
            let history = match seen.previous {
                Some(p) => format!(
                    "last seen {} and forgotten after {} days",
                    format_date(p.last_seen),
                    self.settings.forget_days
                ),
                None => "never seen before".to_string(),
            };
            alerts.push(Alert {
                detection: self.slug.to_string(),
                event_index,
                key: key.to_string(),
                message: format!(
                    "{} by {who} with {} {key}, {history} ({} {}s known, learning since {}).",
                    event.summary.event_name,
                    self.noun,
                    seen.set_size,
                    self.noun,
                    format_date(seen.learning_start),
                ),
                time: event.time,
                event: event.summary.clone(),
                evidence: Evidence::Unseen(UnseenEvidence {
                    baseline: set.clone(),
                    baseline_size: seen.set_size,
                    learning_start: seen.learning_start,
                    previous: seen.previous,
                }),
            });
        }
        alerts
    }
}
