//! minewatch: Splunk's AWS Cryptomining detections as a streaming, sandboxed detector.
//!
//! The host reads CloudTrail records, drops what the detector does not subscribe to,
//! projects the rest to the fields the detector declared, and runs the detector (a
//! WebAssembly component, by default the one built from `guest/` and embedded here)
//! over batches. Baselines live host-side in a durable store, per tenant.
//!
//! Layout:
//! - [`intake`]: files, directories, stdin; format sniffing; the reader thread.
//! - [`pipeline`]: subscription filter → projection → batch → detector → sinks → commit.
//! - [`runtime`]: the wasmtime component runtime and the native engine.
//! - [`bindings`]: the host side of the WIT world.
//! - [`store`]: the baseline store (hashbrown maps in front of redb).
//! - [`alert`]: native and OCSF alert formats.
//! - [`serve`]: the long-running sidecar: outputs config, the pipeline thread, shutdown.
//! - [`sources`]: network sources (HTTP, Fluent Forward).
//! - [`sinks`]: outputs (stdout, file, and spooled network outputs).
//! - [`config`]: the TOML configuration.
//! - [`summary`]: counts and the skip log.
//! - [`scenario`]: the realistic CloudTrail scenario generator used by tests, benches and demos.
#![deny(missing_docs)]

pub mod alert;
pub mod bindings;
pub mod config;
pub mod intake;
pub mod pipeline;
pub mod runtime;
pub mod scenario;
pub mod serve;
pub mod sinks;
pub mod sources;
pub mod store;
pub mod summary;

include!(concat!(env!("OUT_DIR"), "/gen.rs"));

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use config::EngineKind;
use runtime::{ComponentDetector, DetectorEngine, NativeDetector, SharedStore};
use store::BaselineStore;

/// Wraps a store for sharing with detectors.
pub fn share(store: BaselineStore) -> SharedStore {
    Arc::new(Mutex::new(store))
}

/// Builds and configures a detector: the built-in component, a component file, or the
/// native build.
///
/// # Errors
/// The component cannot be read, compiled or instantiated, or rejected the settings.
pub fn build_detector(
    engine: EngineKind,
    component: Option<&Path>,
    settings: &str,
    baselines: SharedStore,
) -> Result<Box<dyn DetectorEngine>> {
    let mut detector: Box<dyn DetectorEngine> = match (engine, component) {
        (EngineKind::Native, None) => Box::new(NativeDetector::new(baselines)),
        (EngineKind::Native, Some(_)) => {
            anyhow::bail!("--engine native runs the built-in detections only; drop --component")
        }
        (EngineKind::Component, None) => Box::new(ComponentDetector::new(
            &runtime::engine()?,
            GUEST_COMPONENT,
            baselines,
        )?),
        (EngineKind::Component, Some(path)) => {
            let wasm = std::fs::read(path)
                .with_context(|| format!("failed to read component {}", path.display()))?;
            Box::new(
                ComponentDetector::new(&runtime::engine()?, &wasm, baselines)
                    .with_context(|| format!("failed to load component {}", path.display()))?,
            )
        }
    };
    detector
        .configure(settings)
        .context("invalid detector settings")?;
    Ok(detector)
}
