//! A running container, found through its runtime's command line (`podman inspect`,
//! `docker inspect`): its process, id, name and image, for `veil attach --container`.

use std::process::Command;

use serde::Deserialize;

use super::ContainerError;
use crate::audit::Container;

/// The runtimes `veil attach --container` asks, in order.
pub const RUNTIMES: [&str; 2] = ["podman", "docker"];

/// A running container.
#[derive(Debug, Clone)]
pub struct Running {
    /// Who it is.
    pub container: Container,
    /// Its init process, on the host.
    pub pid: u32,
}

#[derive(Deserialize)]
struct Inspected {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "State")]
    state: InspectedState,
    #[serde(rename = "ImageName", default)]
    image_name: Option<String>,
    #[serde(rename = "Config", default)]
    config: Option<InspectedConfig>,
}

#[derive(Deserialize)]
struct InspectedState {
    #[serde(rename = "Pid", default)]
    pid: u32,
    #[serde(rename = "Running", default)]
    running: bool,
}

#[derive(Deserialize)]
struct InspectedConfig {
    #[serde(rename = "Image", default)]
    image: Option<String>,
}

/// Finds the running container `reference` (a name or id) with `runtime`, or with each of
/// [`RUNTIMES`] in turn when `None`.
pub fn find(reference: &str, runtime: Option<&str>) -> Result<Running, ContainerError> {
    let runtimes: Vec<&str> = match runtime {
        Some(r) => vec![r],
        None => RUNTIMES.to_vec(),
    };
    let mut tried = Vec::new();
    for runtime in &runtimes {
        match inspect(runtime, reference) {
            Ok(Some(found)) => return Ok(found),
            Ok(None) => tried.push(format!("{runtime} has no running container {reference:?}")),
            Err(e) => tried.push(e.to_string()),
        }
    }
    Err(ContainerError::NotFound(
        reference.to_owned(),
        tried.join("; "),
    ))
}

fn inspect(runtime: &str, reference: &str) -> Result<Option<Running>, ContainerError> {
    let command = format!("{runtime} inspect --type container {reference}");
    let output = Command::new(runtime)
        .args(["inspect", "--type", "container", "--", reference])
        .output()
        .map_err(|e| ContainerError::Runtime {
            command: command.clone(),
            message: e.to_string(),
        })?;
    if !output.status.success() {
        return Ok(None);
    }
    let list: Vec<Inspected> =
        serde_json::from_slice(&output.stdout).map_err(|e| ContainerError::Runtime {
            command: command.clone(),
            message: format!("unexpected output: {e}"),
        })?;
    let Some(found) = list.into_iter().next() else {
        return Ok(None);
    };
    if !found.state.running || found.state.pid == 0 {
        return Ok(None);
    }
    let image = found
        .image_name
        .or_else(|| found.config.and_then(|c| c.image))
        .filter(|i| !i.is_empty());
    let name = found.name.trim_start_matches('/').to_owned();
    Ok(Some(Running {
        container: Container {
            runtime: runtime.to_owned(),
            id: found.id,
            name: (!name.is_empty()).then_some(name),
            image,
        },
        pid: found.state.pid,
    }))
}
