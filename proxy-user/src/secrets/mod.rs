//! Secrets: stored encrypted, held decrypted in memory only, never shown again.
//!
//! The value type, validation and the live set are pure and live in
//! [`veil_core::secrets`] (re-exported here).
//!
//! - `crypto.rs`: [`MasterKey`]: AES-256-GCM, random nonce, the secret's id as associated data.
//! - `keyfile.rs`: 0600 files holding a random 256-bit key (the master key, the API key).
//! - `store.rs`: [`SecretStore`], the sled trees, the lifecycle (create, rotate, delete, each
//!   durably audited before it is answered) and the live set's watch channel.
//! - `engine.rs`: the placeholder engine for the live set, rebuilt and published with it.
//! - `api_key.rs`: [`ApiKey`], the TCP control API's bearer token.
//! - `profile.rs`: the `source`-able secrets profile and `export` lines.
//! - `hex.rs`: hex encoding for key files, ids and sealed values.
//!
//! Every fallible operation returns [`SecretError`]; no error ever contains a secret value.

mod api_key;
mod crypto;
mod engine;
pub mod keyfile;
mod profile;
mod store;

use std::{io, path::PathBuf};

pub use api_key::ApiKey;
pub use crypto::{random, MasterKey};
pub use engine::{Built, LiveEngine};
pub use profile::exports;
pub use store::SecretStore;
pub use veil_core::secrets::{
    FieldError, LiveSecret, NewSecret, Prefix, SecretInfo, SecretPatch, SecretSet, SecretValue,
    ValueError,
};

use crate::audit::AuditError;

/// How the daemon keeps secrets.
#[derive(Clone, Debug, Default)]
pub struct SecretsConfig {
    /// The operator's master key file; `None` for `master.key` in the state directory.
    pub master_key_file: Option<PathBuf>,
    /// The placeholder prefix for new secrets.
    pub prefix: Prefix,
}

/// Errors from the secrets store.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The request was refused; the error names the field.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// No secret has this id.
    #[error("no secret with id {0:?}")]
    NotFound(String),
    /// The name is taken.
    #[error("name: a secret named {0:?} already exists")]
    NameTaken(String),
    /// Another secret already puts its placeholder in this variable.
    #[error("env_var: {env_var} is already set by secret {name:?}")]
    EnvVarTaken {
        /// The variable.
        env_var: String,
        /// The secret that sets it.
        name: String,
    },
    /// A key file is unusable.
    #[error("{what} file {path}: {problem}")]
    KeyFile {
        /// Which key (`master key`, `API key`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        cause: io::Error,
    },
    /// A stored secret does not decrypt: another master key, or a damaged record.
    #[error(
        "secret {id} does not decrypt with this master key (was it stored under another \
         --master-key-file?) or its record is damaged"
    )]
    Undecryptable {
        /// The secret's id.
        id: String,
    },
    /// A stored record cannot be read.
    #[error("secret record {id:?} is damaged: {problem}")]
    Corrupt {
        /// The record's key.
        id: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The operating system's random source or the cipher failed.
    #[error("the cryptographic library failed (random source or cipher)")]
    Crypto,
    /// The database failed.
    #[error("secrets store: {0}")]
    Db(#[from] sled::Error),
    /// The change could not be audited, so it was undone.
    #[error("the change was not made because it could not be audited: {0}")]
    Audit(#[from] AuditError),
}
