//! `baseline export` / `baseline import`: the store as NDJSON, one entry per line.
//!
//! Times are RFC 3339 so a seed file can be written by hand. Import merges sightings
//! (earliest first, latest last, the larger count) and set learning starts (earliest
//! wins); counters and histogram entries take the imported value. So importing the same
//! export twice changes nothing.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use minewatch_guest::Sighting;
use minewatch_guest::export::ExportEntry;
use minewatch_guest::time::{format_time, parse_event_time};
use serde::Serialize;

use super::{BaselineStore, Dirty, SetState};

/// What an import changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// Lines read.
    pub entries: u64,
    /// Sightings merged.
    pub sightings: u64,
}

fn time(text: &str, line: u64) -> Result<i64> {
    parse_event_time(text).with_context(|| format!("line {line}: invalid time {text:?}"))
}

impl BaselineStore {
    /// Writes every entry of every tenant (or of `tenant` only), sorted, one JSON object per line.
    ///
    /// # Errors
    /// Writing to `out` failed.
    pub fn export(&self, tenant: Option<&str>, out: &mut dyn Write) -> Result<u64> {
        let mut entries = Vec::new();
        let mut tenants: Vec<_> = self
            .tenants
            .iter()
            .filter(|(t, _)| tenant.is_none_or(|x| x == *t))
            .collect();
        tenants.sort_by(|a, b| a.0.cmp(b.0));
        for (tenant, state) in tenants {
            let sets: BTreeMap<_, _> = state.sets.iter().collect();
            for (name, set) in sets {
                if let Some(start) = set.learning_start {
                    entries.push(ExportEntry::Set {
                        tenant: tenant.clone(),
                        set: name.clone(),
                        learning_start: format_time(start),
                        forget_after_ms: set.forget_after,
                        latest: format_time(set.latest),
                    });
                }
                let keys: BTreeMap<_, _> = set.keys.iter().collect();
                for (key, s) in keys {
                    entries.push(ExportEntry::Sighting {
                        tenant: tenant.clone(),
                        set: name.clone(),
                        key: key.to_string(),
                        first_seen: format_time(s.first_seen),
                        last_seen: format_time(s.last_seen),
                        count: s.count,
                    });
                }
            }
            let counters: BTreeMap<_, _> = state.counters.iter().collect();
            for (name, counter) in counters {
                let keys: BTreeMap<_, _> = counter.iter().collect();
                for (key, buckets) in keys {
                    for (bucket, value) in buckets {
                        entries.push(ExportEntry::Counter {
                            tenant: tenant.clone(),
                            counter: name.clone(),
                            key: key.to_string(),
                            bucket: format_time(*bucket),
                            value: *value,
                        });
                    }
                }
            }
            let series: BTreeMap<_, _> = state.series.iter().collect();
            for (name, buckets) in series {
                for (bucket, histogram) in buckets {
                    for (value, frequency) in histogram {
                        entries.push(ExportEntry::Histogram {
                            tenant: tenant.clone(),
                            series: name.clone(),
                            bucket: format_time(*bucket),
                            value: *value,
                            frequency: *frequency,
                        });
                    }
                }
            }
        }
        for entry in &entries {
            serde_json::to_writer(&mut *out, entry)?;
            out.write_all(b"\n")?;
        }
        Ok(entries.len() as u64)
    }

    /// Merges an export into the store (see the module doc); call [`BaselineStore::commit`] after.
    ///
    /// # Errors
    /// A line that is not an export entry, with its line number; nothing after it is read.
    pub fn import(&mut self, input: &mut dyn BufRead) -> Result<ImportSummary> {
        let mut summary = ImportSummary::default();
        for (n, line) in input.lines().enumerate() {
            let line_no = n as u64 + 1;
            let line = line.with_context(|| format!("line {line_no}: unreadable"))?;
            if line.trim().is_empty() {
                continue;
            }
            let entry: ExportEntry = serde_json::from_str(&line)
                .with_context(|| format!("line {line_no}: not a baseline entry"))?;
            summary.entries += 1;
            match entry {
                ExportEntry::Set {
                    tenant,
                    set,
                    learning_start,
                    forget_after_ms,
                    latest,
                } => {
                    let (start, latest) =
                        (time(&learning_start, line_no)?, time(&latest, line_no)?);
                    let state = self.tenants.entry(tenant.clone()).or_default();
                    let entry = state
                        .sets
                        .entry(set.clone())
                        .or_insert_with(SetState::default);
                    entry.learning_start =
                        Some(entry.learning_start.map_or(start, |s| s.min(start)));
                    entry.forget_after = forget_after_ms;
                    entry.latest = entry.latest.max(latest);
                    self.mark(|| Dirty::Set { tenant, set });
                }
                ExportEntry::Sighting {
                    tenant,
                    set,
                    key,
                    first_seen,
                    last_seen,
                    count,
                } => {
                    let (first, last) = (time(&first_seen, line_no)?, time(&last_seen, line_no)?);
                    if first > last {
                        bail!("line {line_no}: first_seen is after last_seen");
                    }
                    let state = self.tenants.entry(tenant.clone()).or_default();
                    let entry = state
                        .sets
                        .entry(set.clone())
                        .or_insert_with(SetState::default);
                    let imported = Sighting {
                        first_seen: first,
                        last_seen: last,
                        count,
                    };
                    let merged = entry
                        .keys
                        .get(key.as_str())
                        .map_or(imported, |s| s.merge(imported));
                    entry.keys.insert(key.as_str().into(), merged);
                    entry.learning_start =
                        Some(entry.learning_start.map_or(first, |s| s.min(first)));
                    entry.latest = entry.latest.max(last);
                    summary.sightings += 1;
                    let key: Box<str> = key.into();
                    self.mark(|| Dirty::Set {
                        tenant: tenant.clone(),
                        set: set.clone(),
                    });
                    self.mark(|| Dirty::Sighting { tenant, set, key });
                }
                ExportEntry::Counter {
                    tenant,
                    counter,
                    key,
                    bucket,
                    value,
                } => {
                    let bucket = time(&bucket, line_no)?;
                    let state = self.tenants.entry(tenant.clone()).or_default();
                    state
                        .counters
                        .entry(counter.clone())
                        .or_default()
                        .entry(key.as_str().into())
                        .or_insert_with(BTreeMap::new)
                        .insert(bucket, value);
                    let key: Box<str> = key.into();
                    self.mark(|| Dirty::Counter {
                        tenant,
                        counter,
                        key,
                        bucket,
                    });
                }
                ExportEntry::Histogram {
                    tenant,
                    series,
                    bucket,
                    value,
                    frequency,
                } => {
                    let bucket = time(&bucket, line_no)?;
                    let state = self.tenants.entry(tenant.clone()).or_default();
                    state
                        .series
                        .entry(series.clone())
                        .or_default()
                        .entry(bucket)
                        .or_default()
                        .insert(value, frequency);
                    self.mark(|| Dirty::Histogram {
                        tenant,
                        series,
                        bucket,
                        value,
                    });
                }
            }
        }
        Ok(summary)
    }
}
