//! One record in, one record out: the detector over a single Fluent Bit record.
//!
//! Fluent Bit hands the filter one record at a time, so each subscribed record is a
//! batch of one (an Azure Event Hubs document, a batch of its subscribed records). That gives the host's alerts: the detector's first-seen sets, its
//! `eventID` dedup set and its rate counters are separate baselines whose answers depend
//! only on the sightings before, in order, whatever the batch boundaries
//! (`tests/fluent_bit.rs` checks it against `minewatch run`).

use std::io::Write;
use std::path::Path;

use memchr::memmem;
use minewatch_guest::audit::call::Call;
use minewatch_guest::catalog::Cloud;
use minewatch_guest::projection::{FieldPath, project};
use minewatch_guest::{Detector, DetectorInfo, render};
use serde_json::Value;

use crate::baseline::MemoryBaseline;
use crate::seed;
use crate::settings::PluginSettings;

/// The field that carries a record's alerts, as in the host's passthrough outputs.
pub const ALERTS_FIELD: &str = "minewatch_alerts";
/// Subscribed records between two prunes of the baselines (the store prunes every 256 commits).
const PRUNE_EVERY_EVENTS: u32 = 256;
/// Deepest nesting of objects and arrays parsed; deeper records pass unchanged.
///
/// Parsing JSON recurses once per level, and Fluent Bit runs the module in WAMR's
/// interpreter on a fixed Wasm stack (`Wasm_Stack_Size`), where a trap drops the record.
/// CloudTrail records nest about 10 levels (a RunInstances with network interfaces and
/// tags: 9); bounding the depth bounds the stack the module needs whatever the record.
pub const MAX_DEPTH: usize = 32;

/// The detector with its baselines, for one Fluent Bit filter instance.
#[derive(Debug)]
pub struct Filter {
    detector: Detector,
    info: DetectorInfo,
    paths: Vec<FieldPath>,
    /// (source, name) pairs of the subscribed calls; a handful, so a scan beats hashing.
    subscriptions: Vec<(String, String)>,
    /// Searches for the subscribed names (Azure's also in upper and lower case) and for
    /// `\u`, to pass most records unparsed.
    names: Vec<memmem::Finder<'static>>,
    escape: memmem::Finder<'static>,
    tenant: String,
    baseline: MemoryBaseline,
    /// Subscribed records since the last prune.
    since_prune: u32,
    /// Records passed unchanged because they nest deeper than [`MAX_DEPTH`].
    too_deep: u64,
}

impl Filter {
    /// A filter with these settings and empty baselines.
    ///
    /// # Errors
    /// The detector refused its settings (the message names the setting).
    pub fn new(settings: &PluginSettings) -> Result<Filter, String> {
        let mut detector = Detector::default();
        let detector_settings = Value::Object(settings.detector.clone()).to_string();
        detector
            .configure(&detector_settings)
            .map_err(|e| format!("detector settings: {e}"))?;
        let info = Detector::describe();
        let paths = info
            .fields
            .iter()
            .map(|p| FieldPath::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        let subscriptions = info.subscribed_events();
        let mut spellings: Vec<String> = Vec::new();
        for (_, name) in &subscriptions {
            let mut these = vec![name.clone()];
            if Cloud::of_operation(name) == Cloud::Azure {
                these.extend([name.to_ascii_uppercase(), name.to_ascii_lowercase()]);
            }
            for spelling in these {
                if !spellings.contains(&spelling) {
                    spellings.push(spelling);
                }
            }
        }
        let names = spellings
            .iter()
            .map(|name| memmem::Finder::new(name.as_bytes()).into_owned())
            .collect();
        Ok(Filter {
            detector,
            info,
            paths,
            subscriptions,
            names,
            escape: memmem::Finder::new(b"\\u").into_owned(),
            tenant: settings.tenant.clone(),
            baseline: MemoryBaseline::default(),
            since_prune: 0,
            too_deep: 0,
        })
    }

    /// Reads the settings file at `path` (defaults when there is none) and the seed it
    /// names; returns the filter and a line saying what was loaded.
    ///
    /// # Errors
    /// The settings file or the seed is unreadable or invalid; the message names the file.
    pub fn load(path: &Path) -> Result<(Filter, String), String> {
        let settings = match std::fs::read_to_string(path) {
            Ok(text) => {
                PluginSettings::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => PluginSettings::default(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let mut filter = Filter::new(&settings).map_err(|e| format!("{}: {e}", path.display()))?;
        let seeded = match &settings.seed {
            None => "no seed".to_string(),
            Some(seed) => {
                let text = std::fs::read_to_string(seed)
                    .map_err(|e| format!("cannot read the seed {seed}: {e}"))?;
                let entries = seed::load(&text, &settings.tenant, &mut filter.baseline)
                    .map_err(|e| format!("seed {seed}: {e}"))?;
                filter.baseline.prune();
                format!("{entries} baseline entries from {seed}")
            }
        };
        Ok((filter, format!("tenant {:?}, {seeded}", settings.tenant)))
    }

    /// Runs the detector over one record (JSON text). When it alerts, writes the record
    /// with its alerts added in [`ALERTS_FIELD`] to `out` and returns true; otherwise
    /// leaves `out` alone and returns false: the record goes on unchanged.
    ///
    /// The alerting record is the input's bytes with the field spliced in before the
    /// closing brace, so it is the same JSON with one more key; only a record that
    /// already has the field is re-serialized, with the field replaced.
    pub fn process(&mut self, record: &[u8], out: &mut Vec<u8>) -> bool {
        // A record naming no subscribed event, and spelling no name with escapes, cannot be one.
        if !self.names.iter().any(|n| n.find(record).is_some())
            && self.escape.find(record).is_none()
        {
            return false;
        }
        if nests_deeper_than(record, MAX_DEPTH) {
            self.too_deep += 1;
            if self.too_deep == 1 {
                let _ = writeln!(
                    std::io::stderr(),
                    "minewatch-fluent-bit: a record nests deeper than {MAX_DEPTH} levels; \
                     such records pass unchanged, undetected."
                );
            }
            return false;
        }
        let Ok(mut value) = serde_json::from_slice::<Value>(record) else {
            return false;
        };
        let subscribed =
            |record: &Value| Call::of(record).is_some_and(|call| call.is_in(&self.subscriptions));
        // A record, or an Azure Event Hubs document of records (`{"records": [...]}`),
        // whose subscribed records are one batch.
        let events: Vec<_> = if subscribed(&value) {
            vec![project(&value, &self.paths)]
        } else {
            match value.get("records") {
                Some(Value::Array(records)) => records
                    .iter()
                    .filter(|r| subscribed(r))
                    .map(|r| project(r, &self.paths))
                    .collect(),
                _ => Vec::new(),
            }
        };
        if events.is_empty() {
            return false;
        }
        let outcome = self.detector.detect(&events, &mut self.baseline);
        self.since_prune += events.len() as u32;
        if self.since_prune >= PRUNE_EVERY_EVENTS {
            self.baseline.prune();
            self.since_prune = 0;
        }
        if outcome.alerts.is_empty() {
            return false;
        }
        let alerts: Vec<Value> = outcome
            .alerts
            .iter()
            .map(|alert| {
                let detection = render::detection(&self.info, &alert.detection);
                render::native(&self.info, &detection, alert, &self.tenant)
            })
            .collect();
        let alerts = Value::Array(alerts);
        out.clear();
        // A subscribed record or document is an object with members, so it ends in `}`
        // (then whitespace).
        let end = record.iter().rposition(|b| !b.is_ascii_whitespace());
        match (end, value.as_object_mut()) {
            (Some(end), Some(map)) if record[end] == b'}' && !map.contains_key(ALERTS_FIELD) => {
                out.extend_from_slice(&record[..end]);
                out.extend_from_slice(b",\"");
                out.extend_from_slice(ALERTS_FIELD.as_bytes());
                out.extend_from_slice(b"\":");
                out.extend_from_slice(alerts.to_string().as_bytes());
                out.push(b'}');
            }
            (_, map) => {
                if let Some(map) = map {
                    map.insert(ALERTS_FIELD.to_string(), alerts);
                }
                out.extend_from_slice(value.to_string().as_bytes());
            }
        }
        true
    }
}

/// Whether JSON text opens more than `limit` objects or arrays inside each other
/// (brackets inside strings do not count). A scan, without recursion.
fn nests_deeper_than(json: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASE: &str = include_str!("../../../tests/data/conformance/learning-gate/events.ndjson");

    /// Every record through `filter`, with what came back: `None` for unchanged.
    fn run(filter: &mut Filter, records: &[String]) -> Vec<Option<Value>> {
        records
            .iter()
            .map(|record| {
                let mut out = Vec::new();
                filter
                    .process(record.as_bytes(), &mut out)
                    .then(|| serde_json::from_slice(&out).unwrap())
            })
            .collect()
    }

    #[test]
    fn a_record_that_has_the_field_gets_it_replaced() {
        let plain: Vec<String> = CASE.lines().map(str::to_string).collect();
        let stale: Vec<String> = plain
            .iter()
            .map(|line| {
                let mut value: Value = serde_json::from_str(line).unwrap();
                value[ALERTS_FIELD] = "stale".into();
                value.to_string()
            })
            .collect();
        let settings = PluginSettings::default();
        let fresh = run(&mut Filter::new(&settings).unwrap(), &plain);
        let replaced = run(&mut Filter::new(&settings).unwrap(), &stale);
        assert!(fresh.iter().any(Option::is_some), "the case alerts");
        for (fresh, replaced) in fresh.iter().zip(&replaced) {
            assert_eq!(
                fresh.as_ref().map(|v| &v[ALERTS_FIELD]),
                replaced.as_ref().map(|v| &v[ALERTS_FIELD])
            );
        }
    }

    #[test]
    fn nesting_is_measured_outside_strings_only() {
        let nested = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
        assert!(!nests_deeper_than(nested(32).as_bytes(), 32));
        assert!(nests_deeper_than(nested(33).as_bytes(), 32));
        let in_string = format!(r#"{{"a":"{}\"{}"}}"#, "[".repeat(40), "{".repeat(40));
        assert!(!nests_deeper_than(in_string.as_bytes(), 32));
        // A CloudTrail launch with instances, network interfaces and tags is far below.
        let launch = CASE.lines().next().unwrap();
        assert!(!nests_deeper_than(launch.as_bytes(), 12));
    }

    #[test]
    fn a_launch_nested_too_deep_passes_unchanged() {
        let mut filter = Filter::new(&PluginSettings::default()).unwrap();
        let mut deep: Value = serde_json::from_str(CASE.lines().last().unwrap()).unwrap();
        let mut inner = Value::from(1);
        for _ in 0..MAX_DEPTH {
            inner = serde_json::json!({ "a": inner });
        }
        deep["requestParameters"]["deep"] = inner;
        let mut out = Vec::new();
        assert!(!filter.process(deep.to_string().as_bytes(), &mut out));
        assert_eq!(filter.too_deep, 1);
    }
}
