//! The budget of records waiting for the writer: how many a sandbox may have queued, and
//! how many were dropped because it had spent its budget.
//!
//! Only the records a sandbox's processes cause and that nobody waits for spend it
//! (connections, kernel refusals, placeholders left alone, secrets scrubbed from responses,
//! limits exceeded: see [`spends_budget`]; a scrub is recorded, the secret stays out either
//! way). Durable
//! records (secret use, secret and sandbox lifecycle) and the daemon's own records (policy,
//! retention, drop counts) are never refused. A sandbox that floods the log fills only its
//! own budget, so the others' records still land, and the total across sandboxes is capped
//! too, so the queue's memory is bounded. Pure bookkeeping: the writer does the queueing.

use std::collections::{BTreeMap, HashMap};

use super::{Event, RecordsDropped};

/// Records one sandbox may have waiting for the writer.
pub(super) const PER_SANDBOX: usize = 4096;

/// Records all sandboxes together may have waiting for the writer.
pub(super) const TOTAL: usize = 65_536;

/// Waiting records per sandbox, and what was dropped since it was last reported.
#[derive(Debug)]
pub(super) struct Backlog {
    per_sandbox: usize,
    total: usize,
    waiting: HashMap<Option<String>, usize>,
    queued: usize,
    dropped: BTreeMap<Option<String>, u64>,
}

/// Whether a record may be queued.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Admission {
    /// Queue it; the writer calls [`Backlog::release`] when it takes it.
    Queued,
    /// Drop it (it has been counted). `first` when nothing was counted as dropped before it
    /// since the last report, so the writer should be woken to report it.
    Dropped {
        /// The first drop since the last [`Backlog::take_dropped`].
        first: bool,
    },
}

impl Default for Backlog {
    fn default() -> Self {
        Self::new(PER_SANDBOX, TOTAL)
    }
}

impl Backlog {
    /// A backlog allowing `per_sandbox` waiting records per sandbox and `total` in all.
    pub(super) fn new(per_sandbox: usize, total: usize) -> Self {
        Self {
            per_sandbox,
            total,
            waiting: HashMap::new(),
            queued: 0,
            dropped: BTreeMap::new(),
        }
    }

    /// Admits a record of `sandbox` standing for `count` events, or counts them as dropped.
    pub(super) fn admit(&mut self, sandbox: Option<&str>, count: u64) -> Admission {
        let waiting = self.waiting.get(&sandbox.map(str::to_owned)).copied();
        if waiting.unwrap_or(0) < self.per_sandbox && self.queued < self.total {
            *self.waiting.entry(sandbox.map(str::to_owned)).or_default() += 1;
            self.queued += 1;
            return Admission::Queued;
        }
        let first = self.dropped.is_empty();
        let dropped = self.dropped.entry(sandbox.map(str::to_owned)).or_default();
        *dropped = dropped.saturating_add(count);
        Admission::Dropped { first }
    }

    /// A queued record of `sandbox` was taken by the writer.
    pub(super) fn release(&mut self, sandbox: Option<&str>) {
        let key = sandbox.map(str::to_owned);
        if let Some(waiting) = self.waiting.get_mut(&key) {
            *waiting -= 1;
            self.queued -= 1;
            if *waiting == 0 {
                self.waiting.remove(&key);
            }
        }
    }

    /// The drops counted since the last call, one record per sandbox.
    pub(super) fn take_dropped(&mut self) -> Vec<RecordsDropped> {
        std::mem::take(&mut self.dropped)
            .into_iter()
            .map(|(sandbox, dropped)| RecordsDropped { sandbox, dropped })
            .collect()
    }

    /// How many records are waiting in all.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.queued
    }
}

/// The sandbox whose budget a record spends when queued without waiting: `Some` (with the
/// sandbox, `None` for a process of no known sandbox) for the kinds a sandbox's processes
/// cause, `None` for kinds that never spend one.
pub(super) fn spends_budget(event: &Event) -> Option<Option<&str>> {
    match event {
        Event::Connection(_)
        | Event::KernelRefusal(_)
        | Event::SecretInjected(_)
        | Event::PlaceholderNotInjected(_)
        | Event::SecretScrubbed(_)
        | Event::LimitExceeded(_)
        | Event::DnsQuery(_) => Some(event.sandbox()),
        Event::SandboxAttached(_)
        | Event::SandboxDetached(_)
        | Event::KernelRefusalsDropped(_)
        | Event::RecordsDropped(_)
        | Event::SecretCreated(_)
        | Event::SecretUpdated(_)
        | Event::SecretDeleted(_)
        | Event::PolicyChanged(_)
        | Event::Retention(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::SandboxChange;

    #[test]
    fn a_flooding_sandbox_spends_only_its_own_budget() {
        let mut backlog = Backlog::new(3, 100);
        for _ in 0..3 {
            assert_eq!(backlog.admit(Some("flood"), 1), Admission::Queued);
        }
        assert_eq!(
            backlog.admit(Some("flood"), 1),
            Admission::Dropped { first: true }
        );
        assert_eq!(
            backlog.admit(Some("flood"), 5),
            Admission::Dropped { first: false }
        );
        assert_eq!(backlog.admit(Some("calm"), 1), Admission::Queued);
        assert_eq!(backlog.admit(None, 1), Admission::Queued);
        assert_eq!(
            backlog.take_dropped(),
            [RecordsDropped {
                sandbox: Some("flood".into()),
                dropped: 6
            }]
        );
        assert!(backlog.take_dropped().is_empty());
        backlog.release(Some("flood"));
        assert_eq!(backlog.admit(Some("flood"), 1), Admission::Queued);
        assert_eq!(backlog.queued(), 5);
    }

    #[test]
    fn the_total_caps_every_sandbox_together() {
        let mut backlog = Backlog::new(3, 4);
        for sandbox in ["a", "b", "c", "d"] {
            assert_eq!(backlog.admit(Some(sandbox), 1), Admission::Queued);
        }
        assert_eq!(
            backlog.admit(Some("e"), 1),
            Admission::Dropped { first: true }
        );
        for sandbox in ["a", "b", "c", "d"] {
            backlog.release(Some(sandbox));
        }
        assert_eq!(backlog.queued(), 0);
        assert_eq!(backlog.admit(Some("e"), 1), Admission::Queued);
        // Releasing what was never queued changes nothing.
        backlog.release(Some("z"));
        assert_eq!(backlog.queued(), 1);
    }

    #[test]
    fn lifecycle_and_daemon_records_spend_no_budget() {
        let attached = Event::SandboxAttached(SandboxChange {
            name: "a".into(),
            cgroup: "/a".into(),
            cgroup_id: 1,
            container: None,
        });
        assert_eq!(spends_budget(&attached), None);
        let dropped = Event::RecordsDropped(RecordsDropped {
            sandbox: Some("a".into()),
            dropped: 1,
        });
        assert_eq!(spends_budget(&dropped), None);
    }
}
