//! The record path behind the fuzz target `plugin_record` (`tests/fuzz`) and its
//! corpus replay in the host's tests: what the `filter_wasm` entry point runs for each
//! record Fluent Bit hands it, compiled natively. Not an API for embedding.

use serde_json::Value;

use crate::filter::{ALERTS_FIELD, Filter};
use crate::settings::PluginSettings;

/// Unseen rules that alert without learning first, so that a record alerts.
const SETTINGS: &str = r#"{"detector": {
    "unseen_region": {"learning_days": 0},
    "unseen_ami": {"learning_days": 0},
    "unseen_instance_type": {"learning_days": 0},
    "unseen_user": {"learning_days": 0}
}}"#;

/// Runs `data`'s lines, as records, through one fresh filter. A record the filter
/// alerts on must come back as the same JSON object with one more key, holding a
/// non-empty list of alerts.
///
/// # Panics
/// When that does not hold.
pub fn records(data: &[u8]) {
    let settings = PluginSettings::from_json(SETTINGS).expect("the target's settings");
    let mut filter = Filter::new(&settings).expect("the target's settings");
    let mut out = Vec::new();
    for record in data.split(|&b| b == b'\n') {
        if !filter.process(record, &mut out) {
            continue;
        }
        let Ok(Value::Object(mut before)) = serde_json::from_slice::<Value>(record) else {
            panic!("alerted on a record that is not a JSON object");
        };
        let Ok(Value::Object(mut after)) = serde_json::from_slice::<Value>(&out) else {
            panic!("the record came back as something else than a JSON object");
        };
        let alerts = after.remove(ALERTS_FIELD).expect("the alerts field");
        assert!(
            alerts.as_array().is_some_and(|a| !a.is_empty()),
            "alerts that are not a list of alerts: {alerts}"
        );
        before.remove(ALERTS_FIELD);
        assert_eq!(before, after, "the record's own fields changed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The target's settings reach the splice path: a first launch alerts.
    #[test]
    fn a_first_launch_alerts_under_the_targets_settings() {
        let settings = PluginSettings::from_json(SETTINGS).unwrap();
        let mut filter = Filter::new(&settings).unwrap();
        let record = br#"{"eventSource":"ec2.amazonaws.com","eventName":"RunInstances","eventTime":"2026-03-02T10:00:00Z","eventID":"e1","awsRegion":"us-east-1","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice"},"requestParameters":{"instanceType":"t3.micro","instancesSet":{"items":[{"imageId":"ami-1"}]}}}"#;
        let mut out = Vec::new();
        assert!(filter.process(record, &mut out));
        records(record);
    }
}
