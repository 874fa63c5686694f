//! Which network namespace a task is in, and whether veil serves it.

use aya_ebpf::{helpers::generated::bpf_get_netns_cookie, programs::SockAddrContext};
use veil_ebpf::{NETNS_IPV6, NETNS_OWN};

use super::VEIL_NETNS;

/// A namespace veil serves, as its cookie and `NETNS_*` flags.
#[derive(Clone, Copy)]
pub struct Netns {
    pub cookie: u64,
    flags: u32,
}

impl Netns {
    /// The namespace of the socket in `ctx`, if veil serves it.
    pub fn of(ctx: &SockAddrContext) -> Option<Self> {
        // SAFETY: bpf_get_netns_cookie accepts a sock_addr context.
        let cookie = unsafe { bpf_get_netns_cookie(ctx.sock_addr.cast()) };
        // SAFETY: the value is copied at once; user space only ever writes whole entries.
        let flags = *unsafe { VEIL_NETNS.get(cookie) }?;
        Some(Self { cookie, flags })
    }

    /// Whether this is a sandbox's own namespace (loopback inside, DNS through veil).
    pub fn own(self) -> bool {
        self.flags & NETNS_OWN != 0
    }

    /// Whether veil listens on `::1` here (only meaningful for an own namespace).
    pub fn ipv6(self) -> bool {
        self.flags & NETNS_IPV6 != 0
    }
}
