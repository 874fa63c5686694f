//! Retention: dropping the oldest records by age and by count.
//!
//! Only a prefix of the log is ever dropped, so the chain stays whole: the last dropped
//! record's seq and hash stay behind as an [`Anchor`] under its seq, and the first record
//! that remains names that hash as its `prev_hash`. Each round that drops anything appends a
//! `retention` record saying how many and through which seq, in the same atomic batch. A
//! value holding both dropped and kept records (one group commit's) is rewritten with only
//! the kept ones' stored bytes, under the same key.

use std::sync::TryLockError;
use std::time::Duration;

use super::{AuditError, AuditHandle, AuditStore, Event, Record};
use veil_core::audit::{group, seq_from_key, seq_key, Retention};
use veil_core::audit::{Anchor, ChainHead, Entry, Hash};

/// How much of the audit log to keep, and how often to enforce it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Drop records older than this.
    pub max_age: Option<Duration>,
    /// Keep at most this many records (the `retention` record included); at least 1.
    pub max_records: Option<u64>,
    /// How often the daemon applies the policy (it also applies it at start).
    pub every: Duration,
}

impl Default for RetentionPolicy {
    /// Keep everything (`--audit-max-age off --audit-max-records off`); check every minute.
    fn default() -> Self {
        Self {
            max_age: None,
            max_records: None,
            every: Duration::from_secs(60),
        }
    }
}

/// How long records are kept unless `--audit-max-age` says otherwise: 90 days.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// How many records are kept unless `--audit-max-records` says otherwise: five million,
/// about 2.5 GB at the 400 to 500 bytes a record takes.
pub const DEFAULT_MAX_RECORDS: u64 = 5_000_000;

impl RetentionPolicy {
    /// What veil keeps when not told otherwise: [`DEFAULT_MAX_AGE`] and
    /// [`DEFAULT_MAX_RECORDS`], checked every minute.
    pub fn standard() -> Self {
        Self {
            max_age: Some(DEFAULT_MAX_AGE),
            max_records: Some(DEFAULT_MAX_RECORDS),
            ..Self::default()
        }
    }

    /// Whether the policy keeps everything.
    pub fn keeps_everything(&self) -> bool {
        self.max_age.is_none() && self.max_records.is_none()
    }
}

impl AuditStore {
    /// Drops the oldest records that `policy` does not keep at time `now_ms`: those older than
    /// `max_age`, and as many more as it takes for the log to hold at most `max_records`
    /// records once the `retention` record is appended. Returns that record, or `None` when
    /// nothing was due (or a verification is walking the log; the next round catches up).
    ///
    /// The count limit only acts once the log holds more than `max_records` records, so a
    /// log at its limit is left alone.
    pub fn retain(
        &self,
        policy: &RetentionPolicy,
        now_ms: u64,
    ) -> Result<Option<Record>, AuditError> {
        self.retain_in_chunks(policy, now_ms, CHUNK)
    }

    /// [`AuditStore::retain`], removing at most `chunk` records per atomic batch.
    fn retain_in_chunks(
        &self,
        policy: &RetentionPolicy,
        now_ms: u64,
        chunk: u64,
    ) -> Result<Option<Record>, AuditError> {
        if policy.keeps_everything() {
            return Ok(None);
        }
        let _walk = match self.walk.try_write() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                log::info!("audit retention: a verification is walking the log; next round");
                return Ok(None);
            }
        };
        let mut head = self.lock_head_to_write()?;
        let Some(front) = self.front()? else {
            return Ok(None);
        };
        let Some(through) = self.due(policy, now_ms, &front, head.seq)? else {
            return Ok(None);
        };
        let event = Event::Retention(Retention {
            dropped: through - front.first_record + 1,
            through_seq: through,
            max_age_ms: policy
                .max_age
                .map(|age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
            max_records: policy.max_records,
        });
        let record = Record::link(&head.hash, head.seq + 1, now_ms, event);
        let mut from = front.first_seq;
        loop {
            let end = through.min(from.saturating_add(chunk));
            let mut writes = sled::Batch::default();
            for seq in from..end {
                writes.remove(&seq_key(seq));
            }
            let anchor = Anchor {
                seq: end,
                hash: self.cut_after(end, &mut writes)?,
            };
            writes.insert(&seq_key(end), anchor.encode());
            if end == through {
                writes.insert(&seq_key(record.seq), record.encode());
            }
            self.tree.apply_batch(writes)?;
            if end == through {
                break;
            }
            from = end;
        }
        self.tree.flush()?;
        *head = ChainHead {
            seq: record.seq,
            hash: record.hash,
        };
        Ok(Some(record))
    }

    /// Where the log starts: its first seq (an anchor's or a record's) and the first record's
    /// seq; `None` when it holds no record.
    fn front(&self) -> Result<Option<Front>, AuditError> {
        let Some(first) = self.entries(0, u64::MAX, false)?.next() else {
            return Ok(None);
        };
        let (first_seq, first_record) = match first? {
            Entry::Anchor(anchor) => (anchor.seq, anchor.seq + 1),
            Entry::Record(record) => (record.seq, record.seq),
        };
        Ok(Some(Front {
            first_seq,
            first_record,
        }))
    }

    /// The hash stored in the entry at `end`, read from the value holding it; adds to
    /// `writes` what keeps the records after `end` in that value: the value rewritten with
    /// only their stored bytes, under its own key. A value that ends at `end` is left for the
    /// anchor to replace.
    fn cut_after(&self, end: u64, writes: &mut sled::Batch) -> Result<Hash, AuditError> {
        let Some((key, value)) = self.tree.range(seq_key(end)..).next().transpose()? else {
            return Err(AuditError::Missing { seq: end });
        };
        let mut hash = None;
        let mut kept = Vec::new();
        for part in group::parts(&value) {
            let entry = Entry::decode(part)?;
            if entry.seq() == end {
                hash = Some(entry.hash());
            } else if entry.seq() > end {
                kept.push(part);
            }
        }
        let hash = hash.ok_or(AuditError::Missing { seq: end })?;
        if seq_from_key(&key)? != end {
            writes.insert(key, group::join(kept));
        }
        Ok(hash)
    }

    /// The seq of the last record `policy` drops, if any.
    fn due(
        &self,
        policy: &RetentionPolicy,
        now_ms: u64,
        front: &Front,
        last: u64,
    ) -> Result<Option<u64>, AuditError> {
        if last < front.first_record {
            return Ok(None);
        }
        let count = last - front.first_record + 1;
        // Make room for the retention record: max - 1 old records stay.
        let by_count = policy
            .max_records
            .filter(|&max| count > max)
            .map(|max| last - max.saturating_sub(1));
        let by_age = match policy.max_age {
            Some(age) => {
                let age_ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
                self.last_older_than(now_ms.saturating_sub(age_ms), front.first_record, last)?
            }
            None => None,
        };
        Ok(by_count.max(by_age))
    }

    /// The seq of the last record of the run of records from `first` on whose time is before
    /// `cutoff_ms`.
    fn last_older_than(
        &self,
        cutoff_ms: u64,
        first: u64,
        last: u64,
    ) -> Result<Option<u64>, AuditError> {
        let mut older = None;
        for entry in self.entries(first, last, false)? {
            match entry? {
                Entry::Record(record) if record.time_ms < cutoff_ms => older = Some(record.seq),
                _ => break,
            }
        }
        Ok(older)
    }
}

/// Applies `policy` through the writer at once and then every `policy.every`, until the
/// writer is gone. Each drop is logged.
pub async fn enforce_retention(audit: AuditHandle, policy: RetentionPolicy) {
    let mut ticks = tokio::time::interval(policy.every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match audit.retain(policy).await {
            Ok(Some(record)) => {
                if let Event::Retention(r) = &record.event {
                    log::info!(
                        "audit retention dropped {} records (through seq {})",
                        r.dropped,
                        r.through_seq
                    );
                }
            }
            Ok(None) => {}
            Err(AuditError::WriterGone) => return,
            Err(e) => log::error!("audit retention: {e}"),
        }
    }
}

/// Most records removed in one atomic batch; a larger drop is applied in several, each
/// leaving a valid anchor.
const CHUNK: u64 = 50_000;

/// The start of the log.
struct Front {
    /// The first seq: the anchor's, or the first record's when there is no anchor.
    first_seq: u64,
    /// The first record's seq.
    first_record: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::test_support::open;
    use crate::audit::{Filter, SandboxChange};

    fn attached(name: &str) -> Event {
        Event::SandboxAttached(SandboxChange {
            name: name.into(),
            cgroup: format!("/sys/fs/cgroup/{name}"),
            cgroup_id: 1,
            container: None,
        })
    }

    /// Records 1..=n at times 1000, 2000, ...
    fn filled(dir: &tempfile::TempDir, n: u64) -> (sled::Db, AuditStore) {
        let (db, store) = open(dir);
        store
            .append((1..=n).map(|i| (i * 1000, attached("a"))).collect())
            .unwrap();
        (db, store)
    }

    fn count(n: u64) -> RetentionPolicy {
        RetentionPolicy {
            max_records: Some(n),
            ..RetentionPolicy::default()
        }
    }

    fn age(ms: u64) -> RetentionPolicy {
        RetentionPolicy {
            max_age: Some(Duration::from_millis(ms)),
            ..RetentionPolicy::default()
        }
    }

    fn seqs(store: &AuditStore) -> Vec<u64> {
        store
            .query(&Filter::default())
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect()
    }

    fn retention(record: &Record) -> &Retention {
        match &record.event {
            Event::Retention(r) => r,
            other => panic!("not a retention record: {other:?}"),
        }
    }

    #[test]
    fn by_count_keeps_the_newest_and_records_the_drop() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = filled(&dir, 10);
        let record = store.retain(&count(4), 99_000).unwrap().unwrap();
        assert_eq!(record.seq, 11);
        assert_eq!(record.time_ms, 99_000);
        assert_eq!(
            retention(&record),
            &Retention {
                dropped: 7,
                through_seq: 7,
                max_age_ms: None,
                max_records: Some(4),
            }
        );
        assert_eq!(seqs(&store), [8, 9, 10, 11]);
        assert_eq!(store.head().seq, 11);
        assert!(store.verify(None).unwrap().broken.is_none());
        // At its limit the log is left alone.
        assert_eq!(store.retain(&count(4), 99_000).unwrap(), None);
        store.append(vec![(100_000, attached("b"))]).unwrap();
        let again = store.retain(&count(4), 101_000).unwrap().unwrap();
        assert_eq!(retention(&again).dropped, 2);
        assert_eq!(seqs(&store), [10, 11, 12, 13]);
        let verified = store.verify(None).unwrap();
        assert!(verified.broken.is_none(), "{verified:?}");
        assert_eq!(verified.anchor_seq, Some(9));
        assert_eq!(verified.verified, 4);
    }

    #[test]
    fn by_age_drops_the_old_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = filled(&dir, 10);
        // Now is 10_500, so records before 4_500 (seqs 1..=4) are older than 6 s.
        let record = store.retain(&age(6000), 10_500).unwrap().unwrap();
        assert_eq!(retention(&record).dropped, 4);
        assert_eq!(retention(&record).through_seq, 4);
        assert_eq!(retention(&record).max_age_ms, Some(6000));
        assert_eq!(seqs(&store), [5, 6, 7, 8, 9, 10, 11]);
        assert!(store.verify(None).unwrap().broken.is_none());
        assert_eq!(store.retain(&age(6000), 10_500).unwrap(), None);
    }

    #[test]
    fn the_stricter_limit_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = filled(&dir, 10);
        let both = RetentionPolicy {
            max_age: Some(Duration::from_secs(8)),
            max_records: Some(5),
            ..RetentionPolicy::default()
        };
        let record = store.retain(&both, 10_500).unwrap().unwrap();
        assert_eq!(retention(&record).through_seq, 6);
        let both = RetentionPolicy {
            max_age: Some(Duration::from_secs(1)),
            max_records: Some(100),
            ..RetentionPolicy::default()
        };
        // Records 7..=9 are older than a second; 10 and the first retention record are not.
        let record = store.retain(&both, 10_500).unwrap().unwrap();
        assert_eq!(retention(&record).through_seq, 9);
        assert_eq!(seqs(&store), [10, 11, 12]);
        assert!(store.verify(None).unwrap().broken.is_none());
    }

    #[test]
    fn a_limit_of_one_keeps_only_the_retention_record() {
        let dir = tempfile::tempdir().unwrap();
        let (db, store) = filled(&dir, 3);
        store.retain(&count(1), 5000).unwrap().unwrap();
        assert_eq!(seqs(&store), [4]);
        assert_eq!(store.retain(&count(1), 5000).unwrap(), None);
        drop(store);
        // The chain continues after a reopen.
        let store = AuditStore::open(&db, dir.path()).unwrap();
        assert_eq!(store.append(vec![(6000, attached("b"))]).unwrap()[0].seq, 5);
        assert!(store.verify(None).unwrap().broken.is_none());
    }

    #[test]
    fn nothing_to_drop_or_nothing_stored_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = open(&dir);
        assert_eq!(store.retain(&count(1), 1).unwrap(), None);
        assert_eq!(
            store.retain(&RetentionPolicy::default(), u64::MAX).unwrap(),
            None
        );
        store.append(vec![(5000, attached("a"))]).unwrap();
        assert_eq!(store.retain(&age(10_000), 6000).unwrap(), None);
        assert_eq!(store.retain(&count(2), 6000).unwrap(), None);
    }

    #[test]
    fn dropping_part_of_a_group_commit_keeps_the_rest_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let (db, store) = filled(&dir, 10);
        let tree = db.open_tree(super::super::store::TREE).unwrap();
        let written = tree.get(seq_key(10)).unwrap().unwrap();
        let record = store.retain(&count(4), 11_000).unwrap().unwrap();
        assert_eq!(retention(&record).through_seq, 7);
        let kept = tree.get(seq_key(10)).unwrap().unwrap();
        assert_eq!(kept.as_ref(), group::join(group::parts(&written).skip(7)));
        assert_eq!(seqs(&store), [8, 9, 10, 11]);
        let verified = store.verify(Some(store.head())).unwrap();
        assert!(verified.broken.is_none(), "{verified:?}");
        assert_eq!(verified.anchor_seq, Some(7));
        drop(store);
        let store = AuditStore::open(&db, dir.path()).unwrap();
        assert_eq!(store.head().seq, 11);
    }

    #[test]
    fn large_drops_go_in_chunks_and_still_verify() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = open(&dir);
        let chunk = 100;
        let n = chunk * 2 + 10;
        store
            .append((1..=n).map(|i| (i, attached("a"))).collect())
            .unwrap();
        let record = store
            .retain_in_chunks(&count(5), n + 1, chunk)
            .unwrap()
            .unwrap();
        assert_eq!(retention(&record).dropped, n - 4);
        assert_eq!(seqs(&store), [n - 3, n - 2, n - 1, n, n + 1]);
        let verified = store.verify(None).unwrap();
        assert!(verified.broken.is_none(), "{verified:?}");
        assert_eq!(verified.anchor_seq, Some(n - 4));
        // The anchor, the value holding the kept records (part of the last group commit's,
        // rewritten), and the retention record.
        assert_eq!(store.tree.len(), 3);
    }

    #[test]
    fn a_running_verification_defers_retention() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = filled(&dir, 5);
        let walking = store.walk.read().unwrap();
        assert_eq!(store.retain(&count(2), 9000).unwrap(), None);
        drop(walking);
        assert!(store.retain(&count(2), 9000).unwrap().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn enforce_applies_at_once_and_then_periodically() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = filled(&dir, 5);
        let (audit, writer) = crate::audit::AuditWriter::spawn(store.clone());
        let policy = RetentionPolicy {
            every: Duration::from_secs(30),
            ..count(3)
        };
        let task = tokio::spawn(enforce_retention(audit.clone(), policy));
        let kinds = |store: &AuditStore| -> Vec<String> {
            store
                .query(&Filter::default())
                .unwrap()
                .iter()
                .map(|r| r.event.kind().to_string())
                .collect()
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(seqs(&store), [4, 5, 6]);
        for _ in 0..4 {
            audit.record(attached("b"));
        }
        audit.record_durable(attached("c")).await.unwrap();
        assert_eq!(seqs(&store).len(), 8);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(seqs(&store), [10, 11, 12]);
        assert_eq!(
            kinds(&store),
            ["sandbox_attached", "sandbox_attached", "retention"]
        );
        task.abort();
        writer.shutdown().await;
    }
}
