//! Risk-based incidents: the alerts of one stolen key, as one incident.
//!
//! A stolen key turned into a mining rig trips several detections within minutes (new
//! region, new AMI, new instance type, both launch-rate rules); a colleague's first
//! launch trips one. As in Splunk's risk-based alerting, each alert adds its
//! detection's risk score (from the detector's `describe`, so custom detectors count
//! too) to its *risk object*, the principal (per account when the detector's `scope` is
//! `"account"`); each distinct (detection, key) counts once. When an object's total over
//! a sliding window of event time reaches the threshold, one incident opens; every
//! later alert of that object within the window of the incident's latest activity
//! updates it (same id, new total) instead of opening another.
//!
//! **State** lives in the baseline store, beside the baselines and with their
//! guarantees (durable, shared by a fleet in Redis, exported with them): per risk
//! object a first-seen set `incident/<object>` whose keys are the contributions (each
//! carrying what the incident lists about it) and whose `#incident` key is the open
//! incident (start, latest activity, generation), started atomically by
//! [`BaselineBackend::episode`]. So three sidecars seeing parts of one campaign open
//! one incident, and a restart continues it. The id is derived from tenant, object,
//! generation and start, so every sidecar names it alike.
//!
//! The correlation runs inside the batch, after the detector and before the outputs:
//! if the store fails, the batch (incidents included) is run again with the same
//! answers, and a crash before the commit repeats a record, never loses one.

pub mod render;

use std::collections::{BTreeMap, BTreeSet};

use minewatch_guest::{Alert, DetectorInfo, Evidence, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{Activity, BaselineBackend};

/// The key of the open incident in an object's set.
const INCIDENT_KEY: &str = "#incident";

/// `[incidents]`: how alerts add up to incidents.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IncidentSettings {
    /// Off switch.
    pub enabled: bool,
    /// Sliding window of event time over which risk adds up, in hours.
    pub window_hours: f64,
    /// Total risk at which an incident opens (Splunk's default risk threshold).
    pub threshold: u32,
    /// Detections that count (slugs); empty: every detection of the detector.
    pub detections: Vec<String>,
    /// Risk scores that replace the detector's own, by detection slug (0-100).
    pub scores: BTreeMap<String, u8>,
    /// Who incidents are assigned to (OCSF `assignee_group.name`).
    pub assignee_group: String,
}

impl Default for IncidentSettings {
    fn default() -> Self {
        IncidentSettings {
            enabled: true,
            window_hours: 24.0,
            threshold: 100,
            detections: Vec::new(),
            scores: BTreeMap::new(),
            assignee_group: "cloud-security".into(),
        }
    }
}

impl IncidentSettings {
    /// Checks what serde cannot.
    ///
    /// # Errors
    /// A window that is not a positive number of hours, a zero threshold, a score over 100.
    pub fn check(&self) -> anyhow::Result<()> {
        if !(self.window_hours.is_finite() && self.window_hours > 0.0) {
            anyhow::bail!("[incidents] window_hours must be a positive number of hours");
        }
        if self.threshold == 0 {
            anyhow::bail!("[incidents] threshold must be at least 1");
        }
        if let Some((slug, score)) = self.scores.iter().find(|(_, s)| **s > 100) {
            anyhow::bail!("[incidents.scores] {slug} = {score}: risk scores go from 0 to 100");
        }
        Ok(())
    }

    fn window_ms(&self) -> i64 {
        (self.window_hours * 3_600_000.0) as i64
    }
}

/// What an incident keeps of one contributing alert (stored as the JSON text of its
/// key in the object's set; its sighting's `first_seen` is the alert's time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// Detection slug.
    pub detection: String,
    /// The alert's key (the new value, or the principal).
    pub key: String,
    /// CloudTrail `eventID` of the triggering event.
    pub event_id: String,
    /// Risk the detection adds.
    pub risk: u8,
    /// ATT&CK technique ids of the detection.
    pub techniques: Vec<String>,
    /// Region, instance type and AMIs of the triggering event.
    pub region: String,
    /// Instance type of the triggering event (may be empty).
    pub instance_type: String,
    /// AMIs of the triggering event.
    pub images: Vec<String>,
    /// Instances the triggering event launched or started.
    pub instances: u64,
    /// Launches counted in the rate window, for rate detections.
    pub window_count: Option<u64>,
    /// Account of the triggering event.
    pub account: String,
}

impl Contribution {
    /// The OCSF `finding_info.uid` of the Detection Finding this alert was rendered as.
    pub fn finding_uid(&self) -> String {
        format!("{}:{}:{}", self.detection, self.event_id, self.key)
    }
}

/// One incident record: opened, or updated by a joining alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Stable id: the same for the opening record and every update, on every sidecar.
    pub id: String,
    /// This record opens the incident (otherwise it updates it).
    pub opened: bool,
    /// Tenant whose alerts these are.
    pub tenant: String,
    /// The risk object's principal.
    pub principal: String,
    /// Account of the principal (of the latest contribution).
    pub account: String,
    /// Total risk of the contributions listed.
    pub risk: u32,
    /// The threshold it reached.
    pub threshold: u32,
    /// The window in hours.
    pub window_hours: f64,
    /// Contributions in time order, with their times (ms).
    pub contributions: Vec<(Timestamp, Contribution)>,
    /// Who it is assigned to.
    pub assignee_group: String,
}

impl Incident {
    /// Event time of the earliest contribution (ms).
    pub fn first_time(&self) -> Timestamp {
        self.contributions.first().map_or(0, |c| c.0)
    }

    /// Event time of the latest contribution (ms).
    pub fn last_time(&self) -> Timestamp {
        self.contributions.last().map_or(0, |c| c.0)
    }
}

/// Adds one detector's alerts up to incidents, for one tenant.
#[derive(Debug, Clone)]
pub struct Correlator {
    settings: IncidentSettings,
    /// Detection slug → (risk, ATT&CK techniques), for the detections that count.
    catalogue: BTreeMap<String, (u8, Vec<String>)>,
    per_account: bool,
}

impl Correlator {
    /// A correlator for the detector `info` describes, configured with the
    /// `detector_settings` JSON (its `scope` decides the risk object); `None` when
    /// incidents are off.
    pub fn new(
        settings: &IncidentSettings,
        info: &DetectorInfo,
        detector_settings: &str,
    ) -> Option<Correlator> {
        if !settings.enabled {
            return None;
        }
        let counts = |slug: &str| {
            settings.detections.is_empty() || settings.detections.iter().any(|d| d == slug)
        };
        let catalogue = info
            .detections
            .iter()
            .filter(|d| counts(&d.slug))
            .map(|d| {
                let risk = settings
                    .scores
                    .get(&d.slug)
                    .copied()
                    .unwrap_or(d.risk_score);
                (d.slug.clone(), (risk, d.mitre_attack.clone()))
            })
            .collect();
        let per_account = serde_json::from_str::<serde_json::Value>(detector_settings)
            .ok()
            .and_then(|s| {
                s.get("scope")
                    .and_then(|v| v.as_str())
                    .map(|s| s == "account")
            })
            .unwrap_or(false);
        Some(Correlator {
            settings: settings.clone(),
            catalogue,
            per_account,
        })
    }

    /// The incident records `alerts` (of one batch, in order) open or update, using and
    /// updating the state in `store`. A failed store call is left for the caller to
    /// find through `take_failure` (the answers are then unusable).
    pub fn correlate(
        &self,
        tenant: &str,
        alerts: &[Alert],
        store: &mut dyn BaselineBackend,
    ) -> Vec<Incident> {
        let window = self.settings.window_ms();
        let mut out = Vec::new();
        for alert in alerts {
            let Some((risk, techniques)) = self.catalogue.get(&alert.detection) else {
                continue;
            };
            let e = &alert.event;
            if *risk == 0 || e.principal.is_empty() {
                continue;
            }
            let object = if self.per_account {
                format!("{}/{}", e.account, e.principal)
            } else {
                e.principal.clone()
            };
            let set = format!("incident/{object}");
            let contribution = Contribution {
                detection: alert.detection.clone(),
                key: alert.key.clone(),
                event_id: e.event_id.clone(),
                risk: *risk,
                techniques: techniques.clone(),
                region: e.region.clone(),
                instance_type: e.instance_type.clone(),
                images: e.image_ids.clone(),
                instances: e.instance_ids.len() as u64,
                window_count: match &alert.evidence {
                    Evidence::Rate(r) => Some(r.count),
                    Evidence::Unseen(_) => None,
                },
                account: e.account.clone(),
            };
            let text = serde_json::to_string(&contribution).expect("contributions serialize");
            let observed = store
                .tenant(tenant)
                .observe(&set, window, &[(&text, alert.time)]);
            if !observed.first().is_some_and(|o| o.is_new) {
                // The same alert again (a replayed batch, a redelivered event).
                continue;
            }
            let listed = store.keys(tenant, &set);
            let open = listed
                .iter()
                .find(|(k, _)| k == INCIDENT_KEY)
                .is_some_and(|(_, s)| alert.time - s.last_seen <= window);
            let all = contributions(&listed);
            let latest = all
                .iter()
                .map(|c| c.0)
                .max()
                .unwrap_or(alert.time)
                .max(alert.time);
            let recent = distinct(all.iter().filter(|(t, _)| *t >= latest - window));
            let repeat = recent.iter().any(|(_, c)| {
                c.detection == contribution.detection
                    && c.key == contribution.key
                    && c.event_id != contribution.event_id
            });
            if repeat {
                // The same (detection, key) already counted: no new risk, nothing new to say.
                continue;
            }
            let total: u32 = recent.iter().map(|(_, c)| u32::from(c.risk)).sum();
            if !open && total < self.settings.threshold {
                continue;
            }
            let activity = Activity {
                set: &set,
                key: INCIDENT_KEY,
                time: alert.time,
                window,
            };
            let episode = store.episode(tenant, activity);
            let members = distinct(all.iter().filter(|(t, _)| *t >= episode.start - window));
            out.push(Incident {
                id: incident_id(tenant, &object, episode.generation, episode.start),
                opened: episode.started,
                tenant: tenant.to_string(),
                principal: e.principal.clone(),
                account: e.account.clone(),
                risk: members.iter().map(|(_, c)| u32::from(c.risk)).sum(),
                threshold: self.settings.threshold,
                window_hours: self.settings.window_hours,
                contributions: members,
                assignee_group: self.settings.assignee_group.clone(),
            });
        }
        out
    }
}

/// The contributions listed in an object's set with their times, in time order.
fn contributions(listed: &[(String, minewatch_guest::Sighting)]) -> Vec<(Timestamp, Contribution)> {
    let mut all: Vec<(Timestamp, Contribution)> = listed
        .iter()
        .filter(|(k, _)| k != INCIDENT_KEY)
        .filter_map(|(k, s)| {
            serde_json::from_str::<Contribution>(k)
                .ok()
                .map(|c| (s.first_seen, c))
        })
        .collect();
    all.sort_by(|a, b| (a.0, &a.1.detection, &a.1.key).cmp(&(b.0, &b.1.detection, &b.1.key)));
    all
}

/// The earliest contribution of each (detection, key), in time order.
fn distinct<'a>(
    contributions: impl Iterator<Item = &'a (Timestamp, Contribution)>,
) -> Vec<(Timestamp, Contribution)> {
    let mut seen = BTreeSet::new();
    contributions
        .filter(|(_, c)| seen.insert((c.detection.clone(), c.key.clone())))
        .cloned()
        .collect()
}

/// A UUID-shaped id from what names an incident.
fn incident_id(tenant: &str, object: &str, generation: u64, start: Timestamp) -> String {
    let digest = Sha256::digest(format!(
        "{tenant}\u{1f}{object}\u{1f}{generation}\u{1f}{start}"
    ));
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests;
