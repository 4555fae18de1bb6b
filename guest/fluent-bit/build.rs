//! Exports the C library's `malloc` and `free` from the wasm module.
//!
//! Fluent Bit (WAMR) copies the tag and the record into the module with the module's own
//! `malloc` and releases them with its `free` when the module exports both; otherwise it
//! carves a separate heap out of linear memory. On `wasm32-wasip1` Rust's allocator is
//! wasi-libc's `malloc`, so exporting that one keeps a single heap with no code of ours.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-cdylib-link-arg=--export=malloc");
        println!("cargo:rustc-cdylib-link-arg=--export=free");
    }
}
