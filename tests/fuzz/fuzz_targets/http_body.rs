//! Fuzz target: [`minewatch::fuzzing::http_body`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| minewatch::fuzzing::http_body(data));
