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
//! [`take_failure`](BaselineBackend::take_failure) tells the host, which runs the batch
//! again later. A batch journal (`<prefix>:journal:<sidecar>:<batch>`, expiring after a
//! day, deleted at commit) makes that replay exact: keys the failed attempt claimed as
//! new are answered new again, and counter and histogram calls it already applied are
//! not applied twice.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use hashbrown::HashMap;
use minewatch_guest::baseline::{apply_sighting, apply_value_change, merge_histograms};
use minewatch_guest::{Baseline, Observed, Sighting, Timestamp, ValueChange};
use redis::Value;
use serde::Deserialize;

use super::{BaselineBackend, Episode};

/// How many scripts [`Script`] names.
const SCRIPTS: usize = 7;

/// Keys cached across all sets before the cache is emptied.
const CACHE_LIMIT: usize = 1 << 20;

/// How to reach Redis (`[store]` in the config).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db` (Redis 7 or Valkey), or `rediss://...` for
    /// TLS (rustls; the server's certificate is verified against the system trust store
    /// or `ca_file`, by the URL's host name).
    pub url: String,
    /// First part of every key, so several deployments can share one server.
    pub key_prefix: String,
    /// Longest wait for a connection or an answer before the call counts as failed.
    pub timeout_ms: u64,
    /// PEM CA certificates that sign the server's certificate, trusted instead of the
    /// system trust store; `rediss://` only.
    pub ca_file: Option<std::path::PathBuf>,
    /// PEM client certificate chain, for a server with `tls-auth-clients yes`; needs
    /// `tls_key`; `rediss://` only.
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of `tls_cert` (PKCS #8, PKCS #1 or SEC1, unencrypted).
    pub tls_key: Option<std::path::PathBuf>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/0".into(),
            key_prefix: "minewatch".into(),
            timeout_ms: 2000,
            ca_file: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// The client for `config`: plain, or TLS for `rediss://` with the CA and client
/// certificate files (checked here, so a bad file is an error now, not at connection).
fn client(config: &RedisConfig) -> Result<redis::Client> {
    let invalid = || format!("invalid Redis URL {}", config.url);
    let tls = crate::tls::client::ClientTls {
        ca_file: config.ca_file.clone(),
        verify: true,
        cert: config.tls_cert.clone(),
        key: config.tls_key.clone(),
    };
    if !config.url.starts_with("rediss://") {
        anyhow::ensure!(
            !tls.any_set(),
            "[store.redis] ca_file, tls_cert and tls_key need a rediss:// URL"
        );
        return redis::Client::open(config.url.as_str()).with_context(invalid);
    }
    // The Redis client asks rustls for the process's default provider.
    crate::tls::provider();
    tls.findings().context("[store.redis]")?;
    if tls.ca_file.is_none() && tls.cert.is_none() {
        return redis::Client::open(config.url.as_str()).with_context(invalid);
    }
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))
    };
    let client_tls = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert)?,
            client_key: read(key)?,
        }),
        _ => None,
    };
    let root_cert = tls.ca_file.as_deref().map(read).transpose()?;
    redis::Client::build_with_tls(
        config.url.as_str(),
        redis::TlsCertificates {
            client_tls,
            root_cert,
        },
    )
    .with_context(invalid)
}

/// The Lua scripts, loaded once per connection and called by their SHA-1.
#[derive(Clone, Copy)]
enum Script {
    Observe,
    Add,
    Record,
    Buckets,
    Touch,
    Keys,
    Episode,
}

impl Script {
    const ALL: [Script; SCRIPTS] = [
        Script::Observe,
        Script::Add,
        Script::Record,
        Script::Buckets,
        Script::Touch,
        Script::Keys,
        Script::Episode,
    ];

    fn source(self) -> &'static str {
        match self {
            Script::Observe => include_str!("redis/observe.lua"),
            Script::Add => include_str!("redis/add.lua"),
            Script::Record => include_str!("redis/record.lua"),
            Script::Buckets => include_str!("redis/buckets.lua"),
            Script::Touch => include_str!("redis/touch.lua"),
            Script::Keys => include_str!("redis/keys.lua"),
            Script::Episode => include_str!("redis/episode.lua"),
        }
    }
}

/// A live connection with the scripts loaded.
struct Connection {
    connection: redis::Connection,
    shas: [String; SCRIPTS],
}

/// Sightings of one cached key folded together: earliest, latest, how many.
type Touch = (Timestamp, Timestamp, u64);

/// Writes that wait for the next round trip, folded: one touch per set and key, one
/// histogram call per series.
#[derive(Default)]
struct Queued {
    /// Set key → forget window and, per key, (earliest, latest, sightings).
    touches: HashMap<String, (i64, HashMap<Box<str>, Touch>)>,
    /// Series key → journal and the changes' arguments (mark, bucket, previous,
    /// current), in order.
    records: HashMap<String, (String, Vec<String>)>,
}

impl Queued {
    fn is_empty(&self) -> bool {
        self.touches.is_empty() && self.records.is_empty()
    }

    /// The queued writes as script calls on `pipe`, answers ignored.
    fn add_to(&self, pipe: &mut redis::Pipeline, shas: &[String; SCRIPTS]) {
        for (set, (forget, keys)) in &self.touches {
            let call = pipe
                .cmd("EVALSHA")
                .arg(&shas[Script::Touch as usize])
                .arg(0)
                .arg(set)
                .arg(forget);
            for (key, (earliest, latest, count)) in keys {
                call.arg(&**key).arg(earliest).arg(latest).arg(count);
            }
            call.ignore();
        }
        for (series, (journal, changes)) in &self.records {
            pipe.cmd("EVALSHA")
                .arg(&shas[Script::Record as usize])
                .arg(0)
                .arg(series)
                .arg(journal)
                .arg(changes)
                .ignore();
        }
    }
}

/// What this process knows of one first-seen set.
#[derive(Default)]
struct CachedSet {
    keys: HashMap<Box<str>, Sighting>,
    set_size: u64,
    learning_start: Option<Timestamp>,
}

/// A series' buckets read in this batch: `lo..=hi` as of the read, plus this batch's
/// own changes.
struct CachedSeries {
    lo: Timestamp,
    hi: Timestamp,
    buckets: BTreeMap<Timestamp, BTreeMap<u64, u64>>,
}

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
        let client = client(&config)?;
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
            let mut connection = self
                .client
                .get_connection_with_timeout(timeout)
                .with_context(|| format!("cannot connect to Redis at {}", self.config.url))?;
            connection.set_read_timeout(Some(timeout))?;
            connection.set_write_timeout(Some(timeout))?;
            let mut shas: [String; SCRIPTS] = Default::default();
            for (sha, script) in shas.iter_mut().zip(Script::ALL) {
                *sha = redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(script.source())
                    .query(&mut connection)
                    .context("Redis refused to load a script")?;
            }
            tracing::info!(url = %self.config.url, "Connected to Redis.");
            self.connection = Some(Connection { connection, shas });
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

    fn observe(
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

    /// Caches keys Redis reported known: a key seen twice is likely seen again, while a
    /// key seen once (an event id in a dedup set) would only crowd the cache.
    fn remember(&mut self, key: String, sightings: &[(&str, Timestamp)], observed: &[Observed]) {
        if self.cached_keys >= CACHE_LIMIT {
            self.cache.clear();
            self.cached_keys = 0;
        }
        let cached = self.cache.entry(key).or_default();
        for (&(k, time), o) in sightings.iter().zip(observed) {
            cached.set_size = o.set_size + u64::from(o.is_new);
            cached.learning_start = Some(o.learning_start);
            if let Some(previous) = o.previous.filter(|_| !o.is_new) {
                let next = apply_sighting(Some(previous), time, i64::MAX).0;
                if cached.keys.insert(k.into(), next).is_none() {
                    self.cached_keys += 1;
                }
            }
        }
    }

    fn add(
        &mut self,
        tenant: &str,
        counter: &str,
        increments: &[(&str, Timestamp, u64)],
    ) -> Vec<u64> {
        let mut args = vec![
            self.key(tenant, "counter", counter),
            self.journal(),
            self.add_mark(),
        ];
        for (key, bucket, delta) in increments {
            args.extend([(*key).to_string(), bucket.to_string(), delta.to_string()]);
        }
        let conservative = || increments.iter().map(|(_, _, d)| *d).collect();
        let Some(answer) = self.call(Script::Add, args) else {
            return conservative();
        };
        match redis::from_redis_value::<Vec<u64>>(answer) {
            Ok(values) if values.len() == increments.len() => values,
            Ok(_) => {
                self.fail(anyhow!(
                    "Redis answered a counter call with the wrong count"
                ));
                conservative()
            }
            Err(error) => {
                self.fail(error.into());
                conservative()
            }
        }
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

    fn episode(
        &mut self,
        tenant: &str,
        set: &str,
        key: &str,
        time: Timestamp,
        window: i64,
    ) -> Episode {
        let args = vec![
            self.key(tenant, "set", set),
            key.to_string(),
            time.to_string(),
            window.to_string(),
            self.journal(),
            self.attempt.to_string(),
        ];
        // Unanswered, nothing started: the batch is run again.
        let conservative = Episode {
            generation: 0,
            start: time,
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

    fn record_values(&mut self, tenant: &str, series: &str, changes: &[ValueChange]) {
        if self.failure.is_some() {
            return;
        }
        let key = self.key(tenant, "series", series);
        if let Some(cached) = self.series.get_mut(&key) {
            for c in changes
                .iter()
                .filter(|c| (cached.lo..=cached.hi).contains(&c.bucket))
            {
                let histogram = cached.buckets.entry(c.bucket).or_default();
                apply_value_change(histogram, c);
            }
        }
        // Marks count calls, not queued groups: where a group is cut depends on the
        // cache, which a rerun of the batch may find warmer.
        self.records += 1;
        let (mark, journal) = (format!("record|{}", self.records), self.journal());
        let (_, args) = self
            .queued
            .records
            .entry(key)
            .or_insert_with(|| (journal, Vec::new()));
        for c in changes {
            args.extend([
                mark.clone(),
                c.bucket.to_string(),
                c.previous.to_string(),
                c.current.to_string(),
            ]);
        }
    }

    /// Merges a series' buckets `from..=to`. The first read of a series in a batch
    /// fetches its buckets (one round trip); later reads of the batch are answered from
    /// them with the batch's own changes applied, so history reflects other sidecars
    /// as of the start of the batch. Counters, which decide crossings, are always exact.
    fn histogram(
        &mut self,
        tenant: &str,
        series: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<(u64, u64)> {
        if from > to {
            return Vec::new();
        }
        let key = self.key(tenant, "series", series);
        let covered = self
            .series
            .get(&key)
            .is_some_and(|c| c.lo <= from && to <= c.hi);
        if !covered {
            let (lo, hi) = match self.series.get(&key) {
                Some(c) => (c.lo.min(from), c.hi.max(to)),
                None => (from, to),
            };
            let args = vec![key.clone(), lo.to_string(), hi.to_string()];
            let Some(answer) = self.call(Script::Buckets, args) else {
                return Vec::new();
            };
            match redis::from_redis_value::<Vec<(Timestamp, Vec<(u64, u64)>)>>(answer) {
                Ok(buckets) => {
                    let buckets = buckets
                        .into_iter()
                        .map(|(bucket, values)| (bucket, values.into_iter().collect()))
                        .collect();
                    self.series
                        .insert(key.clone(), CachedSeries { lo, hi, buckets });
                }
                Err(error) => {
                    self.fail(error.into());
                    return Vec::new();
                }
            }
        }
        let cached = &self.series[&key];
        merge_histograms(&cached.buckets, from, to)
    }
}

impl RedisStore {
    /// Reads every tenant's baselines (or `tenant`'s) out of Redis into an in-memory
    /// embedded store, for `baseline export` (and so for moving a fleet's baselines to an
    /// embedded store, or seeding the Fluent Bit plugin). Batch journals are skipped.
    ///
    /// # Errors
    /// Redis cannot be reached, or holds a value under minewatch's keys it did not write.
    pub fn snapshot(&mut self, tenant: Option<&str>) -> Result<super::BaselineStore> {
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
        let mut store = super::BaselineStore::in_memory();
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
        RedisStore::keys(self, tenant, set)
    }

    fn episode(
        &mut self,
        tenant: &str,
        set: &str,
        key: &str,
        time: Timestamp,
        window: i64,
    ) -> Episode {
        RedisStore::episode(self, tenant, set, key, time, window)
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

/// Percent-encodes the characters that structure keys and journal marks.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            '|' => out.push_str("%7C"),
            c => out.push(c),
        }
    }
    out
}

/// Undoes [`escape`].
fn unescape(name: &str) -> String {
    name.replace("%3A", ":")
        .replace("%7C", "|")
        .replace("%25", "%")
}

/// Escapes the characters SCAN's glob pattern gives a meaning.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
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

/// `first,last,count`, or nothing for "".
fn parse_sighting(text: &str) -> Result<Option<Sighting>> {
    if text.is_empty() {
        return Ok(None);
    }
    let mut parts = text.split(',');
    let mut next = || {
        parts
            .next()
            .ok_or_else(|| anyhow!("malformed sighting {text:?} in Redis"))
    };
    Ok(Some(Sighting {
        first_seen: next()?.parse()?,
        last_seen: next()?.parse()?,
        count: next()?.parse()?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_forge_another_tenants_keys() {
        let store = RedisStore::new(RedisConfig::default()).unwrap();
        let forged = store.key("a", "set", "x:b:set:y");
        let other = store.key("a:set:x", "set", "b:set:y");
        assert_ne!(forged, other);
        assert_eq!(forged, "minewatch:a:set:x%3Ab%3Aset%3Ay");
        assert_eq!(escape("50%|"), "50%25%7C");
        for name in ["x:b:set:y", "50%3A|", "%%:"] {
            assert_eq!(unescape(&escape(name)), name);
        }
    }

    #[test]
    fn tls_files_need_a_rediss_url_and_must_load() {
        let plain = RedisConfig {
            ca_file: Some("ca.pem".into()),
            ..RedisConfig::default()
        };
        let error = format!("{:#}", RedisStore::new(plain).unwrap_err());
        assert!(error.contains("need a rediss:// URL"), "{error}");
        let missing = RedisConfig {
            url: "rediss://redis.internal:6380/0".into(),
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..RedisConfig::default()
        };
        let error = format!("{:#}", RedisStore::new(missing).unwrap_err());
        assert!(
            error.contains("[store.redis]") && error.contains("ca_file /nonexistent/ca.pem"),
            "{error}"
        );
    }

    #[test]
    fn sightings_round_trip_through_their_text() {
        assert_eq!(parse_sighting("").unwrap(), None);
        assert_eq!(
            parse_sighting("-5,1700000000000,3").unwrap(),
            Some(Sighting {
                first_seen: -5,
                last_seen: 1_700_000_000_000,
                count: 3
            })
        );
        assert!(parse_sighting("1,2").is_err());
    }
}
