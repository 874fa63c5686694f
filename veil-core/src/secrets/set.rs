//! The live secrets: what the proxy replaces placeholders with. Held only in memory, swapped as
//! a whole on every change.

use std::{collections::BTreeMap, sync::Arc};

use serde::{Deserialize, Serialize};

use super::{aws::AwsInfo, value::SecretValue};
use crate::{host_pattern::HostPattern, inject::Slots, route::RouteScope};

/// What the API shows about a secret: everything but its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    /// `sec_` and 16 hex digits, random.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The environment variable sandboxes get `proxy_value` in.
    pub env_var: String,
    /// Host patterns the value may be sent to.
    pub hosts: Vec<String>,
    /// The placeholder, `<prefix><name>`; fixed for the secret's life.
    pub proxy_value: String,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Time of the last change, RFC 3339.
    pub updated_at: String,
    /// Whether the placeholder is also replaced in query strings (the `query` slot).
    pub inject_query: bool,
    /// Where in a request the placeholder is replaced; records written before slots existed
    /// have none, and get `headers` (and `query` with `inject_query`).
    #[serde(default)]
    pub slots: Option<Slots>,
    /// Methods the secret may be sent with; empty: any.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Path patterns the secret may be sent to; empty: any.
    #[serde(default)]
    pub paths: Vec<String>,
    /// For an aws secret (`kind: "aws"`): its placeholders. Absent for ordinary secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsInfo>,
}

/// One live secret: its metadata and, in memory only, its value.
#[derive(Debug)]
pub struct LiveSecret {
    /// The metadata, as the API shows it.
    pub info: SecretInfo,
    /// The parsed host patterns (the same as `info.hosts`).
    pub hosts: Vec<HostPattern>,
    /// The parsed methods and path patterns (the same as `info.methods`, `info.paths`).
    pub route: RouteScope,
    /// The decrypted value, shared with the sets that follow until it is rotated.
    pub value: Arc<SecretValue>,
}

/// Every live secret by id. A new set replaces the old one as a whole on every create, rotate
/// and delete, so a reader sees either the state before a change or the state after it.
#[derive(Debug, Default)]
pub struct SecretSet {
    secrets: BTreeMap<String, Arc<LiveSecret>>,
}

impl SecretInfo {
    /// The slots in force: those stored, or for older records `headers` (and `query` with
    /// `inject_query`).
    pub fn slots(&self) -> Slots {
        self.slots.clone().unwrap_or(Slots {
            query: self.inject_query,
            ..Slots::default()
        })
    }
}

impl SecretSet {
    /// The secret with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<LiveSecret>> {
        self.secrets.get(id)
    }

    /// Every secret, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<LiveSecret>> {
        self.secrets.values()
    }

    /// This set with `secret` added or replaced.
    pub fn with(&self, secret: LiveSecret) -> Self {
        let mut secrets = self.secrets.clone();
        secrets.insert(secret.info.id.clone(), Arc::new(secret));
        Self { secrets }
    }

    /// This set without the secret `id`.
    pub fn without(&self, id: &str) -> Self {
        let mut secrets = self.secrets.clone();
        secrets.remove(id);
        Self { secrets }
    }
}

impl FromIterator<LiveSecret> for SecretSet {
    fn from_iter<I: IntoIterator<Item = LiveSecret>>(iter: I) -> Self {
        Self {
            secrets: iter
                .into_iter()
                .map(|s| (s.info.id.clone(), Arc::new(s)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_from_before_slots_get_headers_and_their_query_setting() {
        let old = r#"{"id":"sec_1","name":"a","env_var":"A","hosts":["*"],"proxy_value":"P_a",
            "created_at":"","updated_at":"","inject_query":true}"#;
        let info: SecretInfo = serde_json::from_str(old).unwrap();
        assert_eq!(
            info.slots(),
            Slots {
                query: true,
                ..Slots::default()
            }
        );
        assert!(info.methods.is_empty() && info.paths.is_empty());
        let round: SecretInfo =
            serde_json::from_value(serde_json::to_value(&info).unwrap()).unwrap();
        assert_eq!(round, info);
    }
}
