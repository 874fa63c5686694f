//! Forwarding what the kernel refused sandboxes into the audit log: every refusal read from
//! the ring buffer goes to [`crate::audit::AuditHandle::record`], which records the first of a
//! sandbox, destination and reason at once and sums its repeats over the next second into one
//! `kernel_refusal` record with a `count`; and a `kernel_refusals_dropped` record whenever the
//! kernel's count of refusals the full ring could not take has grown.
//!
//! The drop counter lives as long as the pinned maps, across daemon restarts; each
//! `kernel_refusals_dropped` record carries the counter's total, so a restarted daemon
//! continues from the last recorded total and also reports drops from while it was down.

use std::{sync::Arc, time::Duration};

use veil_ebpf::Refusal;

use crate::{
    audit::{Event, EventKind, Filter, KernelRefusal, RefusalsDropped},
    daemon::Daemon,
    steering::{self, RefusalReader},
};

/// How often the drop counter is read when no refusals arrive.
const DROP_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Reads refusals and the drop counter until the task is dropped or the ring fails.
pub async fn forward(mut reader: RefusalReader, daemon: Arc<Daemon>) {
    let mut recorded_drops = last_recorded_drop_total(&daemon);
    let mut tick = tokio::time::interval(DROP_CHECK_INTERVAL);
    loop {
        tokio::select! {
            batch = reader.next_batch() => match batch {
                Ok(refusals) => {
                    for refusal in &refusals {
                        let sandbox_id =
                            steering::sandbox_cgroup(refusal.cgroup_id, refusal.sandbox_id);
                        let event = describe(refusal, daemon.sandbox_name(sandbox_id));
                        log::trace!(
                            "kernel refused pid {} ({}) {}: {}",
                            event.pid,
                            event.comm,
                            event.protocol,
                            event.reason
                        );
                        daemon.audit().record(Event::KernelRefusal(event));
                    }
                }
                Err(e) => {
                    log::error!("reading the kernel refusal ring: {e}; refusals are no longer audited");
                    return;
                }
            },
            _ = tick.tick() => {}
        }
        match reader.dropped_total() {
            Ok(total) => {
                if let Some(dropped) = drops_since(recorded_drops, total) {
                    log::warn!(
                        "{} kernel refusals were not recorded one by one: the ring was full",
                        dropped.dropped
                    );
                    recorded_drops = dropped.total;
                    daemon.audit().record(Event::KernelRefusalsDropped(dropped));
                }
            }
            Err(e) => log::warn!("reading the kernel refusal drop counter: {e}"),
        }
    }
}

/// The audit event for a refusal by a process of sandbox `sandbox`.
fn describe(refusal: &Refusal, sandbox: Option<String>) -> KernelRefusal {
    KernelRefusal {
        sandbox,
        cgroup_id: refusal.cgroup_id,
        pid: refusal.pid,
        uid: refusal.uid,
        gid: refusal.gid,
        comm: comm(&refusal.comm),
        destination: steering::destination(refusal),
        protocol: steering::protocol_name(refusal),
        reason: steering::reason_text(refusal.reason),
        count: 1,
    }
}

/// The drop record due when the kernel's counter reads `total` and `recorded` drops are on
/// record already; none when nothing new was dropped. A total below the recorded one means
/// the maps were created afresh, so all of it is new.
fn drops_since(recorded: u64, total: u64) -> Option<RefusalsDropped> {
    let base = if total < recorded { 0 } else { recorded };
    (total > base).then_some(RefusalsDropped {
        dropped: total - base,
        total,
    })
}

/// The total in the newest `kernel_refusals_dropped` record, zero if there is none.
fn last_recorded_drop_total(daemon: &Daemon) -> u64 {
    let filter = Filter {
        kind: Some(EventKind::KernelRefusalsDropped),
        limit: Some(1),
        ..Filter::default()
    };
    match daemon.audit_query(&filter) {
        Ok(records) => records
            .last()
            .and_then(|record| match &record.event {
                Event::KernelRefusalsDropped(d) => Some(d.total),
                _ => None,
            })
            .unwrap_or(0),
        Err(e) => {
            log::warn!("reading the last recorded refusal drop total: {e}; counting from zero");
            0
        }
    }
}

/// A NUL-padded `comm` as text.
fn comm(raw: &[u8; 16]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_a_refused_udp_send() {
        let mut refusal = Refusal {
            cgroup_id: 99,
            sandbox_id: 42,
            pid: 7,
            uid: 65534,
            gid: 65534,
            reason: veil_ebpf::Reason::UdpNotDns as u32,
            family: u32::from(veil_ebpf::AF_INET),
            sock_type: veil_ebpf::SOCK_DGRAM,
            protocol: veil_ebpf::IPPROTO_UDP,
            dst: steering::endpoint("127.0.0.2:443".parse().unwrap()),
            ..Refusal::default()
        };
        refusal.comm[..7].copy_from_slice(b"python3");
        let event = describe(&refusal, Some("web".into()));
        assert_eq!(event.sandbox.as_deref(), Some("web"));
        assert_eq!(event.cgroup_id, 99);
        assert_eq!((event.pid, event.uid, event.gid), (7, 65534, 65534));
        assert_eq!(event.comm, "python3");
        assert_eq!(event.destination, Some("127.0.0.2:443".parse().unwrap()));
        assert_eq!(event.protocol, "udp");
        assert!(
            event.reason.contains("port other than 53"),
            "{}",
            event.reason
        );
    }

    #[test]
    fn counts_only_new_drops() {
        assert_eq!(drops_since(0, 0), None);
        assert_eq!(drops_since(5, 5), None);
        assert_eq!(
            drops_since(5, 8),
            Some(RefusalsDropped {
                dropped: 3,
                total: 8
            })
        );
        // The maps were made afresh (`veil reset`): the counter started over.
        assert_eq!(
            drops_since(10, 4),
            Some(RefusalsDropped {
                dropped: 4,
                total: 4
            })
        );
    }

    #[test]
    fn comm_stops_at_nul() {
        let mut raw = [0u8; 16];
        raw[..4].copy_from_slice(b"ping");
        assert_eq!(comm(&raw), "ping");
        assert_eq!(comm(&[b'x'; 16]), "x".repeat(16));
    }
}
