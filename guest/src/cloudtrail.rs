//! Reading the fields of a projected CloudTrail event.
//!
//! [`FIELDS`] is the projection the detector asks the host for; [`EventView::read`]
//! turns one projected event into typed values and decides what is malformed. The
//! fallbacks of the detections live here: launch templates (instance type and AMIs from
//! the response), assumed-role principals (the role, not the session).

use crate::model::{Event, EventSummary, Field, Timestamp};
use crate::settings::{Identity, Scope, Settings};
use crate::time::parse_event_time;

/// Field paths the detector needs, in the order of [`Event::fields`].
pub const FIELDS: [&str; 18] = [
    "eventID",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "errorCode",
    "recipientAccountId",
    "userIdentity.type",
    "userIdentity.arn",
    "userIdentity.sessionContext.sessionIssuer.arn",
    "userIdentity.accountId",
    "sourceIPAddress",
    "userAgent",
    "requestParameters.instanceType",
    "requestParameters.instancesSet.items[].imageId",
    "responseElements.instancesSet.items[].instanceType",
    "responseElements.instancesSet.items[].imageId",
    "responseElements.instancesSet.items[].instanceId",
];

mod idx {
    pub const EVENT_ID: usize = 0;
    pub const EVENT_TIME: usize = 1;
    pub const EVENT_SOURCE: usize = 2;
    pub const EVENT_NAME: usize = 3;
    pub const REGION: usize = 4;
    pub const ERROR_CODE: usize = 5;
    pub const RECIPIENT_ACCOUNT: usize = 6;
    pub const IDENTITY_TYPE: usize = 7;
    pub const ARN: usize = 8;
    pub const SESSION_ISSUER_ARN: usize = 9;
    pub const IDENTITY_ACCOUNT: usize = 10;
    pub const SOURCE_IP: usize = 11;
    pub const USER_AGENT: usize = 12;
    pub const REQUEST_INSTANCE_TYPE: usize = 13;
    pub const REQUEST_IMAGE_IDS: usize = 14;
    pub const RESPONSE_INSTANCE_TYPES: usize = 15;
    pub const RESPONSE_IMAGE_IDS: usize = 16;
    pub const RESPONSE_INSTANCE_IDS: usize = 17;
}

/// The EC2 calls the detections use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `RunInstances`: every detection.
    RunInstances,
    /// `StartInstances`: the region detection only.
    StartInstances,
}

/// A usable event, typed.
#[derive(Debug, Clone)]
pub struct EventView {
    /// Which call it is.
    pub call: Call,
    /// Event time.
    pub time: Timestamp,
    /// True when `errorCode` is set (DryRun included).
    pub failed: bool,
    /// The scope prefix of baseline names: empty, or `account/` per account.
    pub scope: String,
    /// The principal, if the event names one.
    pub principal: Option<String>,
    /// Instance type launched, after the launch-template fallback.
    pub instance_type: Option<String>,
    /// AMIs launched (request, else response).
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
}

impl EventView {
    /// Reads a projected event; `Ok(None)` for events the detections do not use.
    ///
    /// # Errors
    /// [`Malformed`] when a field the detections need has the wrong type or the time
    /// cannot be parsed.
    pub fn read(event: &Event, settings: &Settings) -> Result<Option<EventView>, Malformed> {
        let f = |i: usize| event.fields.get(i).unwrap_or(&Field::Absent);
        let call = match (
            text(f(idx::EVENT_SOURCE), idx::EVENT_SOURCE)?,
            text(f(idx::EVENT_NAME), idx::EVENT_NAME)?,
        ) {
            (Some("ec2.amazonaws.com"), Some("RunInstances")) => Call::RunInstances,
            (Some("ec2.amazonaws.com"), Some("StartInstances")) => Call::StartInstances,
            _ => return Ok(None),
        };
        let time = match text(f(idx::EVENT_TIME), idx::EVENT_TIME)? {
            Some(t) => parse_event_time(t).ok_or_else(|| Malformed {
                reason: "bad-time",
                detail: format!("eventTime: cannot parse {t:?}"),
            })?,
            None => {
                return Err(Malformed {
                    reason: "bad-time",
                    detail: "eventTime: missing".into(),
                });
            }
        };
        let region = text(f(idx::REGION), idx::REGION)?.unwrap_or_default();
        let failed = text(f(idx::ERROR_CODE), idx::ERROR_CODE)?.is_some_and(|c| !c.is_empty());
        let account = text(f(idx::RECIPIENT_ACCOUNT), idx::RECIPIENT_ACCOUNT)?
            .or(text(f(idx::IDENTITY_ACCOUNT), idx::IDENTITY_ACCOUNT)?)
            .unwrap_or_default();
        let arn = text(f(idx::ARN), idx::ARN)?.unwrap_or_default();
        let principal = principal(
            text(f(idx::IDENTITY_TYPE), idx::IDENTITY_TYPE)?,
            arn,
            text(f(idx::SESSION_ISSUER_ARN), idx::SESSION_ISSUER_ARN)?,
            settings.identity,
        );
        let instance_type = match text(f(idx::REQUEST_INSTANCE_TYPE), idx::REQUEST_INSTANCE_TYPE)? {
            Some(t) if !t.is_empty() => Some(t.to_string()),
            _ => texts(
                f(idx::RESPONSE_INSTANCE_TYPES),
                idx::RESPONSE_INSTANCE_TYPES,
            )?
            .into_iter()
            .find(|t| !t.is_empty())
            .map(str::to_string)
            .or_else(|| settings.fill_instance_type.clone()),
        };
        let mut image_ids = distinct(texts(f(idx::REQUEST_IMAGE_IDS), idx::REQUEST_IMAGE_IDS)?);
        if image_ids.is_empty() {
            image_ids = distinct(texts(f(idx::RESPONSE_IMAGE_IDS), idx::RESPONSE_IMAGE_IDS)?);
        }
        let instance_ids = texts(f(idx::RESPONSE_INSTANCE_IDS), idx::RESPONSE_INSTANCE_IDS)?
            .into_iter()
            .map(str::to_string)
            .collect();
        let scope = match settings.scope {
            Scope::Global => String::new(),
            Scope::Account => format!("{account}/"),
        };
        let summary = EventSummary {
            event_id: text(f(idx::EVENT_ID), idx::EVENT_ID)?
                .unwrap_or_default()
                .to_string(),
            event_name: match call {
                Call::RunInstances => "RunInstances",
                Call::StartInstances => "StartInstances",
            }
            .to_string(),
            principal: principal.clone().unwrap_or_default(),
            arn: arn.to_string(),
            account: account.to_string(),
            region: region.to_string(),
            source_ip: text(f(idx::SOURCE_IP), idx::SOURCE_IP)?
                .unwrap_or_default()
                .to_string(),
            user_agent: text(f(idx::USER_AGENT), idx::USER_AGENT)?
                .unwrap_or_default()
                .to_string(),
            instance_ids,
            instance_type: instance_type.clone().unwrap_or_default(),
            image_ids: image_ids.clone(),
        };
        Ok(Some(EventView {
            call,
            time,
            failed,
            scope,
            principal,
            instance_type,
            image_ids,
            summary,
        }))
    }
}

/// The principal of an event: `None` when the event names none (service events, sign-ins).
///
/// With [`Identity::Role`], an assumed-role session is named by its role: the session
/// issuer's ARN, or, when the log lacks it, the role ARN rebuilt from the session ARN
/// (`arn:aws:sts::ACCT:assumed-role/ROLE/SESSION` → `arn:aws:iam::ACCT:role/ROLE`).
pub fn principal(
    identity_type: Option<&str>,
    arn: &str,
    session_issuer: Option<&str>,
    identity: Identity,
) -> Option<String> {
    if arn.is_empty() {
        return None;
    }
    if identity == Identity::Arn {
        return Some(arn.to_string());
    }
    let assumed = identity_type == Some("AssumedRole") || arn.contains(":assumed-role/");
    if !assumed {
        return Some(arn.to_string());
    }
    if let Some(issuer) = session_issuer.filter(|s| s.contains(":role/")) {
        return Some(issuer.to_string());
    }
    role_from_session_arn(arn).or_else(|| Some(arn.to_string()))
}

fn role_from_session_arn(arn: &str) -> Option<String> {
    let (head, resource) = arn.split_once(":assumed-role/")?;
    let mut parts = head.splitn(5, ':');
    let (_, partition, _, _, account) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let role = resource.split('/').next().filter(|r| !r.is_empty())?;
    Some(format!("arn:{partition}:iam::{account}:role/{role}"))
}

fn text(field: &Field, index: usize) -> Result<Option<&str>, Malformed> {
    match field {
        Field::Absent => Ok(None),
        Field::Text(s) => Ok(Some(s)),
        Field::Texts(_) => Err(Malformed::field(FIELDS[index], "an array")),
        Field::Other(json) => Err(Malformed::field(FIELDS[index], kind_of(json))),
    }
}

fn texts(field: &Field, index: usize) -> Result<Vec<&str>, Malformed> {
    match field {
        Field::Absent => Ok(Vec::new()),
        Field::Text(s) => Ok(vec![s.as_str()]),
        Field::Texts(list) => Ok(list.iter().map(String::as_str).collect()),
        Field::Other(json) => Err(Malformed::field(FIELDS[index], kind_of(json))),
    }
}

fn distinct(values: Vec<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(values.len());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_roles_are_named_by_their_role() {
        let session = "arn:aws:sts::111122223333:assumed-role/deployer/session-7";
        let issuer = "arn:aws:iam::111122223333:role/ci/deployer";
        assert_eq!(
            principal(Some("AssumedRole"), session, Some(issuer), Identity::Role).as_deref(),
            Some(issuer)
        );
        assert_eq!(
            principal(Some("AssumedRole"), session, None, Identity::Role).as_deref(),
            Some("arn:aws:iam::111122223333:role/deployer")
        );
        assert_eq!(
            principal(Some("AssumedRole"), session, Some(issuer), Identity::Arn).as_deref(),
            Some(session)
        );
    }

    #[test]
    fn users_keep_their_arn_and_service_events_have_no_principal() {
        let user = "arn:aws:iam::111122223333:user/alice";
        assert_eq!(
            principal(Some("IAMUser"), user, None, Identity::Role).as_deref(),
            Some(user)
        );
        assert_eq!(
            principal(Some("AWSService"), "", None, Identity::Role),
            None
        );
    }

    #[test]
    fn partitions_survive_role_rebuild() {
        assert_eq!(
            role_from_session_arn("arn:aws-us-gov:sts::123:assumed-role/R/s").as_deref(),
            Some("arn:aws-us-gov:iam::123:role/R")
        );
        assert_eq!(
            role_from_session_arn("arn:aws:sts::123:assumed-role//s"),
            None
        );
    }

    #[test]
    fn wrong_types_are_malformed() {
        let mut fields = vec![Field::Absent; FIELDS.len()];
        fields[idx::EVENT_SOURCE] = Field::Text("ec2.amazonaws.com".into());
        fields[idx::EVENT_NAME] = Field::Text("RunInstances".into());
        fields[idx::EVENT_TIME] = Field::Text("2026-03-02T10:00:00Z".into());
        fields[idx::REQUEST_INSTANCE_TYPE] = Field::Other(r#"{"value":"p2.xlarge"}"#.into());
        let err = EventView::read(
            &Event {
                fields: fields.clone(),
            },
            &Settings::default(),
        )
        .unwrap_err();
        assert_eq!(err.reason, "bad-field");
        assert!(
            err.detail
                .contains("requestParameters.instanceType: expected a string, found an object")
        );
        fields[idx::REQUEST_INSTANCE_TYPE] = Field::Absent;
        fields[idx::REGION] = Field::Other("5".into());
        let err = EventView::read(
            &Event {
                fields: fields.clone(),
            },
            &Settings::default(),
        )
        .unwrap_err();
        assert!(
            err.detail
                .contains("awsRegion: expected a string, found a number")
        );
        fields[idx::REGION] = Field::Text("us-east-1".into());
        fields[idx::EVENT_TIME] = Field::Text("redacted".into());
        let err = EventView::read(&Event { fields }, &Settings::default()).unwrap_err();
        assert_eq!(err.reason, "bad-time");
    }
}
