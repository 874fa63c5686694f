//! The kit's error type.

use std::{io, path::PathBuf, process::ExitStatus, time::Duration};

/// What can go wrong while setting up, driving or removing an installation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: io::Error,
    },
    /// A process exited before it was ready.
    #[error("{what} exited during startup ({status}):\n{log}")]
    Exited {
        /// The process.
        what: String,
        /// How it ended.
        status: ExitStatus,
        /// The end of its log.
        log: String,
    },
    /// A process did not become ready in time.
    #[error("{what} did not come up within {timeout:?}:\n{log}")]
    Timeout {
        /// The process.
        what: String,
        /// How long it was given.
        timeout: Duration,
        /// The end of its log.
        log: String,
    },
    /// The control API answered something unexpected.
    #[error("{request}: HTTP {status}: {body}")]
    Api {
        /// The request, such as `POST /v1/secrets`.
        request: String,
        /// The status it got.
        status: u16,
        /// The body it got.
        body: String,
    },
    /// An answer could not be read.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// No cgroup2 file system is mounted.
    #[error("no cgroup2 file system is mounted (no `cgroup2` line in /proc/mounts)")]
    NoCgroup2,
    /// A cgroup could not be removed.
    #[error("removing the cgroup {0}: still busy")]
    CgroupBusy(PathBuf),
    /// rcgen refused to make a certificate.
    #[error("making a test certificate: {0}")]
    Certificate(#[from] rcgen::Error),
}

impl Error {
    /// An [`Error::Io`] saying what was being done.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

/// Adds what was being done to an I/O result.
pub(crate) trait Context<T> {
    /// Fails with [`Error::Io`] naming `what`.
    fn doing(self, what: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T> Context<T> for io::Result<T> {
    fn doing(self, what: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|e| Error::io(what(), e))
    }
}
