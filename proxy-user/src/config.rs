//! Where one veil installation keeps its files.

use std::path::PathBuf;

/// The directories and names that make up one veil installation. Tests and demos use their
/// own, so several installations can run side by side.
#[derive(Clone, Debug)]
pub struct Paths {
    /// sled database and other persistent state.
    pub state_dir: PathBuf,
    /// Control socket and daemon lock.
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

    /// The certificate bundle sandboxes trust: the system roots plus veil's CA.
    pub fn ca_bundle(&self) -> PathBuf {
        self.run_dir.join("ca-bundle.pem")
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
        self.run_dir.join("secrets.sh")
    }

    /// The sled database.
    pub fn db(&self) -> PathBuf {
        self.state_dir.join("db")
    }
}
