//! Podman containers for the benchmarks: a root filesystem made from the host's `/usr` (no
//! registry is reachable here), veil's hooks.d file in the bench's temporary directory, and
//! the mounts and environment that make a container a veil sandbox (`--annotation
//! veil.sandbox=NAME`, veil's public directory at `/etc/veil`, `veil env --format env-file`).
//! Every container started here is removed when the [`Podman`] is dropped, also on error.

use std::{
    cell::RefCell,
    fs,
    os::unix::fs::{symlink, PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};

use super::Bench;

/// Limits under this machine's hard limits: the runtimes' defaults exceed the open-files
/// hard limit, and runc then fails to start the container.
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=4096:4096",
];

/// The sandbox name containers get through the annotation.
pub const SANDBOX: &str = "bench-container";

/// Podman with runc (crun refuses this kernel's hybrid cgroup layout) and veil's hook.
pub struct Podman {
    hooks_dir: PathBuf,
    root: PathBuf,
    sandbox_args: Vec<String>,
    names: RefCell<Vec<String>>,
}

impl Podman {
    /// Installs veil's hook into `bench.tmp`, makes the root filesystem and the sandbox's
    /// environment file there (idempotent).
    pub fn new(bench: &Bench) -> Result<Self> {
        let dir = bench.tmp.join("podman");
        let hooks_dir = dir.join("hooks.d");
        let wrapper_dir = dir.join("libexec");
        let out = bench.veil.output(&[
            "hooks",
            "install",
            "--hooks-dir",
            hooks_dir
                .to_str()
                .context("the hooks directory is not UTF-8")?,
            "--wrapper-dir",
            wrapper_dir
                .to_str()
                .context("the wrapper directory is not UTF-8")?,
        ])?;
        if !out.status.success() {
            bail!(
                "veil hooks install failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let out = bench.veil.output(&["env", "--format", "env-file"])?;
        if !out.status.success() {
            bail!(
                "veil env --format env-file failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let env_file = dir.join("container.env");
        fs::write(&env_file, &out.stdout)?;
        let public = bench.veil.public_dir();
        let sandbox_args = vec![
            "--annotation".into(),
            format!("veil.sandbox={SANDBOX}"),
            "-v".into(),
            format!("{}:/etc/veil:ro", public.display()),
            "--env-file".into(),
            env_file.display().to_string(),
        ];
        Ok(Self {
            hooks_dir,
            root: rootfs(&dir)?,
            sandbox_args,
            names: RefCell::new(Vec::new()),
        })
    }

    /// `podman run --rm --name NAME ... --rootfs ROOT ARGS...` with the host's `/usr`
    /// mounted read-only, and veil's annotation, mounts and environment when `sandboxed`.
    /// The container is removed at drop if it is still there.
    pub fn run_command(&self, name: &str, sandboxed: bool, args: &[String]) -> Command {
        self.names.borrow_mut().push(name.to_string());
        let mut cmd = Command::new("podman");
        cmd.arg("--hooks-dir")
            .arg(&self.hooks_dir)
            .args(["--runtime", "runc", "run", "--rm", "--name", name])
            .args(ULIMITS)
            .args(["-v", "/usr:/usr:ro"]);
        if sandboxed {
            cmd.args(&self.sandbox_args);
        }
        cmd.arg("--rootfs").arg(&self.root).args(args);
        cmd
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for name in self.names.borrow().iter() {
            let _ = Command::new("podman")
                .arg("--hooks-dir")
                .arg(&self.hooks_dir)
                .args(["--runtime", "runc", "rm", "-f", "-t", "0", "--ignore", name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A root filesystem in `dir`: an empty `/usr` to mount the host's on, the merged-usr links,
/// and the host's users.
fn rootfs(dir: &Path) -> Result<PathBuf> {
    let root = dir.join("rootfs");
    for sub in [
        "usr", "etc", "tmp", "proc", "sys", "dev", "root", "run", "var/tmp",
    ] {
        fs::create_dir_all(root.join(sub))
            .with_context(|| format!("creating {}", root.join(sub).display()))?;
    }
    for link in ["bin", "lib", "lib64", "sbin"] {
        let path = root.join(link);
        if fs::symlink_metadata(&path).is_err() {
            symlink(format!("usr/{link}"), &path)?;
        }
    }
    for file in ["passwd", "group"] {
        fs::copy(Path::new("/etc").join(file), root.join("etc").join(file))
            .with_context(|| format!("copying /etc/{file} into the root filesystem"))?;
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    Ok(root)
}
