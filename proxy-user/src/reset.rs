//! `veil reset`: remove what an installation put in the kernel and the cgroup tree, so that
//! formerly steered cgroups connect directly again. The audit log is kept.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{
    audit::{AuditError, AuditStore, Event, SandboxChange},
    cgroup::{self, CgroupError},
    config::Paths,
    daemon::{self, DaemonError},
    sandbox::{Registry, RegistryError},
    steering::{self, SteeringError},
};

/// Errors from `veil reset`.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// The daemon is running.
    #[error("veil serve is running for {0}: stop it first (reset removes what it uses)")]
    Running(String),
    /// The lock or another daemon-side step failed.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// Detaching or unpinning failed.
    #[error(transparent)]
    Steering(#[from] SteeringError),
    /// Removing the sandbox cgroups failed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// The sandbox registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The audit log failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The database could not be opened.
    #[error("opening the database in {path}: {source}")]
    Db {
        /// The database directory.
        path: String,
        /// sled's error.
        source: sled::Error,
    },
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
    std::fs::create_dir_all(&paths.run_dir).map_err(|source| DaemonError::Io {
        path: paths.run_dir.clone(),
        source,
    })?;
    let _lock = match daemon::take_lock(&paths.lock(), &paths.run_dir) {
        Ok(lock) => lock,
        Err(DaemonError::Locked(dir)) => {
            return Err(ResetError::Running(dir.display().to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    let mut report = Report {
        detached: steering::remove_all(&paths.bpf_dir)?,
        ..Report::default()
    };
    let parent = cgroup::resolve_parent(&cgroup::cgroup2_mount()?, &paths.cgroup_parent);
    cgroup::remove(&parent)?;
    let db_path = paths.db();
    if db_path.exists() {
        let db = sled::open(&db_path).map_err(|source| ResetError::Db {
            path: db_path.display().to_string(),
            source,
        })?;
        let registry = Registry::open(&db)?;
        let store = AuditStore::open(&db, &db_path)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let mut events = Vec::new();
        for sandbox in registry.list() {
            registry.remove(&sandbox.name)?;
            events.push((
                now,
                Event::SandboxDetached(SandboxChange {
                    name: sandbox.name.clone(),
                    cgroup: sandbox.cgroup.display().to_string(),
                    cgroup_id: sandbox.cgroup_id,
                }),
            ));
            report.sandboxes.push(sandbox.name);
        }
        store.append(events)?;
    }
    Ok(report)
}
