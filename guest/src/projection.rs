//! The field projection of the WIT contract, applied to a parsed JSON event.
//!
//! A path is dot-separated object keys; a segment ending in `[]` steps into every
//! element of an array. The host projects each event to the detector's declared paths
//! before the call, so the component never parses JSON. Native callers (the host's
//! native engine, tests) use the same function.

use serde_json::Value;

use crate::model::{Event, Field};

/// A parsed field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Each(String),
}

impl FieldPath {
    /// Parses `a.b[].c`.
    ///
    /// # Errors
    /// An empty path or an empty segment.
    pub fn parse(path: &str) -> Result<FieldPath, String> {
        let steps = path
            .split('.')
            .map(|segment| {
                let (key, each) = match segment.strip_suffix("[]") {
                    Some(key) => (key, true),
                    None => (segment, false),
                };
                if key.is_empty() {
                    return Err(format!("field path {path:?} has an empty segment"));
                }
                Ok(if each {
                    Step::Each(key.into())
                } else {
                    Step::Key(key.into())
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FieldPath { steps })
    }

    /// The value at this path in `event`, owned.
    pub fn project(&self, event: &Value) -> Field {
        self.find(event).to_field()
    }

    /// The value at this path in `event`, borrowed from it.
    pub fn find<'v>(&self, event: &'v Value) -> Found<'v> {
        if !self.steps.iter().any(|step| matches!(step, Step::Each(_))) {
            return self.find_one(event);
        }
        let mut current: Vec<&Value> = vec![event];
        let mut through_array = false;
        for step in &self.steps {
            let (key, each) = match step {
                Step::Key(k) => (k, false),
                Step::Each(k) => (k, true),
            };
            let mut next = Vec::with_capacity(current.len());
            for value in current {
                match value.get(key) {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(items)) if each => next.extend(items.iter()),
                    Some(other) if each => return Found::Other(other),
                    Some(v) => next.push(v),
                }
            }
            through_array |= each;
            current = next;
            if current.is_empty() {
                return Found::Absent;
            }
        }
        if through_array {
            let mut texts = Vec::with_capacity(current.len());
            for value in current {
                match value {
                    Value::String(s) => texts.push(s.as_str()),
                    other => return Found::Other(other),
                }
            }
            return Found::Texts(texts);
        }
        match current.first() {
            None => Found::Absent,
            Some(value) => Found::one(value),
        }
    }

    /// [`FieldPath::find`] for a path without `[]`: one value followed down, nothing
    /// allocated (most declared paths are absent from most records).
    fn find_one<'v>(&self, event: &'v Value) -> Found<'v> {
        let mut value = event;
        for step in &self.steps {
            let (Step::Key(key) | Step::Each(key)) = step;
            match value.get(key) {
                None | Some(Value::Null) => return Found::Absent,
                Some(next) => value = next,
            }
        }
        Found::one(value)
    }
}

/// The value at one field path, borrowed from the record: a [`Field`] before its strings
/// are copied.
#[derive(Debug, Clone, PartialEq)]
pub enum Found<'v> {
    /// Missing or null.
    Absent,
    /// A string.
    Text(&'v str),
    /// Every string reached through an array step, in order (never empty).
    Texts(Vec<&'v str>),
    /// Any other JSON value, to be written as compact JSON text.
    Other(&'v Value),
}

impl<'v> Found<'v> {
    /// A value found at the end of a path: text if it is a string.
    fn one(value: &'v Value) -> Found<'v> {
        match value {
            Value::String(s) => Found::Text(s),
            other => Found::Other(other),
        }
    }

    /// The owned field.
    pub fn to_field(&self) -> Field {
        match self {
            Found::Absent => Field::Absent,
            Found::Text(s) => Field::Text((*s).to_owned()),
            Found::Texts(list) => Field::Texts(list.iter().map(|s| (*s).to_owned()).collect()),
            Found::Other(value) => Field::Other(value.to_string()),
        }
    }
}

/// Projects one event to a list of paths.
pub fn project(event: &Value, paths: &[FieldPath]) -> Event {
    Event {
        fields: paths.iter().map(|p| p.project(event)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(path: &str, v: &Value) -> Field {
        FieldPath::parse(path).unwrap().project(v)
    }

    #[test]
    fn projects_strings_arrays_and_others() {
        let v = json!({
            "awsRegion": "us-east-1",
            "n": 5,
            "userIdentity": {"arn": "arn:aws:iam::1:user/a"},
            "requestParameters": {"instanceType": {"value": "p2.xlarge"},
                "instancesSet": {"items": [{"imageId": "ami-1"}, {"imageId": "ami-2"}, {"x": 1}]}},
            "errorCode": null
        });
        assert_eq!(at("awsRegion", &v), Field::Text("us-east-1".into()));
        assert_eq!(
            at("userIdentity.arn", &v),
            Field::Text("arn:aws:iam::1:user/a".into())
        );
        assert_eq!(at("errorCode", &v), Field::Absent);
        assert_eq!(at("errorCode.deeper", &v), Field::Absent);
        assert_eq!(at("awsRegion.deeper", &v), Field::Absent);
        assert_eq!(
            at("userIdentity", &v),
            Field::Other(r#"{"arn":"arn:aws:iam::1:user/a"}"#.into())
        );
        assert_eq!(at("requestParameters.missing[].imageId", &v), Field::Absent);
        assert_eq!(at("missing.deeper", &v), Field::Absent);
        assert_eq!(at("n", &v), Field::Other("5".into()));
        assert_eq!(
            at("requestParameters.instanceType", &v),
            Field::Other(r#"{"value":"p2.xlarge"}"#.into())
        );
        assert_eq!(
            at("requestParameters.instancesSet.items[].imageId", &v),
            Field::Texts(vec!["ami-1".into(), "ami-2".into()])
        );
        assert_eq!(
            at("requestParameters.instancesSet[].x", &v),
            Field::Other(v["requestParameters"]["instancesSet"].to_string())
        );
        assert_eq!(
            at("responseElements.instancesSet.items[].imageId", &v),
            Field::Absent
        );
    }

    #[test]
    fn rejects_empty_segments() {
        assert!(FieldPath::parse("a..b").is_err());
        assert!(FieldPath::parse("").is_err());
        assert!(FieldPath::parse("[]").is_err());
    }
}
