//! Builds the guest detector component and embeds it in the host crate.
//!
//! The guest is built with the same cargo, in its own target directory under `OUT_DIR`
//! (the way wasmtime's `crates/test-programs` builds its guests), so a fresh clone builds
//! with plain `cargo build`.
//!
//! minewatch ships this component inside the binary, so a build without it is a broken
//! product, never a quiet success. `rust-toolchain.toml` names the `wasm32-wasip2` target,
//! but rustup adds it only to toolchains installed after it saw the file; a machine with an
//! older `stable` lacks it. So, before building the guest, this script asks the compiler
//! whether the target's standard library is installed, and if not:
//! - under rustup (`RUSTUP_TOOLCHAIN` is set), it runs `rustup target add wasm32-wasip2`
//!   for the toolchain in use and says so in a build warning;
//! - otherwise, or if that fails, the build fails with the one command to run.
//!
//! A failed build script is run again by the next build, so installing the target and
//! rebuilding repairs the binary; no `cargo clean` is needed.
//!
//! `MINEWATCH_GUEST_TOOLCHAIN=<toolchain>` builds the guest with another rustup toolchain
//! than the host's: the nightly that builds the fuzz targets (`tests/fuzz`) has no
//! `wasm32-wasip2`, the stable one does.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The target the guest component is built for.
const TARGET: &str = "wasm32-wasip2";

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir.parent().expect("host lives in the workspace");
    let target_dir = out_dir.join("guest-target");
    let wasm = target_dir.join(TARGET).join("guest/minewatch_guest.wasm");
    let embedded = out_dir.join("cryptomining.wasm");

    for path in ["wit", "guest/src", "guest/Cargo.toml", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }

    println!("cargo:rerun-if-env-changed=MINEWATCH_GUEST_TOOLCHAIN");
    let mut cargo = match env::var("MINEWATCH_GUEST_TOOLCHAIN") {
        Ok(toolchain) => {
            let mut cargo = Command::new("cargo");
            cargo
                .env("RUSTUP_TOOLCHAIN", toolchain)
                .env_remove("RUSTC")
                .env_remove("RUSTC_WRAPPER")
                .env_remove("RUSTDOC");
            cargo
        }
        Err(_) => {
            let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
            let libdir = target_libdir(&rustc)?;
            if !target_installed(&libdir) {
                install_target(&libdir)?;
            }
            Command::new(env::var("CARGO")?)
        }
    };
    cargo
        .current_dir(workspace)
        .args(["build", "-p", "minewatch-guest", "--target", TARGET])
        .args(["--profile", "guest"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS");
    if env::var("CI").is_ok() {
        cargo.env("RUSTFLAGS", "-D warnings");
    }
    let status = cargo
        .status()
        .context("failed to run cargo for the guest")?;
    if !status.success() {
        bail!("the detector component (guest/) did not build for {TARGET}: {status}; see above");
    }
    std::fs::copy(&wasm, &embedded)
        .with_context(|| format!("failed to copy {}", wasm.display()))?;
    emit_dependencies(&wasm.with_extension("d"));
    std::fs::write(
        out_dir.join("gen.rs"),
        format!(
            "/// The built-in detector component, built from `guest/` for `{TARGET}`.\n\
             pub const GUEST_COMPONENT: &[u8] = include_bytes!({embedded:?});\n"
        ),
    )?;
    Ok(())
}

/// Where `rustc` keeps the standard library for [`TARGET`] (it prints the path whether or
/// not the target is installed).
fn target_libdir(rustc: &str) -> anyhow::Result<PathBuf> {
    let out = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .with_context(|| format!("failed to run {rustc}"))?;
    if !out.status.success() {
        bail!(
            "{rustc} does not know the {TARGET} target (rustc 1.82 or newer is needed): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// Whether the target's `std` is in `libdir`.
fn target_installed(libdir: &Path) -> bool {
    std::fs::read_dir(libdir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libstd-") && name.ends_with(".rlib")
        })
    })
}

/// Installs [`TARGET`] with rustup for the toolchain this build runs on, or fails with
/// the command the user has to run.
fn install_target(libdir: &Path) -> anyhow::Result<()> {
    let fix = format!("run `rustup target add {TARGET}` and build again");
    let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") else {
        bail!(
            "the {TARGET} target is not installed for this Rust toolchain (no {}), and \
             minewatch embeds its detector component built for it: {fix} (or install the \
             {TARGET} standard library the way this toolchain was installed)",
            libdir.display()
        );
    };
    println!(
        "cargo:warning=installing the {TARGET} target for toolchain {toolchain} with rustup \
         (the built-in detector component is built for it)"
    );
    let status = Command::new("rustup")
        .args(["target", "add", TARGET, "--toolchain", &toolchain])
        .status();
    match status {
        Ok(s) if s.success() && target_installed(libdir) => Ok(()),
        Ok(s) => bail!(
            "`rustup target add {TARGET} --toolchain {toolchain}` failed ({s}); the built-in \
             detector component cannot be built without it: {fix}"
        ),
        Err(e) => bail!(
            "the {TARGET} target is not installed and rustup could not be run ({e}); the \
             built-in detector component cannot be built without it: {fix}"
        ),
    }
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
