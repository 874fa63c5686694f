//! `veil oci-hook`: the OCI runtime hook. The runtime runs it with the container's state on
//! standard input; a non-zero exit fails the container's creation (fail closed).
//!
//! At `createRuntime` (or `prestart`, status `creating`) the container's namespaces exist and
//! its process waits for the runtime's start: nothing of the workload has run. The hook
//! checks the bundle (own network namespace, no capability that gets around veil), finds the
//! process's cgroup v2 directory, and has the daemon steer that cgroup and open its listeners
//! in the process's network namespace. It returns only when that is done, so the workload's
//! first connect already goes through veil. At `poststop` (status `stopped`) it removes the
//! sandbox the container was.

use std::{fs, path::Path};

use veil_core::oci::{sandbox_name, Network, Spec, State, SANDBOX_ANNOTATION};

use super::{metadata, procfs, ContainerError};
use crate::{
    api::client::{ApiClient, ClientError},
    config::Paths,
    sandbox::Sandbox,
    steering::SettingsOverride,
};

/// What the hook did.
#[derive(Debug)]
pub enum Done {
    /// The container is sandbox `0`.
    Attached(Sandbox),
    /// The container's sandbox was removed.
    Removed(Sandbox),
    /// The container was no sandbox (nothing to remove).
    NotASandbox,
}

/// Runs the hook for the state document `input`.
pub async fn run(paths: &Paths, input: &[u8]) -> Result<Done, ContainerError> {
    let state = State::parse(input)?;
    match state.status.as_str() {
        "creating" | "created" => attach(paths, &state).await.map(Done::Attached),
        "stopped" => remove(paths, &state.id).await,
        other => Err(ContainerError::Stage(other.to_owned())),
    }
}

async fn attach(paths: &Paths, state: &State) -> Result<Sandbox, ContainerError> {
    let pid = state.require_pid()?;
    let spec = read_spec(&state.config_path())?;
    let spec_err = |source| ContainerError::Spec {
        path: state.config_path(),
        source,
    };
    if spec.network().map_err(spec_err)? == Network::Host {
        return Err(ContainerError::HostNetwork(state.id.clone()));
    }
    let forbidden = spec.forbidden_capabilities().map_err(spec_err)?;
    check_capabilities(&state.id, &forbidden)?;
    let cgroup = procfs::cgroup_dir(&state.id, pid)?;
    let container = metadata::describe(&state.id, &state.bundle, &state.annotations);
    let name = sandbox_name(
        state
            .annotations
            .get(SANDBOX_ANNOTATION)
            .map(String::as_str),
        container.name.as_deref(),
        &state.id,
    );
    let client = connect(paths).await?;
    Ok(client
        .attach(
            &name,
            &cgroup,
            &SettingsOverride::default(),
            Some(&procfs::netns(pid)),
            Some(&container),
        )
        .await?)
}

/// Refuses a container holding any of `forbidden`.
pub fn check_capabilities(
    id: &str,
    forbidden: &[(&'static str, &'static str)],
) -> Result<(), ContainerError> {
    if forbidden.is_empty() {
        return Ok(());
    }
    Err(ContainerError::Capabilities {
        id: id.to_owned(),
        list: forbidden.iter().map(|c| c.0).collect::<Vec<_>>().join(", "),
        why: forbidden
            .iter()
            .map(|(cap, why)| format!("{cap}: {why}"))
            .collect::<Vec<_>>()
            .join("; "),
    })
}

async fn remove(paths: &Paths, id: &str) -> Result<Done, ContainerError> {
    let client = connect(paths).await?;
    let sandboxes = client.sandboxes().await?;
    let Some(sandbox) = sandboxes
        .into_iter()
        .find(|s| s.container.as_ref().is_some_and(|c| c.id == id))
    else {
        return Ok(Done::NotASandbox);
    };
    Ok(Done::Removed(client.remove_sandbox(&sandbox.name).await?))
}

/// The daemon's client; a daemon that is not running is an error of its own, so the
/// runtime's message says what to do.
pub async fn connect(paths: &Paths) -> Result<ApiClient, ContainerError> {
    let socket = paths.socket();
    match ApiClient::connect(&socket).await {
        Ok(client) => Ok(client),
        Err(ClientError::Connect { .. }) => {
            Err(ContainerError::NoDaemon(socket.display().to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

fn read_spec(path: &Path) -> Result<Spec, ContainerError> {
    let bytes = fs::read(path).map_err(|source| ContainerError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Spec::parse(&bytes).map_err(|source| ContainerError::Spec {
        path: path.to_path_buf(),
        source,
    })
}
