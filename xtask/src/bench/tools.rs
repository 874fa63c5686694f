//! What the benchmarks need installed: Debian packages (nginx-light, h2load, a Python venv)
//! and mitmproxy in a venv under the tools directory. Idempotent.

use std::{path::PathBuf, process::Command};

use anyhow::{bail, Result};

use crate::{process, setup, Workspace};

/// Debian packages the benchmarks drive: a fast TLS upstream with h1 and h2, the load
/// generator, the venv mitmproxy is installed into, and a DNS resolver and load generator.
pub const PACKAGES: &[&str] = &[
    "nginx-light",
    "nghttp2-client",
    "python3-venv",
    "bpftool",
    "dnsmasq-base",
    "dnsperf",
];

/// mitmproxy's version: the newest that installs on Debian 12's Python 3.11.
pub const MITMPROXY_VERSION: &str = "11.0.2";

/// Where the installed tools are.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `mitmdump` in the venv.
    pub mitmdump: PathBuf,
}

/// Installs what is missing and returns where the tools are.
pub fn ensure(ws: &Workspace) -> Result<Tools> {
    setup::ensure_packages(PACKAGES)?;
    let venv = ws.tools.join("mitmproxy-venv");
    let mitmdump = venv.join("bin/mitmdump");
    if installed_mitmproxy(&mitmdump).as_deref() == Some(MITMPROXY_VERSION) {
        println!(
            "mitmproxy {MITMPROXY_VERSION}: present in {}",
            venv.display()
        );
    } else {
        println!(
            "mitmproxy {MITMPROXY_VERSION}: installing into {}",
            venv.display()
        );
        process::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        process::run(
            Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet"])
                .arg(format!("mitmproxy=={MITMPROXY_VERSION}")),
        )?;
        if installed_mitmproxy(&mitmdump).as_deref() != Some(MITMPROXY_VERSION) {
            bail!(
                "after pip install, {} does not report mitmproxy {MITMPROXY_VERSION}",
                mitmdump.display()
            );
        }
    }
    Ok(Tools { mitmdump })
}

/// The version `mitmdump --version` reports (`Mitmproxy: 11.0.2`), if it runs.
fn installed_mitmproxy(mitmdump: &std::path::Path) -> Option<String> {
    let out = Command::new(mitmdump).arg("--version").output().ok()?;
    parse_mitmproxy_version(&String::from_utf8_lossy(&out.stdout))
}

/// The version in `mitmdump --version` output.
pub fn parse_mitmproxy_version(output: &str) -> Option<String> {
    output
        .lines()
        .find_map(|l| l.strip_prefix("Mitmproxy:"))
        .map(|v| v.split_whitespace().next().unwrap_or_default().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mitmproxy_version() {
        assert_eq!(
            parse_mitmproxy_version("Mitmproxy: 11.0.2\nPython:    3.11.7\n").as_deref(),
            Some("11.0.2")
        );
        assert_eq!(parse_mitmproxy_version("Python: 3.11\n"), None);
    }
}
