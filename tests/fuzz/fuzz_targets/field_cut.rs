//! Fuzz target: [`minewatch::fuzzing::field_cut`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| minewatch::fuzzing::field_cut(data));
