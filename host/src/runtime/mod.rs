//! Running a detector: the component in wasmtime, or the same logic natively.
//!
//! [`ComponentDetector`] owns the compiled component, a linker with the `baseline` and
//! `log` imports and nothing else (any WASI import the guest's standard library
//! declares is defined as a trap: no files, sockets, clocks or env), and one `Store`
//! per instance, run under [`GuestLimits`] (see [`limits`]). A trap poisons a `Store`,
//! so after any stopped call the instance is rebuilt from the `InstancePre` and the
//! call ends with a [`GuestStopped`] saying why. Both engines take the batch the
//! pipeline projected records into ([`PackedBatch`]): a component of the current
//! contract (`minewatch:detector@0.2.0`) gets it lowered straight from the host's
//! buffers, one of 0.1.0 gets it as a list of events (`legacy.rs`).
//! [`NativeDetector`] runs the guest crate compiled into the host, for differential
//! tests and to measure what the sandbox costs.

mod convert;
mod legacy;
pub mod limits;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use minewatch_guest::batch::PackedBatch;
use minewatch_guest::{DetectorInfo, Outcome, ValueChange};
use serde::Deserialize;
use wasmtime::component::{Component, HasSelf, Instance, InstancePre, Linker};
use wasmtime::{Engine, Store, Trap};

use crate::bindings::{DetectorWorld, baseline as wit_baseline, log as wit_log, types as wit};
use crate::store::BaselineBackend;
use convert::{empty_info, from_wit_info, from_wit_outcome};
use legacy::LegacyExports;
pub use limits::{Engines, GuestLimits, GuestStopped, StopReason};
use limits::{GuestLimiter, deadline_ticks};

/// Which build of the detection logic runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The WebAssembly component in the wasmtime sandbox.
    #[default]
    Component,
    /// The same Rust logic compiled into the host (no sandbox; for comparison).
    Native,
}

/// Says what was given instead of a component, and what to build: a file that is not
/// WebAssembly at all, or a core module (what `wasm32-wasip1` and `wasm32-unknown-unknown`
/// builds produce).
fn check_component_header(wasm: &[u8]) -> Result<()> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE_MODULE: [u8; 4] = [1, 0, 0, 0];
    if !wasm.starts_with(MAGIC) {
        anyhow::bail!(
            "not a WebAssembly file (it does not start with \\0asm): give the .wasm a \
             `cargo build --target wasm32-wasip2 --release` of the detector crate produces"
        );
    }
    if wasm.get(4..8) == Some(&CORE_MODULE[..]) {
        anyhow::bail!(
            "a core WebAssembly module, not a component: build the detector with \
             `cargo build --target wasm32-wasip2 --release` (wit-bindgen exports the \
             minewatch:detector world), or wrap a core module with `wasm-tools component new`; \
             see examples/custom-detector"
        );
    }
    Ok(())
}

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
    /// Runs one batch (projected to [`DetectorInfo::fields`]) for `tenant`.
    ///
    /// # Errors
    /// The guest was stopped (a [`GuestStopped`] says why: a trap or a broken limit);
    /// the instance has been rebuilt. The batch's baseline writes made before the stop
    /// remain: they reach only this tenant's namespace, and undoing them would need a
    /// copy of the tenant's state per batch.
    fn detect(&mut self, tenant: &str, batch: &PackedBatch) -> Result<Outcome>;
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

    fn detect(&mut self, tenant: &str, batch: &PackedBatch) -> Result<Outcome> {
        let mut store = lock(&self.store);
        Ok(self
            .detector
            .detect(batch.batch(), &mut *store.tenant(tenant)))
    }
}

/// What a component's `Store` holds: the tenant it runs for, the shared baselines, and
/// what the current call has used of its limits.
pub struct GuestState {
    /// Set by the host before each call; the guest cannot name another.
    tenant: String,
    baselines: SharedStore,
    limits: GuestLimits,
    limiter: GuestLimiter,
    /// Import calls and bytes passed to imports during the current call.
    import_calls: u64,
    import_bytes: u64,
    /// The import bound the current call broke, if any.
    broke: Option<StopReason>,
}

impl GuestState {
    fn new(baselines: SharedStore, limits: GuestLimits) -> GuestState {
        GuestState {
            tenant: String::new(),
            baselines,
            limiter: GuestLimiter::new(&limits),
            limits,
            import_calls: 0,
            import_bytes: 0,
            broke: None,
        }
    }

    /// Counts one import call passing `bytes` of strings; past a bound the call traps
    /// (and everything after it in the guest is abandoned).
    fn charge(&mut self, bytes: usize) -> wasmtime::Result<()> {
        self.import_calls += 1;
        self.import_bytes = self.import_bytes.saturating_add(bytes as u64);
        let broke = if self.import_calls > self.limits.max_import_calls {
            StopReason::ImportCalls
        } else if self.import_bytes > self.limits.max_import_bytes {
            StopReason::ImportBytes
        } else {
            return Ok(());
        };
        self.broke = Some(broke);
        Err(wasmtime::Error::msg(format!(
            "import bound broken ({broke}) after {} calls and {} bytes",
            self.import_calls, self.import_bytes
        )))
    }
}

impl wit::Host for GuestState {}

impl wit_baseline::Host for GuestState {
    fn observe(
        &mut self,
        set: String,
        forget_after: i64,
        sightings: Vec<wit_baseline::SightingRequest>,
    ) -> wasmtime::Result<Vec<wit_baseline::Observed>> {
        self.charge(set.len() + sightings.iter().map(|s| s.key.len()).sum::<usize>())?;
        let requests: Vec<(&str, i64)> =
            sightings.iter().map(|s| (s.key.as_str(), s.time)).collect();
        let mut store = lock(&self.baselines);
        Ok(store
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
            .collect())
    }

    fn add(
        &mut self,
        counter: String,
        increments: Vec<wit_baseline::Increment>,
    ) -> wasmtime::Result<Vec<u64>> {
        self.charge(counter.len() + increments.iter().map(|i| i.key.len()).sum::<usize>())?;
        let increments: Vec<(&str, i64, u64)> = increments
            .iter()
            .map(|i| (i.key.as_str(), i.bucket, i.delta))
            .collect();
        Ok(lock(&self.baselines)
            .tenant(&self.tenant)
            .add(&counter, &increments))
    }

    fn record_values(
        &mut self,
        series: String,
        changes: Vec<wit_baseline::ValueChange>,
    ) -> wasmtime::Result<()> {
        self.charge(series.len() + changes.len() * std::mem::size_of::<ValueChange>())?;
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
        Ok(())
    }

    fn histogram(
        &mut self,
        series: String,
        from: i64,
        to: i64,
    ) -> wasmtime::Result<Vec<(u64, u64)>> {
        self.charge(series.len())?;
        Ok(lock(&self.baselines)
            .tenant(&self.tenant)
            .histogram(&series, from, to))
    }
}

/// Longest guest log message passed on; the rest is cut.
const MAX_LOG_MESSAGE_BYTES: usize = 4096;

impl wit_log::Host for GuestState {
    fn emit(&mut self, level: wit_log::Level, mut message: String) -> wasmtime::Result<()> {
        self.charge(message.len())?;
        if message.len() > MAX_LOG_MESSAGE_BYTES {
            let mut end = MAX_LOG_MESSAGE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push_str(" [cut]");
        }
        let tenant = &self.tenant;
        match level {
            wit_log::Level::Debug => tracing::debug!(%tenant, "Guest: {message}"),
            wit_log::Level::Info => tracing::info!(%tenant, "Guest: {message}"),
            wit_log::Level::Warn => tracing::warn!(%tenant, "Guest: {message}"),
            wit_log::Level::Error => tracing::error!(%tenant, "Guest: {message}"),
        }
        Ok(())
    }
}

/// A component's exports, by the contract version it was built against.
enum Exports {
    /// `minewatch:detector@0.2.0`: `detect` takes a packed batch.
    Current(DetectorWorld),
    /// `minewatch:detector@0.1.0`: `detect` takes a list of events.
    Legacy(LegacyExports),
}

impl Exports {
    fn new(
        store: &mut Store<GuestState>,
        component: &Component,
        instance: &Instance,
    ) -> Result<Exports> {
        Ok(if legacy::exports_legacy(component) {
            Exports::Legacy(
                LegacyExports::new(store, instance)
                    .context("the component does not fit the minewatch detector world 0.1.0")?,
            )
        } else {
            Exports::Current(wt(DetectorWorld::new(store, instance)).context(
                "the component exports neither minewatch:detector/detector@0.2.0 nor @0.1.0",
            )?)
        })
    }

    fn describe(&self, store: &mut Store<GuestState>) -> wasmtime::Result<wit::DetectorInfo> {
        match self {
            Exports::Current(world) => world.minewatch_detector_detector().call_describe(store),
            Exports::Legacy(exports) => exports.describe(store),
        }
    }

    fn configure(
        &self,
        store: &mut Store<GuestState>,
        settings: &str,
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Exports::Current(world) => world
                .minewatch_detector_detector()
                .call_configure(store, settings),
            Exports::Legacy(exports) => exports.configure(store, settings),
        }
    }
}

/// A detector component instantiated in wasmtime.
pub struct ComponentDetector {
    pre: InstancePre<GuestState>,
    store: Store<GuestState>,
    instance: Exports,
    info: DetectorInfo,
    settings: String,
    baselines: SharedStore,
    limits: GuestLimits,
}

/// wasmtime's own error type into anyhow's, so `.context` applies.
fn wt<T>(result: wasmtime::Result<T>) -> Result<T> {
    result.map_err(anyhow::Error::from)
}

impl ComponentDetector {
    /// Compiles `wasm` on `engine` and instantiates it over `baselines`, under `limits`.
    /// A component of the current contract (`minewatch:detector@0.2.0`) or of 0.1.0 runs.
    ///
    /// # Errors
    /// The bytes are not a component, it imports something the host does not offer
    /// besides WASI, its exports fit neither contract, or `describe` trapped or broke a
    /// limit.
    pub fn new(
        engine: &Engine,
        wasm: &[u8],
        baselines: SharedStore,
        limits: GuestLimits,
    ) -> Result<ComponentDetector> {
        let started = Instant::now();
        check_component_header(wasm)?;
        let component =
            wt(Component::new(engine, wasm)).context("failed to compile the detector component")?;
        let mut linker: Linker<GuestState> = Linker::new(engine);
        wt(DetectorWorld::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |state| state,
        ))?;
        wt(legacy::add_to_linker(&mut linker))?;
        wt(linker.define_unknown_imports_as_traps(&component))
            .context("failed to stub the component's WASI imports")?;
        let pre = wt(linker.instantiate_pre(&component))
            .context("the component does not fit the minewatch detector world")?;
        let loaded = started.elapsed();
        let (store, instance) = Self::instantiate(&pre, engine, &baselines, limits)?;
        tracing::debug!(
            load_ms = loaded.as_secs_f64() * 1e3,
            instantiate_us = (started.elapsed() - loaded).as_secs_f64() * 1e6,
            "Detector component loaded and instantiated."
        );
        let mut detector = ComponentDetector {
            pre,
            store,
            instance,
            info: empty_info(),
            settings: String::new(),
            baselines,
            limits,
        };
        detector.arm();
        let describe = detector.instance.describe(&mut detector.store);
        let info = wt(describe).context("the component's describe trapped")?;
        detector.info = from_wit_info(info);
        Ok(detector)
    }

    fn instantiate(
        pre: &InstancePre<GuestState>,
        engine: &Engine,
        baselines: &SharedStore,
        limits: GuestLimits,
    ) -> Result<(Store<GuestState>, Exports)> {
        let mut store = Store::new(engine, GuestState::new(baselines.clone(), limits));
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(deadline_ticks(limits.batch_cpu_ms));
        if let Some(fuel) = limits.fuel {
            wt(store.set_fuel(fuel))?;
        }
        let instance = wt(pre.instantiate(&mut store))
            .context("failed to instantiate the detector component")?;
        let exports = Exports::new(&mut store, pre.component(), &instance)?;
        Ok((store, exports))
    }

    /// Resets the per-call budget: deadline, fuel, import counts.
    fn arm(&mut self) {
        let state = self.store.data_mut();
        state.import_calls = 0;
        state.import_bytes = 0;
        state.broke = None;
        state.limiter.refused_memory = false;
        self.store
            .set_epoch_deadline(deadline_ticks(self.limits.batch_cpu_ms));
        if let Some(fuel) = self.limits.fuel {
            // Only fails on an engine without fuel, which `Engines` never pairs with fuel limits.
            let _ = self.store.set_fuel(fuel);
        }
    }

    /// Replaces the store and instance with fresh, unconfigured ones.
    fn renew(&mut self) -> Result<()> {
        let (store, instance) =
            Self::instantiate(&self.pre, self.store.engine(), &self.baselines, self.limits)?;
        self.store = store;
        self.instance = instance;
        Ok(())
    }

    /// Replaces a stopped instance with a fresh, configured one.
    fn rebuild(&mut self) -> Result<()> {
        let started = Instant::now();
        self.renew()?;
        let settings = self.settings.clone();
        self.configure(&settings)?;
        tracing::debug!(
            elapsed_us = started.elapsed().as_secs_f64() * 1e6,
            "Detector instance rebuilt and configured."
        );
        Ok(())
    }

    /// Names the limit a failed call broke.
    fn classify(&self, error: &wasmtime::Error) -> StopReason {
        let state = self.store.data();
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => StopReason::CpuDeadline,
            Some(Trap::OutOfFuel) => StopReason::Fuel,
            _ => match state.broke {
                Some(broke) => broke,
                None if state.limiter.refused_memory => StopReason::Memory,
                None => StopReason::Trap,
            },
        }
    }

    /// Rebuilds the instance and returns why the call was stopped.
    fn stop(&mut self, reason: StopReason, detail: String) -> anyhow::Error {
        if let Err(error) = self.rebuild() {
            return error.context(format!(
                "failed to rebuild the detector after it was stopped ({reason})"
            ));
        }
        GuestStopped { reason, detail }.into()
    }
}

impl DetectorEngine for ComponentDetector {
    fn info(&self) -> &DetectorInfo {
        &self.info
    }

    fn configure(&mut self, settings: &str) -> Result<()> {
        self.arm();
        let result = self.instance.configure(&mut self.store, settings);
        match result {
            Ok(verdict) => verdict.map_err(|e| anyhow!(e))?,
            Err(error) => {
                let reason = self.classify(&error);
                // The store is poisoned; a later call needs a fresh one, configured with
                // the settings that last worked.
                self.renew()?;
                return Err(anyhow::Error::from(error)
                    .context(format!("the component's configure was stopped ({reason})")));
            }
        }
        self.settings = settings.to_string();
        Ok(())
    }

    fn detect(&mut self, tenant: &str, batch: &PackedBatch) -> Result<Outcome> {
        self.store.data_mut().tenant.clear();
        self.store.data_mut().tenant.push_str(tenant);
        self.arm();
        let result = match &self.instance {
            Exports::Current(world) => {
                let lowered = wit::Batch {
                    text: batch.text(),
                    fields: batch.fields(),
                    items: batch.items(),
                };
                world
                    .minewatch_detector_detector()
                    .call_detect(&mut self.store, lowered)
            }
            Exports::Legacy(exports) => exports.detect(&mut self.store, batch),
        };
        match result {
            Ok(outcome) if outcome.alerts.len() > self.limits.max_alerts => {
                let detail = format!(
                    "{} alerts from a batch of {} events (max_alerts {})",
                    outcome.alerts.len(),
                    batch.len(),
                    self.limits.max_alerts
                );
                Err(self.stop(StopReason::AlertLimit, detail))
            }
            Ok(outcome) => Ok(from_wit_outcome(outcome)),
            Err(error) => {
                let reason = self.classify(&error);
                let detail = format!("{:#}", anyhow::Error::from(error));
                Err(self.stop(reason, detail))
            }
        }
    }
}
