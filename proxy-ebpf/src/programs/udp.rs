//! UDP: a sandbox may send UDP only to port 53 of a resolver its settings allow; every other
//! send or connect is refused with `ECONNREFUSED`, so QUIC clients fall back to TCP (which
//! veil sees). `sendmsg4`/`sendmsg6` run for sends that carry an address; a connected socket
//! was checked by `connect4`/`connect6` when it connected.
//!
//! A v4-mapped destination on a dual-stack socket is sent by the IPv4 code and so passes
//! `sendmsg4`; resolvers are kept v4-mapped, so one comparison serves both families.

use aya_ebpf::{macros::cgroup_sock_addr, programs::SockAddrContext};
use veil_ebpf::{v4_mapped, Endpoint, Reason, AF_INET, AF_INET6, DNS_PORT};

use super::{
    sockaddr::{endpoint4, endpoint6, user_ip6, user_port},
    task::{Socket, Task},
    ALLOW,
};

/// Whether UDP from `task` may go to `ip6` (v4-mapped for IPv4) at `dst`.
pub fn verdict(task: &Task, ip6: &[u32; 4], dst: Endpoint, socket: Socket) -> i32 {
    if dst.port != DNS_PORT {
        return task.refuse_with_econnrefused(Reason::UdpNotDns, dst, socket);
    }
    if !task.may_resolve(ip6) {
        return task.refuse_with_econnrefused(Reason::ResolverNotAllowed, dst, socket);
    }
    ALLOW
}

#[cgroup_sock_addr(sendmsg4)]
pub fn veil_sendmsg4(ctx: SockAddrContext) -> i32 {
    // SAFETY: the kernel hands every cgroup/sendmsg4 program a valid bpf_sock_addr.
    let sa = unsafe { &*ctx.sock_addr };
    let socket = Socket {
        family: u32::from(AF_INET),
        sock_type: sa.type_,
        protocol: sa.protocol,
    };
    let dst = endpoint4(sa.user_ip4, user_port(sa));
    verdict(&Task::current(), &v4_mapped(sa.user_ip4), dst, socket)
}

#[cgroup_sock_addr(sendmsg6)]
pub fn veil_sendmsg6(ctx: SockAddrContext) -> i32 {
    // SAFETY: the kernel hands every cgroup/sendmsg6 program a valid bpf_sock_addr.
    let sa = unsafe { &*ctx.sock_addr };
    let socket = Socket {
        family: u32::from(AF_INET6),
        sock_type: sa.type_,
        protocol: sa.protocol,
    };
    // SAFETY: this is a sendmsg6 context.
    let ip6 = unsafe { user_ip6(sa) };
    verdict(
        &Task::current(),
        &ip6,
        endpoint6(ip6, user_port(sa)),
        socket,
    )
}
