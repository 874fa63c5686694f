//! `veil oci-runtime`: the runtime Docker runs (Docker reads no hooks.d files). For a
//! `create` or `run` it adds `veil oci-hook` to the bundle's `config.json` at `createRuntime`
//! and `poststop`, drops `CAP_NET_RAW` (Docker grants it by default, and packet sockets get
//! around the socket hooks), and notes the container's Docker name and image in annotations;
//! then, for every command, it runs the real runtime with the same arguments. If the bundle
//! cannot be changed the container is not created.

use std::{
    ffi::OsString,
    fs,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::Command,
};

use veil_core::oci::{spec::Hook, Invocation, Spec};

use super::{metadata, ContainerError};
use crate::config::Paths;

/// Seconds the runtime gives veil's hook.
const HOOK_TIMEOUT: u32 = 30;

/// How the wrapper was set up (`veil hooks install` writes these into the wrapper script).
#[derive(Clone, Debug)]
pub struct Wrapper {
    /// The runtime to run after the bundle is prepared (runc).
    pub runtime: PathBuf,
    /// Docker's data root, where its per-container `config.v2.json` names the container.
    pub docker_root: PathBuf,
}

impl Wrapper {
    /// Prepares the bundle if `args` create a container, then replaces this process with the
    /// real runtime. Returns only on failure.
    pub fn run(&self, paths: &Paths, args: &[OsString]) -> ContainerError {
        let invocation = Invocation::parse(args);
        if invocation.creates() {
            let bundle = match &invocation.bundle {
                Some(bundle) => bundle.clone(),
                None => PathBuf::from("."),
            };
            if let Err(e) = self.prepare(paths, &bundle, invocation.id.as_deref()) {
                return e;
            }
        }
        let source = Command::new(&self.runtime).args(args).exec();
        ContainerError::Runtime {
            command: self.runtime.display().to_string(),
            message: source.to_string(),
        }
    }

    /// Adds veil's hooks to `bundle`'s `config.json` and takes `CAP_NET_RAW` out of it.
    fn prepare(
        &self,
        paths: &Paths,
        bundle: &Path,
        id: Option<&str>,
    ) -> Result<(), ContainerError> {
        let path = bundle.join("config.json");
        let io_err = |source| ContainerError::Io {
            path: path.clone(),
            source,
        };
        let spec_err = |source| ContainerError::Spec {
            path: path.clone(),
            source,
        };
        let bytes = fs::read(&path).map_err(io_err)?;
        let mut spec = Spec::parse(&bytes).map_err(spec_err)?;
        let hook = hook(paths).map_err(io_err)?;
        spec.add_hook("createRuntime", &hook).map_err(spec_err)?;
        spec.add_hook("poststop", &hook).map_err(spec_err)?;
        spec.drop_capability("CAP_NET_RAW").map_err(spec_err)?;
        spec.default_annotation(metadata::RUNTIME_ANNOTATION, "docker")
            .map_err(spec_err)?;
        if let Some(id) = id {
            let (name, image) = metadata::docker_names(&self.docker_root, id);
            if let Some(name) = name {
                spec.default_annotation(metadata::NAME_ANNOTATION, &name)
                    .map_err(spec_err)?;
            }
            if let Some(image) = image {
                spec.default_annotation(metadata::IMAGE_ANNOTATION, &image)
                    .map_err(spec_err)?;
            }
        }
        let mode = fs::metadata(&path).map_err(io_err)?.permissions().mode();
        let tmp = bundle.join("config.json.veil-tmp");
        fs::write(&tmp, spec.to_vec().map_err(spec_err)?).map_err(io_err)?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(io_err)?;
        fs::rename(&tmp, &path).map_err(io_err)
    }
}

/// The hook entry that runs this veil binary as `veil --run-dir DIR oci-hook`.
pub fn hook(paths: &Paths) -> std::io::Result<Hook> {
    let exe = std::env::current_exe()?;
    Ok(Hook {
        path: exe.display().to_string(),
        args: vec![
            "veil".into(),
            "--run-dir".into(),
            paths.run_dir.display().to_string(),
            "oci-hook".into(),
        ],
        timeout: Some(HOOK_TIMEOUT),
    })
}
