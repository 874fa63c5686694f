//! Conversions between socket addresses and the kernel's map types. Pure.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use veil_ebpf::{ConnRecord, Endpoint, AF_INET, AF_INET6};

/// The map key for a socket address, as `sock_ops` files it.
pub fn endpoint(addr: SocketAddr) -> Endpoint {
    match addr {
        SocketAddr::V4(v4) => Endpoint {
            addr: [u32::from_ne_bytes(v4.ip().octets()), 0, 0, 0],
            port: v4.port(),
            family: AF_INET,
        },
        SocketAddr::V6(v6) => {
            let o = v6.ip().octets();
            let word = |i: usize| u32::from_ne_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            Endpoint {
                addr: [word(0), word(4), word(8), word(12)],
                port: v6.port(),
                family: AF_INET6,
            }
        }
    }
}

/// The socket address an endpoint describes; `None` for an unknown family.
pub fn socket_addr(ep: &Endpoint) -> Option<SocketAddr> {
    let ip = match ep.family {
        AF_INET => IpAddr::V4(Ipv4Addr::from(ep.addr[0].to_ne_bytes())),
        AF_INET6 => {
            let mut octets = [0u8; 16];
            for (chunk, word) in octets.chunks_exact_mut(4).zip(ep.addr) {
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, ep.port))
}

/// The task name in a record, up to its first NUL, with invalid UTF-8 replaced.
pub fn comm(record: &ConnRecord) -> String {
    let end = record
        .comm
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(record.comm.len());
    String::from_utf8_lossy(&record.comm[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_key_matches_kernel_layout() {
        let ep = endpoint("127.0.0.2:8080".parse().unwrap());
        // The kernel stores 127.0.0.2 as the bytes 7f 00 00 02 in memory.
        assert_eq!(ep.addr[0].to_ne_bytes(), [127, 0, 0, 2]);
        assert_eq!(ep.addr[1..], [0, 0, 0]);
        assert_eq!((ep.port, ep.family), (8080, AF_INET));
    }

    #[test]
    fn round_trips() {
        for s in [
            "127.0.0.1:1",
            "10.1.2.3:65535",
            "[::1]:443",
            "[2001:db8::7]:22",
        ] {
            let addr: SocketAddr = s.parse().unwrap();
            assert_eq!(socket_addr(&endpoint(addr)), Some(addr), "{s}");
        }
    }

    #[test]
    fn unknown_family() {
        let ep = Endpoint {
            family: 0,
            ..Endpoint::default()
        };
        assert_eq!(socket_addr(&ep), None);
    }

    #[test]
    fn comm_stops_at_nul_and_tolerates_bad_utf8() {
        let mut rec = ConnRecord::default();
        rec.comm[..4].copy_from_slice(b"curl");
        assert_eq!(comm(&rec), "curl");
        rec.comm = [b'x'; 16];
        assert_eq!(comm(&rec), "x".repeat(16));
        rec.comm = [0xff; 16];
        assert!(!comm(&rec).is_empty());
    }

    #[test]
    fn record_layout_is_padding_free() {
        use core::mem::size_of;
        assert_eq!(size_of::<Endpoint>(), 20);
        assert_eq!(size_of::<ConnRecord>(), 104);
        assert_eq!(size_of::<veil_ebpf::PeerKey>(), 32);
        assert_eq!(size_of::<veil_ebpf::Settings>(), 136);
        assert_eq!(size_of::<veil_ebpf::Refusal>(), 80);
    }

    #[test]
    fn v4_mapped_words_match_std() {
        let v4: Ipv4Addr = "127.0.0.2".parse().unwrap();
        let mapped = endpoint(SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), 1));
        assert!(veil_ebpf::is_v4_mapped(&mapped.addr));
        assert_eq!(
            mapped.addr,
            veil_ebpf::v4_mapped(u32::from_ne_bytes(v4.octets()))
        );
        assert!(!veil_ebpf::is_v4_mapped(
            &endpoint("[::1]:1".parse().unwrap()).addr
        ));
    }
}
