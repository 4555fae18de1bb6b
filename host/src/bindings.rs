//! Host bindings generated from `../wit` by `wasmtime::component::bindgen!`.
//!
//! Set `WASMTIME_DEBUG_BINDGEN=1` when building to write the generated code to a file
//! for reading. Only the items the host uses are re-exported.

mod generated {
    #![expect(missing_docs, reason = "bindgen-generated code")]
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "detector-world",
        // Imports may trap: that is how the host stops a guest that breaks an import bound.
        imports: { default: trappable },
        // The batch goes to `detect` as borrowed slices of the host's packed batch.
        ownership: Borrowing { duplicate_if_necessary: false },
    });
}

pub use generated::DetectorWorld;
pub use generated::minewatch::detector::{baseline, log, types};
