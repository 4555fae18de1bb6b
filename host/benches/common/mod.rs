//! What the bench binaries share: the machine they ran on, and the `serve` settings the
//! HTTP benches start from.

use std::path::Path;

use minewatch::config::{Config, SourcesConfig};
use minewatch::serve::outputs::OutputConfig;
use minewatch::serve::{self, Listeners};
use minewatch::sources::http::HttpSourceConfig;
use minewatch::summary::RunSummary;

/// `serve` settings for a bench: baselines in memory, the HTTP source on a free
/// loopback port, alerts to `<dir>/alerts.ndjson`.
#[allow(dead_code, reason = "the pipeline bench serves nothing")]
pub fn http_serve_config(dir: &Path) -> anyhow::Result<Config> {
    Ok(Config {
        memory: true,
        state_dir: dir.join("state"),
        sources: SourcesConfig {
            http: Some(HttpSourceConfig {
                listen: "127.0.0.1:0".parse()?,
                ..HttpSourceConfig::default()
            }),
            ..SourcesConfig::default()
        },
        outputs: vec![OutputConfig::from_flag(
            &dir.join("alerts.ndjson").to_string_lossy(),
            Default::default(),
            false,
        )],
        ..Config::default()
    })
}

/// Prints the CPU model, core count and memory.
pub fn print_machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    println!(
        "machine: {cpu}, {cores} cores, {:.0} GiB RAM",
        memory as f64 / 1048576.0
    );
}

/// A `serve` running on its own two-thread runtime, for the HTTP benches.
#[allow(dead_code, reason = "the pipeline bench serves nothing")]
pub struct Served {
    /// The runtime it runs on.
    pub runtime: tokio::runtime::Runtime,
    /// `http://<address>` of its HTTP listener.
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<RunSummary>>,
}

#[allow(dead_code, reason = "the pipeline bench serves nothing")]
impl Served {
    /// Binds `config`'s listeners and starts serving.
    pub fn start(config: Config) -> anyhow::Result<Served> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let listeners = runtime.block_on(Listeners::bind(&config))?;
        let base = format!("http://{}", listeners.http.as_ref().unwrap().local_addr()?);
        let server = runtime.spawn(serve::serve(config, listeners, async {
            let _ = stopped.await;
        }));
        Ok(Served {
            runtime,
            base,
            stop,
            server,
        })
    }

    /// Shuts it down as SIGTERM would and returns its summary.
    pub fn stop(self) -> anyhow::Result<RunSummary> {
        let _ = self.stop.send(());
        self.runtime.block_on(self.server)?
    }
}
