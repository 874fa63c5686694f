//! The proxy's data path for now: accept a steered connection, find where it was going,
//! decide, audit, and relay bytes both ways without looking at them.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    time::timeout,
};
use veil_ebpf::ConnRecord;

use crate::{
    audit::{Connection, Event, Verdict},
    daemon::Daemon,
    steering,
};

/// How long veil waits for an upstream TCP handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts steered connections until the listener fails for good or the task is dropped.
pub async fn accept_loop(listener: TcpListener, daemon: Arc<Daemon>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let daemon = Arc::clone(&daemon);
                tokio::spawn(async move { handle(daemon, stream, peer).await });
            }
            Err(e) => {
                // Typically EMFILE/ENFILE under load: back off instead of spinning.
                log::warn!("accepting a steered connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Handles one steered connection from `peer` (the client's own address).
async fn handle(daemon: Arc<Daemon>, mut client: TcpStream, peer: SocketAddr) {
    let Some(record) = daemon.take_record(peer) else {
        log::warn!("refusing {peer}: no original-destination record (not a steered connect)");
        daemon.audit().record(Event::Connection(unknown(peer)));
        return;
    };
    let decision = decide(&record, daemon.listen());
    let mut event = describe(&daemon, &record, peer);
    let dst = match decision {
        Ok(dst) => dst,
        Err(reason) => {
            log::warn!("refusing {peer} (pid {}): {reason}", record.pid);
            event.reason = reason;
            daemon.audit().record(Event::Connection(event));
            return;
        }
    };
    let mut upstream = match timeout(CONNECT_TIMEOUT, TcpStream::connect(dst)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return refuse(&daemon, event, format!("upstream connect failed: {e}")),
        Err(_) => return refuse(&daemon, event, "upstream connect timed out".into()),
    };
    event.verdict = Verdict::Allowed;
    event.reason = "relayed".into();
    daemon.audit().record(Event::Connection(event));
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    match copy_bidirectional(&mut client, &mut upstream).await {
        Ok((up, down)) => log::debug!("{peer} -> {dst}: {up} bytes up, {down} bytes down"),
        Err(e) => log::debug!("{peer} -> {dst}: relay ended: {e}"),
    }
}

/// Where a steered connection may go: its original destination, unless that is veil's own
/// listener (a loop). Every destination is allowed otherwise until egress policy exists.
fn decide(record: &ConnRecord, listen: SocketAddr) -> Result<SocketAddr, String> {
    let dst = steering::socket_addr(&record.dst)
        .ok_or_else(|| format!("unknown address family {}", record.dst.family))?;
    let to_listener = dst.port() == listen.port()
        && (dst.ip() == listen.ip() || dst.ip().is_unspecified() || dst.ip().is_loopback());
    if to_listener {
        return Err("loop: the destination is veil's own listener".into());
    }
    Ok(dst)
}

fn refuse(daemon: &Daemon, mut event: Connection, reason: String) {
    log::info!(
        "refusing connection to {}: {reason}",
        event.destination.map(|d| d.to_string()).unwrap_or_default()
    );
    event.reason = reason;
    daemon.audit().record(Event::Connection(event));
}

/// The audit event for a connection with a kernel record, refused until decided otherwise.
fn describe(daemon: &Daemon, record: &ConnRecord, peer: SocketAddr) -> Connection {
    Connection {
        sandbox: daemon.sandbox_name(record.cgroup_id),
        cgroup_id: record.cgroup_id,
        pid: record.pid,
        uid: record.uid,
        gid: record.gid,
        comm: steering::comm(record),
        client: Some(peer),
        destination: steering::socket_addr(&record.dst),
        protocol: "tcp".into(),
        verdict: Verdict::Refused,
        reason: String::new(),
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
        protocol: "tcp".into(),
        verdict: Verdict::Refused,
        reason: "no original-destination record".into(),
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

    #[test]
    fn relays_to_the_original_destination() {
        let listen = "127.0.0.1:15001".parse().unwrap();
        assert_eq!(
            decide(&record_to("127.0.0.2:8080"), listen),
            Ok("127.0.0.2:8080".parse().unwrap())
        );
        // Same port on another host is not a loop.
        assert!(decide(&record_to("192.0.2.1:15001"), listen).is_ok());
    }

    #[test]
    fn refuses_loops_to_the_listener() {
        let listen = "127.0.0.1:15001".parse().unwrap();
        for dst in ["127.0.0.1:15001", "127.0.0.9:15001", "0.0.0.0:15001"] {
            assert!(
                decide(&record_to(dst), listen)
                    .unwrap_err()
                    .contains("loop"),
                "{dst}"
            );
        }
    }

    #[test]
    fn refuses_unknown_family() {
        let listen = "127.0.0.1:15001".parse().unwrap();
        assert!(decide(&ConnRecord::default(), listen).is_err());
    }
}
