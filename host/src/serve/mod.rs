//! `minewatch serve`: a long-running sidecar with network sources and outputs.
//!
//! Startup builds everything first (store, detector, outputs, listeners) so a bad
//! config fails before any input is accepted. Then sources (HTTP, Forward) run on a
//! small tokio runtime and hand jobs to the pipeline thread ([`worker`]). On SIGTERM or
//! Ctrl-C, listeners stop accepting, in-flight requests finish and are acknowledged,
//! queued jobs are processed, outputs are flushed and the store is closed.

pub mod outputs;
pub mod worker;

use std::future::Future;
use std::sync::Arc;

use anyhow::{Context, Result};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::config::{Config, StoreBackend};
use crate::intake::ReadOptions;
use crate::pipeline::{Pipeline, PipelineOptions};
use crate::runtime::SharedStore;
use crate::sources::ForwardIntake;
use crate::sources::fluent;
use crate::sources::http::{self, HttpState};
use crate::store::BaselineStore;
use crate::store::redis::RedisStore;
use crate::summary::RunSummary;

/// Installs the Prometheus recorder (once per process) and returns its handle.
fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::warn!(%error, "Metrics recorder could not be installed; /metrics is off.");
                None
            }
        })
        .clone()
}

/// Opens the baseline store a config names.
///
/// # Errors
/// The state directory cannot be opened.
pub fn open_store(config: &Config) -> Result<SharedStore> {
    if config.store.backend == StoreBackend::Redis {
        let mut store = RedisStore::new(config.store.redis.clone())?;
        if let Err(error) = store.ping() {
            tracing::warn!(
                error = format!("{error:#}"),
                "Redis is not reachable yet; batches wait for it."
            );
        }
        return Ok(crate::share(store));
    }
    Ok(if config.memory {
        crate::share(BaselineStore::in_memory())
    } else {
        crate::share(BaselineStore::open(&config.state_dir)?)
    })
}

/// Builds the pipeline of a config: store, detector and outputs.
///
/// # Errors
/// Any part failed to build; nothing has been read yet.
pub fn build_pipeline(config: &Config, learn_only: bool) -> Result<Pipeline> {
    let baselines = open_store(config)?;
    let detector = crate::build_detector(
        config.engine,
        config.component.as_deref(),
        &config.detector_settings(),
        baselines.clone(),
    )?;
    let spool_root = config.state_dir.join("spool");
    let outputs = config
        .outputs
        .iter()
        .enumerate()
        .map(|(i, o)| o.build(i, &spool_root))
        .collect::<Result<Vec<_>>>()?;
    let options = PipelineOptions {
        tenant: config.tenant.clone(),
        batch_events: config.batch_events,
        learn_only,
    };
    Pipeline::new(detector, baselines, outputs, options)
}

/// The listeners of a server, bound before it starts (tests bind port 0 and read the
/// address back).
#[derive(Debug, Default)]
pub struct Listeners {
    /// The HTTP source's listener.
    pub http: Option<TcpListener>,
    /// The Forward source's listener.
    pub forward: Option<TcpListener>,
}

impl Listeners {
    /// Binds every listener the config names.
    ///
    /// # Errors
    /// An address is in use or not allowed.
    pub async fn bind(config: &Config) -> Result<Listeners> {
        let mut listeners = Listeners::default();
        if let Some(http) = &config.sources.http {
            let listener = TcpListener::bind(http.listen)
                .await
                .with_context(|| format!("failed to listen for HTTP on {}", http.listen))?;
            listeners.http = Some(listener);
        }
        if let Some(forward) = &config.sources.forward {
            let listener = TcpListener::bind(forward.listen)
                .await
                .with_context(|| format!("failed to listen for Forward on {}", forward.listen))?;
            listeners.forward = Some(listener);
        }
        anyhow::ensure!(
            listeners.http.is_some() || listeners.forward.is_some(),
            "nothing to listen on: set [sources.http] or [sources.forward] in the config, or pass --http / --forward"
        );
        Ok(listeners)
    }
}

/// Runs the server on `listeners` until `shutdown` resolves, then drains and returns
/// the summary.
///
/// # Errors
/// A part could not be built, or the final flush failed.
pub async fn serve(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunSummary> {
    let pipeline = build_pipeline(&config, false)?;
    let prefilter = pipeline.prefilter();
    let metrics = metrics_handle();
    let (submitter, worker) = worker::spawn(pipeline, config.queue_batches);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let read = ReadOptions {
        max_record_bytes: config.max_record_bytes,
    };
    let mut tasks = Vec::new();
    if let (Some(listener), Some(http_config)) = (listeners.http, config.sources.http.clone()) {
        tracing::info!(address = %listener.local_addr()?, "Listening for HTTP.");
        let state = Arc::new(HttpState {
            submitter: submitter.clone(),
            config: http_config,
            read,
            record_field: config.record_field.clone(),
            metrics: metrics.clone(),
            prefilter,
        });
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            axum::serve(listener, http::router(state))
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
                .context("the HTTP source failed")
        }));
    }
    if let (Some(listener), Some(forward_config)) =
        (listeners.forward, config.sources.forward.clone())
    {
        tracing::info!(address = %listener.local_addr()?, "Listening for Fluent Forward.");
        let handler = Arc::new(ForwardIntake {
            submitter: submitter.clone(),
            record_field: config.record_field.clone(),
        });
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            fluent::serve(listener, forward_config, handler, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
            .context("the Forward source failed")
        }));
    }
    drop(submitter);
    shutdown.await;
    tracing::info!("Shutting down: no new connections; draining in-flight batches.");
    let _ = stop_tx.send(true);
    for task in tasks {
        task.await.context("a source task panicked")??;
    }
    let summary = tokio::task::spawn_blocking(move || worker.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the pipeline thread panicked"))??;
    tracing::info!(
        records = summary.records,
        alerts = summary.total_alerts(),
        "Stopped."
    );
    Ok(summary)
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(error) => {
                    tracing::warn!(%error, "SIGTERM handler unavailable; stopping on Ctrl-C only.");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
