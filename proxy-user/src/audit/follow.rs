//! Following the audit log: the matching records already committed, then each new one as
//! the writer commits it, none skipped and none twice.
//!
//! A follower subscribes to the writer's feed before it reads the committed head, so every
//! record after that head reaches it through the feed; everything up to the head is in the
//! store. A follower that falls more than the feed's capacity behind re-reads what it missed
//! from the store, by seq.

use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};

use super::{AuditError, AuditHandle, AuditStore, Filter, Record};

/// A follower of the audit log's matching records.
pub struct Follow {
    store: AuditStore,
    audit: AuditHandle,
    feed: broadcast::Receiver<Arc<Record>>,
    /// The filter, without `limit`: that only applies to the records already there.
    filter: Filter,
    /// Every record up to this seq has been considered.
    cursor: u64,
}

impl Follow {
    /// Starts following the records of `store`, which `audit` writes, that match `filter`.
    /// Returns the matching records committed so far (the last `filter.limit` of them, if
    /// set) and the follower that yields the rest.
    pub fn start(
        store: &AuditStore,
        audit: &AuditHandle,
        filter: Filter,
    ) -> Result<(Vec<Record>, Self), AuditError> {
        let feed = audit.subscribe().ok_or(AuditError::WriterGone)?;
        let committed = audit.committed().seq;
        let existing = store.query(&Filter {
            through_seq: Some(committed),
            ..filter.clone()
        })?;
        // Records up to `after_seq` are not wanted, even when they are still to come.
        let cursor = committed.max(filter.after_seq.unwrap_or(0));
        let follow = Self {
            store: store.clone(),
            audit: audit.clone(),
            feed,
            filter: Filter {
                limit: None,
                ..filter
            },
            cursor,
        };
        Ok((existing, follow))
    }

    /// Waits for the next committed records that match, in seq order; `None` once the writer
    /// has stopped.
    pub async fn next(&mut self) -> Option<Result<Vec<Record>, AuditError>> {
        loop {
            match self.feed.recv().await {
                Ok(record) => {
                    if record.seq <= self.cursor {
                        continue;
                    }
                    self.cursor = record.seq;
                    if self.filter.matches(&record) {
                        return Some(Ok(vec![Arc::unwrap_or_clone(record)]));
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    log::debug!("audit follower fell {missed} records behind; re-reading them");
                    match self.catch_up() {
                        Ok(records) if records.is_empty() => {}
                        outcome => return Some(outcome),
                    }
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Reads the matching records after the cursor up to the committed head from the store.
    fn catch_up(&mut self) -> Result<Vec<Record>, AuditError> {
        let head = self.audit.committed().seq;
        let missed = self.store.query(&Filter {
            after_seq: Some(self.cursor),
            through_seq: Some(head),
            ..self.filter.clone()
        })?;
        self.cursor = self.cursor.max(head);
        Ok(missed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::test_support::open;
    use crate::audit::{AuditWriter, Event, EventKind, SandboxChange};

    fn attached(name: &str) -> Event {
        Event::SandboxAttached(SandboxChange {
            name: name.into(),
            cgroup: format!("/sys/fs/cgroup/{name}"),
            cgroup_id: 1,
            container: None,
        })
    }

    fn detached(name: &str) -> Event {
        Event::SandboxDetached(SandboxChange {
            name: name.into(),
            cgroup: format!("/sys/fs/cgroup/{name}"),
            cgroup_id: 1,
            container: None,
        })
    }

    fn seqs(records: &[Record]) -> Vec<u64> {
        records.iter().map(|r| r.seq).collect()
    }

    /// Collects followed records until `n` have arrived.
    async fn take(follow: &mut Follow, n: usize) -> Vec<u64> {
        let mut got = Vec::new();
        while got.len() < n {
            let batch = follow.next().await.unwrap().unwrap();
            got.extend(seqs(&batch));
        }
        got
    }

    #[tokio::test]
    async fn existing_matches_first_then_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = open(&dir);
        let (audit, writer) = AuditWriter::spawn(store.clone());
        for i in 0..5 {
            audit.record(attached(&i.to_string()));
            audit.record(detached(&i.to_string()));
        }
        audit.record_durable(attached("x")).await.unwrap();
        let filter = Filter {
            kind: Some(EventKind::SandboxDetached),
            limit: Some(2),
            ..Filter::default()
        };
        let (existing, mut follow) = Follow::start(&store, &audit, filter).unwrap();
        assert_eq!(seqs(&existing), [8, 10]);
        audit.record(attached("y"));
        audit.record(detached("y"));
        audit.record(detached("z"));
        assert_eq!(take(&mut follow, 2).await, [13, 14]);
        writer.shutdown().await;
        assert!(follow.next().await.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lagging_follower_misses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = open(&dir);
        let (audit, writer) = AuditWriter::spawn(store.clone());
        let (existing, mut follow) = Follow::start(&store, &audit, Filter::default()).unwrap();
        assert!(existing.is_empty());
        // Far more than the feed holds, while the follower does not read.
        let total = crate::audit::writer::FEED_CAPACITY as u64 * 3;
        for i in 0..total {
            audit.record(attached(&i.to_string()));
        }
        audit.record_durable(attached("last")).await.unwrap();
        let got = take(&mut follow, total as usize + 1).await;
        assert_eq!(got, (1..=total + 1).collect::<Vec<_>>());
        writer.shutdown().await;
    }

    #[tokio::test]
    async fn records_committed_before_the_start_are_not_repeated() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = open(&dir);
        let (audit, writer) = AuditWriter::spawn(store.clone());
        let (_, mut early) = Follow::start(&store, &audit, Filter::default()).unwrap();
        audit.record_durable(attached("a")).await.unwrap();
        let (existing, mut late) = Follow::start(&store, &audit, Filter::default()).unwrap();
        assert_eq!(seqs(&existing), [1]);
        audit.record_durable(attached("b")).await.unwrap();
        assert_eq!(take(&mut early, 2).await, [1, 2]);
        assert_eq!(take(&mut late, 1).await, [2]);
        writer.shutdown().await;
    }

    #[tokio::test]
    async fn after_seq_holds_for_records_still_to_come() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = open(&dir);
        let (audit, writer) = AuditWriter::spawn(store.clone());
        audit.record_durable(attached("a")).await.unwrap();
        let filter = Filter {
            after_seq: Some(3),
            ..Filter::default()
        };
        let (existing, mut follow) = Follow::start(&store, &audit, filter).unwrap();
        assert!(existing.is_empty());
        for name in ["b", "c", "d"] {
            audit.record(attached(name));
        }
        assert_eq!(take(&mut follow, 1).await, [4]);
        writer.shutdown().await;
    }

    #[tokio::test]
    async fn following_a_stopped_writer_fails() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = open(&dir);
        let (audit, writer) = AuditWriter::spawn(store.clone());
        writer.shutdown().await;
        assert!(matches!(
            Follow::start(&store, &audit, Filter::default()),
            Err(AuditError::WriterGone)
        ));
    }
}
