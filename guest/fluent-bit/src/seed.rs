//! Seeding the baselines from a `minewatch baseline export` file.
//!
//! The file is the export format of `minewatch_guest::export`: NDJSON, one
//! entry per line, tagged by `kind`, times in RFC 3339. Only the entries of the plugin's
//! tenant are loaded, and they are merged the way `minewatch baseline import` merges them.

use minewatch_guest::Sighting;
use minewatch_guest::export::ExportEntry;
use minewatch_guest::time::parse_event_time;

use crate::baseline::MemoryBaseline;

/// Merges the entries of `tenant` from an export into `baseline`; returns how many were loaded.
///
/// # Errors
/// A line that is not an export entry, or a bad time in one, with its line number;
/// `baseline` may then hold the lines before it, so callers should drop it.
pub fn load(text: &str, tenant: &str, baseline: &mut MemoryBaseline) -> Result<u64, String> {
    let mut loaded = 0;
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let entry: ExportEntry = serde_json::from_str(line)
            .map_err(|e| format!("line {line_no}: not a baseline entry: {e}"))?;
        if entry.tenant() != tenant {
            continue;
        }
        let time = |text: &str| {
            parse_event_time(text).ok_or_else(|| format!("line {line_no}: invalid time {text:?}"))
        };
        match &entry {
            ExportEntry::Set {
                set,
                learning_start,
                forget_after_ms,
                latest,
                ..
            } => baseline.merge_set(set, time(learning_start)?, *forget_after_ms, time(latest)?),
            ExportEntry::Sighting {
                set,
                key,
                first_seen,
                last_seen,
                count,
                ..
            } => {
                let (first_seen, last_seen) = (time(first_seen)?, time(last_seen)?);
                if first_seen > last_seen {
                    return Err(format!("line {line_no}: first_seen is after last_seen"));
                }
                let sighting = Sighting {
                    first_seen,
                    last_seen,
                    count: *count,
                };
                baseline.merge_sighting(set, key, sighting);
            }
            ExportEntry::Counter {
                counter,
                key,
                bucket,
                value,
                ..
            } => baseline.set_counter(counter, key, time(bucket)?, *value),
            ExportEntry::Histogram {
                series,
                bucket,
                value,
                frequency,
                ..
            } => baseline.set_frequency(series, time(bucket)?, *value, *frequency),
        }
        loaded += 1;
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORT: &str = r#"{"kind":"set","tenant":"default","set":"ec2-unseen-region","learning_start":"2026-03-01T00:00:00Z","forget_after_ms":7776000000,"latest":"2026-03-02T00:00:00Z"}
{"kind":"sighting","tenant":"default","set":"ec2-unseen-region","key":"us-east-1","first_seen":"2026-03-01T00:00:00Z","last_seen":"2026-03-02T00:00:00Z","count":4}
{"kind":"sighting","tenant":"acme","set":"ec2-unseen-region","key":"eu-west-1","first_seen":"2026-03-01T00:00:00Z","last_seen":"2026-03-02T00:00:00Z","count":1}

{"kind":"counter","tenant":"default","counter":"rate/calls","key":"arn:aws:iam::1:user/a","bucket":"2026-03-02T00:00:00Z","value":3}
{"kind":"histogram","tenant":"default","series":"rate/calls/global","bucket":"2026-03-02T00:00:00Z","value":3,"frequency":1}
"#;

    #[test]
    fn loads_the_tenants_entries_only() {
        let mut b = MemoryBaseline::default();
        assert_eq!(load(EXPORT, "default", &mut b), Ok(4));
        assert_eq!(b.set_len("ec2-unseen-region"), 1);
        let mut acme = MemoryBaseline::default();
        assert_eq!(load(EXPORT, "acme", &mut acme), Ok(1));
    }

    #[test]
    fn refuses_what_is_not_an_export_by_line() {
        let mut b = MemoryBaseline::default();
        let bad = format!("{EXPORT}{{\"kind\":\"sighting\",\"tenant\":\"default\"}}\n");
        let error = load(&bad, "default", &mut b).unwrap_err();
        assert!(error.starts_with("line 7: not a baseline entry"), "{error}");
        let time = EXPORT.replace("2026-03-01T00:00:00Z", "yesterday");
        let error = load(&time, "default", &mut MemoryBaseline::default()).unwrap_err();
        assert_eq!(error, "line 1: invalid time \"yesterday\"");
    }
}
