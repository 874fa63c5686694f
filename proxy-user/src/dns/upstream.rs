//! Asking the resolvers: UDP from a fresh socket (a random port) with a random id, a timeout
//! and a retry over the list, and TCP when a resolver says its answer was truncated. A
//! datagram that is not the answer (another id or question, garbage) is ignored, not taken.

use std::{
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use ring::rand::{SecureRandom, SystemRandom};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
    time::{timeout, Instant},
};
use veil_core::dns::{Query, Response};

use super::DnsError;

/// How long one resolver is given to answer over UDP.
pub const UDP_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long one resolver is given to answer over TCP, connecting included.
pub const TCP_TIMEOUT: Duration = Duration::from_secs(3);
/// How many UDP questions one query may cost at most (the resolvers in turn, twice round
/// a list of one or two).
pub const ATTEMPTS: usize = 4;
/// The largest UDP answer read (veil advertises 1,232 bytes; a larger answer comes truncated).
const UDP_BUFFER: usize = 4096;

/// Asks `resolvers` for `query`'s answer.
pub(super) async fn resolve(resolvers: &[SocketAddr], query: &Query) -> Result<Response, DnsError> {
    if resolvers.is_empty() {
        return Err(DnsError::NoResolvers);
    }
    let mut last = DnsError::NoResolvers;
    for &resolver in resolvers.iter().cycle().take(ATTEMPTS.max(resolvers.len())) {
        match ask_udp(resolver, query).await {
            Ok(response) if response.is_truncated() => match ask_tcp(resolver, query).await {
                Ok(whole) => return Ok(whole),
                Err(e) => {
                    log::debug!("DNS over TCP to {resolver}: {e}");
                    return Ok(response);
                }
            },
            Ok(response) => return Ok(response),
            Err(e) => {
                log::debug!("DNS to {resolver}: {e}");
                last = e;
            }
        }
    }
    Err(last)
}

/// Asks `resolver` over UDP.
async fn ask_udp(resolver: SocketAddr, query: &Query) -> Result<Response, DnsError> {
    let local: SocketAddr = match resolver {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.map_err(DnsError::Io)?;
    socket.connect(resolver).await.map_err(DnsError::Io)?;
    let id = random_id()?;
    socket
        .send(&query.upstream(id))
        .await
        .map_err(DnsError::Io)?;
    let deadline = Instant::now() + UDP_TIMEOUT;
    let mut buf = vec![0; UDP_BUFFER];
    loop {
        let received = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .map_err(|_| DnsError::Timeout)?;
        let len = received.map_err(DnsError::Io)?;
        match Response::parse(&buf[..len], query, id) {
            Ok(response) => return Ok(response),
            Err(e) => log::debug!("ignoring a datagram from {resolver}: {e}"),
        }
    }
}

/// Asks `resolver` over TCP.
async fn ask_tcp(resolver: SocketAddr, query: &Query) -> Result<Response, DnsError> {
    let id = random_id()?;
    let exchange = async {
        let mut stream = TcpStream::connect(resolver).await?;
        let message = query.upstream(id);
        let len = u16::try_from(message.len()).map_err(std::io::Error::other)?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&message);
        stream.write_all(&framed).await?;
        let len = stream.read_u16().await?;
        let mut answer = vec![0; usize::from(len)];
        stream.read_exact(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = timeout(TCP_TIMEOUT, exchange)
        .await
        .map_err(|_| DnsError::Timeout)?
        .map_err(DnsError::Io)?;
    Response::parse(&answer, query, id).map_err(DnsError::Message)
}

/// A random query id, so that only someone who saw the question can answer it.
fn random_id() -> Result<u16, DnsError> {
    let mut id = [0; 2];
    SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| DnsError::Random)?;
    Ok(u16::from_be_bytes(id))
}
