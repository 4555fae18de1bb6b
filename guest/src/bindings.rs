//! The WIT edge of the component: `generate!`, the export impl, and conversions.
//!
//! Compiled only for `wasm32`. The detector's settings are the only thing kept in the
//! instance; baselines go through the `baseline` imports to the host.
#![allow(unsafe_code, reason = "wit-bindgen generated glue")]

use std::cell::RefCell;

use crate::baseline::{Baseline, Observed};
use crate::batch::{Batch, Packed};
use crate::detector::Detector;
use crate::model;

wit_bindgen::generate!({
    path: "../wit",
    world: "detector-world",
    // Import parameters borrow: a batch's sighting keys go to the host as `&str`
    // without a copy each.
    ownership: Borrowing { duplicate_if_necessary: true },
});

use exports::minewatch::detector::detector::Guest;
use minewatch::detector::{baseline as imports, log, types as wit};

/// The component's heap: Talc instead of the standard library's dlmalloc. Every string
/// the host lowers into a batch is allocated through `cabi_realloc` and freed when the
/// batch ends, so the allocator is on the hot path.
#[global_allocator]
static HEAP: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

thread_local! {
    static DETECTOR: RefCell<Detector> = RefCell::new(Detector::default());
}

struct Component;

impl Guest for Component {
    fn describe() -> wit::DetectorInfo {
        let info = Detector::describe();
        wit::DetectorInfo {
            name: info.name,
            version: info.version,
            detections: info.detections.into_iter().map(detection).collect(),
            subscriptions: info
                .subscriptions
                .into_iter()
                .map(|s| wit::Subscription {
                    event_source: s.event_source,
                    event_names: s.event_names,
                })
                .collect(),
            fields: info.fields,
            default_settings: info.default_settings,
        }
    }

    fn configure(settings: String) -> Result<(), String> {
        std::panic::set_hook(Box::new(|panic| {
            log::emit(log::Level::Error, &format!("detector panicked: {panic}"));
        }));
        DETECTOR.with(|d| d.borrow_mut().configure(&settings))
    }

    fn detect(events: wit::Batch) -> wit::Outcome {
        let width = crate::audit::fields().len();
        let outcome = match Packed::new(&events.text, &events.fields, &events.items, width) {
            Ok(batch) => {
                DETECTOR.with(|d| d.borrow().detect(Batch::Packed(batch), &mut HostBaseline))
            }
            Err(detail) => {
                log::emit(
                    log::Level::Error,
                    &format!("refused a packed batch: {detail}"),
                );
                model::Outcome::refused(events.fields.len().div_ceil(width * 3), &detail)
            }
        };
        wit::Outcome {
            alerts: outcome.alerts.into_iter().map(alert).collect(),
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

/// The baselines behind the host's `baseline` imports.
struct HostBaseline;

impl Baseline for HostBaseline {
    fn observe(
        &mut self,
        set: &str,
        forget_after: i64,
        sightings: &[(&str, i64)],
    ) -> Vec<Observed> {
        let requests: Vec<imports::SightingRequest> = sightings
            .iter()
            .map(|(key, time)| imports::SightingRequest { key, time: *time })
            .collect();
        imports::observe(set, forget_after, &requests)
            .into_iter()
            .map(|o| Observed {
                previous: o.previous.map(|p| model::Sighting {
                    first_seen: p.first_seen,
                    last_seen: p.last_seen,
                    count: p.count,
                }),
                is_new: o.is_new,
                set_size: o.set_size,
                learning_start: o.learning_start,
            })
            .collect()
    }

    fn add(&mut self, counter: &str, increments: &[(&str, i64, u64)]) -> Vec<u64> {
        let increments: Vec<imports::Increment> = increments
            .iter()
            .map(|(key, bucket, delta)| imports::Increment {
                key,
                bucket: *bucket,
                delta: *delta,
            })
            .collect();
        imports::add(counter, &increments)
    }

    fn record_values(&mut self, series: &str, changes: &[crate::ValueChange]) {
        let changes: Vec<imports::ValueChange> = changes
            .iter()
            .map(|c| imports::ValueChange {
                bucket: c.bucket,
                previous: c.previous,
                current: c.current,
            })
            .collect();
        imports::record_values(series, &changes);
    }

    fn histogram(&mut self, series: &str, from: i64, to: i64) -> Vec<(u64, u64)> {
        imports::histogram(series, from, to)
    }
}

fn detection(d: model::Detection) -> wit::Detection {
    wit::Detection {
        slug: d.slug,
        splunk_id: d.splunk_id,
        name: d.name,
        description: d.description,
        severity: match d.severity {
            model::Severity::Informational => wit::Severity::Informational,
            model::Severity::Low => wit::Severity::Low,
            model::Severity::Medium => wit::Severity::Medium,
            model::Severity::High => wit::Severity::High,
            model::Severity::Critical => wit::Severity::Critical,
        },
        risk_score: d.risk_score,
        mitre_attack: d.mitre_attack,
    }
}

fn alert(a: model::Alert) -> wit::Alert {
    let e = a.event;
    wit::Alert {
        detection: a.detection,
        event_index: a.event_index,
        key: a.key,
        message: a.message,
        time: a.time,
        event: wit::EventSummary {
            event_id: e.event_id,
            event_name: e.event_name,
            principal: e.principal,
            arn: e.arn,
            account: e.account,
            region: e.region,
            source_ip: e.source_ip,
            user_agent: e.user_agent,
            instance_ids: e.instance_ids,
            instance_type: e.instance_type,
            image_ids: e.image_ids,
        },
        evidence: match a.evidence {
            model::Evidence::Unseen(u) => wit::Evidence::Unseen(wit::UnseenEvidence {
                baseline: u.baseline,
                baseline_size: u.baseline_size,
                learning_start: u.learning_start,
                previous: u.previous.map(|p| wit::Sighting {
                    first_seen: p.first_seen,
                    last_seen: p.last_seen,
                    count: p.count,
                }),
            }),
            model::Evidence::Rate(r) => wit::Evidence::Rate(wit::RateEvidence {
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
    }
}
