//! Addresses in the contexts the kernel hands the programs. The verifier only allows 32-bit
//! accesses to the IPv6 address words, so they are read and written one word at a time with
//! volatile accesses the compiler cannot merge into wider ones.

use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};

use aya_ebpf::bindings::{bpf_sock_addr, bpf_sock_ops};
use veil_ebpf::{is_v4_mapped, Endpoint, AF_INET, AF_INET6};

/// The IPv6 destination of a `connect6`/`sendmsg6` context.
///
/// # Safety
/// `sa` must be the context of a `*6` sock_addr program.
pub unsafe fn user_ip6(sa: *const bpf_sock_addr) -> [u32; 4] {
    let mut ip6 = [0; 4];
    for (i, word) in ip6.iter_mut().enumerate() {
        // SAFETY: the caller passes a valid context with a readable user_ip6.
        *word = unsafe { read_volatile(addr_of!((*sa).user_ip6[i])) };
    }
    ip6
}

/// Rewrites the IPv6 address of a `connect6`/`getpeername6` context.
///
/// # Safety
/// `sa` must be the context of a `*6` sock_addr program that may write `user_ip6`.
pub unsafe fn set_user_ip6(sa: *mut bpf_sock_addr, ip6: [u32; 4]) {
    for (i, word) in ip6.into_iter().enumerate() {
        // SAFETY: the caller passes a valid context with a writable user_ip6.
        unsafe { write_volatile(addr_of_mut!((*sa).user_ip6[i]), word) };
    }
}

/// The socket's local IPv6 address in a `sock_ops` context.
///
/// # Safety
/// `ops` must be a valid `sock_ops` context.
pub unsafe fn local_ip6(ops: *const bpf_sock_ops) -> [u32; 4] {
    let mut ip6 = [0; 4];
    for (i, word) in ip6.iter_mut().enumerate() {
        // SAFETY: the caller passes a valid sock_ops context.
        *word = unsafe { read_volatile(addr_of!((*ops).local_ip6[i])) };
    }
    ip6
}

/// The port of a sock_addr context, host byte order (the context keeps it in network byte
/// order in the low 16 bits of a u32).
pub fn user_port(sa: &bpf_sock_addr) -> u16 {
    u16::from_be(sa.user_port as u16)
}

/// A port in the form a sock_addr context stores it.
pub fn port_field(port: u16) -> u32 {
    u32::from(port.to_be())
}

/// Whether IPv6 address words are all zero (`::`, or no listener configured).
pub fn is_unspecified(ip6: &[u32; 4]) -> bool {
    ip6[0] == 0 && ip6[1] == 0 && ip6[2] == 0 && ip6[3] == 0
}

/// An IPv4 endpoint.
pub fn endpoint4(ip4: u32, port: u16) -> Endpoint {
    Endpoint {
        addr: [ip4, 0, 0, 0],
        port,
        family: AF_INET,
    }
}

/// An endpoint for an IPv6 address; a v4-mapped one is an IPv4 endpoint, which is what
/// the connection really is and what veil sees as the peer.
pub fn endpoint6(ip6: [u32; 4], port: u16) -> Endpoint {
    if is_v4_mapped(&ip6) {
        endpoint4(ip6[3], port)
    } else {
        Endpoint {
            addr: ip6,
            port,
            family: AF_INET6,
        }
    }
}
