//! The WIT edge of the component: the three exports and the `baseline` import.
//!
//! Compiled only for wasm32. `wit_bindgen::generate!` reads the very contract the host
//! was built with (`../../wit`) and generates Rust types for it, a `Guest` trait for the
//! exports and functions for the imports. Everything here is conversion; the detection
//! is in `detector.rs`.
#![allow(unsafe_code, reason = "wit-bindgen generated glue")]

use std::cell::RefCell;

use crate::detector::{self, Detector};
use crate::model::{self, Field};
use crate::settings::Settings;

wit_bindgen::generate!({
    path: "../../wit/0.1.0",
    world: "detector-world",
});

use exports::minewatch::detector::detector::Guest;
use minewatch::detector::{baseline as imports, log, types as wit};

// The settings are the only state kept in the instance (one instance per detector).
thread_local! {
    static DETECTOR: RefCell<Detector> = RefCell::new(Detector::default());
}

struct Component;

impl Guest for Component {
    /// Tells the host what this component detects, which events to send and which
    /// fields of them to project.
    fn describe() -> wit::DetectorInfo {
        wit::DetectorInfo {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            detections: vec![wit::Detection {
                slug: detector::SLUG.to_string(),
                // No Splunk detection behind this one.
                splunk_id: String::new(),
                name: "GPU Instance Launched Outside Business Hours".to_string(),
                description: "A successful RunInstances of a GPU or ML-accelerator family \
                    (p, g, inf, trn, dl by default) outside business hours (08:00-18:00 UTC, \
                    Monday to Friday by default). The alert says whether the principal had \
                    launched GPU instances before, from a host-side first-seen set of GPU \
                    launchers."
                    .to_string(),
                severity: wit::Severity::Medium,
                risk_score: 50,
                // Resource Hijacking.
                mitre_attack: vec!["T1496".to_string()],
            }],
            // The host drops every other event before calling `detect`.
            subscriptions: vec![wit::Subscription {
                event_source: detector::EVENT_SOURCE.to_string(),
                event_names: vec![detector::EVENT_NAME.to_string()],
            }],
            fields: detector::FIELDS.iter().map(|f| f.to_string()).collect(),
            default_settings: Settings::default().to_json(),
        }
    }

    /// Applies settings; an error message names the bad setting.
    fn configure(settings: String) -> Result<(), String> {
        // Send panics to the host's log instead of a stderr the sandbox does not have.
        std::panic::set_hook(Box::new(|panic| {
            log::emit(log::Level::Error, &format!("detector panicked: {panic}"));
        }));
        DETECTOR.with(|d| d.borrow_mut().configure(&settings))
    }

    /// Runs the detection over a batch of projected events.
    fn detect(events: Vec<wit::Event>) -> wit::Outcome {
        let events: Vec<Vec<Field>> = events
            .into_iter()
            .map(|e| e.fields.into_iter().map(field).collect())
            .collect();
        let outcome = DETECTOR.with(|d| d.borrow().detect(&events, &mut HostBaseline));
        wit::Outcome {
            alerts: outcome.findings.into_iter().map(alert).collect(),
            skipped: outcome
                .skipped
                .into_iter()
                .map(|s| wit::Skip {
                    event_index: s.event_index,
                    reason: s.reason,
                    detail: s.detail,
                })
                .collect(),
            failed_calls: outcome.failed_calls,
        }
    }
}

export!(Component);

/// The first-seen sets of the host, through the `baseline.observe` import.
struct HostBaseline;

impl model::Baseline for HostBaseline {
    fn observe(
        &mut self,
        set: &str,
        forget_after: i64,
        sightings: &[(&str, model::Timestamp)],
    ) -> Vec<model::Observed> {
        let requests: Vec<imports::SightingRequest> = sightings
            .iter()
            .map(|&(key, time)| imports::SightingRequest {
                key: key.to_string(),
                time,
            })
            .collect();
        imports::observe(set, forget_after, &requests)
            .into_iter()
            .map(|o| model::Observed {
                previous: o.previous.map(sighting),
                set_size: o.set_size,
                learning_start: o.learning_start,
            })
            .collect()
    }
}

fn field(f: wit::Field) -> Field {
    match f {
        wit::Field::Absent => Field::Absent,
        wit::Field::Text(s) => Field::Text(s),
        wit::Field::Texts(v) => Field::Texts(v),
        wit::Field::Other(s) => Field::Other(s),
    }
}

fn sighting(s: wit::Sighting) -> model::Sighting {
    model::Sighting {
        first_seen: s.first_seen,
        last_seen: s.last_seen,
        count: s.count,
    }
}

fn alert(f: model::Finding) -> wit::Alert {
    let e = f.event;
    wit::Alert {
        detection: detector::SLUG.to_string(),
        event_index: f.event_index,
        key: f.key,
        message: f.message,
        time: f.time,
        event: wit::EventSummary {
            event_id: e.event_id,
            event_name: detector::EVENT_NAME.to_string(),
            principal: e.principal.clone(),
            arn: e.principal,
            account: e.account,
            region: e.region,
            source_ip: e.source_ip,
            user_agent: e.user_agent,
            instance_ids: e.instance_ids,
            instance_type: e.instance_type,
            image_ids: e.image_ids,
        },
        // The `unseen` evidence fits: the set, its size, and the principal's earlier GPU
        // launches (`previous`), or none for its first.
        evidence: wit::Evidence::Unseen(wit::UnseenEvidence {
            baseline: f.baseline,
            baseline_size: f.baseline_size,
            learning_start: f.learning_start,
            previous: f.previous.map(|p| wit::Sighting {
                first_seen: p.first_seen,
                last_seen: p.last_seen,
                count: p.count,
            }),
        }),
    }
}
