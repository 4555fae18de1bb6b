//! The cryptomining detections of minewatch (AWS, Google Cloud, Azure), as plain Rust.
//!
//! This crate compiles twice: to the `wasm32-wasip2` component the host embeds (with
//! `bindings.rs` binding it to the WIT world in `../wit`; feature `component`, on by
//! default), and natively, so the host can run the very same logic outside the sandbox
//! (differential tests, benchmarks). The Fluent Bit plugin (`guest/fluent-bit/`) builds it a
//! third way: into a core wasm module, without the WIT edge.
//!
//! Layout:
//! - [`model`]: domain types mirroring the WIT types.
//! - [`catalog`]: the detections (six kinds in three clouds) and their Splunk ids.
//! - [`settings`]: what `configure` accepts.
//! - [`audit`]: which fields of CloudTrail, Google Cloud and Azure audit logs are read
//!   and what they mean.
//! - [`rules`]: the unseen-value and launch-rate rules.
//! - [`detector`]: runs the rules over a batch.
//! - [`batch`]: a batch as the rules read it: owned events, or the packed form of the
//!   `0.2.0` contract.
//! - [`baseline`]: the host-side state operations the rules need.
//! - [`projection`]: the field projection hosts apply before calling the detector.
//! - [`render`]: the native alert format hosts emit.
#![deny(missing_docs)]

pub mod audit;
pub mod baseline;
pub mod batch;
pub mod catalog;
pub mod detector;
pub mod export;
pub mod model;
pub mod projection;
pub mod render;
pub mod rules;
pub mod settings;
pub mod time;

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod bindings;

pub use baseline::{Baseline, Observed, ValueChange};
pub use detector::Detector;
pub use model::*;
