//! Verifying the hash chain: walking the log in seq order and reporting the first record that
//! was changed, removed or reordered.

use std::fmt;
use std::sync::PoisonError;

use serde::{Deserialize, Serialize};

use super::{AuditError, AuditStore, Record};
use veil_core::audit::{group, seq_from_key};
use veil_core::audit::{ChainHead, Entry, Hash};

/// The outcome of walking the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// How many records were found intact (before the break, if there is one).
    pub verified: u64,
    /// The oldest intact record's seq.
    pub first_seq: Option<u64>,
    /// The newest intact record's seq.
    pub last_seq: Option<u64>,
    /// The retention anchor's seq, when older records were dropped by retention.
    pub anchor_seq: Option<u64>,
    /// The newest intact link: keep its hash elsewhere to detect a rewrite of the whole log
    /// later.
    pub head: ChainHead,
    /// The first problem found; `None` when the log is intact.
    pub broken: Option<ChainBreak>,
}

/// The first record that is not as veil wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainBreak {
    /// The record's seq.
    pub seq: u64,
    /// What happened to it.
    pub kind: BreakKind,
    /// How that shows, for a person to read.
    pub detail: String,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {} was {}: {}", self.seq, self.kind, self.detail)
    }
}

/// What happened to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// Its contents differ from what was hashed, or from what its successor names.
    Changed,
    /// It is not there.
    Removed,
    /// It is stored under another record's seq.
    Reordered,
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Changed => "changed",
            Self::Removed => "removed",
            Self::Reordered => "reordered",
        })
    }
}

impl AuditStore {
    /// Walks the whole log and checks that every record is stored where its seq belongs (in
    /// the value under its own seq, or before the newest record of that value), that the seqs
    /// have no gap, that each record's hash matches its contents and its stored
    /// bytes are the encoding veil wrote, and that each names its predecessor's hash (the
    /// first one the genesis hash, or the retention anchor's).
    ///
    /// `witness` is the head the running daemon committed last, if there is one: the log must
    /// reach it, with the same hash, which also catches newest records cut off and a chain
    /// rewritten with recomputed hashes. Without a daemon pass `None`.
    ///
    /// Errors are failures to read the database; a damaged log is a [`ChainBreak`].
    pub fn verify(&self, witness: Option<ChainHead>) -> Result<Verification, AuditError> {
        let _walk = self.walk.read().unwrap_or_else(PoisonError::into_inner);
        let mut walk = Walk::default();
        for entry in self.tree.iter() {
            let (key, value) = entry?;
            if let Err(broken) = walk.step(&key, &value, witness) {
                return Ok(walk.report(Some(broken)));
            }
        }
        let broken = witness.and_then(|witness| walk.reaches(witness).err());
        Ok(walk.report(broken))
    }
}

/// Where an entry is stored.
#[derive(Clone, Copy)]
enum Place<'a> {
    /// Newest in the value under this key: its seq is the key.
    Key(u64),
    /// Before the newest in the value under `key`, with the `later` entries of that value
    /// after it: its seq is below the key.
    Before { key: u64, later: &'a [&'a [u8]] },
}

/// The state of a walk along the chain.
#[derive(Default)]
struct Walk {
    /// The last link checked (a record, or the anchor).
    prev: Option<ChainHead>,
    /// Whether `prev` is the anchor.
    prev_is_anchor: bool,
    verified: u64,
    first_seq: Option<u64>,
    anchor_seq: Option<u64>,
}

impl Walk {
    /// Checks the entries stored under `key`: one group commit's records, or the anchor.
    fn step(
        &mut self,
        key: &[u8],
        value: &[u8],
        witness: Option<ChainHead>,
    ) -> Result<(), ChainBreak> {
        let key_seq = seq_from_key(key).map_err(|_| ChainBreak {
            seq: self.expected(),
            kind: BreakKind::Changed,
            detail: format!(
                "an entry with a {}-byte key, which is not a seq, is in the audit tree",
                key.len()
            ),
        })?;
        let parts: Vec<&[u8]> = group::parts(value).collect();
        let shared = parts.len() > 1;
        for (i, part) in parts.iter().enumerate() {
            // The newest entry of a value is the one under its key; those before it come
            // after what the walk has seen and before the key.
            let place = match parts.get(i + 1..) {
                Some(later) if !later.is_empty() => Place::Before {
                    key: key_seq,
                    later,
                },
                _ => Place::Key(key_seq),
            };
            self.step_entry(place, part, shared, witness)?;
        }
        Ok(())
    }

    /// The seq the next entry should have.
    fn expected(&self) -> u64 {
        self.prev.map_or(1, |prev| prev.seq + 1)
    }

    /// Checks one entry stored at `place`; `shared` when other entries are in the same value.
    fn step_entry(
        &mut self,
        place: Place<'_>,
        value: &[u8],
        shared: bool,
        witness: Option<ChainHead>,
    ) -> Result<(), ChainBreak> {
        let expected = self.expected();
        let place_seq = match place {
            Place::Key(key) => key,
            Place::Before { .. } => expected,
        };
        let entry = Entry::decode(value).map_err(|e| ChainBreak {
            seq: place_seq,
            kind: BreakKind::Changed,
            detail: format!("what is stored under its seq cannot be read: {e}"),
        })?;
        let fits = match place {
            Place::Key(key) => entry.seq() == key,
            // A later seq here is a gap, unless the one expected comes later in the value.
            Place::Before { key, later } => {
                (expected..key).contains(&entry.seq())
                    && (entry.seq() == expected
                        || !later.iter().any(|part| {
                            Entry::decode(part).is_ok_and(|later| later.seq() == expected)
                        }))
            }
        };
        if !fits {
            return Err(ChainBreak {
                seq: place_seq,
                kind: BreakKind::Reordered,
                detail: format!("record {} is stored in its place", entry.seq()),
            });
        }
        let seq = entry.seq();
        let changed = |detail: String| ChainBreak {
            seq,
            kind: BreakKind::Changed,
            detail,
        };
        match entry {
            Entry::Anchor(_) if shared => {
                return Err(changed(
                    "a retention anchor shares its value with records; anchors stand alone"
                        .to_owned(),
                ));
            }
            Entry::Anchor(anchor) => {
                if let Some(prev) = self.prev {
                    return Err(changed(format!(
                        "a retention anchor stands in its place after record {}; anchors only \
                         come before the oldest record",
                        prev.seq
                    )));
                }
                self.anchor_seq = Some(anchor.seq);
                self.prev_is_anchor = true;
                self.link(ChainHead {
                    seq,
                    hash: anchor.hash,
                });
            }
            Entry::Record(record) => {
                self.check_record(&record, value, expected)?;
                self.verified += 1;
                self.first_seq.get_or_insert(seq);
                self.prev_is_anchor = false;
                self.link(ChainHead {
                    seq,
                    hash: record.hash,
                });
            }
        }
        match witness {
            Some(witness) if witness.seq == seq && witness.hash != self.head().hash => {
                Err(changed(format!(
                    "it is not the record veil wrote: the running daemon committed it with \
                     hash {}, the log holds {} (the chain was rewritten)",
                    witness.hash,
                    self.head().hash
                )))
            }
            _ => Ok(()),
        }
    }

    /// Checks a record found where seq `expected` should be.
    fn check_record(
        &self,
        record: &Record,
        stored: &[u8],
        expected: u64,
    ) -> Result<(), ChainBreak> {
        if record.seq > expected {
            let missing = if record.seq - expected == 1 {
                format!("the next record stored is {}", record.seq)
            } else {
                format!("records {expected} to {} are all missing", record.seq - 1)
            };
            let detail = match self.prev {
                Some(_) => missing,
                None => format!("{missing}, and no retention anchor explains the gap"),
            };
            return Err(ChainBreak {
                seq: expected,
                kind: BreakKind::Removed,
                detail,
            });
        }
        let changed = |detail: String| ChainBreak {
            seq: record.seq,
            kind: BreakKind::Changed,
            detail,
        };
        if record.computed_hash() != record.hash {
            return Err(changed("its contents do not match its hash".to_owned()));
        }
        if record.encode() != stored {
            return Err(changed(
                "its stored bytes differ from the encoding veil wrote".to_owned(),
            ));
        }
        let expected_prev = self.prev.map_or(Hash::GENESIS, |prev| prev.hash);
        if record.prev_hash == expected_prev {
            return Ok(());
        }
        match self.prev {
            None => Err(changed(
                "it starts the log but does not name the genesis hash as its predecessor".into(),
            )),
            Some(_) if self.prev_is_anchor => Err(changed(format!(
                "it does not follow the retention anchor at seq {}: its prev_hash is {}, the \
                 anchor holds {expected_prev}",
                record.seq - 1,
                record.prev_hash
            ))),
            Some(prev) => Err(ChainBreak {
                seq: prev.seq,
                kind: BreakKind::Changed,
                detail: format!(
                    "record {} names a different predecessor: its prev_hash is {}, record {}'s \
                     hash is {expected_prev} (record {} was replaced and its hash recomputed, \
                     or record {} was)",
                    record.seq, record.prev_hash, prev.seq, prev.seq, record.seq
                ),
            }),
        }
    }

    /// Moves the walk on to `link`.
    fn link(&mut self, link: ChainHead) {
        self.prev = Some(link);
    }

    /// The newest link checked.
    fn head(&self) -> ChainHead {
        self.prev.unwrap_or_default()
    }

    /// Checks, once the walk is done, that it reached the daemon's `witness`.
    fn reaches(&self, witness: ChainHead) -> Result<(), ChainBreak> {
        let last = self.head().seq;
        if last >= witness.seq {
            return Ok(());
        }
        Err(ChainBreak {
            seq: last + 1,
            kind: BreakKind::Removed,
            detail: format!(
                "the log ends at seq {last}, but the running daemon committed records up to seq \
                 {} (the newest records were cut off)",
                witness.seq
            ),
        })
    }

    /// The report of the walk so far.
    fn report(&self, broken: Option<ChainBreak>) -> Verification {
        let last_seq = match (self.verified, self.prev_is_anchor) {
            (0, _) | (_, true) => None,
            _ => self.prev.map(|prev| prev.seq),
        };
        Verification {
            verified: self.verified,
            first_seq: self.first_seq,
            last_seq,
            anchor_seq: self.anchor_seq,
            head: self.head(),
            broken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::store::TREE;
    use crate::audit::{Anchor, Event, SandboxChange};
    use veil_core::audit::seq_key;

    fn attached(name: &str) -> Event {
        Event::SandboxAttached(SandboxChange {
            name: name.into(),
            cgroup: format!("/sys/fs/cgroup/{name}"),
            cgroup_id: 1,
            container: None,
        })
    }

    /// A store with records 1..=n, each appended on its own (so each in a value of its own,
    /// as before groups), and the raw tree, for tampering.
    fn filled(dir: &tempfile::TempDir, n: u64) -> (sled::Tree, AuditStore, Vec<Record>) {
        let (db, store) = crate::audit::test_support::open(dir);
        let records = (1..=n)
            .flat_map(|i| store.append(vec![(i, attached(&i.to_string()))]).unwrap())
            .collect();
        (db.open_tree(TREE).unwrap(), store, records)
    }

    fn broken(store: &AuditStore) -> ChainBreak {
        let verification = store.verify(None).unwrap();
        match verification.broken {
            Some(broken) => broken,
            None => panic!("not broken: {verification:?}"),
        }
    }

    #[test]
    fn an_intact_log_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (_tree, store, records) = filled(&dir, 5);
        let verification = store.verify(None).unwrap();
        assert_eq!(
            verification,
            Verification {
                verified: 5,
                first_seq: Some(1),
                last_seq: Some(5),
                anchor_seq: None,
                head: ChainHead {
                    seq: 5,
                    hash: records[4].hash
                },
                broken: None,
            }
        );
        let witness = store.head();
        assert!(store.verify(Some(witness)).unwrap().broken.is_none());
    }

    #[test]
    fn an_empty_log_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (_tree, store, _) = filled(&dir, 0);
        let verification = store.verify(None).unwrap();
        assert_eq!(verification.verified, 0);
        assert_eq!(verification.head, ChainHead::default());
        assert!(verification.broken.is_none());
    }

    #[test]
    fn an_edited_record_is_changed() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, store, records) = filled(&dir, 5);
        let mut edited = records[2].clone();
        edited.time_ms += 1;
        tree.insert(seq_key(3), edited.encode()).unwrap();
        let broken = broken(&store);
        assert_eq!((broken.seq, broken.kind), (3, BreakKind::Changed));
        assert!(broken.detail.contains("do not match its hash"), "{broken}");
        let verification = store.verify(None).unwrap();
        assert_eq!(verification.verified, 2);
        assert_eq!(verification.last_seq, Some(2));
    }

    #[test]
    fn reformatted_bytes_are_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, store, records) = filled(&dir, 3);
        let mut spaced = records[1].encode();
        spaced.push(b' ');
        tree.insert(seq_key(2), spaced).unwrap();
        let broken = broken(&store);
        assert_eq!((broken.seq, broken.kind), (2, BreakKind::Changed));
        assert!(broken.detail.contains("stored bytes"), "{broken}");
    }

    #[test]
    fn garbage_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, store, _) = filled(&dir, 3);
        tree.insert(seq_key(2), &b"{\"seq\":2}"[..]).unwrap();
        let broken = broken(&store);
        assert_eq!((broken.seq, broken.kind), (2, BreakKind::Changed));
        assert!(broken.detail.contains("cannot be read"), "{broken}");
    }

    #[test]
    fn a_rehashed_record_breaks_the_next_link() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, store, records) = filled(&dir, 5);
        let forged = Record::link(&records[1].hash, 3, records[2].time_ms, attached("forged"));
        tree.insert(seq_key(3), forged.encode()).unwrap();
        let broken = broken(&store);
        assert_eq!((broken.seq, broken.kind), (3, BreakKind::Changed));
        assert!(
            broken
                .detail
                .contains("record 4 names a different predecessor"),
            "{broken}"
        );
    }

    #[test]
    fn a_rewritten_chain_is_caught_by_the_witness() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, store, records) = filled(&dir, 3);
        let witness = store.head();
        let mut prev = records[0].hash;
        for seq in 2..=3 {
            let forged = Record::link(&prev, seq, seq, attached("forged"));
            tree.insert(seq_key(seq), forged.encode()).unwrap();
            prev = forged.hash;
        }
        assert!(store.verify(None).unwrap().broken.is_none());
        let broken = store.verify(Some(witness)).unwrap().broken.unwrap();
        assert_eq!((broken.seq, broken.kind), (3, BreakKind::Changed));
        assert!(broken.detail.contains("rewritten"), "{broken}");
    }

    #[test]
    fn a_deleted_record_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, store, _) = filled(&dir, 5);
        tree.remove(seq_key(3)).unwrap();
        let broken = broken(&store);
        assert_eq!((broken.seq, broken.kind), (3, BreakKind::Removed));
        assert!(
            broken.detail.contains("the next record stored is 4"),
            "{broken}"
        );
        tree.remove(seq_key(4)).unwrap();
        assert!(self::broken(&store).detail.contains("records 3 to 4"));
    }

    #[test]
    fn deleting_the_oldest_records_is_removal() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, store, _) = filled(&dir, 5);
        tree.remove(seq_key(1)).unwrap();
        tree.remove(seq_key(2)).unwrap();
        let broken = broken(&store);
        assert_eq!((broken.seq, broken.kind), (1, BreakKind::Removed));
        assert!(broken.detail.contains("no retention anchor"), "{broken}");
    }

    #[test]
    fn cutting_off_the_newest_records_shows_against_the_witness() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, store, _) = filled(&dir, 5);
        let witness = store.head();
        tree.remove(seq_key(5)).unwrap();
        tree.remove(seq_key(4)).unwrap();
        assert!(store.verify(None).unwrap().broken.is_none());
        let broken = store.verify(Some(witness)).unwrap().broken.unwrap();
        assert_eq!((broken.seq, broken.kind), (4, BreakKind::Removed));
        assert!(broken.detail.contains("cut off"), "{broken}");
    }

    #[test]
    fn swapped_records_are_reordered() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, store, records) = filled(&dir, 5);
        tree.insert(seq_key(2), records[2].encode()).unwrap();
        tree.insert(seq_key(3), records[1].encode()).unwrap();
        let broken = broken(&store);
        assert_eq!((broken.seq, broken.kind), (2, BreakKind::Reordered));
        assert_eq!(
            broken.to_string(),
            "record 2 was reordered: record 3 is stored in its place"
        );
    }

    #[test]
    fn a_first_record_with_another_predecessor_is_changed() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, store, _) = filled(&dir, 2);
        let forged = Record::link(&Hash([1; 32]), 1, 1, attached("1"));
        tree.insert(seq_key(1), forged.encode()).unwrap();
        let broken = broken(&store);
        assert_eq!((broken.seq, broken.kind), (1, BreakKind::Changed));
        assert!(broken.detail.contains("genesis"), "{broken}");
    }

    #[test]
    fn verification_continues_from_an_anchor() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, store, records) = filled(&dir, 5);
        tree.remove(seq_key(1)).unwrap();
        tree.insert(
            seq_key(2),
            Anchor {
                seq: 2,
                hash: records[1].hash,
            }
            .encode(),
        )
        .unwrap();
        let verification = store.verify(None).unwrap();
        assert!(verification.broken.is_none(), "{verification:?}");
        assert_eq!(verification.anchor_seq, Some(2));
        assert_eq!(verification.first_seq, Some(3));
        assert_eq!(verification.verified, 3);

        // An anchor with the wrong hash breaks the first record's link.
        tree.insert(
            seq_key(2),
            Anchor {
                seq: 2,
                hash: Hash([5; 32]),
            }
            .encode(),
        )
        .unwrap();
        let broken = broken(&store);
        assert_eq!((broken.seq, broken.kind), (3, BreakKind::Changed));
        assert!(broken.detail.contains("retention anchor"), "{broken}");

        // Removing the record after the anchor is a removal.
        tree.insert(
            seq_key(2),
            Anchor {
                seq: 2,
                hash: records[1].hash,
            }
            .encode(),
        )
        .unwrap();
        tree.remove(seq_key(3)).unwrap();
        let broken = self::broken(&store);
        assert_eq!((broken.seq, broken.kind), (3, BreakKind::Removed));
    }

    #[test]
    fn an_anchor_after_records_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, store, records) = filled(&dir, 4);
        tree.insert(
            seq_key(3),
            Anchor {
                seq: 3,
                hash: records[2].hash,
            }
            .encode(),
        )
        .unwrap();
        let broken = broken(&store);
        assert_eq!((broken.seq, broken.kind), (3, BreakKind::Changed));
        assert!(broken.detail.contains("anchor"), "{broken}");
    }

    #[test]
    fn a_foreign_key_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, store, _) = filled(&dir, 2);
        tree.insert(b"\xffzz", &b"x"[..]).unwrap();
        let broken = broken(&store);
        assert_eq!((broken.seq, broken.kind), (3, BreakKind::Changed));
        assert!(broken.detail.contains("3-byte key"), "{broken}");
    }

    /// A store with records 1..=n appended as one group commit (one value, under seq n), the
    /// raw tree and the records.
    fn grouped(dir: &tempfile::TempDir, n: u64) -> (sled::Tree, AuditStore, Vec<Record>) {
        let (db, store) = crate::audit::test_support::open(dir);
        let records = store
            .append((1..=n).map(|i| (i, attached(&i.to_string()))).collect())
            .unwrap();
        (db.open_tree(TREE).unwrap(), store, records)
    }

    /// Stores `parts` as the value under seq `key`.
    fn store_group(tree: &sled::Tree, key: u64, parts: &[Vec<u8>]) {
        tree.insert(seq_key(key), group::join(parts.iter().map(Vec::as_slice)))
            .unwrap();
    }

    /// The break a log of one group commit of records 1..=5 shows once `tamper` has changed
    /// its records' stored bytes and they are stored back, under the seq it returns.
    fn tampered_group(tamper: impl FnOnce(&mut Vec<Vec<u8>>, &[Record]) -> u64) -> ChainBreak {
        let dir = tempfile::tempdir().unwrap();
        let (tree, store, records) = grouped(&dir, 5);
        let mut parts: Vec<Vec<u8>> = records.iter().map(Record::encode).collect();
        let key = tamper(&mut parts, &records);
        tree.remove(seq_key(5)).unwrap();
        store_group(&tree, key, &parts);
        broken(&store)
    }

    /// Asserts `broken` names record `seq` as `kind`, with `detail` in its description.
    fn assert_break(broken: &ChainBreak, seq: u64, kind: BreakKind, detail: &str) {
        assert_eq!((broken.seq, broken.kind), (seq, kind), "{broken}");
        assert!(broken.detail.contains(detail), "{broken}");
    }

    #[test]
    fn a_log_of_group_commits_after_single_records_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, store, mut records) = filled(&dir, 3);
        records.extend(
            store
                .append((4..=10).map(|i| (i, attached("g"))).collect())
                .unwrap(),
        );
        records.extend(store.append(vec![(11, attached("h"))]).unwrap());
        assert_eq!(tree.len(), 5);
        let verification = store.verify(Some(store.head())).unwrap();
        assert!(verification.broken.is_none(), "{verification:?}");
        assert_eq!(verification.verified, 11);
        assert_eq!(verification.head.hash, records[10].hash);
    }

    #[test]
    fn records_edited_cut_out_swapped_or_moved_inside_a_group_break_the_chain() {
        let edited = tampered_group(|parts, records| {
            let mut edited = records[2].clone();
            edited.time_ms += 1;
            parts[2] = edited.encode();
            5
        });
        assert_break(&edited, 3, BreakKind::Changed, "do not match its hash");
        let cut = tampered_group(|parts, _| {
            parts.remove(2);
            5
        });
        assert_break(&cut, 3, BreakKind::Removed, "the next record stored is 4");
        let swapped = tampered_group(|parts, _| {
            parts.swap(1, 2);
            5
        });
        assert_break(&swapped, 2, BreakKind::Reordered, "record 3 is stored");
        let newest_swapped = tampered_group(|parts, _| {
            parts.swap(3, 4);
            5
        });
        assert_break(
            &newest_swapped,
            4,
            BreakKind::Reordered,
            "record 5 is stored",
        );
        let moved = tampered_group(|_, _| 6);
        assert_break(&moved, 6, BreakKind::Reordered, "record 5 is stored");
    }

    #[test]
    fn an_anchor_or_an_empty_part_inside_a_group_is_a_change() {
        let anchored = tampered_group(|parts, records| {
            parts[0] = Anchor {
                seq: 1,
                hash: records[0].hash,
            }
            .encode();
            5
        });
        assert_break(&anchored, 1, BreakKind::Changed, "anchors stand alone");
        let empty = tampered_group(|parts, _| {
            parts.insert(1, Vec::new());
            5
        });
        assert_break(&empty, 2, BreakKind::Changed, "cannot be read");
    }
}
