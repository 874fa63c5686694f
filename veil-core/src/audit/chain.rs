//! The hash chain that makes the audit log tamper-evident.
//!
//! Every record carries `prev_hash`, the hash of the record before it, and `hash`, its own:
//!
//! ```text
//! hash = SHA-256( "veil-audit-v1\0"          14 bytes, a domain separator
//!               || seq                        8 bytes, big-endian
//!               || time_ms                    8 bytes, big-endian
//!               || prev_hash                  32 bytes
//!               || serde_json(event) )        UTF-8, to the end
//! ```
//!
//! `serde_json(event)` is the event as `serde_json` writes it without whitespace: `kind` first,
//! then the payload's fields in the order the Rust struct declares them, optional fields marked
//! `skip_serializing_if` left out when absent, socket addresses as `ip:port` strings. That
//! encoding is therefore part of the on-disk format: payload fields may be added (as optional
//! fields that are left out when absent), never reordered or renamed, or old records stop
//! verifying. Everything before the event has a fixed length, so the encoding is unambiguous.
//!
//! The first record ever written (seq 1) has the all-zero [`Hash::GENESIS`] as `prev_hash`.
//! When retention drops the oldest records it leaves an [`Anchor`] under the seq of the last
//! one it dropped, holding that record's hash, so the chain still verifies from the first
//! record that remains. Anchors are stored as `{"anchor":{"seq":N,"hash":"..."}}`, records as
//! their JSON object (which starts with `{"seq":`).
//!
//! The chain detects records that were edited, removed or reordered by anyone who did not also
//! recompute every later hash. It cannot by itself detect a rewrite of the whole chain, or the
//! newest records being cut off: `veil audit verify` prints the head hash so that it can be
//! kept elsewhere and compared, and with the daemon running it checks the log against the
//! head the daemon wrote last.

use std::fmt;

use ring::digest;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{DecodeError, Event, Record};

/// A SHA-256 hash in the chain, shown and serialized as 64 lowercase hex digits.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The `prev_hash` of the first record: all zeros.
    pub const GENESIS: Self = Self([0; 32]);

    /// Parses 64 lowercase hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut out = [0; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Self(out))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("a hash is 64 lowercase hex digits"))
    }
}

/// The newest link of the chain: the seq and hash the next record continues from. Seq 0 and
/// [`Hash::GENESIS`] for an empty log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// The newest seq in the log (a record's, or an anchor's when nothing follows it).
    pub seq: u64,
    /// Its hash.
    pub hash: Hash,
}

/// What retention leaves in place of the records it dropped: the seq and hash of the last
/// one, which the first remaining record's `prev_hash` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    /// The seq of the last dropped record.
    pub seq: u64,
    /// Its hash.
    pub hash: Hash,
}

impl Anchor {
    /// Encodes the anchor as the JSON bytes stored in sled.
    pub fn encode(&self) -> Vec<u8> {
        // Invariant: a struct of a number and a hex string always serializes.
        serde_json::to_vec(&StoredAnchor { anchor: *self }).expect("an anchor serializes")
    }
}

/// One value in the audit tree.
#[derive(Clone, Debug, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every entry is a record; a log holds at most one anchor"
)]
pub enum Entry {
    /// An audit record.
    Record(Record),
    /// The retention anchor before the oldest record.
    Anchor(Anchor),
}

impl Entry {
    /// Decodes a stored value: an anchor or a record.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.starts_with(ANCHOR_PREFIX) {
            let stored: StoredAnchor = serde_json::from_slice(bytes)
                .map_err(|e| DecodeError::Json(std::sync::Arc::new(e)))?;
            Ok(Self::Anchor(stored.anchor))
        } else {
            Record::decode(bytes).map(Self::Record)
        }
    }

    /// The seq the entry claims.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Record(record) => record.seq,
            Self::Anchor(anchor) => anchor.seq,
        }
    }

    /// The hash the next record's `prev_hash` must equal.
    pub fn hash(&self) -> Hash {
        match self {
            Self::Record(record) => record.hash,
            Self::Anchor(anchor) => anchor.hash,
        }
    }
}

/// The hash of a record with these contents (see the module documentation).
pub fn record_hash(seq: u64, time_ms: u64, prev_hash: &Hash, event: &Event) -> Hash {
    // Invariant: an `Event` always serializes (see `Record::to_json`).
    let event_json = serde_json::to_vec(event).expect("an audit event serializes to JSON");
    event_hash(seq, time_ms, prev_hash, &event_json)
}

/// [`record_hash`] over the event as `serde_json` already wrote it.
pub(super) fn event_hash(seq: u64, time_ms: u64, prev_hash: &Hash, event_json: &[u8]) -> Hash {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(DOMAIN);
    context.update(&seq.to_be_bytes());
    context.update(&time_ms.to_be_bytes());
    context.update(&prev_hash.0);
    context.update(event_json);
    let mut hash = [0; 32];
    // SHA-256 digests are 32 bytes long.
    hash.copy_from_slice(context.finish().as_ref());
    Hash(hash)
}

/// The domain separator at the start of every hashed encoding.
const DOMAIN: &[u8; 14] = b"veil-audit-v1\0";

/// How a stored anchor starts; no record does (records start with `{"seq":`).
const ANCHOR_PREFIX: &[u8] = br#"{"anchor":"#;

/// An anchor as stored.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredAnchor {
    anchor: Anchor,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::SandboxChange;

    fn attached(name: &str) -> Event {
        Event::SandboxAttached(SandboxChange {
            name: name.into(),
            cgroup: format!("/sys/fs/cgroup/{name}"),
            cgroup_id: 7,
            container: None,
        })
    }

    #[test]
    fn hash_hex_round_trips_and_rejects_bad_text() {
        let hash = record_hash(1, 2, &Hash::GENESIS, &attached("a"));
        let hex = hash.to_string();
        assert_eq!(hex.len(), 64);
        assert_eq!(Hash::from_hex(&hex), Some(hash));
        assert_eq!(Hash::GENESIS.to_string(), "0".repeat(64));
        for bad in ["", "00", &"0".repeat(63), &"g".repeat(64), &"A".repeat(64)] {
            assert_eq!(Hash::from_hex(bad), None, "{bad:?}");
        }
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, format!("\"{hex}\""));
        assert_eq!(serde_json::from_str::<Hash>(&json).unwrap(), hash);
        assert!(serde_json::from_str::<Hash>("\"abc\"").is_err());
    }

    #[test]
    fn the_hash_is_sha256_of_the_documented_encoding() {
        let event = attached("a");
        let mut encoding = b"veil-audit-v1\0".to_vec();
        encoding.extend_from_slice(&3u64.to_be_bytes());
        encoding.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
        encoding.extend_from_slice(&[0xab; 32]);
        encoding.extend_from_slice(
            br#"{"kind":"sandbox_attached","name":"a","cgroup":"/sys/fs/cgroup/a","cgroup_id":7}"#,
        );
        let expected = digest::digest(&digest::SHA256, &encoding);
        let hash = record_hash(3, 1_700_000_000_000, &Hash([0xab; 32]), &event);
        assert_eq!(hash.0.as_slice(), expected.as_ref());
    }

    #[test]
    fn every_input_changes_the_hash() {
        let base = record_hash(3, 100, &Hash::GENESIS, &attached("a"));
        assert_ne!(base, record_hash(4, 100, &Hash::GENESIS, &attached("a")));
        assert_ne!(base, record_hash(3, 101, &Hash::GENESIS, &attached("a")));
        assert_ne!(base, record_hash(3, 100, &Hash([1; 32]), &attached("a")));
        assert_ne!(base, record_hash(3, 100, &Hash::GENESIS, &attached("b")));
        assert_eq!(base, record_hash(3, 100, &Hash::GENESIS, &attached("a")));
    }

    #[test]
    fn entries_decode_as_anchors_or_records() {
        let anchor = Anchor {
            seq: 9,
            hash: Hash([7; 32]),
        };
        let bytes = anchor.encode();
        assert!(bytes.starts_with(ANCHOR_PREFIX));
        assert_eq!(Entry::decode(&bytes).unwrap(), Entry::Anchor(anchor));
        assert_eq!(Entry::decode(&bytes).unwrap().seq(), 9);
        assert_eq!(Entry::decode(&bytes).unwrap().hash(), Hash([7; 32]));

        let record = Record::link(&Hash::GENESIS, 1, 5, attached("a"));
        let entry = Entry::decode(&record.encode()).unwrap();
        assert_eq!(entry, Entry::Record(record.clone()));
        assert_eq!(entry.hash(), record.hash);

        for bad in [
            &br#"{"anchor":{"seq":1}}"#[..],
            br#"{"anchor":{"seq":1,"hash":"00","extra":1}}"#,
            b"garbage",
        ] {
            assert!(matches!(Entry::decode(bad), Err(DecodeError::Json(_))));
        }
    }
}
