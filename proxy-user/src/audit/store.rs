//! The durable audit log in sled.

use std::sync::{Arc, Mutex, PoisonError};

use sled::IVec;

use super::record::{seq_from_key, seq_key};
use super::{AuditError, Event, EventKind, Record};

/// The audit log: records keyed by seq in the sled tree `audit`.
///
/// Clones share the tree and the seq counter. Open at most one store per
/// database and clone it instead: two independently opened stores would
/// assign the same seqs.
#[derive(Clone)]
pub struct AuditStore {
    tree: sled::Tree,
    /// The seq the next appended record gets. Held while assigning seqs and
    /// applying the batch, so seqs are unique and stored in order.
    next_seq: Arc<Mutex<u64>>,
}

impl AuditStore {
    /// Opens (creating if needed) the `audit` tree in `db`, continuing the
    /// seq numbering after the last stored record.
    pub fn open(db: &sled::Db) -> Result<Self, AuditError> {
        let tree = db.open_tree(TREE)?;
        let next_seq = match tree.last()? {
            Some((key, _)) => seq_from_key(&key)? + 1,
            None => 1,
        };
        Ok(Self {
            tree,
            next_seq: Arc::new(Mutex::new(next_seq)),
        })
    }

    /// Stores `(time_ms, event)` pairs as records with consecutive seqs.
    ///
    /// All records are written in one atomic batch and flushed to disk
    /// before returning, so the returned records (in input order) are
    /// durable. Safe to call from several threads at once.
    pub fn append(&self, batch: Vec<(u64, Event)>) -> Result<Vec<Record>, AuditError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let records = self.apply(batch)?;
        // Outside the lock, so concurrent appends share the fsync; it covers
        // this batch because the batch was applied first.
        self.tree.flush()?;
        Ok(records)
    }

    /// The records matching `filter`, in seq order.
    ///
    /// With [`Filter::limit`], only the last `limit` matches are returned
    /// (like `tail`), still in seq order.
    pub fn query(&self, filter: &Filter) -> Result<Vec<Record>, AuditError> {
        // Nothing can come after the largest possible seq.
        let Some(first) = filter.after_seq.map_or(Some(0), |seq| seq.checked_add(1)) else {
            return Ok(Vec::new());
        };
        let range = self.tree.range(seq_key(first)..);
        match filter.limit {
            Some(limit) => {
                let mut records = collect_matching(range.rev(), filter, limit)?;
                records.reverse();
                Ok(records)
            }
            None => collect_matching(range, filter, usize::MAX),
        }
    }

    /// Assigns seqs to `batch` and applies it atomically, without flushing.
    fn apply(&self, batch: Vec<(u64, Event)>) -> Result<Vec<Record>, AuditError> {
        // A poisoned lock is still consistent: the counter only advances
        // after its batch has been applied.
        let mut next_seq = self.next_seq.lock().unwrap_or_else(PoisonError::into_inner);
        let records: Vec<Record> = (*next_seq..)
            .zip(batch)
            .map(|(seq, (time_ms, event))| Record {
                seq,
                time_ms,
                event,
            })
            .collect();
        let mut writes = sled::Batch::default();
        for record in &records {
            writes.insert(&seq_key(record.seq), record.encode());
        }
        self.tree.apply_batch(writes)?;
        *next_seq += records.len() as u64;
        Ok(records)
    }
}

/// Which records [`AuditStore::query`] returns. Every set field must match;
/// the default matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// Only events of this kind.
    pub kind: Option<EventKind>,
    /// Only events concerning the sandbox with this name.
    pub sandbox: Option<String>,
    /// Only connections whose destination IP, as a string, equals this.
    pub host: Option<String>,
    /// Only records with `time_ms >= since_ms`.
    pub since_ms: Option<u64>,
    /// Only records with `time_ms < until_ms`.
    pub until_ms: Option<u64>,
    /// Only records with `seq > after_seq`.
    pub after_seq: Option<u64>,
    /// Only the last `limit` matches.
    pub limit: Option<usize>,
}

impl Filter {
    /// Whether `record` passes every field except `after_seq` and `limit`,
    /// which [`AuditStore::query`] applies while scanning.
    fn matches(&self, record: &Record) -> bool {
        let event = &record.event;
        self.kind.is_none_or(|kind| event.kind() == kind)
            && self
                .sandbox
                .as_deref()
                .is_none_or(|name| event.sandbox() == Some(name))
            && self.host.as_deref().is_none_or(|host| match event {
                Event::Connection(c) => c
                    .destination
                    .is_some_and(|dest| dest.ip().to_string() == host),
                Event::SandboxAttached(_)
                | Event::SandboxDetached(_)
                | Event::SecretCreated(_)
                | Event::SecretUpdated(_)
                | Event::SecretDeleted(_) => false,
            })
            && self.since_ms.is_none_or(|since| record.time_ms >= since)
            && self.until_ms.is_none_or(|until| record.time_ms < until)
    }
}

/// Name of the sled tree holding the audit log.
const TREE: &str = "audit";

/// Decodes entries from `entries` and keeps those matching `filter`,
/// stopping after `max` matches.
fn collect_matching(
    entries: impl Iterator<Item = sled::Result<(IVec, IVec)>>,
    filter: &Filter,
    max: usize,
) -> Result<Vec<Record>, AuditError> {
    let mut records = Vec::new();
    for entry in entries {
        if records.len() >= max {
            break;
        }
        let (_, value) = entry?;
        let record = Record::decode(&value)?;
        if filter.matches(&record) {
            records.push(record);
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::thread;

    use super::*;
    use crate::audit::{Connection, SandboxChange, Verdict};

    fn open(dir: &tempfile::TempDir) -> (sled::Db, AuditStore) {
        let db = sled::open(dir.path()).unwrap();
        let store = AuditStore::open(&db).unwrap();
        (db, store)
    }

    fn connection(sandbox: Option<&str>, destination: Option<&str>) -> Event {
        Event::Connection(Connection {
            sandbox: sandbox.map(str::to_owned),
            cgroup_id: 7,
            pid: 42,
            uid: 1000,
            gid: 1000,
            comm: "curl".into(),
            client: None,
            destination: destination.map(|d| d.parse::<SocketAddr>().unwrap()),
            host: None,
            protocol: "tcp".into(),
            rule: None,
            verdict: Verdict::Allowed,
            reason: "relayed".into(),
        })
    }

    fn attached(name: &str) -> Event {
        Event::SandboxAttached(SandboxChange {
            name: name.into(),
            cgroup: format!("/sys/fs/cgroup/{name}"),
            cgroup_id: 7,
        })
    }

    fn detached(name: &str) -> Event {
        Event::SandboxDetached(SandboxChange {
            name: name.into(),
            cgroup: format!("/sys/fs/cgroup/{name}"),
            cgroup_id: 7,
        })
    }

    fn seqs(records: &[Record]) -> Vec<u64> {
        records.iter().map(|r| r.seq).collect()
    }

    /// Seqs 1..=6 with time_ms 100, 200, ..., 600.
    fn populated(dir: &tempfile::TempDir) -> (sled::Db, AuditStore) {
        let (db, store) = open(dir);
        store
            .append(vec![
                (100, attached("a")),
                (200, connection(Some("a"), Some("192.0.2.1:443"))),
                (300, connection(Some("b"), Some("192.0.2.1:80"))),
                (400, connection(Some("a"), Some("[2001:db8::1]:443"))),
                (500, connection(None, None)),
                (600, detached("a")),
            ])
            .unwrap();
        (db, store)
    }

    fn query(store: &AuditStore, filter: Filter) -> Vec<u64> {
        seqs(&store.query(&filter).unwrap())
    }

    #[test]
    fn append_assigns_consecutive_seqs_from_one() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = open(&dir);
        let first = store
            .append(vec![(1, attached("a")), (2, connection(None, None))])
            .unwrap();
        let second = store.append(vec![(3, detached("a"))]).unwrap();
        assert_eq!(seqs(&first), [1, 2]);
        assert_eq!(seqs(&second), [3]);
        assert_eq!(first[1].time_ms, 2);
        assert_eq!(first[1].event, connection(None, None));
        assert!(store.append(Vec::new()).unwrap().is_empty());
        let stored = store.query(&Filter::default()).unwrap();
        assert_eq!(stored, [first, second].concat());
    }

    #[test]
    fn reopen_keeps_records_and_continues_numbering() {
        let dir = tempfile::tempdir().unwrap();
        let (db, store) = open(&dir);
        let before = store
            .append((0..5).map(|t| (t, attached("a"))).collect())
            .unwrap();
        drop(store);
        drop(db);

        let (_db, store) = open(&dir);
        assert_eq!(store.query(&Filter::default()).unwrap(), before);
        let after = store.append(vec![(9, detached("a"))]).unwrap();
        assert_eq!(seqs(&after), [6]);
        assert_eq!(query(&store, Filter::default()), [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn concurrent_appends_get_unique_consecutive_seqs() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = open(&dir);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                thread::spawn(move || {
                    let mut seqs = Vec::new();
                    for i in 0..25 {
                        let batch = vec![(t, attached("a")); i % 3 + 1];
                        let records = store.append(batch).unwrap();
                        let got: Vec<u64> = records.iter().map(|r| r.seq).collect();
                        let first = got[0];
                        assert_eq!(got, (first..first + got.len() as u64).collect::<Vec<_>>());
                        seqs.extend(got);
                    }
                    seqs
                })
            })
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort_unstable();
        let expected: Vec<u64> = (1..=all.len() as u64).collect();
        assert_eq!(all, expected);
        assert_eq!(query(&store, Filter::default()), expected);
    }

    #[test]
    fn filter_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = populated(&dir);
        let by_kind = |kind| {
            query(
                &store,
                Filter {
                    kind: Some(kind),
                    ..Filter::default()
                },
            )
        };
        assert_eq!(by_kind(EventKind::Connection), [2, 3, 4, 5]);
        assert_eq!(by_kind(EventKind::SandboxAttached), [1]);
        assert_eq!(by_kind(EventKind::SandboxDetached), [6]);
    }

    #[test]
    fn filter_by_sandbox() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = populated(&dir);
        let by_sandbox = |name: &str| {
            query(
                &store,
                Filter {
                    sandbox: Some(name.into()),
                    ..Filter::default()
                },
            )
        };
        assert_eq!(by_sandbox("a"), [1, 2, 4, 6]);
        assert_eq!(by_sandbox("b"), [3]);
        assert!(by_sandbox("c").is_empty());
    }

    #[test]
    fn filter_by_host() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = populated(&dir);
        let by_host = |host: &str| {
            query(
                &store,
                Filter {
                    host: Some(host.into()),
                    ..Filter::default()
                },
            )
        };
        assert_eq!(by_host("192.0.2.1"), [2, 3]);
        assert_eq!(by_host("2001:db8::1"), [4]);
        assert!(by_host("192.0.2.1:443").is_empty());
        assert!(by_host("a").is_empty());
    }

    #[test]
    fn filter_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = populated(&dir);
        let since = Filter {
            since_ms: Some(300),
            ..Filter::default()
        };
        let until = Filter {
            until_ms: Some(300),
            ..Filter::default()
        };
        let window = Filter {
            since_ms: Some(200),
            until_ms: Some(500),
            ..Filter::default()
        };
        assert_eq!(query(&store, since), [3, 4, 5, 6]);
        assert_eq!(query(&store, until), [1, 2]);
        assert_eq!(query(&store, window), [2, 3, 4]);
    }

    #[test]
    fn filter_after_seq() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = populated(&dir);
        let after = |seq| {
            query(
                &store,
                Filter {
                    after_seq: Some(seq),
                    ..Filter::default()
                },
            )
        };
        assert_eq!(after(0), [1, 2, 3, 4, 5, 6]);
        assert_eq!(after(4), [5, 6]);
        assert!(after(6).is_empty());
        assert!(after(u64::MAX).is_empty());
    }

    #[test]
    fn limit_returns_the_last_matches_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = populated(&dir);
        let limit = |limit, kind| {
            query(
                &store,
                Filter {
                    kind,
                    limit: Some(limit),
                    ..Filter::default()
                },
            )
        };
        assert_eq!(limit(2, None), [5, 6]);
        assert_eq!(limit(3, Some(EventKind::Connection)), [3, 4, 5]);
        assert_eq!(limit(100, None), [1, 2, 3, 4, 5, 6]);
        assert!(limit(0, None).is_empty());
    }

    #[test]
    fn filter_fields_combine() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = populated(&dir);
        let filter = Filter {
            kind: Some(EventKind::Connection),
            sandbox: Some("a".into()),
            after_seq: Some(1),
            since_ms: Some(100),
            until_ms: Some(1000),
            host: None,
            limit: Some(1),
        };
        assert_eq!(query(&store, filter), [4]);
    }

    #[test]
    fn corrupt_value_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (db, store) = populated(&dir);
        db.open_tree(TREE)
            .unwrap()
            .insert(seq_key(3), &b"not json"[..])
            .unwrap();
        assert!(matches!(
            store.query(&Filter::default()),
            Err(AuditError::Decode(_))
        ));
    }
}
