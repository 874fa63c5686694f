//! The network namespaces of sandboxes: making or adopting them, opening veil's listeners
//! inside, filing them in the kernel as served, telling the serving task, and letting go.

use std::{
    collections::HashMap,
    fs::File,
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
};

use tokio::sync::mpsc;

use super::{Sandbox, SandboxError};
use crate::{
    netns::{self, NsListeners, Ports},
    steering::Steering,
};

/// What the daemon's serving task must do for a sandbox's namespace.
#[derive(Debug)]
pub enum NsEvent {
    /// Serve these listeners, opened in the namespace of sandbox (cgroup id) `sandbox`.
    Serve {
        /// The sandbox's cgroup id.
        sandbox: u64,
        /// The sandbox's name.
        name: String,
        /// veil's sockets in its namespace.
        listeners: NsListeners,
    },
    /// Stop serving sandbox `sandbox`'s namespace and close its listeners.
    Stop {
        /// The sandbox's cgroup id.
        sandbox: u64,
    },
}

/// Where namespace events go: the daemon's serving task.
pub type NsEvents = mpsc::UnboundedSender<NsEvent>;

/// The namespaces being served, by sandbox cgroup id, with their cookies.
pub(super) struct Served {
    dir: PathBuf,
    events: NsEvents,
    cookies: Mutex<HashMap<u64, u64>>,
}

impl Served {
    pub(super) fn new(dir: PathBuf, events: NsEvents) -> Self {
        Self {
            dir,
            events,
            cookies: Mutex::new(HashMap::new()),
        }
    }

    /// Makes a namespace for sandbox `name` (cgroup id `sandbox`) and serves it; returns where
    /// it is kept.
    pub(super) fn create(
        &self,
        name: &str,
        sandbox: u64,
        steering: &Mutex<Steering>,
    ) -> Result<PathBuf, SandboxError> {
        let path = self.dir.join(name);
        let ns = netns::create(&path)?;
        self.serve_or_release(name, sandbox, &ns, path, steering)
    }

    /// Keeps the existing namespace `source` for sandbox `name` and serves it; returns where
    /// it is kept.
    pub(super) fn adopt(
        &self,
        name: &str,
        sandbox: u64,
        source: &Path,
        steering: &Mutex<Steering>,
    ) -> Result<PathBuf, SandboxError> {
        let path = self.dir.join(name);
        let ns = netns::adopt(source, &path)?;
        self.serve_or_release(name, sandbox, &ns, path, steering)
    }

    /// Serves a registered sandbox's namespace again (veil restarted).
    pub(super) fn reopen(
        &self,
        sandbox: &Sandbox,
        steering: &Mutex<Steering>,
    ) -> Result<(), SandboxError> {
        let Some(path) = &sandbox.netns else {
            return Ok(());
        };
        let ns = netns::open(path)?;
        self.serve(&sandbox.name, sandbox.cgroup_id, &ns, path, steering)
    }

    /// Stops serving `sandbox`'s namespace, and lets go of it if veil kept it. Best effort:
    /// failures are logged, and a namespace no longer served has its connects refused.
    pub(super) fn close(&self, sandbox: &Sandbox, steering: &Mutex<Steering>) {
        let cookie = self
            .cookies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&sandbox.cgroup_id);
        if let Some(cookie) = cookie {
            let _ = self.events.send(NsEvent::Stop {
                sandbox: sandbox.cgroup_id,
            });
            if let Err(e) = lock(steering).unserve_netns(cookie) {
                log::warn!("sandbox {}: {e}", sandbox.name);
            }
        }
        if let Some(path) = sandbox
            .netns
            .as_deref()
            .filter(|p| p.starts_with(&self.dir))
        {
            if let Err(e) = netns::release(path) {
                log::warn!("sandbox {}: {e}", sandbox.name);
            }
        }
    }

    /// Whether the namespace of sandbox (cgroup id) `sandbox` is served.
    pub(super) fn serves(&self, sandbox: u64) -> bool {
        let cookies = self.cookies.lock().unwrap_or_else(PoisonError::into_inner);
        cookies.contains_key(&sandbox)
    }

    /// The cookies of every namespace served.
    pub(super) fn cookies(&self) -> Vec<u64> {
        let cookies = self.cookies.lock().unwrap_or_else(PoisonError::into_inner);
        cookies.values().copied().collect()
    }

    fn serve_or_release(
        &self,
        name: &str,
        sandbox: u64,
        ns: &File,
        path: PathBuf,
        steering: &Mutex<Steering>,
    ) -> Result<PathBuf, SandboxError> {
        match self.serve(name, sandbox, ns, &path, steering) {
            Ok(()) => Ok(path),
            Err(e) => {
                let _ = netns::release(&path);
                Err(e)
            }
        }
    }

    fn serve(
        &self,
        name: &str,
        sandbox: u64,
        ns: &File,
        path: &Path,
        steering: &Mutex<Steering>,
    ) -> Result<(), SandboxError> {
        let listeners = NsListeners::open(ns, path, Ports::SANDBOX)?;
        let cookie = listeners.cookie;
        lock(steering).serve_netns(cookie, listeners.flags())?;
        self.cookies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sandbox, cookie);
        // The receiver is gone only while the daemon shuts down; nothing is served then.
        let _ = self.events.send(NsEvent::Serve {
            sandbox,
            name: name.to_owned(),
            listeners,
        });
        Ok(())
    }
}

fn lock(steering: &Mutex<Steering>) -> std::sync::MutexGuard<'_, Steering> {
    steering.lock().unwrap_or_else(PoisonError::into_inner)
}
