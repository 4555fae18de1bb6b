//! A byte-level look at an NDJSON line that decides, without parsing it, that it cannot
//! hold an event the detector subscribes to.
//!
//! In a mixed audit-log stream 98-99% of records are other API calls; parsing them
//! only to drop them costs about 20x the time of scanning the bytes. The prefilter
//! searches each line for the subscribed call names in one pass (CloudTrail's
//! `eventName`, Google's `methodName`, Azure's operation; without ASCII case, as Azure
//! spells its operations either way; bare, so records escaped inside a string field
//! still match) and lets through anything it is not sure
//! about: lines with `\u` escapes (a name could be spelled with them), lines that are
//! not a `{...}` object (so malformed input still gets its precise skip reason), and
//! objects without any cloud's marker key (`eventSource`, `protoPayload`,
//! `operationName`, so other JSON is still reported as such). Google's and Azure's
//! names are only searched in lines holding their cloud's marker: a mixed CloudTrail
//! stream pays for two more passes, not for every spelling of every other cloud's name. What it rejects is a well-formed-looking audit-log object
//! of another call: counted as not subscribed, never parsed. It never rejects a line
//! holding a subscribed event.

use memchr::memmem::Finder;
use minewatch_guest::catalog::Cloud;

use super::FieldSet;

/// The subscribed event names, ready to search for, and the fields the detectors read
/// (what a record over the size limit is cut down to, and with
/// [`Prefilter::cutting_records`] every record).
#[derive(Debug, Clone)]
pub struct Prefilter {
    /// The subscribed names, in the order given.
    names: Vec<String>,
    /// CloudTrail's event names: searched in every line.
    always: Vec<Finder<'static>>,
    /// Google's methods and Azure's operations ([`needles`]): searched only in lines that
    /// hold their cloud's marker key (`protoPayload`, `operationName`), which every
    /// record of that cloud has.
    gated: Vec<(Finder<'static>, Vec<Finder<'static>>)>,
    escape: Finder<'static>,
    event_source: Finder<'static>,
    fields: FieldSet,
    cuts_records: bool,
}

impl Prefilter {
    /// A prefilter for these call names, for detectors that read `fields` (paths as in
    /// [`FieldSet::new`]).
    pub fn new<'a>(
        names: impl IntoIterator<Item = &'a str>,
        fields: impl IntoIterator<Item = &'a str>,
    ) -> Prefilter {
        let mut unique: Vec<String> = Vec::new();
        for name in names {
            if !unique.iter().any(|n| n == name) {
                unique.push(name.to_string());
            }
        }
        Prefilter::of(unique, FieldSet::new(fields), false)
    }

    fn of(names: Vec<String>, fields: FieldSet, cuts_records: bool) -> Prefilter {
        let finders = |needles: Vec<String>| -> Vec<Finder<'static>> {
            needles
                .iter()
                .map(|n| Finder::new(n.as_bytes()).into_owned())
                .collect()
        };
        let of_cloud = |cloud: Cloud| -> Vec<String> {
            let names: Vec<String> = names
                .iter()
                .filter(|n| Cloud::of_operation(n) == cloud)
                .cloned()
                .collect();
            needles(&names)
        };
        let gated = [
            (Cloud::Gcp, "protoPayload"),
            (Cloud::Azure, "operationName"),
        ]
        .into_iter()
        .map(|(cloud, marker)| {
            (
                Finder::new(marker.as_bytes()).into_owned(),
                finders(of_cloud(cloud)),
            )
        })
        .filter(|(_, needles)| !needles.is_empty())
        .collect();
        Prefilter {
            always: finders(of_cloud(Cloud::Aws)),
            gated,
            names,
            escape: Finder::new(b"\\u").into_owned(),
            event_source: Finder::new(b"eventSource").into_owned(),
            fields,
            cuts_records,
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
        let mut names: Vec<String> = Vec::new();
        let mut fields = FieldSet::new([]);
        let mut cuts_records = true;
        for filter in filters {
            cuts_records &= filter.cuts_records;
            for name in &filter.names {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
            fields = fields.union(&filter.fields);
        }
        Prefilter::of(names, fields, cuts_records)
    }

    /// False only when `line` certainly holds no subscribed event and is an audit-log
    /// object of another call.
    pub fn wants(&self, line: &[u8]) -> bool {
        let found = |needles: &[Finder<'_>]| needles.iter().any(|n| n.find(line).is_some());
        if found(&self.always) {
            return true;
        }
        let trimmed = line.trim_ascii();
        let object = trimmed.first() == Some(&b'{') && trimmed.last() == Some(&b'}');
        if !object || self.escape.find(line).is_some() {
            return true;
        }
        let mut marked = self.event_source.find(line).is_some();
        for (marker, needles) in &self.gated {
            if marker.find(line).is_some() {
                if found(needles) {
                    return true;
                }
                marked = true;
            }
        }
        !marked
    }
}

/// What to search for so that every line holding one of `names` is found, in as few
/// needles as that takes (each is one more pattern for the vectorised search over every
/// byte): a Google method without its API version (`v1.compute.instances.insert` →
/// `compute.instances.insert`, one needle for `v1.`, `beta.` and `alpha.`); an Azure
/// operation (a resource-provider path) as given and in upper and lower case, as Azure's
/// exports spell it either way; a needle holding another is dropped.
fn needles(names: &[String]) -> Vec<String> {
    let mut needles: Vec<String> = Vec::new();
    for name in names {
        let spellings = if name.contains('/') {
            vec![
                name.clone(),
                name.to_ascii_uppercase(),
                name.to_ascii_lowercase(),
            ]
        } else {
            vec![without_api_version(name).to_string()]
        };
        for spelling in spellings {
            if !needles.contains(&spelling) {
                needles.push(spelling);
            }
        }
    }
    let all = needles.clone();
    needles.retain(|n| {
        !all.iter()
            .any(|other| other != n && n.contains(other.as_str()))
    });
    needles
}

/// `v1.compute.instances.insert` → `compute.instances.insert`: Google's method names
/// start with the API version (`v1`, `beta`, `alpha`, `v2beta1`, ...) before the service.
fn without_api_version(name: &str) -> &str {
    match name.split_once('.') {
        Some((version, rest))
            if !rest.is_empty()
                && (version == "beta"
                    || version == "alpha"
                    || (version.starts_with('v')
                        && version[1..].starts_with(|c: char| c.is_ascii_digit()))) =>
        {
            rest
        }
        _ => name,
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

    #[test]
    fn needles_cover_every_name_in_few_patterns() {
        let names: Vec<String> = [
            "RunInstances",
            "v1.compute.instances.insert",
            "beta.compute.instances.insert",
            "alpha.compute.instances.bulkInsert",
            "Microsoft.Compute/virtualMachines/write",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            needles(&names),
            [
                "RunInstances",
                "compute.instances.insert",
                "compute.instances.bulkInsert",
                "Microsoft.Compute/virtualMachines/write",
                "MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE",
                "microsoft.compute/virtualmachines/write",
            ]
        );
        assert_eq!(without_api_version("v2beta1.x.y"), "x.y");
        assert_eq!(without_api_version("vault.read"), "vault.read");
    }

    #[test]
    fn other_clouds_calls_are_told_apart_and_azure_in_any_case() {
        let f = Prefilter::new(
            [
                "v1.compute.instances.insert",
                "Microsoft.Compute/virtualMachines/write",
            ],
            [],
        );
        assert!(f.wants(br#"{"protoPayload":{"methodName":"v1.compute.instances.insert"}}"#));
        assert!(!f.wants(br#"{"protoPayload":{"methodName":"v1.compute.instances.delete"}}"#));
        assert!(f.wants(
            br#"{"records":[{"operationName":"MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE"}]}"#
        ));
        assert!(!f.wants(
            br#"{"operationName":"MICROSOFT.STORAGE/STORAGEACCOUNTS/WRITE","resourceId":"x"}"#
        ));
    }
}
