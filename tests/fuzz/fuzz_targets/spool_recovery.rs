//! Fuzz target: [`minewatch::fuzzing::spool_recovery`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| minewatch::fuzzing::spool_recovery(data));
