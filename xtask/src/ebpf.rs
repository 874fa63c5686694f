//! `cargo xtask build-ebpf`: build the eBPF object with Debian's rustc and bpf-linker.

use std::{
    env,
    ffi::OsString,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Context, Result};

use crate::{process, Workspace};

/// Debian's rustc (rustc-web, LLVM 22): it has the std sources `-Z build-std=core` needs.
const RUSTC: &str = "/usr/bin/rustc";

/// The std sources rust-web-src installs for Debian's rustc.
const RUST_SRC: &str = "/usr/lib/rustlib/src/rust/library/core";

/// BTF for the loader, and debug info to derive it from.
const RUSTFLAGS: &str = "-C debuginfo=2 -C link-arg=--btf";

/// The eBPF target.
const TARGET: &str = "bpfel-unknown-none";

/// Variables of the outer cargo invocation (or the user's shell) that would change or break
/// the eBPF build: wrappers and compilers built for the host, flags meant for the host, other
/// targets and target directories. RUSTC and RUSTFLAGS are replaced rather than removed.
const LEAKY_VARS: &[&str] = &[
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_TARGET_BPFEL_UNKNOWN_NONE_LINKER",
    "CARGO_TARGET_BPFEL_UNKNOWN_NONE_RUSTFLAGS",
];

/// Where the object lands under the workspace root; proxy-user's build.rs embeds it from here.
pub fn object_path(root: &Path) -> PathBuf {
    root.join("target/ebpf")
        .join(TARGET)
        .join("release/veil-ebpf")
}

/// Builds the eBPF object and returns its path.
pub fn build(ws: &Workspace) -> Result<PathBuf> {
    let linker = ws.bpf_linker();
    for (what, path) in [
        ("Debian's rustc (rustc-web)", Path::new(RUSTC)),
        ("bpf-linker", linker.as_path()),
        ("the Rust std sources (rust-web-src)", Path::new(RUST_SRC)),
    ] {
        if !path.exists() {
            bail!(
                "{what} is missing ({}): run `cargo xtask setup` first",
                path.display()
            );
        }
    }
    let mut path = OsString::from(ws.tools_bin());
    if let Some(outer) = env::var_os("PATH") {
        path.push(":");
        path.push(outer);
    }
    let mut cmd = process::cargo();
    for var in LEAKY_VARS {
        cmd.env_remove(var);
    }
    cmd.current_dir(&ws.root)
        .env("RUSTC", RUSTC)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTFLAGS", RUSTFLAGS)
        .env("PATH", path)
        .args(["build", "--release", "--target", TARGET])
        .args(["-Z", "build-std=core"])
        .args(["-p", "veil-ebpf", "--bin", "veil-ebpf"])
        .arg("--target-dir")
        .arg(ws.root.join("target/ebpf"));
    let started = Instant::now();
    process::run(&mut cmd)?;
    let object = object_path(&ws.root);
    let size = object
        .metadata()
        .with_context(|| format!("the build succeeded but {} is missing", object.display()))?
        .len();
    println!(
        "eBPF object: {} ({size} bytes, {:.1} s)",
        object.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(object)
}
