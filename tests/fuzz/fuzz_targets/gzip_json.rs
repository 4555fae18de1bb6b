//! Fuzz target: [`minewatch::fuzzing::gzip_json`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| minewatch::fuzzing::gzip_json(data));
