//! `cargo xtask demo`: a live demo of veil steering a sandboxed curl through itself, on a
//! private instance (its own bpffs dir, cgroup parent, state and run dirs) that is removed
//! afterwards, whatever happens.

use std::{
    ffi::OsString,
    fs::{self, File},
    io::ErrorKind,
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::{build_cmd, process, setup, Workspace};

/// The sandboxed client dials this address; nothing else about it is special.
const UPSTREAM_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// veil's listener address in the demo.
const LISTEN_IP: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// How long to wait for a server to come up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the demo.
pub fn run(ws: &Workspace) -> Result<()> {
    step("Checking the toolchain and mounting bpffs (cargo xtask setup)");
    let setup = setup::run(ws)?;
    step("Building the eBPF object and veil (cargo xtask build)");
    build_cmd::run(ws, false)?;
    let veil = ws.root.join("target/debug/veil");
    if !process::is_executable(&veil) {
        bail!("the build succeeded but {} is missing", veil.display());
    }

    let name = format!("veil-demo-{}", std::process::id());
    let tmp = make_temp_dir(&name)?;
    // From here on, everything the demo creates is removed when `cleanup` drops.
    let mut cleanup = Cleanup {
        serve: None,
        upstream: None,
        bpf_dir: Path::new("/sys/fs/bpf").join(&name),
        cgroup_parent: setup.cgroup2.join(&name),
        tmp: tmp.clone(),
    };
    let instance = Instance {
        veil,
        globals: vec![
            "--bpf-dir".into(),
            cleanup.bpf_dir.clone().into(),
            "--cgroup-parent".into(),
            name.clone().into(),
            "--run-dir".into(),
            tmp.join("run").into(),
            "--state-dir".into(),
            tmp.join("state").into(),
        ],
    };
    for dir in ["run", "state", "www"] {
        fs::create_dir(tmp.join(dir)).with_context(|| format!("creating {dir} in the temp dir"))?;
    }

    step("Starting a stand-in \"remote\" server: python3's http.server");
    let upstream = SocketAddr::new(IpAddr::V4(UPSTREAM_IP), free_port(UPSTREAM_IP)?);
    fs::write(
        tmp.join("www/index.html"),
        format!("hello from the upstream on {upstream}\n"),
    )
    .context("writing index.html")?;
    let upstream_log = tmp.join("upstream.log");
    let mut python = Command::new("python3");
    python
        .args(["-u", "-m", "http.server", &upstream.port().to_string()])
        .args(["--bind", &UPSTREAM_IP.to_string(), "--directory"])
        .arg(tmp.join("www"));
    let child = spawn_logged(&mut python, &upstream_log)?;
    let upstream_child = cleanup.upstream.insert(child);
    wait_for_tcp(
        upstream,
        upstream_child,
        &upstream_log,
        "the upstream server",
    )?;
    say(&format!(
        "The upstream serves http://{upstream}/. There is no internet here, so a second \
         loopback address plays the remote host."
    ));

    step("Starting the veil daemon (veil serve) on a private instance");
    say(&format!(
        "It loads veil's eBPF programs, pins them under {}, and steers the TCP connects of \
         sandboxes under the cgroup {} to its listener. The paths are private to this demo, so \
         a real veil installation is not touched.",
        cleanup.bpf_dir.display(),
        cleanup.cgroup_parent.display()
    ));
    let listen = SocketAddr::new(IpAddr::V4(LISTEN_IP), free_port(LISTEN_IP)?);
    let serve_log = tmp.join("veil-serve.log");
    let mut serve = instance.command("serve");
    serve.arg("--listen").arg(listen.to_string());
    let child = spawn_logged(&mut serve, &serve_log)?;
    let serve_child = cleanup.serve.insert(child);
    wait_for_socket(&tmp.join("run/veil.sock"), serve_child, &serve_log)?;
    say(&format!(
        "veil is listening on {listen}; its control socket is ready."
    ));

    step("Running curl inside a sandbox (veil run --sandbox demo)");
    let url = format!("http://{upstream}/");
    let mut run = instance.command("run");
    run.args(["--sandbox", "demo", "--listen", &listen.to_string(), "--"])
        .args(["curl", "-sS", "--max-time", "10", &url]);
    let out = output(&mut run)?;
    if !out.status.success() {
        print_indented(&out);
        print_log("veil serve's log", &serve_log);
        print_log("the upstream's log", &upstream_log);
        bail!("the sandboxed curl failed ({})", out.status);
    }
    say(&format!(
        "curl ran inside the sandbox cgroup {}/demo and connected to {upstream}, with no proxy \
         settings. veil's eBPF program steered that connect() in the kernel to veil's listener \
         {listen}; veil connected to {upstream} itself and relayed the response. curl printed:",
        cleanup.cgroup_parent.display()
    ));
    print_indented(&out);
    print_log("the upstream's access log", &upstream_log);

    step("Reading the audit log (veil audit)");
    let table = output(&mut instance.command("audit"))?;
    print_indented(&table);
    let mut json = instance.command("audit");
    json.arg("--json");
    let json = output(&mut json)?;
    print_indented(&json);
    if !table.status.success() || !json.status.success() {
        print_log("veil serve's log", &serve_log);
        bail!("veil audit failed");
    }
    println!();
    say(&format!(
        "What the audit log shows: `veil run` created the sandbox cgroup {cg}/demo and veil \
         attached its eBPF programs to it (sandbox_attached), then removed it when curl exited \
         (sandbox_detached). In between is curl's connection: when curl called connect() to \
         {upstream}, the eBPF program recorded who was connecting (pid, command, uid) and where \
         to, and rewrote the connect to veil's listener {listen}. veil matched the accepted \
         connection to that record, decided (verdict, reason), and opened its own connection to \
         {upstream}. curl had no way around veil. `--json` prints the same records as one JSON \
         object per line, for scripts.",
        cg = cleanup.cgroup_parent.display()
    ));
    drop(cleanup);
    println!("\nDemo finished.");
    Ok(())
}

/// One veil instance: its binary and the global options that make it private.
struct Instance {
    veil: PathBuf,
    globals: Vec<OsString>,
}

impl Instance {
    /// `veil <globals> <subcommand>`.
    fn command(&self, subcommand: &str) -> Command {
        let mut cmd = Command::new(&self.veil);
        cmd.args(&self.globals).arg(subcommand);
        cmd
    }
}

/// Removes everything the demo created, in reverse order, when dropped.
struct Cleanup {
    serve: Option<Child>,
    upstream: Option<Child>,
    bpf_dir: PathBuf,
    cgroup_parent: PathBuf,
    tmp: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        step("Cleaning up");
        if let Some(child) = self.serve.take() {
            println!("Stopping veil serve (SIGTERM) and waiting for it to exit");
            warn(stop(child, Duration::from_secs(10)));
        }
        if let Some(mut child) = self.upstream.take() {
            println!("Stopping the upstream server");
            warn(
                child
                    .kill()
                    .and_then(|()| child.wait())
                    .map(drop)
                    .map_err(Into::into),
            );
        }
        if self.bpf_dir.exists() {
            println!("Removing {}", self.bpf_dir.display());
            warn(fs::remove_dir_all(&self.bpf_dir).map_err(Into::into));
        }
        if self.cgroup_parent.exists() {
            println!("Removing the cgroup {}", self.cgroup_parent.display());
            warn(remove_cgroup(&self.cgroup_parent));
        }
        println!("Removing {}", self.tmp.display());
        warn(fs::remove_dir_all(&self.tmp).map_err(Into::into));
    }
}

/// Prints a cleanup failure without stopping the rest of the cleanup.
fn warn(result: Result<()>) {
    if let Err(e) = result {
        eprintln!("warning: cleanup step failed: {e:#}");
    }
}

/// Prints a paragraph of explanation, wrapped to [`WIDTH`] columns.
fn say(text: &str) {
    for line in wrap(text, WIDTH) {
        println!("{line}");
    }
}

/// The width explanations are wrapped to.
const WIDTH: usize = 96;

/// Splits `text` into lines of at most `width` characters at spaces (longer words stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Prints a step header.
fn step(text: &str) {
    println!("\n==> {text}");
}

/// Creates a fresh directory `<temp>/<name>-<n>`.
pub(crate) fn make_temp_dir(name: &str) -> Result<PathBuf> {
    for n in 0..100 {
        let dir = std::env::temp_dir().join(format!("{name}-{n}"));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    bail!(
        "could not create a temp dir {name}-N in {}",
        std::env::temp_dir().display()
    )
}

/// A TCP port that is free on `ip` right now.
pub(crate) fn free_port(ip: Ipv4Addr) -> Result<u16> {
    let listener = TcpListener::bind((ip, 0)).with_context(|| format!("binding {ip}:0"))?;
    Ok(listener.local_addr()?.port())
}

/// Prints `cmd` and starts it with stdout and stderr going to `log`.
fn spawn_logged(cmd: &mut Command, log: &Path) -> Result<Child> {
    let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let line = process::show(cmd);
    println!("$ {line} &");
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("starting `{line}`"))
}

/// Prints `cmd`, runs it, and returns its output.
fn output(cmd: &mut Command) -> Result<Output> {
    let line = process::show(cmd);
    println!("$ {line}");
    cmd.stdin(Stdio::null())
        .output()
        .with_context(|| format!("running `{line}`"))
}

/// Waits until `check` holds, failing with `what`'s log if `child` exits or time runs out.
fn wait_until(
    what: &str,
    child: &mut Child,
    log: &Path,
    mut check: impl FnMut() -> bool,
) -> Result<()> {
    let started = Instant::now();
    loop {
        if check() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            print_log(&format!("{what}'s output"), log);
            bail!("{what} exited during startup ({status})");
        }
        if started.elapsed() > STARTUP_TIMEOUT {
            print_log(&format!("{what}'s output"), log);
            bail!("{what} did not come up within {STARTUP_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until something accepts TCP connections at `addr`.
fn wait_for_tcp(addr: SocketAddr, child: &mut Child, log: &Path, what: &str) -> Result<()> {
    wait_until(what, child, log, || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    })
}

/// Waits until veil's control socket exists.
fn wait_for_socket(socket: &Path, child: &mut Child, log: &Path) -> Result<()> {
    wait_until("veil serve", child, log, || socket.exists())
}

/// Sends SIGTERM to `child` and waits for it; SIGKILL after `grace`.
fn stop(mut child: Child, grace: Duration) -> Result<()> {
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    if child.try_wait()?.is_none() {
        // SAFETY: kill has no memory-safety preconditions; `child` is not reaped yet, so the
        // pid still names it.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(std::io::Error::last_os_error()).context("sending SIGTERM");
        }
    }
    let started = Instant::now();
    while started.elapsed() < grace {
        if let Some(status) = child.try_wait()? {
            println!("veil serve exited ({status})");
            return Ok(());
        }
        thread::sleep(Duration::from_millis(50));
    }
    child.kill()?;
    child.wait()?;
    bail!("it did not exit within {grace:?} of SIGTERM; killed it")
}

/// Removes a cgroup and its descendants, killing any processes left in them first.
pub(crate) fn remove_cgroup(dir: &Path) -> Result<()> {
    let populated = || {
        fs::read_to_string(dir.join("cgroup.events"))
            .map(|events| events.lines().any(|l| l == "populated 1"))
            .unwrap_or(false)
    };
    if populated() {
        println!("Processes remain in it: killing them (cgroup.kill)");
        fs::write(dir.join("cgroup.kill"), "1").context("writing cgroup.kill")?;
        let started = Instant::now();
        while populated() && started.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(50));
        }
    }
    remove_cgroup_dirs(dir)
}

/// rmdir's `dir` after its child cgroups, retrying while the kernel still releases them.
fn remove_cgroup_dirs(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_cgroup_dirs(&entry.path())?;
        }
    }
    let mut tries = 0;
    loop {
        match fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 50 => {
                tries += 1;
                thread::sleep(Duration::from_millis(100));
            }
            result => return result.with_context(|| format!("rmdir {}", dir.display())),
        }
    }
}

/// Prints a command's stdout and stderr, indented.
fn print_indented(out: &Output) {
    for stream in [&out.stdout, &out.stderr] {
        for line in String::from_utf8_lossy(stream).lines() {
            println!("    {line}");
        }
    }
}

/// Prints a log file, indented, under a title.
fn print_log(title: &str, path: &Path) {
    match fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            println!("--- {title} ({}):", path.display());
            for line in text.lines() {
                println!("    {line}");
            }
        }
        Ok(_) => println!("--- {title}: (empty)"),
        Err(e) => println!("--- {title}: cannot read {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mounts;

    #[test]
    fn wraps_at_spaces() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("  a   verylongword b ", 4), ["a", "verylongword", "b"]);
        assert!(wrap("", 10).is_empty());
    }

    /// remove_cgroup kills what is left in a cgroup tree and removes it (needs root and cgroup2;
    /// skipped otherwise).
    #[test]
    fn remove_cgroup_kills_and_removes_a_populated_tree() -> Result<()> {
        let mounts = mounts::read()?;
        let Some(cgroup2) = mounts::cgroup2(&mounts).filter(|_| process::is_root()) else {
            eprintln!("skipped: needs root and a cgroup2 mount");
            return Ok(());
        };
        let top = cgroup2.join(format!("xtask-test-{}", std::process::id()));
        let leaf = top.join("a/b");
        fs::create_dir_all(&leaf)?;
        let mut sleeper = Command::new("sleep").arg("60").spawn()?;
        fs::write(leaf.join("cgroup.procs"), sleeper.id().to_string())?;
        let removed = remove_cgroup(&top);
        if top.exists() {
            // Leave nothing behind even when the code under test failed.
            let _ = sleeper.kill();
            let _ = sleeper.wait();
            let _ = remove_cgroup_dirs(&top);
        }
        removed?;
        assert!(!top.exists());
        // cgroup.kill sends SIGKILL.
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&sleeper.wait()?),
            Some(libc::SIGKILL)
        );
        Ok(())
    }
}
