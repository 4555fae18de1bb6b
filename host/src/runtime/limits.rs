//! What a guest may use, how the host enforces it, and why a call was stopped.
//!
//! Every detector instance runs under [`GuestLimits`]: a cap on its linear memory
//! (a [`StoreLimits`] behind `Store::limiter`, wrapped so the host knows when the cap
//! was what refused a growth), a wall-clock deadline per call by epoch interruption
//! (one ticker thread per engine advances the epoch every [`EPOCH_TICK`]), optional
//! fuel, and bounds on what one `detect` call may do through its imports and return.
//! When a call breaks one of them it ends with a [`GuestStopped`] naming a
//! [`StopReason`]; the caller dead-letters the batch and the instance is rebuilt.
//!
//! Fuel needs `consume_fuel` on the engine, which slows every guest on that engine
//! (35-45% on this workload), so [`Engines`] keeps a second engine for tenants that
//! ask for fuel and creates it only when one does; everyone else keeps the cheaper
//! epoch-only code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;
use wasmtime::{Config, Engine, ResourceLimiter, StoreLimits, StoreLimitsBuilder};

/// How often the engine's epoch advances; deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// The limits of one detector instance (one tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuestLimits {
    /// Largest linear memory of the instance, in MiB.
    pub memory_mb: u64,
    /// Longest a single call (`detect`, `configure`, `describe`) may run, in
    /// milliseconds of wall-clock time, enforced by epoch interruption.
    pub batch_cpu_ms: u64,
    /// Fuel (roughly, wasm instructions) per call; off when absent. Tenants with fuel
    /// run on a separate, slower engine.
    pub fuel: Option<u64>,
    /// Most alerts one batch may return; more stops the call.
    pub max_alerts: usize,
    /// Most `baseline`/`log` import calls one call may make.
    pub max_import_calls: u64,
    /// Most bytes of names, keys and messages one call may pass to imports.
    pub max_import_bytes: u64,
}

impl Default for GuestLimits {
    fn default() -> Self {
        GuestLimits {
            memory_mb: 128,
            batch_cpu_ms: 1000,
            fuel: None,
            max_alerts: 10_000,
            max_import_calls: 10_000,
            max_import_bytes: 64 << 20,
        }
    }
}

impl GuestLimits {
    /// Checks the values serde cannot.
    ///
    /// # Errors
    /// A limit of zero (it would stop every call), named.
    pub fn check(&self) -> Result<()> {
        anyhow::ensure!(self.memory_mb > 0, "memory_mb must be at least 1");
        anyhow::ensure!(self.batch_cpu_ms > 0, "batch_cpu_ms must be at least 1");
        anyhow::ensure!(self.fuel != Some(0), "fuel must be at least 1 when set");
        anyhow::ensure!(self.max_alerts > 0, "max_alerts must be at least 1");
        anyhow::ensure!(
            self.max_import_calls > 0,
            "max_import_calls must be at least 1"
        );
        anyhow::ensure!(
            self.max_import_bytes > 0,
            "max_import_bytes must be at least 1"
        );
        Ok(())
    }

    /// The memory cap in bytes.
    fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }
}

/// Why the host stopped a guest call. The names are metric labels and dead-letter
/// reasons, so they form a small fixed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The call ran past its deadline (`batch_cpu_ms`).
    CpuDeadline,
    /// The call used up its fuel.
    Fuel,
    /// The guest tried to grow its memory past `memory_mb` and then failed.
    Memory,
    /// The guest trapped (a panic, `unreachable`, an out-of-bounds access, ...).
    Trap,
    /// The batch returned more than `max_alerts` alerts.
    AlertLimit,
    /// The call made more than `max_import_calls` import calls.
    ImportCalls,
    /// The call passed more than `max_import_bytes` to imports.
    ImportBytes,
}

impl StopReason {
    /// The label used in metrics, logs and dead-letter lines.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::CpuDeadline => "cpu_deadline",
            StopReason::Fuel => "fuel",
            StopReason::Memory => "memory",
            StopReason::Trap => "trap",
            StopReason::AlertLimit => "alert_limit",
            StopReason::ImportCalls => "import_calls",
            StopReason::ImportBytes => "import_bytes",
        }
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A guest call the host stopped; the instance has been rebuilt.
#[derive(Debug, thiserror::Error)]
#[error("the detector component was stopped ({reason}): {detail}")]
pub struct GuestStopped {
    /// Which limit, or a trap.
    pub reason: StopReason,
    /// What happened, for the log and the dead-letter line.
    pub detail: String,
}

/// [`StoreLimits`] that remembers whether it refused a memory growth, so a trap that
/// follows (Rust aborts when an allocation fails) is reported as the memory cap.
pub(crate) struct GuestLimiter {
    limits: StoreLimits,
    pub(crate) refused_memory: bool,
}

impl GuestLimiter {
    pub(crate) fn new(limits: &GuestLimits) -> GuestLimiter {
        GuestLimiter {
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes())
                .table_elements(1 << 20)
                .instances(64)
                .tables(64)
                .memories(8)
                .build(),
            refused_memory: false,
        }
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.refused_memory = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// The wasmtime engines detectors share: one with epoch interruption for everyone, and
/// one that also meters fuel, built the first time a tenant asks for fuel.
#[derive(Clone)]
pub struct Engines {
    epoch: Engine,
    fuel: Arc<Mutex<Option<Engine>>>,
}

impl Engines {
    /// The epoch engine with its ticker.
    ///
    /// # Errors
    /// wasmtime rejected the configuration.
    pub fn new() -> Result<Engines> {
        Ok(Engines {
            epoch: new_engine(false)?,
            fuel: Arc::new(Mutex::new(None)),
        })
    }

    /// The engine a guest with `limits` runs on.
    ///
    /// # Errors
    /// The fuel engine could not be built.
    pub fn for_limits(&self, limits: &GuestLimits) -> Result<Engine> {
        if limits.fuel.is_none() {
            return Ok(self.epoch.clone());
        }
        let mut fuel = self
            .fuel
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(engine) = &*fuel {
            return Ok(engine.clone());
        }
        let engine = new_engine(true)?;
        *fuel = Some(engine.clone());
        Ok(engine)
    }
}

/// An engine for detector components: the component model, epoch interruption (with a
/// ticker thread that lives as long as the engine), fuel if asked, and wasmtime's
/// on-disk cache of compiled code.
///
/// The cache is keyed by a hash of the component bytes, the engine settings and the
/// wasmtime version, so after the first start a component loads without compiling.
/// Without a usable cache directory, components are simply compiled every time.
fn new_engine(fuel: bool) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.consume_fuel(fuel);
    match wasmtime::Cache::new(wasmtime::CacheConfig::new()) {
        Ok(cache) => {
            config.cache(Some(cache));
        }
        Err(error) => {
            tracing::debug!(%error, "Compiled-code cache unavailable; compiling on every start.")
        }
    }
    let engine = Engine::new(&config)?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("minewatch-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })?;
    Ok(engine)
}

/// Epoch ticks for a deadline of `ms` milliseconds.
pub(crate) fn deadline_ticks(ms: u64) -> u64 {
    let tick = EPOCH_TICK.as_millis().max(1) as u64;
    ms.div_ceil(tick).max(1)
}
