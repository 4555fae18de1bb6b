//! The `filter_wasm` ABI: the exported function Fluent Bit calls once per record.
//!
//! ```text
//! minewatch_filter(tag, tag_len, time_sec, time_nsec, record, record_len) -> result
//! ```
//! With `event_format json`, `record` points at the record body as JSON, copied by
//! Fluent Bit into this module's memory with the exported `malloc` (see `build.rs`), and
//! `result` must point at a NUL-terminated JSON object that replaces the record. It
//! points into a buffer the module keeps and reuses; Fluent Bit copies it before the next
//! call. The tag and the time are not used.
//!
//! Fail-open: whatever goes wrong (a settings file that does not load, a record that is
//! not JSON), the record comes back unchanged. A panic would abort, which is a trap, and
//! Fluent Bit drops the record of a trapping call, so the code on this path does not
//! panic on any input. Should a call trap all the same (out of memory), the filter state
//! it had taken is gone; the next call notices, says so on stderr and starts over from
//! the settings file and the seed.
// Fluent Bit's ABI passes raw addresses into linear memory; reading the record through
// one is the only unsafe operation of the plugin.
#![allow(unsafe_code, reason = "Fluent Bit's filter ABI passes raw pointers")]

use std::cell::Cell;
use std::io::Write;
use std::path::Path;

use crate::filter::Filter;
use crate::settings::SETTINGS_FILE;

/// Where the filter is between calls.
enum Slot {
    /// Before the first record.
    Unloaded,
    /// Taken by a call in progress; found at the start of a call, the last call trapped.
    Taken,
    /// Ready for the next record.
    Ready(Box<Filter>),
    /// The settings or the seed did not load: every record passes unchanged.
    Disabled,
}

thread_local! {
    static SLOT: Cell<Slot> = const { Cell::new(Slot::Unloaded) };
    /// The returned record, NUL-terminated, reused across calls.
    static OUTPUT: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Writes one line to stderr (Fluent Bit's), ignoring a failure to write it.
fn say(message: &str) {
    let _ = writeln!(std::io::stderr(), "minewatch-fluent-bit: {message}");
}

fn load() -> Slot {
    match Filter::load(Path::new(SETTINGS_FILE)) {
        Ok((filter, loaded)) => {
            say(&format!("detections ready: {loaded}."));
            Slot::Ready(Box::new(filter))
        }
        Err(error) => {
            say(&format!(
                "{error}; detection is off and records pass unchanged."
            ));
            Slot::Disabled
        }
    }
}

/// The filter function: `function_name: minewatch_filter` in Fluent Bit's configuration.
///
/// Returns the record with its alerts in `minewatch_alerts` when it triggers any, else
/// the record unchanged, byte for byte; NUL-terminated, valid until the next call.
///
/// # Safety
/// `record` must point at `record_len` readable bytes of this module's memory (or be
/// null with `record_len` 0) for the duration of the call, as Fluent Bit guarantees.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn minewatch_filter(
    _tag: *const u8,
    _tag_len: u32,
    _time_sec: u32,
    _time_nsec: u32,
    record: *const u8,
    record_len: u32,
) -> *const u8 {
    let record: &[u8] = if record.is_null() {
        &[]
    } else {
        // SAFETY: the caller passes the address and length of the record it copied into
        // this module's memory, which it frees only after this call returns.
        unsafe { std::slice::from_raw_parts(record, record_len as usize) }
    };
    let mut out = OUTPUT.take();
    let mut slot = match SLOT.replace(Slot::Taken) {
        Slot::Unloaded => load(),
        Slot::Taken => {
            say("the previous record trapped; reloading the settings and the seed.");
            load()
        }
        loaded => loaded,
    };
    let alerted = match &mut slot {
        Slot::Ready(filter) => filter.process(record, &mut out),
        _ => false,
    };
    SLOT.set(slot);
    if !alerted {
        out.clear();
        out.extend_from_slice(record);
    }
    out.push(0);
    let result = out.as_ptr();
    OUTPUT.set(out);
    result
}
