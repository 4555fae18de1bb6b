//! Tenant isolation and start-up benchmark.
//!
//! 1. Start-up: how long a tenant's detector takes to be ready (compiled code from
//!    wasmtime's cache, linked, instantiated, described, configured), and how long a
//!    stopped call plus the rebuild of a fresh instance from the `InstancePre` takes.
//! 2. Isolation: the built-in tenant's events/s over HTTP in an in-process `serve`:
//!    alone (one tenant, prefilter on); beside an idle second tenant (two tenants: every
//!    record is parsed, to route it); beside a quiet tenant and beside a tenant whose
//!    guest loops to its 50 ms deadline on every batch, each fed one small batch every
//!    100 ms by another client (so the looping guest burns up to half a core).
//!
//! Run with `cargo bench --bench isolation` (release build; it builds the hostile test
//! component from `tests/components/hostile` first). Nothing is asserted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use minewatch::config::EngineKind;
use minewatch::runtime::{Engines, GuestLimits};
use minewatch::store::BaselineStore;
use minewatch::{DetectorSpec, build_limited_detector, share};
use minewatch_generator::Spec;
use minewatch_guest::batch::PackedBatch;

mod common;
use common::print_machine;

/// Lines per request to the built-in tenant.
const CHUNK: usize = 2000;

/// How often the second tenant gets a batch, when fed.
const FEED_EVERY: Duration = Duration::from_millis(100);

fn main() -> anyhow::Result<()> {
    print_machine();
    let hostile = build_hostile()?;
    startup(&hostile)?;
    let spec = Spec {
        days: 90,
        events_per_day: 4000,
        ..Spec::default()
    };
    let lines: Vec<String> = minewatch_generator::generate(&spec)
        .events
        .iter()
        .map(|e| e.to_string())
        .collect();
    println!(
        "input: generated scenario, {} records, {CHUNK} per request",
        lines.len()
    );
    let runs = [
        ("alone", None),
        ("beside an idle tenant", Some(("quiet", false))),
        (
            "beside a quiet tenant fed 10 batches/s",
            Some(("quiet", true)),
        ),
        (
            "beside a tenant fed 10 batches/s, each looping to its 50 ms deadline",
            Some(("loop", true)),
        ),
    ];
    let mut best = Vec::new();
    for (label, other) in runs {
        // Best of three, to keep the other engineers' compiles on this machine out of it.
        let mut rates = Vec::new();
        for _ in 0..3 {
            rates.push(measure(&lines, other, &hostile)?);
        }
        let (rate, hostile_batches) = rates
            .into_iter()
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .expect("three runs");
        println!(
            "built-in tenant {label}: {rate:.0} events/s (other tenant's batches meanwhile: {hostile_batches})"
        );
        best.push(rate);
    }
    println!(
        "looping neighbour vs quiet neighbour: {:+.1}%; vs idle neighbour: {:+.1}%; \
         two tenants (idle) vs alone: {:+.1}%",
        (best[3] / best[2] - 1.0) * 100.0,
        (best[3] / best[1] - 1.0) * 100.0,
        (best[1] / best[0] - 1.0) * 100.0
    );
    Ok(())
}

/// Builds `tests/components/hostile` for wasm32-wasip2 under `target/`.
fn build_hostile() -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = root.join("target/hostile-component");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--locked",
            "--release",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--manifest-path")
        .arg(root.join("tests/components/hostile/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .status()?;
    anyhow::ensure!(status.success(), "the hostile component did not build");
    Ok(target.join("wasm32-wasip2/release/minewatch_hostile.wasm"))
}

/// Prints how fast a tenant's detector is ready, and how fast a stopped one is replaced.
fn startup(hostile: &Path) -> anyhow::Result<()> {
    let engines = Engines::new()?;
    let builtin = DetectorSpec {
        engine: EngineKind::Component,
        component: None,
        settings: "{}",
        limits: GuestLimits::default(),
    };
    // The first build may compile (or fill wasmtime's cache); the rest load from it.
    let first = Instant::now();
    build_limited_detector(&engines, &builtin, share(BaselineStore::in_memory()))?;
    let first = first.elapsed();
    let mut ready = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        build_limited_detector(&engines, &builtin, share(BaselineStore::in_memory()))?;
        ready.push(started.elapsed().as_secs_f64() * 1e3);
    }
    ready.sort_by(f64::total_cmp);
    println!(
        "built-in tenant ready (load from cache, link, instantiate, describe, configure): \
         median {:.2} ms, best {:.2} ms (first in this process: {:.1} ms)",
        ready[ready.len() / 2],
        ready[0],
        first.as_secs_f64() * 1e3
    );
    let panicking = DetectorSpec {
        component: Some(hostile),
        settings: r#"{"behaviour":"panic"}"#,
        ..builtin
    };
    let mut detector =
        build_limited_detector(&engines, &panicking, share(BaselineStore::in_memory()))?;
    let empty = PackedBatch::new(detector.info().fields.len());
    let mut rebuilt = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let stopped = detector.detect("bench", &empty);
        rebuilt.push(started.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(stopped.is_err(), "the panicking guest returned");
    }
    rebuilt.sort_by(f64::total_cmp);
    println!(
        "trap + fresh instance from InstancePre + configure: median {:.0} µs, best {:.0} µs",
        rebuilt[rebuilt.len() / 2],
        rebuilt[0]
    );
    Ok(())
}

/// The built-in tenant's events/s, with `other` = (behaviour, fed) as a second tenant
/// running the hostile component, fed every [`FEED_EVERY`] when `fed`; returns the rate
/// and how many batches the other ran meanwhile.
fn measure(
    lines: &[String],
    other: Option<(&str, bool)>,
    hostile: &Path,
) -> anyhow::Result<(f64, u64)> {
    let dir = tempfile::tempdir()?;
    let mut config = common::http_serve_config(dir.path())?;
    if let Some((behaviour, _)) = other {
        config.tenants = vec![toml::from_str(&format!(
            "name = \"other\"\ncomponent = {hostile:?}\nbatch_cpu_ms = 50\n\
             [detector]\nbehaviour = \"{behaviour}\"\n"
        ))?];
    }
    let served = common::Served::start(config)?;
    let base = served.base.clone();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let done = Arc::new(AtomicBool::new(false));
    let other_batches = Arc::new(AtomicU64::new(0));
    let feeder = other.filter(|(_, fed)| *fed).map(|_| {
        let (done, count, url) = (
            done.clone(),
            other_batches.clone(),
            format!("{base}/tenants/other/events"),
        );
        let body: String = lines
            .iter()
            .filter(|l| l.contains("\"RunInstances\""))
            .take(4)
            .map(|l| format!("{l}\n"))
            .collect();
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            while !done.load(Ordering::Relaxed) {
                let sent = Instant::now();
                if agent.post(&url).send(body.as_bytes()).is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(FEED_EVERY.saturating_sub(sent.elapsed()));
            }
        })
    });
    let url = format!("{base}/events");
    let started = Instant::now();
    for chunk in lines.chunks(CHUNK) {
        let response = agent.post(&url).send(chunk.join("\n").as_bytes())?;
        anyhow::ensure!(response.status() == 200, "{}", response.status());
    }
    let rate = lines.len() as f64 / started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    served.stop()?;
    Ok((rate, other_batches.load(Ordering::Relaxed)))
}
