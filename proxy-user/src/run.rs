//! `veil run`: run a command in a fresh sandbox cgroup steered through veil, with or without a
//! separately started daemon.

use std::{
    ffi::{CStr, CString},
    io,
    os::unix::{ffi::OsStrExt, process::ExitStatusExt},
    path::Path,
    process::ExitStatus,
};

use nix::{
    fcntl::{open, OFlag},
    sys::{
        signal::{kill, Signal},
        stat::Mode,
    },
    unistd::{setgid, setgroups, setuid, write, Gid, Pid, Uid, User},
};
use tokio::{
    process::Command,
    signal::unix::{signal, SignalKind},
};

use crate::{
    api::client::{ApiClient, ClientError},
    cgroup::{self, CgroupError},
    daemon::{DaemonError, Options},
    sandbox::Sandbox,
    secrets::SecretInfo,
    serve::{self, Running},
    steering::SettingsOverride,
};

/// Errors from `veil run`.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Not root.
    #[error(
        "veil run must be started as root: it creates a sandbox cgroup and moves CMD into it \
         (use --user to run CMD itself as another user)"
    )]
    NotRoot,
    /// The `--user` value names nobody.
    #[error("no such user: {0}")]
    NoSuchUser(String),
    /// A bad sandbox name.
    #[error(transparent)]
    Name(#[from] CgroupError),
    /// The daemon refused or failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Starting veil in-process failed.
    #[error("no veil daemon answers at {socket}, and starting one in-process failed: {source}")]
    Embedded {
        /// Where the daemon was looked for.
        socket: String,
        /// Why the in-process one failed.
        source: Box<DaemonError>,
    },
    /// Removing the sandbox failed.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// CMD could not be started.
    #[error("starting {cmd}: {source}")]
    Spawn {
        /// The command.
        cmd: String,
        /// The error.
        source: io::Error,
    },
}

/// The capability packet (and raw) sockets need, dropped from every sandboxed command.
const CAP_NET_RAW: libc::c_ulong = 13;

/// Who CMD runs as.
struct Identity {
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
    name: String,
    home: std::path::PathBuf,
}

/// Where sandboxes come from: the daemon's API, or a daemon started in this process.
enum Backend {
    Remote(ApiClient),
    Embedded(Running),
}

/// Runs `command` in sandbox `name` (default `run-<pid>`) with `settings` over the defaults
/// and returns its exit code (128 + signal number when a signal ended it).
pub async fn run(
    options: &Options,
    name: Option<String>,
    user: Option<&str>,
    settings: &SettingsOverride,
    command: &[String],
) -> Result<i32, RunError> {
    if !Uid::effective().is_root() {
        return Err(RunError::NotRoot);
    }
    let identity = user.map(resolve_user).transpose()?;
    let name = name.unwrap_or_else(|| format!("run-{}", std::process::id()));
    cgroup::validate_name(&name)?;
    let backend = backend(options).await?;
    let secrets = match &backend {
        Backend::Remote(client) => client.secrets().await?,
        Backend::Embedded(running) => running.daemon().secrets().list(),
    };
    let env = secrets_env(&secrets, &options.paths.secrets_profile());
    let sandbox = match &backend {
        Backend::Remote(client) => client.create_sandbox(&name, settings, true).await?,
        Backend::Embedded(running) => running
            .daemon()
            .sandboxes()
            .create(&name, settings, true)
            .await
            .map_err(DaemonError::from)?,
    };
    let status = run_in(
        &sandbox,
        identity.as_ref(),
        command,
        &env,
        &options.paths.ca_bundle(),
    )
    .await;
    let removed = match &backend {
        Backend::Remote(client) => client
            .remove_sandbox(&name)
            .await
            .map(drop)
            .map_err(RunError::from),
        Backend::Embedded(running) => running
            .daemon()
            .sandboxes()
            .remove(&name)
            .await
            .map(drop)
            .map_err(|e| RunError::from(DaemonError::from(e))),
    };
    if let Backend::Embedded(running) = backend {
        running.shutdown().await;
    }
    let status = status?;
    removed?;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1))
}

async fn backend(options: &Options) -> Result<Backend, RunError> {
    let socket = options.paths.socket();
    match ApiClient::connect(&socket).await {
        Ok(client) => Ok(Backend::Remote(client)),
        Err(ClientError::Connect { .. }) => {
            log::info!(
                "no veil daemon at {}: starting one in-process",
                socket.display()
            );
            serve::spawn(options)
                .map(Backend::Embedded)
                .map_err(|source| RunError::Embedded {
                    socket: socket.display().to_string(),
                    source: Box::new(source),
                })
        }
        Err(e) => Err(e.into()),
    }
}

/// The variables common TLS stacks read for their trusted roots: OpenSSL (and so python,
/// curl, git), curl and git explicitly, python's requests, and node (which adds to its own).
pub const CA_VARIABLES: [&str; 5] = [
    "SSL_CERT_FILE",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
];
/// The variables that carry secrets into a sandbox: each secret's `env_var` set to its
/// placeholder, and `VEIL_SECRETS_PROFILE` naming the profile that reloads them.
fn secrets_env(secrets: &[SecretInfo], profile: &Path) -> Vec<(String, String)> {
    secrets
        .iter()
        .map(|s| (s.env_var.clone(), s.proxy_value.clone()))
        .chain([(
            "VEIL_SECRETS_PROFILE".to_owned(),
            profile.display().to_string(),
        )])
        .collect()
}

async fn run_in(
    sandbox: &Sandbox,
    identity: Option<&Identity>,
    command: &[String],
    env: &[(String, String)],
    ca_bundle: &std::path::Path,
) -> Result<ExitStatus, RunError> {
    let spawn_err = |source| RunError::Spawn {
        cmd: command.join(" "),
        source,
    };
    let procs = CString::new(sandbox.cgroup.join("cgroup.procs").as_os_str().as_bytes())
        .map_err(|e| spawn_err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let netns = sandbox
        .netns
        .as_deref()
        .map(std::fs::File::open)
        .transpose()
        .map_err(spawn_err)?;
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]);
    for var in CA_VARIABLES {
        cmd.env(var, ca_bundle);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let ids = identity.map(|id| (id.uid, id.gid, id.groups.clone()));
    if let Some(id) = identity {
        cmd.env("HOME", &id.home)
            .env("USER", &id.name)
            .env("LOGNAME", &id.name);
    }
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls
    // (open, write, close, prctl, setgroups, setgid, setuid; nix's wrappers of them allocate
    // nothing) on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            join_cgroup(&procs)?;
            if let Some(ns) = &netns {
                nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
            }
            // Packet sockets never pass veil's in-kernel socket checks (the cgroup hook sees
            // inet sockets only); without CAP_NET_RAW in the bounding set nothing in the
            // sandbox can open one, root or a file-capability binary alike.
            check(libc::prctl(libc::PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0))?;
            if let Some((uid, gid, groups)) = &ids {
                setgroups(groups)?;
                setgid(*gid)?;
                setuid(*uid)?;
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(spawn_err)?;
    let pid = child.id();
    let mut term = signal(SignalKind::terminate()).map_err(spawn_err)?;
    let mut hup = signal(SignalKind::hangup()).map_err(spawn_err)?;
    // The terminal delivers ^C to CMD itself; veil only has to survive it and wait.
    let mut int = signal(SignalKind::interrupt()).map_err(spawn_err)?;
    loop {
        let forward = tokio::select! {
            status = child.wait() => return status.map_err(spawn_err),
            _ = term.recv() => Some(Signal::SIGTERM),
            _ = hup.recv() => Some(Signal::SIGHUP),
            _ = int.recv() => None,
        };
        if let (Some(sig), Some(pid)) = (forward, pid.and_then(|p| i32::try_from(p).ok())) {
            // `pid` is CMD's and not reaped yet (wait() has not returned), so it names no other
            // process; a failure means CMD is exiting, which wait() reports.
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is `procs`.
fn join_cgroup(procs: &CStr) -> io::Result<()> {
    let fd = open(procs, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    match write(&fd, b"0")? {
        1 => Ok(()),
        _ => Err(io::ErrorKind::WriteZero.into()),
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn resolve_user(spec: &str) -> Result<Identity, RunError> {
    let found = match spec.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)),
        Err(_) => User::from_name(spec),
    };
    let user = found
        .ok()
        .flatten()
        .ok_or_else(|| RunError::NoSuchUser(spec.to_owned()))?;
    let c_name =
        CString::new(user.name.as_bytes()).map_err(|_| RunError::NoSuchUser(spec.to_owned()))?;
    let groups = nix::unistd::getgrouplist(&c_name, user.gid).unwrap_or_else(|_| vec![user.gid]);
    Ok(Identity {
        uid: user.uid,
        gid: user.gid,
        groups,
        name: user.name,
        home: user.dir,
    })
}
