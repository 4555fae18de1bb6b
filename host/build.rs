//! Builds the guest detector component and hands its path to the host crate.
//!
//! The guest is built with the same cargo, in its own target directory under `OUT_DIR`
//! (the way wasmtime's `crates/test-programs` builds its guests), so a fresh clone builds
//! with plain `cargo build`. `rust-toolchain.toml` names the `wasm32-wasip2` target, so
//! rustup installs it; if it is still missing, the host builds anyway and the embedded
//! component is empty, with a readable error when something tries to load it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir.parent().expect("host lives in the workspace");
    let target_dir = out_dir.join("guest-target");
    let wasm = target_dir.join("wasm32-wasip2/guest/minewatch_guest.wasm");
    let embedded = out_dir.join("cryptomining.wasm");

    for path in ["wit", "guest/src", "guest/Cargo.toml", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }

    let mut cargo = Command::new(env::var("CARGO")?);
    cargo
        .current_dir(workspace)
        .args([
            "build",
            "-p",
            "minewatch-guest",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "guest",
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS");
    if env::var("CI").is_ok() {
        cargo.env("RUSTFLAGS", "-D warnings");
    }
    let status = cargo.status()?;
    let error = if status.success() {
        std::fs::copy(&wasm, &embedded)?;
        emit_dependencies(&wasm.with_extension("d"));
        String::new()
    } else {
        println!(
            "cargo:warning=the guest component did not build; run `rustup target add wasm32-wasip2` and rebuild"
        );
        std::fs::write(&embedded, [])?;
        "the built-in detector component was not built (is the wasm32-wasip2 target installed? \
         run `rustup target add wasm32-wasip2` and rebuild)"
            .to_string()
    };
    std::fs::write(
        out_dir.join("gen.rs"),
        format!(
            "/// The built-in detector component, built from `guest/`.\n\
             pub const GUEST_COMPONENT: &[u8] = include_bytes!({embedded:?});\n\
             /// Why [`GUEST_COMPONENT`] is empty, when it is.\n\
             pub const GUEST_BUILD_ERROR: &str = {error:?};\n"
        ),
    )?;
    Ok(())
}

/// Re-runs this script when any source file of the guest build changes.
fn emit_dependencies(dep_file: &Path) {
    let Ok(deps) = std::fs::read_to_string(dep_file) else {
        return;
    };
    for line in deps.lines() {
        if let Some((_, sources)) = line.split_once(": ") {
            for source in sources.split_whitespace() {
                println!("cargo:rerun-if-changed={source}");
            }
        }
    }
}
