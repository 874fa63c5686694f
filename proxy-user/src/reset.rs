//! `veil reset`: remove what an installation put in the kernel and the cgroup tree, so that
//! formerly steered cgroups connect directly again. The audit log is kept.

use crate::{
    audit::{self, AuditStore, Event},
    cgroup,
    config::Paths,
    daemon::{self, DaemonError},
    sandbox::Registry,
    steering,
};

/// Errors from `veil reset`.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// The daemon is running.
    #[error("veil serve is running for {0}: stop it first (reset removes what it uses)")]
    Running(String),
    /// Taking the lock, detaching, removing cgroups, or the database failed.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
}

/// What `reset` removed.
#[derive(Debug, Default)]
pub struct Report {
    /// How many cgroups were steered (their links were detached).
    pub detached: usize,
    /// The sandboxes forgotten.
    pub sandboxes: Vec<String>,
}

/// Detaches every steered cgroup, deletes the bpffs directory, kills and removes the sandboxes
/// under the sandbox parent, and forgets every registered sandbox (leaving a detach record for
/// each in the audit log).
pub fn reset(paths: &Paths) -> Result<Report, ResetError> {
    daemon::owned_dir(&paths.run_dir, 0o700)?;
    let _lock = match daemon::take_lock(&paths.lock(), &paths.run_dir) {
        Ok(lock) => lock,
        Err(DaemonError::Locked(dir)) => {
            return Err(ResetError::Running(dir.display().to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    Ok(undo(paths)?)
}

/// The work of `reset`, with the daemon's lock held.
fn undo(paths: &Paths) -> Result<Report, DaemonError> {
    let mut report = Report {
        detached: steering::remove_all(&paths.bpf_dir)?,
        ..Report::default()
    };
    let parent = cgroup::resolve_parent(&cgroup::cgroup2_mount()?, &paths.cgroup_parent);
    cgroup::remove(&parent)?;
    let db_path = paths.db();
    if db_path.exists() {
        let db = sled::open(&db_path).map_err(|source| DaemonError::Db {
            path: db_path.clone(),
            source,
        })?;
        let registry = Registry::open(&db)?;
        let store = AuditStore::open(&db, &db_path)?;
        let now = audit::now_ms();
        let mut events = Vec::new();
        for sandbox in registry.list() {
            registry.remove(&sandbox.name)?;
            events.push((
                now,
                Event::SandboxDetached(crate::sandbox::change(&sandbox)),
            ));
            report.sandboxes.push(sandbox.name);
        }
        store.append(events)?;
    }
    Ok(report)
}
