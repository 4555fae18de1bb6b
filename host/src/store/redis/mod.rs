//! Baselines in Redis (or Valkey), shared by a fleet of sidecars.
//!
//! Every decision that must hold across processes runs as a Lua script, so Redis applies
//! it atomically: whether a key is new to a first-seen set (exactly one sidecar sees it
//! new), counter increments, histogram moves. Layout, under `<prefix>:<tenant>:` with
//! `%` and `:` percent-encoded in every name so no name can reach another's keys:
//! - `set:<name>` hash key → `first,last,count`; `set:<name>:seen` zset by last sighting;
//!   `set:<name>:meta` learning start, latest sighting, forget window.
//! - `counter:<name>:<bucket>` hash key → value; `counter:<name>` zset of buckets.
//! - `series:<name>:<bucket>` hash value → frequency; `series:<name>` zset of buckets.
//!
//! Forgetting is expiry in event time, not wall-clock TTLs: keys twice their forget
//! window behind a set's newest sighting are dropped by the scripts as they run, and
//! counter buckets a week behind the newest, the same rule as the embedded store, so
//! replaying old logs behaves like a live stream.
//!
//! **Hot path.** Writes whose answers no one waits for are queued, folded (one entry per
//! key and set, one call per series) and sent in the same round trip as the next call
//! that needs an answer, or at commit. A first-seen set
//! whose keys this process has seen known before is answered from a local cache when
//! every key of the call is cached and inside its forget window: a key known here is
//! known everywhere (sightings only ever add), so the cache never reports a key new that
//! another sidecar learned. Such sightings are still sent, queued. A series' history is
//! read once per batch and kept up to date with the batch's own changes.
//!
//! **Failures.** A call that fails (Redis down, slow past the timeout) makes the batch's
//! answers unusable: the store answers conservatively (nothing new, no history) and
//! [`take_failure`](super::BaselineBackend::take_failure) tells the host, which runs the batch
//! again later. A batch journal (`<prefix>:journal:<sidecar>:<batch>`, expiring after a
//! day, deleted at commit) makes that replay exact: keys the failed attempt claimed as
//! new are answered new again, and counter and histogram calls it already applied are
//! not applied twice.
//!
//! The files here: `config` (`[store.redis]`, the client), `scripts` (the Lua scripts,
//! a connection with them loaded), `queue` (writes waiting for a round trip), `cache`
//! (keys known to be known, series read this batch), `observe` (first-seen sets),
//! `counters` (counters, series), `backend` (batches, commit, `keys`, `episode`, the
//! tenant view), `snapshot` (`baseline export`), `text` (names and sightings as Redis
//! holds them); this file has the store, its connection and its round trips.

mod backend;
mod cache;
mod config;
mod counters;
mod observe;
mod queue;
mod scripts;
mod snapshot;
mod text;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use hashbrown::HashMap;
use redis::Value;

use cache::{CachedSeries, CachedSet};
pub use config::RedisConfig;
use queue::Queued;
use scripts::{Connection, Script};
use text::escape;

/// The baselines of all tenants in one Redis.
pub struct RedisStore {
    client: redis::Client,
    connection: Option<Connection>,
    config: RedisConfig,
    /// Unique per process: names this sidecar's batch journals.
    sidecar: String,
    batch: u64,
    attempt: u64,
    /// `add` calls made in this attempt, naming their journal marks.
    adds: u64,
    /// `record_values` calls made in this attempt, naming their journal marks.
    records: u64,
    /// Writes waiting for the next round trip.
    queued: Queued,
    failure: Option<anyhow::Error>,
    /// A batch has run since the last commit, so its journal may exist.
    uncommitted: bool,
    cache: HashMap<String, CachedSet>,
    cached_keys: usize,
    /// Series read in this batch; emptied at every batch.
    series: HashMap<String, CachedSeries>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.config.key_prefix)
            .field("connected", &self.connection.is_some())
            .field("cached_keys", &self.cached_keys)
            .finish()
    }
}

impl RedisStore {
    /// A store over the Redis `config` names. It connects lazily, so a server that is
    /// not up yet only delays the first batch; a wrong URL is an error now.
    ///
    /// # Errors
    /// The URL does not parse.
    pub fn new(config: RedisConfig) -> Result<RedisStore> {
        let client = config::client(&config)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(RedisStore {
            client,
            connection: None,
            sidecar: format!("{:x}-{nanos:x}", std::process::id()),
            config,
            batch: 0,
            attempt: 0,
            adds: 0,
            records: 0,
            queued: Queued::default(),
            failure: None,
            uncommitted: false,
            cache: HashMap::new(),
            cached_keys: 0,
            series: HashMap::new(),
        })
    }

    /// Connects (if not connected) and checks the server answers.
    ///
    /// # Errors
    /// Redis cannot be reached, or refused the scripts.
    pub fn ping(&mut self) -> Result<()> {
        let connection = self.connect()?;
        let answer = redis::cmd("PING")
            .query::<()>(&mut connection.connection)
            .context("Redis did not answer PING");
        if answer.is_err() {
            // A broken connection stays broken: connect again next time.
            self.connection = None;
        }
        answer
    }

    fn connect(&mut self) -> Result<&mut Connection> {
        if self.connection.is_none() {
            let timeout = Duration::from_millis(self.config.timeout_ms.max(1));
            let connection = Connection::open(&self.client, &self.config.url, timeout)?;
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("connected above"))
    }

    /// The key of a named structure of a tenant.
    fn key(&self, tenant: &str, kind: &str, name: &str) -> String {
        format!(
            "{}:{}:{kind}:{}",
            self.config.key_prefix,
            escape(tenant),
            escape(name)
        )
    }

    fn journal(&self) -> String {
        format!(
            "{}:journal:{}:{}",
            self.config.key_prefix, self.sidecar, self.batch
        )
    }

    /// The next `add` call's journal mark.
    fn add_mark(&mut self) -> String {
        self.adds += 1;
        format!("add|{}", self.adds)
    }

    /// Sends the queued writes and one script call; returns the script's answer.
    fn call(&mut self, script: Script, args: Vec<String>) -> Option<Value> {
        if self.failure.is_some() {
            return None;
        }
        let started = Instant::now();
        let result = self.round_trip(script, args);
        metrics::histogram!("minewatch_store_call_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.fail(error);
                None
            }
        }
    }

    fn round_trip(&mut self, script: Script, args: Vec<String>) -> Result<Value> {
        let queued = std::mem::take(&mut self.queued);
        let connection = self.connect()?;
        let mut pipe = redis::pipe();
        queued.add_to(&mut pipe, &connection.shas);
        pipe.cmd("EVALSHA")
            .arg(&connection.shas[script as usize])
            .arg(0)
            .arg(args);
        let mut answers: Vec<Value> = pipe.query(&mut connection.connection)?;
        answers.pop().ok_or_else(|| anyhow!("Redis sent no answer"))
    }

    fn fail(&mut self, error: anyhow::Error) {
        metrics::counter!("minewatch_store_errors_total").increment(1);
        self.connection = None;
        self.queued = Queued::default();
        self.failure = Some(error);
    }
}
