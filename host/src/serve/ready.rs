//! Readiness for `GET /ready`: whether this process can take and commit input now.
//!
//! Ready means all of:
//! - the baseline store answers: Redis is pinged on every check (within its
//!   `timeout_ms`, at most [`STORE_PROBE_TIMEOUT`]) and `minewatch_store_up` is set from
//!   the answer; the embedded store is in the process, so always up;
//! - no output is stuck: no spool is full, and no undelivered line has waited in a
//!   spool longer than [`OUTPUT_STUCK_AFTER`];
//! - no pipeline is wedged: no tenant's pipeline thread has jobs waiting and has taken
//!   none for longer than [`PIPELINE_WEDGED_AFTER`], and none has stopped.
//!
//! Each failed condition becomes one reason in words in the 503 reply.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::router::TenantRouter;
use crate::sinks::spool::SpoolHandle;
use crate::store::redis::{RedisConfig, RedisStore};

/// An output is stuck when a line has waited undelivered in its spool this long.
pub const OUTPUT_STUCK_AFTER: Duration = Duration::from_secs(300);

/// A pipeline is wedged when jobs wait in its queue and it has taken none for this long.
pub const PIPELINE_WEDGED_AFTER: Duration = Duration::from_secs(60);

/// The longest a readiness check waits for Redis.
pub const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a readiness check looks at.
pub struct Readiness {
    /// A connection of its own to Redis, when that is the store.
    store: Option<(String, Mutex<RedisStore>)>,
    /// Each output's name, with its spool for network outputs.
    outputs: Vec<(String, Option<SpoolHandle>)>,
    /// The tenants' pipelines.
    router: Arc<TenantRouter>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("redis", &self.store.as_ref().map(|(url, _)| url))
            .field(
                "outputs",
                &self.outputs.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Readiness {
    /// Checks over `redis` (when it is the store), the outputs and the router's
    /// pipelines.
    ///
    /// # Errors
    /// The Redis URL is invalid.
    pub fn new(
        redis: Option<&RedisConfig>,
        outputs: Vec<(String, Option<SpoolHandle>)>,
        router: Arc<TenantRouter>,
    ) -> anyhow::Result<Readiness> {
        let store = match redis {
            Some(config) => {
                let probe = RedisConfig {
                    timeout_ms: config
                        .timeout_ms
                        .min(STORE_PROBE_TIMEOUT.as_millis() as u64),
                    ..config.clone()
                };
                Some((config.url.clone(), Mutex::new(RedisStore::new(probe)?)))
            }
            None => None,
        };
        Ok(Readiness {
            store,
            outputs,
            router,
        })
    }

    /// Whether the store answers now (the embedded store always does); sets
    /// `minewatch_store_up`. Blocking: it may wait for Redis.
    pub fn store_answers(&self) -> bool {
        self.store_problem().is_none()
    }

    fn store_problem(&self) -> Option<String> {
        let (url, store) = self.store.as_ref()?;
        let answer = store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .ping();
        metrics::gauge!("minewatch_store_up").set(if answer.is_ok() { 1.0 } else { 0.0 });
        answer.err().map(|error| {
            format!(
                "store: the Redis baseline store at {} does not answer ({error:#}); batches \
                 wait for it",
                redact(url)
            )
        })
    }

    /// Why the process is not ready, one reason per failed condition, in words; empty
    /// when it is ready. Blocking: it may wait for Redis.
    pub fn reasons(&self) -> Vec<String> {
        let mut reasons: Vec<String> = self.store_problem().into_iter().collect();
        for (name, spool) in &self.outputs {
            let Some(backlog) = spool.as_ref().and_then(SpoolHandle::backlog) else {
                continue;
            };
            if backlog.is_full() {
                reasons.push(format!(
                    "output {name}: its spool is full ({} of {} bytes undelivered), so input \
                     is refused until the receiver takes alerts again",
                    backlog.depth.bytes, backlog.max_bytes
                ));
            } else if let Some(oldest) = backlog.oldest.filter(|o| *o > OUTPUT_STUCK_AFTER) {
                reasons.push(format!(
                    "output {name}: its oldest undelivered alert has waited {} s (the bound \
                     is {} s); {} lines wait in its spool",
                    oldest.as_secs(),
                    OUTPUT_STUCK_AFTER.as_secs(),
                    backlog.depth.lines
                ));
            }
        }
        reasons.extend(self.router.stalled(PIPELINE_WEDGED_AFTER));
        reasons
    }
}

/// A Redis URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}<credentials>{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            super::redact("redis://user:pw@10.0.0.5:6379/0"),
            "redis://<credentials>@10.0.0.5:6379/0"
        );
        assert_eq!(
            super::redact("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
    }
}
