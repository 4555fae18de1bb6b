//! First-seen sets in Redis: `observe`, answered from the cache when every key of the
//! call is cached and inside its forget window (the sightings are then queued), else by
//! `observe.lua` with the batch journal. A failed call answers conservatively: every
//! key known, so nothing alerts on a guess.

use anyhow::Result;
use hashbrown::HashMap;
use minewatch_guest::baseline::apply_sighting;
use minewatch_guest::{Observed, Sighting, Timestamp};
use redis::Value;

use super::RedisStore;
use super::scripts::Script;
use super::text::parse_sighting;

impl RedisStore {
    pub(super) fn observe(
        &mut self,
        tenant: &str,
        set: &str,
        forget_after: i64,
        sightings: &[(&str, Timestamp)],
    ) -> Vec<Observed> {
        let key = self.key(tenant, "set", set);
        let within =
            |time: Timestamp, s: &Sighting| forget_after <= 0 || time - s.last_seen <= forget_after;
        if let Some(cached) = self.cache.get_mut(&key)
            && let Some(start) = cached.learning_start
            && sightings
                .iter()
                .all(|(k, t)| cached.keys.get(*k).is_some_and(|s| within(*t, s)))
        {
            let mut start = start;
            let out = sightings
                .iter()
                .map(|&(k, time)| {
                    let slot = cached.keys.get_mut(k).expect("checked above");
                    let previous = *slot;
                    *slot = apply_sighting(Some(previous), time, forget_after).0;
                    start = start.min(time);
                    Observed {
                        previous: Some(previous),
                        is_new: false,
                        set_size: cached.set_size,
                        learning_start: start,
                    }
                })
                .collect();
            cached.learning_start = Some(start);
            let (_, keys) = self
                .queued
                .touches
                .entry(key)
                .or_insert_with(|| (forget_after, HashMap::new()));
            for &(k, time) in sightings {
                let entry = keys.entry(k.into()).or_insert((time, time, 0));
                entry.0 = entry.0.min(time);
                entry.1 = entry.1.max(time);
                entry.2 += 1;
            }
            return out;
        }
        let args = self.observe_args(key.clone(), forget_after, sightings);
        let Some(answer) = self.call(Script::Observe, args) else {
            return conservative_observed(sightings);
        };
        match parse_observed(answer) {
            Ok(observed) => {
                self.remember(key, sightings, &observed);
                crate::test_hook::point_of("redis-observed", set);
                observed
            }
            Err(error) => {
                self.fail(error);
                conservative_observed(sightings)
            }
        }
    }

    fn observe_args(
        &self,
        key: String,
        forget_after: i64,
        sightings: &[(&str, Timestamp)],
    ) -> Vec<String> {
        let mut args = Vec::with_capacity(4 + 2 * sightings.len());
        args.extend([
            key,
            forget_after.to_string(),
            self.journal(),
            self.attempt.to_string(),
        ]);
        for (k, t) in sightings {
            args.push((*k).to_string());
            args.push(t.to_string());
        }
        args
    }
}

/// What a failed call answers: every key known, so nothing alerts on a guess.
fn conservative_observed(sightings: &[(&str, Timestamp)]) -> Vec<Observed> {
    sightings
        .iter()
        .map(|&(_, time)| Observed {
            previous: None,
            is_new: false,
            set_size: 0,
            learning_start: time,
        })
        .collect()
}

fn parse_observed(answer: Value) -> Result<Vec<Observed>> {
    let rows: Vec<(i64, u64, i64, String)> = redis::from_redis_value(answer)?;
    rows.into_iter()
        .map(|(is_new, set_size, learning_start, previous)| {
            Ok(Observed {
                previous: parse_sighting(&previous)?,
                is_new: is_new == 1,
                set_size,
                learning_start,
            })
        })
        .collect()
}
