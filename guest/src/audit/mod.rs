//! Reading the projected fields of an audit-log event: CloudTrail, Google Cloud Audit
//! Logs, Azure Activity Log.
//!
//! [`fields`] is the projection the detector asks the host for: each cloud's paths, one
//! block after another. [`EventView::read`] finds the block that holds an event the
//! detections use, turns it into typed values and decides what is malformed. Each
//! cloud's reader keeps its own fallbacks and traps (see its module).

pub mod azure;
pub mod call;
pub mod cloudtrail;
pub mod gcp;

use std::borrow::Cow;

use crate::catalog::{Cloud, Kind};
use serde_json::Value;

use crate::batch::{Batch, FieldRef};
use crate::model::{EventSummary, Timestamp};
use crate::settings::{Scope, Settings};

/// Every field path the detector needs, in the order of an event's fields: the
/// CloudTrail block, then Google Cloud's, then Azure's.
pub fn fields() -> Vec<&'static str> {
    [
        &cloudtrail::FIELDS[..],
        &gcp::FIELDS[..],
        &azure::FIELDS[..],
    ]
    .concat()
}

/// What a call does, for the detections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// A launch of new instances: every detection.
    Launch,
    /// A start of stopped instances (`StartInstances`): the region detection only.
    Start,
    /// A write that may create or update (an Azure VM write not known to create): the
    /// region, image and instance-type detections.
    Write,
}

impl Call {
    /// Whether the detection of `kind` judges this call (the rate rules also need
    /// [`EventView::counted`]).
    pub fn judged_by(self, kind: Kind) -> bool {
        match (self, kind) {
            (Call::Launch, _) => true,
            (Call::Start, kind) => kind == Kind::UnseenRegion,
            (Call::Write, kind) => matches!(
                kind,
                Kind::UnseenRegion | Kind::UnseenImage | Kind::UnseenInstanceType
            ),
        }
    }
}

/// A usable event, typed, borrowing from its batch what the log spells as the
/// detections use it (a value the reader derives, such as a Google image key, is owned).
#[derive(Debug, Clone)]
pub struct EventView<'a> {
    /// The audit log it came from.
    pub cloud: Cloud,
    /// What the call does.
    pub call: Call,
    /// Whether the launch-rate rules count it: false for a record that repeats a launch
    /// counted elsewhere (a Google bulkInsert whose instances log their own inserts) or
    /// that is not known to create anything (an Azure write that updates a VM).
    pub counted: bool,
    /// Event time.
    pub time: Timestamp,
    /// True when the call failed (CloudTrail `errorCode`, DryRun included; a Google
    /// status code; an Azure `Failure`).
    pub failed: bool,
    /// The prefix of baseline names: the cloud's ([`Cloud::baseline_prefix`]) and, with
    /// `scope = "account"`, the account's (`<account>/`).
    pub scope: Cow<'a, str>,
    /// The principal, if the event names one.
    pub principal: Option<Cow<'a, str>>,
    /// Instance type (machine type, VM size) launched.
    pub instance_type: Option<Cow<'a, str>>,
    /// Machine images launched.
    pub image_ids: Vec<Cow<'a, str>>,
    /// What an alert shows about the event; made whole by [`EventView::summary`].
    pub summary: Summary<'a>,
}

/// The fields of an [`EventSummary`] that are not already in the [`EventView`],
/// borrowed: an event's summary is written out only when it alerts, one event in
/// thousands.
#[derive(Debug, Clone, Default)]
pub struct Summary<'a> {
    /// See [`EventSummary::event_id`].
    pub event_id: Cow<'a, str>,
    /// See [`EventSummary::event_name`].
    pub event_name: &'a str,
    /// See [`EventSummary::arn`].
    pub arn: Cow<'a, str>,
    /// See [`EventSummary::account`].
    pub account: Cow<'a, str>,
    /// See [`EventSummary::region`].
    pub region: Cow<'a, str>,
    /// See [`EventSummary::source_ip`].
    pub source_ip: &'a str,
    /// See [`EventSummary::user_agent`].
    pub user_agent: &'a str,
    /// See [`EventSummary::instance_ids`].
    pub instance_ids: Vec<&'a str>,
}

/// Why an event cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// `bad-time` or `bad-field`.
    pub reason: &'static str,
    /// What was wrong, for the log.
    pub detail: String,
}

impl Malformed {
    fn field(path: &str, found: &str) -> Self {
        Malformed {
            reason: "bad-field",
            detail: format!("{path}: expected a string, found {found}"),
        }
    }

    fn time(path: &str, found: Option<&str>) -> Self {
        Malformed {
            reason: "bad-time",
            detail: match found {
                Some(t) => format!("{path}: cannot parse {t:?}"),
                None => format!("{path}: missing"),
            },
        }
    }
}

impl<'a> EventView<'a> {
    /// Reads event `event` of a batch; `Ok(None)` for events the detections do not use
    /// (or whose cloud `settings.clouds` leaves out).
    ///
    /// # Errors
    /// [`Malformed`] when a field the detections need has the wrong type or the time
    /// cannot be parsed.
    pub fn read(
        batch: Batch<'a>,
        event: usize,
        settings: &Settings,
    ) -> Result<Option<EventView<'a>>, Malformed> {
        let gcp = cloudtrail::FIELDS.len();
        let azure = gcp + gcp::FIELDS.len();
        let block = |offset: usize, paths| Fields {
            batch,
            event,
            offset,
            paths,
        };
        let view = match cloudtrail::read(&block(0, &cloudtrail::FIELDS), settings)? {
            Some(view) => Some(view),
            None => match gcp::read(&block(gcp, &gcp::FIELDS), settings)? {
                Some(view) => Some(view),
                None => azure::read(&block(azure, &azure::FIELDS), settings)?,
            },
        };
        Ok(view.filter(|view| settings.clouds.contains(&view.cloud)))
    }

    /// What an alert shows about the event, owned.
    pub fn summary(&self) -> EventSummary {
        let s = &self.summary;
        EventSummary {
            event_id: s.event_id.to_string(),
            event_name: s.event_name.to_string(),
            principal: self.principal.as_deref().unwrap_or_default().to_string(),
            arn: s.arn.to_string(),
            account: s.account.to_string(),
            region: s.region.to_string(),
            source_ip: s.source_ip.to_string(),
            user_agent: s.user_agent.to_string(),
            instance_ids: s.instance_ids.iter().map(|id| id.to_string()).collect(),
            instance_type: self
                .instance_type
                .as_deref()
                .unwrap_or_default()
                .to_string(),
            image_ids: self.image_ids.iter().map(|id| id.to_string()).collect(),
        }
    }
}

/// What a cloud's reader gathered, before the baseline scope is added.
struct Read<'a> {
    cloud: Cloud,
    call: Call,
    counted: bool,
    time: Timestamp,
    failed: bool,
    principal: Option<Cow<'a, str>>,
    instance_type: Option<Cow<'a, str>>,
    image_ids: Vec<Cow<'a, str>>,
    summary: Summary<'a>,
}

impl<'a> Read<'a> {
    /// The view, with the baseline scope of `settings`.
    fn view(self, settings: &Settings) -> EventView<'a> {
        let prefix = self.cloud.baseline_prefix();
        let scope = match settings.scope {
            Scope::Global => Cow::Borrowed(prefix),
            Scope::Account => Cow::Owned(format!("{prefix}{}/", self.summary.account)),
        };
        EventView {
            cloud: self.cloud,
            call: self.call,
            counted: self.counted,
            time: self.time,
            failed: self.failed,
            scope,
            principal: self.principal,
            instance_type: self.instance_type,
            image_ids: self.image_ids,
            summary: self.summary,
        }
    }
}

/// One cloud's block of an event's projected fields (those from `offset` on), with the
/// paths that name them in errors.
struct Fields<'a> {
    batch: Batch<'a>,
    event: usize,
    offset: usize,
    paths: &'static [&'static str],
}

impl<'a> Fields<'a> {
    fn get(&self, index: usize) -> FieldRef<'a> {
        if index >= self.paths.len() {
            return FieldRef::Absent;
        }
        self.batch.field(self.event, self.offset + index)
    }

    /// A string field; absent is `None`, another type is malformed.
    fn text(&self, index: usize) -> Result<Option<&'a str>, Malformed> {
        match self.get(index) {
            FieldRef::Absent => Ok(None),
            FieldRef::Text(s) => Ok(Some(s)),
            FieldRef::Texts(_) => Err(Malformed::field(self.paths[index], "an array")),
            FieldRef::Other(json) => Err(Malformed::field(self.paths[index], kind_of(json))),
        }
    }

    /// A non-empty string field, or `None`.
    fn present(&self, index: usize) -> Result<Option<&'a str>, Malformed> {
        Ok(self.text(index)?.filter(|s| !s.is_empty()))
    }

    /// The strings a path through arrays reached.
    fn texts(&self, index: usize) -> Result<Vec<&'a str>, Malformed> {
        match self.get(index) {
            FieldRef::Absent => Ok(Vec::new()),
            FieldRef::Text(s) => Ok(vec![s]),
            FieldRef::Texts(list) => Ok(list),
            FieldRef::Other(json) => Err(Malformed::field(self.paths[index], kind_of(json))),
        }
    }

    /// A field of any type as JSON (strings parsed when they hold JSON, as Azure's
    /// bodies do); `None` when absent or not JSON.
    fn json(&self, index: usize) -> Option<Value> {
        match self.get(index) {
            FieldRef::Absent => None,
            FieldRef::Text(s) => serde_json::from_str(s).ok(),
            FieldRef::Texts(list) => Some(list.into_iter().map(Value::from).collect()),
            FieldRef::Other(json) => serde_json::from_str(json).ok(),
        }
    }

    /// A field that may be a string or a number (Google's status code, Azure's counts),
    /// as text.
    fn scalar(&self, index: usize) -> Option<String> {
        match self.get(index) {
            FieldRef::Text(s) => Some(s.to_string()),
            FieldRef::Other(json) if !json.starts_with(['{', '[']) => Some(json.to_string()),
            _ => None,
        }
    }

    /// The event time at `index`, parsed.
    fn time(&self, index: usize) -> Result<Timestamp, Malformed> {
        let text = self.text(index)?;
        text.and_then(crate::time::parse_event_time)
            .ok_or_else(|| Malformed::time(self.paths[index], text))
    }
}

/// Runs one cloud's `read` over an event holding only its block, for the readers' tests.
#[cfg(test)]
fn read_block(
    fields: &[crate::model::Field],
    paths: &'static [&'static str],
    read: fn(&Fields<'static>, &Settings) -> Result<Option<EventView<'static>>, Malformed>,
) -> Result<Option<EventView<'static>>, Malformed> {
    // Leaked so that the view, which borrows from its batch, outlives the call: a few
    // hundred bytes per test.
    let events = Vec::leak(vec![crate::model::Event {
        fields: fields.to_vec(),
    }]);
    let block = Fields {
        batch: Batch::from(&events[..]),
        event: 0,
        offset: 0,
        paths,
    };
    read(&block, &Settings::default())
}

/// Distinct non-empty values, in order.
fn distinct<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Cow<'a, str>> {
    let mut out: Vec<Cow<'a, str>> = Vec::new();
    for v in values {
        if !v.is_empty() && !out.iter().any(|o| o == v) {
            out.push(Cow::Borrowed(v));
        }
    }
    out
}

fn kind_of(json: &str) -> &'static str {
    match json.trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array of non-strings",
        Some(b't' | b'f') => "a boolean",
        Some(b'"') => "a string",
        Some(_) => "a number",
        None => "nothing",
    }
}
