//! What the data path holds: exactly the services a connection uses, and the one place a
//! connection's outcome is written to the audit log and the metrics.

use std::{sync::Arc, time::Instant};

use tokio::sync::watch;
use veil_core::policy::Policy;

use super::{pool::Pool, Limits};
use crate::{
    audit::{AuditHandle, Connection, Event, Verdict},
    dns::DnsAnswers,
    metrics::{ErrorKind, Metrics},
    resolve::Resolver,
    secrets::LiveEngine,
    tls::{leaf::LeafMinter, upstream::Upstream},
};

/// The narrow handles a steered connection is served with.
pub struct Context {
    /// The egress policy in force (a connection keeps the one it started with).
    pub policy: watch::Receiver<Arc<Policy>>,
    /// Leaf certificates for sandbox-facing TLS.
    pub leaves: Arc<LeafMinter>,
    /// Verified TLS to upstreams.
    pub upstream: Upstream,
    /// The placeholder engine for the live secrets.
    pub engine: LiveEngine,
    /// The audit log.
    pub audit: AuditHandle,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Limits and timeouts.
    pub limits: Limits,
    /// Resolves names nothing proves, to bind them to the dialled address.
    pub resolver: Resolver,
    /// What veil's DNS proxy answered each sandbox, checked first when binding a name.
    pub answers: DnsAnswers,
    /// Upstream connections kept for the next connection to the same destination.
    pub pool: Pool,
}

/// How a connection ended up, for its audit record and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed by `rule` and served (`how`: intercepted, relayed).
    Allowed {
        /// The rule that allowed it, as written.
        rule: Option<String>,
        /// How it is served.
        how: &'static str,
    },
    /// Denied by the egress policy, or by veil's own rules (loops, the control API).
    Denied(String),
    /// Refused for another reason: unusable bytes, a failed handshake.
    Refused(String),
    /// The upstream could not be reached.
    Unreachable(String),
    /// No original-destination record: not a steered connect.
    NoRecord,
}

impl Context {
    /// The policy in force now.
    pub fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.policy.borrow())
    }

    /// Whether `name`, which nothing proves, resolves to `dst`'s address for `sandbox` (its
    /// cgroup id): veil's DNS proxy answered the sandbox that address for the name, or else
    /// the system resolver gives it; `Err` says why the connection may not go ahead.
    pub async fn bind(
        &self,
        sandbox: u64,
        name: &str,
        dst: std::net::SocketAddr,
    ) -> Result<(), String> {
        if self.answers.resolved(sandbox, name, dst.ip()) {
            return Ok(());
        }
        match self.resolver.resolves_to(name, dst.ip()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!(
                "{name} does not resolve to {}, the address dialled",
                dst.ip()
            )),
            Err(e) => Err(e),
        }
    }

    /// Records `event` with `outcome` in the audit log and counts it, with the time since the
    /// connection was accepted. Every connection passes here exactly once.
    pub fn conclude(&self, mut event: Connection, accepted: Instant, outcome: Outcome) {
        let (verdict, reason) = match outcome {
            Outcome::Allowed { rule, how } => {
                event.rule = rule;
                (Verdict::Allowed, how.to_owned())
            }
            Outcome::Denied(reason) => {
                self.metrics.denial();
                (Verdict::Refused, reason)
            }
            Outcome::Refused(reason) => (Verdict::Refused, reason),
            Outcome::Unreachable(reason) => {
                self.metrics.error(ErrorKind::Upstream);
                (Verdict::Refused, reason)
            }
            Outcome::NoRecord => {
                self.metrics.error(ErrorKind::NoRecord);
                (
                    Verdict::Refused,
                    "no original-destination record".to_owned(),
                )
            }
        };
        if verdict == Verdict::Refused {
            log::info!(
                "refusing {} to {}: {reason}",
                event.comm,
                event
                    .destination
                    .map_or_else(|| "?".to_owned(), |d| d.to_string())
            );
        }
        event.verdict = verdict;
        event.reason = reason;
        self.metrics.connection(verdict, accepted.elapsed());
        self.audit.record(Event::Connection(event));
    }
}
