//! `cargo xtask setup`: install the eBPF toolchain and test tools, mount bpffs. Idempotent.

use std::{path::Path, process::Command};

use anyhow::{bail, Context, Result};
use veil_testkit::mounts;

use crate::{process, Workspace};

/// The Debian packages veil's build and tests need: Debian's rustc/cargo built on LLVM 22 with
/// the std sources (for `-Z build-std=core`), LLVM 22 for bpf-linker, bpftool, the tools the
/// tests and the demo drive, dpkg-dev (dpkg-shlibdeps) and debootstrap for the Debian
/// package and its check, the container runtimes the container tests drive: Podman
/// with runc (crun refuses hybrid cgroup layouts), and Docker's engine (docker.io), whose
/// daemon each test starts itself, and the AWS CLI and boto3 (with botocore, the reference
/// signer of `tests/src/sigv4_upstream.py`) for the SigV4 re-signing tests.
pub const PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "llvm-22-dev",
    "bpftool",
    "curl",
    "git",
    "python3",
    "python3-requests",
    "iproute2",
    "nodejs",
    "util-linux",
    "bubblewrap",
    "dpkg-dev",
    "debootstrap",
    "podman",
    "runc",
    "docker.io",
    "awscli",
    "python3-boto3",
];

/// The bpf-linker release the eBPF build is verified with.
pub const BPF_LINKER_VERSION: &str = "0.13.0";

/// Where the LLVM that bpf-linker links against lives (the same major as Debian's rustc).
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

/// Where bpffs must be mounted for veil to pin its maps and links.
const BPFFS: &str = "/sys/fs/bpf";

/// Runs setup and prints a one-line summary.
pub fn run(ws: &Workspace) -> Result<()> {
    if !process::is_root() {
        bail!("cargo xtask setup must run as root (it installs apt packages and mounts bpffs)");
    }
    let installed = ensure_packages(PACKAGES)?;
    let linker = ensure_bpf_linker(ws)?;
    let mounts = mounts::read()?;
    let Some(cgroup2) = mounts::cgroup2(&mounts).map(Path::to_path_buf) else {
        bail!(
            "no cgroup2 filesystem is mounted (no `cgroup2` line in /proc/mounts); veil needs \
             cgroup v2: mount one, e.g. `mount -t cgroup2 none /sys/fs/cgroup/unified`"
        );
    };
    println!("cgroup2: mounted at {}", cgroup2.display());
    let bpffs = ensure_bpffs(&mounts)?;
    println!(
        "setup ok: apt packages {}; bpf-linker {BPF_LINKER_VERSION} {linker} in {}; cgroup2 at {}; \
         bpffs at {BPFFS} {bpffs}",
        if installed.is_empty() {
            "all present".to_string()
        } else {
            format!("installed ({})", installed.join(" "))
        },
        ws.tools_bin().display(),
        cgroup2.display(),
    );
    Ok(())
}

/// Installs the missing ones of `packages` with apt; returns the ones it installed.
pub fn ensure_packages(packages: &[&'static str]) -> Result<Vec<&'static str>> {
    for tool in ["apt-get", "dpkg-query"] {
        if process::find_in_path(tool).is_none() {
            bail!(
                "`{tool}` not found in PATH: cargo xtask setup installs its packages with apt and \
                 supports Debian (12 or later) and derivatives only"
            );
        }
    }
    let mut missing = Vec::new();
    for &package in packages {
        let out = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", package])
            .output()
            .context("running dpkg-query")?;
        // dpkg-query exits 1 for a package it has never heard of: that is "missing" too.
        if !is_installed(&String::from_utf8_lossy(&out.stdout)) {
            missing.push(package);
        }
    }
    if missing.is_empty() {
        println!("apt packages: all {} present", packages.len());
        return Ok(missing);
    }
    println!("apt packages missing: {}", missing.join(" "));
    process::run(Command::new("apt-get").arg("update"))?;
    process::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing),
    )?;
    Ok(missing)
}

/// Whether a `dpkg-query -f='${Status}'` status says the package is installed.
pub fn is_installed(status: &str) -> bool {
    status.split_whitespace().collect::<Vec<_>>() == ["install", "ok", "installed"]
}

/// Installs bpf-linker [`BPF_LINKER_VERSION`] into the tools directory unless it is there;
/// returns "present" or "installed".
fn ensure_bpf_linker(ws: &Workspace) -> Result<&'static str> {
    let linker = ws.bpf_linker();
    match installed_linker_version(&linker) {
        Some(version) if version == BPF_LINKER_VERSION => {
            println!("bpf-linker {version}: present at {}", linker.display());
            return Ok("present");
        }
        Some(version) => println!(
            "bpf-linker at {} is {version}, want {BPF_LINKER_VERSION}: reinstalling",
            linker.display()
        ),
        None if linker.exists() => println!(
            "bpf-linker at {} does not report a version: reinstalling",
            linker.display()
        ),
        None => println!(
            "bpf-linker {BPF_LINKER_VERSION}: not in {}, installing (about a minute)",
            ws.tools_bin().display()
        ),
    }
    let mut install = process::cargo();
    install
        .env("LLVM_PREFIX", LLVM_PREFIX)
        .arg("install")
        .arg(format!("bpf-linker@{BPF_LINKER_VERSION}"))
        .args(["--locked", "--no-default-features", "--features", "llvm-22"])
        .arg("--root")
        .arg(&ws.tools);
    if linker.exists() {
        install.arg("--force");
    }
    process::run(&mut install)?;
    println!(
        "(build-ebpf puts {} on PATH itself: ignore cargo's PATH hint)",
        ws.tools_bin().display()
    );
    match installed_linker_version(&linker) {
        Some(v) if v == BPF_LINKER_VERSION => Ok("installed"),
        other => bail!(
            "after `cargo install`, {} reports version {other:?}, not {BPF_LINKER_VERSION}",
            linker.display()
        ),
    }
}

/// The version `<linker> --version` reports, if it runs.
fn installed_linker_version(linker: &Path) -> Option<String> {
    let out = Command::new(linker).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    parse_linker_version(&String::from_utf8_lossy(&out.stdout))
}

/// The version in bpf-linker's `--version` output (`bpf-linker 0.13.0`).
pub fn parse_linker_version(output: &str) -> Option<String> {
    let mut words = output.lines().next()?.split_whitespace();
    if words.next()? != "bpf-linker" {
        return None;
    }
    let version = words.next()?;
    version
        .split('.')
        .all(|part| !part.is_empty())
        .then(|| version.to_string())
}

/// Mounts bpffs at [`BPFFS`] unless it is mounted; returns "already mounted" or "mounted now".
fn ensure_bpffs(mounts: &[mounts::Mount]) -> Result<&'static str> {
    let path = Path::new(BPFFS);
    if mounts::has_bpffs_at(mounts, path) {
        println!("bpffs: mounted at {BPFFS}");
        return Ok("already mounted");
    }
    println!("bpffs: not mounted at {BPFFS}, mounting it");
    let status = process::status(Command::new("mount").args(["-t", "bpf", "bpf", BPFFS]))?;
    if !status.success() {
        bail!(
            "could not mount bpffs at {BPFFS} ({status}): veil pins its eBPF maps and links \
             there; check that the kernel has CONFIG_BPF_SYSCALL and that {BPFFS} exists"
        );
    }
    if !mounts::has_bpffs_at(&mounts::read()?, path) {
        bail!("`mount -t bpf bpf {BPFFS}` succeeded but /proc/mounts shows no bpffs there");
    }
    Ok("mounted now")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_linker_version() {
        assert_eq!(
            parse_linker_version("bpf-linker 0.13.0\n").as_deref(),
            Some("0.13.0")
        );
        assert_eq!(
            parse_linker_version("bpf-linker 0.9.15").as_deref(),
            Some("0.9.15")
        );
    }

    #[test]
    fn rejects_other_version_output() {
        assert_eq!(parse_linker_version(""), None);
        assert_eq!(parse_linker_version("bpf-linker"), None);
        assert_eq!(parse_linker_version("ld 2.40\n"), None);
        assert_eq!(parse_linker_version("error: no such file\n"), None);
    }

    #[test]
    fn dpkg_status() {
        assert!(is_installed("install ok installed"));
        assert!(!is_installed("deinstall ok config-files"));
        assert!(!is_installed("install ok unpacked"));
        assert!(!is_installed(""));
    }
}
