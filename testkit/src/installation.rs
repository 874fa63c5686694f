//! A private veil installation: its own state and runtime directories, bpffs directory,
//! sandbox parent cgroup, listeners and configuration file, so that it never meets a real
//! installation or another private one. Dropping it stops its daemon and removes everything
//! it made, also when whoever used it failed; after a panic it first shows the end of the
//! daemon's log.

use std::{
    env,
    ffi::OsString,
    fs,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Output},
    time::Duration,
};

use crate::{
    api,
    cgroup::remove_cgroup,
    error::{Context, Error},
    free_port, mounts, Daemon,
};

/// How long `veil serve` may take to answer `GET /healthz`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// How many of the daemon log's last lines are shown when whoever used the installation
/// panics.
const PANIC_LOG_TAIL: usize = 60;

/// One veil installation with its own paths.
pub struct Installation {
    bin: PathBuf,
    name: String,
    dir: tempfile::TempDir,
    bpf_dir: PathBuf,
    cgroup_parent: PathBuf,
    listen: SocketAddr,
    listen6: SocketAddr,
    env: Vec<(String, String)>,
    serve: Option<Daemon>,
}

/// Where installations keep their files: the host's, so visible (read-only) in sandboxes.
const SHARED_TMP: &str = "/var/tmp";
/// The directory in an installation's directory that sandboxes may write to when given
/// `--bind` (mode 0777).
const WORK: &str = "work";

impl Installation {
    /// A fresh installation of the `veil` binary `bin`, called `name` (its bpffs directory
    /// and sandbox parent cgroup are named so; the temporary directory holding the rest
    /// starts with it). Nothing runs yet.
    pub fn new(bin: &Path, name: &str) -> Result<Self, Error> {
        // Not in /tmp, which is private to each `veil run` sandbox: sandboxed workloads
        // (unprivileged, the host's filesystem read-only) read the CA bundle and the files
        // tests leave for them in here; veil's state and run directories in it stay hidden.
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir_in(SHARED_TMP)
            .doing(|| format!("creating a temporary directory in {SHARED_TMP}"))?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .doing(|| format!("opening up {}", dir.path().display()))?;
        let work = dir.path().join(WORK);
        fs::create_dir(&work).doing(|| format!("creating {}", work.display()))?;
        fs::set_permissions(&work, fs::Permissions::from_mode(0o777))
            .doing(|| format!("opening up {}", work.display()))?;
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port(Ipv4Addr::LOCALHOST)?));
        // Without IPv6 on the host veil cannot bind this and refuses sandboxes' native IPv6.
        let port6 = free_port(Ipv6Addr::LOCALHOST).unwrap_or(listen.port());
        Ok(Self {
            bin: bin.to_path_buf(),
            name: name.to_owned(),
            bpf_dir: Path::new("/sys/fs/bpf").join(name),
            cgroup_parent: mounts::cgroup2_mount()?.join(name),
            listen,
            listen6: SocketAddr::from((Ipv6Addr::LOCALHOST, port6)),
            dir,
            env: Vec::new(),
            serve: None,
        })
    }

    /// A directory every user may write to, for sandboxes to write in with `--bind`.
    pub fn work_dir(&self) -> PathBuf {
        self.dir.path().join(WORK)
    }

    /// The installation's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The temporary directory holding state, runtime directory, configuration and logs;
    /// removed on drop, so callers may keep their own files in it too.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The state directory (the database, the CA, the master key).
    pub fn state_dir(&self) -> PathBuf {
        self.dir().join("state")
    }

    /// The runtime directory (the control socket, the CA bundle, the secrets profile).
    pub fn run_dir(&self) -> PathBuf {
        self.dir().join("run")
    }

    /// The control API's Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.run_dir().join("veil.sock")
    }

    /// What sandboxes may read: beside the run directory, which is root's alone.
    pub fn public_dir(&self) -> PathBuf {
        self.dir().join("run-public")
    }

    /// The CA bundle sandboxes trust.
    pub fn ca_bundle(&self) -> PathBuf {
        self.public_dir().join("ca-bundle.pem")
    }

    /// The configuration file veil reads (`VEIL_CONFIG`).
    pub fn config_path(&self) -> PathBuf {
        self.dir().join("veil.toml")
    }

    /// The bpffs directory veil pins its maps and links in.
    pub fn bpf_dir(&self) -> &Path {
        &self.bpf_dir
    }

    /// The sandbox parent cgroup (absolute).
    pub fn cgroup_parent(&self) -> &Path {
        &self.cgroup_parent
    }

    /// veil's IPv4 listener.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// veil's IPv6 listener.
    pub fn listen6(&self) -> SocketAddr {
        self.listen6
    }

    /// Adds `var=value` to the environment of every `veil` command of this installation
    /// (such as `VEIL_DNS_RESOLVERS`).
    pub fn set_env(&mut self, var: &str, value: &str) {
        self.env.push((var.to_owned(), value.to_owned()));
    }

    /// The variables that make a `veil` command use this installation, in the order a person
    /// would export them.
    pub fn env(&self) -> Vec<(String, OsString)> {
        let mut vars: Vec<(String, OsString)> = vec![
            ("VEIL_STATE_DIR".into(), self.state_dir().into()),
            ("VEIL_RUN_DIR".into(), self.run_dir().into()),
            ("VEIL_BPF_DIR".into(), self.bpf_dir.clone().into()),
            (
                "VEIL_CGROUP_PARENT".into(),
                self.cgroup_parent.clone().into(),
            ),
            ("VEIL_LISTEN".into(), self.listen.to_string().into()),
            ("VEIL_LISTEN6".into(), self.listen6.to_string().into()),
            ("VEIL_CONFIG".into(), self.config_path().into()),
        ];
        vars.extend(self.env.iter().map(|(k, v)| (k.clone(), v.into())));
        vars
    }

    /// A `veil` command for this installation: its paths in the environment, and none of the
    /// caller's own `VEIL_*` settings or `RUST_LOG`.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        for (var, _) in env::vars_os() {
            if var.to_string_lossy().starts_with("VEIL_") {
                cmd.env_remove(var);
            }
        }
        cmd.env_remove("RUST_LOG").envs(self.env());
        cmd
    }

    /// Runs `veil ARGS` to completion.
    pub fn output(&self, args: &[&str]) -> Result<Output, Error> {
        self.command()
            .args(args)
            .output()
            .doing(|| format!("running veil {}", args.join(" ")))
    }

    /// Writes the configuration file: `policy` is its text, such as an `[egress]` section.
    /// A running daemon re-reads it on SIGHUP.
    pub fn set_policy(&self, policy: &str) -> Result<(), Error> {
        let path = self.config_path();
        fs::write(&path, policy).doing(|| format!("writing {}", path.display()))
    }

    /// Starts `veil serve ARGS` with `env` added to its environment (such as `RUST_LOG`),
    /// logging to [`Installation::daemon_log_path`], and waits until its control API is
    /// healthy.
    pub fn start_daemon(&mut self, args: &[&str], env: &[(&str, &str)]) -> Result<(), Error> {
        if self.serve.is_some() {
            return Err(Error::Protocol("veil serve already runs".to_owned()));
        }
        let mut cmd = self.command();
        cmd.arg("serve").args(args).envs(env.iter().copied());
        let mut serve = Daemon::spawn("veil serve", &mut cmd, &self.daemon_log_path())?;
        let socket = self.socket();
        serve.wait_ready(STARTUP_TIMEOUT, || api::healthy(&socket))?;
        self.serve = Some(serve);
        Ok(())
    }

    /// The running daemon, if any.
    pub fn daemon(&self) -> Option<&Daemon> {
        self.serve.as_ref()
    }

    /// Sends `signal` to the daemon and waits for it to exit (SIGKILL after a grace period);
    /// how it ended, or `None` when no daemon ran.
    pub fn stop_daemon(&mut self, signal: i32) -> Option<ExitStatus> {
        self.serve.take()?.stop(signal)
    }

    /// Where `veil serve` logs (appended to across restarts).
    pub fn daemon_log_path(&self) -> PathBuf {
        self.dir().join("daemon.log")
    }

    /// What the daemon has logged so far.
    pub fn daemon_log(&self) -> String {
        fs::read_to_string(self.daemon_log_path()).unwrap_or_default()
    }

    /// Prints the end of the daemon's log to standard error (where a failing test shows it),
    /// if it logged anything.
    fn show_daemon_log(&self) {
        let log = self.daemon_log();
        if log.is_empty() {
            return;
        }
        let lines: Vec<&str> = log.lines().collect();
        let shown = &lines[lines.len().saturating_sub(PANIC_LOG_TAIL)..];
        eprintln!(
            "--- the last {} lines of {} ---\n{}\n---",
            shown.len(),
            self.daemon_log_path().display(),
            shown.join("\n")
        );
    }

    /// Sends one request to the control API; returns the status and the body.
    pub fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, String), Error> {
        api::request(&self.socket(), method, path, body)
    }

    /// Creates a secret through the control API and returns it as the API answers (`id`,
    /// `proxy_value`, ...; never the value).
    pub fn create_secret(
        &self,
        name: &str,
        value: &str,
        env_var: &str,
        hosts: &[&str],
    ) -> Result<serde_json::Value, Error> {
        let body = serde_json::json!({
            "name": name, "secret": value, "env_var": env_var, "hosts": hosts,
        })
        .to_string();
        let (status, answer) = self.api("POST", "/v1/secrets", Some(&body))?;
        if status != 201 {
            return Err(Error::Api {
                request: format!("POST /v1/secrets ({name})"),
                status,
                body: answer,
            });
        }
        serde_json::from_str(&answer).map_err(|e| Error::Protocol(format!("{e}: {answer}")))
    }

    /// Whether this installation left steering behind: its bpffs directory or its sandbox
    /// parent cgroup.
    pub fn has_leftovers(&self) -> bool {
        self.bpf_dir.exists() || self.cgroup_parent.exists()
    }

    /// Removes the sandbox parent cgroup (killing what runs in it), the bpffs directory, and
    /// the network namespaces the daemon kept for sandboxes it never removed (a container
    /// attached when the daemon stopped). The daemon should be stopped first; dropping the
    /// installation does both.
    pub fn remove_leftovers(&self) -> Result<(), Error> {
        remove_cgroup(&self.cgroup_parent)?;
        let netns_dir = self.run_dir().join("netns");
        for mount in crate::mounts::read()? {
            if mount.fstype == "nsfs" && mount.target.starts_with(&netns_dir) {
                let target = std::ffi::CString::new(mount.target.as_os_str().as_encoded_bytes())
                    .map_err(|e| Error::Protocol(e.to_string()))?;
                // SAFETY: umount2 with a valid NUL-terminated path; MNT_DETACH only unhooks it.
                unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
            }
        }
        if self.bpf_dir.exists() {
            fs::remove_dir_all(&self.bpf_dir)
                .doing(|| format!("removing {}", self.bpf_dir.display()))?;
        }
        Ok(())
    }
}

impl Drop for Installation {
    fn drop(&mut self) {
        self.stop_daemon(libc::SIGTERM);
        if std::thread::panicking() {
            self.show_daemon_log();
        }
        if let Err(e) = self.remove_leftovers() {
            eprintln!("warning: cleaning up veil installation {}: {e}", self.name);
        }
    }
}
