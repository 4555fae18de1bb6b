//! Running a detector: the component in wasmtime, or the same logic natively.
//!
//! [`ComponentDetector`] owns the wasmtime `Engine`, the compiled component, a linker
//! with the `baseline` and `log` imports and nothing else (any WASI import the guest's
//! standard library declares is defined as a trap: no files, sockets, clocks or env),
//! and one `Store` per instance. A trap poisons a `Store`, so after one the instance is
//! rebuilt from the `InstancePre` and the batch is reported as failed.
//! [`NativeDetector`] runs the guest crate compiled into the host, for differential
//! tests and to measure what the sandbox costs.

use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result, anyhow, bail};
use minewatch_guest::{
    Alert, Detection, DetectorInfo, Event, EventSummary, Evidence, Field, Outcome, RateEvidence,
    Severity, Sighting, Skip, Subscription, UnseenEvidence, ValueChange,
};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Config, Engine, Store};

use crate::bindings::{DetectorWorld, baseline as wit_baseline, log as wit_log, types as wit};
use crate::store::BaselineBackend;

/// The baseline store shared by the host and the detectors it runs.
pub type SharedStore = Arc<Mutex<dyn BaselineBackend>>;

/// Locks a shared store; a poisoned lock still holds consistent maps (every
/// mutation completes before any call that could panic), so it is taken over.
pub fn lock(store: &SharedStore) -> MutexGuard<'_, dyn BaselineBackend + 'static> {
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Something that runs detections over batches of projected events.
pub trait DetectorEngine: Send {
    /// The catalogue, subscription and projection.
    fn info(&self) -> &DetectorInfo;
    /// Applies settings (JSON).
    ///
    /// # Errors
    /// The detector rejected them; the message names the setting.
    fn configure(&mut self, settings: &str) -> Result<()>;
    /// Runs one batch for `tenant`.
    ///
    /// # Errors
    /// The guest trapped; the instance has been rebuilt and the batch's effects on the
    /// baselines up to the trap remain.
    fn detect(&mut self, tenant: &str, events: Vec<Event>) -> Result<Outcome>;
}

/// The detection logic compiled into the host.
pub struct NativeDetector {
    info: DetectorInfo,
    detector: minewatch_guest::Detector,
    store: SharedStore,
}

impl NativeDetector {
    /// A native detector with default settings over `store`.
    pub fn new(store: SharedStore) -> NativeDetector {
        NativeDetector {
            info: minewatch_guest::Detector::describe(),
            detector: minewatch_guest::Detector::default(),
            store,
        }
    }
}

impl DetectorEngine for NativeDetector {
    fn info(&self) -> &DetectorInfo {
        &self.info
    }

    fn configure(&mut self, settings: &str) -> Result<()> {
        self.detector.configure(settings).map_err(|e| anyhow!(e))
    }

    fn detect(&mut self, tenant: &str, events: Vec<Event>) -> Result<Outcome> {
        let mut store = lock(&self.store);
        Ok(self.detector.detect(&events, &mut *store.tenant(tenant)))
    }
}

/// What a component's `Store` holds: the tenant it runs for and the shared baselines.
pub struct GuestState {
    tenant: String,
    baselines: SharedStore,
}

impl wit::Host for GuestState {}

impl wit_baseline::Host for GuestState {
    fn observe(
        &mut self,
        set: String,
        forget_after: i64,
        sightings: Vec<wit_baseline::SightingRequest>,
    ) -> Vec<wit_baseline::Observed> {
        let requests: Vec<(&str, i64)> =
            sightings.iter().map(|s| (s.key.as_str(), s.time)).collect();
        let mut store = lock(&self.baselines);
        store
            .tenant(&self.tenant)
            .observe(&set, forget_after, &requests)
            .into_iter()
            .map(|o| wit_baseline::Observed {
                previous: o.previous.map(|p| wit::Sighting {
                    first_seen: p.first_seen,
                    last_seen: p.last_seen,
                    count: p.count,
                }),
                is_new: o.is_new,
                set_size: o.set_size,
                learning_start: o.learning_start,
            })
            .collect()
    }

    fn add(&mut self, counter: String, increments: Vec<wit_baseline::Increment>) -> Vec<u64> {
        let increments: Vec<(&str, i64, u64)> = increments
            .iter()
            .map(|i| (i.key.as_str(), i.bucket, i.delta))
            .collect();
        lock(&self.baselines)
            .tenant(&self.tenant)
            .add(&counter, &increments)
    }

    fn record_values(&mut self, series: String, changes: Vec<wit_baseline::ValueChange>) {
        let changes: Vec<ValueChange> = changes
            .iter()
            .map(|c| ValueChange {
                bucket: c.bucket,
                previous: c.previous,
                current: c.current,
            })
            .collect();
        lock(&self.baselines)
            .tenant(&self.tenant)
            .record_values(&series, &changes);
    }

    fn histogram(&mut self, series: String, from: i64, to: i64) -> Vec<(u64, u64)> {
        lock(&self.baselines)
            .tenant(&self.tenant)
            .histogram(&series, from, to)
    }
}

impl wit_log::Host for GuestState {
    fn emit(&mut self, level: wit_log::Level, message: String) {
        let tenant = &self.tenant;
        match level {
            wit_log::Level::Debug => tracing::debug!(%tenant, "Guest: {message}"),
            wit_log::Level::Info => tracing::info!(%tenant, "Guest: {message}"),
            wit_log::Level::Warn => tracing::warn!(%tenant, "Guest: {message}"),
            wit_log::Level::Error => tracing::error!(%tenant, "Guest: {message}"),
        }
    }
}

/// A detector component instantiated in wasmtime.
pub struct ComponentDetector {
    pre: InstancePre<GuestState>,
    store: Store<GuestState>,
    instance: DetectorWorld,
    info: DetectorInfo,
    settings: String,
    baselines: SharedStore,
}

/// A wasmtime engine set up for detector components.
///
/// Compiled code is cached on disk by wasmtime (in the user's cache directory, keyed by
/// the component's hash, the engine settings and the wasmtime version), so after the
/// first start a component loads in about a millisecond instead of being compiled again.
/// Without a usable cache directory, components are simply compiled every time.
pub fn engine() -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    match wasmtime::Cache::new(wasmtime::CacheConfig::new()) {
        Ok(cache) => {
            config.cache(Some(cache));
        }
        Err(error) => {
            tracing::debug!(%error, "Compiled-code cache unavailable; compiling on every start.")
        }
    }
    Ok(Engine::new(&config)?)
}

/// wasmtime's own error type into anyhow's, so `.context` applies.
fn wt<T>(result: wasmtime::Result<T>) -> Result<T> {
    result.map_err(anyhow::Error::from)
}

impl ComponentDetector {
    /// Compiles `wasm` and instantiates it over `baselines`.
    ///
    /// # Errors
    /// The bytes are not a component, it imports something the host does not offer
    /// besides WASI, or `describe` trapped.
    pub fn new(engine: &Engine, wasm: &[u8], baselines: SharedStore) -> Result<ComponentDetector> {
        if wasm.is_empty() {
            bail!("{}", crate::GUEST_BUILD_ERROR);
        }
        let component =
            wt(Component::new(engine, wasm)).context("failed to compile the detector component")?;
        let mut linker: Linker<GuestState> = Linker::new(engine);
        wt(DetectorWorld::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |state| state,
        ))?;
        wt(linker.define_unknown_imports_as_traps(&component))
            .context("failed to stub the component's WASI imports")?;
        let pre = wt(linker.instantiate_pre(&component))
            .context("the component does not fit the minewatch detector world")?;
        let (store, instance) = Self::instantiate(&pre, engine, &baselines)?;
        let mut detector = ComponentDetector {
            pre,
            store,
            instance,
            info: empty_info(),
            settings: String::new(),
            baselines,
        };
        let describe = detector
            .instance
            .minewatch_detector_detector()
            .call_describe(&mut detector.store);
        let info = wt(describe).context("the component's describe trapped")?;
        detector.info = from_wit_info(info);
        Ok(detector)
    }

    fn instantiate(
        pre: &InstancePre<GuestState>,
        engine: &Engine,
        baselines: &SharedStore,
    ) -> Result<(Store<GuestState>, DetectorWorld)> {
        let mut store = Store::new(
            engine,
            GuestState {
                tenant: String::new(),
                baselines: baselines.clone(),
            },
        );
        let instance = wt(pre.instantiate(&mut store))
            .context("failed to instantiate the detector component")?;
        let instance = wt(DetectorWorld::new(&mut store, &instance))?;
        Ok((store, instance))
    }

    /// Replaces a trapped instance with a fresh, configured one.
    fn rebuild(&mut self) -> Result<()> {
        let (store, instance) = Self::instantiate(&self.pre, self.store.engine(), &self.baselines)?;
        self.store = store;
        self.instance = instance;
        let settings = self.settings.clone();
        self.configure(&settings)
    }
}

impl DetectorEngine for ComponentDetector {
    fn info(&self) -> &DetectorInfo {
        &self.info
    }

    fn configure(&mut self, settings: &str) -> Result<()> {
        let result = self
            .instance
            .minewatch_detector_detector()
            .call_configure(&mut self.store, settings);
        wt(result)
            .context("the component's configure trapped")?
            .map_err(|e| anyhow!(e))?;
        self.settings = settings.to_string();
        Ok(())
    }

    fn detect(&mut self, tenant: &str, events: Vec<Event>) -> Result<Outcome> {
        self.store.data_mut().tenant.clear();
        self.store.data_mut().tenant.push_str(tenant);
        let events: Vec<wit::Event> = events
            .into_iter()
            .map(|e| wit::Event {
                fields: e.fields.into_iter().map(to_wit_field).collect(),
            })
            .collect();
        match self
            .instance
            .minewatch_detector_detector()
            .call_detect(&mut self.store, &events)
        {
            Ok(outcome) => Ok(from_wit_outcome(outcome)),
            Err(trap) => {
                self.rebuild()
                    .context("failed to rebuild the detector after a trap")?;
                Err(anyhow::Error::from(trap).context("the detector component trapped"))
            }
        }
    }
}

fn empty_info() -> DetectorInfo {
    DetectorInfo {
        name: String::new(),
        version: String::new(),
        detections: Vec::new(),
        subscriptions: Vec::new(),
        fields: Vec::new(),
        default_settings: String::new(),
    }
}

fn to_wit_field(field: Field) -> wit::Field {
    match field {
        Field::Absent => wit::Field::Absent,
        Field::Text(s) => wit::Field::Text(s),
        Field::Texts(v) => wit::Field::Texts(v),
        Field::Other(s) => wit::Field::Other(s),
    }
}

fn from_wit_info(info: wit::DetectorInfo) -> DetectorInfo {
    DetectorInfo {
        name: info.name,
        version: info.version,
        detections: info
            .detections
            .into_iter()
            .map(|d| Detection {
                slug: d.slug,
                splunk_id: d.splunk_id,
                name: d.name,
                description: d.description,
                severity: match d.severity {
                    wit::Severity::Informational => Severity::Informational,
                    wit::Severity::Low => Severity::Low,
                    wit::Severity::Medium => Severity::Medium,
                    wit::Severity::High => Severity::High,
                    wit::Severity::Critical => Severity::Critical,
                },
                risk_score: d.risk_score,
                mitre_attack: d.mitre_attack,
            })
            .collect(),
        subscriptions: info
            .subscriptions
            .into_iter()
            .map(|s| Subscription {
                event_source: s.event_source,
                event_names: s.event_names,
            })
            .collect(),
        fields: info.fields,
        default_settings: info.default_settings,
    }
}

fn from_wit_sighting(s: wit::Sighting) -> Sighting {
    Sighting {
        first_seen: s.first_seen,
        last_seen: s.last_seen,
        count: s.count,
    }
}

fn from_wit_outcome(outcome: wit::Outcome) -> Outcome {
    Outcome {
        alerts: outcome
            .alerts
            .into_iter()
            .map(|a| Alert {
                detection: a.detection,
                event_index: a.event_index,
                key: a.key,
                message: a.message,
                time: a.time,
                event: EventSummary {
                    event_id: a.event.event_id,
                    event_name: a.event.event_name,
                    principal: a.event.principal,
                    arn: a.event.arn,
                    account: a.event.account,
                    region: a.event.region,
                    source_ip: a.event.source_ip,
                    user_agent: a.event.user_agent,
                    instance_ids: a.event.instance_ids,
                    instance_type: a.event.instance_type,
                    image_ids: a.event.image_ids,
                },
                evidence: match a.evidence {
                    wit::Evidence::Unseen(u) => Evidence::Unseen(UnseenEvidence {
                        baseline: u.baseline,
                        baseline_size: u.baseline_size,
                        learning_start: u.learning_start,
                        previous: u.previous.map(from_wit_sighting),
                    }),
                    wit::Evidence::Rate(r) => Evidence::Rate(RateEvidence {
                        window_start: r.window_start,
                        count: r.count,
                        history_windows: r.history_windows,
                        mean: r.mean,
                        stdev: r.stdev,
                        threshold: r.threshold,
                        tail_probability: r.tail_probability,
                        method: r.method,
                    }),
                },
            })
            .collect(),
        skipped: outcome
            .skipped
            .into_iter()
            .map(|s| Skip {
                event_index: s.event_index,
                reason: s.reason,
                detail: s.detail,
            })
            .collect(),
        failed_calls: outcome.failed_calls,
    }
}
