//! The live placeholder engine. It is rebuilt from the secrets store's current set the first
//! time a request sees a new set, so a create, rotate or delete applies to the very next
//! request, also on connections that are already open.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::{
    inject::{Engine, Entry},
    secrets::{SecretSet, SecretValue},
};

/// Hands out the engine for the current secrets.
pub struct Injector {
    secrets: watch::Receiver<Arc<SecretSet>>,
    cached: Mutex<Option<Built>>,
}

/// An engine and the set it was built from.
type Built = (Arc<SecretSet>, Arc<Engine<SecretValue>>);

impl Injector {
    /// An injector following `secrets`.
    pub fn new(secrets: watch::Receiver<Arc<SecretSet>>) -> Self {
        Self {
            secrets,
            cached: Mutex::new(None),
        }
    }

    /// The engine for the secrets as they are now; `None` if it cannot be built (then nothing
    /// is injected, and the error is logged).
    pub fn engine(&self) -> Option<Arc<Engine<SecretValue>>> {
        let set = Arc::clone(&self.secrets.borrow());
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((built_from, engine)) = cached.as_ref() {
            if Arc::ptr_eq(built_from, &set) {
                return Some(Arc::clone(engine));
            }
        }
        match build(&set) {
            Ok(engine) => {
                let engine = Arc::new(engine);
                *cached = Some((set, Arc::clone(&engine)));
                Some(engine)
            }
            Err(e) => {
                log::error!("building the placeholder engine failed, so nothing is injected: {e}");
                *cached = None;
                None
            }
        }
    }
}

fn build(set: &SecretSet) -> Result<Engine<SecretValue>, crate::inject::EngineError> {
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
