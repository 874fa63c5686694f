//! The placeholder engine for the live secrets. The store rebuilds it whenever the set
//! changes and publishes it through a `watch` channel, so a create, rotate or delete applies
//! to the very next request, also on open connections, and a request takes the engine
//! without a lock of its own.

use std::sync::Arc;

use tokio::sync::watch;
use veil_core::inject::{Engine, EngineError, Entry};

use super::{SecretSet, SecretValue};

/// The engine for the secrets as they are now.
#[derive(Clone)]
pub struct LiveEngine(watch::Receiver<Option<Arc<Engine<SecretValue>>>>);

/// Publishes engines to [`LiveEngine`]s.
pub(super) struct Publisher(watch::Sender<Option<Arc<Engine<SecretValue>>>>);

impl LiveEngine {
    /// The engine in force; `None` when there is none (no secrets can be injected: building
    /// it failed, and the error was logged).
    pub fn current(&self) -> Option<Arc<Engine<SecretValue>>> {
        self.0.borrow().clone()
    }

    /// An engine fixed to `set`, for tests of the data path.
    pub fn fixed(set: &SecretSet) -> Result<Self, EngineError> {
        Ok(Self(
            watch::Sender::new(Some(Arc::new(build(set)?))).subscribe(),
        ))
    }
}

impl Publisher {
    /// A publisher with no engine yet.
    pub(super) fn new() -> Self {
        Self(watch::Sender::new(None))
    }

    /// Builds the engine for `set` and puts it in force.
    pub(super) fn publish(&self, set: &SecretSet) {
        let engine = match build(set) {
            Ok(engine) => Some(Arc::new(engine)),
            Err(e) => {
                log::error!("building the placeholder engine failed, so nothing is injected: {e}");
                None
            }
        };
        self.0.send_replace(engine);
    }

    /// A receiver of the engine in force.
    pub(super) fn subscribe(&self) -> LiveEngine {
        LiveEngine(self.0.subscribe())
    }
}

fn build(set: &SecretSet) -> Result<Engine<SecretValue>, EngineError> {
    let entries = set
        .iter()
        .map(|secret| Entry {
            id: secret.info.id.clone(),
            name: secret.info.name.clone(),
            placeholder: secret.info.proxy_value.clone(),
            scope: secret.hosts.clone(),
            inject_query: secret.info.inject_query,
            value: Arc::clone(&secret.value),
        })
        .collect();
    Engine::new(entries)
}
