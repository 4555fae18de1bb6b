//! What the bench binaries share: the machine they ran on, and the `serve` settings the
//! HTTP benches start from.

use std::path::Path;

use minewatch::config::{Config, SourcesConfig};
use minewatch::serve::outputs::OutputConfig;
use minewatch::sources::http::HttpSourceConfig;

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
