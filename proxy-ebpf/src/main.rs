//! veil's eBPF programs: steer a sandbox cgroup's TCP connects to veil's listeners, record
//! each original destination, and refuse every other way out. The map types live in the
//! library half of this crate.
//!
//! Built for `bpfel-unknown-none` by `cargo xtask build-ebpf`; on any other target this file
//! compiles to a stub that says how to build the real object.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]

#[cfg(target_arch = "bpf")]
mod programs;

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("veil-ebpf is an eBPF object: build it with `cargo xtask build-ebpf`");
    std::process::exit(2);
}
