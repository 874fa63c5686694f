//! The placeholder engine and the response scrubber for the live secrets. The store rebuilds
//! both whenever the set changes and publishes them through a `watch` channel, so a create,
//! rotate or delete applies to the very next request and response, also on open connections,
//! and the data path takes them without a lock of its own.

use std::sync::Arc;

use tokio::sync::watch;
use veil_core::{
    inject::{self, Engine, EngineError},
    scrub::{self, Scrubber, ScrubberError},
};

use super::{SecretSet, SecretValue};

/// What the data path needs of the live secrets, built from one set: a request takes one
/// snapshot and uses it both to inject and to scrub the response, so a rotation in between
/// cannot leave the value it injected out of the scrubber.
pub struct Built {
    /// `None` when it could not be built: nothing is injected (the error was logged).
    engine: Option<Arc<Engine<SecretValue>>>,
    /// Always there: when it cannot be built for the set, responses are refused instead.
    scrubber: Result<Arc<Scrubber>, Arc<str>>,
}

/// The engine and scrubber for the secrets as they are now.
#[derive(Clone)]
pub struct LiveEngine(watch::Receiver<Arc<Built>>);

/// Publishes engines and scrubbers to [`LiveEngine`]s.
pub(super) struct Publisher(watch::Sender<Arc<Built>>);

impl Built {
    /// The placeholder engine; `None` when there is none (no secrets can be injected: building
    /// it failed, and the error was logged).
    pub fn engine(&self) -> Option<&Arc<Engine<SecretValue>>> {
        self.engine.as_ref()
    }

    /// The scrubber; `Err` says why there is none, and then no response may reach a sandbox.
    pub fn scrubber(&self) -> Result<Arc<Scrubber>, Arc<str>> {
        self.scrubber.clone()
    }
}

impl LiveEngine {
    /// The engine and scrubber in force, as one snapshot.
    pub fn snapshot(&self) -> Arc<Built> {
        Arc::clone(&self.0.borrow())
    }

    /// An engine and scrubber fixed to `set`, for tests of the data path.
    pub fn fixed(set: &SecretSet) -> Result<Self, EngineError> {
        let built = Built {
            engine: Some(Arc::new(engine(set)?)),
            scrubber: scrubber(set)
                .map(Arc::new)
                .map_err(|e| e.to_string().into()),
        };
        Ok(Self(watch::Sender::new(Arc::new(built)).subscribe()))
    }
}

impl Publisher {
    /// A publisher for no secrets yet.
    pub(super) fn new() -> Self {
        Self(watch::Sender::new(Arc::new(Built {
            engine: None,
            scrubber: Ok(Arc::new(Scrubber::empty())),
        })))
    }

    /// Builds the engine and the scrubber for `set` and puts them in force.
    pub(super) fn publish(&self, set: &SecretSet) {
        let engine = match engine(set) {
            Ok(engine) => Some(Arc::new(engine)),
            Err(e) => {
                log::error!("building the placeholder engine failed, so nothing is injected: {e}");
                None
            }
        };
        let scrubber = match scrubber(set) {
            Ok(scrubber) => Ok(Arc::new(scrubber)),
            Err(e) => {
                log::error!(
                    "building the response scrubber failed, so no response reaches a sandbox: {e}"
                );
                Err(e.to_string().into())
            }
        };
        self.0.send_replace(Arc::new(Built { engine, scrubber }));
    }

    /// A receiver of what is in force.
    pub(super) fn subscribe(&self) -> LiveEngine {
        LiveEngine(self.0.subscribe())
    }
}

fn engine(set: &SecretSet) -> Result<Engine<SecretValue>, EngineError> {
    let entries = set
        .iter()
        .map(|secret| inject::Entry {
            id: secret.info.id.clone(),
            name: secret.info.name.clone(),
            placeholder: secret.info.proxy_value.clone(),
            scope: secret.hosts.clone(),
            slots: secret.info.slots(),
            route: secret.route.clone(),
            value: Arc::clone(&secret.value),
        })
        .collect();
    Engine::new(entries)
}

fn scrubber(set: &SecretSet) -> Result<Scrubber, ScrubberError> {
    let entries = set
        .iter()
        .map(|secret| scrub::Entry {
            id: secret.info.id.clone(),
            name: secret.info.name.clone(),
            placeholder: secret.info.proxy_value.clone(),
            value: Arc::clone(&secret.value),
            derived: Vec::new(),
        })
        .collect();
    Scrubber::new(entries)
}
