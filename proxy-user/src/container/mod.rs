//! Containers as sandboxes: veil's OCI runtime hook, the Docker runtime wrapper, the hook
//! files it installs, and attaching a running container.
//!
//! - [`hook`]: `veil oci-hook`, run by the container runtime with the container's state on
//!   standard input. At `createRuntime` (or `prestart`) it checks the container can be
//!   confined (a network namespace of its own, none of the capabilities that get around the
//!   kernel hooks), then asks the daemon to steer its cgroup and open veil's listeners in its
//!   namespace, before the container's first instruction; at `poststop` it removes the
//!   sandbox. Any failure exits non-zero, so the runtime does not start the container.
//! - [`wrapper`]: `veil oci-runtime`, Docker's runtime: adds the hook to every bundle it
//!   creates and drops `CAP_NET_RAW` (Docker grants it by default), then runs runc.
//! - [`install`]: `veil hooks install`: the hooks.d file Podman and CRI-O read, and the
//!   wrapper script Docker's `daemon.json` names.
//! - [`inspect`]: `veil attach --container`: a running container's process, name and image,
//!   from `podman inspect` or `docker inspect`.
//! - [`procfs`]: a process's cgroup v2 directory, network namespace and capabilities.
//! - [`metadata`]: the runtime, name and image of a container a hook runs for.

pub mod hook;
pub mod inspect;
pub mod install;
pub mod metadata;
pub mod procfs;
pub mod wrapper;

use std::{io, path::PathBuf};

use veil_core::oci::{SpecError, StateError};

use crate::{api::client::ClientError, cgroup::CgroupError};

/// Why a container could not be made (or stop being) a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The state on standard input was refused.
    #[error(transparent)]
    State(#[from] StateError),
    /// The bundle's `config.json` was refused.
    #[error("{path}: {source}")]
    Spec {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        source: SpecError,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The container shares the host's network namespace.
    #[error(
        "container {0} uses the host's network namespace: veil can only confine a container \
         with a network namespace of its own (drop --network host)"
    )]
    HostNetwork(String),
    /// The container holds capabilities that get around veil.
    #[error(
        "container {id} holds {list}: a sandboxed container must not ({why}); drop them \
         (--cap-drop) or do not run it privileged"
    )]
    Capabilities {
        /// The container.
        id: String,
        /// The capabilities, comma-separated.
        list: String,
        /// Why each is refused.
        why: String,
    },
    /// The container's process is not in a cgroup veil can steer on its own.
    #[error(
        "container {id}'s process {pid} is in the root cgroup v2 (its runtime made no cgroup \
         for it): veil would steer the whole host"
    )]
    RootCgroup {
        /// The container.
        id: String,
        /// Its process.
        pid: u32,
    },
    /// `/proc/PID/cgroup` has no cgroup v2 line.
    #[error("process {0} has no cgroup v2 entry in /proc/{0}/cgroup")]
    NoCgroup2(u32),
    /// A cgroup failure.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// The daemon refused or could not be reached.
    #[error("veil's daemon: {0}")]
    Daemon(#[from] ClientError),
    /// The daemon is not running.
    #[error(
        "veil's daemon is not running (nothing answers at {0}): start it with `veil serve`; \
         until then nothing can be confined, and containers with veil's hook do not start"
    )]
    NoDaemon(String),
    /// The hook ran at a stage it does not handle.
    #[error("the hook ran for container status {0:?}: install it for createRuntime (or prestart) and poststop")]
    Stage(String),
    /// A runtime command failed.
    #[error("{command}: {message}")]
    Runtime {
        /// The command.
        command: String,
        /// What went wrong.
        message: String,
    },
    /// No container by that name or id.
    #[error("no running container {0:?} in {1}")]
    NotFound(String, String),
}
