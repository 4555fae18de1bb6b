//! The decoders of untrusted bytes, each behind one entry point that the fuzz targets
//! (`tests/fuzz`, cargo-fuzz) and their corpus replay in `cargo test` call. Each entry
//! decodes as the product does and asserts what must hold for any input, beyond not
//! panicking: nothing is held against the memory budget afterwards, no decoder keeps
//! more than its limits allow, a scanner always makes progress, and what is accepted
//! has the shape its consumers expect. Not an API for embedding.

use std::io::BufReader;
use std::time::Duration;

use serde_json::Value;

use crate::intake::{Prefilter, ReadOptions, read_stream};
use crate::sources::Collected;
use crate::sources::budget::Budget;
use crate::sources::fluent::protocol::{self, Decoded, FrameScanner, Limits};

/// Largest message, decompressed payload and body the targets allow (1 MiB), small so
/// that inputs can reach the limits.
const LIMIT: usize = 1 << 20;

/// The memory budget of one input: four times the limit.
const BUDGET: usize = 4 * LIMIT;

/// What the detectors subscribe to, so the prefilter and the field cut run as in `serve`.
fn prefilter() -> Prefilter {
    Prefilter::new(
        ["RunInstances", "StartInstances"],
        [
            "eventSource",
            "eventName",
            "eventTime",
            "awsRegion",
            "userIdentity.arn",
            "requestParameters.instanceType",
        ],
    )
}

/// A Fluent Forward connection's bytes: messages cut by the frame scanner and decoded
/// in any of the four modes (gzip included).
pub fn forward_stream(data: &[u8]) {
    let budget = Budget::new(BUDGET);
    let limits = Limits {
        max_decompressed_bytes: LIMIT,
        budget: budget.clone(),
    };
    let mut scanner = FrameScanner::default();
    let mut rest = data;
    while let Ok(Some(len)) = scanner.scan(rest, LIMIT) {
        assert!(
            len > 0 && len <= rest.len(),
            "a frame of {len} bytes in {}",
            rest.len()
        );
        let (frame, after) = rest.split_at(len);
        if let Ok(Decoded::Events(chunk)) = protocol::decode_message(frame, &limits) {
            assert!(chunk.held.bytes() <= BUDGET);
            for record in &chunk.batch.records {
                assert!(
                    record.record.is_object(),
                    "a Forward record that is not a map"
                );
            }
        }
        rest = after;
    }
    assert_eq!(budget.in_use(), 0, "the budget was not given back");
}

/// An HTTP request body, as JSON / NDJSON (first byte even) or msgpack (odd), gzip by
/// its magic bytes.
pub fn http_body(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let budget = Budget::new(BUDGET);
    let mut collected = Collected {
        prefilter: Some(prefilter()),
        ..Collected::default()
    };
    let read = ReadOptions {
        max_record_bytes: 64 * 1024,
    };
    let _ = crate::sources::http::payload::decode(
        body,
        mode % 2 == 1,
        "fuzz".into(),
        read,
        LIMIT,
        &budget,
        &mut collected,
    );
    check_records(&collected);
    assert_eq!(budget.in_use(), 0, "the budget was not given back");
}

/// A file or stdin: gzip sniffed, JSON documents, NDJSON, CloudTrail's envelopes, long
/// lines cut to the subscribed fields.
pub fn cloudtrail_stream(data: &[u8]) {
    let mut collected = Collected {
        prefilter: Some(prefilter()),
        ..Collected::default()
    };
    let read = ReadOptions {
        max_record_bytes: 4 * 1024,
    };
    let _ = read_stream(BufReader::new(data), "fuzz".into(), read, &mut collected);
    check_records(&collected);
}

/// Every record handed on is a JSON object (what the router and the projection read).
fn check_records(collected: &Collected) {
    for (record, _) in &collected.records {
        assert!(
            matches!(record, Value::Object(_)),
            "a record that is not an object: {record}"
        );
    }
}

/// A spool directory after a crash: the input split at `0xff` bytes into segment files
/// (the first part, when it starts with `c`, the cursor), then opened and read to the
/// end. Whatever it recovers, it hands on whole lines (no newline inside one, the
/// delivery thread dead-letters those that are not JSON) and never more bytes than the
/// segments held.
pub fn spool_recovery(data: &[u8]) {
    let dir = SpoolDir::new();
    let mut offset = 0u64;
    for (index, part) in data.split(|&b| b == 0xff).enumerate() {
        if index == 0 && part.first() == Some(&b'c') {
            std::fs::write(dir.path().join("cursor"), &part[1..]).expect("write the cursor");
            continue;
        }
        let name = format!("segment-{offset:020}.ndjson");
        std::fs::write(dir.path().join(name), part).expect("write a segment");
        offset += part.len() as u64;
    }
    let options = crate::sinks::spool::SpoolOptions::default();
    let Ok((_writer, mut reader)) = crate::sinks::spool::open(dir.path(), "fuzz", &options) else {
        return;
    };
    let mut handed = 0u64;
    while let Ok(Some(batch)) = reader.next_batch(64, 64 * 1024, Duration::ZERO) {
        for line in batch.lines() {
            assert!(!line.contains(&b'\n'), "a line with a newline inside");
            // Bytes of lines, not of their newlines: an older segment cut without its
            // last newline (a state only a damaged disk makes) still hands that line on.
            handed += line.len() as u64;
        }
        assert!(handed <= offset, "{handed} bytes handed on from {offset}");
        if reader.commit(batch.end()).is_err() {
            return;
        }
    }
}

/// A fresh directory under the system's temporary directory, removed when dropped.
struct SpoolDir(std::path::PathBuf);

impl SpoolDir {
    fn new() -> SpoolDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "minewatch-fuzz-spool-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a temporary directory");
        SpoolDir(path)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for SpoolDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A configuration file's text: parsed, checked and validated like `minewatch validate`.
pub fn config_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = toml::from_str::<crate::config::Config>(text) {
        let _ = config.problems();
        let _ = config.tenant_specs();
    }
}
