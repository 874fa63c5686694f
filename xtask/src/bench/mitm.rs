//! mitmproxy in reverse-proxy mode with an addon doing veil's header rewrite: the common
//! alternative veil is compared with.

use std::{fs, net::SocketAddr, path::Path, process::Command};

use anyhow::Result;

use veil_testkit::{pki::PkiFiles, Daemon};

use super::{tools::Tools, STARTUP_TIMEOUT};

/// The addon: replaces the placeholder with the secret in `Authorization`, as veil does.
const ADDON: &str = r#"import os

PLACEHOLDER = os.environ["BENCH_PLACEHOLDER"]
SECRET = os.environ["BENCH_SECRET"]


def request(flow):
    value = flow.request.headers.get("authorization")
    if value and PLACEHOLDER in value:
        flow.request.headers["authorization"] = value.replace(PLACEHOLDER, SECRET)
"#;

/// Starts mitmdump on `listen`, forwarding to `upstream` over TLS verified against `pki`'s CA,
/// rewriting `placeholder` to `secret`. Its files live in `dir`.
pub fn start(
    tools: &Tools,
    dir: &Path,
    listen: SocketAddr,
    upstream: SocketAddr,
    pki: &PkiFiles,
    placeholder: &str,
    secret: &str,
) -> Result<Daemon> {
    let addon = dir.join("rewrite.py");
    fs::write(&addon, ADDON)?;
    let mut cmd = Command::new(&tools.mitmdump);
    cmd.env("BENCH_PLACEHOLDER", placeholder)
        .env("BENCH_SECRET", secret)
        .arg("--quiet")
        .arg("--mode")
        .arg(format!("reverse:https://{upstream}/"))
        .args(["--listen-host", &listen.ip().to_string()])
        .args(["--listen-port", &listen.port().to_string()])
        .arg("--set")
        .arg(format!("confdir={}", dir.join("conf").display()))
        .arg("--set")
        .arg(format!(
            "ssl_verify_upstream_trusted_ca={}",
            pki.ca.display()
        ))
        .args(["--set", "stream_large_bodies=1m"])
        .args(["--set", "termlog_verbosity=error"])
        .arg("-s")
        .arg(&addon);
    let mut mitm = Daemon::spawn("mitmdump", &mut cmd, &dir.join("mitmdump.log"))?;
    mitm.wait_tcp(listen, STARTUP_TIMEOUT)?;
    Ok(mitm)
}
