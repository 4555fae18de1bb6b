//! CloudTrail: EC2 `RunInstances` and `StartInstances`.
//!
//! The fallbacks of the detections live here: launch templates (instance type and AMIs
//! from the response), assumed-role principals (the role, not the session).

use std::borrow::Cow;

use super::{Call, EventView, Fields, Malformed, Read, Summary, distinct};
use crate::catalog::Cloud;
use crate::settings::{Identity, Settings};

/// The CloudTrail paths: the first block of [`super::fields`].
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

/// Reads a CloudTrail block; `Ok(None)` unless it holds an EC2 `RunInstances` or
/// `StartInstances` call.
pub(super) fn read<'a>(
    f: &Fields<'a>,
    settings: &Settings,
) -> Result<Option<EventView<'a>>, Malformed> {
    let (call, name) = match (f.text(idx::EVENT_SOURCE)?, f.text(idx::EVENT_NAME)?) {
        (Some("ec2.amazonaws.com"), Some(name @ "RunInstances")) => (Call::Launch, name),
        (Some("ec2.amazonaws.com"), Some(name @ "StartInstances")) => (Call::Start, name),
        _ => return Ok(None),
    };
    let time = f.time(idx::EVENT_TIME)?;
    let region = f.text(idx::REGION)?.unwrap_or_default();
    let failed = f.present(idx::ERROR_CODE)?.is_some();
    let account = f
        .text(idx::RECIPIENT_ACCOUNT)?
        .or(f.text(idx::IDENTITY_ACCOUNT)?)
        .unwrap_or_default();
    let arn = f.text(idx::ARN)?.unwrap_or_default();
    let principal = principal(
        f.text(idx::IDENTITY_TYPE)?,
        arn,
        f.text(idx::SESSION_ISSUER_ARN)?,
        settings.identity,
    );
    let instance_type = match f.present(idx::REQUEST_INSTANCE_TYPE)? {
        Some(t) => Some(Cow::Borrowed(t)),
        None => f
            .texts(idx::RESPONSE_INSTANCE_TYPES)?
            .into_iter()
            .find(|t| !t.is_empty())
            .map(Cow::Borrowed)
            .or_else(|| settings.fill_instance_type.clone().map(Cow::Owned)),
    };
    let mut image_ids = distinct(f.texts(idx::REQUEST_IMAGE_IDS)?);
    if image_ids.is_empty() {
        image_ids = distinct(f.texts(idx::RESPONSE_IMAGE_IDS)?);
    }
    let summary = Summary {
        event_id: Cow::Borrowed(f.text(idx::EVENT_ID)?.unwrap_or_default()),
        event_name: name,
        arn: Cow::Borrowed(arn),
        account: Cow::Borrowed(account),
        region: Cow::Borrowed(region),
        source_ip: f.text(idx::SOURCE_IP)?.unwrap_or_default(),
        user_agent: f.text(idx::USER_AGENT)?.unwrap_or_default(),
        instance_ids: f.texts(idx::RESPONSE_INSTANCE_IDS)?,
    };
    Ok(Some(
        Read {
            cloud: Cloud::Aws,
            call,
            counted: true,
            time,
            failed,
            principal,
            instance_type,
            image_ids,
            summary,
        }
        .view(settings),
    ))
}

/// The principal of an event: `None` when the event names none (service events, sign-ins).
///
/// With [`Identity::Role`], an assumed-role session is named by its role: the session
/// issuer's ARN, or, when the log lacks it, the role ARN rebuilt from the session ARN
/// (`arn:aws:sts::ACCT:assumed-role/ROLE/SESSION` → `arn:aws:iam::ACCT:role/ROLE`).
pub fn principal<'a>(
    identity_type: Option<&str>,
    arn: &'a str,
    session_issuer: Option<&'a str>,
    identity: Identity,
) -> Option<Cow<'a, str>> {
    if arn.is_empty() {
        return None;
    }
    if identity == Identity::Arn {
        return Some(Cow::Borrowed(arn));
    }
    // `contains(":assumed-role/")`, found from the colons (a handful per ARN) instead of
    // a substring search set up per event.
    let assumed = identity_type == Some("AssumedRole")
        || arn
            .match_indices(':')
            .any(|(at, _)| arn[at..].starts_with(":assumed-role/"));
    if !assumed {
        return Some(Cow::Borrowed(arn));
    }
    if let Some(issuer) = session_issuer.filter(|s| s.contains(":role/")) {
        return Some(Cow::Borrowed(issuer));
    }
    Some(role_from_session_arn(arn).map_or(Cow::Borrowed(arn), Cow::Owned))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Batch;
    use crate::model::{Event, Field};

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
        // Known by its ARN when the type is missing.
        assert_eq!(
            principal(None, session, None, Identity::Role).as_deref(),
            Some("arn:aws:iam::111122223333:role/deployer")
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
        let read = |fields: &[Field]| {
            let events = [Event {
                fields: fields.to_vec(),
            }];
            EventView::read(Batch::from(&events[..]), 0, &Settings::default())
                .map(|view| view.is_some())
        };
        let err = read(&fields).unwrap_err();
        assert_eq!(err.reason, "bad-field");
        assert!(
            err.detail
                .contains("requestParameters.instanceType: expected a string, found an object")
        );
        fields[idx::REQUEST_INSTANCE_TYPE] = Field::Absent;
        fields[idx::REGION] = Field::Other("5".into());
        let err = read(&fields).unwrap_err();
        assert!(
            err.detail
                .contains("awsRegion: expected a string, found a number")
        );
        fields[idx::REGION] = Field::Text("us-east-1".into());
        fields[idx::EVENT_TIME] = Field::Text("redacted".into());
        let err = read(&fields).unwrap_err();
        assert_eq!(err.reason, "bad-time");
    }
}
