//! The registry: which cgroups veil steers and what they are called, kept in sled so a
//! restarted daemon still names the sandboxes it finds steered.

use std::{
    collections::{HashMap, VecDeque},
    path::PathBuf,
    sync::{Mutex, PoisonError, RwLock},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use crate::{audit::Container, steering::SandboxSettings};

/// A steered cgroup and its name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    /// The sandbox's name, unique within the installation.
    pub name: String,
    /// The cgroup v2 directory.
    pub cgroup: PathBuf,
    /// The cgroup's id (inode number).
    pub cgroup_id: u64,
    /// Whether veil created the cgroup (`veil run`) and removes it at the end, as opposed to
    /// an existing cgroup it was asked to `attach`.
    pub managed: bool,
    /// What the sandbox may do beyond TCP through veil (DNS resolvers, IPv6).
    #[serde(default)]
    pub settings: SandboxSettings,
    /// The sandbox's own network namespace, when it has one: a file veil bind-mounted the
    /// namespace on (`veil run`) or the path it was attached with (`veil attach --netns`).
    /// `None`: the sandbox shares veil's namespace (`veil run --no-isolation`, plain attach).
    #[serde(default)]
    pub netns: Option<PathBuf>,
    /// The container this sandbox is (`veil oci-hook`, `veil attach --container`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
}

/// Errors from the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The name is taken.
    #[error("a sandbox named {0:?} already exists")]
    NameTaken(String),
    /// The cgroup is already registered under another name.
    #[error("cgroup {cgroup} is already steered as sandbox {name:?}")]
    CgroupTaken {
        /// The cgroup path.
        cgroup: PathBuf,
        /// The name it is registered under.
        name: String,
    },
    /// No sandbox has that name.
    #[error("no sandbox named {0:?}")]
    NotFound(String),
    /// The database failed.
    #[error("sandbox registry: {0}")]
    Db(#[from] sled::Error),
    /// A stored entry could not be decoded.
    #[error("sandbox registry entry {name:?} is corrupt: {source}")]
    Corrupt {
        /// The entry's key.
        name: String,
        /// The decoding error.
        source: serde_json::Error,
    },
}

/// The registry: a sled tree keyed by name, mirrored in memory by cgroup id for the hot path.
pub struct Registry {
    tree: sled::Tree,
    by_id: RwLock<HashMap<u64, Sandbox>>,
    /// Sandboxes removed lately (when, cgroup id, name), oldest first: what the kernel
    /// queued about a sandbox before it went (refusals still in the ring) is read after, and
    /// its records must still name it.
    departed: Mutex<VecDeque<(Instant, u64, String)>>,
}

/// How long a removed sandbox's name still names late records of its cgroup.
const DEPARTED_FOR: Duration = Duration::from_secs(60);
/// How many removed sandboxes' names are kept at most.
const DEPARTED_MAX: usize = 1024;

impl Registry {
    /// Opens the registry's tree in `db` and loads it.
    pub fn open(db: &sled::Db) -> Result<Self, RegistryError> {
        let tree = db.open_tree("sandboxes")?;
        let mut by_id = HashMap::new();
        for entry in tree.iter() {
            let (key, value) = entry?;
            let sandbox: Sandbox =
                serde_json::from_slice(&value).map_err(|source| RegistryError::Corrupt {
                    name: String::from_utf8_lossy(&key).into_owned(),
                    source,
                })?;
            by_id.insert(sandbox.cgroup_id, sandbox);
        }
        Ok(Self {
            tree,
            by_id: RwLock::new(by_id),
            departed: Mutex::new(VecDeque::new()),
        })
    }

    /// Adds a sandbox; its name and cgroup must both be new.
    pub fn insert(&self, sandbox: Sandbox) -> Result<(), RegistryError> {
        let mut by_id = self.by_id.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = by_id.get(&sandbox.cgroup_id) {
            return Err(RegistryError::CgroupTaken {
                cgroup: sandbox.cgroup,
                name: existing.name.clone(),
            });
        }
        let value = serde_json::to_vec(&sandbox).map_err(|source| RegistryError::Corrupt {
            name: sandbox.name.clone(),
            source,
        })?;
        let swapped = self.tree.compare_and_swap(
            sandbox.name.as_bytes(),
            None as Option<&[u8]>,
            Some(value),
        )?;
        if swapped.is_err() {
            return Err(RegistryError::NameTaken(sandbox.name));
        }
        self.tree.flush()?;
        by_id.insert(sandbox.cgroup_id, sandbox);
        Ok(())
    }

    /// Removes the sandbox called `name` and returns it.
    pub fn remove(&self, name: &str) -> Result<Sandbox, RegistryError> {
        let mut by_id = self.by_id.write().unwrap_or_else(PoisonError::into_inner);
        let id = by_id
            .values()
            .find(|s| s.name == name)
            .map(|s| s.cgroup_id)
            .ok_or_else(|| RegistryError::NotFound(name.to_owned()))?;
        self.tree.remove(name.as_bytes())?;
        self.tree.flush()?;
        let removed = by_id
            .remove(&id)
            .ok_or_else(|| RegistryError::NotFound(name.to_owned()))?;
        let mut departed = self.departed.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        departed.push_back((now, id, removed.name.clone()));
        while departed.len() > DEPARTED_MAX
            || departed
                .front()
                .is_some_and(|(at, _, _)| now.duration_since(*at) > DEPARTED_FOR)
        {
            departed.pop_front();
        }
        Ok(removed)
    }

    /// The sandbox called `name`.
    pub fn get(&self, name: &str) -> Option<Sandbox> {
        let by_id = self.by_id.read().unwrap_or_else(PoisonError::into_inner);
        by_id.values().find(|s| s.name == name).cloned()
    }

    /// The name of the registered sandbox whose cgroup has this id.
    pub fn name_of(&self, cgroup_id: u64) -> Option<String> {
        let by_id = self.by_id.read().unwrap_or_else(PoisonError::into_inner);
        by_id.get(&cgroup_id).map(|s| s.name.clone())
    }

    /// The name a record about cgroup `cgroup_id` carries: its sandbox's, also for a minute
    /// after the sandbox was removed.
    pub fn record_name(&self, cgroup_id: u64) -> Option<String> {
        self.name_of(cgroup_id).or_else(|| {
            let departed = self.departed.lock().unwrap_or_else(PoisonError::into_inner);
            departed
                .iter()
                .rev()
                .find(|(at, id, _)| *id == cgroup_id && at.elapsed() <= DEPARTED_FOR)
                .map(|(_, _, name)| name.clone())
        })
    }

    /// Every sandbox, sorted by name.
    pub fn list(&self) -> Vec<Sandbox> {
        let by_id = self.by_id.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<Sandbox> = by_id.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(name: &str, id: u64) -> Sandbox {
        Sandbox {
            name: name.into(),
            cgroup: PathBuf::from(format!("/cg/{name}")),
            cgroup_id: id,
            managed: true,
            settings: SandboxSettings::default(),
            netns: None,
            container: None,
        }
    }

    #[test]
    fn insert_lookup_remove_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let reg = Registry::open(&db).unwrap();
            reg.insert(sandbox("a", 1)).unwrap();
            reg.insert(sandbox("b", 2)).unwrap();
            assert!(matches!(
                reg.insert(sandbox("a", 3)),
                Err(RegistryError::NameTaken(_))
            ));
            assert!(matches!(
                reg.insert(sandbox("c", 2)),
                Err(RegistryError::CgroupTaken { .. })
            ));
            assert_eq!(reg.name_of(2).as_deref(), Some("b"));
            assert_eq!(reg.remove("a").unwrap().cgroup_id, 1);
            assert!(matches!(reg.remove("a"), Err(RegistryError::NotFound(_))));
            // Late records of a removed sandbox still name it; it is no longer registered.
            assert_eq!(reg.name_of(1), None);
            assert_eq!(reg.record_name(1).as_deref(), Some("a"));
            assert_eq!(reg.list(), vec![sandbox("b", 2)]);
        }
        let db = sled::open(dir.path()).unwrap();
        let reg = Registry::open(&db).unwrap();
        assert_eq!(reg.list(), vec![sandbox("b", 2)]);
        assert_eq!(reg.get("b"), Some(sandbox("b", 2)));
        assert_eq!(reg.name_of(1), None);
    }
}
