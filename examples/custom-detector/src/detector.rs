//! The detection `ec2-gpu-off-hours`, run over one batch of projected events.
//!
//! A batch goes through three steps:
//! 1. read each event's declared fields and keep the successful GPU launches;
//! 2. record all of them in the host's first-seen set of GPU launchers, in one call;
//! 3. alert on those outside business hours, saying what the set knew about the principal.

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::model::{Baseline, Field, Finding, Outcome, Skip, Summary, Timestamp};
use crate::settings::{DAY_NAMES, Settings};

/// The detection's slug: the `detection` of its alerts.
pub const SLUG: &str = "ec2-gpu-off-hours";
/// The first-seen set (host-side) of principals that launched GPU instances.
pub const LAUNCHERS: &str = "gpu-launchers";
/// The CloudTrail `eventSource` the detector subscribes to.
pub const EVENT_SOURCE: &str = "ec2.amazonaws.com";
/// The CloudTrail `eventName` the detector subscribes to.
pub const EVENT_NAME: &str = "RunInstances";

/// The field paths the detector asks the host to project, in the order `detect` reads
/// them. `[]` steps into every element of an array.
pub const FIELDS: [&str; 11] = [
    "eventID",
    "eventTime",
    "errorCode",
    "awsRegion",
    "recipientAccountId",
    "userIdentity.arn",
    "sourceIPAddress",
    "userAgent",
    "requestParameters.instanceType",
    "responseElements.instancesSet.items[].instanceId",
    "requestParameters.instancesSet.items[].imageId",
];

// Positions in `FIELDS`.
const EVENT_ID: usize = 0;
const EVENT_TIME: usize = 1;
const ERROR_CODE: usize = 2;
const REGION: usize = 3;
const ACCOUNT: usize = 4;
const ARN: usize = 5;
const SOURCE_IP: usize = 6;
const USER_AGENT: usize = 7;
const INSTANCE_TYPE: usize = 8;
const INSTANCE_IDS: usize = 9;
const IMAGE_IDS: usize = 10;

/// The detection with its settings. It holds no other state: what it remembers
/// between batches lives in the host, behind [`Baseline`].
#[derive(Debug, Clone, Default)]
pub struct Detector {
    settings: Settings,
}

/// What one event turned out to be.
enum Read {
    /// A successful launch of a GPU family by a named principal (boxed: it is much
    /// larger than the other cases).
    GpuLaunch(Box<Launch>),
    /// A call that failed (`errorCode` set): counted, not learned.
    Failed,
    /// Anything else: not a GPU, or no principal (an AWS service).
    Ignored,
}

/// A successful GPU launch.
struct Launch {
    time: DateTime<Utc>,
    summary: Summary,
}

impl Detector {
    /// A detector with the given settings.
    pub fn new(settings: Settings) -> Detector {
        Detector { settings }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Replaces the settings from a (partial) JSON object.
    ///
    /// # Errors
    /// A message naming the offending setting; the old settings stay in force.
    pub fn configure(&mut self, json: &str) -> Result<(), String> {
        self.settings = Settings::from_json(json)?;
        Ok(())
    }

    /// Runs the detection over one batch, in order. `events[i][j]` is the value of
    /// `FIELDS[j]` in event `i`.
    pub fn detect(&self, events: &[Vec<Field>], baseline: &mut dyn Baseline) -> Outcome {
        let mut outcome = Outcome::default();

        // Step 1: read every event; keep the GPU launches with their batch index.
        let mut launches: Vec<(u32, Launch)> = Vec::new();
        for (index, fields) in events.iter().enumerate() {
            let index = index as u32;
            match self.read(fields) {
                Ok(Read::GpuLaunch(launch)) => launches.push((index, *launch)),
                Ok(Read::Failed) => outcome.failed_calls += 1,
                Ok(Read::Ignored) => {}
                Err((reason, detail)) => outcome.skipped.push(Skip {
                    event_index: index,
                    reason: reason.to_string(),
                    detail,
                }),
            }
        }
        if launches.is_empty() {
            return outcome;
        }

        // Step 2: one crossing to the host for the whole batch. Every GPU launch, in
        // hours or not, is a sighting of its principal in the set of GPU launchers
        // (`forget_after` 0: never forgotten); the host answers, for each, what the set
        // knew just before it.
        let sightings: Vec<(&str, Timestamp)> = launches
            .iter()
            .map(|(_, l)| (l.summary.principal.as_str(), l.time.timestamp_millis()))
            .collect();
        let observed = baseline.observe(LAUNCHERS, 0, &sightings);

        // Step 3: alert on the launches outside business hours.
        for ((index, launch), seen) in launches.into_iter().zip(observed) {
            if self.is_business_time(launch.time) {
                continue;
            }
            let history = match seen.previous {
                None => "its first GPU launch".to_string(),
                Some(p) => format!(
                    "it had launched GPU instances {} before, first on {}",
                    match p.count {
                        1 => "once".to_string(),
                        n => format!("{n} times"),
                    },
                    date(p.first_seen)
                ),
            };
            let s = &self.settings;
            let message = format!(
                "{} launched {} in {} at {}, outside business hours ({:02}:00-{:02}:00 UTC, {}); {history}.",
                launch.summary.principal,
                launch.summary.instance_type,
                launch.summary.region,
                launch.time.format("%H:%M UTC on %A %Y-%m-%d"),
                s.start_hour,
                s.end_hour,
                s.business_days.join(","),
            );
            outcome.findings.push(Finding {
                event_index: index,
                key: launch.summary.principal.clone(),
                message,
                time: launch.time.timestamp_millis(),
                event: launch.summary,
                baseline: LAUNCHERS.to_string(),
                baseline_size: seen.set_size,
                learning_start: seen.learning_start,
                previous: seen.previous,
            });
        }
        outcome
    }

    /// Reads one projected event. `Err((reason, detail))` when a field has the wrong type
    /// or the time does not parse.
    fn read(&self, fields: &[Field]) -> Result<Read, (&'static str, String)> {
        // A failed call (DryRun included) launched nothing.
        if text(fields, ERROR_CODE)?.is_some_and(|code| !code.is_empty()) {
            return Ok(Read::Failed);
        }
        // Only GPU families matter. (A launch template may name the type only in the
        // response; this example keeps to the request.)
        let instance_type = text(fields, INSTANCE_TYPE)?.unwrap_or_default();
        if !self.is_gpu(instance_type) {
            return Ok(Read::Ignored);
        }
        // AWS services launching for you (Auto Scaling, ...) have no ARN: not ours to judge.
        let principal = text(fields, ARN)?.unwrap_or_default();
        if principal.is_empty() {
            return Ok(Read::Ignored);
        }
        let time = match text(fields, EVENT_TIME)? {
            Some(t) => DateTime::parse_from_rfc3339(t)
                .map_err(|_| ("bad-time", format!("eventTime: cannot parse {t:?}")))?
                .with_timezone(&Utc),
            None => return Err(("bad-time", "eventTime: missing".to_string())),
        };
        let owned = |i: usize| -> Result<String, (&'static str, String)> {
            Ok(text(fields, i)?.unwrap_or_default().to_string())
        };
        Ok(Read::GpuLaunch(Box::new(Launch {
            time,
            summary: Summary {
                event_id: owned(EVENT_ID)?,
                principal: principal.to_string(),
                account: owned(ACCOUNT)?,
                region: owned(REGION)?,
                source_ip: owned(SOURCE_IP)?,
                user_agent: owned(USER_AGENT)?,
                instance_ids: texts(fields, INSTANCE_IDS)?,
                instance_type: instance_type.to_string(),
                image_ids: texts(fields, IMAGE_IDS)?,
            },
        })))
    }

    /// True for an instance type of a configured GPU family: `g4dn.xlarge` is family `g`.
    pub fn is_gpu(&self, instance_type: &str) -> bool {
        let family: String = instance_type
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect::<String>()
            .to_ascii_lowercase();
        self.settings.gpu_families.contains(&family)
    }

    /// True inside the configured business hours (UTC).
    pub fn is_business_time(&self, time: DateTime<Utc>) -> bool {
        let s = &self.settings;
        let day = DAY_NAMES[time.weekday().num_days_from_monday() as usize];
        s.business_days.iter().any(|d| d == day)
            && (s.start_hour..s.end_hour).contains(&time.hour())
    }
}

/// The string at `FIELDS[i]`, `None` when absent, an error for any other JSON.
fn text(fields: &[Field], i: usize) -> Result<Option<&str>, (&'static str, String)> {
    match fields.get(i) {
        None | Some(Field::Absent) => Ok(None),
        Some(Field::Text(s)) => Ok(Some(s)),
        Some(Field::Texts(_)) => Err(bad_field(i, "an array")),
        Some(Field::Other(json)) => Err(bad_field(i, json)),
    }
}

/// The strings at a `[]` path, empty when absent.
fn texts(fields: &[Field], i: usize) -> Result<Vec<String>, (&'static str, String)> {
    match fields.get(i) {
        None | Some(Field::Absent) => Ok(Vec::new()),
        Some(Field::Text(s)) => Ok(vec![s.clone()]),
        Some(Field::Texts(list)) => Ok(list.clone()),
        Some(Field::Other(json)) => Err(bad_field(i, json)),
    }
}

fn bad_field(i: usize, found: &str) -> (&'static str, String) {
    (
        "bad-field",
        format!("{}: expected a string, found {found}", FIELDS[i]),
    )
}

/// A timestamp as a UTC date, for messages.
fn date(time: Timestamp) -> String {
    DateTime::from_timestamp_millis(time)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| time.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::model::{Observed, Sighting};

    /// The host's first-seen sets, in memory (never forgetting, as the detector asks).
    #[derive(Default)]
    struct Memory {
        sets: HashMap<String, (Timestamp, HashMap<String, Sighting>)>,
    }

    impl Baseline for Memory {
        fn observe(
            &mut self,
            set: &str,
            _forget_after: i64,
            sightings: &[(&str, Timestamp)],
        ) -> Vec<Observed> {
            let (start, keys) = self
                .sets
                .entry(set.to_string())
                .or_insert((Timestamp::MAX, HashMap::new()));
            let mut out = Vec::new();
            for &(key, time) in sightings {
                let set_size = keys.len() as u64;
                let previous = keys.get(key).copied();
                let next = match previous {
                    Some(p) => Sighting {
                        first_seen: p.first_seen.min(time),
                        last_seen: p.last_seen.max(time),
                        count: p.count + 1,
                    },
                    None => Sighting {
                        first_seen: time,
                        last_seen: time,
                        count: 1,
                    },
                };
                keys.insert(key.to_string(), next);
                *start = (*start).min(time);
                out.push(Observed {
                    previous,
                    set_size,
                    learning_start: *start,
                });
            }
            out
        }
    }

    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";

    /// A projected RunInstances event.
    fn launch(time: &str, arn: &str, instance_type: &str) -> Vec<Field> {
        let mut fields = vec![Field::Absent; FIELDS.len()];
        fields[EVENT_ID] = Field::Text(format!("id-{time}"));
        fields[EVENT_TIME] = Field::Text(time.into());
        fields[REGION] = Field::Text("us-east-1".into());
        fields[ARN] = Field::Text(arn.into());
        fields[INSTANCE_TYPE] = Field::Text(instance_type.into());
        fields[INSTANCE_IDS] = Field::Texts(vec!["i-1".into()]);
        fields
    }

    fn ms(time: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(time)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn gpu_families() {
        let d = Detector::default();
        for gpu in [
            "p3.2xlarge",
            "g4dn.xlarge",
            "inf2.xlarge",
            "trn1.32xlarge",
            "dl1.24xlarge",
        ] {
            assert!(d.is_gpu(gpu), "{gpu}");
        }
        for other in [
            "t3.micro",
            "m5.large",
            "d2.xlarge",
            "i3.large",
            "gr6.4xlarge",
            "",
        ] {
            assert!(!d.is_gpu(other), "{other}");
        }
    }

    #[test]
    fn business_hours_are_utc_weekdays_8_to_18() {
        let d = Detector::default();
        let at = |t: &str| d.is_business_time(DateTime::from_timestamp_millis(ms(t)).unwrap());
        assert!(at("2026-03-03T08:00:00Z")); // Tuesday
        assert!(at("2026-03-03T17:59:59Z"));
        assert!(!at("2026-03-03T18:00:00Z"));
        assert!(!at("2026-03-03T07:59:59Z"));
        assert!(!at("2026-03-07T10:00:00Z")); // Saturday
        assert!(!at("2026-03-03T09:30:00+02:00")); // 07:30 UTC
    }

    #[test]
    fn off_hours_gpu_launches_alert_and_say_what_the_host_knew() {
        let mut host = Memory::default();
        let d = Detector::default();
        // Tuesday 10:00: in hours, learned, no alert.
        let tuesday = d.detect(
            &[launch("2026-03-03T10:00:00Z", ALICE, "p3.2xlarge")],
            &mut host,
        );
        assert_eq!(tuesday, Outcome::default());
        // Saturday 03:00 (alice again) and 04:00 (bob's first GPU): two alerts.
        let bob = "arn:aws:iam::111122223333:user/bob";
        let saturday = d.detect(
            &[
                launch("2026-03-07T03:00:00Z", ALICE, "g4dn.xlarge"),
                launch("2026-03-07T04:00:00Z", bob, "p4d.24xlarge"),
            ],
            &mut host,
        );
        let [alice_alert, bob_alert] = &saturday.findings[..] else {
            panic!("two alerts: {saturday:#?}");
        };
        assert_eq!(alice_alert.key, ALICE);
        assert_eq!(alice_alert.time, ms("2026-03-07T03:00:00Z"));
        assert_eq!(
            alice_alert.previous,
            Some(Sighting {
                first_seen: ms("2026-03-03T10:00:00Z"),
                last_seen: ms("2026-03-03T10:00:00Z"),
                count: 1
            })
        );
        assert_eq!((alice_alert.baseline_size, alice_alert.event_index), (1, 0));
        assert_eq!(
            alice_alert.message,
            "arn:aws:iam::111122223333:user/alice launched g4dn.xlarge in us-east-1 at 03:00 UTC \
             on Saturday 2026-03-07, outside business hours (08:00-18:00 UTC, mon,tue,wed,thu,fri); \
             it had launched GPU instances once before, first on 2026-03-03."
        );
        assert_eq!(bob_alert.previous, None);
        assert_eq!((bob_alert.baseline_size, bob_alert.event_index), (1, 1));
        assert_eq!(bob_alert.learning_start, ms("2026-03-03T10:00:00Z"));
        assert!(bob_alert.message.ends_with("; its first GPU launch."));
        assert_eq!(bob_alert.event.instance_ids, ["i-1"]);
    }

    #[test]
    fn non_gpu_and_failed_launches_neither_alert_nor_learn() {
        let mut host = Memory::default();
        let d = Detector::default();
        let mut failed = launch("2026-03-07T03:00:00Z", ALICE, "p3.2xlarge");
        failed[ERROR_CODE] = Field::Text("Client.DryRunOperation".into());
        let outcome = d.detect(
            &[failed, launch("2026-03-07T23:30:00Z", ALICE, "t3.micro")],
            &mut host,
        );
        assert_eq!(outcome.findings, []);
        assert_eq!(outcome.failed_calls, 1);
        assert!(host.sets.is_empty());
    }

    #[test]
    fn unusable_events_are_skipped_with_a_reason() {
        let d = Detector::default();
        let mut wrong_type = launch("2026-03-07T03:00:00Z", ALICE, "p3.2xlarge");
        wrong_type[REGION] = Field::Other("5".into());
        let outcome = d.detect(
            &[
                launch("yesterday", ALICE, "p3.2xlarge"),
                wrong_type,
                launch("2026-03-07T03:00:00Z", "", "p3.2xlarge"),
            ],
            &mut Memory::default(),
        );
        let reasons: Vec<(u32, &str)> = outcome
            .skipped
            .iter()
            .map(|s| (s.event_index, s.reason.as_str()))
            .collect();
        assert_eq!(reasons, [(0, "bad-time"), (1, "bad-field")]);
        assert_eq!(
            outcome.skipped[1].detail,
            "awsRegion: expected a string, found 5"
        );
        assert_eq!(outcome.findings, []);
    }

    #[test]
    fn business_hours_are_configurable() {
        let mut d = Detector::default();
        d.configure(r#"{"business_days": ["sat", "sun"], "start_hour": 0, "end_hour": 24}"#)
            .unwrap();
        let weekend = d.detect(
            &[launch("2026-03-07T03:00:00Z", ALICE, "p3.2xlarge")],
            &mut Memory::default(),
        );
        assert_eq!(weekend.findings, []);
        let monday = d.detect(
            &[launch("2026-03-09T12:00:00Z", ALICE, "p3.2xlarge")],
            &mut Memory::default(),
        );
        assert_eq!(monday.findings.len(), 1);
        assert!(d.configure(r#"{"end_hour": 0}"#).is_err());
        assert_eq!(d.settings().business_days, ["sat", "sun"]);
    }
}
