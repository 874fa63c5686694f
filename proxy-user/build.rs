//! Embeds the eBPF object built by `cargo xtask build-ebpf` so the `veil` binary runs without
//! the build tree. Set `VEIL_BPF_OBJECT` to embed an object from elsewhere.

use std::{env, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=VEIL_BPF_OBJECT");
    let object = match env::var_os("VEIL_BPF_OBJECT") {
        Some(path) => PathBuf::from(path),
        None => {
            // CARGO_MANIFEST_DIR is always set by cargo for build scripts.
            let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
            manifest.join("../target/ebpf/bpfel-unknown-none/release/veil-ebpf")
        }
    };
    println!("cargo:rerun-if-changed={}", object.display());
    if !object.is_file() {
        panic!(
            "the eBPF object {} is missing: run `cargo xtask build-ebpf` (or `cargo xtask build`) first",
            object.display()
        );
    }
    // Invariant: cargo sets OUT_DIR for every build script it runs.
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("veil-ebpf.o");
    if let Err(e) = std::fs::copy(&object, &out) {
        panic!("copying {} to {}: {e}", object.display(), out.display());
    }
}
