//! The TCP listener: queries with a 2-byte length in front (RFC 1035 §4.2.2), answered in
//! order on each connection. At most [`CLIENTS`] connections per listener (more are closed at
//! once), each closed after [`IDLE_TIMEOUT`] without a query or on one over [`MAX_QUERY`]
//! bytes. The connections are tasks owned by the loop, so dropping it ends them too.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinSet,
    time::timeout,
};

use super::{DnsService, Sandbox, Transport};

/// How many connections one listener serves at once.
pub const CLIENTS: usize = 64;
/// How long a connection may wait between queries, and take to send or receive one.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest query taken.
pub const MAX_QUERY: usize = 4096;
/// How long the loop pauses after accepting fails (out of descriptors, say).
const PAUSE: Duration = Duration::from_millis(10);

/// Serves `listener` for `sandbox` until dropped.
pub(super) async fn serve(service: DnsService, listener: TcpListener, sandbox: Sandbox) {
    let mut clients = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                log::debug!("DNS over TCP: {e}");
                tokio::time::sleep(PAUSE).await;
                continue;
            }
        };
        while clients.try_join_next().is_some() {}
        if clients.len() >= CLIENTS {
            log::debug!("DNS over TCP: {CLIENTS} connections already, closing another");
            continue;
        }
        clients.spawn(connection(service.clone(), stream, sandbox.clone()));
    }
}

/// Answers the queries on one connection until it closes, idles or misbehaves.
async fn connection(service: DnsService, mut stream: TcpStream, sandbox: Sandbox) {
    loop {
        let Ok(Ok(len)) = timeout(IDLE_TIMEOUT, stream.read_u16()).await else {
            return;
        };
        let len = usize::from(len);
        if len == 0 || len > MAX_QUERY {
            return;
        }
        let mut query = vec![0; len];
        if !matches!(
            timeout(IDLE_TIMEOUT, stream.read_exact(&mut query)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let Some(reply) = service.answer(&query, &sandbox, Transport::Tcp).await else {
            return;
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(2 + reply.len());
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&reply);
        if !matches!(
            timeout(IDLE_TIMEOUT, stream.write_all(&framed)).await,
            Ok(Ok(()))
        ) {
            return;
        }
    }
}
