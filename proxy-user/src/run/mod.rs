//! `veil run`: run a command in a fresh sandbox steered through veil, with or without a
//! separately started daemon.
//!
//! The sandbox is a cgroup and a network namespace of its own (made by the daemon); by
//! default bubblewrap ([`isolation`]) adds the namespaces that keep a root workload inside.
//! [`identity`] decides who the command is, [`env`] what it sees of the environment, and
//! [`child`] what the forked child does before the command starts.

pub mod child;
pub mod env;
pub mod identity;
pub mod isolation;

use std::{
    io,
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::ExitStatus,
};

use nix::{
    sys::signal::{kill, Signal},
    unistd::{Pid, Uid},
};
use tokio::{
    process::Command,
    signal::unix::{signal, SignalKind},
};

use self::{
    child::Setup,
    env::{EnvError, Var},
    identity::{Identity, IdentityError},
    isolation::{Layout, LayoutError, PROFILE_D, WORKING_DIRECTORY},
};
use crate::{
    api::client::{ApiClient, ClientError},
    cgroup::{self, CgroupError},
    config::Paths,
    daemon::{DaemonError, Options},
    netns::{self, NetnsError},
    sandbox::Sandbox,
    serve::{self, Running},
    steering::SettingsOverride,
};

/// Errors from `veil run`.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Not root.
    #[error(
        "veil run must be started as root: it creates a sandbox (a cgroup and a network \
         namespace) and moves CMD into it; CMD itself runs unprivileged"
    )]
    NotRoot,
    /// `--user` or the working directory.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// `--env` or `--env-file`.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// An `--env-file` that cannot be read.
    #[error("reading --env-file {path}")]
    EnvFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `--bind`, `--ro-bind` or the working directory.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// bubblewrap is not installed.
    #[error(
        "bubblewrap (bwrap) is not installed, and veil run isolates CMD with it: install it \
         (`apt install bubblewrap`), or pass --no-isolation to run CMD with only veil's \
         network sandbox (a root CMD can then leave it)"
    )]
    NoBubblewrap,
    /// The kernel does not let an unprivileged user create a user namespace.
    #[error(
        "this kernel does not let unprivileged users create user namespaces ({setting}), \
         which veil run's isolation needs: allow them, or pass --no-isolation (a root CMD \
         can then leave the sandbox)"
    )]
    NoUserNamespaces {
        /// The setting that forbids them.
        setting: String,
    },
    /// CMD is not an executable file, on `PATH` or as given.
    #[error("{0}: command not found (not an executable file, nor one on PATH)")]
    NotFound(String),
    /// A bad sandbox name.
    #[error(transparent)]
    Name(#[from] CgroupError),
    /// The daemon refused or failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Starting veil in-process failed.
    #[error("no veil daemon answers at {socket}, and starting one in-process failed")]
    Embedded {
        /// Where the daemon was looked for.
        socket: String,
        /// Why the in-process one failed.
        source: Box<DaemonError>,
    },
    /// Removing the sandbox failed.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The sandbox's network namespace cannot be opened, here or through the daemon's root.
    #[error("cannot join the sandbox's network namespace at {path}")]
    Netns {
        /// Where the daemon keeps it.
        path: PathBuf,
        /// Why it cannot be opened.
        source: NetnsError,
    },
    /// CMD could not be started.
    #[error("starting {cmd}")]
    Spawn {
        /// The command.
        cmd: String,
        /// The error.
        source: io::Error,
    },
}

/// What `veil run` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Sandbox name (default `run-<pid>`).
    pub sandbox: Option<String>,
    /// `--user`.
    pub user: Option<String>,
    /// The sandbox's settings over the defaults.
    pub settings: SettingsOverride,
    /// Whether bubblewrap isolates the command (not `--no-isolation`).
    pub isolate: bool,
    /// `--env NAME[=VALUE]`, in order.
    pub env: Vec<String>,
    /// `--env-file`, in order (read before `--env`, which wins).
    pub env_files: Vec<PathBuf>,
    /// `--bind` directories.
    pub binds: Vec<PathBuf>,
    /// `--ro-bind` directories.
    pub ro_binds: Vec<PathBuf>,
    /// The command and its arguments (at least the command).
    pub command: Vec<String>,
}

/// Everything about the command that can be checked before a sandbox exists.
struct Plan {
    identity: Identity,
    extra_env: Vec<Var>,
    layout: Option<Layout>,
}

/// Where sandboxes come from: the daemon's API, or a daemon started in this process.
enum Backend {
    Remote(ApiClient),
    Embedded(Running),
}

/// Runs the request's command in a new sandbox and returns its exit code (128 + signal
/// number when a signal ended it). Bad input is refused before anything is created.
pub async fn run(options: &Options, request: &Request) -> Result<i32, RunError> {
    if !Uid::effective().is_root() {
        return Err(RunError::NotRoot);
    }
    let plan = plan(&options.paths, request)?;
    if !request.isolate {
        log::warn!(
            "--no-isolation: CMD shares the host's filesystem, processes and users; only its \
             network is sandboxed, and a root CMD can leave the sandbox"
        );
    }
    let name = request
        .sandbox
        .clone()
        .unwrap_or_else(|| format!("run-{}", std::process::id()));
    cgroup::validate_name(&name)?;
    let backend = backend(options).await?;
    let secrets = match &backend {
        Backend::Remote(client) => client.secrets().await?,
        Backend::Embedded(running) => running.daemon().secrets().list(),
    };
    let profile = if plan.layout.as_ref().is_some_and(|l| l.profile_d.is_some()) {
        PathBuf::from(PROFILE_D)
    } else {
        options.paths.secrets_profile()
    };
    let env = env::build(
        &env::Inputs {
            home: &plan.identity.home,
            ca_bundle: &options.paths.ca_bundle(),
            profile: &profile,
            secrets: &secrets,
            extra: &plan.extra_env,
        },
        |name| std::env::var(name).ok(),
    );
    let sandbox = match &backend {
        Backend::Remote(client) => {
            client
                .create_sandbox(&name, &request.settings, true)
                .await?
        }
        Backend::Embedded(running) => running
            .daemon()
            .sandboxes()
            .create(&name, &request.settings, true)
            .await
            .map_err(DaemonError::from)?,
    };
    let daemon_pid = match &backend {
        Backend::Remote(client) => client.daemon_pid().await,
        Backend::Embedded(_) => None,
    };
    let status = run_in(&sandbox, daemon_pid, &plan, &request.command, &env).await;
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

/// Checks the request against the machine: the user exists, the files and directories it
/// names do, none of them uncovers what a sandbox must not see, bubblewrap is there.
fn plan(paths: &Paths, request: &Request) -> Result<Plan, RunError> {
    let cwd = std::env::current_dir()
        .and_then(std::fs::canonicalize)
        .map_err(|source| IdentityError::Cwd {
            dir: PathBuf::from("."),
            source,
        })?;
    let identity = Identity::resolve(request.user.as_deref(), request.isolate, &cwd)?;
    let program = &request.command[0];
    let found = if program.contains('/') {
        is_executable(&cwd.join(program))
    } else {
        which(program).is_some()
    };
    if !found {
        return Err(RunError::NotFound(program.clone()));
    }
    let caller = |name: &str| std::env::var(name).ok();
    let mut extra_env = Vec::new();
    for path in &request.env_files {
        let text = std::fs::read_to_string(path).map_err(|source| RunError::EnvFile {
            path: path.clone(),
            source,
        })?;
        extra_env.extend(env::parse_file(&text, path, caller)?);
    }
    for arg in &request.env {
        extra_env.extend(env::parse_arg(arg, caller)?);
    }
    let layout = if request.isolate {
        Some(layout(paths, request, &identity, cwd)?)
    } else {
        None
    };
    Ok(Plan {
        identity,
        extra_env,
        layout,
    })
}

fn layout(
    paths: &Paths,
    request: &Request,
    identity: &Identity,
    cwd: PathBuf,
) -> Result<Layout, RunError> {
    if which("bwrap").is_none() {
        return Err(RunError::NoBubblewrap);
    }
    if let Some(setting) = user_namespaces_forbidden() {
        return Err(RunError::NoUserNamespaces { setting });
    }
    let resolve_all = |flag, dirs: &[PathBuf]| {
        dirs.iter()
            .map(|dir| isolation::resolve(flag, dir))
            .collect::<Result<Vec<_>, _>>()
    };
    let hidden = [&paths.state_dir, &paths.run_dir, &paths.bpf_dir]
        .into_iter()
        .map(|dir| std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone()))
        .collect();
    let layout = Layout {
        cwd,
        hidden,
        public_dir: paths.public_dir(),
        profile: paths.secrets_profile(),
        profile_d: isolation::host_profile_d(),
        keep: isolation::kept_files(),
        binds: resolve_all("--bind", &request.binds)?,
        ro_binds: resolve_all("--ro-bind", &request.ro_binds)?,
        ids: (identity.inside.uid.as_raw(), identity.inside.gid.as_raw()),
        private_home: identity.private_home.then(|| identity.home.clone()),
    };
    layout.check_path(WORKING_DIRECTORY, &layout.cwd)?;
    for dir in &layout.binds {
        layout.check_path("--bind", dir)?;
    }
    for dir in &layout.ro_binds {
        layout.check_path("--ro-bind", dir)?;
    }
    Ok(layout)
}

/// Opens the sandbox's network namespace, which the daemon keeps bound at `path` in its mount
/// namespace: here, or, when this process runs in another mount namespace (where the bind
/// mount is not), through the daemon's view of the filesystem, `/proc/<daemon pid>/root`.
fn open_netns(path: &Path, daemon_pid: Option<u32>) -> Result<std::fs::File, RunError> {
    let err = |source| RunError::Netns {
        path: path.to_path_buf(),
        source,
    };
    match netns::open(path) {
        Ok(file) => Ok(file),
        Err(here) => {
            let Some(pid) = daemon_pid else {
                return Err(err(here));
            };
            let mut theirs = PathBuf::from(format!("/proc/{pid}/root"));
            theirs.push(path.strip_prefix("/").unwrap_or(path));
            netns::open(&theirs).map_err(|_| err(here))
        }
    }
}

/// The kernel setting that keeps unprivileged users from creating user namespaces, if one
/// does (a limit of zero, Debian's switch, or AppArmor's restriction without a profile).
fn user_namespaces_forbidden() -> Option<String> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|v| v.trim().to_owned())
    };
    [
        ("/proc/sys/user/max_user_namespaces", "0"),
        ("/proc/sys/kernel/unprivileged_userns_clone", "0"),
        (
            "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            "1",
        ),
    ]
    .into_iter()
    .find(|(path, forbidding)| read(path).as_deref() == Some(forbidding))
    .map(|(path, value)| {
        format!(
            "{} = {value}",
            path.trim_start_matches("/proc/sys/").replace('/', ".")
        )
    })
}

/// The first executable `name` on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
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

async fn run_in(
    sandbox: &Sandbox,
    daemon_pid: Option<u32>,
    plan: &Plan,
    command: &[String],
    env: &[Var],
) -> Result<ExitStatus, RunError> {
    let spawn_err = |source| RunError::Spawn {
        cmd: command.join(" "),
        source,
    };
    let netns = sandbox
        .netns
        .as_deref()
        .map(|path| open_netns(path, daemon_pid))
        .transpose()?;
    let setup = Setup::new(&sandbox.cgroup, netns, plan.identity.outside).map_err(spawn_err)?;
    let mut cmd = match &plan.layout {
        Some(layout) => {
            let mut cmd = Command::new("bwrap");
            cmd.args(layout.bwrap_args()).args(command);
            cmd
        }
        None => {
            let mut cmd = Command::new(&command[0]);
            cmd.args(&command[1..]);
            cmd
        }
    };
    cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    // SAFETY: `Setup::apply` makes only async-signal-safe calls on data prepared before the
    // fork.
    unsafe {
        cmd.pre_exec(move || setup.apply());
    }
    let mut child = cmd.spawn().map_err(spawn_err)?;
    let pid = child.id();
    let mut term = signal(SignalKind::terminate()).map_err(spawn_err)?;
    let mut hup = signal(SignalKind::hangup()).map_err(spawn_err)?;
    // CMD is in a session of its own, so the terminal's ^C reaches veil only: pass it on.
    let mut int = signal(SignalKind::interrupt()).map_err(spawn_err)?;
    loop {
        let forward = tokio::select! {
            status = child.wait() => return status.map_err(spawn_err),
            _ = term.recv() => Signal::SIGTERM,
            _ = hup.recv() => Signal::SIGHUP,
            _ = int.recv() => Signal::SIGINT,
        };
        if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
            // `pid` is CMD's and not reaped yet (wait() has not returned), so it names no other
            // process; a failure means CMD is exiting, which wait() reports.
            let _ = kill(Pid::from_raw(pid), forward);
        }
    }
}
