//! HTTP ingest benchmark: Vector-shaped requests (gzip NDJSON batches) against an
//! in-process `serve`, reporting events/s, MB/s and acknowledgement latency percentiles.
//!
//! Run with `cargo bench --bench http_ingest` (release build). It prints the machine,
//! the input and every figure; nothing is asserted.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minewatch::config::Config;
use minewatch_generator::Spec;

mod common;
use common::print_machine;

const CLIENTS: usize = 2;

fn main() -> anyhow::Result<()> {
    print_machine();
    let spec = Spec {
        days: 60,
        events_per_day: 2000,
        ..Spec::default()
    };
    let started = Instant::now();
    let scenario = minewatch_generator::generate(&spec);
    let lines: Vec<String> = scenario.events.iter().map(|e| e.to_string()).collect();
    let raw_bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    println!(
        "input: generated scenario, {} days x {} events/day = {} records, {:.1} MB NDJSON ({:.1} s to generate)",
        spec.days,
        spec.events_per_day,
        lines.len(),
        raw_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    for batch in [1000, 5000, 10_000] {
        run(&lines, batch, raw_bytes)?;
    }
    Ok(())
}

fn run(lines: &[String], batch: usize, raw_bytes: usize) -> anyhow::Result<()> {
    let bodies: Vec<Vec<u8>> = lines
        .chunks(batch)
        .map(|chunk| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(chunk.join("\n").as_bytes()).unwrap();
            gz.finish().unwrap()
        })
        .collect();
    let dir = tempfile::tempdir()?;
    let config = Config {
        // Each client posts one request at a time: run each on arrival. (The default
        // settle time groups concurrent senders' requests to put them in event-time
        // order; it would add up to 250 ms to every acknowledgement here.)
        settle_ms: 0,
        ..common::http_serve_config(dir.path())?
    };
    let served = common::Served::start(config)?;
    let url = format!("{}/events", served.base);

    // Warm up (first connections, allocator, page cache) with the first requests, untimed;
    // they are sent again below, as retries Vector could make, and deduplicated.
    let warm: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    for body in bodies.iter().take(5) {
        warm.post(&url)
            .header("Content-Encoding", "gzip")
            .send(&body[..])?;
    }
    let queue = Arc::new(Mutex::new(
        bodies
            .into_iter()
            .collect::<std::collections::VecDeque<_>>(),
    ));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (queue, latencies, url) = (queue.clone(), latencies.clone(), url.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                loop {
                    let Some(body) = queue.lock().unwrap().pop_front() else {
                        break;
                    };
                    loop {
                        let sent = Instant::now();
                        let status = agent
                            .post(&url)
                            .header("Content-Encoding", "gzip")
                            .send(&body[..])
                            .map(|r| r.status().as_u16())
                            .unwrap_or(0);
                        if status == 200 {
                            latencies.lock().unwrap().push(sent.elapsed());
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let wall = started.elapsed().as_secs_f64();
    let summary = served.stop()?;
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "batch {batch:>6} events, {CLIENTS} clients: {:>9.0} events/s, {:>6.1} MB/s, {} requests, ack latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} alerts)",
        lines.len() as f64 / wall,
        raw_bytes as f64 / 1e6 / wall,
        latencies.len(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        summary.total_alerts()
    );
    Ok(())
}
