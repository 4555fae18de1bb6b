//! Decompression bombs against the memory budget of the sources: four CompressedPackedForward
//! messages and four gzip HTTP bodies, each 1 MB that inflates to 1 GiB, sent at once
//! while a well-behaved sender posts the generated scenario. `serve` must stay under
//! 384 MiB ([`PEAK_MIB`]) of resident memory (its peak, `VmHWM`), answer `/metrics` all along, refuse
//! every bomb (413 or 503 over HTTP, a Forward connection closed without its ack), and
//! give the well-behaved sender the alerts of the scenario.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use minewatch_generator::Layout;

use crate::util::{Server, expected_pairs, post, setup, unique_pairs, write_scenario};

/// The bound on `serve`'s peak resident memory: the default budget (256 MiB) and 128 MiB
/// for the rest of a debug build (runtime, component, pipeline). A budget that freed
/// pages outlive (the allocator keeping them after the give-back) peaks near twice the
/// budget, over 500 MiB.
const PEAK_MIB: u64 = 384;

/// 1 GiB of zeros, gzipped by the system's `gzip` (about 1 MB).
fn gzip_bomb() -> Vec<u8> {
    let out = Command::new("sh")
        .args(["-c", "head -c 1073741824 /dev/zero | gzip -c"])
        .output()
        .expect("sh, head and gzip make the bomb");
    assert!(out.status.success());
    out.stdout
}

/// A CompressedPackedForward message carrying `payload`, asking for an ack.
fn forward_message(payload: &[u8]) -> Vec<u8> {
    let message = rmpv::Value::Array(vec![
        "cloudtrail".into(),
        rmpv::Value::Binary(payload.to_vec()),
        rmpv::Value::Map(vec![
            ("compressed".into(), "gzip".into()),
            ("chunk".into(), "bomb-chunk".into()),
        ]),
    ]);
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &message).unwrap();
    bytes
}

/// The peak resident memory of process `pid` (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

#[test]
fn gzip_bombs_on_both_listeners_stay_within_the_memory_budget() {
    let (dir, _) = setup();
    let scenario = write_scenario(
        &dir,
        &crate::util::scenario_spec(11),
        Layout::Ndjson,
        "scenario.ndjson",
    );
    let lines: Vec<String> = std::fs::read_to_string(dir.join("scenario.ndjson"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let server = Server::start_with(
        &dir,
        &[
            "--memory",
            "--http",
            "127.0.0.1:0",
            "--forward",
            "127.0.0.1:0",
            "--output",
            "alerts.ndjson",
        ],
        &["HTTP", "Fluent Forward"],
    );
    let bomb = Arc::new(gzip_bomb());
    assert!(bomb.len() < 2 << 20, "the bomb is small: {}", bomb.len());

    let done = Arc::new(AtomicBool::new(false));
    let metrics_failures = Arc::new(AtomicUsize::new(0));
    let metrics_polls = Arc::new(AtomicUsize::new(0));
    let poller = {
        let (done, failures, polls) = (
            done.clone(),
            metrics_failures.clone(),
            metrics_polls.clone(),
        );
        let url = server.url("/metrics");
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(10)))
                .build()
                .into();
            while !done.load(Ordering::Relaxed) {
                polls.fetch_add(1, Ordering::Relaxed);
                if agent.get(&url).call().is_err() {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let mut bombers = Vec::new();
    for _ in 0..4 {
        let (payload, address) = (bomb.clone(), server.forward);
        bombers.push(std::thread::spawn(move || {
            let mut stream = TcpStream::connect(address).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(300)))
                .unwrap();
            stream.write_all(&forward_message(&payload)).unwrap();
            let mut answer = Vec::new();
            // Closed without an ack: EOF, or a reset if the server closed before reading all.
            let _ = stream.read_to_end(&mut answer);
            assert!(answer.is_empty(), "a bomb was acked: {answer:?}");
            "forward: closed without ack".to_string()
        }));
        let (payload, url) = (bomb.clone(), server.url("/events"));
        bombers.push(std::thread::spawn(move || {
            let (status, body) = post(&url, &payload, &[("Content-Encoding", "gzip")]);
            assert!(
                status == 413 || status == 503,
                "a bomb got {status}: {body}"
            );
            format!("http: {status}")
        }));
    }

    // The well-behaved sender: the scenario in 200-record requests, retrying 503 and 429
    // as Vector and Fluent Bit do.
    let url = server.url("/events");
    let mut retries = 0;
    for chunk in lines.chunks(200) {
        let body = chunk.join("\n");
        loop {
            let (status, answer) = post(&url, body.as_bytes(), &[]);
            match status {
                200 => break,
                503 | 429 => {
                    retries += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
                other => panic!("the well-behaved sender got {other}: {answer}"),
            }
        }
    }
    let refusals: BTreeSet<String> = bombers.into_iter().map(|b| b.join().unwrap()).collect();
    done.store(true, Ordering::Relaxed);
    poller.join().unwrap();

    let peak_mib = peak_rss_kib(server.pid()) / 1024;
    eprintln!(
        "bombs: {refusals:?}; peak RSS {peak_mib} MiB; well-behaved retries {retries}; \
         /metrics polled {} times",
        metrics_polls.load(Ordering::Relaxed)
    );
    assert!(
        peak_mib < PEAK_MIB,
        "serve peaked at {peak_mib} MiB, over {PEAK_MIB}"
    );
    assert_eq!(
        metrics_failures.load(Ordering::Relaxed),
        0,
        "/metrics failed to answer"
    );
    let log = server.stop();
    let alerts = crate::util::alerts(&std::fs::read(dir.join("alerts.ndjson")).unwrap());
    assert_eq!(unique_pairs(&alerts), expected_pairs(&scenario), "{log}");
}
