//! `cargo xtask bench [--quick]`: the same load generator (h2load) against a local nginx
//! directly, from inside a veil sandbox (veil swaps a placeholder per request), through a
//! second nginx as a reverse proxy doing the same swap, and through mitmproxy doing it in an
//! addon; medians with min and max in
//! target/bench/results.{json,md}. It reports; it never asserts speed (it does check that the
//! upstream received the real secret).

mod containers;
mod h2load;
mod idle;
mod interrupt;
mod kernel;
mod mitm;
mod nginx;
mod podman;
mod report;
mod sandbox;
mod scenarios;
mod sigv4;
mod target;
mod tools;
mod veil;

pub use scenarios::Scenario;
pub use target::Target;

use std::{
    env,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use veil_testkit::{
    free_port,
    pki::TestCa,
    remote::{ensure_remote_hosts, remote_ip},
};

use crate::{process, setup, Workspace};

/// The name the upstream's certificate is for; h2load sends it as SNI and `:authority`.
pub const HOST: &str = "bench.example.test";

/// The upstream's address: a stand-in remote host, off the host's loopback (a sandbox's
/// loopback is its own).
pub const UPSTREAM_IP: Ipv4Addr = remote_ip(2);

/// How long a server may take to come up.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// How long and how often to measure.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    /// `quick` or `full`.
    pub name: &'static str,
    /// Runs per scenario and target.
    pub runs: usize,
    /// Measured seconds of each timed run (after one second of warm-up).
    pub secs: u32,
    /// Size of the large download and upload.
    pub big_bytes: u64,
    /// Idle connections held open in scenario 5.
    pub idle_conns: usize,
}

impl Mode {
    /// The mode `--quick` selects or not.
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                name: "quick",
                runs: 1,
                secs: 2,
                big_bytes: 64 << 20,
                idle_conns: 2_000,
            }
        } else {
            Self {
                name: "full",
                runs: 5,
                secs: 5,
                big_bytes: 1 << 30,
                idle_conns: 10_000,
            }
        }
    }
}

/// Everything the scenarios run against.
pub struct Bench {
    /// How long and how often.
    pub mode: Mode,
    /// The scenarios to run; empty for all.
    pub only: Vec<Scenario>,
    /// Idle connections scenario 5 holds: the mode's number, or fewer where the open-files
    /// limit allows no more.
    pub idle_conns: usize,
    /// The upstream's address.
    pub upstream: SocketAddr,
    /// The nginx peer's listener.
    pub nginx_peer: SocketAddr,
    /// mitmproxy's listener.
    pub mitm: SocketAddr,
    /// The test CA (the upstream's and the nginx peer's certificates).
    pub ca: PathBuf,
    /// The veil installation.
    pub veil: veil::Veil,
    /// The placeholder the requests carry.
    pub placeholder: String,
    /// The temporary directory (h2load logs, upload file).
    pub tmp: PathBuf,
}

/// Runs the benchmarks.
pub fn run(ws: &Workspace, quick: bool, only: &[Scenario]) -> Result<()> {
    let mode = Mode::new(quick);
    interrupt::catch();
    setup::run(ws)?;
    let tools = tools::ensure(ws)?;
    let veil_bin = build_veil(ws)?;

    let name = format!("veil-bench-{}", std::process::id());
    // Sandboxed clients read their inputs (upload file, DNS queries, scripts) from it and
    // write their logs to it as an unprivileged user (it is their working directory), so it
    // is not in /tmp, which is private to each sandbox, and everyone may write to it.
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{name}-"))
        .tempdir_in("/var/tmp")
        .context("creating a temporary directory in /var/tmp")?;
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )?;
    let result = run_in(ws, mode, only, &tools, &veil_bin, &name, tmp.path());
    drop(tmp);
    // Whatever failed after an interrupt failed because of it (the signal reaches the servers
    // and clients too); say that instead.
    interrupt::check().map_err(|_| {
        anyhow::anyhow!("interrupted; everything the benchmark started was stopped and removed")
    })?;
    result
}

/// Raises this process's open-files limit (inherited by veil, nginx and the clients) so that
/// `conns` proxied connections fit, and returns how many do: veil holds two descriptors per
/// connection, which is what runs out first. Without CAP_SYS_RESOURCE the hard limit cannot
/// be raised, and fewer connections than asked may fit.
fn open_files_for(conns: usize) -> Result<usize> {
    let want = libc::rlim_t::try_from(conns * 2 + FD_RESERVE)?;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        bail!("getrlimit: {}", std::io::Error::last_os_error());
    }
    let mut raised = libc::rlimit {
        rlim_cur: want.max(limit.rlim_cur),
        rlim_max: want.max(limit.rlim_max),
    };
    // SAFETY: `raised` is a valid rlimit that outlives the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above; a soft limit up to the hard limit needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            bail!("setrlimit: {}", std::io::Error::last_os_error());
        }
    }
    let fit = usize::try_from(raised.rlim_cur)?.saturating_sub(FD_RESERVE) / 2;
    if fit < conns {
        println!(
            "warning: the open-files hard limit ({}) cannot be raised here (no \
             CAP_SYS_RESOURCE); scenario 5 holds {fit} connections instead of {conns}",
            raised.rlim_max
        );
    }
    Ok(fit.min(conns))
}

/// Descriptors veil needs besides its connections' (database, listeners, BPF maps, threads).
const FD_RESERVE: usize = 200;

/// Builds the release `veil` (`VEIL_BIN` skips this; `VEIL_BPF_OBJECT` skips the eBPF build).
fn build_veil(ws: &Workspace) -> Result<PathBuf> {
    if let Some(bin) = env::var_os("VEIL_BIN") {
        return Ok(PathBuf::from(bin));
    }
    if env::var_os("VEIL_BPF_OBJECT").is_none() {
        crate::ebpf::build(ws)?;
    }
    let mut cmd = process::cargo();
    cmd.current_dir(&ws.root)
        .args(["build", "--release", "-p", "veil", "--bin", "veil"]);
    process::run(&mut cmd)?;
    let bin = crate::deb::target_dir(ws)?.join("release/veil");
    if !process::is_executable(&bin) {
        bail!("the build succeeded but {} is missing", bin.display());
    }
    Ok(bin)
}

/// Starts the servers in `tmp`, runs the scenarios and writes the results; everything started
/// here is stopped when this returns, also on error.
#[allow(
    clippy::too_many_arguments,
    reason = "each is one independent input of the run"
)]
fn run_in(
    ws: &Workspace,
    mode: Mode,
    only: &[Scenario],
    tools: &tools::Tools,
    veil_bin: &Path,
    name: &str,
    tmp: &Path,
) -> Result<()> {
    // Before anything starts: every server and client inherits the limit.
    let idle_conns = open_files_for(mode.idle_conns)?;
    ensure_remote_hosts()?;
    let pki = TestCa::new("veil bench CA")?
        .write_files(&tmp.join("pki"), &[HOST, &UPSTREAM_IP.to_string()])?;
    let upstream = SocketAddr::from((UPSTREAM_IP, free_port(UPSTREAM_IP)?));
    let secret = format!("bench-real-secret-{}", std::process::id());
    let _nginx = nginx::start(&tmp.join("nginx"), upstream, &pki, mode.big_bytes, &secret)?;

    let mut veil = veil::Veil::new(veil_bin, name)?;
    veil.start(
        &[HOST, &format!("{UPSTREAM_IP}/32")],
        &pki.ca,
        sandbox::RESOLVER,
    )?;
    let placeholder = veil.create_secret("bench", "BENCH_TOKEN", &secret, HOST)?;

    let nginx_peer = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port(Ipv4Addr::LOCALHOST)?));
    let _nginx_peer = nginx::start_peer(
        &tmp.join("nginx-peer"),
        &nginx::Peer {
            listen: nginx_peer,
            upstream,
            host: HOST,
            placeholder: &placeholder,
            secret: &secret,
        },
        &pki,
    )?;

    let mitm = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port(Ipv4Addr::LOCALHOST)?));
    let mitm_dir = tmp.join("mitmproxy");
    std::fs::create_dir_all(&mitm_dir)?;
    let _mitm = mitm::start(
        tools,
        &mitm_dir,
        mitm,
        upstream,
        &pki,
        &placeholder,
        &secret,
    )?;

    let bench = Bench {
        mode,
        only: only.to_vec(),
        idle_conns,
        upstream,
        nginx_peer,
        mitm,
        ca: pki.ca.clone(),
        veil,
        placeholder,
        tmp: tmp.to_path_buf(),
    };
    bench.check_injection()?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    scenarios::run_all(&bench, &mut rows, &mut notes)?;
    if let Some(kib) = bench.veil.pid().and_then(|pid| status_kib(pid, "VmHWM")) {
        notes.push(format!(
            "veil serve's peak RSS over the whole run: {} MiB.",
            kib / 1024
        ));
    }
    let md = report::write(
        &ws.root.join("target/bench"),
        &rows,
        mode.name,
        mode.runs,
        &notes,
    )?;
    println!("\n{md}");
    println!(
        "wrote {}",
        ws.root.join("target/bench/results.{json,md}").display()
    );
    Ok(())
}

impl Bench {
    /// Stops here after Ctrl-C or SIGTERM; else says that run `run` (from 0) of `what` starts.
    pub fn begin_run(&self, what: std::fmt::Arguments<'_>, run: usize) -> Result<()> {
        interrupt::check()?;
        println!("{what}, run {}/{}", run + 1, self.mode.runs);
        Ok(())
    }

    /// The h2load command line for `target` with `args` before the URL of `path`.
    pub fn h2load_args(&self, target: Target, args: &[String], path: &str) -> Vec<String> {
        let dial = match target {
            Target::Mitmproxy => self.mitm,
            Target::Nginx => self.nginx_peer,
            Target::Direct | Target::Veil => self.upstream,
        };
        let mut full = vec!["h2load".to_string()];
        full.extend_from_slice(args);
        full.push(format!("--connect-to={dial}"));
        full.push(format!("https://{HOST}:{}{path}", dial.port()));
        full
    }

    /// The h2load command for `target` with `args` before the URL of `path`; veil's runs
    /// happen inside a sandbox.
    pub fn h2load(&self, target: Target, args: &[String], path: &str) -> Command {
        let full = self.h2load_args(target, args, path);
        if target == Target::Veil {
            // The sandbox sees the host's files read-only but has a /tmp of its own; the
            // working directory is shared, so the upload file is found at its path.
            let mut cmd = self.veil.run_command(&full);
            cmd.current_dir(&self.tmp);
            cmd
        } else {
            let mut cmd = Command::new(&full[0]);
            cmd.args(&full[1..]);
            cmd
        }
    }

    /// Whether `scenario` is to run.
    pub fn selected(&self, scenario: Scenario) -> bool {
        self.only.is_empty() || self.only.contains(&scenario)
    }

    /// The `Authorization` header every request carries.
    pub fn auth_header(&self) -> String {
        format!("authorization: Bearer {}", self.placeholder)
    }

    /// Checks that the upstream receives the real secret through veil, the nginx peer and
    /// mitmproxy.
    fn check_injection(&self) -> Result<()> {
        let want = nginx::REAL_SECRET_SEEN;
        let resolve = |addr: SocketAddr| format!("{HOST}:{}:{}", addr.port(), addr.ip());
        let curl = |addr: SocketAddr| {
            vec![
                "curl".to_string(),
                "-sS".into(),
                "--max-time".into(),
                "20".into(),
                "--resolve".into(),
                resolve(addr),
                "-H".into(),
                self.auth_header(),
                format!("https://{HOST}:{}/auth", addr.port()),
            ]
        };
        // Inside the sandbox curl trusts veil's CA through the variables `veil run` sets.
        let through_veil = self.veil.run_command(&curl(self.upstream)).output()?;
        // The client trusts the nginx peer's certificate through the test CA.
        let mut nginx_args = curl(self.nginx_peer);
        nginx_args.insert(1, "--cacert".into());
        nginx_args.insert(2, self.ca.display().to_string());
        let through_nginx = Command::new(&nginx_args[0])
            .args(&nginx_args[1..])
            .output()?;
        let mut mitm_args = curl(self.mitm);
        mitm_args.insert(1, "-k".into()); // mitmproxy's own CA is not the point here
        let through_mitm = Command::new(&mitm_args[0]).args(&mitm_args[1..]).output()?;
        for (what, out) in [
            (Target::Veil, through_veil),
            (Target::Nginx, through_nginx),
            (Target::Mitmproxy, through_mitm),
        ] {
            let body = String::from_utf8_lossy(&out.stdout);
            if body != want {
                bail!(
                    "through {what}, the upstream received {body:?}, not the real secret ({}){}",
                    String::from_utf8_lossy(&out.stderr),
                    match what {
                        Target::Veil => format!("\nveil's log:\n{}", self.veil.log()),
                        Target::Nginx => format!(
                            "\nthe nginx peer's error log:\n{}",
                            std::fs::read_to_string(self.tmp.join("nginx-peer/error.log"))
                                .unwrap_or_default()
                        ),
                        _ => String::new(),
                    }
                );
            }
            println!("check: through {what}, the upstream received the real secret");
        }
        Ok(())
    }
}

/// A memory figure of a process from /proc/PID/status (`VmHWM`, `VmRSS`), KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
