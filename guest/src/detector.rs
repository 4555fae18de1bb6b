//! The detector: settings plus the rules, run over one batch of events.

use crate::audit::{self, EventView};
use crate::baseline::Baseline;
use crate::batch::Batch;
use crate::catalog::{self, Cloud, Kind};
use crate::model::{Alert, DetectorInfo, Outcome, Skip, Subscription};
use crate::rules::rate;
use crate::rules::unseen::{Sighting, UnseenRule};
use crate::settings::Settings;

/// The AWS Cryptomining detections with their settings.
#[derive(Debug, Clone, Default)]
pub struct Detector {
    settings: Settings,
}

impl Detector {
    /// A detector with the given settings.
    pub fn new(settings: Settings) -> Detector {
        Detector { settings }
    }

    /// The current settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Replaces the settings from a JSON object.
    ///
    /// # Errors
    /// A message naming the offending setting; the old settings stay in force.
    pub fn configure(&mut self, json: &str) -> Result<(), String> {
        self.settings = Settings::from_json(json)?;
        Ok(())
    }

    /// What the host needs to know: catalogue, subscription, projection, defaults.
    pub fn describe() -> DetectorInfo {
        DetectorInfo {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            detections: catalog::detections(),
            subscriptions: subscriptions(),
            fields: audit::fields().into_iter().map(str::to_string).collect(),
            default_settings: Settings::default().to_json(),
        }
    }

    /// Runs every detection over a batch, in order, updating `baseline` as it goes.
    ///
    /// Each first-seen set is observed once for the whole batch (its answers depend only
    /// on its own earlier sightings), so the component crosses into the host a few times
    /// per batch for the unseen rules instead of four times per event; alerts come out in
    /// event order, and within an event in catalogue order.
    pub fn detect<'a, B: Baseline + ?Sized>(
        &self,
        events: impl Into<Batch<'a>>,
        baseline: &mut B,
    ) -> Outcome {
        let events = events.into();
        let mut outcome = Outcome::default();
        let mut views: Vec<(u32, EventView)> = Vec::with_capacity(events.len());
        for event in 0..events.len() {
            let index = event as u32;
            match EventView::read(events, event, &self.settings) {
                Ok(Some(view)) if view.failed => outcome.failed_calls += 1,
                Ok(Some(view)) => views.push((index, view)),
                Ok(None) => {}
                Err(malformed) => outcome.skipped.push(Skip {
                    event_index: index,
                    reason: malformed.reason.to_string(),
                    detail: malformed.detail,
                }),
            }
        }
        let mut alerts: Vec<(u32, usize, Alert)> = Vec::new();
        for rule in self.unseen_rules() {
            let order = rule.kind.order();
            let sightings: Vec<Sighting<'_>> = views
                .iter()
                .filter(|(_, view)| view.call.judged_by(rule.kind))
                .flat_map(|(index, view)| {
                    keys(rule.kind, view).into_iter().map(move |key| Sighting {
                        event_index: *index,
                        event: view,
                        key,
                    })
                })
                .collect();
            alerts.extend(
                rule.check(&sightings, baseline)
                    .into_iter()
                    .map(|a| (a.event_index, order, a)),
            );
        }
        let s = &self.settings;
        if s.launch_spike.enabled || s.launch_spike_density.enabled {
            let launches: Vec<&(u32, EventView)> = views
                .iter()
                .filter(|(_, view)| {
                    view.call.judged_by(Kind::LaunchSpike)
                        && view.counted
                        && view.principal.is_some()
                })
                .collect();
            let just_views: Vec<&EventView> = launches.iter().map(|(_, view)| view).collect();
            let first = rate::first_deliveries(s, &just_views, baseline);
            let counted: Vec<&(u32, EventView)> = launches
                .into_iter()
                .zip(first)
                .filter_map(|(launch, first)| first.then_some(launch))
                .collect();
            let counted_views: Vec<&EventView> = counted.iter().map(|(_, view)| view).collect();
            let counts = rate::count_launches(s, &counted_views, baseline);
            let mut series = rate::BatchSeries::new(baseline);
            for ((index, view), count) in counted.into_iter().zip(counts) {
                for alert in rate::check(s, view, *index, count, &mut series) {
                    let order = match Cloud::of_slug(&alert.detection) {
                        Some((_, kind)) => kind.order(),
                        None => Kind::ALL.len(),
                    };
                    alerts.push((*index, order, alert));
                }
            }
            series.finish();
        }
        alerts.sort_by_key(|(index, order, _)| (*index, *order));
        outcome.alerts = alerts.into_iter().map(|(_, _, alert)| alert).collect();
        outcome
    }

    /// The four unseen-value rules, in catalogue order.
    fn unseen_rules(&self) -> [UnseenRule<'_>; 4] {
        let s = &self.settings;
        let rule = |kind, settings| UnseenRule { kind, settings };
        [
            rule(Kind::UnseenRegion, &s.unseen_region),
            rule(Kind::UnseenImage, &s.unseen_ami),
            rule(Kind::UnseenInstanceType, &s.unseen_instance_type),
            rule(Kind::UnseenUser, &s.unseen_user),
        ]
    }
}

/// What the detector subscribes to, per cloud: the host matches `event-source` and
/// `event-names` against CloudTrail's `eventSource`/`eventName`, Google's
/// `protoPayload.serviceName`/`methodName`, and Azure's resource provider and
/// `operationName` (without case).
pub fn subscriptions() -> Vec<Subscription> {
    let gcp_methods = ["v1", "beta", "alpha"]
        .into_iter()
        .flat_map(|version| {
            ["insert", "bulkInsert"].map(|method| format!("{version}.compute.instances.{method}"))
        })
        .collect();
    vec![
        Subscription {
            event_source: "ec2.amazonaws.com".into(),
            event_names: vec!["RunInstances".into(), "StartInstances".into()],
        },
        Subscription {
            event_source: "compute.googleapis.com".into(),
            event_names: gcp_methods,
        },
        Subscription {
            event_source: "Microsoft.Compute".into(),
            event_names: vec![
                "Microsoft.Compute/virtualMachines/write".into(),
                "Microsoft.Compute/virtualMachineScaleSets/write".into(),
            ],
        },
    ]
}

/// The keys an event gives the unseen rule of `kind`.
fn keys<'v>(kind: Kind, view: &'v EventView<'_>) -> Vec<&'v str> {
    match kind {
        Kind::UnseenRegion => vec![&*view.summary.region],
        Kind::UnseenImage => view.image_ids.iter().map(|id| &**id).collect(),
        Kind::UnseenInstanceType => view.instance_type.as_deref().into_iter().collect(),
        _ => view.principal.as_deref().into_iter().collect(),
    }
}
