//! [`SecretStore`]: secrets in sled, the live set, and their lifecycle.
//!
//! sled tree `secrets` maps each id to a JSON record of the metadata and the sealed value;
//! tree `secrets_retired` remembers the placeholders of deleted secrets so the profile can
//! drop them from running shells. Every change is audited durably first, then written as one
//! sled transaction and flushed, then published: a change that cannot be audited is not made,
//! and even a crash cannot leave a stored change without its audit record.

use std::{path::PathBuf, sync::Arc, time::SystemTime};

use serde::{Deserialize, Serialize};
use sled::{
    transaction::{ConflictableTransactionError, TransactionError, Transactional},
    IVec,
};
use tokio::sync::{watch, Mutex};

use veil_core::{
    host_pattern::HostPattern,
    inject::Slots,
    route::{Method, PathPattern, RouteScope},
    secrets::aws::{self, AwsInfo, AwsKeys},
};

use super::{
    crypto::{self, MasterKey},
    engine::{LiveEngine, Publisher},
    profile::{self, Retired},
    FieldError, LiveSecret, NewSecret, Prefix, SecretError, SecretInfo, SecretPatch, SecretSet,
    SecretValue,
};
use crate::audit::{AuditHandle, Event, SecretChange};

/// The secrets store. One per daemon.
pub struct SecretStore {
    tree: sled::Tree,
    retired: sled::Tree,
    key: MasterKey,
    prefix: Prefix,
    audit: AuditHandle,
    profile: PathBuf,
    live: watch::Sender<Arc<SecretSet>>,
    engine: Publisher,
    /// Held for the whole of a change, so changes apply, audit and publish in one order.
    writes: Mutex<()>,
}

/// A secret as stored in sled.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    info: SecretInfo,
    /// [`MasterKey::seal`]'s output, in hex.
    sealed: String,
}

/// A change to one secret's record, and the placeholders to retire with it.
struct Change<'a> {
    id: &'a str,
    /// The new record; `None` deletes it.
    record: Option<Vec<u8>>,
    retire: Vec<Retired>,
}

impl SecretStore {
    /// Opens the trees in `db`, decrypts every stored secret into the live set, and writes
    /// the profile to `profile`. Fails if any stored secret does not decrypt under `key`.
    pub fn open(
        db: &sled::Db,
        key: MasterKey,
        prefix: Prefix,
        audit: AuditHandle,
        profile: PathBuf,
    ) -> Result<Self, SecretError> {
        let tree = db.open_tree("secrets")?;
        let retired = db.open_tree("secrets_retired")?;
        let set = tree
            .iter()
            .map(|entry| {
                let (id, bytes) = entry?;
                live(&key, &decode(&id, &bytes)?)
            })
            .collect::<Result<SecretSet, SecretError>>()?;
        let store = Self {
            tree,
            retired,
            key,
            prefix,
            audit,
            profile,
            live: watch::channel(Arc::new(SecretSet::default())).0,
            engine: Publisher::new(),
            writes: Mutex::new(()),
        };
        store.publish(set);
        Ok(store)
    }

    /// A receiver of the live set: it always holds the current set and sees every change.
    pub fn subscribe(&self) -> watch::Receiver<Arc<SecretSet>> {
        self.live.subscribe()
    }

    /// The placeholder engine for the live set, following every change.
    pub fn engine(&self) -> LiveEngine {
        self.engine.subscribe()
    }

    /// Every secret, by name.
    pub fn list(&self) -> Vec<SecretInfo> {
        let mut all: Vec<SecretInfo> = self.live.borrow().iter().map(|s| s.info.clone()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The secret `id`.
    pub fn get(&self, id: &str) -> Result<SecretInfo, SecretError> {
        self.live
            .borrow()
            .get(id)
            .map(|s| s.info.clone())
            .ok_or_else(|| SecretError::NotFound(id.to_owned()))
    }

    /// Stores a new secret. Its name and variable must be unused.
    pub async fn create(&self, new: NewSecret) -> Result<SecretInfo, SecretError> {
        let _writing = self.writes.lock().await;
        let current = Arc::clone(&self.live.borrow());
        if current.iter().any(|s| s.info.name == new.name.as_str()) {
            return Err(SecretError::NameTaken(new.name.as_str().to_owned()));
        }
        let id = format!("sec_{}", hex::encode(crypto::random::<8>()?));
        let now = now();
        let proxy_value = self.prefix.placeholder(&new.name);
        let aws = if new.aws {
            Some(aws_info(&id, &proxy_value, &new.value)?)
        } else {
            None
        };
        let info = SecretInfo {
            proxy_value,
            id,
            name: new.name.as_str().to_owned(),
            env_var: new.env_var.as_str().to_owned(),
            hosts: new.hosts.iter().map(ToString::to_string).collect(),
            created_at: now.clone(),
            updated_at: now,
            inject_query: new.slots.query,
            slots: Some(new.slots),
            methods: new.methods.iter().map(ToString::to_string).collect(),
            paths: new.paths.iter().map(ToString::to_string).collect(),
            aws,
        };
        check_env_vars(&current, &info, None)?;
        let secret = LiveSecret {
            info,
            hosts: new.hosts,
            route: RouteScope {
                methods: new.methods,
                paths: new.paths,
            },
            value: Arc::new(new.value),
        };
        let change = Change {
            id: &secret.info.id,
            record: Some(self.encode(&secret)?),
            retire: Vec::new(),
        };
        self.apply(
            change,
            Event::SecretCreated(audited(&secret.info, Vec::new())),
        )
        .await?;
        let info = secret.info.clone();
        self.publish(current.with(secret));
        Ok(info)
    }

    /// Rotates the value of secret `id` and/or changes its variable, hosts or query-string
    /// setting. The name and placeholder stay.
    pub async fn update(&self, id: &str, patch: SecretPatch) -> Result<SecretInfo, SecretError> {
        let _writing = self.writes.lock().await;
        let current = Arc::clone(&self.live.borrow());
        let old = current
            .get(id)
            .ok_or_else(|| SecretError::NotFound(id.to_owned()))?;
        let mut changed = Vec::new();
        let mut info = old.info.clone();
        check_kind(&old.info, &patch)?;
        if let Some(env_var) = patch.env_var.filter(|e| e.as_str() != old.info.env_var) {
            if old.info.aws.is_some() {
                aws::check_env_var(env_var.as_str())?;
            }
            info.env_var = env_var.as_str().to_owned();
            changed.push("env_var");
        }
        let hosts = match patch.hosts.filter(|h| *h != old.hosts) {
            Some(hosts) => {
                info.hosts = hosts.iter().map(ToString::to_string).collect();
                changed.push("hosts");
                hosts
            }
            None => old.hosts.clone(),
        };
        let slots = match patch.slots {
            Some(slots) => slots,
            None => {
                let mut slots = old.info.slots();
                if let Some(query) = patch.inject_query {
                    slots.query = query;
                }
                slots
            }
        };
        let before = old.info.slots();
        if slots.query != before.query {
            changed.push("inject_query");
        }
        let others = Slots {
            query: before.query,
            ..slots.clone()
        };
        if others != before {
            changed.push("slots");
        }
        info.inject_query = slots.query;
        info.slots = Some(slots);
        let mut route = old.route.clone();
        if let Some(methods) = patch.methods.filter(|m| *m != old.route.methods) {
            info.methods = methods.iter().map(ToString::to_string).collect();
            route.methods = methods;
            changed.push("methods");
        }
        if let Some(paths) = patch.paths.filter(|p| *p != old.route.paths) {
            info.paths = paths.iter().map(ToString::to_string).collect();
            route.paths = paths;
            changed.push("paths");
        }
        let value = match patch.value {
            Some(value) => {
                changed.push("secret");
                if old.info.aws.is_some() {
                    info.aws = Some(aws_info(id, &info.proxy_value, &value)?);
                }
                Arc::new(value)
            }
            None => Arc::clone(&old.value),
        };
        check_env_vars(&current, &info, Some(id))?;
        let new_pairs = aws::env_pairs(&info);
        let retire = retired(&old.info)
            .into_iter()
            .filter(|r| {
                !new_pairs
                    .iter()
                    .any(|(var, value)| *var == r.env_var && *value == r.proxy_value)
            })
            .collect();
        info.updated_at = now();
        let secret = LiveSecret {
            info,
            hosts,
            route,
            value,
        };
        let change = Change {
            id,
            record: Some(self.encode(&secret)?),
            retire,
        };
        let changed = changed.into_iter().map(str::to_owned).collect();
        self.apply(change, Event::SecretUpdated(audited(&secret.info, changed)))
            .await?;
        let info = secret.info.clone();
        self.publish(current.with(secret));
        Ok(info)
    }

    /// Deletes secret `id`; its placeholder is no longer replaced and new sandboxes no longer
    /// get its variable.
    pub async fn delete(&self, id: &str) -> Result<SecretInfo, SecretError> {
        let _writing = self.writes.lock().await;
        let current = Arc::clone(&self.live.borrow());
        let old = current
            .get(id)
            .ok_or_else(|| SecretError::NotFound(id.to_owned()))?;
        let change = Change {
            id,
            record: None,
            retire: retired(&old.info),
        };
        self.apply(change, Event::SecretDeleted(audited(&old.info, Vec::new())))
            .await?;
        let info = old.info.clone();
        self.publish(current.without(id));
        Ok(info)
    }

    /// Writes `event` durably, then `change`.
    async fn apply(&self, change: Change<'_>, event: Event) -> Result<(), SecretError> {
        self.audit.record_durable(event).await?;
        self.commit(&change).await
    }

    /// Applies `change` in one transaction and flushes it to disk.
    async fn commit(&self, change: &Change<'_>) -> Result<(), SecretError> {
        let retire_keys: Vec<Vec<u8>> = change.retire.iter().map(retired_key).collect();
        (&self.tree, &self.retired)
            .transaction(|(tree, retired)| {
                match &change.record {
                    Some(record) => tree.insert(change.id.as_bytes(), record.as_slice())?,
                    None => tree.remove(change.id.as_bytes())?,
                };
                for key in &retire_keys {
                    retired.insert(key.as_slice(), &[][..])?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => SecretError::Db(e),
                // The closure never aborts.
                TransactionError::Abort(()) => SecretError::Db(sled::Error::ReportableBug(
                    "secrets transaction aborted".to_owned(),
                )),
            })?;
        self.tree.flush_async().await?;
        Ok(())
    }

    /// Makes `set` the live set and rewrites the profile for it.
    fn publish(&self, set: SecretSet) {
        let retired = self
            .retired
            .iter()
            .keys()
            .filter_map(|k| k.ok().and_then(|k| parse_retired(&k)))
            .collect::<Vec<_>>();
        if let Err(e) = profile::write(&self.profile, &profile::render(&set, &retired)) {
            log::warn!(
                "writing the secrets profile {}: {e}",
                self.profile.display()
            );
        }
        self.engine.publish(&set);
        self.live.send_replace(Arc::new(set));
    }

    /// The sled record for `secret`, its value sealed.
    fn encode(&self, secret: &LiveSecret) -> Result<Vec<u8>, SecretError> {
        let stored = Stored {
            info: secret.info.clone(),
            sealed: hex::encode(&self.key.seal(&secret.info.id, &secret.value)?),
        };
        serde_json::to_vec(&stored).map_err(|e| SecretError::Corrupt {
            id: secret.info.id.clone(),
            problem: e.to_string(),
        })
    }
}

/// Refuses `info` if a secret other than `except` already uses one of its variables (an aws
/// secret has two or three, see [`aws::env_pairs`]).
fn check_env_vars(
    set: &SecretSet,
    info: &SecretInfo,
    except: Option<&str>,
) -> Result<(), SecretError> {
    let wanted = aws::env_pairs(info);
    for other in set.iter().filter(|s| Some(s.info.id.as_str()) != except) {
        let theirs = aws::env_pairs(&other.info);
        if let Some((env_var, _)) = wanted
            .iter()
            .find(|(var, _)| theirs.iter().any(|(v, _)| v == var))
        {
            return Err(SecretError::EnvVarTaken {
                env_var: env_var.clone(),
                name: other.info.name.clone(),
            });
        }
    }
    Ok(())
}

/// Every variable and placeholder of `info`, to retire.
fn retired(info: &SecretInfo) -> Vec<Retired> {
    aws::env_pairs(info)
        .into_iter()
        .map(|(env_var, proxy_value)| Retired {
            env_var,
            proxy_value,
        })
        .collect()
}

/// The placeholders of the aws secret `id` with `value` (which must read back as a key).
fn aws_info(id: &str, proxy_value: &str, value: &SecretValue) -> Result<AwsInfo, SecretError> {
    let keys = AwsKeys::parse(value).map_err(|e| {
        SecretError::Invalid(FieldError {
            field: "secret",
            message: e.to_string(),
        })
    })?;
    Ok(AwsInfo::new(id, proxy_value, keys.session_token.is_some()))
}

/// Refuses a patch that does not fit the secret's kind: an aws secret's value is an object
/// and it is never injected into query strings; an ordinary secret's value is a string.
fn check_kind(info: &SecretInfo, patch: &SecretPatch) -> Result<(), SecretError> {
    let is_aws = info.aws.is_some();
    let refuse = |field: &'static str, message: &str| {
        Err(SecretError::Invalid(FieldError {
            field,
            message: message.to_owned(),
        }))
    };
    if patch.value.is_some() && patch.aws_value != is_aws {
        return if is_aws {
            refuse(
                "secret",
                "this is an aws secret: give {access_key_id, secret_access_key, session_token?}",
            )
        } else {
            refuse("secret", "this secret's value is a string, not an aws key")
        };
    }
    if is_aws && patch.inject_query == Some(true) {
        return refuse(
            "inject_query",
            "an aws secret is never injected, so it has no query-string setting",
        );
    }
    Ok(())
}

/// The audit payload for a change to `info`.
fn audited(info: &SecretInfo, changed: Vec<String>) -> SecretChange {
    SecretChange {
        id: info.id.clone(),
        name: info.name.clone(),
        env_var: info.env_var.clone(),
        hosts: info.hosts.clone(),
        changed,
    }
}

fn decode(id: &IVec, bytes: &[u8]) -> Result<Stored, SecretError> {
    serde_json::from_slice(bytes).map_err(|e| SecretError::Corrupt {
        id: String::from_utf8_lossy(id).into_owned(),
        problem: e.to_string(),
    })
}

/// The live secret for a stored one: hosts parsed, value decrypted.
fn live(key: &MasterKey, stored: &Stored) -> Result<LiveSecret, SecretError> {
    let info = &stored.info;
    let corrupt = |problem: String| SecretError::Corrupt {
        id: info.id.clone(),
        problem,
    };
    let hosts = info
        .hosts
        .iter()
        .map(|h| HostPattern::parse(h).map_err(|e| corrupt(e.to_string())))
        .collect::<Result<_, _>>()?;
    let route = RouteScope {
        methods: info
            .methods
            .iter()
            .map(|m| Method::parse(m).map_err(|e| corrupt(e.to_string())))
            .collect::<Result<_, _>>()?,
        paths: info
            .paths
            .iter()
            .map(|p| PathPattern::parse(p).map_err(|e| corrupt(e.to_string())))
            .collect::<Result<_, _>>()?,
    };
    let sealed =
        hex::decode(&stored.sealed).map_err(|_| corrupt("sealed value is not hex".into()))?;
    let value = Arc::new(key.open(&info.id, &sealed)?);
    let mut info = info.clone();
    let slots = info.slots();
    info.slots = Some(slots);
    Ok(LiveSecret {
        info,
        hosts,
        route,
        value,
    })
}

fn retired_key(r: &Retired) -> Vec<u8> {
    format!("{}\0{}", r.env_var, r.proxy_value).into_bytes()
}

fn parse_retired(key: &[u8]) -> Option<Retired> {
    let (env_var, proxy_value) = std::str::from_utf8(key).ok()?.split_once('\0')?;
    Some(Retired {
        env_var: env_var.to_owned(),
        proxy_value: proxy_value.to_owned(),
    })
}

/// Now, RFC 3339 in seconds.
fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditStore, AuditWriter, EventKind, Filter};

    struct Fixture {
        dir: tempfile::TempDir,
        db: sled::Db,
        audit: AuditStore,
        writer: Option<AuditWriter>,
        store: SecretStore,
    }

    impl Fixture {
        /// Stops the audit writer, so every further change fails to be audited.
        async fn stop_audit(&mut self) {
            if let Some(writer) = self.writer.take() {
                writer.shutdown().await;
            }
        }

        /// Closes everything and hands back the directory, to reopen it.
        async fn close(mut self) -> tempfile::TempDir {
            self.stop_audit().await;
            self.dir
        }
    }

    fn open(dir: tempfile::TempDir) -> Fixture {
        let db = sled::open(dir.path().join("db")).unwrap();
        let audit = AuditStore::open(&db, &dir.path().join("db")).unwrap();
        let (handle, writer) = AuditWriter::spawn(audit.clone());
        let store = SecretStore::open(
            &db,
            MasterKey::new(&[7; 32]).unwrap(),
            Prefix::default(),
            handle,
            dir.path().join("secrets.sh"),
        )
        .unwrap();
        Fixture {
            dir,
            db,
            audit,
            writer: Some(writer),
            store,
        }
    }

    fn new(name: &str, env_var: &str, value: &str) -> NewSecret {
        NewSecret::from_json(
            serde_json::json!({"name": name, "env_var": env_var, "secret": value})
                .to_string()
                .as_bytes(),
        )
        .unwrap()
    }

    fn patch(json: serde_json::Value) -> SecretPatch {
        SecretPatch::from_json(json.to_string().as_bytes()).unwrap()
    }

    fn value_of(store: &SecretStore, id: &str) -> String {
        let set = store.subscribe().borrow().clone();
        set.get(id).unwrap().value.expose().to_owned()
    }

    fn profile(f: &Fixture) -> String {
        std::fs::read_to_string(f.dir.path().join("secrets.sh")).unwrap()
    }

    #[tokio::test]
    async fn lifecycle_is_live_audited_and_profiled() {
        let f = open(tempfile::tempdir().unwrap());
        let mut live = f.store.subscribe();
        let gh = f.store.create(new("gh", "GH", "tok-1")).await.unwrap();
        assert!(gh.id.starts_with("sec_") && gh.id.len() == 20, "{}", gh.id);
        assert_eq!(gh.proxy_value, "IRONSH_PROXY_gh");
        assert_eq!(gh.hosts, ["*"]);
        assert!(live.has_changed().unwrap());
        assert_eq!(live.borrow_and_update().iter().count(), 1);
        assert_eq!(value_of(&f.store, &gh.id), "tok-1");
        assert!(profile(&f).contains("export GH='IRONSH_PROXY_gh'\n"));

        let rotated = f
            .store
            .update(
                &gh.id,
                patch(serde_json::json!({"secret": "tok-2", "hosts": ["a.com"]})),
            )
            .await
            .unwrap();
        assert_eq!(rotated.proxy_value, gh.proxy_value);
        assert_eq!(rotated.hosts, ["a.com"]);
        assert_eq!(value_of(&f.store, &gh.id), "tok-2");
        let moved = f
            .store
            .update(&gh.id, patch(serde_json::json!({"env_var": "GH2"})))
            .await
            .unwrap();
        assert_eq!(moved.env_var, "GH2");
        assert_eq!(value_of(&f.store, &gh.id), "tok-2", "value kept");
        let text = profile(&f);
        assert!(text.contains("export GH2='IRONSH_PROXY_gh'\n"), "{text}");
        assert!(text.contains("then unset GH;"), "{text}");

        let deleted = f.store.delete(&gh.id).await.unwrap();
        assert_eq!(deleted.id, gh.id);
        assert!(f.store.list().is_empty());
        assert!(live.borrow_and_update().get(&gh.id).is_none());
        assert!(!profile(&f).contains("export"));
        assert!(profile(&f).contains("then unset GH2;"));

        let kinds: Vec<EventKind> = f
            .audit
            .query(&Filter::default())
            .unwrap()
            .iter()
            .map(|r| r.event.kind())
            .collect();
        assert_eq!(
            kinds,
            [
                EventKind::SecretCreated,
                EventKind::SecretUpdated,
                EventKind::SecretUpdated,
                EventKind::SecretDeleted
            ]
        );
        let records = f.audit.query(&Filter::default()).unwrap();
        let Event::SecretUpdated(change) = &records[1].event else {
            panic!("{:?}", records[1]);
        };
        assert_eq!(change.changed, ["hosts", "secret"]);
        f.close().await;
    }

    #[tokio::test]
    async fn refuses_conflicts_and_unknown_ids_without_writing() {
        let f = open(tempfile::tempdir().unwrap());
        let a = f.store.create(new("a", "A", "tok-a")).await.unwrap();
        f.store.create(new("b", "B", "tok-b")).await.unwrap();
        assert!(matches!(
            f.store.create(new("a", "OTHER", "x")).await,
            Err(SecretError::NameTaken(_))
        ));
        assert!(matches!(
            f.store.create(new("c", "A", "x")).await,
            Err(SecretError::EnvVarTaken { .. })
        ));
        assert!(matches!(
            f.store
                .update(&a.id, patch(serde_json::json!({"env_var": "B"})))
                .await,
            Err(SecretError::EnvVarTaken { .. })
        ));
        assert!(matches!(
            f.store
                .update("sec_nope", patch(serde_json::json!({"secret": "x"})))
                .await,
            Err(SecretError::NotFound(_))
        ));
        assert!(matches!(
            f.store.delete("sec_nope").await,
            Err(SecretError::NotFound(_))
        ));
        assert_eq!(f.store.list().len(), 2);
        assert_eq!(f.store.get(&a.id).unwrap(), a);
        assert_eq!(f.audit.query(&Filter::default()).unwrap().len(), 2);
        f.close().await;
    }

    #[tokio::test]
    async fn a_change_that_cannot_be_audited_is_not_made() {
        let mut f = open(tempfile::tempdir().unwrap());
        let a = f.store.create(new("a", "A", "tok-a")).await.unwrap();
        f.stop_audit().await;
        assert!(matches!(
            f.store.create(new("b", "B", "tok-b")).await,
            Err(SecretError::Audit(_))
        ));
        assert!(matches!(
            f.store
                .update(&a.id, patch(serde_json::json!({"secret": "tok-2"})))
                .await,
            Err(SecretError::Audit(_))
        ));
        assert!(matches!(
            f.store.delete(&a.id).await,
            Err(SecretError::Audit(_))
        ));
        assert_eq!(f.store.list(), std::slice::from_ref(&a));
        assert_eq!(value_of(&f.store, &a.id), "tok-a");
        let reopened = open(f.close().await);
        assert_eq!(reopened.store.list(), std::slice::from_ref(&a));
        assert_eq!(value_of(&reopened.store, &a.id), "tok-a");
        reopened.close().await;
    }

    #[tokio::test]
    async fn reopening_keeps_everything_and_needs_the_same_key() {
        let f = open(tempfile::tempdir().unwrap());
        let a = f.store.create(new("a", "A", "tok-a")).await.unwrap();
        let reopened = open(f.close().await);
        assert_eq!(reopened.store.list(), std::slice::from_ref(&a));
        assert_eq!(value_of(&reopened.store, &a.id), "tok-a");
        let dir = reopened.close().await;
        let db = sled::open(dir.path().join("db")).unwrap();
        let (handle, writer) =
            AuditWriter::spawn(AuditStore::open(&db, &dir.path().join("db")).unwrap());
        let wrong = SecretStore::open(
            &db,
            MasterKey::new(&[8; 32]).unwrap(),
            Prefix::default(),
            handle,
            dir.path().join("secrets.sh"),
        );
        assert!(matches!(wrong, Err(SecretError::Undecryptable { id }) if id == a.id));
        writer.shutdown().await;
    }

    #[tokio::test]
    async fn nothing_on_disk_holds_a_value() {
        let f = open(tempfile::tempdir().unwrap());
        let a = f
            .store
            .create(new("a", "A", "plaintext-canary-4d1c"))
            .await
            .unwrap();
        f.store
            .update(
                &a.id,
                patch(serde_json::json!({"secret": "plaintext-canary-77e0"})),
            )
            .await
            .unwrap();
        f.db.flush().unwrap();
        for entry in walk(f.dir.path()) {
            let bytes = std::fs::read(&entry).unwrap();
            for canary in [&b"plaintext-canary-4d1c"[..], b"plaintext-canary-77e0"] {
                assert!(
                    !bytes.windows(canary.len()).any(|w| w == canary),
                    "{} holds a value",
                    entry.display()
                );
            }
        }
        f.close().await;
    }

    fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
        files
    }

    #[tokio::test]
    async fn an_aws_secret_has_three_variables_is_scrubbed_by_part_and_keeps_its_kind() {
        let f = open(tempfile::tempdir().unwrap());
        let key = |token: Option<&str>| {
            let mut secret = serde_json::json!({"access_key_id": "AKIDREAL1",
                                                "secret_access_key": "real/secret"});
            if let Some(token) = token {
                secret["session_token"] = token.into();
            }
            secret
        };
        let body = serde_json::json!({"name": "aws", "kind": "aws", "secret": key(Some("FwoGtok9")),
                                      "hosts": ["*.amazonaws.com"]});
        let aws = f
            .store
            .create(NewSecret::from_json(body.to_string().as_bytes()).unwrap())
            .await
            .unwrap();
        let placeholders = aws.aws.clone().unwrap();
        assert_eq!(aws.env_var, "AWS_ACCESS_KEY_ID");
        let text = profile(&f);
        for line in [
            format!(
                "export AWS_ACCESS_KEY_ID='{}'",
                placeholders.key_id_placeholder
            ),
            "export AWS_SECRET_ACCESS_KEY='IRONSH_PROXY_aws'".to_owned(),
            "export AWS_SESSION_TOKEN='IRONSH_PROXY_aws.session-token'".to_owned(),
        ] {
            assert!(text.contains(&line), "{text}");
        }
        let built = f.store.engine().snapshot();
        assert!(built.aws().get(&placeholders.key_id_placeholder).is_some());
        let scrubbed = built
            .scrubber()
            .unwrap()
            .scrub(b"id AKIDREAL1 key real/secret token FwoGtok9")
            .unwrap()
            .0;
        assert_eq!(
            String::from_utf8_lossy(&scrubbed),
            format!(
                "id {} key IRONSH_PROXY_aws token IRONSH_PROXY_aws.session-token",
                placeholders.key_id_placeholder
            )
        );

        // A token secret cannot take one of its variables.
        let err = f
            .store
            .create(new("t", "AWS_SECRET_ACCESS_KEY", "v"))
            .await
            .unwrap_err();
        assert!(matches!(err, SecretError::EnvVarTaken { .. }), "{err}");
        // Its value stays an aws key, and it is never injected into query strings.
        for bad in [
            serde_json::json!({"secret": "a-string"}),
            serde_json::json!({"inject_query": true}),
            serde_json::json!({"env_var": "AWS_KEY"}),
        ] {
            let err = f
                .store
                .update(&aws.id, patch(bad.clone()))
                .await
                .unwrap_err();
            assert!(matches!(err, SecretError::Invalid(_)), "{bad}: {err}");
        }
        // Rotating to a key without a token retires the token's variable.
        let rotated = f
            .store
            .update(&aws.id, patch(serde_json::json!({"secret": key(None)})))
            .await
            .unwrap();
        assert!(rotated.aws.unwrap().session_token_placeholder.is_none());
        let text = profile(&f);
        assert!(!text.contains("export AWS_SESSION_TOKEN"), "{text}");
        assert!(text.contains("then unset AWS_SESSION_TOKEN;"), "{text}");
        f.store.delete(&aws.id).await.unwrap();
        let text = profile(&f);
        assert!(text.contains("then unset AWS_ACCESS_KEY_ID;"), "{text}");
        assert!(text.contains("then unset AWS_SECRET_ACCESS_KEY;"), "{text}");
    }
}
