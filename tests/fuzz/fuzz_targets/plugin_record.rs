//! Fuzz target: [`minewatch_fluent_bit::fuzzing::records`], the Fluent Bit plugin's
//! record path compiled natively.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| minewatch_fluent_bit::fuzzing::records(data));
