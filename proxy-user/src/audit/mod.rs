//! The audit log: a durable, ordered record of every connection decision
//! veil makes, of everything the kernel refuses a sandbox, of every sandbox it starts
//! or stops watching, and of every change to a secret (never its value).
//!
//! The module is split by concern:
//!
//! - `record.rs`: the data model ([`Record`], [`Event`] and its payloads) and
//!   its on-disk encoding (JSON values under 8-byte big-endian seq keys).
//! - `store.rs`: [`AuditStore`], the sled tree `audit` holding the records,
//!   with atomic, flushed batch appends and [`Filter`]ed queries.
//! - `writer.rs`: [`AuditWriter`], the single task that owns appends and
//!   group-commits everything queued through the cloneable [`AuditHandle`].
//! - `format.rs`: rendering records for people ([`table`]) and for machines
//!   ([`json_line`]).
//!
//! Every fallible operation in this module returns [`AuditError`].

mod format;
mod record;
mod store;
mod writer;

use std::sync::Arc;

pub use format::{json_line, table};
pub use record::{
    Connection, Event, EventKind, Injection, KernelRefusal, Record, RefusalsDropped, SandboxChange,
    SecretChange, Verdict,
};
pub use store::{AuditStore, Filter};
pub use writer::{AuditHandle, AuditWriter};

/// Errors from the audit log.
///
/// The error is `Clone` so that one failed batch append can be reported to
/// every waiter in that batch.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AuditError {
    /// The underlying sled database failed.
    #[error("audit store: {0}")]
    Store(sled::Error),

    /// A stored record could not be decoded.
    #[error("undecodable audit record: {0}")]
    Decode(Arc<serde_json::Error>),

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

    /// The audit writer stopped, or its append aborted, before acknowledging
    /// the record, so it may not have been stored.
    #[error("audit writer did not acknowledge the record; it may not have been stored")]
    WriterGone,
}

impl From<sled::Error> for AuditError {
    fn from(error: sled::Error) -> Self {
        Self::Store(error)
    }
}
