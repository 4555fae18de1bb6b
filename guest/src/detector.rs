//! The detector: settings plus the rules, run over one batch of events.

use crate::baseline::Baseline;
use crate::catalog::{self, UNSEEN_AMI, UNSEEN_INSTANCE_TYPE, UNSEEN_REGION, UNSEEN_USER};
use crate::cloudtrail::{Call, EventView, FIELDS};
use crate::model::{DetectorInfo, Event, Outcome, Skip, Subscription};
use crate::rules::{rate, unseen::UnseenRule};
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
            subscriptions: vec![Subscription {
                event_source: "ec2.amazonaws.com".into(),
                event_names: vec!["RunInstances".into(), "StartInstances".into()],
            }],
            fields: FIELDS.iter().map(|f| f.to_string()).collect(),
            default_settings: Settings::default().to_json(),
        }
    }

    /// Runs every detection over a batch, in order, updating `baseline` as it goes.
    pub fn detect<B: Baseline + ?Sized>(&self, events: &[Event], baseline: &mut B) -> Outcome {
        let mut outcome = Outcome::default();
        for (index, event) in events.iter().enumerate() {
            let index = index as u32;
            let view = match EventView::read(event, &self.settings) {
                Ok(Some(view)) => view,
                Ok(None) => continue,
                Err(malformed) => {
                    outcome.skipped.push(Skip {
                        event_index: index,
                        reason: malformed.reason.to_string(),
                        detail: malformed.detail,
                    });
                    continue;
                }
            };
            if view.failed {
                outcome.failed_calls += 1;
                continue;
            }
            self.check(&view, index, baseline, &mut outcome);
        }
        outcome
    }

    fn check<B: Baseline + ?Sized>(
        &self,
        view: &EventView,
        index: u32,
        baseline: &mut B,
        outcome: &mut Outcome,
    ) {
        let s = &self.settings;
        let rule = |slug, noun, settings| UnseenRule {
            slug,
            noun,
            settings,
        };
        let region = rule(UNSEEN_REGION, "region", &s.unseen_region);
        outcome
            .alerts
            .extend(region.check(view, index, &[&view.summary.region], baseline));
        if view.call != Call::RunInstances {
            return;
        }
        let images: Vec<&str> = view.image_ids.iter().map(String::as_str).collect();
        let ami = rule(UNSEEN_AMI, "AMI", &s.unseen_ami);
        outcome
            .alerts
            .extend(ami.check(view, index, &images, baseline));
        let instance_type = rule(
            UNSEEN_INSTANCE_TYPE,
            "instance type",
            &s.unseen_instance_type,
        );
        let types: Vec<&str> = view.instance_type.as_deref().into_iter().collect();
        outcome
            .alerts
            .extend(instance_type.check(view, index, &types, baseline));
        let user = rule(UNSEEN_USER, "principal", &s.unseen_user);
        let principals: Vec<&str> = view.principal.as_deref().into_iter().collect();
        outcome
            .alerts
            .extend(user.check(view, index, &principals, baseline));
        outcome.alerts.extend(rate::check(s, view, index, baseline));
    }
}
