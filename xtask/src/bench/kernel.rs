//! The kernel side: how long veil's eBPF programs run per connect, from the kernel's BPF run
//! statistics (`kernel.bpf_stats_enabled`, read with bpftool).

use std::{fs, path::Path, process::Command};

use anyhow::{bail, Context, Result};

/// Where the kernel's switch for BPF run statistics is.
const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Turns BPF run statistics on while it lives and restores the previous setting on drop.
pub struct StatsEnabled {
    /// The setting before.
    previous: String,
}

impl StatsEnabled {
    /// Turns the statistics on.
    pub fn new() -> Result<Self> {
        let previous =
            fs::read_to_string(STATS_SYSCTL).context("reading kernel.bpf_stats_enabled")?;
        fs::write(STATS_SYSCTL, "1").context("setting kernel.bpf_stats_enabled=1")?;
        Ok(Self {
            previous: previous.trim().to_string(),
        })
    }
}

impl Drop for StatsEnabled {
    fn drop(&mut self) {
        if let Err(e) = fs::write(STATS_SYSCTL, &self.previous) {
            eprintln!("warning: restoring kernel.bpf_stats_enabled: {e}");
        }
    }
}

/// Cumulative run statistics of the programs attached to a cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// connect4's run time, ns.
    pub connect4_ns: u64,
    /// connect4's run count.
    pub connect4_runs: u64,
    /// All attached programs' run time, ns.
    pub all_ns: u64,
}

/// Reads the statistics of the programs attached to `cgroup`.
pub fn totals(cgroup: &Path) -> Result<Totals> {
    let attached = bpftool(&["cgroup", "show", &cgroup.display().to_string(), "-j"])?;
    let Some(progs) = attached.as_array() else {
        bail!("bpftool cgroup show printed {attached}");
    };
    let mut t = Totals::default();
    for prog in progs {
        let id = prog["id"].as_u64().context("a program without an id")?;
        let info = bpftool(&["prog", "show", "id", &id.to_string(), "-j"])?;
        let ns = info["run_time_ns"].as_u64().unwrap_or(0);
        t.all_ns += ns;
        if prog["attach_type"] == "cgroup_inet4_connect" {
            t.connect4_ns += ns;
            t.connect4_runs += info["run_cnt"].as_u64().unwrap_or(0);
        }
    }
    Ok(t)
}

/// Runs `bpftool ARGS` and parses its JSON output.
fn bpftool(args: &[&str]) -> Result<serde_json::Value> {
    let out = Command::new("bpftool")
        .args(args)
        .output()
        .context("running bpftool")?;
    if !out.status.success() {
        bail!(
            "bpftool {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}
