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

/// A usable event, typed.
#[derive(Debug, Clone)]
pub struct EventView {
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
    pub scope: String,
    /// The principal, if the event names one.
    pub principal: Option<String>,
    /// Instance type (machine type, VM size) launched.
    pub instance_type: Option<String>,
    /// Machine images launched.
    pub image_ids: Vec<String>,
    /// What an alert shows about the event.
    pub summary: EventSummary,
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

impl EventView {
    /// Reads event `event` of a batch; `Ok(None)` for events the detections do not use
    /// (or whose cloud `settings.clouds` leaves out).
    ///
    /// # Errors
    /// [`Malformed`] when a field the detections need has the wrong type or the time
    /// cannot be parsed.
    pub fn read(
        batch: Batch<'_>,
        event: usize,
        settings: &Settings,
    ) -> Result<Option<EventView>, Malformed> {
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
}

/// What a cloud's reader gathered, before the common parts are added.
struct Read {
    cloud: Cloud,
    call: Call,
    counted: bool,
    time: Timestamp,
    failed: bool,
    account: String,
    principal: Option<String>,
    instance_type: Option<String>,
    image_ids: Vec<String>,
    summary: EventSummary,
}

impl Read {
    /// The view, with the baseline scope of `settings` and the summary's shared fields.
    fn view(self, settings: &Settings) -> EventView {
        let scope = match settings.scope {
            Scope::Global => self.cloud.baseline_prefix().to_string(),
            Scope::Account => format!("{}{}/", self.cloud.baseline_prefix(), self.account),
        };
        let mut summary = self.summary;
        summary.principal = self.principal.clone().unwrap_or_default();
        summary.account = self.account;
        summary.instance_type = self.instance_type.clone().unwrap_or_default();
        summary.image_ids = self.image_ids.clone();
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
            summary,
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
    read: fn(&Fields<'_>, &Settings) -> Result<Option<EventView>, Malformed>,
) -> Result<Option<EventView>, Malformed> {
    let events = [crate::model::Event {
        fields: fields.to_vec(),
    }];
    let block = Fields {
        batch: Batch::from(&events[..]),
        event: 0,
        offset: 0,
        paths,
    };
    read(&block, &Settings::default())
}

/// Distinct non-empty values, in order.
fn distinct<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !v.is_empty() && !out.iter().any(|o| o == v) {
            out.push(v.to_string());
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
