//! Fuzz target: [`minewatch::fuzzing::forward_frames`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| minewatch::fuzzing::forward_frames(data));
