//! The decoders of untrusted bytes, each behind one entry point that the fuzz targets
//! (`tests/fuzz`, cargo-fuzz) and their corpus replay in `cargo test` call. Each entry
//! decodes as the product does and asserts what must hold for any input, beyond not
//! panicking: nothing is held against the memory budget afterwards, no decoder keeps
//! more than its limits allow, a scanner always makes progress, and what is accepted
//! has the shape its consumers expect. Not an API for embedding.
//!
//! Byte targets take the input as it would arrive; the structure-aware ones
//! ([`forward_frames`], [`gzip_json`], [`field_cut`]) build valid containers from it
//! with `arbitrary`, to reach the states behind a gzip member or a msgpack header.

mod field_cut;
mod forward_frames;
mod gzip_json;

pub use field_cut::field_cut;
pub use forward_frames::forward_frames;
pub use gzip_json::gzip_json;

use std::io::BufReader;
use std::sync::LazyLock;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;

use crate::intake::{Prefilter, ReadOptions, read_stream};
use crate::sources::Collected;
use crate::sources::budget::Budget;
use crate::sources::fluent::protocol::{self, Decoded, FrameScanner, Limits, ProtocolError};

/// Largest message, decompressed payload and body the targets allow (1 MiB), small so
/// that inputs can reach the limits.
const LIMIT: usize = 1 << 20;

/// The memory budget of one input: four times the limit.
const BUDGET: usize = 4 * LIMIT;

/// The built-in detector's prefilter and field cut, as in `serve`.
fn prefilter() -> Prefilter {
    let info = minewatch_guest::Detector::describe();
    Prefilter::new(
        info.subscriptions
            .iter()
            .flat_map(|s| s.event_names.iter().map(String::as_str)),
        info.fields.iter().map(String::as_str),
    )
}

/// One gzip member of `bytes`.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// A gzip member of zeros that inflates to an eighth more than [`LIMIT`], made once.
fn bomb() -> &'static [u8] {
    static BOMB: LazyLock<Vec<u8>> = LazyLock::new(|| {
        use std::io::Write;
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder
            .write_all(&vec![0; LIMIT + LIMIT / 8])
            .expect("gzip into memory");
        encoder.finish().expect("gzip into memory")
    });
    &BOMB
}

/// Up to 64 bytes of the input as text (invalid UTF-8 replaced).
fn text(u: &mut arbitrary::Unstructured) -> arbitrary::Result<String> {
    let len = u.int_in_range(0..=64usize)?;
    let bytes = u.bytes(len.min(u.len()))?;
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// A Fluent Forward connection's bytes: messages cut by the frame scanner and decoded
/// in any of the four modes (gzip included).
pub fn forward_stream(data: &[u8]) {
    scan_forward(data);
}

/// What one Forward frame decoded to: its records as JSON, none for a heartbeat.
type FrameOutcome = Result<Option<Vec<Value>>, ProtocolError>;

/// Scans a connection's bytes into frames and decodes each as the Forward source does,
/// asserting what holds for any input: every frame is non-empty and inside the input,
/// every record is a map, the memory budget is given back. Returns each frame's outcome
/// and how many bytes were left unscanned.
fn scan_forward(data: &[u8]) -> (Vec<FrameOutcome>, usize) {
    let budget = Budget::new(BUDGET);
    let limits = Limits {
        max_decompressed_bytes: LIMIT,
        budget: budget.clone(),
    };
    let mut scanner = FrameScanner::default();
    let mut rest = data;
    let mut frames = Vec::new();
    while let Ok(Some(len)) = scanner.scan(rest, LIMIT) {
        assert!(
            len > 0 && len <= rest.len(),
            "a frame of {len} bytes in {}",
            rest.len()
        );
        let (frame, after) = rest.split_at(len);
        frames.push(
            protocol::decode_message(frame, &limits).map(|decoded| match decoded {
                Decoded::Events(chunk) => {
                    assert!(chunk.held.bytes() <= BUDGET);
                    let records: Vec<Value> =
                        chunk.batch.records.into_iter().map(|r| r.record).collect();
                    assert!(
                        records.iter().all(Value::is_object),
                        "a Forward record that is not a map"
                    );
                    Some(records)
                }
                Decoded::Heartbeat => None,
            }),
        );
        rest = after;
    }
    assert_eq!(budget.in_use(), 0, "the budget was not given back");
    (frames, rest.len())
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

/// `len` pseudo-random bytes from `seed` (xorshift), for the builders' own tests.
#[cfg(test)]
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
