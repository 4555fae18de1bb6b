//! minewatch: Splunk's AWS Cryptomining detections (and the same over Google Cloud and
//! Azure audit logs) as a streaming, sandboxed detector.
//!
//! The host reads audit-log records (CloudTrail, Google Cloud, Azure), drops what the
//! detector does not subscribe to, projects the rest to the fields the detector declared,
//! and runs the detector (a WebAssembly component, by default the one built from
//! `guest/` and embedded here) over batches. Baselines live host-side in a durable store,
//! per tenant.
//!
//! Layout:
//! - [`intake`]: files, directories, stdin; format sniffing; the reader thread.
//! - [`pipeline`]: subscription filter → projection → batch → detector → sinks → commit.
//! - [`runtime`]: the wasmtime component runtime (with its limits) and the native engine.
//! - [`bindings`]: the host side of the WIT world.
//! - [`store`]: the baseline stores: embedded (hashbrown maps in front of redb) and Redis.
//! - [`alert`]: native and OCSF alert formats.
//! - [`serve`]: the long-running sidecar: outputs config, a pipeline thread per tenant,
//!   routing, hot reload, shutdown.
//! - [`sources`]: network sources (HTTP, Fluent Forward).
//! - [`sinks`]: outputs (stdout, file, and spooled network outputs).
//! - [`tls`]: TLS for the sources and the network outputs (rustls).
//! - [`config`]: the TOML configuration.
//! - [`tenants`]: tenants, their limits and routing.
//! - [`dead_letter`]: the file of batches a detector was stopped on.
//! - [`fuzzing`]: the decoders of untrusted bytes behind the fuzz targets' entry points.
//! - [`summary`]: counts and the skip log.
//! - [`replay`]: one-shot replays of inputs (`run`, `baseline build`, `report`).
//! - [`progress`]: the progress bar of one-shot runs over files.
//! - [`report`]: the backtest report (HTML with charts, or JSON).
//!
//! Embedding: load a detector, wire it to baselines and outputs, feed records.
//!
//! ```
//! use minewatch::runtime::EngineKind;
//! use minewatch::intake::Location;
//! use minewatch::pipeline::{Output, Pipeline, PipelineOptions};
//! use minewatch::sinks::MemorySink;
//! use minewatch::store::BaselineStore;
//!
//! # fn main() -> anyhow::Result<()> {
//! // Baselines in memory (`BaselineStore::open(dir)` for the durable store).
//! let baselines = minewatch::share(BaselineStore::in_memory());
//! // The built-in component (or `Some(path)` to a component file), default settings.
//! let detector = minewatch::build_detector(EngineKind::Component, None, "{}", baselines.clone())?;
//! let alerts = MemorySink::default();
//! let outputs = vec![Output::alerts("memory", Box::new(alerts.clone()))];
//! let mut pipeline = Pipeline::new(detector, baselines, outputs, PipelineOptions::default())?;
//!
//! // Twenty days of one user launching in us-east-1, then a launch in a new region.
//! for day in 1..=21 {
//!     let region = if day == 21 { "ap-south-1" } else { "us-east-1" };
//!     let record = serde_json::json!({
//!         "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
//!         "eventTime": format!("2026-03-{day:02}T10:00:00Z"), "awsRegion": region,
//!         "eventID": format!("launch-{day}"),
//!         "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"},
//!         "requestParameters": {"instanceType": "t3.micro"},
//!     });
//!     pipeline.push(record, Location { source: "doc".into(), line: Some(day), record: None })?;
//! }
//! pipeline.finish()?;
//!
//! let raised = alerts.alerts();
//! assert_eq!(raised.len(), 1);
//! assert_eq!(raised[0]["detection"], "ec2-unseen-region");
//! assert_eq!(raised[0]["key"], "ap-south-1");
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod alert;
pub mod bindings;
pub mod config;
pub mod dead_letter;
pub mod fuzzing;
pub mod incidents;
pub mod intake;
pub mod pipeline;
pub mod progress;
pub mod replay;
pub mod report;
pub mod runtime;
pub mod serve;
pub mod sinks;
pub mod sources;
pub mod store;
pub mod summary;
pub mod tenants;
pub mod test_hook;
pub mod tls;

include!(concat!(env!("OUT_DIR"), "/gen.rs"));

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use runtime::EngineKind;
use runtime::{
    ComponentDetector, DetectorEngine, Engines, GuestLimits, NativeDetector, SharedStore,
};
use store::BaselineBackend;

/// Wraps a store (the embedded [`store::BaselineStore`] or [`store::redis::RedisStore`])
/// for sharing with detectors.
pub fn share(store: impl BaselineBackend + 'static) -> SharedStore {
    Arc::new(Mutex::new(store))
}

/// Builds and configures a detector: the built-in component, a component file, or the
/// native build, on a fresh engine with the default [`GuestLimits`].
///
/// # Errors
/// The component cannot be read, compiled or instantiated, or rejected the settings.
pub fn build_detector(
    engine: EngineKind,
    component: Option<&Path>,
    settings: &str,
    baselines: SharedStore,
) -> Result<Box<dyn DetectorEngine>> {
    let spec = DetectorSpec {
        engine,
        component,
        settings,
        limits: GuestLimits::default(),
    };
    build_limited_detector(&Engines::new()?, &spec, baselines)
}

/// What to run for one tenant: which build, which component, its settings and limits.
#[derive(Debug, Clone, Copy)]
pub struct DetectorSpec<'a> {
    /// The component (sandboxed) or the native build.
    pub engine: EngineKind,
    /// A component file; the built-in component when absent.
    pub component: Option<&'a Path>,
    /// Settings as a JSON object.
    pub settings: &'a str,
    /// The sandbox limits (ignored by the native build, which has none).
    pub limits: GuestLimits,
}

/// Builds and configures a detector on shared `engines`.
///
/// # Errors
/// The component cannot be read, compiled or instantiated, or rejected the settings.
pub fn build_limited_detector(
    engines: &Engines,
    spec: &DetectorSpec<'_>,
    baselines: SharedStore,
) -> Result<Box<dyn DetectorEngine>> {
    spec.limits.check()?;
    let mut detector: Box<dyn DetectorEngine> = match (spec.engine, spec.component) {
        (EngineKind::Native, None) => Box::new(NativeDetector::new(baselines)),
        (EngineKind::Native, Some(_)) => {
            anyhow::bail!("--engine native runs the built-in detections only; drop --component")
        }
        (EngineKind::Component, None) => Box::new(ComponentDetector::new(
            &engines.for_limits(&spec.limits)?,
            GUEST_COMPONENT,
            baselines,
            spec.limits,
        )?),
        (EngineKind::Component, Some(path)) => {
            let wasm = std::fs::read(path)
                .with_context(|| format!("failed to read component {}", path.display()))?;
            Box::new(
                ComponentDetector::new(
                    &engines.for_limits(&spec.limits)?,
                    &wasm,
                    baselines,
                    spec.limits,
                )
                .with_context(|| format!("failed to load component {}", path.display()))?,
            )
        }
    };
    // The detector names the setting (its path in the table); the table is [detector].
    detector
        .configure(spec.settings)
        .map_err(|error| anyhow::anyhow!("detector.{error:#}"))?;
    Ok(detector)
}
