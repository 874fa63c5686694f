//! The audit log's pure parts: the data model, its encoding, the hash chain and the
//! renderings. The store, the group-commit writer and the followers live in the daemon.
//!
//! - `record.rs`: the data model ([`Record`], [`Event`] and its payloads) and its on-disk
//!   encoding (JSON objects in values under 8-byte big-endian seq keys; see `group.rs`).
//! - `chain.rs`: the hash chain: every record's [`Hash`] over a canonical encoding
//!   (documented there), the [`ChainHead`], and the [`Anchor`] retention leaves.
//! - `group.rs`: how the records of one group commit share one stored value.
//! - `aggregate.rs`: summing repeated kernel refusals, refused connections and DNS queries
//!   over a short window ([`Aggregator`]), so that a sandbox repeating itself writes a few
//!   records with counts.
//! - `format.rs`: rendering records for people ([`table`], [`TableStream`]) and for machines
//!   ([`json_line`]).

mod aggregate;
mod chain;
mod format;
pub mod group;
mod record;

use std::sync::Arc;

pub use aggregate::{Admitted, Aggregator};
pub use chain::{record_hash, Anchor, ChainHead, Entry, Hash};
pub use format::{json_line, table, TableStream};
pub use record::{
    seq_from_key, seq_key, ConnProtocol, Connection, Container, DnsOutcome, DnsQuery, Event,
    EventKind, Injection, KernelRefusal, LimitExceeded, PolicyChange, PolicyTrigger, Record,
    RecordsDropped, RefusalsDropped, RequestProtocol, Retention, SandboxChange, Scrub,
    SecretChange, SecretRef, Verdict, MAX_HEADERS,
};

/// Why stored audit bytes could not be decoded.
#[derive(Clone, Debug, thiserror::Error)]
pub enum DecodeError {
    /// A stored record is not the JSON of a record.
    #[error("undecodable audit record: {0}")]
    Json(Arc<serde_json::Error>),

    /// A key in the audit tree is not an 8-byte sequence number.
    #[error("audit key has {len} bytes, expected 8")]
    BadKey {
        /// Length of the offending key.
        len: usize,
    },

    /// An event kind name was not recognised.
    #[error("unknown audit event kind {given:?} (expected one of: {valid})", valid = EventKind::names())]
    UnknownKind {
        /// The name that was given.
        given: String,
    },
}
