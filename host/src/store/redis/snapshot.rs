//! `baseline export` from Redis: every tenant's (or one tenant's) sets, counters and
//! series read with `SCAN` and `HGETALL` into an embedded store, batch journals skipped.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::RedisStore;
use super::text::{escape, glob_escape, parse_sighting, unescape};
use crate::store::BaselineStore;

impl RedisStore {
    /// Reads every tenant's baselines (or `tenant`'s) out of Redis into an in-memory
    /// embedded store, for `baseline export` (and so for moving a fleet's baselines to an
    /// embedded store, or seeding the Fluent Bit plugin). Batch journals are skipped.
    ///
    /// # Errors
    /// Redis cannot be reached, or holds a value under minewatch's keys it did not write.
    pub fn snapshot(&mut self, tenant: Option<&str>) -> Result<BaselineStore> {
        let prefix = format!("{}:", self.config.key_prefix);
        let pattern = match tenant {
            Some(t) => format!("{prefix}{}:*", glob_escape(&escape(t))),
            None => format!("{prefix}*"),
        };
        let connection = &mut self.connect()?.connection;
        let keys: Vec<String> = redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .clone()
            .iter(connection)?
            .collect::<redis::RedisResult<_>>()?;
        let mut store = BaselineStore::in_memory();
        for key in keys {
            let Some(rest) = key.strip_prefix(&prefix) else {
                continue;
            };
            let parts: Vec<&str> = rest.split(':').collect();
            let (tenant, kind, name) = match parts.as_slice() {
                [t, kind @ ("set" | "counter" | "series"), name, ..] => {
                    (unescape(t), *kind, unescape(name))
                }
                _ => continue,
            };
            let state = store.tenants.entry(tenant).or_default();
            let field = |text: &str| -> Result<i64> {
                text.parse()
                    .with_context(|| format!("unexpected value {text:?} under {key}"))
            };
            match (kind, parts.get(3).copied()) {
                ("set", None) => {
                    let entries: Vec<(String, String)> =
                        redis::cmd("HGETALL").arg(&key).query(connection)?;
                    let set = state.sets.entry(name).or_default();
                    for (k, text) in entries {
                        if let Some(sighting) = parse_sighting(&text)? {
                            set.keys.insert(k.into(), sighting);
                        }
                    }
                }
                ("set", Some("meta")) => {
                    let meta: BTreeMap<String, String> =
                        redis::cmd("HGETALL").arg(&key).query(connection)?;
                    let set = state.sets.entry(name).or_default();
                    if let Some(start) = meta.get("learning_start") {
                        set.learning_start = Some(field(start)?);
                    }
                    if let Some(latest) = meta.get("latest") {
                        set.latest = field(latest)?;
                    }
                    if let Some(forget) = meta.get("forget_after") {
                        set.forget_after = field(forget)?;
                    }
                }
                ("counter", Some(bucket)) => {
                    let bucket = field(bucket)?;
                    let values: Vec<(String, u64)> =
                        redis::cmd("HGETALL").arg(&key).query(connection)?;
                    let counter = state.counters.entry(name).or_default();
                    for (k, value) in values {
                        counter.entry(k.into()).or_default().insert(bucket, value);
                    }
                }
                ("series", Some(bucket)) => {
                    let bucket = field(bucket)?;
                    let values: Vec<(u64, u64)> =
                        redis::cmd("HGETALL").arg(&key).query(connection)?;
                    let histogram = state
                        .series
                        .entry(name)
                        .or_default()
                        .entry(bucket)
                        .or_default();
                    histogram.extend(values);
                }
                // The `seen` and bucket-list sorted sets only index the hashes above.
                _ => {}
            }
        }
        // Redis drops expired entries a few per call; the snapshot applies the whole
        // rule at once, as the embedded store does, so both export the same entries.
        store.prune();
        Ok(store)
    }
}
