//! The durable audit log in sled.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use super::{AuditError, Event, EventKind, Record};
use veil_core::audit::group::{self, GROUP_MAX};
use veil_core::audit::{seq_from_key, seq_key};
use veil_core::audit::{ChainHead, Entry};

/// The audit log: hash-chained records in the sled tree `audit`, the records of each
/// group commit in one value under the last one's seq (see [`veil_core::audit::group`]).
///
/// Clones share the tree and the chain head. Open at most one store per
/// database and clone it instead: two independently opened stores would
/// assign the same seqs.
#[derive(Clone)]
pub struct AuditStore {
    pub(super) tree: sled::Tree,
    /// The database directory, for messages.
    path: Arc<Path>,
    /// The newest link of the chain. Held while assigning seqs and applying a
    /// batch (appends and retention), so seqs are unique and stored in order
    /// and every record names its predecessor's hash.
    head: Arc<Mutex<ChainHead>>,
    /// Shared by a verification while it walks the tree; retention takes it
    /// exclusively (and skips a round rather than wait), so a walk never sees
    /// the oldest records vanish under it.
    pub(super) walk: Arc<RwLock<()>>,
    /// Whether records may be added (false when opened for reading only).
    writable: bool,
}

impl AuditStore {
    /// Opens (creating if needed) the `audit` tree in `db`, the database in
    /// directory `path`, and recovers the chain head from the newest entry.
    pub fn open(db: &sled::Db, path: &Path) -> Result<Self, AuditError> {
        let tree = db.open_tree(TREE)?;
        let head = match tree.last()? {
            Some((key, value)) => {
                let seq = seq_from_key(&key)?;
                let entry = group::decode_last(&value).map_err(|e| AuditError::HeadUnreadable {
                    seq,
                    source: Box::new(e.into()),
                })?;
                ChainHead {
                    seq,
                    hash: entry.hash(),
                }
            }
            None => ChainHead::default(),
        };
        Ok(Self::new(tree, path, head, true))
    }

    /// Opens the `audit` tree in `db`, the database in directory `path`, to query and verify
    /// it only: the chain head is not recovered (so a damaged newest record does not stop
    /// it), and appending or applying retention fails with [`AuditError::ReadOnly`].
    pub fn open_for_reading(db: &sled::Db, path: &Path) -> Result<Self, AuditError> {
        let tree = db.open_tree(TREE)?;
        Ok(Self::new(tree, path, ChainHead::default(), false))
    }

    fn new(tree: sled::Tree, path: &Path, head: ChainHead, writable: bool) -> Self {
        Self {
            tree,
            path: Arc::from(path),
            head: Arc::new(Mutex::new(head)),
            walk: Arc::new(RwLock::new(())),
            writable,
        }
    }

    /// The database directory the log is in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The newest link: the last seq stored and its hash (the empty head for a store opened
    /// for reading).
    pub fn head(&self) -> ChainHead {
        *self.lock_head()
    }

    /// Stores `(time_ms, event)` pairs as records with consecutive seqs, each
    /// chained to the one before.
    ///
    /// All records are written in one atomic batch, as few values as [`GROUP_MAX`] allows,
    /// and flushed to disk
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
        let last = filter.through_seq.unwrap_or(u64::MAX);
        if first > last {
            return Ok(Vec::new());
        }
        match filter.limit {
            Some(limit) => {
                let newest = self.entries(first, last, true)?;
                let mut records = collect_matching(newest, filter, limit)?;
                records.reverse();
                Ok(records)
            }
            None => collect_matching(self.entries(first, last, false)?, filter, usize::MAX),
        }
    }

    /// The newest `limit` records that `keep` accepts, in seq order, looking at no more than
    /// the newest `scan` records (so a question about recent events stays cheap on a long
    /// log).
    pub fn newest_matching(
        &self,
        limit: usize,
        scan: usize,
        keep: impl Fn(&Record) -> bool,
    ) -> Result<Vec<Record>, AuditError> {
        let mut records = Vec::new();
        for entry in self.entries(0, u64::MAX, true)?.take(scan) {
            if records.len() >= limit {
                break;
            }
            if let Entry::Record(record) = entry? {
                if keep(&record) {
                    records.push(record);
                }
            }
        }
        records.reverse();
        Ok(records)
    }

    /// The chain head, locked: whoever holds it may add to the chain.
    pub(super) fn lock_head(&self) -> MutexGuard<'_, ChainHead> {
        // A poisoned lock is still consistent: the head only advances after
        // its batch has been applied.
        self.head.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The chain head, locked to add to the chain; an error for a store opened for reading.
    pub(super) fn lock_head_to_write(&self) -> Result<MutexGuard<'_, ChainHead>, AuditError> {
        if !self.writable {
            return Err(AuditError::ReadOnly {
                path: self.path.to_path_buf(),
            });
        }
        Ok(self.lock_head())
    }

    /// Chains `batch` onto the head and applies it atomically, without flushing.
    fn apply(&self, batch: Vec<(u64, Event)>) -> Result<Vec<Record>, AuditError> {
        let mut head = self.lock_head_to_write()?;
        let mut next = *head;
        let mut records = Vec::with_capacity(batch.len());
        let mut encoded = Vec::with_capacity(batch.len());
        for (time_ms, event) in batch {
            let (record, bytes) = Record::link_encoded(&next.hash, next.seq + 1, time_ms, event);
            next = ChainHead {
                seq: record.seq,
                hash: record.hash,
            };
            records.push(record);
            encoded.push(bytes);
        }
        let mut writes = sled::Batch::default();
        for (chunk, bytes) in records.chunks(GROUP_MAX).zip(encoded.chunks(GROUP_MAX)) {
            // `chunks` never yields an empty slice.
            if let Some(last) = chunk.last() {
                writes.insert(
                    &seq_key(last.seq),
                    group::join(bytes.iter().map(Vec::as_slice)),
                );
            }
        }
        self.tree.apply_batch(writes)?;
        *head = next;
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
    /// Only events concerning this host: a connection whose host (TLS SNI or
    /// HTTP Host) equals it, ignoring case, or whose destination IP, as a
    /// string, equals it.
    pub host: Option<String>,
    /// Only events naming the secret with this name or id.
    pub secret: Option<String>,
    /// Only records with `time_ms >= since_ms`.
    pub since_ms: Option<u64>,
    /// Only records with `time_ms < until_ms`.
    pub until_ms: Option<u64>,
    /// Only records with `seq > after_seq`.
    pub after_seq: Option<u64>,
    /// Only records with `seq <= through_seq`.
    pub through_seq: Option<u64>,
    /// Only the last `limit` matches.
    pub limit: Option<usize>,
}

impl Filter {
    /// Whether `record` passes every field except `after_seq`, `through_seq`
    /// and `limit`, which [`AuditStore::query`] applies while scanning.
    pub(super) fn matches(&self, record: &Record) -> bool {
        let event = &record.event;
        self.kind.is_none_or(|kind| event.kind() == kind)
            && self
                .sandbox
                .as_deref()
                .is_none_or(|name| event.sandbox() == Some(name))
            && self.host.as_deref().is_none_or(|host| {
                event
                    .host()
                    .is_some_and(|named| named.eq_ignore_ascii_case(host))
                    || event
                        .destination()
                        .is_some_and(|dest| dest.ip().to_string() == host)
            })
            && self
                .secret
                .as_deref()
                .is_none_or(|secret| event.secret().is_some_and(|named| named.is(secret)))
            && self.since_ms.is_none_or(|since| record.time_ms >= since)
            && self.until_ms.is_none_or(|until| record.time_ms < until)
    }
}

/// Name of the sled tree holding the audit log.
pub(super) const TREE: &str = "audit";

/// Keeps the records from `entries` matching `filter`, stopping after `max` matches.
/// Retention anchors are skipped.
fn collect_matching(
    entries: impl Iterator<Item = Result<Entry, AuditError>>,
    filter: &Filter,
    max: usize,
) -> Result<Vec<Record>, AuditError> {
    let mut records = Vec::new();
    for entry in entries {
        if records.len() >= max {
            break;
        }
        if let Entry::Record(record) = entry? {
            if filter.matches(&record) {
                records.push(record);
            }
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::thread;

    use super::*;
    use crate::audit::test_support::open;
    use crate::audit::{Anchor, ConnProtocol, Connection, Hash, SandboxChange, Verdict};

    fn connection(sandbox: Option<&str>, destination: Option<&str>) -> Event {
        connection_to(sandbox, destination, None)
    }

    fn connection_to(
        sandbox: Option<&str>,
        destination: Option<&str>,
        host: Option<&str>,
    ) -> Event {
        Event::Connection(Connection {
            sandbox: sandbox.map(str::to_owned),
            cgroup_id: 7,
            pid: 42,
            uid: 1000,
            gid: 1000,
            comm: "curl".into(),
            client: None,
            destination: destination.map(|d| d.parse::<SocketAddr>().unwrap()),
            host: host.map(str::to_owned),
            protocol: ConnProtocol::Tcp,
            rule: None,
            verdict: Verdict::Allowed,
            reason: "relayed".into(),
            count: 1,
        })
    }

    fn attached(name: &str) -> Event {
        Event::SandboxAttached(SandboxChange {
            name: name.into(),
            cgroup: format!("/sys/fs/cgroup/{name}"),
            cgroup_id: 7,
            container: None,
        })
    }

    fn detached(name: &str) -> Event {
        Event::SandboxDetached(SandboxChange {
            name: name.into(),
            cgroup: format!("/sys/fs/cgroup/{name}"),
            cgroup_id: 7,
            container: None,
        })
    }

    fn seqs(records: &[Record]) -> Vec<u64> {
        records.iter().map(|r| r.seq).collect()
    }

    /// Seqs 1..=6 with time_ms 100, 200, ..., 600.
    /// Appended as three group commits, so the values hold seqs 1-2, 3-5 and 6.
    fn populated(dir: &tempfile::TempDir) -> (sled::Db, AuditStore) {
        let (db, store) = open(dir);
        let commits = [
            vec![
                (100, attached("a")),
                (
                    200,
                    connection_to(Some("a"), Some("192.0.2.1:443"), Some("api.example.test")),
                ),
            ],
            vec![
                (300, connection(Some("b"), Some("192.0.2.1:80"))),
                (400, connection(Some("a"), Some("[2001:db8::1]:443"))),
                (500, connection(None, None)),
            ],
            vec![(600, detached("a"))],
        ];
        for commit in commits {
            store.append(commit).unwrap();
        }
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
        assert_eq!(first[0].prev_hash, Hash::GENESIS);
        assert_eq!(first[1].prev_hash, first[0].hash);
        assert_eq!(second[0].prev_hash, first[1].hash);
        assert_eq!(
            store.head(),
            ChainHead {
                seq: 3,
                hash: second[0].hash
            }
        );
        assert!(store.append(Vec::new()).unwrap().is_empty());
        let stored = store.query(&Filter::default()).unwrap();
        assert_eq!(stored, [first, second].concat());
    }

    #[test]
    fn a_commit_is_stored_as_values_of_at_most_group_max_records() {
        let dir = tempfile::tempdir().unwrap();
        let (db, store) = open(&dir);
        let n = 2 * GROUP_MAX as u64 + 22;
        let records = store
            .append((1..=n).map(|t| (t, attached("a"))).collect())
            .unwrap();
        let tree = db.open_tree(TREE).unwrap();
        let keys: Vec<u64> = tree
            .iter()
            .map(|entry| seq_from_key(&entry.unwrap().0).unwrap())
            .collect();
        let max = GROUP_MAX as u64;
        assert_eq!(keys, [max, 2 * max, n]);
        assert_eq!(query(&store, Filter::default()), seqs(&records));
        let window = |after, through, limit| {
            query(
                &store,
                Filter {
                    after_seq: Some(after),
                    through_seq: Some(through),
                    limit,
                    ..Filter::default()
                },
            )
        };
        // Windows that start and end inside values and cross their boundaries.
        assert_eq!(
            window(max - 3, max + 2, None),
            [max - 2, max - 1, max, max + 1, max + 2]
        );
        assert_eq!(
            window(0, 2 * max + 1, Some(3)),
            [2 * max - 1, 2 * max, 2 * max + 1]
        );
        assert_eq!(window(n - 1, u64::MAX, Some(10)), [n]);
        let newest = store.newest_matching(2, 5, |_| true).unwrap();
        assert_eq!(seqs(&newest), [n - 1, n]);
        for newest_first in [false, true] {
            assert_eq!(store.entries(n, 1, newest_first).unwrap().count(), 0);
            let one: Vec<u64> = store
                .entries(max + 1, max + 1, newest_first)
                .unwrap()
                .map(|entry| entry.unwrap().seq())
                .collect();
            assert_eq!(one, [max + 1]);
        }
        drop(store);
        let store = AuditStore::open(&db, dir.path()).unwrap();
        assert_eq!(
            store.head(),
            ChainHead {
                seq: n,
                hash: records[records.len() - 1].hash
            }
        );
        assert_eq!(
            seqs(&store.append(vec![(0, detached("a"))]).unwrap()),
            [n + 1]
        );
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
        assert_eq!(store.head().hash, before[4].hash);
        let after = store.append(vec![(9, detached("a"))]).unwrap();
        assert_eq!(seqs(&after), [6]);
        assert_eq!(after[0].prev_hash, before[4].hash);
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
        assert_eq!(by_host("api.example.test"), [2]);
        assert_eq!(by_host("API.Example.Test"), [2]);
        assert!(by_host("example.test").is_empty());
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
    fn filter_by_secret_matches_no_record_that_names_none() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = populated(&dir);
        let filter = Filter {
            secret: Some("a".into()),
            ..Filter::default()
        };
        assert!(query(&store, filter).is_empty());
    }

    #[test]
    fn filter_through_seq() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = populated(&dir);
        let window = |after, through| {
            query(
                &store,
                Filter {
                    after_seq: after,
                    through_seq: Some(through),
                    ..Filter::default()
                },
            )
        };
        assert_eq!(window(None, 3), [1, 2, 3]);
        assert_eq!(window(Some(2), 4), [3, 4]);
        assert!(window(Some(4), 4).is_empty());
        assert!(window(Some(5), 2).is_empty());
        assert_eq!(window(None, u64::MAX), [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn queries_skip_anchors() {
        let dir = tempfile::tempdir().unwrap();
        let (db, store) = populated(&dir);
        let anchor = Anchor {
            seq: 2,
            hash: Hash([9; 32]),
        };
        // In place of the value holding records 1 and 2.
        db.open_tree(TREE)
            .unwrap()
            .insert(seq_key(2), anchor.encode())
            .unwrap();
        assert_eq!(query(&store, Filter::default()), [3, 4, 5, 6]);
        let newest_first = Filter {
            limit: Some(10),
            ..Filter::default()
        };
        assert_eq!(query(&store, newest_first), [3, 4, 5, 6]);
    }

    #[test]
    fn an_anchor_alone_is_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _store) = open(&dir);
        let anchor = Anchor {
            seq: 41,
            hash: Hash([4; 32]),
        };
        db.open_tree(TREE)
            .unwrap()
            .insert(seq_key(41), anchor.encode())
            .unwrap();
        let store = AuditStore::open(&db, dir.path()).unwrap();
        assert_eq!(
            store.head(),
            ChainHead {
                seq: 41,
                hash: anchor.hash
            }
        );
        let next = store.append(vec![(1, attached("a"))]).unwrap();
        assert_eq!(next[0].seq, 42);
        assert_eq!(next[0].prev_hash, anchor.hash);
    }

    #[test]
    fn a_store_opened_for_reading_reads_but_does_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _store) = populated(&dir);
        db.open_tree(TREE)
            .unwrap()
            .insert(seq_key(6), &b"not json"[..])
            .unwrap();
        let reader = AuditStore::open_for_reading(&db, dir.path()).unwrap();
        let filter = Filter {
            through_seq: Some(5),
            ..Filter::default()
        };
        assert_eq!(query(&reader, filter), [1, 2, 3, 4, 5]);
        assert!(matches!(
            reader.append(vec![(1, attached("a"))]),
            Err(AuditError::ReadOnly { .. })
        ));
    }

    #[test]
    fn an_unreadable_newest_record_is_reported_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _store) = populated(&dir);
        db.open_tree(TREE)
            .unwrap()
            .insert(seq_key(6), &b"not json"[..])
            .unwrap();
        let err = AuditStore::open(&db, dir.path()).err().unwrap();
        assert!(matches!(err, AuditError::HeadUnreadable { seq: 6, .. }));
        assert!(err.to_string().contains("veil audit verify"), "{err}");
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
            limit: Some(1),
            ..Filter::default()
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
