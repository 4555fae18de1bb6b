//! Hot reload of detectors: on SIGHUP, or when the config file or a tenant's component
//! file changes, re-read the config, rebuild the detectors whose component bytes,
//! settings or limits changed, and hand each to its tenant's pipeline thread, which
//! takes it over between two jobs.
//!
//! A config that does not parse or check, or a detector that does not compile,
//! instantiate or accept its settings, is rejected with an ERROR log and the old one
//! keeps running. Baselines live in the host store, so a new detector starts with
//! everything the old one learned; queued and in-flight jobs are processed by the old
//! detector before the swap.
//!
//! The TLS certificates of the sources (`tls_cert`, `tls_key`, `tls_client_ca`) are
//! read again on every reload: send SIGHUP after renewing them (e.g. certbot's
//! `--deploy-hook`). Their files are not watched, since renewals usually swap symlinks
//! a path watch would miss. New connections get the new certificate, open ones keep
//! their session; files that do not load are rejected with an ERROR log and the old
//! certificate stays.
//!
//! The sources' secrets apply at once too: a changed `[sources.http] token` is checked
//! from the next request on (the old one gets 401), a changed `[sources.forward]
//! shared_key` from the next connection's handshake on. The command-line flags and
//! environment variables that override the file (`--http-token`,
//! `MINEWATCH_HTTP_TOKEN`, `--forward-shared-key`, `--http`, `--output`, ...) are
//! applied over the new file as at start, so an overridden secret stays in force.
//!
//! Everything else needs a restart: listen addresses and the other settings of the
//! sources, outputs, the store, the state directory, the tenant list, routes, queue and
//! batch sizes. A reload that changes any of them logs one ERROR naming each such
//! setting (compared with the configuration the server started with), applies what it
//! can, and leaves those at their running values.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use notify::{RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::Baselines;
use super::router::TenantRouter;
use crate::config::Config;
use crate::runtime::Engines;
use crate::sources::LiveSecret;
use crate::tenants::TenantSpec;
use crate::tls::server::ServerTls;
use crate::{DetectorSpec, build_limited_detector};

/// Quiet time after a file event before reloading, so an editor's or a copy's burst of
/// writes becomes one reload.
const SETTLE: Duration = Duration::from_millis(300);

/// How to rebuild the running config from its file.
pub struct Reload {
    /// The config file.
    pub path: PathBuf,
    /// Re-applies the command-line flags that override the file.
    pub overrides: Box<dyn Fn(&mut Config) + Send + Sync>,
}

/// What a running server is made of, as far as a reload can change it.
pub(super) struct Running {
    /// The configuration the server started with (flags applied).
    pub(super) config: Config,
    pub(super) engines: Engines,
    pub(super) baselines: Baselines,
    pub(super) router: Arc<TenantRouter>,
    /// The tenants the server started with.
    pub(super) specs: Vec<TenantSpec>,
    /// The TLS of each source that serves it (`http`, `forward`).
    pub(super) certificates: Vec<(&'static str, Arc<ServerTls>)>,
    /// The HTTP source's token in force.
    pub(super) http_token: Arc<LiveSecret>,
    /// The Forward source's shared key in force.
    pub(super) forward_key: Arc<LiveSecret>,
}

/// What a running server reloads against.
pub(super) struct Reloader {
    reload: Reload,
    engines: Engines,
    baselines: Baselines,
    router: Arc<TenantRouter>,
    /// The running spec of each tenant, with the hash of its component's bytes.
    running: HashMap<String, (TenantSpec, Option<[u8; 32]>)>,
    /// The configuration the server started with.
    started: Config,
    /// The tenants and routes the server started with.
    started_specs: Vec<TenantSpec>,
    /// The TLS of each source that serves it (`http`, `forward`).
    certificates: Vec<(&'static str, Arc<ServerTls>)>,
    http_token: Arc<LiveSecret>,
    forward_key: Arc<LiveSecret>,
}

impl Reloader {
    pub(super) fn new(reload: Reload, server: Running) -> Reloader {
        let running = server
            .specs
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    (s.clone(), component_hash(s).ok().flatten()),
                )
            })
            .collect();
        Reloader {
            reload,
            engines: server.engines,
            baselines: server.baselines,
            router: server.router,
            running,
            started: server.config,
            started_specs: server.specs,
            certificates: server.certificates,
            http_token: server.http_token,
            forward_key: server.forward_key,
        }
    }

    /// The files whose change triggers a reload: the config and every component.
    fn watched(&self) -> Vec<PathBuf> {
        let mut files = vec![self.reload.path.clone()];
        files.extend(
            self.running
                .values()
                .filter_map(|(s, _)| s.component.clone()),
        );
        files
    }

    /// Reloads until `stop` flips: on SIGHUP and on changes to the watched files.
    pub(super) async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let (tx, mut changed) = mpsc::channel::<()>(1);
        let watcher = self.watch(tx);
        #[cfg(unix)]
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(signal) => Some(signal),
            Err(error) => {
                tracing::warn!(%error, "SIGHUP handler unavailable; reloading on file changes only.");
                None
            }
        };
        loop {
            #[cfg(unix)]
            let hup = async {
                match &mut hangup {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hup = std::future::pending::<Option<()>>();
            let stopping = async {
                // The guard `wait_for` returns is not `Send`; drop it at once.
                let _ = stop.wait_for(|s| *s).await.map(|_| ());
            };
            tokio::select! {
                () = stopping => break,
                _ = hup => tracing::info!("SIGHUP: reloading the configuration."),
                Some(()) = changed.recv() => {
                    tokio::time::sleep(SETTLE).await;
                    while changed.try_recv().is_ok() {}
                    tracing::info!("A watched file changed: reloading the configuration.");
                }
            }
            self = match tokio::task::spawn_blocking(move || {
                let outcome = self.prepare();
                (self, outcome)
            })
            .await
            {
                Ok((reloader, Ok(swaps))) => {
                    let mut reloader = reloader;
                    reloader.apply(swaps).await;
                    reloader
                }
                Ok((reloader, Err(error))) => {
                    tracing::error!(
                        error = format!("{error:#}"),
                        "Rejected the new configuration; the running detectors stay."
                    );
                    reloader
                }
                Err(error) => {
                    tracing::error!(%error, "The reload task panicked; hot reload is off.");
                    return;
                }
            };
        }
        drop(watcher);
    }

    /// Watches the directories of the watched files (so files replaced by a rename are
    /// seen too) and signals `tx` on changes to one of them.
    fn watch(&self, tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
        let files: Vec<PathBuf> = self.watched().iter().map(|f| absolute(f)).collect();
        let interesting = files.clone();
        let handler = move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if event.kind.is_access() {
                return;
            }
            if event.paths.iter().any(|p| interesting.contains(p)) {
                let _ = tx.try_send(());
            }
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!(%error, "File watching unavailable; reload with SIGHUP.");
                return None;
            }
        };
        let mut dirs: Vec<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            if let Err(error) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
                tracing::warn!(%error, dir = %dir.display(), "Cannot watch a directory; reload with SIGHUP.");
            }
        }
        Some(watcher)
    }

    /// Reads the config and builds the detectors that changed (blocking work).
    fn prepare(&mut self) -> Result<Vec<Swap>> {
        let mut config = Config::load(&self.reload.path)?;
        (self.reload.overrides)(&mut config);
        config.check()?;
        config.sources.check()?;
        self.reload_certificates(&config);
        self.reload_secrets(&config);
        let specs = config.tenant_specs()?;
        let restart = needs_restart(&self.started, &config, &self.started_specs, &specs);
        if !restart.is_empty() {
            let settings = restart.join(", ");
            tracing::error!(
                %settings,
                "Refused to reload settings that need a restart ({settings}); they keep \
                 their running values until minewatch is restarted."
            );
        }
        let mut swaps = Vec::new();
        for spec in specs {
            let Some((running, running_hash)) = self.running.get(&spec.name) else {
                continue;
            };
            let hash = match component_hash(&spec) {
                Ok(hash) => hash,
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), tenant = %spec.name,
                        "Rejected the new detector; the old one keeps running.");
                    continue;
                }
            };
            let same_detector = spec.engine == running.engine
                && spec.component == running.component
                && spec.settings == running.settings
                && spec.limits == running.limits;
            if same_detector && hash == *running_hash {
                continue;
            }
            let built = build_limited_detector(
                &self.engines,
                &DetectorSpec {
                    engine: spec.engine,
                    component: spec.component.as_deref(),
                    settings: &spec.settings,
                    limits: spec.limits,
                },
                self.baselines.for_tenant(&spec.name)?,
            );
            match built {
                Ok(detector) => swaps.push(Swap {
                    spec,
                    hash,
                    detector,
                }),
                Err(error) => tracing::error!(
                    error = format!("{error:#}"),
                    tenant = %spec.name,
                    "Rejected the new detector; the old one keeps running."
                ),
            }
        }
        Ok(swaps)
    }

    /// Reads the sources' certificate files again, as the new config names them.
    fn reload_certificates(&self, config: &Config) {
        for (source, tls) in &self.certificates {
            let files = match *source {
                "http" => config
                    .sources
                    .http
                    .as_ref()
                    .map(crate::sources::http::HttpSourceConfig::tls_files),
                _ => config
                    .sources
                    .forward
                    .as_ref()
                    .map(crate::sources::fluent::ForwardConfig::tls_files),
            };
            match files {
                Some(Ok(Some(files))) => {
                    if let Err(error) = tls.reload(&files) {
                        tracing::error!(
                            source,
                            error = format!("{error:#}"),
                            "Rejected the new TLS certificate; the old one stays."
                        );
                    }
                }
                Some(Err(error)) => tracing::error!(
                    source,
                    error = format!("{error:#}"),
                    "Rejected the new TLS settings; the old certificate stays."
                ),
                // TLS turned off, or the source removed: named by `needs_restart`.
                Some(Ok(None)) | None => {}
            }
        }
    }

    /// Puts the sources' new secrets in force (the flags and variables that override
    /// the file were applied to `config` already).
    fn reload_secrets(&self, config: &Config) {
        if self.started.sources.http.is_some()
            && let Some(http) = &config.sources.http
        {
            let token = http.token.as_ref().map(|t| t.expose().to_string());
            if self.http_token.set(token) {
                tracing::info!(
                    source = "http",
                    "The HTTP token changed; the new one is in force from the next request."
                );
            }
        }
        if self.started.sources.forward.is_some()
            && let Some(forward) = &config.sources.forward
            && self.forward_key.set(forward.shared_key.clone())
        {
            tracing::info!(
                source = "forward",
                "The Forward shared key changed; new connections authenticate with it, open \
                 ones stay authenticated."
            );
        }
    }

    /// Hands each new detector to its pipeline thread.
    async fn apply(&mut self, swaps: Vec<Swap>) {
        for swap in swaps {
            let Some(submitter) = self.router.submitter(&swap.spec.name) else {
                continue;
            };
            let name = swap.spec.name.clone();
            match submitter.swap(swap.detector).await {
                Ok(prefilter) => {
                    self.router.set_prefilter(&name, prefilter);
                    tracing::info!(tenant = %name, "Tenant now runs the new detector.");
                    self.running.insert(name, (swap.spec, swap.hash));
                }
                Err(error) => tracing::error!(
                    %error,
                    tenant = %name,
                    "Rejected the new detector; the old one keeps running."
                ),
            }
        }
    }
}

/// A detector built by a reload, waiting for its pipeline.
struct Swap {
    spec: TenantSpec,
    hash: Option<[u8; 32]>,
    detector: Box<dyn crate::runtime::DetectorEngine>,
}

/// The settings that differ between the running configuration and a new one and take
/// effect only after a restart, named as in the config file.
fn needs_restart(
    old: &Config,
    new: &Config,
    old_specs: &[TenantSpec],
    new_specs: &[TenantSpec],
) -> Vec<String> {
    let mut changed: Vec<String> = Vec::new();
    let mut differ = |name: &str, same: bool| {
        if !same {
            changed.push(name.to_string());
        }
    };
    // Each named field compared between the two, named `<prefix><field>` when it differs.
    macro_rules! compare {
        ($prefix:literal, $old:expr, $new:expr, [$($field:ident),+ $(,)?]) => {
            $(differ(concat!($prefix, stringify!($field)), $old.$field == $new.$field);)+
        };
    }
    compare!(
        "",
        old,
        new,
        [
            state_dir,
            memory,
            store,
            format,
            batch_events,
            max_record_bytes,
            idle_flush_ms,
            settle_ms,
            record_field,
            outputs,
            queue_batches,
            dead_letter_path,
            route_field,
            incidents,
            spool_dir
        ]
    );
    differ(
        "sources.max_inflight_bytes",
        old.sources.max_inflight_bytes == new.sources.max_inflight_bytes,
    );
    match (&old.sources.http, &new.sources.http) {
        (Some(o), Some(n)) => {
            compare!(
                "sources.http.",
                o,
                n,
                [
                    listen,
                    max_body_bytes,
                    retry_after_secs,
                    allow_plaintext,
                    allow_unauthenticated
                ]
            );
            differ(
                "sources.http.tls_cert (TLS on or off)",
                o.tls_cert.is_some() == n.tls_cert.is_some(),
            );
            differ(
                "sources.http.tls_client_ca (client certificates on or off)",
                o.tls_client_ca.is_some() == n.tls_client_ca.is_some(),
            );
        }
        (None, None) => {}
        _ => differ("sources.http (added or removed)", false),
    }
    match (&old.sources.forward, &new.sources.forward) {
        (Some(o), Some(n)) => {
            compare!(
                "sources.forward.",
                o,
                n,
                [
                    listen,
                    self_hostname,
                    max_message_bytes,
                    max_decompressed_bytes,
                    idle_timeout_secs,
                    max_connections,
                    udp_heartbeat,
                    allow_plaintext,
                    allow_unauthenticated
                ]
            );
            differ(
                "sources.forward.tls_cert (TLS on or off)",
                o.tls_cert.is_some() == n.tls_cert.is_some(),
            );
            differ(
                "sources.forward.tls_client_ca (client certificates on or off)",
                o.tls_client_ca.is_some() == n.tls_client_ca.is_some(),
            );
        }
        (None, None) => {}
        _ => differ("sources.forward (added or removed)", false),
    }
    let names = |specs: &[TenantSpec]| -> Vec<String> {
        let mut names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        names.sort();
        names
    };
    differ(
        "tenant / tenants (tenants added, removed or renamed)",
        names(old_specs) == names(new_specs),
    );
    for spec in new_specs {
        if let Some(running) = old_specs.iter().find(|s| s.name == spec.name) {
            differ(
                &format!("tenants.{}.route_values", spec.name),
                spec.route_values == running.route_values,
            );
            differ(
                &format!("tenants.{}.forward_tag_prefix", spec.name),
                spec.forward_tag_prefix == running.forward_tag_prefix,
            );
        }
    }
    changed
}

/// The sha256 of a tenant's component file (none for the built-in one).
fn component_hash(spec: &TenantSpec) -> Result<Option<[u8; 32]>> {
    let Some(path) = &spec.component else {
        return Ok(None);
    };
    let bytes = std::fs::read(path)
        .with_context(|| format!("failed to read component {}", path.display()))?;
    Ok(Some(Sha256::digest(&bytes).into()))
}

/// `path` made absolute against the working directory (the form watcher events use).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
