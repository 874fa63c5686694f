//! The egress policy in force and the configuration file it comes from. The rules and the
//! decisions are pure ([`veil_core::policy`]); this module reads and writes the file, reloads
//! it, records every change in the audit log, and publishes the policy in force to the data
//! path through a `watch` channel, so a connection takes it without a lock.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::watch;
use veil_core::policy::{
    config::{self, Egress, ParseError},
    Policy,
};

use crate::audit::{AuditHandle, Event, PolicyChange, PolicyTrigger};

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file's text is unusable: not TOML of the expected shape, or a bad rule.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong with it.
        source: ParseError,
    },
}

/// Where the egress policy lives.
#[derive(Clone, Debug)]
pub enum PolicyFile {
    /// `--config FILE`: it must exist.
    Given(PathBuf),
    /// The default file in the state directory, written by `PUT /v1/egress`; absent means an
    /// empty policy.
    Default(PathBuf),
}

impl PolicyFile {
    /// The file's path.
    pub fn path(&self) -> &Path {
        match self {
            Self::Given(path) | Self::Default(path) => path,
        }
    }

    /// Reads the policy from the file (an absent default file is the empty policy).
    pub fn load(&self) -> Result<Policy, ConfigError> {
        match self {
            Self::Default(path) if !path.exists() => {
                log::warn!(
                    "no egress policy (no --config, and no {}): every destination is denied",
                    path.display()
                );
                Ok(Policy::default())
            }
            _ => load(self.path()),
        }
    }
}

/// The policy in force, the file it comes from, and the audit log its changes go to.
pub struct LivePolicy {
    file: PolicyFile,
    current: watch::Sender<Arc<Policy>>,
    writing: Mutex<()>,
    audit: AuditHandle,
}

impl LivePolicy {
    /// Loads the policy from `file`; [`LivePolicy::started`] records it coming into force.
    pub fn open(file: PolicyFile, audit: AuditHandle) -> Result<Self, ConfigError> {
        let policy = file.load()?;
        Ok(Self {
            file,
            current: watch::Sender::new(Arc::new(policy)),
            writing: Mutex::new(()),
            audit,
        })
    }

    /// Records the policy loaded at start coming into force, once the daemon has started.
    pub fn started(&self) {
        let event = changed(&self.current(), self.file.path(), PolicyTrigger::Start);
        self.audit.record(event);
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        Arc::clone(&self.current.borrow())
    }

    /// A receiver that always holds the policy in force, for the data path.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Policy>> {
        self.current.subscribe()
    }

    /// The configuration file the policy is read from and written to.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Re-reads the configuration file and puts its policy in force; connections already
    /// accepted keep the policy they started with. On error the old policy stays. Returns
    /// the number of allow rules.
    pub fn reload(&self) -> Result<usize, ConfigError> {
        let _writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let policy = self.file.load()?;
        let rules = policy.allow.len();
        self.publish(policy, PolicyTrigger::Reload);
        Ok(rules)
    }

    /// The egress rules in force, as written.
    pub fn egress(&self) -> Egress {
        config::rules_of(&self.current())
    }

    /// Replaces the egress rules: checks them, writes them to the configuration file, and
    /// puts them in force for new connections. Nothing changes if they do not parse.
    pub fn set(&self, egress: &Egress) -> Result<Policy, ConfigError> {
        let _writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let policy = store(self.file.path(), egress)?;
        self.publish(policy.clone(), PolicyTrigger::Api);
        Ok(policy)
    }

    fn publish(&self, policy: Policy, trigger: PolicyTrigger) {
        let event = changed(&policy, self.file.path(), trigger);
        self.current.send_replace(Arc::new(policy));
        self.audit.record(event);
    }
}

/// The audit event for `policy`, read from `config`, coming into force.
fn changed(policy: &Policy, config: &Path, trigger: PolicyTrigger) -> Event {
    Event::PolicyChanged(PolicyChange {
        source: Some(config.display().to_string()),
        allow_rules: policy.allow.len() as u64,
        passthrough: policy.passthrough.len() as u64,
        trigger,
    })
}

/// Writes `egress` as the configuration file at `path` (atomically: a temporary file renamed
/// over it), after checking that it parses. Returns the parsed policy.
pub fn store(path: &Path, egress: &Egress) -> Result<Policy, ConfigError> {
    let shown = path.display().to_string();
    let parse_err = |source| ConfigError::Parse {
        path: shown.clone(),
        source,
    };
    let policy = egress
        .policy()
        .map_err(|e| parse_err(ParseError::Rule(e)))?;
    let text = egress.to_toml().map_err(parse_err)?;
    let tmp = path.with_extension("tmp");
    let write_err = |source| ConfigError::Write {
        path: shown.clone(),
        source,
    };
    fs::write(&tmp, text).map_err(write_err)?;
    fs::rename(&tmp, path).map_err(write_err)?;
    Ok(policy)
}

/// Reads the egress policy from the configuration file at `path`.
pub fn load(path: &Path) -> Result<Policy, ConfigError> {
    let shown = path.display().to_string();
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    config::parse(&text).map_err(|source| ConfigError::Parse {
        path: shown,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_policies_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("veil.toml");
        let egress = Egress {
            allow: vec!["api.github.com".into(), "10.0.0.0/8:22".into()],
            passthrough: vec!["*.pinned.test".into()],
        };
        let stored = store(&path, &egress).unwrap();
        assert_eq!(load(&path).unwrap(), stored);
        assert_eq!(config::rules_of(&stored), egress);
        let bad = Egress {
            allow: vec!["10.0.0.1/8".into()],
            passthrough: vec![],
        };
        assert!(store(&path, &bad).is_err());
        assert_eq!(load(&path).unwrap(), stored, "a bad policy is not written");
    }

    #[test]
    fn file_errors_name_the_file() {
        let err = load(Path::new("/nonexistent/veil.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/veil.toml"));
    }
}
