//! `veil attach`, `veil detach`, `veil oci-hook`, `veil hooks` and `veil oci-runtime`: the
//! command line of steering existing cgroups and containers.

use std::{fs, io::Read, path::PathBuf};

use veil_core::oci::{forbidden_in_mask, state::MAX_STATE};

use crate::{
    cli::{AttachArgs, DetachArgs, HooksArgs, HooksCommand, OciRuntimeArgs},
    config::Paths,
    container::{
        hook::{self, check_capabilities, Done},
        inspect,
        install::{self, Targets},
        procfs,
        wrapper::Wrapper,
        ContainerError,
    },
    sandbox::Sandbox,
    steering::SettingsOverride,
};

/// Errors of these commands.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// A container step failed.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The cgroup path is unusable.
    #[error("cgroup directory {path}: {source}")]
    Cgroup {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The cgroup path has no name to use.
    #[error("the cgroup path has no final component to name the sandbox by; pass --name")]
    NoName,
    /// Nothing attached matches.
    #[error("{0} is not attached to veil (see `veil attach` and `veil status`)")]
    NotAttached(String),
    /// Reading standard input failed.
    #[error("reading the container state from standard input: {0}")]
    Stdin(std::io::Error),
}

/// `veil attach`: a cgroup (optionally in a network namespace) or a running container.
pub async fn attach(paths: &Paths, args: AttachArgs) -> Result<Sandbox, AttachError> {
    let settings = SettingsOverride::from(args.settings);
    let client = hook::connect(paths).await?;
    if let Some(reference) = &args.container {
        let running = inspect::find(reference, args.runtime.as_deref())?;
        check_capabilities(
            &running.container.id,
            &forbidden_in_mask(procfs::bounding_set(running.pid)?),
        )?;
        let cgroup = procfs::cgroup_dir(&running.container.id, running.pid)?;
        let name = args.name.unwrap_or_else(|| {
            veil_core::oci::sandbox_name(
                None,
                running.container.name.as_deref(),
                &running.container.id,
            )
        });
        let netns = procfs::netns(running.pid);
        return Ok(client
            .attach(
                &name,
                &cgroup,
                &settings,
                Some(&netns),
                Some(&running.container),
            )
            .await
            .map_err(ContainerError::from)?);
    }
    // clap requires the cgroup when no container is given.
    let given = args.cgroup.unwrap_or_default();
    let dir = fs::canonicalize(&given).map_err(|source| AttachError::Cgroup {
        path: given.clone(),
        source,
    })?;
    let name = match args.name {
        Some(name) => name,
        None => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or(AttachError::NoName)?,
    };
    Ok(client
        .attach(&name, &dir, &settings, args.netns.as_deref(), None)
        .await
        .map_err(ContainerError::from)?)
}

/// `veil detach`: stops steering an attached cgroup or container.
pub async fn detach(paths: &Paths, args: DetachArgs) -> Result<Sandbox, AttachError> {
    let client = hook::connect(paths).await?;
    let sandboxes = client.sandboxes().await.map_err(ContainerError::from)?;
    let (found, what) = match &args.container {
        Some(reference) => (
            sandboxes.into_iter().find(|s| {
                s.container.as_ref().is_some_and(|c| {
                    c.name.as_deref() == Some(reference.as_str())
                        || (reference.len() >= 4 && c.id.starts_with(reference.as_str()))
                })
            }),
            format!("container {reference}"),
        ),
        None => {
            // clap requires the cgroup when no container is given.
            let given = args.cgroup.unwrap_or_default();
            let dir = fs::canonicalize(&given).unwrap_or(given);
            let what = dir.display().to_string();
            (
                sandboxes
                    .into_iter()
                    .find(|s| s.cgroup == dir && !s.managed),
                what,
            )
        }
    };
    let sandbox = found.ok_or(AttachError::NotAttached(what))?;
    Ok(client
        .remove_sandbox(&sandbox.name)
        .await
        .map_err(ContainerError::from)?)
}

/// `veil oci-hook`: reads the state from standard input and runs the hook.
pub async fn oci_hook(paths: &Paths) -> Result<Done, AttachError> {
    let mut input = Vec::new();
    std::io::stdin()
        .take(MAX_STATE as u64 + 1)
        .read_to_end(&mut input)
        .map_err(AttachError::Stdin)?;
    Ok(hook::run(paths, &input).await?)
}

/// `veil hooks install|uninstall`.
pub fn hooks(paths: &Paths, command: HooksCommand) -> Result<String, AttachError> {
    match command {
        HooksCommand::Install(args) => {
            let installed = install::install(paths, &targets(args))?;
            Ok(format!(
                "wrote {hook} (Podman and CRI-O run veil's hook for containers with the \
                 veil.sandbox annotation)\nwrote {wrapper} (Docker: add \
                 {{\"runtimes\": {{\"veil\": {{\"path\": \"{wrapper}\"}}}}}} to \
                 /etc/docker/daemon.json, restart dockerd, and run containers with --runtime veil)",
                hook = installed.hook_file.display(),
                wrapper = installed.wrapper.display(),
            ))
        }
        HooksCommand::Uninstall(args) => {
            let removed = install::uninstall(&targets(args))?;
            Ok(if removed.is_empty() {
                "nothing to remove".to_owned()
            } else {
                removed
                    .iter()
                    .map(|p| format!("removed {}", p.display()))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
    }
}

/// `veil oci-runtime`: returns only on failure.
pub fn oci_runtime(paths: &Paths, args: OciRuntimeArgs) -> ContainerError {
    Wrapper {
        runtime: args.runtime,
        docker_root: args.docker_root,
    }
    .run(paths, &args.args)
}

fn targets(args: HooksArgs) -> Targets {
    Targets {
        hooks_dir: args.hooks_dir,
        wrapper_dir: args.wrapper_dir,
        runtime: args.runtime,
        docker_root: args.docker_root,
    }
}
