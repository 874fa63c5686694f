//! A private veil installation for the benchmark (its own state, runtime and bpffs
//! directories, sandbox parent cgroup and listeners), removed when dropped: the daemon is
//! stopped, `veil reset` runs with the same paths, and what is left is deleted.

use std::{
    fs,
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{bail, Context, Result};

use super::daemon::Daemon;
use crate::{demo_cleanup, demo_support};

/// One veil installation.
pub struct Veil {
    /// The `veil` binary.
    bin: PathBuf,
    /// Holds state, run dir, config and logs.
    dir: PathBuf,
    /// bpffs directory.
    pub bpf_dir: PathBuf,
    /// Sandbox parent cgroup (absolute).
    pub cgroup_parent: PathBuf,
    /// IPv4 listener.
    listen: SocketAddr,
    /// IPv6 listener.
    listen6: String,
    /// `veil serve`, while it runs.
    serve: Option<Daemon>,
}

impl Veil {
    /// A new installation named `name` in `dir` (nothing runs yet).
    pub fn new(bin: &Path, dir: &Path, name: &str, cgroup2: &Path) -> Result<Self> {
        fs::create_dir_all(dir)?;
        let listen = SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            demo_support::free_port(Ipv4Addr::LOCALHOST)?,
        ));
        let listen6 = std::net::TcpListener::bind("[::1]:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.to_string())
            // No IPv6 on the host: veil refuses native IPv6 then, and the port is never bound.
            .unwrap_or_else(|_| format!("[::1]:{}", listen.port()));
        Ok(Self {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            bpf_dir: Path::new("/sys/fs/bpf").join(name),
            cgroup_parent: cgroup2.join(name),
            listen,
            listen6,
            serve: None,
        })
    }

    /// A `veil` command for this installation.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env("VEIL_STATE_DIR", self.dir.join("state"))
            .env("VEIL_RUN_DIR", self.dir.join("run"))
            .env("VEIL_BPF_DIR", &self.bpf_dir)
            .env("VEIL_CGROUP_PARENT", &self.cgroup_parent)
            .env("VEIL_LISTEN", self.listen.to_string())
            .env("VEIL_LISTEN6", &self.listen6)
            .env("VEIL_CONFIG", self.dir.join("veil.toml"))
            .env_remove("RUST_LOG");
        cmd
    }

    /// Starts `veil serve` allowing `allow` (CIDRs) and trusting `upstream_ca`.
    pub fn start(&mut self, allow: &[&str], upstream_ca: &Path) -> Result<()> {
        let quoted: Vec<String> = allow.iter().map(|a| format!("{a:?}")).collect();
        fs::write(
            self.dir.join("veil.toml"),
            format!("[egress]\nallow = [{}]\n", quoted.join(", ")),
        )?;
        let mut cmd = self.command();
        cmd.arg("serve").arg("--upstream-ca").arg(upstream_ca);
        let mut serve = Daemon::spawn("veil serve", &mut cmd, &self.dir.join("serve.log"))?;
        let socket = self.socket();
        serve.wait_ready(|| {
            api_request(&socket, "GET", "/healthz", None).is_ok_and(|(s, _)| s == 200)
        })?;
        self.serve = Some(serve);
        Ok(())
    }

    /// The daemon's pid.
    pub fn pid(&self) -> Option<u32> {
        self.serve.as_ref().and_then(Daemon::pid)
    }

    /// The control socket.
    fn socket(&self) -> PathBuf {
        self.dir.join("run/veil.sock")
    }

    /// Creates a secret through the API and returns its placeholder.
    pub fn create_secret(
        &self,
        name: &str,
        env_var: &str,
        value: &str,
        host: &str,
    ) -> Result<String> {
        let body = serde_json::json!({
            "name": name, "secret": value, "env_var": env_var, "hosts": [host],
        })
        .to_string();
        let (status, answer) = api_request(&self.socket(), "POST", "/v1/secrets", Some(&body))?;
        if status != 201 {
            bail!("creating secret {name}: HTTP {status}: {answer}");
        }
        let answer: serde_json::Value = serde_json::from_str(&answer)?;
        answer["proxy_value"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no proxy_value in {answer}"))
    }

    /// `veil run -- ARGS`.
    pub fn run_command(&self, args: &[String]) -> Command {
        let mut cmd = self.command();
        cmd.arg("run").arg("--").args(args);
        cmd
    }

    /// The daemon's log (last lines).
    pub fn log(&self) -> String {
        self.serve
            .as_ref()
            .map(Daemon::log_text)
            .unwrap_or_default()
    }
}

impl Drop for Veil {
    fn drop(&mut self) {
        if let Some(mut serve) = self.serve.take() {
            serve.stop();
        }
        match self.command().arg("reset").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "warning: veil reset failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("warning: running veil reset: {e}"),
        }
        if self.cgroup_parent.exists() {
            if let Err(e) = demo_cleanup::remove_cgroup(&self.cgroup_parent) {
                eprintln!("warning: removing {}: {e:#}", self.cgroup_parent.display());
            }
        }
        if self.bpf_dir.exists() {
            if let Err(e) = fs::remove_dir_all(&self.bpf_dir) {
                eprintln!("warning: removing {}: {e}", self.bpf_dir.display());
            }
        }
    }
}

/// Sends one HTTP/1.1 request over the Unix socket and returns the status and body.
fn api_request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String)> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: veil\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .with_context(|| format!("no response head in {response:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    Ok((status, body.to_owned()))
}
