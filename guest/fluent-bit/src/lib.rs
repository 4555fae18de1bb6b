//! minewatch's detections as a Fluent Bit `filter_wasm` plugin.
//!
//! Fluent Bit loads core WebAssembly modules, not components, so this crate builds the
//! detection crate (`minewatch-guest`, as an rlib) a second time, as a `wasm32-wasip1`
//! module with Fluent Bit's filter ABI instead of the WIT world. Baselines live in the
//! module instance, which Fluent Bit keeps for the life of the filter; they can be seeded
//! at start from a `minewatch baseline export` file, and are lost when Fluent Bit stops.
//!
//! Layout:
//! - [`filter`]: one record in, the same record (with its alerts, if any) out.
//! - [`baseline`]: the in-memory baselines, with the host store's semantics.
//! - [`seed`]: loading a baseline export.
//! - [`settings`]: the settings file the plugin reads at start.
//! - [`fuzzing`]: the record path the fuzz target runs, with its invariants.
//! - `abi` (wasm32 only): the exported function Fluent Bit calls, and the only unsafe code.
//!
//! See `examples/fluent-bit-filter/` for the build, a Fluent Bit configuration and the limits.
#![deny(missing_docs)]

pub mod baseline;
pub mod filter;
pub mod fuzzing;
pub mod seed;
pub mod settings;

#[cfg(target_arch = "wasm32")]
mod abi;
