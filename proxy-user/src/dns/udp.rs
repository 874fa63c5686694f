//! The UDP listener: one datagram, one query, read by [`WORKERS`] tasks. Refusals and cached
//! answers go out at once; queries for the resolvers run as tasks, at most [`IN_FLIGHT`] in
//! all, owned by the workers, so dropping the listener's task ends them too.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{net::UdpSocket, task::JoinSet};

use super::{DnsService, Sandbox, Step, Transport};

/// How many tasks read the socket at once: one per core of the machines veil is measured
/// on, so one sandbox's queries are answered in parallel.
const WORKERS: usize = 2;
/// How many queries may wait for the resolvers at once, per listener (over all workers).
pub const IN_FLIGHT: usize = 256;
/// The largest query read; a longer datagram is cut and answered FORMERR.
pub const MAX_QUERY: usize = 4096;
/// How long the loop pauses after the socket fails, so that a failing socket does not spin.
const PAUSE: Duration = Duration::from_millis(10);

/// Serves `socket` for `sandbox` until dropped (which ends every worker).
pub(super) async fn serve(service: DnsService, socket: UdpSocket, sandbox: Sandbox) {
    let socket = Arc::new(socket);
    let sandbox = Arc::new(sandbox);
    let mut others = JoinSet::new();
    for _ in 1..WORKERS {
        others.spawn(worker(
            service.clone(),
            Arc::clone(&socket),
            Arc::clone(&sandbox),
        ));
    }
    worker(service, socket, sandbox).await;
}

/// One reader of the socket: refusals and cached answers at once, forwards as tasks it owns.
async fn worker(service: DnsService, socket: Arc<UdpSocket>, sandbox: Arc<Sandbox>) {
    let mut forwarding = JoinSet::new();
    let mut buf = vec![0; MAX_QUERY];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(e) => {
                log::debug!("DNS over UDP: {e}");
                tokio::time::sleep(PAUSE).await;
                continue;
            }
        };
        while forwarding.try_join_next().is_some() {}
        let reply = match service.prepare(&buf[..len], &sandbox, Transport::Udp) {
            Step::Reply(reply) => reply,
            Step::Forward(pending) if forwarding.len() >= IN_FLIGHT / WORKERS => {
                Some(service.overloaded(pending, &sandbox, Transport::Udp))
            }
            Step::Forward(pending) => {
                let (service, socket, sandbox) =
                    (service.clone(), Arc::clone(&socket), Arc::clone(&sandbox));
                forwarding.spawn(async move {
                    let reply = service.forward(pending, &sandbox, Transport::Udp).await;
                    send(&socket, &reply, peer).await;
                });
                None
            }
        };
        if let Some(reply) = reply {
            send(&socket, &reply, peer).await;
        }
    }
}

/// Sends `reply` to `peer`; a failure only loses this answer (the client asks again).
async fn send(socket: &UdpSocket, reply: &[u8], peer: SocketAddr) {
    if let Err(e) = socket.send_to(reply, peer).await {
        log::debug!("DNS answer to {peer}: {e}");
    }
}
