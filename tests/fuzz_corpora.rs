//! The fuzz targets' corpora (`tests/fuzz/corpus/<target>/`: seeds, and every input a
//! campaign found that failed once) replayed through the same entry points on stable, so
//! a decoder change that breaks an old finding fails here, without nightly or libFuzzer.

use std::path::Path;

use minewatch::fuzzing;
use minewatch_fluent_bit::fuzzing as plugin;

/// Runs `entry` over every file of the target's corpus; fails naming each input that
/// panicked.
fn replay(target: &str, entry: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fuzz/corpus")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{} holds no inputs", dir.display());
    let failed: Vec<String> = inputs
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap();
            std::panic::catch_unwind(|| entry(&data)).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{target} panicked on {failed:?}");
}

#[test]
fn forward_stream_corpus() {
    replay("forward_stream", fuzzing::forward_stream);
}

#[test]
fn http_body_corpus() {
    replay("http_body", fuzzing::http_body);
}

#[test]
fn cloudtrail_stream_corpus() {
    replay("cloudtrail_stream", fuzzing::cloudtrail_stream);
}

#[test]
fn spool_recovery_corpus() {
    replay("spool_recovery", fuzzing::spool_recovery);
}

#[test]
fn config_text_corpus() {
    replay("config_text", fuzzing::config_text);
}

#[test]
fn forward_frames_corpus() {
    replay("forward_frames", fuzzing::forward_frames);
}

#[test]
fn gzip_json_corpus() {
    replay("gzip_json", fuzzing::gzip_json);
}

#[test]
fn field_cut_corpus() {
    replay("field_cut", fuzzing::field_cut);
}

#[test]
fn plugin_record_corpus() {
    replay("plugin_record", plugin::records);
}
