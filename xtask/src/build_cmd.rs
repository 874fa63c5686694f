//! `cargo xtask build`: the eBPF object, then every binary of the workspace.

use anyhow::Result;

use crate::{ebpf, process, Workspace};

/// Builds the eBPF object, then the workspace binaries.
pub fn run(ws: &Workspace, release: bool) -> Result<()> {
    ebpf::build(ws)?;
    build_workspace(ws, release)
}

/// Runs `cargo build --workspace --bins [--release]`; proxy-user embeds the eBPF object, so
/// [`ebpf::build`] must have run first.
pub fn build_workspace(ws: &Workspace, release: bool) -> Result<()> {
    let mut cmd = process::cargo();
    cmd.current_dir(&ws.root)
        .args(["build", "--workspace", "--bins"]);
    if release {
        cmd.arg("--release");
    }
    process::run(&mut cmd)
}
