//! TLS on both legs: veil's own CA and the leaf certificates it mints for sandboxes
//! ([`ca`], [`leaf`]), and verified TLS to the real upstream ([`upstream`]).

pub mod ca;
pub mod leaf;
pub mod upstream;

use std::{path::PathBuf, sync::Arc};

use rustls::crypto::CryptoProvider;

/// Errors from veil's TLS setup.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A stored CA file is unusable.
    #[error("the CA in {path} is unusable ({why}); move it away to have veil create a new one")]
    BadCa {
        /// The CA directory.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// An operator-supplied root file is unusable.
    #[error("upstream CA file {path}: {why}")]
    BadRoots {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// rustls refused a configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The crypto provider veil uses on both legs (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
