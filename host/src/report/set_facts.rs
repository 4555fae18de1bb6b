//! The report's first-seen sets after the run: each set's learning period and state,
//! what this run taught it, and every key with its sightings (ms since the epoch, RFC
//! 3339 in JSON) and status (alerted, seen while learning, known).

use std::collections::{BTreeMap, HashMap, HashSet};

use minewatch_guest::settings::Settings;
use minewatch_guest::time::parse_event_time;
use minewatch_guest::{DAY_MS, Timestamp};
use serde::Serialize;

use super::AlertFacts;
use super::tap::SetLearning;

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
    #[serde(serialize_with = "super::rfc3339::option")]
    pub learning_start: Option<Timestamp>,
    /// Learning period of the detection.
    pub learning_days: Option<u32>,
    /// When the learning period ends (ended).
    #[serde(serialize_with = "super::rfc3339::option")]
    pub learned_at: Option<Timestamp>,
    /// Latest sighting of any key.
    #[serde(serialize_with = "super::rfc3339::option")]
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
    #[serde(serialize_with = "super::rfc3339::time")]
    pub first_seen: Timestamp,
    /// Latest sighting.
    #[serde(serialize_with = "super::rfc3339::time")]
    pub last_seen: Timestamp,
    /// Sightings.
    pub count: u64,
    /// Status.
    pub status: KeyStatus,
    /// Anchors of its alerts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<String>,
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

/// The facts of the `stored` sets, with what this run taught them and their alerted keys.
pub(super) fn set_facts(
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
