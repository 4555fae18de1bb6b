//! The AWS Cryptomining detections of minewatch, as plain Rust.
//!
//! This crate compiles twice: to the `wasm32-wasip2` component the host embeds (with
//! `bindings.rs` binding it to the WIT world in `../wit`; feature `component`, on by
//! default), and natively, so the host can run the very same logic outside the sandbox
//! (differential tests, benchmarks). The Fluent Bit plugin (`guest/fluent-bit/`) builds it a
//! third way: into a core wasm module, without the WIT edge.
//!
//! Layout:
//! - [`model`]: domain types mirroring the WIT types.
//! - [`catalog`]: the six detections and their Splunk ids.
//! - [`settings`]: what `configure` accepts.
//! - [`cloudtrail`]: which fields are read and what they mean.
//! - [`rules`]: the unseen-value and launch-rate rules.
//! - [`detector`]: runs the rules over a batch.
//! - [`baseline`]: the host-side state operations the rules need.
//! - [`projection`]: the field projection hosts apply before calling the detector.
//! - [`render`]: the native alert format hosts emit.
#![deny(missing_docs)]

pub mod baseline;
pub mod catalog;
pub mod cloudtrail;
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
