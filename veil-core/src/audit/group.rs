//! How the records of one group commit share one value in the audit tree.
//!
//! The writer stores everything it commits at once as one sled value, not one value per
//! record: each sled insert has a fixed cost (a log message, a node update) that one value
//! per record paid for every record. A value holds the encodings of records with
//! consecutive seqs, oldest first, joined by a newline, and is stored under the key of its
//! last (newest) record's seq, so the value holding seq `n` is the first one whose key is at
//! least `n`. Neither a record's encoding nor an anchor's ever contains a newline
//! (`serde_json` writes no whitespace and escapes control characters inside strings), so the
//! split is unambiguous, and a value holding one record, which is what every value was before
//! groups, reads as a group of one. An anchor is always alone in its value.

use super::{DecodeError, Entry};

/// Most records in one value. A larger commit is stored as several values in one atomic
/// batch, so that no value grows past what sled keeps inline (it moves large values to files
/// of their own).
pub const GROUP_MAX: usize = 64;

/// What separates two entries in a value.
const SEPARATOR: u8 = b'\n';

/// The encoded entries in a stored value, oldest first.
pub fn parts(value: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> + Clone {
    value.split(|&b| b == SEPARATOR)
}

/// Joins encoded entries (as [`parts`] yields them) into one value.
pub fn join<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut value = Vec::new();
    for part in parts {
        if !value.is_empty() {
            value.push(SEPARATOR);
        }
        value.extend_from_slice(part);
    }
    value
}

/// Decodes every entry in a stored value, oldest first.
pub fn decode(value: &[u8]) -> Result<Vec<Entry>, DecodeError> {
    parts(value).map(Entry::decode).collect()
}

/// Decodes the newest entry in a stored value.
pub fn decode_last(value: &[u8]) -> Result<Entry, DecodeError> {
    // `split` always yields at least one piece, possibly empty (which does not decode).
    Entry::decode(parts(value).next_back().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Anchor, Event, Hash, Record, SandboxChange};

    /// The value holding `records`, as the store writes it.
    fn encode(records: &[Record]) -> Vec<u8> {
        let encoded: Vec<Vec<u8>> = records.iter().map(Record::encode).collect();
        join(encoded.iter().map(Vec::as_slice))
    }

    fn chain(n: u64) -> Vec<Record> {
        let mut prev = Hash::GENESIS;
        (1..=n)
            .map(|seq| {
                let record = Record::link(
                    &prev,
                    seq,
                    seq * 10,
                    Event::SandboxAttached(SandboxChange {
                        name: "line\nbreak \"quoted\"".into(),
                        cgroup: "/sys/fs/cgroup/a".into(),
                        cgroup_id: 7,
                        container: None,
                    }),
                );
                prev = record.hash;
                record
            })
            .collect()
    }

    #[test]
    fn a_group_decodes_to_its_records_in_order() {
        let records = chain(5);
        let value = encode(&records);
        let decoded = decode(&value).unwrap();
        let expected: Vec<Entry> = records.iter().cloned().map(Entry::Record).collect();
        assert_eq!(decoded, expected);
        assert_eq!(
            decode_last(&value).unwrap(),
            Entry::Record(records[4].clone())
        );
        let pieces: Vec<&[u8]> = parts(&value).collect();
        assert_eq!(pieces.len(), 5);
        assert_eq!(pieces[2], records[2].encode());
    }

    #[test]
    fn a_newline_inside_a_string_is_escaped_so_it_never_splits_a_record() {
        let records = chain(1);
        assert!(!records[0].encode().contains(&SEPARATOR));
        assert_eq!(parts(&encode(&records)).count(), 1);
    }

    #[test]
    fn a_single_record_value_is_a_group_of_one() {
        let records = chain(2);
        let value = records[1].encode();
        assert_eq!(decode(&value).unwrap(), [Entry::Record(records[1].clone())]);
        let anchor = Anchor {
            seq: 4,
            hash: records[1].hash,
        };
        assert_eq!(
            decode_last(&anchor.encode()).unwrap(),
            Entry::Anchor(anchor)
        );
    }

    #[test]
    fn join_is_the_inverse_of_parts() {
        let records = chain(3);
        let value = encode(&records);
        assert_eq!(join(parts(&value)), value);
        assert_eq!(join(parts(&value).skip(1)), encode(&records[1..]));
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        for value in [&b""[..], b"\n", b"{\"seq\":1}\n", b"\xff\xfe", b"[]"] {
            assert!(decode(value).is_err(), "{value:?}");
            assert!(decode_last(value).is_err(), "{value:?}");
        }
    }
}
