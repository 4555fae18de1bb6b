//! Fuzz target: [`minewatch::fuzzing::config_text`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| minewatch::fuzzing::config_text(data));
