//! Sandboxes: the cgroups veil steers, their lifecycle (create, attach, remove), and the
//! registry that names them ([`registry`]). Every change is filed in the kernel's settings
//! map, the registry and the audit log, in that order, and undone if a step fails. A sandbox
//! with its own network namespace also has veil's listeners in it ([`namespaces`]): the
//! daemon's serving task is told to serve or stop them through a channel of [`NsEvent`]s.

mod namespaces;
mod registry;

use std::{
    fs, io,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

pub use namespaces::{NsEvent, NsEvents};
pub use registry::{Registry, RegistryError, Sandbox};

use crate::{
    audit::{self, AuditError, AuditHandle, Container, Event},
    cgroup::{self, CgroupError},
    netns::NetnsError,
    steering::{SandboxSettings, SettingsOverride, Steering, SteeringError},
};
use namespaces::Served;

/// Errors from creating, attaching or removing a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A cgroup failure.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// A registry failure.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A steering failure.
    #[error(transparent)]
    Steering(#[from] SteeringError),
    /// The change could not be audited.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The sandbox's network namespace failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// The cgroup path is unusable.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// The sandbox lifecycle: what the daemon steers and under which names.
pub struct Sandboxes {
    parent: PathBuf,
    defaults: SandboxSettings,
    steering: Arc<Mutex<Steering>>,
    registry: Arc<Registry>,
    audit: AuditHandle,
    served: Served,
}

impl Sandboxes {
    /// The lifecycle over `registry`, creating sandboxes under `parent` with `defaults`.
    /// Network namespaces are kept under `netns_dir`, and what to serve in them is sent on
    /// `events`. Forgets sandboxes that vanished while veil was down, files every remaining
    /// one's settings in the kernel again and opens its listeners again.
    pub fn open(
        parent: PathBuf,
        netns_dir: PathBuf,
        defaults: SandboxSettings,
        steering: Arc<Mutex<Steering>>,
        registry: Arc<Registry>,
        audit: AuditHandle,
        events: NsEvents,
    ) -> Result<Self, SandboxError> {
        let sandboxes = Self {
            parent,
            defaults,
            steering,
            registry,
            audit,
            served: Served::new(netns_dir, events),
        };
        sandboxes.forget_vanished();
        sandboxes.restore_settings()?;
        sandboxes.restore_namespaces()?;
        Ok(sandboxes)
    }

    /// Creates a sandbox cgroup called `name` under the sandbox parent (steered through it),
    /// with `overrides` over the default settings; with `own_netns`, also a network
    /// namespace of its own with veil's listeners in it, for the workload to run in.
    pub async fn create(
        &self,
        name: &str,
        overrides: &SettingsOverride,
        own_netns: bool,
    ) -> Result<Sandbox, SandboxError> {
        cgroup::validate_name(name)?;
        self.require_audit()?;
        if self.registry.get(name).is_some() {
            return Err(RegistryError::NameTaken(name.to_owned()).into());
        }
        let settings = overrides.apply(&self.defaults);
        settings.to_kernel()?;
        let dir = self.parent.join(name);
        cgroup::create(&dir)?;
        let made = cgroup::cgroup_id(&dir)
            .map_err(SandboxError::from)
            .and_then(|id| {
                let netns = if own_netns {
                    Some(self.served.create(name, id, &self.steering)?)
                } else {
                    None
                };
                Ok((id, netns))
            });
        let (cgroup_id, netns) = match made {
            Ok(made) => made,
            Err(e) => {
                let _ = cgroup::remove(&dir);
                return Err(e);
            }
        };
        let sandbox = Sandbox {
            name: name.to_owned(),
            cgroup_id,
            cgroup: dir.clone(),
            managed: true,
            settings,
            netns,
            container: None,
        };
        // Settings first: nothing runs in the new cgroup yet, and nothing may run without them.
        let filed = self
            .steering()
            .set_settings(sandbox.cgroup_id, &sandbox.settings)
            .map_err(SandboxError::from)
            .and_then(|()| Ok(self.registry.insert(sandbox.clone())?));
        let recorded = match filed {
            Ok(()) => self
                .audit
                .record_durable(Event::SandboxAttached(change(&sandbox)))
                .await
                .map_err(SandboxError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = recorded {
            let _ = self.registry.remove(name);
            let _ = self.steering().remove_settings(sandbox.cgroup_id);
            self.served.close(&sandbox, &self.steering);
            let _ = cgroup::remove(&dir);
            return Err(e);
        }
        Ok(sandbox)
    }

    /// Steers the existing cgroup at `dir` as sandbox `name`, with `overrides` over the
    /// default settings. With `netns` (a network namespace file such as `/proc/PID/ns/net`),
    /// veil serves the cgroup in that namespace: it keeps the namespace and opens its
    /// listeners there. `container` names the container the cgroup belongs to, for the
    /// registry and the audit log.
    pub async fn attach(
        &self,
        name: &str,
        dir: &Path,
        overrides: &SettingsOverride,
        netns: Option<&Path>,
        container: Option<Container>,
    ) -> Result<Sandbox, SandboxError> {
        cgroup::validate_name(name)?;
        self.require_audit()?;
        let dir = fs::canonicalize(dir).map_err(|source| SandboxError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let cgroup_id = cgroup::cgroup_id(&dir)?;
        if self.registry.get(name).is_some() {
            return Err(RegistryError::NameTaken(name.to_owned()).into());
        }
        if let Some(existing) = self.registry.name_of(cgroup_id) {
            return Err(RegistryError::CgroupTaken {
                cgroup: dir,
                name: existing,
            }
            .into());
        }
        let settings = overrides.apply(&self.defaults);
        settings.to_kernel()?;
        let netns = netns
            .map(|source| self.served.adopt(name, cgroup_id, source, &self.steering))
            .transpose()?;
        let sandbox = Sandbox {
            name: name.to_owned(),
            cgroup: dir.clone(),
            cgroup_id,
            managed: false,
            settings,
            netns,
            container,
        };
        if let Err(e) = self.registry.insert(sandbox.clone()) {
            self.served.close(&sandbox, &self.steering);
            return Err(e.into());
        }
        let attached = {
            let mut steering = self.steering();
            // Settings before links, so the first steered connect already sees them.
            steering
                .set_settings(cgroup_id, &sandbox.settings)
                .and_then(|()| steering.attach(&dir))
        };
        if let Err(e) = attached {
            let _ = self.steering().remove_settings(cgroup_id);
            let _ = self.registry.remove(name);
            self.served.close(&sandbox, &self.steering);
            return Err(e.into());
        }
        let recorded = self
            .audit
            .record_durable(Event::SandboxAttached(change(&sandbox)))
            .await;
        if let Err(e) = recorded {
            // Not confined without its record: undo, and the cgroup connects as before.
            let _ = self.steering().detach(cgroup_id);
            let _ = self.steering().remove_settings(cgroup_id);
            let _ = self.registry.remove(name);
            self.served.close(&sandbox, &self.steering);
            return Err(e.into());
        }
        Ok(sandbox)
    }

    /// Removes sandbox `name`: a managed one's cgroup is emptied and deleted, an attached one
    /// is detached and left in place.
    pub async fn remove(&self, name: &str) -> Result<Sandbox, SandboxError> {
        let sandbox = self
            .registry
            .get(name)
            .ok_or_else(|| RegistryError::NotFound(name.to_owned()))?;
        if sandbox.managed {
            cgroup::remove(&sandbox.cgroup)?;
        } else {
            self.steering().detach(sandbox.cgroup_id)?;
        }
        self.steering().remove_settings(sandbox.cgroup_id)?;
        self.served.close(&sandbox, &self.steering);
        self.registry.remove(name)?;
        self.audit
            .record_durable(Event::SandboxDetached(change(&sandbox)))
            .await?;
        Ok(sandbox)
    }

    /// Every registered sandbox.
    pub fn list(&self) -> Vec<Sandbox> {
        self.registry.list()
    }

    /// The sandbox parent cgroup, which `veil run` sandboxes are made under and steered
    /// through.
    pub fn parent(&self) -> &Path {
        &self.parent
    }

    /// Whether veil serves the network namespace of the sandbox with cgroup id `cgroup_id`
    /// (its listeners are open there); false for a sandbox without one.
    pub fn serves_netns(&self, cgroup_id: u64) -> bool {
        self.served.serves(cgroup_id)
    }

    /// Fails when the audit log is failing: a sandbox is only confined with its record.
    fn require_audit(&self) -> Result<(), SandboxError> {
        match self.audit.failure() {
            Some(reason) => Err(AuditError::Failing { reason }.into()),
            None => Ok(()),
        }
    }

    /// Drops registry entries whose cgroup or network namespace no longer exists (removed
    /// while veil was down, or the host restarted), and removes managed sandboxes nothing runs
    /// in any more (their `veil run` died), so their names can be used again. Each one leaves
    /// a detach record.
    fn forget_vanished(&self) {
        for sandbox in self.registry.list() {
            let netns_gone = sandbox
                .netns
                .as_deref()
                .is_some_and(|path| crate::netns::open(path).is_err());
            let stale = if !sandbox.cgroup.exists() || netns_gone {
                if sandbox.managed {
                    let _ = cgroup::remove(&sandbox.cgroup);
                }
                true
            } else if sandbox.managed && !cgroup::is_populated(&sandbox.cgroup).unwrap_or(true) {
                cgroup::remove(&sandbox.cgroup).is_ok()
            } else {
                false
            };
            if stale {
                self.served.close(&sandbox, &self.steering);
            }
            if stale && self.registry.remove(&sandbox.name).is_ok() {
                log::info!("sandbox {} is gone; forgetting it", sandbox.name);
                self.audit.record(Event::SandboxDetached(change(&sandbox)));
            }
        }
    }

    /// Files every registered sandbox's settings in the kernel again (the maps may be new) and
    /// drops settings left by sandboxes that are gone.
    fn restore_settings(&self) -> Result<(), SandboxError> {
        let sandboxes = self.registry.list();
        let mut steering = self.steering();
        for sandbox in &sandboxes {
            steering.set_settings(sandbox.cgroup_id, &sandbox.settings)?;
        }
        let ids: Vec<u64> = sandboxes.iter().map(|s| s.cgroup_id).collect();
        Ok(steering.retain_settings(&ids)?)
    }

    /// Serves every registered sandbox's namespace again, and stops serving namespaces
    /// filed by sandboxes that are gone. A namespace that cannot be served has its connects
    /// refused until its sandbox is removed.
    fn restore_namespaces(&self) -> Result<(), SandboxError> {
        for sandbox in self.registry.list() {
            if let Err(e) = self.served.reopen(&sandbox, &self.steering) {
                log::error!(
                    "sandbox {}: {e}; its connects are refused until it is removed",
                    sandbox.name
                );
            }
        }
        let keep = self.served.cookies();
        Ok(self.steering().retain_netns(&keep)?)
    }

    fn steering(&self) -> MutexGuard<'_, Steering> {
        self.steering.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The audit payload naming `sandbox`.
pub(crate) fn change(sandbox: &Sandbox) -> audit::SandboxChange {
    audit::SandboxChange {
        name: sandbox.name.clone(),
        cgroup: sandbox.cgroup.display().to_string(),
        cgroup_id: sandbox.cgroup_id,
        container: sandbox.container.clone(),
    }
}
