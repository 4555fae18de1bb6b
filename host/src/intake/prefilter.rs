//! A byte-level look at an NDJSON line that decides, without parsing it, that it cannot
//! hold an event the detector subscribes to.
//!
//! In a mixed CloudTrail stream 98-99% of records are other API calls; parsing them
//! only to drop them costs about 20x the time of scanning the bytes. The prefilter
//! searches each line for the subscribed `eventName` values (bare, so records escaped
//! inside a string field still match) and lets through anything it is not sure about:
//! lines with `\u` escapes (a name could be spelled with them), lines that are not a
//! `{...}` object (so malformed input still gets its precise skip reason), and objects
//! without `eventSource` (so non-CloudTrail JSON is still reported as such). What it
//! rejects is a well-formed-looking CloudTrail object of another event: counted as not
//! subscribed, never parsed. It never rejects a line holding a subscribed event.

use memchr::memmem::Finder;

use super::FieldSet;

/// The subscribed event names, ready to search for, and the fields the detectors read
/// (what a record over the size limit is cut down to, and with
/// [`Prefilter::cutting_records`] every record).
#[derive(Debug, Clone)]
pub struct Prefilter {
    names: Vec<Finder<'static>>,
    escape: Finder<'static>,
    event_source: Finder<'static>,
    fields: FieldSet,
    cuts_records: bool,
}

impl Prefilter {
    /// A prefilter for these `eventName` values, for detectors that read `fields`
    /// (paths as in [`FieldSet::new`]).
    pub fn new<'a>(
        names: impl IntoIterator<Item = &'a str>,
        fields: impl IntoIterator<Item = &'a str>,
    ) -> Prefilter {
        Prefilter {
            names: names
                .into_iter()
                .map(|n| Finder::new(n.as_bytes()).into_owned())
                .collect(),
            escape: Finder::new(b"\\u").into_owned(),
            event_source: Finder::new(b"eventSource").into_owned(),
            fields: FieldSet::new(fields),
            cuts_records: false,
        }
    }

    /// This prefilter, saying whether every record may be parsed straight into the
    /// fields (nothing downstream needs more of a record than the detectors read: no
    /// dead-letter file keeps whole records).
    pub fn cutting_records(mut self, cut: bool) -> Prefilter {
        self.cuts_records = cut;
        self
    }

    /// Whether every record may be parsed straight into [`Prefilter::fields`].
    pub fn cuts_records(&self) -> bool {
        self.cuts_records
    }

    /// The fields the detectors read.
    pub fn fields(&self) -> &FieldSet {
        &self.fields
    }

    /// This prefilter keeping one more field of oversized records (a routing field).
    pub fn keeping(mut self, path: &str) -> Prefilter {
        self.fields = self.fields.with(path);
        self
    }

    /// A prefilter that wants every line one of `filters` wants (tenants sharing a
    /// source: a record is parsed when some tenant may subscribe to it).
    pub fn union<'a>(filters: impl IntoIterator<Item = &'a Prefilter>) -> Prefilter {
        let mut names: Vec<Finder<'static>> = Vec::new();
        let mut fields = FieldSet::new([]);
        let mut cuts_records = true;
        for filter in filters {
            cuts_records &= filter.cuts_records;
            for name in &filter.names {
                if !names.iter().any(|n| n.needle() == name.needle()) {
                    names.push(name.clone());
                }
            }
            fields = fields.union(&filter.fields);
        }
        Prefilter {
            names,
            escape: Finder::new(b"\\u").into_owned(),
            event_source: Finder::new(b"eventSource").into_owned(),
            fields,
            cuts_records,
        }
    }

    /// False only when `line` certainly holds no subscribed event and is a CloudTrail
    /// object of another kind.
    pub fn wants(&self, line: &[u8]) -> bool {
        if self.names.iter().any(|name| name.find(line).is_some()) {
            return true;
        }
        let trimmed = line.trim_ascii();
        let object = trimmed.first() == Some(&b'{') && trimmed.last() == Some(&b'}');
        !object || self.escape.find(line).is_some() || self.event_source.find(line).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> Prefilter {
        Prefilter::new(["RunInstances", "StartInstances"], [])
    }

    #[test]
    fn a_union_wants_what_any_member_wants() {
        let union =
            Prefilter::union(&[filter(), Prefilter::new(["CreateUser", "RunInstances"], [])]);
        assert_eq!(union.names.len(), 3);
        assert!(union.wants(br#"{"eventSource":"iam.amazonaws.com","eventName":"CreateUser"}"#));
        assert!(
            union.wants(br#"{"eventSource":"ec2.amazonaws.com","eventName":"StartInstances"}"#)
        );
        assert!(!union.wants(br#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject"}"#));
    }

    #[test]
    fn other_cloudtrail_events_are_rejected() {
        let line = br#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1"}"#;
        assert!(!filter().wants(line));
        let describe = br#"{"eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances"}"#;
        assert!(!filter().wants(describe));
    }

    #[test]
    fn subscribed_events_pass_however_they_are_wrapped() {
        let f = filter();
        assert!(f.wants(br#"{"eventSource":"ec2.amazonaws.com","eventName":"RunInstances"}"#));
        assert!(f.wants(br#"{"log":"{\"eventSource\":\"ec2.amazonaws.com\",\"eventName\":\"StartInstances\"}"}"#));
        assert!(f.wants(br#"{"detail-type":"AWS API Call via CloudTrail","detail":{"eventName":"RunInstances"}}"#));
        // A name spelled with an escape: let the parser decide.
        assert!(f.wants(br#"{"eventSource":"ec2.amazonaws.com","eventName":"Run\u0049nstances"}"#));
    }

    #[test]
    fn malformed_and_foreign_lines_go_to_the_parser_for_their_reason() {
        let f = filter();
        assert!(f.wants(b"this is not json"));
        assert!(f.wants(br#"{"eventSource":"s3.amazonaws.com","eventNa"#));
        assert!(f.wants(br#"{"msg":"healthcheck ok"}"#));
        assert!(f.wants(b"[1,2,3]"));
    }
}
