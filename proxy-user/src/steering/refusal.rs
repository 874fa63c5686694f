//! The kernel's refusals as user space reads them: the ring buffer of [`Refusal`]s, the
//! per-CPU count of those the full ring dropped, and what a refusal means in words (pure).

use std::{io, mem::size_of, net::SocketAddr};

use aya::maps::{MapData, PerCpuArray, RingBuf};
use tokio::io::unix::AsyncFd;
use veil_ebpf::{
    Reason, Refusal, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, SOCK_DGRAM, SOCK_RAW,
    SOCK_STREAM,
};

use super::{keys::socket_addr, SteeringError};

/// Reads refusals from the kernel. Owned by the one task that forwards them to the audit log.
pub struct RefusalReader {
    ring: AsyncFd<RingBuf<MapData>>,
    dropped: PerCpuArray<MapData, u64>,
}

impl RefusalReader {
    /// Wraps the ring buffer and the drop counter. Must run inside a tokio runtime.
    pub(super) fn new(
        ring: RingBuf<MapData>,
        dropped: PerCpuArray<MapData, u64>,
    ) -> io::Result<Self> {
        // SAFETY: the ring buffer owns its map's fd, which stays open and unchanged until the
        // AsyncFd, which owns the ring buffer, is dropped.
        let ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Self { ring, dropped })
    }

    /// Waits until the ring holds refusals and takes them all.
    ///
    /// The kernel wakes the reader only for a record submitted while it had read everything
    /// before it, so readiness is cleared only once a read finds the ring empty, and the ring
    /// is read once more after clearing it: a record submitted between the empty read and the
    /// clear would otherwise wait, with every record after it, for a wake-up that never comes.
    pub async fn next_batch(&mut self) -> io::Result<Vec<Refusal>> {
        loop {
            let mut guard = self.ring.readable_mut().await?;
            let batch = drain(guard.get_inner_mut());
            if !batch.is_empty() {
                return Ok(batch);
            }
            guard.clear_ready();
            let batch = drain(guard.get_inner_mut());
            if !batch.is_empty() {
                return Ok(batch);
            }
        }
    }

    /// How many refusals the kernel could not put on the full ring, ever (summed over CPUs).
    pub fn dropped_total(&self) -> Result<u64, SteeringError> {
        let values = self
            .dropped
            .get(&0, 0)
            .map_err(|source| SteeringError::Map {
                name: veil_ebpf::MAP_REFUSALS_DROPPED,
                source: Box::new(source),
            })?;
        Ok(values.iter().sum())
    }
}

/// Every refusal on the ring now, oldest first.
fn drain(ring: &mut RingBuf<MapData>) -> Vec<Refusal> {
    let mut batch = Vec::new();
    while let Some(item) = ring.next() {
        match decode(&item) {
            Some(refusal) => batch.push(refusal),
            None => log::warn!("skipping a {}-byte refusal record", item.len()),
        }
    }
    batch
}

/// A ring record as a [`Refusal`]; `None` when its size is wrong.
pub fn decode(bytes: &[u8]) -> Option<Refusal> {
    if bytes.len() != size_of::<Refusal>() {
        return None;
    }
    // SAFETY: the slice holds exactly size_of::<Refusal>() bytes, read unaligned; Refusal is
    // #[repr(C)], made of integers only, without padding, so every bit pattern is valid.
    Some(unsafe { bytes.as_ptr().cast::<Refusal>().read_unaligned() })
}

/// The destination a refusal concerns, if it had one.
pub fn destination(refusal: &Refusal) -> Option<SocketAddr> {
    socket_addr(&refusal.dst)
}

/// Why the kernel refused, in words.
pub fn reason_text(raw: u32) -> String {
    match Reason::from_raw(raw) {
        Some(Reason::UdpNotDns) => {
            "udp to a port other than 53: only DNS (through veil, or to the sandbox's resolvers) \
             and loopback may use UDP"
                .into()
        }
        Some(Reason::ResolverNotAllowed) => "dns to a resolver the sandbox is not allowed".into(),
        Some(Reason::Ipv6Denied) => "native IPv6 is denied for this sandbox".into(),
        Some(Reason::NoListener) => "veil has no listener for this address family".into(),
        Some(Reason::SocketType) => "only TCP and UDP sockets are allowed".into(),
        Some(Reason::MapFull) => "veil's connection map is full".into(),
        Some(Reason::NetnsNotServed) => {
            "the sandbox is in a network namespace veil does not serve".into()
        }
        None => format!("unknown reason {raw}"),
    }
}

/// The (inet) socket a refusal concerns, in words: `tcp`, `udp`, `icmp`, `raw (icmp)`, ...
pub fn protocol_name(refusal: &Refusal) -> String {
    let protocol = inet_protocol(refusal.protocol);
    match refusal.sock_type {
        SOCK_RAW => format!("raw ({protocol})"),
        SOCK_STREAM | SOCK_DGRAM => protocol,
        other => format!("{protocol} (socket type {other})"),
    }
}

fn inet_protocol(protocol: u32) -> String {
    match protocol {
        IPPROTO_ICMP => "icmp".into(),
        IPPROTO_TCP => "tcp".into(),
        IPPROTO_UDP => "udp".into(),
        IPPROTO_ICMPV6 => "icmpv6".into(),
        132 => "sctp".into(),
        136 => "udplite".into(),
        255 => "ip".into(),
        256 => "smc".into(),
        262 => "mptcp".into(),
        other => format!("protocol {other}"),
    }
}

#[cfg(test)]
mod tests {
    use veil_ebpf::{AF_INET, AF_INET6};

    use super::*;

    fn refusal(family: u16, sock_type: u32, protocol: u32) -> Refusal {
        Refusal {
            family: u32::from(family),
            sock_type,
            protocol,
            ..Refusal::default()
        }
    }

    #[test]
    fn decodes_exactly_one_record() {
        let mut original = refusal(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
        original.pid = 42;
        original.comm[..4].copy_from_slice(b"dig\0");
        original.dst = super::super::endpoint("127.0.0.2:9999".parse().unwrap());
        // SAFETY: Refusal is plain integers without padding, so its bytes are initialised.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&original as *const Refusal).cast::<u8>(),
                size_of::<Refusal>(),
            )
        }
        .to_vec();
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded, original);
        assert_eq!(
            destination(&decoded),
            Some("127.0.0.2:9999".parse().unwrap())
        );
        assert_eq!(decode(&bytes[1..]), None);
        assert_eq!(destination(&Refusal::default()), None);
    }

    #[test]
    fn names_sockets() {
        for (r, name) in [
            (refusal(AF_INET, SOCK_STREAM, IPPROTO_TCP), "tcp"),
            (refusal(AF_INET6, SOCK_DGRAM, IPPROTO_UDP), "udp"),
            (refusal(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), "icmp"),
            (refusal(AF_INET, SOCK_RAW, IPPROTO_ICMP), "raw (icmp)"),
            (refusal(AF_INET6, SOCK_RAW, 255), "raw (ip)"),
            (refusal(AF_INET, SOCK_STREAM, 262), "mptcp"),
            (refusal(AF_INET, 5, 132), "sctp (socket type 5)"),
            (refusal(AF_INET, SOCK_DGRAM, 99), "protocol 99"),
        ] {
            assert_eq!(protocol_name(&r), name);
        }
    }

    #[test]
    fn every_reason_has_words() {
        for raw in 1..=6 {
            assert!(Reason::from_raw(raw).is_some());
            assert!(!reason_text(raw).starts_with("unknown"), "{raw}");
        }
        assert_eq!(reason_text(99), "unknown reason 99");
    }
}
