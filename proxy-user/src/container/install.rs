//! `veil hooks install` and `uninstall`: the files container runtimes read to run veil.
//!
//! - Podman and CRI-O: a hooks.d file (`veil.json`) that runs `veil oci-hook` at
//!   `createRuntime` and `poststop` for every container with the `veil.sandbox` annotation.
//! - Docker: a wrapper script (`veil-runc`) that runs `veil oci-runtime` around runc; Docker's
//!   `daemon.json` names it as a runtime (`"runtimes": {"veil": {"path": ...}}`) and
//!   `docker run --runtime veil` makes a container a sandbox.
//!
//! Both carry this installation's run directory, so the hook finds this daemon.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use serde_json::json;
use veil_core::oci::SANDBOX_ANNOTATION;

use super::{wrapper, ContainerError};
use crate::config::Paths;

/// Where Podman and CRI-O look for hooks.d files by default.
pub const DEFAULT_HOOKS_DIR: &str = "/usr/share/containers/oci/hooks.d";

/// The hooks.d file's name.
const HOOK_FILE: &str = "veil.json";

/// The Docker wrapper script's name.
const WRAPPER_FILE: &str = "veil-runc";

/// What `install` wrote.
#[derive(Debug)]
pub struct Installed {
    /// The hooks.d file.
    pub hook_file: PathBuf,
    /// The Docker wrapper script.
    pub wrapper: PathBuf,
}

/// Where to install and what the wrapper runs.
#[derive(Debug, Clone)]
pub struct Targets {
    /// The hooks.d directory.
    pub hooks_dir: PathBuf,
    /// The directory for the Docker wrapper script.
    pub wrapper_dir: PathBuf,
    /// The runtime the wrapper runs (runc).
    pub runtime: PathBuf,
    /// Docker's data root.
    pub docker_root: PathBuf,
}

/// Writes the hooks.d file and the Docker wrapper script.
pub fn install(paths: &Paths, targets: &Targets) -> Result<Installed, ContainerError> {
    let hook = wrapper::hook(paths).map_err(|source| ContainerError::Io {
        path: PathBuf::from("/proc/self/exe"),
        source,
    })?;
    let doc = json!({
        "version": "1.0.0",
        "hook": { "path": hook.path, "args": hook.args, "timeout": hook.timeout },
        "when": { "annotations": { format!("^{}$", SANDBOX_ANNOTATION.replace('.', "\\.")): ".*" } },
        "stages": ["createRuntime", "poststop"],
    });
    let hook_file = targets.hooks_dir.join(HOOK_FILE);
    // Serializing a JSON value built above cannot fail.
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
    write(&hook_file, &text, 0o644)?;
    let script = format!(
        "#!/bin/sh\n\
         # Docker's runtime for veil sandboxes, written by `veil hooks install`: adds veil's\n\
         # OCI hook to each container's bundle, then runs {runtime}.\n\
         exec {veil} --run-dir {run_dir} oci-runtime --runtime {runtime} --docker-root {docker_root} -- \"$@\"\n",
        veil = quote(&hook.path),
        run_dir = quote(&paths.run_dir.display().to_string()),
        runtime = quote(&targets.runtime.display().to_string()),
        docker_root = quote(&targets.docker_root.display().to_string()),
    );
    let wrapper = targets.wrapper_dir.join(WRAPPER_FILE);
    write(&wrapper, &script, 0o755)?;
    Ok(Installed { hook_file, wrapper })
}

/// Removes what [`install`] wrote; returns the files that were there.
pub fn uninstall(targets: &Targets) -> Result<Vec<PathBuf>, ContainerError> {
    let mut removed = Vec::new();
    for path in [
        targets.hooks_dir.join(HOOK_FILE),
        targets.wrapper_dir.join(WRAPPER_FILE),
    ] {
        match fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ContainerError::Io { path, source }),
        }
    }
    Ok(removed)
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), ContainerError> {
    let io_err = |source| ContainerError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err)?;
    }
    let tmp = path.with_extension("veil-tmp");
    fs::write(&tmp, text).map_err(io_err)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(io_err)?;
    fs::rename(&tmp, path).map_err(io_err)
}

/// `value` in single quotes for sh.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_for_sh() {
        assert_eq!(quote("/usr/bin/veil"), "'/usr/bin/veil'");
        assert_eq!(quote("it's"), "'it'\\''s'");
    }
}
