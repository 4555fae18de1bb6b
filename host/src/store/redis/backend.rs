//! [`RedisStore`] as the host drives it: batches (journal, retries), commit, the
//! host-side set reads (`keys`, `episode`), and one tenant's [`Baseline`] view for
//! the detector, whose calls go to `sets` and `counters`.

use anyhow::Result;
use minewatch_guest::{Baseline, Observed, Sighting, Timestamp, ValueChange};

use super::RedisStore;
use super::queue::Queued;
use super::scripts::Script;
use super::text::parse_sighting;
use crate::store::{Activity, BaselineBackend, Episode};

impl BaselineBackend for RedisStore {
    fn tenant<'a>(&'a mut self, tenant: &'a str) -> Box<dyn Baseline + 'a> {
        Box::new(RedisTenant {
            store: self,
            tenant,
        })
    }

    fn begin_batch(&mut self, retry: bool) {
        if retry {
            self.attempt += 1;
            // The failed attempt may have cached keys it claimed itself; the rerun must
            // ask Redis, whose journal answers them new again.
            self.cache.clear();
            self.cached_keys = 0;
        } else {
            self.batch += 1;
            self.attempt = 0;
        }
        self.adds = 0;
        self.records = 0;
        self.failure = None;
        self.uncommitted = true;
        self.series.clear();
    }

    fn take_failure(&mut self) -> Option<anyhow::Error> {
        self.failure.take()
    }

    fn can_fail(&self) -> bool {
        true
    }

    fn keys(&mut self, tenant: &str, set: &str) -> Vec<(String, Sighting)> {
        let Some(answer) = self.call(Script::Keys, vec![self.key(tenant, "set", set)]) else {
            return Vec::new();
        };
        let parsed = redis::from_redis_value::<Vec<String>>(answer)
            .map_err(anyhow::Error::from)
            .and_then(|flat| {
                flat.chunks(2)
                    .filter_map(|pair| match pair {
                        [key, text] => {
                            Some(parse_sighting(text).map(|s| s.map(|s| (key.clone(), s))))
                        }
                        _ => None,
                    })
                    .filter_map(Result::transpose)
                    .collect::<Result<Vec<_>>>()
            });
        match parsed {
            Ok(mut keys) => {
                keys.sort_by(|a, b| a.0.cmp(&b.0));
                keys
            }
            Err(error) => {
                self.fail(error);
                Vec::new()
            }
        }
    }

    fn episode(&mut self, tenant: &str, activity: Activity<'_>) -> Episode {
        let args = vec![
            self.key(tenant, "set", activity.set),
            activity.key.to_string(),
            activity.time.to_string(),
            activity.window.to_string(),
            self.journal(),
            self.attempt.to_string(),
        ];
        // Unanswered, nothing started: the batch is run again.
        let conservative = Episode {
            generation: 0,
            start: activity.time,
            started: false,
        };
        let Some(answer) = self.call(Script::Episode, args) else {
            return conservative;
        };
        match redis::from_redis_value::<(u64, i64, u8)>(answer) {
            Ok((generation, start, started)) => Episode {
                generation,
                start,
                started: started == 1,
            },
            Err(error) => {
                self.fail(error.into());
                conservative
            }
        }
    }

    /// Sends the queued writes and drops the batch journal.
    fn commit(&mut self) -> Result<()> {
        if self.failure.is_some() {
            return Err(self.failure.take().expect("checked above"));
        }
        if self.queued.is_empty() && !self.uncommitted {
            return Ok(());
        }
        let journal = self.journal();
        let shas = self.connect()?.shas.clone();
        // All or nothing, so a retried commit neither loses nor repeats a write.
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.queued.add_to(&mut pipe, &shas);
        pipe.cmd("DEL").arg(journal).ignore();
        let connection = self.connect()?;
        let result: redis::RedisResult<()> = pipe.query(&mut connection.connection);
        match result {
            Ok(()) => {
                self.queued = Queued::default();
                self.uncommitted = false;
                Ok(())
            }
            Err(error) => {
                // The queue is kept for the next try; the connection is not.
                self.connection = None;
                metrics::counter!("minewatch_store_errors_total").increment(1);
                Err(anyhow::Error::from(error).context("Redis commit failed"))
            }
        }
    }
}

/// One tenant's view of the Redis store.
struct RedisTenant<'a> {
    store: &'a mut RedisStore,
    tenant: &'a str,
}

impl Baseline for RedisTenant<'_> {
    fn observe(
        &mut self,
        set: &str,
        forget_after: i64,
        sightings: &[(&str, Timestamp)],
    ) -> Vec<Observed> {
        if sightings.is_empty() {
            return Vec::new();
        }
        self.store
            .observe(self.tenant, set, forget_after, sightings)
    }

    fn add(&mut self, counter: &str, increments: &[(&str, Timestamp, u64)]) -> Vec<u64> {
        if increments.is_empty() {
            return Vec::new();
        }
        self.store.add(self.tenant, counter, increments)
    }

    fn record_values(&mut self, series: &str, changes: &[ValueChange]) {
        if !changes.is_empty() {
            self.store.record_values(self.tenant, series, changes);
        }
    }

    fn histogram(&mut self, series: &str, from: Timestamp, to: Timestamp) -> Vec<(u64, u64)> {
        self.store.histogram(self.tenant, series, from, to)
    }
}
