//! UDP. In veil's own namespace a sandbox may send UDP only to port 53 of a resolver its
//! settings allow. In a sandbox's own namespace every DNS datagram (port 53, any address)
//! goes to veil's DNS listener there, the resolver asked is remembered per socket, and
//! `recvmsg4`/`recvmsg6` show answers as coming from it; loopback stays inside. Every other
//! send or connect is refused with `ECONNREFUSED`, so QUIC clients fall back to TCP (which
//! veil sees). `sendmsg4`/`sendmsg6` run for sends that carry an address; a connected socket
//! was checked by `connect4`/`connect6` when it connected.
//!
//! A v4-mapped destination on a dual-stack socket is sent by the IPv4 code and so passes
//! `sendmsg4`; resolvers are kept v4-mapped, so one comparison serves both families.

use aya_ebpf::{
    bindings::BPF_ANY, helpers::generated::bpf_get_socket_cookie, macros::cgroup_sock_addr,
    programs::SockAddrContext,
};
use veil_ebpf::{
    is_loopback4, is_loopback6, is_v4_mapped, v4_mapped, Endpoint, Reason, AF_INET, AF_INET6,
    DNS_PORT, LOOPBACK4, LOOPBACK6, SANDBOX_DNS_PORT,
};

use super::{
    connect::to_dns6,
    netns::Netns,
    sockaddr::{endpoint4, endpoint6, port_field, set_user_ip6, user_ip6, user_port},
    task::{Socket, Task},
    ALLOW, VEIL_DNS_ORIG,
};

/// What an IPv4 datagram (or UDP connect) in a sandbox's own namespace may do.
pub enum Own {
    /// It is DNS: rewrite it to veil's DNS listener.
    Dns,
    /// Let it through or refuse it, as the program returns.
    Verdict(i32),
}

/// Whether UDP from `task` in veil's namespace may go to `ip6` (v4-mapped for IPv4) at `dst`.
pub fn verdict(task: &Task, ip6: &[u32; 4], dst: Endpoint, socket: Socket) -> i32 {
    if dst.port != DNS_PORT {
        return task.refuse_with_econnrefused(Reason::UdpNotDns, dst, socket);
    }
    if !task.may_resolve(ip6) {
        return task.refuse_with_econnrefused(Reason::ResolverNotAllowed, dst, socket);
    }
    ALLOW
}

/// What IPv4 UDP to `dst` in a sandbox's own namespace may do; remembers a DNS resolver.
pub fn own_verdict4(ctx: &SockAddrContext, task: &Task, dst: Endpoint, socket: Socket) -> Own {
    if dst.port == DNS_PORT {
        remember_dns(ctx, dst);
        Own::Dns
    } else if is_loopback4(dst.addr[0]) {
        Own::Verdict(ALLOW)
    } else {
        Own::Verdict(task.refuse_with_econnrefused(Reason::UdpNotDns, dst, socket))
    }
}

/// Remembers that the socket of `ctx` asked the resolver `dst`, for `recvmsg` to show.
pub fn remember_dns(ctx: &SockAddrContext, dst: Endpoint) {
    // SAFETY: bpf_get_socket_cookie accepts a sock_addr context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.sock_addr.cast()) };
    // An LRU map: a full one forgets its oldest entry, and an answer then shows veil's
    // listener as its source, which resolvers' clients may ignore; nothing leaks.
    let _ = VEIL_DNS_ORIG.insert(&cookie, &dst, u64::from(BPF_ANY));
}

#[cgroup_sock_addr(sendmsg4)]
pub fn veil_sendmsg4(ctx: SockAddrContext) -> i32 {
    // SAFETY: the kernel hands every cgroup/sendmsg4 program a valid bpf_sock_addr.
    let sa = unsafe { &mut *ctx.sock_addr };
    let socket = Socket {
        family: u32::from(AF_INET),
        sock_type: sa.type_,
        protocol: sa.protocol,
    };
    let dst = endpoint4(sa.user_ip4, user_port(sa));
    let task = Task::current();
    let Some(ns) = Netns::of(&ctx) else {
        return task.refuse_with_econnrefused(Reason::NetnsNotServed, dst, socket);
    };
    if !ns.own() {
        return verdict(&task, &v4_mapped(sa.user_ip4), dst, socket);
    }
    match own_verdict4(&ctx, &task, dst, socket) {
        Own::Dns => {
            sa.user_ip4 = LOOPBACK4;
            sa.user_port = port_field(SANDBOX_DNS_PORT);
            ALLOW
        }
        Own::Verdict(verdict) => verdict,
    }
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
    let dst = endpoint6(ip6, user_port(sa));
    let task = Task::current();
    let Some(ns) = Netns::of(&ctx) else {
        return task.refuse_with_econnrefused(Reason::NetnsNotServed, dst, socket);
    };
    if !ns.own() {
        return verdict(&task, &ip6, dst, socket);
    }
    if dst.port == DNS_PORT {
        remember_dns(&ctx, dst);
        return to_dns6(&ctx, &task, ns, &ip6, dst, socket);
    }
    if is_loopback6(&ip6) {
        return ALLOW;
    }
    task.refuse_with_econnrefused(Reason::UdpNotDns, dst, socket)
}

#[cgroup_sock_addr(recvmsg4)]
pub fn veil_recvmsg4(ctx: SockAddrContext) -> i32 {
    // SAFETY: the kernel hands every cgroup/recvmsg4 program a valid bpf_sock_addr, whose
    // user_ip4 and user_port (the datagram's source) it may rewrite.
    let sa = unsafe { &mut *ctx.sock_addr };
    if sa.user_ip4 != LOOPBACK4 || sa.user_port != port_field(SANDBOX_DNS_PORT) {
        return ALLOW;
    }
    if let Some(asked) = asked(&ctx) {
        if asked.family == AF_INET {
            sa.user_ip4 = asked.addr[0];
            sa.user_port = port_field(asked.port);
        }
    }
    ALLOW
}

#[cgroup_sock_addr(recvmsg6)]
pub fn veil_recvmsg6(ctx: SockAddrContext) -> i32 {
    // SAFETY: the kernel hands every cgroup/recvmsg6 program a valid bpf_sock_addr.
    let sa = unsafe { &*ctx.sock_addr };
    // SAFETY: this is a recvmsg6 context.
    let source = unsafe { user_ip6(sa) };
    let from_listener = source == LOOPBACK6 || source == v4_mapped(LOOPBACK4);
    if !from_listener || sa.user_port != port_field(SANDBOX_DNS_PORT) {
        return ALLOW;
    }
    let Some(asked) = asked(&ctx) else {
        return ALLOW;
    };
    let ip6 = match asked.family {
        AF_INET => v4_mapped(asked.addr[0]),
        AF_INET6 if !is_v4_mapped(&asked.addr) => asked.addr,
        _ => return ALLOW,
    };
    // SAFETY: a recvmsg6 context may rewrite user_ip6 and user_port.
    unsafe {
        set_user_ip6(ctx.sock_addr, ip6);
        (*ctx.sock_addr).user_port = port_field(asked.port);
    }
    ALLOW
}

/// The resolver the socket of `ctx` last sent DNS to, if it did.
fn asked(ctx: &SockAddrContext) -> Option<Endpoint> {
    // SAFETY: bpf_get_socket_cookie accepts a sock_addr context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.sock_addr.cast()) };
    // SAFETY: the entry is copied at once.
    unsafe { VEIL_DNS_ORIG.get(&cookie) }.copied()
}
