//! Conversions between the WIT types of the bindings and the guest crate's domain types.

use minewatch_guest::{
    Alert, Detection, DetectorInfo, EventSummary, Evidence, Outcome, RateEvidence, Severity,
    Sighting, Skip, Subscription, UnseenEvidence,
};

use crate::bindings::types as wit;

pub(super) fn empty_info() -> DetectorInfo {
    DetectorInfo {
        name: String::new(),
        version: String::new(),
        detections: Vec::new(),
        subscriptions: Vec::new(),
        fields: Vec::new(),
        default_settings: String::new(),
    }
}

pub(super) fn from_wit_info(info: wit::DetectorInfo) -> DetectorInfo {
    DetectorInfo {
        name: info.name,
        version: info.version,
        detections: info
            .detections
            .into_iter()
            .map(|d| Detection {
                slug: d.slug,
                splunk_id: d.splunk_id,
                name: d.name,
                description: d.description,
                severity: match d.severity {
                    wit::Severity::Informational => Severity::Informational,
                    wit::Severity::Low => Severity::Low,
                    wit::Severity::Medium => Severity::Medium,
                    wit::Severity::High => Severity::High,
                    wit::Severity::Critical => Severity::Critical,
                },
                risk_score: d.risk_score,
                mitre_attack: d.mitre_attack,
            })
            .collect(),
        subscriptions: info
            .subscriptions
            .into_iter()
            .map(|s| Subscription {
                event_source: s.event_source,
                event_names: s.event_names,
            })
            .collect(),
        fields: info.fields,
        default_settings: info.default_settings,
    }
}

fn from_wit_sighting(s: wit::Sighting) -> Sighting {
    Sighting {
        first_seen: s.first_seen,
        last_seen: s.last_seen,
        count: s.count,
    }
}

pub(super) fn from_wit_outcome(outcome: wit::Outcome) -> Outcome {
    Outcome {
        alerts: outcome
            .alerts
            .into_iter()
            .map(|a| Alert {
                detection: a.detection,
                event_index: a.event_index,
                key: a.key,
                message: a.message,
                time: a.time,
                event: EventSummary {
                    event_id: a.event.event_id,
                    event_name: a.event.event_name,
                    principal: a.event.principal,
                    arn: a.event.arn,
                    account: a.event.account,
                    region: a.event.region,
                    source_ip: a.event.source_ip,
                    user_agent: a.event.user_agent,
                    instance_ids: a.event.instance_ids,
                    instance_type: a.event.instance_type,
                    image_ids: a.event.image_ids,
                },
                evidence: match a.evidence {
                    wit::Evidence::Unseen(u) => Evidence::Unseen(UnseenEvidence {
                        baseline: u.baseline,
                        baseline_size: u.baseline_size,
                        learning_start: u.learning_start,
                        previous: u.previous.map(from_wit_sighting),
                    }),
                    wit::Evidence::Rate(r) => Evidence::Rate(RateEvidence {
                        window_start: r.window_start,
                        count: r.count,
                        history_windows: r.history_windows,
                        mean: r.mean,
                        stdev: r.stdev,
                        threshold: r.threshold,
                        tail_probability: r.tail_probability,
                        method: r.method,
                    }),
                },
            })
            .collect(),
        skipped: outcome
            .skipped
            .into_iter()
            .map(|s| Skip {
                event_index: s.event_index,
                reason: s.reason,
                detail: s.detail,
            })
            .collect(),
        failed_calls: outcome.failed_calls,
    }
}
