//! Where one veil installation keeps its files.

use std::path::PathBuf;

/// Where a container mounts the public directory (read-only): the CA bundle is
/// `/etc/veil/ca-bundle.pem` and the secrets profile `/etc/veil/secrets.sh` inside it.
pub const CONTAINER_PUBLIC_DIR: &str = "/etc/veil";

/// The directories and names that make up one veil installation. Tests and demos use their
/// own, so several installations can run side by side.
#[derive(Clone, Debug)]
pub struct Paths {
    /// sled database and other persistent state.
    pub state_dir: PathBuf,
    /// Control socket and daemon lock (0700); what sandboxes read is in [`Paths::public_dir`].
    pub run_dir: PathBuf,
    /// bpffs directory for pinned maps and links.
    pub bpf_dir: PathBuf,
    /// Parent cgroup of `veil run` sandboxes, relative to the cgroup2 mount or absolute.
    pub cgroup_parent: PathBuf,
}

impl Paths {
    /// The control API's Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.run_dir.join("veil.sock")
    }

    /// The file the running daemon holds an exclusive lock on.
    pub fn lock(&self) -> PathBuf {
        self.run_dir.join("veil.lock")
    }

    /// What sandboxes may read (the CA bundle, the secrets profile): beside the run directory,
    /// which is root's alone, e.g. `/run/veil-public` for `/run/veil`.
    pub fn public_dir(&self) -> PathBuf {
        let mut name = self
            .run_dir
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "veil".into());
        name.push("-public");
        self.run_dir.with_file_name(name)
    }

    /// The certificate bundle sandboxes trust: the system roots plus veil's CA.
    pub fn ca_bundle(&self) -> PathBuf {
        self.public_dir().join("ca-bundle.pem")
    }

    /// veil's CA directory.
    pub fn ca_dir(&self) -> PathBuf {
        self.state_dir.join("ca")
    }

    /// The key secrets are encrypted under, unless the operator supplies one.
    pub fn master_key(&self) -> PathBuf {
        self.state_dir.join("master.key")
    }

    /// The bearer token of the TCP control API.
    pub fn api_key(&self) -> PathBuf {
        self.state_dir.join("api.key")
    }

    /// The secrets profile sandboxed shells can source (world-readable, placeholders only).
    pub fn secrets_profile(&self) -> PathBuf {
        self.public_dir().join("secrets.sh")
    }

    /// A profile script for containers, which never changes: mounted at
    /// `/etc/profile.d/veil-secrets.sh`, it sources the live profile from the public directory
    /// mounted at [`CONTAINER_PUBLIC_DIR`]. (A single-file mount would keep showing the
    /// profile's old contents after the daemon replaced it; a directory mount does not.)
    pub fn container_profile(&self) -> PathBuf {
        self.public_dir().join("profile.d").join("veil-secrets.sh")
    }

    /// Where the network namespaces of sandboxes are kept (bind mounts, one per sandbox).
    pub fn netns_dir(&self) -> PathBuf {
        self.run_dir.join("netns")
    }

    /// The sled database.
    pub fn db(&self) -> PathBuf {
        self.state_dir.join("db")
    }
}
