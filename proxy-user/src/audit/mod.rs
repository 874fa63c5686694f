//! The audit log: a durable, ordered record of every connection decision
//! veil makes, of everything the kernel refuses a sandbox, of every sandbox it starts
//! or stops watching, and of every change to a secret (never its value).
//!
//! The records, their encoding, the hash chain and the renderings are pure and live in
//! [`veil_core::audit`] (re-exported here); this module keeps them:
//!
//! - `store.rs`: [`AuditStore`], the sled tree `audit` holding the records,
//!   with atomic, flushed, chained batch appends and [`Filter`]ed queries.
//! - `entries.rs`: walking the tree's entries in seq order, one group commit's value at a
//!   time.
//! - `verify.rs`: walking the chain ([`AuditStore::verify`]) to find the first
//!   record that was changed, removed or reordered.
//! - `retention.rs`: dropping the oldest records by age and count
//!   ([`RetentionPolicy`]), leaving an anchor and a `retention` record.
//! - `writer.rs`: [`AuditWriter`], the single task that owns appends and
//!   group-commits everything queued through the cloneable [`AuditHandle`],
//!   then publishes what it committed to followers.
//! - `backlog.rs`: the budget of records waiting for the writer, per sandbox, and the
//!   drops it counts, so that a sandbox flooding the log drops only its own records.
//! - `health.rs`: whether the writer has failed, so nothing that must be
//!   audited goes ahead unaudited.
//! - `follow.rs`: [`Follow`], the matching records as they are committed, with
//!   none skipped.
//!
//! Every fallible operation in this module returns [`AuditError`].

mod backlog;
mod entries;
mod follow;
mod health;
mod retention;
mod store;
mod verify;
mod writer;

pub use follow::Follow;
pub use retention::{enforce_retention, RetentionPolicy, DEFAULT_MAX_AGE, DEFAULT_MAX_RECORDS};
pub use store::{AuditStore, Filter};
pub use verify::{BreakKind, ChainBreak, Verification};
pub use writer::{now_ms, AuditHandle, AuditWriter};

pub use veil_core::audit::{
    json_line, table, Anchor, ChainHead, ConnProtocol, Connection, Container, DecodeError,
    DnsOutcome, DnsQuery, Event, EventKind, Hash, Injection, KernelRefusal, LimitExceeded,
    PolicyChange, PolicyTrigger, Record, RecordsDropped, RefusalsDropped, RequestProtocol,
    Retention, SandboxChange, Scrub, SecretChange, SecretRef, TableStream, Verdict, MAX_HEADERS,
};

/// Errors from the audit log.
///
/// The error is `Clone` so that one failed batch append can be reported to
/// every waiter in that batch.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AuditError {
    /// The underlying sled database failed.
    #[error("audit store: {0}")]
    Store(sled::Error),

    /// A stored record or key could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),

    /// The audit writer stopped, or its append aborted, before acknowledging
    /// the record, so it may not have been stored.
    #[error("audit writer did not acknowledge the record; it may not have been stored")]
    WriterGone,

    /// A record that must be there is not.
    #[error("the audit record at seq {seq} is missing; `veil audit verify` shows what is wrong")]
    Missing {
        /// Its seq.
        seq: u64,
    },

    /// The log was opened for reading only.
    #[error("the audit log in {path} was opened for reading only")]
    ReadOnly {
        /// The database directory.
        path: std::path::PathBuf,
    },

    /// Writing the audit log failed earlier; until veil is restarted with a working audit
    /// log, nothing that must be audited goes ahead.
    #[error("the audit log is failing, so this was not done: {reason}")]
    Failing {
        /// The first failure, with where it happened.
        reason: String,
    },

    /// The newest entry in the log cannot be decoded, so the chain cannot be continued.
    #[error(
        "the newest audit record (seq {seq}) cannot be decoded, so the hash chain cannot be \
         continued ({source}); `veil audit verify` shows what is wrong"
    )]
    HeadUnreadable {
        /// Its seq.
        seq: u64,
        /// Why it cannot be decoded.
        source: Box<AuditError>,
    },
}

impl From<sled::Error> for AuditError {
    fn from(error: sled::Error) -> Self {
        Self::Store(error)
    }
}

/// Helpers for this module's tests.
#[cfg(test)]
mod test_support {
    use std::{path::Path, thread, time::Duration};

    use super::AuditStore;

    /// Opens the sled database in `dir`, waiting for a database just dropped there to release
    /// its lock (sled releases it from its flusher thread, a moment after the drop).
    pub(super) fn open_db(dir: &Path) -> sled::Db {
        for _ in 0..500 {
            match sled::open(dir) {
                Ok(db) => return db,
                Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                    thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("opening {}: {e}", dir.display()),
            }
        }
        panic!("{} stayed locked", dir.display());
    }

    /// Opens the database in `dir` and its audit store.
    pub(super) fn open(dir: &tempfile::TempDir) -> (sled::Db, AuditStore) {
        let db = open_db(dir.path());
        let store = AuditStore::open(&db, dir.path()).expect("the audit store opens");
        (db, store)
    }
}
