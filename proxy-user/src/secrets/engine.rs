//! The placeholder engine and the response scrubber for the live secrets. The store rebuilds
//! both whenever the set changes and publishes them through a `watch` channel, so a create,
//! rotate or delete applies to the very next request and response, also on open connections,
//! and the data path takes them without a lock of its own.

use std::sync::Arc;

use tokio::sync::watch;
use veil_core::{
    inject::{self, Engine, EngineError},
    scrub::{self, Scrubber, ScrubberError},
    secrets::aws::AwsTable,
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
    /// The aws secrets, by key id placeholder, for SigV4 re-signing.
    aws: Arc<AwsTable>,
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

    /// The aws secrets, for re-signing requests signed with their placeholders.
    pub fn aws(&self) -> &Arc<AwsTable> {
        &self.aws
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
            aws: Arc::new(aws_table(set)),
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
            aws: Arc::default(),
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
        let aws = Arc::new(aws_table(set));
        self.0.send_replace(Arc::new(Built {
            engine,
            scrubber,
            aws,
        }));
    }

    /// A receiver of what is in force.
    pub(super) fn subscribe(&self) -> LiveEngine {
        LiveEngine(self.0.subscribe())
    }
}

fn engine(set: &SecretSet) -> Result<Engine<SecretValue>, EngineError> {
    // An aws secret's value is never injected: its requests are re-signed.
    let entries = set
        .iter()
        .filter(|secret| secret.info.aws.is_none())
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
    let mut entries: Vec<scrub::Entry<SecretValue>> = set
        .iter()
        .filter(|secret| secret.info.aws.is_none())
        .map(|secret| scrub::Entry {
            id: secret.info.id.clone(),
            name: secret.info.name.clone(),
            placeholder: secret.info.proxy_value.clone(),
            value: Arc::clone(&secret.value),
            derived: Vec::new(),
        })
        .collect();
    // An aws secret's parts are scrubbed one by one, each to its own placeholder; one whose
    // value cannot be read is scrubbed whole, so nothing of it goes out unscrubbed.
    let (table, _) = AwsTable::build(set);
    for secret in set.iter().filter(|s| s.info.aws.is_some()) {
        let entry = |placeholder: &str, value: &Arc<SecretValue>| scrub::Entry {
            id: secret.info.id.clone(),
            name: secret.info.name.clone(),
            placeholder: placeholder.to_owned(),
            value: Arc::clone(value),
            derived: Vec::new(),
        };
        entries.push(entry(&secret.info.proxy_value, &secret.value));
        let Some(aws) = table.iter().find(|a| a.id == secret.info.id) else {
            continue;
        };
        let info = secret.info.aws.as_ref();
        if let Some(info) = info {
            entries.push(entry(&info.key_id_placeholder, &aws.keys.key_id));
        }
        entries.push(entry(&secret.info.proxy_value, &aws.keys.secret_access_key));
        if let (Some(token), Some(placeholder)) = (
            &aws.keys.session_token,
            info.and_then(|i| i.session_token_placeholder.as_ref()),
        ) {
            entries.push(entry(placeholder, token));
        }
    }
    Scrubber::new(entries)
}

/// The aws secrets' table; one whose value cannot be read is left out (its requests are
/// refused) and logged.
fn aws_table(set: &SecretSet) -> AwsTable {
    let (table, failed) = AwsTable::build(set);
    for (name, e) in failed {
        log::error!("aws secret {name}: {e}; requests signed with its placeholder are refused");
    }
    table
}
