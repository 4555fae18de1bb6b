//! The on-disk half of the baseline store: one redb database file.
//!
//! Tables mirror the in-memory maps, keyed by tenant first. Commits use redb's default
//! `Durability::Immediate`: when `write` returns, the data is on disk.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use hashbrown::{HashMap, HashSet};
use minewatch_guest::Sighting;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{Dirty, SetState, TenantState};

/// (tenant, set, key) → (first seen, last seen, count).
const SIGHTINGS: TableDefinition<(&str, &str, &str), (i64, i64, u64)> =
    TableDefinition::new("sightings");
/// (tenant, set) → (learning start, forget after, latest).
const SETS: TableDefinition<(&str, &str), (i64, i64, i64)> = TableDefinition::new("sets");
/// (tenant, counter, key, bucket) → value.
const COUNTERS: TableDefinition<(&str, &str, &str, i64), u64> = TableDefinition::new("counters");
/// (tenant, series, bucket, value) → frequency.
const HISTOGRAMS: TableDefinition<(&str, &str, i64, u64), u64> = TableDefinition::new("histograms");

/// The database file inside a state directory.
pub(super) const FILE_NAME: &str = "baselines.redb";

pub(super) struct Durable {
    db: Database,
}

type Loaded = HashMap<String, TenantState>;

impl Durable {
    /// Whether `dir` holds a baseline database.
    pub(super) fn exists(dir: &Path) -> bool {
        dir.join(FILE_NAME).is_file()
    }

    /// Opens or creates the database and reads every table into memory.
    pub(super) fn open(dir: &Path) -> Result<(Durable, Loaded)> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create state directory {}", dir.display()))?;
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|error| match error {
            redb::DatabaseError::DatabaseAlreadyOpen => anyhow::anyhow!(
                "the baseline store {} is held by another minewatch process (a running serve \
                 or run): stop it first, or give this command another --state",
                path.display()
            ),
            error => anyhow::Error::from(error)
                .context(format!("failed to open baseline store {}", path.display())),
        })?;
        let write = db.begin_write()?;
        write.open_table(SIGHTINGS)?;
        write.open_table(SETS)?;
        write.open_table(COUNTERS)?;
        write.open_table(HISTOGRAMS)?;
        write.commit()?;
        let tenants = Self::load(&db)
            .with_context(|| format!("failed to read baseline store {}", path.display()))?;
        Ok((Durable { db }, tenants))
    }

    fn load(db: &Database) -> Result<Loaded> {
        let mut tenants: Loaded = HashMap::new();
        let read = db.begin_read()?;
        for row in read.open_table(SETS)?.iter()? {
            let (k, v) = row?;
            let (tenant, set) = k.value();
            let (learning_start, forget_after, latest) = v.value();
            let state = tenants.entry(tenant.to_string()).or_default();
            let entry = state
                .sets
                .entry(set.to_string())
                .or_insert_with(SetState::default);
            entry.learning_start = Some(learning_start);
            entry.forget_after = forget_after;
            entry.latest = latest;
        }
        for row in read.open_table(SIGHTINGS)?.iter()? {
            let (k, v) = row?;
            let (tenant, set, key) = k.value();
            let (first_seen, last_seen, count) = v.value();
            let state = tenants.entry(tenant.to_string()).or_default();
            state.sets.entry(set.to_string()).or_default().keys.insert(
                key.into(),
                Sighting {
                    first_seen,
                    last_seen,
                    count,
                },
            );
        }
        for row in read.open_table(COUNTERS)?.iter()? {
            let (k, v) = row?;
            let (tenant, counter, key, bucket) = k.value();
            let state = tenants.entry(tenant.to_string()).or_default();
            state
                .counters
                .entry(counter.to_string())
                .or_default()
                .entry(key.into())
                .or_insert_with(BTreeMap::new)
                .insert(bucket, v.value());
        }
        for row in read.open_table(HISTOGRAMS)?.iter()? {
            let (k, v) = row?;
            let (tenant, series, bucket, value) = k.value();
            let state = tenants.entry(tenant.to_string()).or_default();
            state
                .series
                .entry(series.to_string())
                .or_default()
                .entry(bucket)
                .or_default()
                .insert(value, v.value());
        }
        Ok(tenants)
    }

    /// Writes the current value of every dirty entry (or removes it) in one fsynced transaction.
    pub(super) fn write(
        &self,
        tenants: &HashMap<String, TenantState>,
        dirty: &HashSet<Dirty>,
    ) -> Result<()> {
        let write = self
            .db
            .begin_write()
            .context("failed to begin a baseline transaction")?;
        {
            let mut sightings = write.open_table(SIGHTINGS)?;
            let mut sets = write.open_table(SETS)?;
            let mut counters = write.open_table(COUNTERS)?;
            let mut histograms = write.open_table(HISTOGRAMS)?;
            for entry in dirty {
                match entry {
                    Dirty::Set { tenant, set } => {
                        let state = tenants.get(tenant).and_then(|t| t.sets.get(set));
                        match state
                            .and_then(|s| s.learning_start.map(|l| (l, s.forget_after, s.latest)))
                        {
                            Some(v) => sets.insert((tenant.as_str(), set.as_str()), v)?,
                            None => sets.remove((tenant.as_str(), set.as_str()))?,
                        };
                    }
                    Dirty::Sighting { tenant, set, key } => {
                        let k = (tenant.as_str(), set.as_str(), &**key);
                        match tenants
                            .get(tenant)
                            .and_then(|t| t.sets.get(set))
                            .and_then(|s| s.keys.get(key))
                        {
                            Some(s) => sightings.insert(k, (s.first_seen, s.last_seen, s.count))?,
                            None => sightings.remove(k)?,
                        };
                    }
                    Dirty::Counter {
                        tenant,
                        counter,
                        key,
                        bucket,
                    } => {
                        let k = (tenant.as_str(), counter.as_str(), &**key, *bucket);
                        let value = tenants
                            .get(tenant)
                            .and_then(|t| t.counters.get(counter))
                            .and_then(|c| c.get(key))
                            .and_then(|b| b.get(bucket));
                        match value {
                            Some(v) => counters.insert(k, *v)?,
                            None => counters.remove(k)?,
                        };
                    }
                    Dirty::Histogram {
                        tenant,
                        series,
                        bucket,
                        value,
                    } => {
                        let k = (tenant.as_str(), series.as_str(), *bucket, *value);
                        let frequency = tenants
                            .get(tenant)
                            .and_then(|t| t.series.get(series))
                            .and_then(|s| s.get(bucket))
                            .and_then(|h| h.get(value));
                        match frequency {
                            Some(f) => histograms.insert(k, *f)?,
                            None => histograms.remove(k)?,
                        };
                    }
                }
            }
        }
        write
            .commit()
            .context("failed to commit baselines to disk")?;
        Ok(())
    }
}
