//! The bubblewrap command line that isolates a sandboxed command: pure, from a [`Layout`].
//!
//! The command gets its own user, mount, PID, IPC, UTS and cgroup namespaces (its network
//! namespace veil made already) and a new session without the caller's terminal; it cannot
//! create user namespaces of its own, so it cannot gain the capabilities to leave any of them.
//! The host's filesystem is visible read-only, with a private `/tmp`, `/run`, `/home` and
//! `/root`, the working directory writable, and veil's own directories (state, run, bpffs)
//! hidden; the directory sandboxes read (CA bundle, secrets profile) is visible again, and
//! the secrets profile is also at [`PROFILE_D`].

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

/// Where a sandboxed login shell finds the secrets profile, as the reference describes.
pub const PROFILE_D: &str = "/etc/profile.d/veil-secrets.sh";

/// Errors in the directories `veil run` is asked to expose.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// A `--bind` or `--ro-bind` path that cannot be used.
    #[error("{flag} {path}")]
    Missing {
        /// `--bind` or `--ro-bind`.
        flag: &'static str,
        /// The path as given.
        path: PathBuf,
        /// Why it cannot be used.
        source: std::io::Error,
    },
    /// A path inside one of veil's hidden directories (or the root itself for `--bind`).
    #[error(
        "{what} {path} would expose {hidden}, which a sandbox must not see; run from (or bind) \
         another directory"
    )]
    Hidden {
        /// What asked for it.
        what: &'static str,
        /// The resolved path.
        path: PathBuf,
        /// The hidden directory it is in.
        hidden: PathBuf,
    },
}

/// What a sandbox's filesystem looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The working directory: writable, and where the command starts.
    pub cwd: PathBuf,
    /// Directories hidden under an empty tmpfs (veil's state and run directories, bpffs).
    pub hidden: Vec<PathBuf>,
    /// The directory holding what sandboxes read, visible read-only.
    pub public_dir: PathBuf,
    /// The secrets profile, linked at [`PROFILE_D`].
    pub profile: PathBuf,
    /// Entries of the host's `/etc/profile.d` (kept beside the secrets profile), or `None`
    /// when the host has no such directory.
    pub profile_d: Option<Vec<PathBuf>>,
    /// Files under `/run` or `/tmp` that must stay visible (the target of `/etc/resolv.conf`).
    pub keep: Vec<PathBuf>,
    /// `--bind` directories (writable).
    pub binds: Vec<PathBuf>,
    /// `--ro-bind` directories.
    pub ro_binds: Vec<PathBuf>,
    /// The command's uid and gid inside.
    pub ids: (u32, u32),
    /// The command's home: made, empty and writable, when it lies in a private directory.
    pub private_home: Option<PathBuf>,
}

/// How [`Layout::check_path`] names the working directory.
pub const WORKING_DIRECTORY: &str = "working directory";

/// Directories hidden from every sandbox whatever the installation: the host's bpffs.
const ALWAYS_HIDDEN: [&str; 1] = ["/sys/fs/bpf"];

/// Directories every sandbox gets private and empty (those the host has): scratch space,
/// runtime sockets, and the homes, where users keep their SSH keys and cloud credentials.
const PRIVATE: [&str; 4] = ["/tmp", "/run", "/home", "/root"];

impl Layout {
    /// Checks that mounting `path` (a `--bind`/`--ro-bind` directory or the working
    /// directory, resolved) uncovers no hidden directory: it is neither in one nor above one.
    /// The root as working directory is fine: it is never mounted again.
    pub fn check_path(&self, what: &'static str, path: &Path) -> Result<(), LayoutError> {
        if what == WORKING_DIRECTORY && path == Path::new("/") {
            return Ok(());
        }
        let hidden = self
            .hidden
            .iter()
            .map(PathBuf::as_path)
            .chain(ALWAYS_HIDDEN.iter().map(Path::new));
        for hidden in hidden {
            if path.starts_with(hidden) || hidden.starts_with(path) {
                return Err(LayoutError::Hidden {
                    what,
                    path: path.to_path_buf(),
                    hidden: hidden.to_path_buf(),
                });
            }
        }
        Ok(())
    }

    /// bubblewrap's arguments up to and including `--`; the command follows.
    pub fn bwrap_args(&self) -> Vec<OsString> {
        let mut args = Args::default();
        args.flags(&[
            "--unshare-user",
            "--disable-userns",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-uts",
            "--unshare-cgroup",
            "--die-with-parent",
            "--new-session",
        ]);
        args.pair("--uid", self.ids.0.to_string());
        args.pair("--gid", self.ids.1.to_string());
        args.mount("--ro-bind", "/", "/");
        args.pair("--dev", "/dev");
        args.pair("--proc", "/proc");
        for dir in PRIVATE.into_iter().filter(|dir| Path::new(dir).exists()) {
            args.pair("--tmpfs", dir);
        }
        for dir in ALWAYS_HIDDEN
            .into_iter()
            .filter(|dir| Path::new(dir).exists())
        {
            args.pair("--tmpfs", dir);
        }
        let covered = |p: &Path| {
            PRIVATE
                .iter()
                .chain(ALWAYS_HIDDEN.iter())
                .any(|dir| p.starts_with(dir))
        };
        for dir in &self.hidden {
            if !covered(dir) && dir.exists() {
                args.pair("--tmpfs", dir);
            }
        }
        if let Some(home) = self.private_home.as_deref().filter(|home| {
            PRIVATE
                .iter()
                .any(|dir| home.starts_with(dir) && *home != Path::new(dir))
        }) {
            args.pair("--dir", home);
        }
        args.mount("--ro-bind", &self.public_dir, &self.public_dir);
        for kept in &self.keep {
            args.mount("--ro-bind", kept, kept);
        }
        if let Some(entries) = &self.profile_d {
            args.pair("--tmpfs", "/etc/profile.d");
            for entry in entries {
                args.mount("--ro-bind", entry, entry);
            }
            args.mount("--symlink", &self.profile, PROFILE_D);
        }
        for dir in &self.ro_binds {
            args.mount("--ro-bind", dir, dir);
        }
        if self.cwd != Path::new("/") {
            args.mount("--bind", &self.cwd, &self.cwd);
        }
        for dir in &self.binds {
            args.mount("--bind", dir, dir);
        }
        args.pair("--chdir", &self.cwd);
        args.flags(&["--"]);
        args.0
    }
}

/// The entries of the host's `/etc/profile.d`, or `None` without one.
pub fn host_profile_d() -> Option<Vec<PathBuf>> {
    let entries = std::fs::read_dir("/etc/profile.d").ok()?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p != Path::new(PROFILE_D))
        .collect();
    paths.sort();
    Some(paths)
}

/// What must stay visible under the private `/run` and `/tmp`: the file `/etc/resolv.conf`
/// resolves to, when it is there (systemd-resolved's stub file).
pub fn kept_files() -> Vec<PathBuf> {
    std::fs::canonicalize("/etc/resolv.conf")
        .ok()
        .filter(|p| PRIVATE.iter().any(|dir| p.starts_with(dir)))
        .into_iter()
        .collect()
}

/// Resolves a `--bind`/`--ro-bind` argument to the absolute path bubblewrap mounts.
pub fn resolve(flag: &'static str, path: &Path) -> Result<PathBuf, LayoutError> {
    std::fs::canonicalize(path).map_err(|source| LayoutError::Missing {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

/// An argument list being built.
#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn flags(&mut self, flags: &[&str]) {
        self.0.extend(flags.iter().map(OsString::from));
    }

    fn pair(&mut self, flag: &str, value: impl AsRef<std::ffi::OsStr>) {
        self.0.push(flag.into());
        self.0.push(value.as_ref().to_owned());
    }

    fn mount(
        &mut self,
        flag: &str,
        source: impl AsRef<std::ffi::OsStr>,
        dest: impl AsRef<std::ffi::OsStr>,
    ) {
        self.pair(flag, source);
        self.0.push(dest.as_ref().to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            cwd: PathBuf::from("/opt/project"),
            hidden: vec![PathBuf::from("/var/lib/veil"), PathBuf::from("/run/veil")],
            public_dir: PathBuf::from("/run/veil-public"),
            profile: PathBuf::from("/run/veil-public/secrets.sh"),
            profile_d: Some(vec![PathBuf::from("/etc/profile.d/a.sh")]),
            keep: vec![PathBuf::from("/run/systemd/resolve/stub-resolv.conf")],
            binds: vec![PathBuf::from("/data")],
            ro_binds: vec![PathBuf::from("/srv")],
            ids: (0, 0),
            private_home: Some(PathBuf::from("/root")),
        }
    }

    fn text(args: &[OsString]) -> String {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn every_namespace_is_new_and_user_namespaces_are_closed() {
        let args = text(&layout().bwrap_args());
        for flag in [
            "--unshare-user --disable-userns",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup",
            "--new-session",
            "--die-with-parent",
            "--uid 0 --gid 0",
        ] {
            assert!(args.contains(flag), "{flag} in {args}");
        }
        assert!(
            !args.contains("--unshare-net"),
            "veil made the network namespace"
        );
        assert!(args.ends_with("--chdir /opt/project --"), "{args}");
    }

    #[test]
    fn the_host_is_read_only_and_veils_directories_hidden_in_order() {
        let args = text(&layout().bwrap_args());
        let at = |needle: &str| {
            args.find(needle)
                .unwrap_or_else(|| panic!("{needle} in {args}"))
        };
        assert!(at("--ro-bind / /") < at("--tmpfs /tmp"));
        assert!(at("--tmpfs /run") < at("--ro-bind /run/veil-public /run/veil-public"));
        assert!(at("--tmpfs /run") < at("--ro-bind /run/systemd/resolve/stub-resolv.conf"));
        assert!(at("--tmpfs /etc/profile.d") < at("--ro-bind /etc/profile.d/a.sh"));
        assert!(
            args.contains("--symlink /run/veil-public/secrets.sh /etc/profile.d/veil-secrets.sh")
        );
        assert!(args.contains("--tmpfs /root"));
        assert!(args.contains("--tmpfs /home"));
        assert!(at("--ro-bind /srv /srv") < at("--bind /opt/project /opt/project"));
        assert!(args.contains("--bind /data /data"));
        // /run/veil is hidden by the private /run already; /var/lib/veil only if it exists.
        assert!(!args.contains("--tmpfs /run/veil "));
    }

    #[test]
    fn the_root_is_never_made_writable() {
        let mut root = layout();
        root.cwd = PathBuf::from("/");
        let args = text(&root.bwrap_args());
        assert!(!args.contains("--bind / /"), "{args}");
        assert!(args.ends_with("--chdir / --"));
    }

    #[test]
    fn paths_that_uncover_hidden_directories_are_refused() {
        let layout = layout();
        for (what, path) in [
            ("--bind", "/var/lib/veil/db"),
            ("--bind", "/var"),
            (WORKING_DIRECTORY, "/var"),
            ("--ro-bind", "/var"),
            ("--ro-bind", "/sys/fs/bpf/veil"),
            ("--bind", "/run/veil"),
        ] {
            assert!(
                matches!(
                    layout.check_path(what, Path::new(path)),
                    Err(LayoutError::Hidden { .. })
                ),
                "{what} {path}"
            );
        }
        assert!(layout.check_path(WORKING_DIRECTORY, Path::new("/")).is_ok());
        assert!(layout.check_path("--bind", Path::new("/data")).is_ok());
        assert!(layout
            .check_path(WORKING_DIRECTORY, Path::new("/opt/project"))
            .is_ok());
    }
}
