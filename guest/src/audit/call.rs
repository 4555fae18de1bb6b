//! Which cloud's audit log a whole record belongs to, and the call it logs: what hosts
//! match a detector's subscriptions against (the minewatch host, the Fluent Bit plugin).
//!
//! | cloud | recognised by | call (source, name) | event time |
//! |---|---|---|---|
//! | AWS CloudTrail | `eventSource`, or `eventName` in an object that is no Azure record | `eventSource`, `eventName` | `eventTime` |
//! | Google Cloud Audit Logs | a `protoPayload` object | `protoPayload.serviceName`, `.methodName` | `timestamp` |
//! | Azure Activity Log | `operationName` with `resourceId`, `correlationId`, `caller` or `eventTimestamp` | the resource provider of `operationName` (or `operationName.value`), the operation | `time`, else `eventTimestamp` |
//!
//! A detector's subscription names a source and calls (see the WIT `subscription`);
//! Azure's are matched without case, since its exports spell them in upper or mixed case.

use serde_json::{Map, Value};

use crate::catalog::Cloud;
use crate::time::parse_event_time;

/// Keys beside `operationName` that make an object an Azure Activity Log record: the
/// Event Hubs form has `resourceId` and `correlationId`, the REST form `caller` and
/// `eventTimestamp` (some exports trim the rest).
const AZURE_KEYS: [&str; 4] = ["resourceId", "correlationId", "caller", "eventTimestamp"];

/// The cloud whose audit-log record `map` is, if any.
pub fn cloud_of(map: &Map<String, Value>) -> Option<Cloud> {
    let azure =
        || map.contains_key("operationName") && AZURE_KEYS.iter().any(|key| map.contains_key(*key));
    if map.contains_key("eventSource") {
        Some(Cloud::Aws)
    } else if azure() {
        // Before `eventName`: Azure's REST form has one too (`{"value": "EndRequest"}`).
        Some(Cloud::Azure)
    } else if map.contains_key("eventName") {
        Some(Cloud::Aws)
    } else if matches!(map.get("protoPayload"), Some(Value::Object(_))) {
        Some(Cloud::Gcp)
    } else {
        None
    }
}

/// The call a record logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    /// Whose audit log.
    pub cloud: Cloud,
    /// `ec2.amazonaws.com`, `compute.googleapis.com`, `Microsoft.Compute`.
    pub source: &'a str,
    /// `RunInstances`, `v1.compute.instances.insert`, `Microsoft.Compute/virtualMachines/write`.
    pub name: &'a str,
}

fn text(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str)
}

impl Call<'_> {
    /// The call of `record`, when it is an audit-log record naming one.
    pub fn of(record: &Value) -> Option<Call<'_>> {
        let map = record.as_object()?;
        let cloud = cloud_of(map)?;
        let (source, name) = match cloud {
            Cloud::Aws => (text(map.get("eventSource"))?, text(map.get("eventName"))?),
            Cloud::Gcp => {
                let payload = &map["protoPayload"];
                (
                    text(payload.get("serviceName"))?,
                    text(payload.get("methodName"))?,
                )
            }
            Cloud::Azure => {
                let operation = map.get("operationName")?;
                let name = text(Some(operation)).or(text(operation.get("value")))?;
                (name.split('/').next().unwrap_or_default(), name)
            }
        };
        Some(Call {
            cloud,
            source,
            name,
        })
    }

    /// Whether one of `subscriptions` (`(source, name)` pairs) names this call.
    pub fn is_in(&self, subscriptions: &[(String, String)]) -> bool {
        subscriptions.iter().any(|(source, name)| match self.cloud {
            Cloud::Azure => {
                source.eq_ignore_ascii_case(self.source) && name.eq_ignore_ascii_case(self.name)
            }
            Cloud::Aws | Cloud::Gcp => source == self.source && name == self.name,
        })
    }
}

/// The event time of an audit-log record in milliseconds, when it has a readable one.
pub fn event_time(record: &Value) -> Option<i64> {
    let map = record.as_object()?;
    let key = match cloud_of(map)? {
        Cloud::Aws => "eventTime",
        Cloud::Gcp => "timestamp",
        Cloud::Azure if map.contains_key("time") => "time",
        Cloud::Azure => "eventTimestamp",
    };
    map.get(key)
        .and_then(Value::as_str)
        .and_then(parse_event_time)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_cloud_names_its_call_and_time() {
        let aws = json!({"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
            "eventTime": "2024-01-01T00:00:00Z"});
        let gcp = json!({"protoPayload": {"serviceName": "compute.googleapis.com",
            "methodName": "beta.compute.instances.insert"}, "timestamp": "2024-01-01T00:00:00.5Z"});
        let azure = json!({"operationName": "MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE",
            "resourceId": "/SUBSCRIPTIONS/X", "time": "2024-01-01T00:00:01Z"});
        // The REST form, with its own `eventName` (BeginRequest / EndRequest).
        let rest = json!({"operationName": {"value": "Microsoft.Compute/virtualMachines/write"},
            "eventName": {"value": "EndRequest"}, "correlationId": "c",
            "eventTimestamp": "2024-01-01T00:00:02Z"});
        let subscriptions = [
            (
                "compute.googleapis.com".to_string(),
                "beta.compute.instances.insert".to_string(),
            ),
            (
                "Microsoft.Compute".to_string(),
                "Microsoft.Compute/virtualMachines/write".to_string(),
            ),
        ];
        let calls: Vec<Call> = [&aws, &gcp, &azure, &rest]
            .map(|r| Call::of(r).unwrap())
            .into();
        assert_eq!(calls[0].name, "RunInstances");
        assert!(!calls[0].is_in(&subscriptions));
        assert!(calls[1].is_in(&subscriptions));
        assert_eq!(calls[2].source, "MICROSOFT.COMPUTE");
        assert!(calls[2].is_in(&subscriptions) && calls[3].is_in(&subscriptions));
        let times = [&aws, &gcp, &azure, &rest].map(|r| event_time(r).unwrap());
        assert_eq!(times.map(|t| t - times[0]), [0, 500, 1000, 2000]);
    }

    #[test]
    fn other_json_is_no_cloud() {
        let map = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(cloud_of(&map(json!({"msg": "ok"}))), None);
        assert_eq!(cloud_of(&map(json!({"operationName": "x"}))), None);
        assert_eq!(cloud_of(&map(json!({"protoPayload": "text"}))), None);
    }
}
