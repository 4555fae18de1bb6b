//! The WIT edge: the exports, each misbehaving as the settings ask.
#![allow(unsafe_code, reason = "wit-bindgen generated glue")]

use std::cell::Cell;

use crate::{Behaviour, PROBE_SETS, balloon, spin};

wit_bindgen::generate!({
    path: "../../../wit",
    world: "detector-world",
});

use exports::minewatch::detector::detector::Guest;
use minewatch::detector::{baseline, log, types as wit};

thread_local! {
    static BEHAVIOUR: Cell<Behaviour> = const { Cell::new(Behaviour::Quiet) };
}

/// The one detection this component claims.
const SLUG: &str = "hostile-test";

struct Component;

impl Guest for Component {
    fn describe() -> wit::DetectorInfo {
        wit::DetectorInfo {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            detections: vec![wit::Detection {
                slug: SLUG.to_string(),
                splunk_id: String::new(),
                name: "Hostile test detector".to_string(),
                description: "Misbehaves on purpose; for sandbox tests only.".to_string(),
                severity: wit::Severity::Informational,
                risk_score: 0,
                mitre_attack: Vec::new(),
            }],
            subscriptions: vec![wit::Subscription {
                event_source: "ec2.amazonaws.com".to_string(),
                event_names: vec!["RunInstances".to_string(), "StartInstances".to_string()],
            }],
            fields: vec!["eventID".to_string()],
            default_settings: "{}".to_string(),
        }
    }

    fn configure(settings: String) -> Result<(), String> {
        std::panic::set_hook(Box::new(|panic| {
            log::emit(
                log::Level::Error,
                &format!("hostile detector panicked: {panic}"),
            );
        }));
        BEHAVIOUR.with(|b| b.set(Behaviour::from_settings(&settings)));
        Ok(())
    }

    fn detect(_events: wit::Batch) -> wit::Outcome {
        let mut alerts = Vec::new();
        match BEHAVIOUR.with(Cell::get) {
            Behaviour::Loop => {
                let sighting = baseline::SightingRequest {
                    key: "learned-before-loop".to_string(),
                    time: 1_700_000_000_000,
                };
                baseline::observe("hostile-learned", 0, &[sighting]);
                spin();
            }
            Behaviour::Memory => balloon(),
            Behaviour::Panic => panic!("hostile detector asked to panic"),
            Behaviour::Alerts => {
                alerts = (0..50_000).map(|i| alert(format!("flood-{i}"))).collect();
            }
            Behaviour::Hammer => loop {
                let sighting = baseline::SightingRequest {
                    key: "hammer".to_string(),
                    time: 1_700_000_000_000,
                };
                baseline::observe("hammered", 0, &[sighting]);
            },
            Behaviour::Probe => {
                for set in PROBE_SETS {
                    let sighting = baseline::SightingRequest {
                        key: "probe".to_string(),
                        time: 1_700_000_000_000,
                    };
                    let seen = baseline::observe(set, 0, &[sighting]);
                    alerts.push(alert(format!("{set:?}={}", seen[0].set_size)));
                }
            }
            Behaviour::Quiet => {}
        }
        wit::Outcome {
            alerts,
            skipped: Vec::new(),
            failed_calls: 0,
        }
    }
}

export!(Component);

fn alert(key: String) -> wit::Alert {
    wit::Alert {
        detection: SLUG.to_string(),
        event_index: 0,
        message: format!("hostile {key}"),
        key,
        time: 1_700_000_000_000,
        event: wit::EventSummary {
            event_id: String::new(),
            event_name: String::new(),
            principal: String::new(),
            arn: String::new(),
            account: String::new(),
            region: String::new(),
            source_ip: String::new(),
            user_agent: String::new(),
            instance_ids: Vec::new(),
            instance_type: String::new(),
            image_ids: Vec::new(),
        },
        evidence: wit::Evidence::Unseen(wit::UnseenEvidence {
            baseline: String::new(),
            baseline_size: 0,
            learning_start: 0,
            previous: None,
        }),
    }
}
