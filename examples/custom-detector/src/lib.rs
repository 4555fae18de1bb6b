//! A custom minewatch detector: GPU instances launched outside business hours.
//!
//! This crate is a teaching example of a detector component. It implements one detection,
//! `ec2-gpu-off-hours`: a successful `RunInstances` of a GPU or ML-accelerator instance
//! family (`p*`, `g*`, `inf*`, `trn*`, `dl*`) outside business hours (08:00-18:00 UTC,
//! Monday to Friday, unless configured otherwise). Cryptominers favour GPUs and nights
//! and weekends, when nobody watches the bill.
//!
//! The alert says whether the principal had ever launched a GPU instance before. That
//! memory lives in the host, not in the component: the detector asks the `baseline`
//! import to record each GPU launch in a first-seen set and reads back what the set knew.
//!
//! Like the built-in detections (`guest/`), the crate is plain Rust plus a thin WIT edge:
//! - [`model`]: plain Rust mirrors of the few WIT types the logic needs.
//! - [`settings`]: what `configure` accepts.
//! - [`detector`]: the detection itself, over projected events and a [`model::Baseline`].
//! - `bindings` (wasm32 only): `wit_bindgen::generate!` and the exports.
//!
//! Because only `bindings` touches the WIT types, `cargo test` runs the logic natively,
//! with an in-memory baseline standing in for the host.

pub mod detector;
pub mod model;
pub mod settings;

#[cfg(target_arch = "wasm32")]
mod bindings;
