//! Summing repeated events, so that a sandbox repeating itself cannot flood the log.
//!
//! Kernel refusals, refused connections and DNS queries (answered or not) are keyed by their
//! kind, sandbox, destination, protocol (a query's transport and type), host (the name asked
//! about) and reason (which differs between outcomes). The first event of a key is recorded at once and opens a window
//! ([`Aggregator::new`]'s `window_ms`); repeats within the window are only counted, and when the
//! window ends one record stands for all of them: the last repeat, with `count` set to how many
//! repeats there were. A key that did not repeat leaves nothing behind. Every event is
//! therefore counted exactly once: the counts of a key's records sum to how often it happened.
//!
//! Everything else (allowed connections, secrets, sandboxes, policy) passes through untouched.
//! Time is given by the caller in milliseconds from any fixed origin, so a monotonic clock
//! can drive it; nothing here reads a clock or does I/O.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use super::{Event, EventKind, Verdict};

/// Open windows, one per key that happened recently, and the repeats counted in them.
#[derive(Debug)]
pub struct Aggregator {
    window_ms: u64,
    max_keys: usize,
    open: HashMap<Key, Window>,
    /// When each window opened, oldest first. A key closed early (by a repeat after its
    /// window ended) leaves a stale entry, skipped because its time no longer matches.
    order: VecDeque<(u64, Key)>,
}

/// What an event sums by: everything a record says except who (pid, uid, comm) and when.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    kind: EventKind,
    sandbox: Option<String>,
    destination: Option<SocketAddr>,
    protocol: String,
    host: Option<String>,
    reason: String,
}

/// One key's window.
#[derive(Debug)]
struct Window {
    opened_ms: u64,
    /// The last repeat, its count the sum of all repeats so far; `None` until one comes.
    repeats: Option<Event>,
}

/// What to record now for an event offered to the [`Aggregator`]: nothing (a counted repeat),
/// the event, and the summary of a window that ended before it, in that order of writing.
#[derive(Debug, Default, PartialEq)]
pub struct Admitted {
    /// The repeats of the event's key from a window that had ended, to be written first.
    pub summary: Option<Event>,
    /// The event itself, when it opened a window or is not summed at all.
    pub event: Option<Event>,
}

impl IntoIterator for Admitted {
    type Item = Event;
    type IntoIter = std::iter::Chain<std::option::IntoIter<Event>, std::option::IntoIter<Event>>;

    fn into_iter(self) -> Self::IntoIter {
        self.summary.into_iter().chain(self.event)
    }
}

impl Aggregator {
    /// An aggregator summing repeats over `window_ms` and tracking at most `max_keys` keys at
    /// once; an event with a new key while that many are open is recorded as it is.
    pub fn new(window_ms: u64, max_keys: usize) -> Self {
        Self {
            window_ms,
            max_keys,
            open: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Takes `event`, which happened at `now_ms`, and says what to record now.
    pub fn offer(&mut self, event: Event, now_ms: u64) -> Admitted {
        let Some(key) = key(&event) else {
            return Admitted {
                summary: None,
                event: Some(event),
            };
        };
        let summary = match self.open.get_mut(&key) {
            Some(window) if now_ms < window.opened_ms.saturating_add(self.window_ms) => {
                let count = window
                    .repeats
                    .as_ref()
                    .map_or(0, Event::count)
                    .saturating_add(event.count());
                let mut event = event;
                event.set_count(count);
                window.repeats = Some(event);
                return Admitted::default();
            }
            Some(_) => self.open.remove(&key).and_then(|window| window.repeats),
            None => None,
        };
        if self.open.len() < self.max_keys {
            self.order.push_back((now_ms, key.clone()));
            self.open.insert(
                key,
                Window {
                    opened_ms: now_ms,
                    repeats: None,
                },
            );
        }
        Admitted {
            summary,
            event: Some(event),
        }
    }

    /// Closes every window that has ended by `now_ms` and returns the summaries of those that
    /// saw repeats, oldest first.
    pub fn due(&mut self, now_ms: u64) -> Vec<Event> {
        let mut summaries = Vec::new();
        while let Some((opened_ms, _)) = self.order.front() {
            if now_ms < opened_ms.saturating_add(self.window_ms) {
                break;
            }
            if let Some((opened_ms, key)) = self.order.pop_front() {
                if self
                    .open
                    .get(&key)
                    .is_some_and(|window| window.opened_ms == opened_ms)
                {
                    summaries.extend(self.open.remove(&key).and_then(|w| w.repeats));
                }
            }
        }
        summaries
    }

    /// Closes every window now, ended or not, and returns the summaries of those that saw
    /// repeats, oldest first (at shutdown, so that no count is lost).
    pub fn drain(&mut self) -> Vec<Event> {
        let mut summaries = Vec::new();
        for (opened_ms, key) in self.order.drain(..) {
            if self
                .open
                .get(&key)
                .is_some_and(|window| window.opened_ms == opened_ms)
            {
                summaries.extend(self.open.remove(&key).and_then(|w| w.repeats));
            }
        }
        self.open.clear();
        summaries
    }

    /// When the oldest open window ends (in the caller's milliseconds), if any is open.
    pub fn next_due(&self) -> Option<u64> {
        self.order
            .front()
            .map(|(opened_ms, _)| opened_ms.saturating_add(self.window_ms))
    }

    /// How many windows are open.
    pub fn open_windows(&self) -> usize {
        self.open.len()
    }
}

/// The key `event` sums by; `None` for events recorded one by one.
fn key(event: &Event) -> Option<Key> {
    match event {
        Event::KernelRefusal(r) => Some(Key {
            kind: EventKind::KernelRefusal,
            sandbox: r.sandbox.clone(),
            destination: r.destination,
            protocol: r.protocol.clone(),
            host: None,
            reason: r.reason.clone(),
        }),
        Event::DnsQuery(d) => Some(Key {
            kind: EventKind::DnsQuery,
            sandbox: d.sandbox.clone(),
            destination: None,
            protocol: format!("{} {} {}", d.transport, d.qtype, d.outcome.as_str()),
            host: Some(d.name.clone()),
            reason: d.reason.clone(),
        }),
        Event::Connection(c) if c.verdict == Verdict::Refused => Some(Key {
            kind: EventKind::Connection,
            sandbox: c.sandbox.clone(),
            destination: c.destination,
            protocol: c.protocol.as_str().to_owned(),
            host: c.host.clone(),
            reason: c.reason.clone(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{
        ConnProtocol, Connection, DnsOutcome, DnsQuery, KernelRefusal, SandboxChange,
    };

    fn refusal(sandbox: &str, port: u16, pid: u32) -> Event {
        Event::KernelRefusal(KernelRefusal {
            sandbox: Some(sandbox.into()),
            cgroup_id: 7,
            pid,
            uid: 0,
            gid: 0,
            comm: "flood".into(),
            destination: Some(SocketAddr::from(([127, 0, 0, 2], port))),
            protocol: "udp".into(),
            reason: "udp to a port other than 53".into(),
            count: 1,
        })
    }

    fn connection(verdict: Verdict, reason: &str) -> Event {
        Event::Connection(Connection {
            sandbox: Some("a".into()),
            cgroup_id: 1,
            pid: 2,
            uid: 0,
            gid: 0,
            comm: "curl".into(),
            client: None,
            destination: Some(SocketAddr::from(([127, 0, 0, 2], 443))),
            host: None,
            protocol: ConnProtocol::Tcp,
            rule: None,
            verdict,
            reason: reason.into(),
            count: 1,
        })
    }

    fn dns(name: &str, outcome: DnsOutcome) -> Event {
        Event::DnsQuery(DnsQuery {
            sandbox: Some("a".into()),
            cgroup_id: 1,
            name: name.into(),
            qtype: "A".into(),
            transport: "udp".into(),
            outcome,
            rule: None,
            reason: outcome.as_str().into(),
            count: 1,
        })
    }

    fn all(admitted: Admitted) -> Vec<Event> {
        admitted.into_iter().collect()
    }

    fn total(events: &[Event]) -> u64 {
        events.iter().map(Event::count).sum()
    }

    #[test]
    fn the_first_is_recorded_at_once_and_repeats_once_the_window_ends() {
        let mut agg = Aggregator::new(1000, 16);
        assert_eq!(all(agg.offer(refusal("a", 9, 1), 0)), [refusal("a", 9, 1)]);
        for pid in 2..=100 {
            assert_eq!(all(agg.offer(refusal("a", 9, pid), 10)), []);
        }
        assert_eq!(agg.next_due(), Some(1000));
        assert!(agg.due(999).is_empty());
        let summary = agg.due(1000);
        let mut expected = refusal("a", 9, 100);
        expected.set_count(99);
        assert_eq!(summary, [expected]);
        assert_eq!(agg.open_windows(), 0);
        assert_eq!(agg.next_due(), None);
        // A new window: recorded at once again.
        assert_eq!(all(agg.offer(refusal("a", 9, 5), 1500)).len(), 1);
    }

    #[test]
    fn a_lone_event_leaves_no_summary() {
        let mut agg = Aggregator::new(1000, 16);
        assert_eq!(all(agg.offer(refusal("a", 9, 1), 0)).len(), 1);
        assert!(agg.due(5000).is_empty());
        assert_eq!(agg.open_windows(), 0);
    }

    #[test]
    fn keys_are_sandbox_destination_and_reason() {
        let mut agg = Aggregator::new(1000, 16);
        assert_eq!(all(agg.offer(refusal("a", 9, 1), 0)).len(), 1);
        assert_eq!(all(agg.offer(refusal("b", 9, 1), 0)).len(), 1);
        assert_eq!(all(agg.offer(refusal("a", 10, 1), 0)).len(), 1);
        let mut other_reason = refusal("a", 9, 1);
        if let Event::KernelRefusal(r) = &mut other_reason {
            r.reason = "a socket sandboxes may not have".into();
        }
        assert_eq!(all(agg.offer(other_reason, 0)).len(), 1);
        assert_eq!(all(agg.offer(refusal("a", 9, 2), 0)), []);
        assert_eq!(agg.open_windows(), 4);
    }

    #[test]
    fn a_repeat_after_the_window_ended_closes_it_and_opens_another() {
        let mut agg = Aggregator::new(1000, 16);
        agg.offer(refusal("a", 9, 1), 0);
        agg.offer(refusal("a", 9, 2), 500);
        agg.offer(refusal("a", 9, 3), 600);
        let mut summary = refusal("a", 9, 3);
        summary.set_count(2);
        let admitted = agg.offer(refusal("a", 9, 4), 1200);
        assert_eq!(admitted.summary, Some(summary));
        assert_eq!(admitted.event, Some(refusal("a", 9, 4)));
        // The stale entry for the first window closes nothing; the second ends at 2200.
        assert!(agg.due(1500).is_empty());
        assert_eq!(agg.open_windows(), 1);
        agg.offer(refusal("a", 9, 5), 1300);
        assert_eq!(total(&agg.due(2200)), 1);
    }

    #[test]
    fn counts_sum_to_every_event_offered() {
        let mut agg = Aggregator::new(1000, 16);
        let mut recorded = Vec::new();
        for i in 0..20_000u64 {
            let now = i / 7;
            recorded.extend(agg.due(now));
            recorded.extend(agg.offer(refusal("a", 9, 1), now));
        }
        recorded.extend(agg.drain());
        assert_eq!(total(&recorded), 20_000);
        assert!(recorded.len() <= 6, "{}", recorded.len());
        assert_eq!(agg.open_windows(), 0);
    }

    #[test]
    fn only_refusals_and_refused_connections_are_summed() {
        let mut agg = Aggregator::new(1000, 16);
        let attached = Event::SandboxAttached(SandboxChange {
            name: "a".into(),
            cgroup: "/a".into(),
            cgroup_id: 1,
            container: None,
        });
        for _ in 0..3 {
            assert_eq!(
                all(agg.offer(attached.clone(), 0)),
                std::slice::from_ref(&attached)
            );
            let allowed = connection(Verdict::Allowed, "intercepted");
            assert_eq!(all(agg.offer(allowed.clone(), 0)), [allowed]);
        }
        assert_eq!(agg.open_windows(), 0);
        let refused = connection(Verdict::Refused, "denied by policy");
        assert_eq!(all(agg.offer(refused.clone(), 0)).len(), 1);
        assert_eq!(all(agg.offer(refused.clone(), 1)), []);
        assert_eq!(total(&agg.drain()), 1);
    }

    #[test]
    fn dns_queries_are_summed_by_name_and_outcome() {
        let mut agg = Aggregator::new(1000, 16);
        for _ in 0..50 {
            agg.offer(dns("a.test", DnsOutcome::Answered), 0);
            agg.offer(dns("evil.test", DnsOutcome::Refused), 0);
        }
        assert_eq!(
            all(agg.offer(dns("a.test", DnsOutcome::Failed), 0)).len(),
            1
        );
        assert_eq!(agg.open_windows(), 3);
        let summaries = agg.due(1000);
        assert_eq!(summaries.len(), 2);
        assert_eq!(total(&summaries), 98);
    }

    #[test]
    fn past_its_key_limit_it_records_new_keys_as_they_are() {
        let mut agg = Aggregator::new(1000, 2);
        for port in 0..10 {
            assert_eq!(all(agg.offer(refusal("a", port, 1), 0)).len(), 1);
            assert_eq!(
                all(agg.offer(refusal("a", port, 1), 0)).len(),
                usize::from(port >= 2)
            );
        }
        assert_eq!(agg.open_windows(), 2);
        assert_eq!(total(&agg.due(1000)), 2);
    }
}
