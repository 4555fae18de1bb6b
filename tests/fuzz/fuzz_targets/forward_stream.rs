//! Fuzz target: [`minewatch::fuzzing::forward_stream`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| minewatch::fuzzing::forward_stream(data));
