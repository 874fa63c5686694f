//! The front of the data path: accept a steered connection, take the kernel's record of
//! where it was going, refuse loops and connections without a record, and hand the rest to
//! [`crate::proxy`].

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use tokio::net::{TcpListener, TcpStream};
use veil_ebpf::ConnRecord;

use crate::{
    audit::{ConnProtocol, Connection, Verdict},
    proxy::{self, Context, Outcome, Steered},
    sandbox::Registry,
    steering::{self, OrigDsts},
};

/// What the front of the data path holds: the kernel's records, the names of sandboxes, veil's
/// own addresses (never a destination), and the data path's services.
pub struct Gate {
    /// The data path's services.
    pub ctx: Arc<Context>,
    /// The kernel's original-destination records.
    pub records: OrigDsts,
    /// The sandbox registry, to name the sandbox in records.
    pub registry: Arc<Registry>,
    /// Every address steered connects are rewritten to.
    pub listeners: Vec<SocketAddr>,
    /// The TCP control API's address, if it listens.
    pub api: Option<SocketAddr>,
    /// Open connections per sandbox (by its cgroup id), capped at the limit.
    pub open: OpenConnections,
}

/// How many connections each sandbox has open through veil.
#[derive(Default)]
pub struct OpenConnections(Mutex<HashMap<u64, usize>>);

/// One open connection of a sandbox; closing it (dropping this) frees its place.
struct Slot<'a> {
    open: &'a OpenConnections,
    sandbox: u64,
}

impl OpenConnections {
    /// Takes a place for a connection of `sandbox`, if it has fewer than `limit` open.
    fn take(&self, sandbox: u64, limit: usize) -> Option<Slot<'_>> {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(sandbox).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Slot {
            open: self,
            sandbox,
        })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut open = self.open.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.sandbox) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.sandbox);
            }
        }
    }
}

/// Accepts steered connections on a listener in the network namespace with cookie `netns`
/// until the listener fails for good or the task is dropped.
pub async fn accept_loop(listener: TcpListener, gate: Arc<Gate>, netns: u64) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let gate = Arc::clone(&gate);
                tokio::spawn(async move { handle(&gate, stream, netns, peer).await });
            }
            Err(e) => {
                // Typically EMFILE/ENFILE under load: back off instead of spinning.
                log::warn!("accepting a steered connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Handles one steered connection from `peer` (the client's own address) in the network
/// namespace `netns`.
async fn handle(gate: &Gate, client: TcpStream, netns: u64, peer: SocketAddr) {
    let accepted = Instant::now();
    let ctx = Arc::clone(&gate.ctx);
    let Some(record) = gate.records.take(netns, peer) else {
        log::warn!("refusing {peer}: no original-destination record (not a steered connect)");
        return ctx.conclude(unknown(peer), accepted, Outcome::NoRecord);
    };
    let _ = client.set_nodelay(true);
    let event = describe(&gate.registry, &record, peer);
    let sandbox = steering::sandbox_cgroup(record.cgroup_id, record.sandbox_id);
    let limit = ctx.limits.per_sandbox;
    let Some(_slot) = gate.open.take(sandbox, limit) else {
        let reason = format!("the sandbox has {limit} connections open through veil, its limit");
        return ctx.conclude(event, accepted, Outcome::Denied(reason));
    };
    match decide(&record, &gate.listeners, gate.api) {
        Ok(dst) => {
            proxy::serve(Steered {
                ctx,
                client,
                dst,
                sandbox,
                event,
                accepted,
                upstream: None,
            })
            .await
        }
        Err(reason) => ctx.conclude(event, accepted, Outcome::Denied(reason)),
    }
}

/// Where a steered connection may go: its original destination, unless that is one of veil's
/// own listeners (a loop) or its TCP control API (`api`). The egress policy decides the rest.
fn decide(
    record: &ConnRecord,
    listeners: &[SocketAddr],
    api: Option<SocketAddr>,
) -> Result<SocketAddr, String> {
    let dst = steering::socket_addr(&record.dst)
        .ok_or_else(|| format!("unknown address family {}", record.dst.family))?;
    if listeners.iter().any(|listen| reaches(dst, *listen)) {
        return Err("loop: the destination is veil's own listener".into());
    }
    if api.is_some_and(|api| reaches(dst, api)) {
        return Err("the destination is veil's control API".into());
    }
    Ok(dst)
}

/// Whether connecting to `dst` would reach a socket of this machine bound to `bound`.
fn reaches(dst: SocketAddr, bound: SocketAddr) -> bool {
    let ip = dst.ip().to_canonical();
    dst.port() == bound.port()
        && (ip == bound.ip().to_canonical()
            || ip.is_unspecified()
            || ip.is_loopback()
            || (bound.ip().is_unspecified() && is_local(ip)))
}

/// Whether `ip` is an address of one of this machine's interfaces.
fn is_local(ip: IpAddr) -> bool {
    // Without the list, assume it is: refusing is the safe answer.
    nix::ifaddrs::getifaddrs().map_or(true, |mut addrs| {
        addrs.any(|a| {
            a.address.is_some_and(|addr| {
                addr.as_sockaddr_in().map(|v4| IpAddr::from(v4.ip())) == Some(ip)
                    || addr.as_sockaddr_in6().map(|v6| IpAddr::from(v6.ip())) == Some(ip)
            })
        })
    })
}

/// The audit event for a connection with a kernel record, refused until decided otherwise.
fn describe(registry: &Registry, record: &ConnRecord, peer: SocketAddr) -> Connection {
    Connection {
        sandbox: registry.record_name(steering::sandbox_cgroup(
            record.cgroup_id,
            record.sandbox_id,
        )),
        cgroup_id: record.cgroup_id,
        pid: record.pid,
        uid: record.uid,
        gid: record.gid,
        comm: steering::comm(record),
        client: Some(peer),
        destination: steering::socket_addr(&record.dst),
        host: None,
        protocol: ConnProtocol::Tcp,
        rule: None,
        verdict: Verdict::Refused,
        reason: "undecided".into(),
        count: 1,
    }
}

/// The audit event for a connection veil has no kernel record for.
fn unknown(peer: SocketAddr) -> Connection {
    Connection {
        sandbox: None,
        cgroup_id: 0,
        pid: 0,
        uid: 0,
        gid: 0,
        comm: String::new(),
        client: Some(peer),
        destination: None,
        host: None,
        protocol: ConnProtocol::Tcp,
        rule: None,
        verdict: Verdict::Refused,
        reason: "undecided".into(),
        count: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_to(addr: &str) -> ConnRecord {
        ConnRecord {
            dst: steering::endpoint(addr.parse().unwrap()),
            ..ConnRecord::default()
        }
    }

    fn listeners() -> [SocketAddr; 2] {
        [
            "127.0.0.1:15001".parse().unwrap(),
            "[::1]:15002".parse().unwrap(),
        ]
    }

    #[test]
    fn a_sandbox_gets_at_most_its_limit_of_connections() {
        let open = OpenConnections::default();
        let first = open.take(7, 2).unwrap();
        let second = open.take(7, 2).unwrap();
        assert!(open.take(7, 2).is_none(), "the third is over the limit");
        assert!(open.take(8, 2).is_some(), "another sandbox is not affected");
        drop(first);
        let third = open.take(7, 2).unwrap();
        drop((second, third));
        assert!(
            open.0.lock().unwrap().is_empty(),
            "closed connections free their places"
        );
    }

    #[test]
    fn relays_to_the_original_destination() {
        assert_eq!(
            decide(&record_to("127.0.0.2:8080"), &listeners(), None),
            Ok("127.0.0.2:8080".parse().unwrap())
        );
        // Same port on another host is not a loop.
        assert!(decide(&record_to("192.0.2.1:15001"), &listeners(), None).is_ok());
        assert!(decide(&record_to("[2001:db8::1]:15002"), &listeners(), None).is_ok());
    }

    #[test]
    fn refuses_loops_to_the_listeners() {
        for dst in [
            "127.0.0.1:15001",
            "127.0.0.9:15001",
            "0.0.0.0:15001",
            "[::1]:15002",
            "[::]:15002",
            "127.0.0.1:15002",
        ] {
            assert!(
                decide(&record_to(dst), &listeners(), None)
                    .unwrap_err()
                    .contains("loop"),
                "{dst}"
            );
        }
    }

    #[test]
    fn refuses_the_control_api() {
        let listen = ["127.0.0.1:15001".parse().unwrap()];
        let api = Some("127.0.0.1:15003".parse().unwrap());
        for dst in ["127.0.0.1:15003", "127.0.0.5:15003", "0.0.0.0:15003"] {
            assert!(
                decide(&record_to(dst), &listen, api)
                    .unwrap_err()
                    .contains("control API"),
                "{dst}"
            );
        }
        assert!(decide(&record_to("192.0.2.1:15003"), &listen, api).is_ok());
        assert!(decide(&record_to("127.0.0.1:15004"), &listen, api).is_ok());
        // An API on every address is reached through any local one, not through others.
        let everywhere = Some("0.0.0.0:15003".parse().unwrap());
        assert!(decide(&record_to("127.0.0.3:15003"), &listen, everywhere).is_err());
        assert!(decide(&record_to("192.0.2.1:15003"), &listen, everywhere).is_ok());
    }

    #[test]
    fn refuses_unknown_family() {
        assert!(decide(&ConnRecord::default(), &listeners(), None).is_err());
    }
}
