//! The four "previously unseen" detections and their support searches in one rule.
//!
//! Every qualifying sighting updates the key's first-seen state, alert or not. A key
//! alerts on its first sighting (or its first after the forget window) once the set has
//! learned long enough: its earliest first sighting is at least the learning period
//! older than the event (Splunk's `enough_data`). Allowlisted keys and principals learn
//! but never alert.

use crate::audit::{Call, EventView};
use crate::baseline::Baseline;
use crate::catalog::Kind;
use crate::model::{Alert, DAY_MS, Evidence, UnseenEvidence};
use crate::settings::UnseenSettings;
use crate::time::format_date;

/// One unseen-value detection bound to its settings.
#[derive(Debug, Clone, Copy)]
pub struct UnseenRule<'a> {
    /// Which of the four; an event's cloud names the detection
    /// ([`crate::catalog::Cloud::slug`]), also the base name of its first-seen set.
    pub kind: Kind,
    /// The detection's settings.
    pub settings: &'a UnseenSettings,
}

/// One key of one event, for [`UnseenRule::check`].
#[derive(Debug, Clone, Copy)]
pub struct Sighting<'e> {
    /// Index of the event in its batch.
    pub event_index: u32,
    /// The event.
    pub event: &'e EventView<'e>,
    /// The value seen.
    pub key: &'e str,
}

impl UnseenRule<'_> {
    /// Observes the keys of a whole batch, in order, with one `observe` per first-seen
    /// set, and returns an alert per key that is new and past learning.
    ///
    /// Each set's answers depend only on that set's earlier sightings, so observing a
    /// batch at once gives exactly the answers of observing event by event, in a single
    /// crossing of the component boundary per set.
    pub fn check<B: Baseline + ?Sized>(
        &self,
        sightings: &[Sighting<'_>],
        baseline: &mut B,
    ) -> Vec<Alert> {
        if !self.settings.enabled {
            return Vec::new();
        }
        // Group by set (one, or one per account with `scope = "account"`), in order; the
        // name `<scope><slug>` is written once per set, not per sighting.
        let mut sets: Vec<((&str, &str), Vec<&Sighting<'_>>)> = Vec::new();
        for sighting in sightings.iter().filter(|s| !s.key.is_empty()) {
            let set = (&*sighting.event.scope, sighting.event.cloud.slug(self.kind));
            match sets.iter_mut().find(|(s, _)| *s == set) {
                Some((_, list)) => list.push(sighting),
                None => sets.push((set, vec![sighting])),
            }
        }
        let forget_after = i64::from(self.settings.forget_days) * DAY_MS;
        let mut alerts = Vec::new();
        for ((scope, slug), list) in &sets {
            let set = format!("{scope}{slug}");
            let requests: Vec<(&str, i64)> = list.iter().map(|s| (s.key, s.event.time)).collect();
            let observed = baseline.observe(&set, forget_after, &requests);
            for (sighting, seen) in list.iter().zip(observed) {
                if let Some(alert) = self.judge(&set, sighting, seen) {
                    alerts.push(alert);
                }
            }
        }
        alerts
    }

    /// One sentence per detection: who did what with which new value, and what the
    /// baseline knew.
    fn message(
        &self,
        event: &EventView<'_>,
        key: &str,
        seen: &crate::baseline::Observed,
    ) -> String {
        let who = event.principal.as_deref().unwrap_or("An unknown principal");
        let instances = match event.summary.instance_ids.len() {
            0 | 1 => "an instance".to_string(),
            n => format!("{n} instances"),
        };
        let verb = match event.call {
            Call::Start => "started",
            Call::Launch => "launched",
            Call::Write => "wrote",
        };
        let nouns = event.cloud.nouns();
        let novelty = match seen.previous {
            Some(p) => format!(
                "not used since {} (forgotten after {} days)",
                format_date(p.last_seen),
                self.settings.forget_days
            ),
            None => "never used before".to_string(),
        };
        let noun = match self.kind {
            Kind::UnseenRegion => "region",
            Kind::UnseenImage => nouns.image,
            Kind::UnseenInstanceType => nouns.instance_type,
            _ => "principal",
        };
        let known = match seen.set_size {
            1 => format!("1 known {noun}"),
            n => format!("{n} known {noun}s"),
        };
        let baseline = format!(
            "{known}, learning since {}",
            format_date(seen.learning_start)
        );
        match self.kind {
            Kind::UnseenRegion => {
                format!("{who} {verb} {instances} in region {key}, {novelty} ({baseline}).")
            }
            Kind::UnseenImage => format!(
                "{who} {verb} {instances} from {} {key}, an image {novelty} ({baseline}).",
                nouns.image
            ),
            Kind::UnseenInstanceType => format!(
                "{who} {verb} {instances} of type {key}, {} {} {novelty} ({baseline}).",
                article(nouns.instance_type),
                nouns.instance_type
            ),
            _ => match seen.previous {
                Some(_) => format!(
                    "{key} {verb} {instances}, its first launch in a long time: {novelty} ({baseline})."
                ),
                None => format!("{key} {verb} {instances} for the first time ({baseline})."),
            },
        }
    }

    /// The alert for one observation, if it is new, past learning and not allowlisted.
    fn judge(
        &self,
        set: &str,
        sighting: &Sighting<'_>,
        seen: crate::baseline::Observed,
    ) -> Option<Alert> {
        let (event, key, event_index) = (sighting.event, sighting.key, sighting.event_index);
        let learning = i64::from(self.settings.learning_days) * DAY_MS;
        let learned = event.time - seen.learning_start >= learning;
        let principal_allowed = event
            .principal
            .as_deref()
            .is_some_and(|p| self.settings.allow_principals.iter().any(|a| a == p));
        let allowed = principal_allowed || self.settings.allow_keys.iter().any(|a| a == key);
        if !(seen.is_new && learned) || allowed {
            return None;
        }
        Some(Alert {
            detection: event.cloud.slug(self.kind).to_string(),
            event_index,
            key: key.to_string(),
            message: self.message(event, key, &seen),
            time: event.time,
            event: event.summary(),
            evidence: Evidence::Unseen(UnseenEvidence {
                baseline: set.to_string(),
                baseline_size: seen.set_size,
                learning_start: seen.learning_start,
                previous: seen.previous,
            }),
        })
    }
}

/// `a` or `an` before a noun.
fn article(noun: &str) -> &'static str {
    if noun.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}
