//! Real container runtimes for the container tests: a root filesystem made from the host's
//! `/usr` (no registry is reachable), Podman with veil's hooks.d file, and a private Docker
//! daemon with veil's runtime wrapper. Everything is made under the test's instance directory
//! and removed when dropped, also when the test fails.

use std::{
    fs,
    os::unix::fs::{symlink, PermissionsExt},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::Instance;

/// Limits the runtimes' defaults exceed on this machine (the open-files hard limit is lower
/// than their default).
pub const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=4096:4096",
];

/// A root filesystem: an empty `/usr` to mount the host's on (read-only), the merged-usr
/// links, and the host's users.
pub fn rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for sub in [
        "usr", "etc", "tmp", "proc", "sys", "dev", "root", "run", "var/tmp", "work",
    ] {
        fs::create_dir_all(root.join(sub)).expect("rootfs dirs");
    }
    for link in ["bin", "lib", "lib64", "sbin"] {
        let _ = symlink(format!("usr/{link}"), root.join(link));
    }
    for file in ["passwd", "group"] {
        fs::copy(Path::new("/etc").join(file), root.join("etc").join(file)).expect("users");
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod");
    root
}

/// The mounts and environment every sandboxed container gets: the host's `/usr`, veil's
/// public directory at `/etc/veil`, the profile script, and `veil env --format env-file`.
pub fn sandbox_args(veil: &Instance) -> Vec<String> {
    let public = veil.ca_bundle().parent().expect("public dir").to_path_buf();
    let env_file = veil.dir().join("container.env");
    let out = veil.run_veil(&["env", "--format", "env-file"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::write(&env_file, &out.stdout).expect("env file");
    vec![
        "-v".into(),
        "/usr:/usr:ro".into(),
        "-v".into(),
        format!("{}:/etc/veil:ro", public.display()),
        "-v".into(),
        format!(
            "{}:/etc/profile.d/veil-secrets.sh:ro",
            public.join("profile.d/veil-secrets.sh").display()
        ),
        "--env-file".into(),
        env_file.display().to_string(),
    ]
}

/// Podman, with runc (crun refuses this kernel's hybrid cgroup layout) and veil's hooks.d
/// file in a directory of the test's own.
pub struct Podman {
    hooks_dir: PathBuf,
    names: Vec<String>,
}

impl Podman {
    /// Installs veil's hook for `veil` into the instance directory.
    pub fn new(veil: &Instance) -> Self {
        let hooks_dir = veil.dir().join("hooks.d");
        let wrapper_dir = veil.dir().join("libexec");
        let out = veil.run_veil(&[
            "hooks",
            "install",
            "--hooks-dir",
            hooks_dir.to_str().expect("utf-8"),
            "--wrapper-dir",
            wrapper_dir.to_str().expect("utf-8"),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            hooks_dir,
            names: Vec::new(),
        }
    }

    /// `podman` with veil's hooks directory and runc.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.arg("--hooks-dir")
            .arg(&self.hooks_dir)
            .args(["--runtime", "runc"]);
        cmd
    }

    /// `podman run --rm --name NAME [args] --rootfs ROOT CMD...`, removed at drop.
    pub fn run(&mut self, name: &str, args: &[String], root: &Path, cmd: &[&str]) -> Output {
        self.podman_run("--rm", name, args, root, cmd)
    }

    /// Like [`Podman::run`], detached (`-d`): the container keeps running.
    pub fn start(&mut self, name: &str, args: &[String], root: &Path, cmd: &[&str]) -> Output {
        self.podman_run("-d", name, args, root, cmd)
    }

    fn podman_run(
        &mut self,
        mode: &str,
        name: &str,
        args: &[String],
        root: &Path,
        cmd: &[&str],
    ) -> Output {
        self.names.push(name.to_owned());
        self.command()
            .args(["run", mode, "--name", name])
            .args(ULIMITS)
            .args(args)
            .arg("--rootfs")
            .arg(root)
            .args(cmd)
            .output()
            .expect("podman runs")
    }

    /// `podman exec NAME CMD...`.
    pub fn exec(&self, name: &str, cmd: &[&str]) -> Output {
        self.command()
            .args(["exec", name])
            .args(cmd)
            .output()
            .expect("podman exec runs")
    }

    /// Stops and removes container `name`.
    pub fn remove(&self, name: &str) {
        let _ = self
            .command()
            .args(["rm", "-f", "-t", "0", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for name in &self.names {
            self.remove(name);
        }
    }
}

/// A Docker daemon of the test's own (data, exec root and socket in the instance directory,
/// no bridge, no iptables), with veil's wrapper as the runtime `veil`.
pub struct Docker {
    dir: PathBuf,
    child: Child,
}

impl Docker {
    /// Starts dockerd and imports `root` as the image `veil-test-root`.
    pub fn start(veil: &Instance, root: &Path) -> Self {
        let dir = veil.dir().join("docker");
        fs::create_dir_all(&dir).expect("docker dir");
        let wrapper_dir = veil.dir().join("libexec");
        let out = veil.run_veil(&[
            "hooks",
            "install",
            "--hooks-dir",
            veil.dir().join("hooks.d").to_str().expect("utf-8"),
            "--wrapper-dir",
            wrapper_dir.to_str().expect("utf-8"),
            "--docker-root",
            dir.join("data").to_str().expect("utf-8"),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = fs::File::create(dir.join("dockerd.log")).expect("log");
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .args(["--bridge", "none", "--iptables=false", "--ip6tables=false"])
            .arg("--add-runtime")
            .arg(format!("veil={}", wrapper_dir.join("veil-runc").display()))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("dockerd starts");
        let docker = Self { dir, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !docker
            .command()
            .arg("info")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            assert!(
                Instant::now() < deadline,
                "dockerd did not start: {}",
                docker.log()
            );
            thread::sleep(Duration::from_millis(200));
        }
        let tarball = docker.dir.join("rootfs.tar");
        let tar = Command::new("tar")
            .arg("-C")
            .arg(root)
            .arg("-cf")
            .arg(&tarball)
            .arg(".")
            .status()
            .expect("tar");
        assert!(tar.success(), "tar of the root filesystem failed");
        let import = docker
            .command()
            .arg("import")
            .arg(&tarball)
            .arg("veil-test-root:latest")
            .output()
            .expect("docker import");
        assert!(
            import.status.success(),
            "{}",
            String::from_utf8_lossy(&import.stderr)
        );
        docker
    }

    /// The docker client, talking to this daemon.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env(
            "DOCKER_HOST",
            format!("unix://{}", self.dir.join("docker.sock").display()),
        );
        cmd
    }

    /// What dockerd logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        if let Ok(out) = self.command().args(["ps", "-aq"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = self.command().args(["rm", "-f", id]).output();
            }
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.join("exec"))
            .output();
        let _ = fs::remove_dir_all(self.dir.join("data"));
    }
}
