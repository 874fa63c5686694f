//! veil's listeners inside a sandbox's namespace: the proxy (TCP) and DNS (UDP and TCP), on
//! `127.0.0.1` and, where the namespace has IPv6, `::1`, at the ports the programs steer to.

use std::{
    fs::File,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket},
    path::Path,
};

use socket2::{Domain, Protocol, Socket, Type};
use veil_ebpf::{NETNS_IPV6, NETNS_OWN, SANDBOX_DNS_PORT, SANDBOX_PROXY_PORT};

use super::{cookie, within, NetnsError};

/// The ports veil listens on inside a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// The proxy's.
    pub proxy: u16,
    /// DNS's.
    pub dns: u16,
}

impl Ports {
    /// The ports the programs steer to in a sandbox's own namespace.
    pub const SANDBOX: Self = Self {
        proxy: SANDBOX_PROXY_PORT,
        dns: SANDBOX_DNS_PORT,
    };
}

/// veil's sockets in one namespace, non-blocking, ready to be handed to the runtime.
#[derive(Debug)]
pub struct NsListeners {
    /// The namespace's cookie.
    pub cookie: u64,
    /// Whether the namespace has IPv6 loopback (and so `::1` listeners).
    pub ipv6: bool,
    /// Where steered connections arrive.
    pub proxy: Vec<TcpListener>,
    /// DNS over UDP.
    pub dns_udp: Vec<UdpSocket>,
    /// DNS over TCP.
    pub dns_tcp: Vec<TcpListener>,
}

impl NsListeners {
    /// Opens veil's listeners at `ports` inside `ns` (kept at `path`, for errors).
    pub fn open(ns: &File, path: &Path, ports: Ports) -> Result<Self, NetnsError> {
        within(ns, path, || {
            let listen_err = |addr: SocketAddr| {
                let path = path.to_path_buf();
                move |source| NetnsError::Listen { path, addr, source }
            };
            let mut opened = Self {
                cookie: 0,
                ipv6: false,
                proxy: Vec::new(),
                dns_udp: Vec::new(),
                dns_tcp: Vec::new(),
            };
            for ip in [
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ] {
                let proxy = SocketAddr::new(ip, ports.proxy);
                let listener = match tcp(proxy) {
                    Ok(listener) => listener,
                    // No IPv6 in this namespace: native IPv6 is refused in the kernel.
                    Err(e) if ip.is_ipv6() && ipv6_missing(&e) => break,
                    Err(e) => return Err(listen_err(proxy)(e)),
                };
                opened.ipv6 = ip.is_ipv6();
                opened.proxy.push(listener);
                let dns = SocketAddr::new(ip, ports.dns);
                opened.dns_tcp.push(tcp(dns).map_err(listen_err(dns))?);
                opened.dns_udp.push(udp(dns).map_err(listen_err(dns))?);
            }
            opened.cookie = cookie(&opened.proxy[0]).map_err(listen_err(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                ports.proxy,
            )))?;
            Ok(opened)
        })
    }

    /// The flags the namespace is filed under in the kernel's namespace map.
    pub fn flags(&self) -> u32 {
        if self.ipv6 {
            NETNS_OWN | NETNS_IPV6
        } else {
            NETNS_OWN
        }
    }
}

/// Whether binding `::1` failed because the namespace has no IPv6.
fn ipv6_missing(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT)
    )
}

fn tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

fn udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}
