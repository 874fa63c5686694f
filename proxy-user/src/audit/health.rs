//! Whether the audit log still works.
//!
//! The first failed write marks the log failing for good (until veil restarts): records may
//! have been lost, sled keeps returning its error after an I/O failure, and anything that
//! must be audited (a request carrying a secret) has to stop rather than go ahead unaudited.

use std::sync::{Arc, OnceLock};

/// The audit log's health, shared by the writer and every [`super::AuditHandle`].
#[derive(Clone, Debug, Default)]
pub(super) struct Health {
    /// The first failure, with what and where.
    failure: Arc<OnceLock<String>>,
}

impl Health {
    /// Marks the log failing because of `reason`; the first reason is kept. Returns whether
    /// this was the first failure.
    pub(super) fn fail(&self, reason: String) -> bool {
        self.failure.set(reason).is_ok()
    }

    /// Why the log is failing; `None` while it works.
    pub(super) fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_sticks() {
        let health = Health::default();
        assert_eq!(health.failure(), None);
        let shared = health.clone();
        assert!(shared.fail("disk full in /var/lib/veil/db".into()));
        assert!(!health.fail("later".into()));
        assert_eq!(health.failure(), Some("disk full in /var/lib/veil/db"));
    }
}
