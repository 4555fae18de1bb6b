//! End-to-end tests: they drive the real `minewatch` binary (or the library's pipeline)
//! over real-shaped CloudTrail data.

mod pki;
mod util;

/// Garbage, wrong types, huge lines, empty and unreadable inputs.
mod bad_input;
/// Decompression bombs on both listeners against the sources' memory budget.
mod bombs;
/// `detections`, `validate`, `baseline ...` and the output formats.
mod cli;
/// The conformance cases of the detection semantics, through both engines.
mod conformance;
/// The custom-detector kit, in `run --component` and in the Node host.
mod custom_detector;
/// Component and native build give identical alerts.
mod differential;
/// `serve` as an Amazon Data Firehose HTTP endpoint: the field case, access key, reply
/// shape, and the scenario through CloudWatch Logs envelopes.
mod firehose;
/// Sidecars sharing baselines through a real Redis server.
mod fleet;
/// The Fluent Bit filter_wasm plugin, through Fluent Bit's ABI, gives the Rust host's alerts.
mod fluent_bit;
/// The fuzz targets' corpora replayed on stable.
mod fuzz_corpora;
/// Risk-based incidents: one per stolen key, across restarts, in OCSF.
mod incidents;
/// The roads CloudTrail leaves AWS by (field cases, envelopes, lookup-events, mass
/// launches), read without configuration.
mod intake;
/// Google Cloud and Azure beside CloudTrail: the multi-cloud scenario through `run`,
/// `serve` and Node; the public samples of both clouds.
mod multicloud;
/// The embedded component in Node (jco) gives the alerts of the Rust host.
mod node_host;
/// OCSF output held to the official schema files of the version it declares; the
/// validator other tests call (`ocsf::problems`).
pub mod ocsf;
/// What an operator of `serve` relies on: token reloads, JSON errors, `localhost`
/// listeners, `/metrics` conventions, `/ready`.
mod operations;
/// What an operator trips over: transform mode, config checks, mistakes, errors, logs.
mod operator;
/// An independent oracle (a naive Python reading of the rules) gives the same alerts.
mod oracle;
/// The shipped examples against the real Fluent Bit and Vector (../shared/peers).
mod peers;
/// Acknowledgement, crash order and spool promises under injected faults.
mod promises;
/// Public CloudTrail records: every file runs, skips are explained, alerts are exact.
mod real_data;
/// The Redis scripts under any interleaving of two sidecars' batches (a property test).
mod redis_properties;
/// The backtest report: its facts, its HTML, the page in a real headless Chromium; the
/// wording of `baseline build` and of alert messages.
mod report;
/// Durable baselines: restarts and kill -9.
mod restart;
/// Focused behaviour of each rule and setting.
mod rules;
/// Hostile guests: stopped at their limits, dead-lettered, replaced; tenant isolation.
mod sandbox;
/// The generated 45-day scenario in every input layout.
mod scenario;
/// `serve` over Fluent Forward from real clients; an output that goes down and comes back.
mod serve_forward;
/// `serve` over HTTP: Vector-shaped batches, encodings, errors, metrics; passthrough.
mod serve_http;
/// Tenants in one `serve`: hostile components beside the built-in detections.
mod tenants;
/// TLS on every edge: HTTPS outputs, the HTTPS source, Forward over TLS, Redis over
/// TLS, certificate reloads, refusals, and what `validate` says about certificates.
mod tls;
/// TLS with the real Fluent Bit and Vector of `../shared/peers`.
mod tls_peers;
