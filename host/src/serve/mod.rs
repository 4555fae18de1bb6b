//! `minewatch serve`: a long-running sidecar with network sources and outputs.
//!
//! Startup builds everything first (store, every tenant's detector, outputs, listeners)
//! so a bad config fails before any input is accepted. Then sources (HTTP, Forward) run
//! on a small tokio runtime and hand jobs through the [`router`] to each tenant's own
//! pipeline thread ([`worker`]), so a tenant whose guest loops to its deadline delays
//! only its own batches. On SIGTERM or
//! Ctrl-C, listeners stop accepting, in-flight requests finish and are acknowledged,
//! queued jobs are processed, outputs are flushed and the store is closed.

pub mod outputs;
pub mod ready;
pub mod reload;
pub mod router;
pub mod telemetry;
pub mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use crate::config::{Config, StoreBackend};
use crate::dead_letter::DeadLetter;
use crate::intake::ReadOptions;
use crate::pipeline::{Output, Pipeline, PipelineOptions};
use crate::runtime::{Engines, SharedStore};
use crate::sinks::SharedSink;
use crate::sources::ForwardIntake;
use crate::sources::budget::Budget;
use crate::sources::fluent;
use crate::sources::http::{self, HttpState};
use crate::store::BaselineStore;
use crate::store::redis::{RedisConfig, RedisStore};
use crate::summary::RunSummary;
use crate::tenants::{Routes, TenantSpec};
use crate::tls::server::{ServerTls, TlsListener};

/// The baseline stores of a server's tenants.
///
/// The embedded store is one store, shared: redb has one writer, and tenants are
/// namespaces in it. With Redis each tenant's pipeline gets a store of its own (its own
/// connection, key cache and batch journal), since a batch's state must not mix with
/// another pipeline's; the data is shared in Redis anyway.
#[derive(Clone)]
pub struct Baselines {
    embedded: Option<SharedStore>,
    redis: Option<RedisConfig>,
    per_tenant: Arc<std::sync::Mutex<HashMap<String, SharedStore>>>,
}

impl std::fmt::Debug for Baselines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Baselines")
            .field("embedded", &self.embedded.is_some())
            .field("redis", &self.redis)
            .finish()
    }
}

impl Baselines {
    /// Opens the store a config names.
    ///
    /// # Errors
    /// The state directory cannot be opened, or the Redis URL is invalid.
    pub fn open(config: &Config) -> Result<Baselines> {
        let mut baselines = Baselines {
            embedded: None,
            redis: None,
            per_tenant: Arc::default(),
        };
        if config.store.backend == StoreBackend::Redis {
            let mut probe = RedisStore::new(config.store.redis.clone())?;
            if let Err(error) = probe.ping() {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "Redis is not reachable yet; batches wait for it."
                );
            }
            baselines.redis = Some(config.store.redis.clone());
        } else if config.memory {
            baselines.embedded = Some(crate::share(BaselineStore::in_memory()));
        } else {
            baselines.embedded = Some(crate::share(BaselineStore::open(&config.state_dir)?));
        }
        Ok(baselines)
    }

    /// The store `tenant`'s pipeline and detectors use.
    ///
    /// # Errors
    /// The Redis URL is invalid.
    pub fn for_tenant(&self, tenant: &str) -> Result<SharedStore> {
        if let Some(store) = &self.embedded {
            return Ok(store.clone());
        }
        let config = self.redis.clone().expect("one backend is set");
        let mut stores = self
            .per_tenant
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(store) = stores.get(tenant) {
            return Ok(store.clone());
        }
        let store = crate::share(RedisStore::new(config)?);
        stores.insert(tenant.to_string(), store.clone());
        Ok(store)
    }
}

/// Builds the pipeline of a config's default tenant (`tenant`, or `--tenant`): store,
/// detector and outputs.
///
/// # Errors
/// Any part failed to build; nothing has been read yet.
pub fn build_pipeline(config: &Config, learn_only: bool) -> Result<Pipeline> {
    let spec = config.default_tenant()?;
    let baselines = Baselines::open(config)?.for_tenant(&spec.name)?;
    let outputs = build_outputs(config)?;
    let dead_letter = open_dead_letter(config)?;
    build_tenant_pipeline(
        &Engines::new()?,
        &spec,
        config,
        baselines,
        outputs,
        dead_letter,
        learn_only,
    )
}

/// Every tenant's pipeline, and what they share.
pub struct TenantPipelines {
    /// The engines every tenant's detector runs on.
    pub engines: Engines,
    /// The tenants' baseline stores.
    pub baselines: Baselines,
    /// Each tenant with its pipeline, the default tenant first.
    pub pipelines: Vec<(TenantSpec, Pipeline)>,
    /// Each output's name, with the spool it delivers from (network outputs).
    pub outputs: Vec<(String, Option<crate::sinks::spool::SpoolHandle>)>,
}

/// Every tenant's pipeline over one store, one engine set, shared outputs and one
/// dead-letter file; the default tenant first.
///
/// # Errors
/// Any part of any tenant failed to build; the error names the tenant.
pub fn build_tenant_pipelines(config: &Config) -> Result<TenantPipelines> {
    let specs = config.tenant_specs()?;
    let baselines = Baselines::open(config)?;
    let engines = Engines::new()?;
    let dead_letter = open_dead_letter(config)?;
    let shared: Vec<(Output, SharedSink)> = build_outputs(config)?
        .into_iter()
        .map(|output| {
            let sink = SharedSink::new(output.sink);
            let shell = Output {
                sink: Box::new(sink.clone()),
                ..output
            };
            (shell, sink)
        })
        .collect();
    let outputs = shared
        .iter()
        .map(|(output, sink)| (output.name.clone(), crate::sinks::AlertSink::spool(sink)))
        .collect();
    let pipelines = specs
        .into_iter()
        .map(|spec| {
            let outputs = shared
                .iter()
                .map(|(o, sink)| Output {
                    name: o.name.clone(),
                    sink: Box::new(sink.clone()),
                    format: o.format,
                    passthrough: o.passthrough,
                })
                .collect();
            let pipeline = build_tenant_pipeline(
                &engines,
                &spec,
                config,
                baselines.for_tenant(&spec.name)?,
                outputs,
                dead_letter.clone(),
                false,
            )
            .with_context(|| format!("tenant {}", spec.name))?;
            Ok((spec, pipeline))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TenantPipelines {
        engines,
        baselines,
        pipelines,
        outputs,
    })
}

fn build_outputs(config: &Config) -> Result<Vec<Output>> {
    let spool_root = config.spool_root();
    config
        .outputs
        .iter()
        .enumerate()
        .map(|(i, o)| o.build(i, &spool_root))
        .collect()
}

fn open_dead_letter(config: &Config) -> Result<Option<Arc<DeadLetter>>> {
    config
        .dead_letter()
        .map(|path| DeadLetter::open(&path).map(Arc::new))
        .transpose()
}

fn build_tenant_pipeline(
    engines: &Engines,
    spec: &TenantSpec,
    config: &Config,
    baselines: SharedStore,
    outputs: Vec<Output>,
    dead_letter: Option<Arc<DeadLetter>>,
    learn_only: bool,
) -> Result<Pipeline> {
    let detector = crate::build_limited_detector(
        engines,
        &crate::DetectorSpec {
            engine: spec.engine,
            component: spec.component.as_deref(),
            settings: &spec.settings,
            limits: spec.limits,
        },
        baselines.clone(),
    )?;
    let options = PipelineOptions {
        tenant: spec.name.clone(),
        batch_events: config.batch_events,
        learn_only,
        dead_letter,
        incidents: config.incidents.clone(),
        detector_settings: spec.settings.clone(),
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
    /// The HTTP source's TLS, when it has certificates.
    pub http_tls: Option<Arc<ServerTls>>,
    /// The Forward source's TLS, when it has certificates.
    pub forward_tls: Option<Arc<ServerTls>>,
}

impl Listeners {
    /// Checks the sources (a listener beyond loopback must be protected, see
    /// [`crate::sources::check_exposure`]), loads their certificates and binds every
    /// listener the config names.
    ///
    /// # Errors
    /// A source is refused, a certificate does not load, or an address is in use or not
    /// allowed.
    pub async fn bind(config: &Config) -> Result<Listeners> {
        config.sources.check()?;
        let mut listeners = Listeners::default();
        let sources = &config.sources;
        let http_files = sources.http.as_ref().map(http::HttpSourceConfig::tls_files);
        let forward_files = sources
            .forward
            .as_ref()
            .map(fluent::ForwardConfig::tls_files);
        if let Some(files) = http_files.transpose()?.flatten() {
            listeners.http_tls = Some(ServerTls::load("http", &files)?);
        }
        if let Some(files) = forward_files.transpose()?.flatten() {
            listeners.forward_tls = Some(ServerTls::load("forward", &files)?);
        }
        if let Some(http) = &config.sources.http {
            let listener = TcpListener::bind(http.listen.resolve()?.as_slice())
                .await
                .with_context(|| format!("failed to listen for HTTP on {}", http.listen))?;
            listeners.http = Some(listener);
        }
        if let Some(forward) = &config.sources.forward {
            let listener = TcpListener::bind(forward.listen.resolve()?.as_slice())
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
    serve_with_reload(config, listeners, shutdown, None).await
}

/// [`serve`], reloading detectors from `reload`'s config file on SIGHUP and on changes
/// to it or to the components it names (see [`reload`]).
///
/// # Errors
/// A part could not be built, or the final flush failed.
pub async fn serve_with_reload(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
    reload: Option<reload::Reload>,
) -> Result<RunSummary> {
    let TenantPipelines {
        engines,
        baselines,
        pipelines,
        outputs,
    } = build_tenant_pipelines(&config)?;
    let Listeners {
        http: http_listener,
        forward: forward_listener,
        http_tls,
        forward_tls,
    } = listeners;
    let prefilters = pipelines
        .iter()
        .map(|(spec, pipeline)| (spec.name.clone(), pipeline.prefilter()))
        .collect();
    let specs: Vec<TenantSpec> = pipelines.iter().map(|(spec, _)| spec.clone()).collect();
    let metrics = telemetry::install();
    let mut submitters = HashMap::new();
    let mut workers = Vec::new();
    for (spec, pipeline) in pipelines {
        let (submitter, worker) = worker::spawn(
            &spec.name,
            pipeline,
            config.queue_batches,
            std::time::Duration::from_millis(config.settle_ms),
        );
        submitters.insert(spec.name.clone(), submitter);
        workers.push(worker);
    }
    tracing::info!(tenants = specs.len(), "Tenants ready.");
    let router = Arc::new(router::TenantRouter::new(
        Routes::new(&specs, config.route_field.clone()),
        submitters,
        prefilters,
    ));
    let redis = (config.store.backend == StoreBackend::Redis).then_some(&config.store.redis);
    let readiness = Arc::new(ready::Readiness::new(
        redis,
        outputs.clone(),
        router.clone(),
    )?);
    let store_up = match redis {
        None => true,
        Some(_) => {
            let probe = readiness.clone();
            tokio::task::spawn_blocking(move || probe.store_answers())
                .await
                .unwrap_or(false)
        }
    };
    telemetry::register(&telemetry::Known {
        sources: [
            ("http", &config.sources.http.is_some(), http_tls.is_some()),
            (
                "forward",
                &config.sources.forward.is_some(),
                forward_tls.is_some(),
            ),
        ]
        .into_iter()
        .filter(|(_, on, _)| **on)
        .map(|(source, _, tls)| (source, tls))
        .collect(),
        outputs: outputs
            .iter()
            .map(|(name, spool)| (name.clone(), spool.is_some()))
            .collect(),
        tenants: specs.iter().map(|s| s.name.as_str()).collect(),
        built_in: specs.iter().any(|s| s.component.is_none()),
        store_up,
    });
    let http_token = Arc::new(crate::sources::LiveSecret::new(
        config
            .sources
            .http
            .as_ref()
            .and_then(|h| h.token.as_ref())
            .map(|t| t.expose().to_string()),
    ));
    let forward_key = Arc::new(crate::sources::LiveSecret::new(
        config
            .sources
            .forward
            .as_ref()
            .and_then(|f| f.shared_key.clone()),
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let mut reloader = None;
    if let Some(reload) = reload {
        let certificates = [("http", &http_tls), ("forward", &forward_tls)]
            .into_iter()
            .filter_map(|(source, tls)| tls.clone().map(|tls| (source, tls)))
            .collect();
        let watcher = reload::Reloader::new(
            reload,
            reload::Running {
                config: config.clone(),
                engines,
                baselines,
                router: router.clone(),
                specs: specs.clone(),
                certificates,
                http_token: http_token.clone(),
                forward_key: forward_key.clone(),
            },
        );
        reloader = Some(tokio::spawn(watcher.run(stop_rx.clone())));
    }
    let read = ReadOptions {
        max_record_bytes: config.max_record_bytes,
    };
    let mut tasks = Vec::new();
    let budget = Budget::new(config.sources.max_inflight_bytes);
    if let (Some(listener), Some(http_config)) = (http_listener, config.sources.http.clone()) {
        tracing::info!(tls = http_tls.is_some(), address = %listener.local_addr()?, "Listening for HTTP.");
        let state = Arc::new(HttpState {
            router: router.clone(),
            config: http_config,
            token: http_token.clone(),
            readiness: Some(readiness.clone()),
            read,
            record_field: config.record_field.clone(),
            metrics: metrics.clone(),
            budget: budget.clone(),
        });
        let mut stop = stop_rx.clone();
        let stopping = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let app = http::router(state);
        tasks.push(match http_tls {
            None => tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopping)
                    .await
                    .context("the HTTP source failed")
            }),
            Some(tls) => {
                let listener = TlsListener::new(listener, tls)?;
                tokio::spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stopping)
                        .await
                        .context("the HTTP source failed")
                })
            }
        });
    }
    if let (Some(listener), Some(forward_config)) =
        (forward_listener, config.sources.forward.clone())
    {
        tracing::info!(tls = forward_tls.is_some(), address = %listener.local_addr()?, "Listening for Fluent Forward.");
        let handler = Arc::new(ForwardIntake {
            router: router.clone(),
            record_field: config.record_field.clone(),
        });
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            fluent::serve_live(
                listener,
                forward_config,
                forward_tls,
                forward_key,
                budget,
                handler,
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            )
            .await
            .context("the Forward source failed")
        }));
    }
    drop(router);
    drop(readiness);
    shutdown.await;
    tracing::info!("Shutting down: no new connections; draining in-flight batches.");
    let _ = stop_tx.send(true);
    for task in tasks {
        task.await.context("a source task panicked")??;
    }
    if let Some(reloader) = reloader {
        reloader.await.context("the reload task panicked")?;
    }
    let summary = tokio::task::spawn_blocking(move || {
        let mut total = RunSummary::default();
        for worker in workers {
            let summary = worker
                .join()
                .map_err(|_| anyhow::anyhow!("a pipeline thread panicked"))??;
            total.absorb(&summary);
        }
        anyhow::Ok(total)
    })
    .await??;
    tracing::info!(
        records = summary.records,
        alerts = summary.total_alerts(),
        "Stopped."
    );
    Ok(summary)
}

/// Registers the SIGTERM and Ctrl-C (SIGINT) handlers now, so a signal that comes while
/// `serve` starts is not the default "terminate at once", and returns what resolves on
/// either. Call it inside the runtime, before binding the listeners.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = signal(SignalKind::terminate())
            .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)));
        async move {
            match handlers {
                Ok((mut term, mut interrupt)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = interrupt.recv() => {},
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "Signal handlers unavailable; stopping on Ctrl-C only.");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
