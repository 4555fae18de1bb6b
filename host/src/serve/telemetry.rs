//! The metrics of `serve` (`GET /metrics`, Prometheus text format): the catalogue
//! every metric is described from, the recorder, and the series registered at start.
//!
//! Every metric has `# HELP` and `# TYPE`; latencies are histograms with the buckets
//! of [`LATENCY_BUCKETS`] (seconds), so a fleet can add them up; and every series whose
//! labels are known at start (configured sources, outputs and tenants, skip reasons,
//! the built-in detections) is there from start-up, at zero or its initial value, so a
//! dashboard or alert rule never sees a metric appear out of nowhere.

use metrics::Unit;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::runtime::StopReason;

/// What kind of metric a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (`_total`).
    Counter,
    /// A level that goes up and down.
    Gauge,
    /// A distribution in buckets (latencies, in seconds).
    Histogram,
}

/// One metric: its name, kind, unit and the help text `/metrics` shows.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// The full name, `minewatch_...`.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// The unit of its values.
    pub unit: Unit,
    /// One sentence for `# HELP`.
    pub help: &'static str,
}

const fn metric(name: &'static str, kind: Kind, unit: Unit, help: &'static str) -> Metric {
    Metric {
        name,
        kind,
        unit,
        help,
    }
}

use Kind::{Counter, Gauge, Histogram};

/// Every metric `serve` exposes.
pub const CATALOGUE: &[Metric] = &[
    metric(
        "minewatch_events_received_total",
        Counter,
        Unit::Count,
        "CloudTrail records taken by the pipelines, including those the prefilter counted without parsing.",
    ),
    metric(
        "minewatch_events_unsubscribed_total",
        Counter,
        Unit::Count,
        "Records no detector subscribes to, dropped before the detector call.",
    ),
    metric(
        "minewatch_events_skipped_total",
        Counter,
        Unit::Count,
        "Input skipped, by reason (invalid-json, not-cloudtrail, detector-trap, ...; other for the rest).",
    ),
    metric(
        "minewatch_events_late_total",
        Counter,
        Unit::Count,
        "Events judged more than 15 minutes behind the latest event already judged.",
    ),
    metric(
        "minewatch_batches_reordered_total",
        Counter,
        Unit::Count,
        "Requests or chunks run out of arrival order to follow event time.",
    ),
    metric(
        "minewatch_failed_calls_total",
        Counter,
        Unit::Count,
        "Import calls of a detector that failed (the store refused, a bad key).",
    ),
    metric(
        "minewatch_alerts_total",
        Counter,
        Unit::Count,
        "Alerts raised, by detection.",
    ),
    metric(
        "minewatch_incidents_total",
        Counter,
        Unit::Count,
        "Incidents opened or updated, by status.",
    ),
    metric(
        "minewatch_alerts_sent_total",
        Counter,
        Unit::Count,
        "Items (alerts, incidents, passthrough events) an output delivered: written and synced for stdout and files, accepted by the receiver for network outputs.",
    ),
    metric(
        "minewatch_output_errors_total",
        Counter,
        Unit::Count,
        "Failed deliveries of a network output (each retry counts).",
    ),
    metric(
        "minewatch_output_dead_letter_total",
        Counter,
        Unit::Count,
        "Lines a network output moved to its dead-letter file.",
    ),
    metric(
        "minewatch_spool_bytes",
        Gauge,
        Unit::Bytes,
        "Bytes waiting in a network output's spool.",
    ),
    metric(
        "minewatch_spool_lines",
        Gauge,
        Unit::Count,
        "Lines waiting in a network output's spool.",
    ),
    metric(
        "minewatch_requests_total",
        Counter,
        Unit::Count,
        "Requests (HTTP, by status code) and chunks (Forward: ok, busy or error) a source answered.",
    ),
    metric(
        "minewatch_received_bytes_total",
        Counter,
        Unit::Bytes,
        "Bytes a source received in accepted requests or messages, as sent (compressed).",
    ),
    metric(
        "minewatch_received_events_total",
        Counter,
        Unit::Count,
        "Records a source decoded.",
    ),
    metric(
        "minewatch_source_inflight_bytes",
        Gauge,
        Unit::Bytes,
        "Bytes the sources hold in flight (bodies and messages as received, inflated, parsed), within sources.max_inflight_bytes.",
    ),
    metric(
        "minewatch_budget_refusals_total",
        Counter,
        Unit::Count,
        "Requests and Forward connections refused because the sources' memory budget was taken.",
    ),
    metric(
        "minewatch_ack_seconds",
        Histogram,
        Unit::Seconds,
        "Time from a request or chunk to its answer (committed, or refused), in seconds.",
    ),
    metric(
        "minewatch_guest_call_seconds",
        Histogram,
        Unit::Seconds,
        "Duration of one detector call over a batch, by tenant, in seconds.",
    ),
    metric(
        "minewatch_guest_stops_total",
        Counter,
        Unit::Count,
        "Detector calls stopped at a limit or on a trap, by tenant and reason.",
    ),
    metric(
        "minewatch_dead_letter_events_total",
        Counter,
        Unit::Count,
        "Events of stopped calls written to the dead-letter file, by tenant and reason.",
    ),
    metric(
        "minewatch_store_commit_seconds",
        Histogram,
        Unit::Seconds,
        "Duration of a baseline commit, in seconds.",
    ),
    metric(
        "minewatch_store_call_seconds",
        Histogram,
        Unit::Seconds,
        "Duration of one Redis call, in seconds (Redis store only).",
    ),
    metric(
        "minewatch_store_errors_total",
        Counter,
        Unit::Count,
        "Failed Redis calls (Redis store only).",
    ),
    metric(
        "minewatch_store_retries_total",
        Counter,
        Unit::Count,
        "Retries of a batch held while the baseline store was unavailable.",
    ),
    metric(
        "minewatch_store_up",
        Gauge,
        Unit::Count,
        "1 while the baseline store answers, 0 while it does not.",
    ),
    metric(
        "minewatch_tls_handshake_errors_total",
        Counter,
        Unit::Count,
        "Failed TLS handshakes on a source, by reason (sources with TLS only).",
    ),
];

/// Histogram buckets of every latency, in seconds: 0.5 ms to 30 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The reasons of `minewatch_tls_handshake_errors_total`.
const HANDSHAKE_REASONS: [&str; 5] = ["client-certificate", "protocol", "closed", "timeout", "io"];

/// Every reason a detector call is stopped for.
const STOP_REASONS: [StopReason; 7] = [
    StopReason::CpuDeadline,
    StopReason::Fuel,
    StopReason::Memory,
    StopReason::Trap,
    StopReason::AlertLimit,
    StopReason::ImportCalls,
    StopReason::ImportBytes,
];

/// Installs the Prometheus recorder (once per process: later calls return the same
/// handle) with histogram buckets, and describes every metric of [`CATALOGUE`]; none
/// when another recorder is installed already.
pub fn install() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "Metrics recorder could not be installed; /metrics is off.");
                    None
                }
            }
        })
        .clone()
}

fn describe() {
    for metric in CATALOGUE {
        match metric.kind {
            Kind::Counter => metrics::describe_counter!(metric.name, metric.unit, metric.help),
            Kind::Gauge => metrics::describe_gauge!(metric.name, metric.unit, metric.help),
            Kind::Histogram => {
                metrics::describe_histogram!(metric.name, metric.unit, metric.help);
            }
        }
    }
}

/// The label values known at start.
#[derive(Debug, Default)]
pub struct Known<'a> {
    /// Each configured source (`http`, `forward`), with whether it serves TLS.
    pub sources: Vec<(&'static str, bool)>,
    /// Each output's name, with whether it has a spool (network outputs).
    pub outputs: Vec<(String, bool)>,
    /// Each tenant's name.
    pub tenants: Vec<&'a str>,
    /// Whether a tenant runs the built-in detections (their names are known).
    pub built_in: bool,
    /// Whether the baseline store answered at start.
    pub store_up: bool,
}

/// Registers every series whose labels are known at start, at zero (counters,
/// histograms) or its initial value (gauges).
pub fn register(known: &Known<'_>) {
    let zero = |name: &'static str, labels: &[(&'static str, String)]| {
        let labels: Vec<metrics::Label> = labels
            .iter()
            .map(|(k, v)| metrics::Label::new(*k, v.clone()))
            .collect();
        metrics::counter!(name, labels).increment(0);
    };
    for name in [
        "minewatch_events_received_total",
        "minewatch_events_unsubscribed_total",
        "minewatch_events_late_total",
        "minewatch_batches_reordered_total",
        "minewatch_failed_calls_total",
        "minewatch_store_errors_total",
        "minewatch_store_retries_total",
    ] {
        zero(name, &[]);
    }
    for reason in crate::summary::KNOWN_REASONS.iter().chain(&["other"]) {
        zero(
            "minewatch_events_skipped_total",
            &[("reason", reason.to_string())],
        );
    }
    if known.built_in {
        for detection in minewatch_guest::catalog::detections() {
            zero(
                "minewatch_alerts_total",
                &[("detection", detection.slug.clone())],
            );
        }
    }
    for status in ["open", "updated"] {
        zero("minewatch_incidents_total", &[("status", status.into())]);
    }
    for (output, spooled) in &known.outputs {
        let label = [("output", output.clone())];
        zero("minewatch_alerts_sent_total", &label);
        zero("minewatch_output_errors_total", &label);
        zero("minewatch_output_dead_letter_total", &label);
        if *spooled {
            // The spool publishes its depth when it opens; make sure of it.
            metrics::gauge!("minewatch_spool_bytes", "output" => output.clone()).increment(0.0);
            metrics::gauge!("minewatch_spool_lines", "output" => output.clone()).increment(0.0);
        }
    }
    for (source, tls) in &known.sources {
        let ok = if *source == "http" { "200" } else { "ok" };
        zero(
            "minewatch_requests_total",
            &[("source", source.to_string()), ("status", ok.into())],
        );
        zero(
            "minewatch_received_bytes_total",
            &[("source", source.to_string())],
        );
        zero(
            "minewatch_received_events_total",
            &[("source", source.to_string())],
        );
        zero(
            "minewatch_budget_refusals_total",
            &[("source", source.to_string())],
        );
        // Registering a histogram makes it render (empty buckets) before any sample.
        let _ = metrics::histogram!("minewatch_ack_seconds", "source" => *source);
        if *tls {
            for reason in HANDSHAKE_REASONS {
                zero(
                    "minewatch_tls_handshake_errors_total",
                    &[("source", source.to_string()), ("reason", reason.into())],
                );
            }
        }
    }
    for tenant in &known.tenants {
        let _ = metrics::histogram!("minewatch_guest_call_seconds", "tenant" => tenant.to_string());
        for reason in STOP_REASONS {
            let labels = [
                ("tenant", tenant.to_string()),
                ("reason", reason.as_str().into()),
            ];
            zero("minewatch_guest_stops_total", &labels);
            zero("minewatch_dead_letter_events_total", &labels);
        }
    }
    let _ = metrics::histogram!("minewatch_store_commit_seconds");
    let _ = metrics::histogram!("minewatch_store_call_seconds");
    metrics::gauge!("minewatch_store_up").set(if known.store_up { 1.0 } else { 0.0 });
    metrics::gauge!("minewatch_source_inflight_bytes").set(0.0);
}
