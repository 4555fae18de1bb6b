//! Feeds a CloudTrail file through the built-in detector component and prints the alerts.
//!
//! Run it with: `cargo run --example replay_file -- tests/data/conformance/spike-dedup/events.ndjson`

use std::path::PathBuf;

use anyhow::{Context, Result};
use minewatch::config::EngineKind;
use minewatch::intake::{ReadOptions, read_file};
use minewatch::pipeline::{Output, Pipeline, PipelineOptions};
use minewatch::sinks::MemorySink;
use minewatch::store::BaselineStore;

fn main() -> Result<()> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .context("usage: replay_file FILE")?
        .into();

    // 1. Baselines: in memory here; `BaselineStore::open(dir)` gives the durable store.
    let baselines = minewatch::share(BaselineStore::in_memory());

    // 2. The detector: the component embedded in the minewatch crate, run by wasmtime,
    //    configured with default settings ("{}").
    let detector = minewatch::build_detector(EngineKind::Component, None, "{}", baselines.clone())?;

    // 3. A pipeline from records to a sink that keeps the alerts in memory.
    let sink = MemorySink::default();
    let outputs = vec![Output::alerts("memory", Box::new(sink.clone()))];
    let mut pipeline = Pipeline::new(detector, baselines, outputs, PipelineOptions::default())?;

    // 4. Read the file (any format minewatch sniffs) into the pipeline, then flush.
    read_file(&path, ReadOptions::default(), &mut pipeline)?;
    let summary = pipeline.finish()?;

    // 5. Print the alerts and what was read.
    for alert in sink.alerts() {
        println!(
            "{} {}: {}",
            alert["detection"], alert["key"], alert["message"]
        );
    }
    eprint!("{summary}");
    Ok(())
}
