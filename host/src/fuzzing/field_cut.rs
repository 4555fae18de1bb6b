//! The field cut against the whole parse: an oversized record is parsed straight into
//! the detectors' field paths ([`crate::intake::FieldSet`]); the detectors must see the
//! same projection as from the whole record parsed.

use arbitrary::{Result, Unstructured};
use minewatch_guest::projection::{FieldPath, project};
use serde_json::Value;

use crate::intake::FieldSet;

/// Keys paths are built from; not `Records` or `detail`, which hold whole records and
/// are cut from the root again.
const KEYS: [&str; 6] = ["a", "b", "items", "instancesSet", "eventName", "arn"];

/// JSON text (the input after its first byte, or a record built from it when that byte
/// is odd) projected to the detectors' paths plus up to three built ones, once from the
/// whole parse and once from the cut; the two must be equal, and the cut must accept
/// whatever the whole parse accepts.
pub fn field_cut(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut u = Unstructured::new(rest);
    let text = if mode % 2 == 1 {
        let Ok(record) = super::gzip_json::record(&mut u) else {
            return;
        };
        record.to_string().into_bytes()
    } else {
        rest.to_vec()
    };
    let mut paths: Vec<String> = minewatch_guest::Detector::describe().fields;
    if mode % 2 == 1 {
        for _ in 0..u.int_in_range(0..=3usize).unwrap_or(0) {
            let Ok(path) = built_path(&mut u) else { break };
            paths.push(path);
        }
    }
    let Ok(whole) = serde_json::from_slice::<Value>(&text) else {
        return;
    };
    let fields = FieldSet::new(paths.iter().map(String::as_str));
    let cut = fields
        .parse(&text)
        .unwrap_or_else(|e| panic!("the cut refused what parses whole: {e}"));
    let parsed: Vec<FieldPath> = paths
        .iter()
        .filter_map(|p| FieldPath::parse(p).ok())
        .collect();
    assert_eq!(
        project(&whole, &parsed),
        project(&cut, &parsed),
        "the cut changed the projection"
    );
}

/// A path of one to three segments, each possibly stepping into arrays.
fn built_path(u: &mut Unstructured) -> Result<String> {
    let segments = (0..u.int_in_range(1..=3usize)?)
        .map(|_| {
            let key = *u.choose(&KEYS)?;
            Ok(if u.ratio(1, 3)? {
                format!("{key}[]")
            } else {
                key.to_string()
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(segments.join("."))
}
