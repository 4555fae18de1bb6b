//! Fuzz target: [`minewatch::fuzzing::cloudtrail_stream`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| minewatch::fuzzing::cloudtrail_stream(data));
