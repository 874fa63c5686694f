//! `connect4` and `connect6`: a sandbox's TCP connects are steered to veil's listener in its
//! namespace with their original destination recorded, DNS goes to veil's DNS listener in a
//! sandbox's own namespace (or, in veil's namespace, only to the sandbox's resolvers), and
//! connects on any other socket are refused.
//!
//! A dual-stack IPv6 socket connecting to `::ffff:a.b.c.d` only passes `connect6`; it is
//! steered to the IPv4 listener as `::ffff:<listener>`, and its destination recorded as IPv4.

use aya_ebpf::{
    bindings::BPF_ANY, helpers::generated::bpf_get_socket_cookie, macros::cgroup_sock_addr,
    programs::SockAddrContext,
};
use aya_log_ebpf::debug;
use veil_ebpf::{
    is_loopback4, is_loopback6, is_v4_mapped, v4_mapped, ConnRecord, Endpoint, Reason, AF_INET,
    AF_INET6, DNS_PORT, IPPROTO_TCP, IPPROTO_UDP, LOOPBACK4, LOOPBACK6, SANDBOX_DNS_PORT,
    SANDBOX_PROXY_PORT, SOCK_DGRAM, SOCK_STREAM,
};

use super::{
    netns::Netns,
    sockaddr::{
        endpoint4, endpoint6, is_unspecified, port_field, set_user_ip6, user_ip6, user_port,
    },
    task::{ids, Socket, Task},
    udp, ALLOW, VEIL_BY_COOKIE, VEIL_PROXY_IP4, VEIL_PROXY_IP6, VEIL_PROXY_PORT, VEIL_PROXY_PORT6,
};

#[cgroup_sock_addr(connect4)]
pub fn veil_connect4(ctx: SockAddrContext) -> i32 {
    // SAFETY: the kernel hands every cgroup/connect4 program a valid bpf_sock_addr.
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
    match (sa.type_, sa.protocol) {
        (SOCK_STREAM, IPPROTO_TCP) => {
            if ns.own() && dst.port == DNS_PORT {
                sa.user_ip4 = LOOPBACK4;
                sa.user_port = port_field(SANDBOX_DNS_PORT);
                return ALLOW;
            }
            if ns.own() && is_loopback4(dst.addr[0]) {
                return ALLOW;
            }
            let (proxy_ip, proxy_port) = if ns.own() {
                (LOOPBACK4, port_field(SANDBOX_PROXY_PORT))
            } else {
                (VEIL_PROXY_IP4.load(), VEIL_PROXY_PORT.load())
            };
            if proxy_ip == 0 || proxy_port == 0 {
                // Loaded without a listener: refuse rather than let the connect go direct.
                return task.refuse_with_econnrefused(Reason::NoListener, dst, socket);
            }
            if !record(&ctx, &task, ns, dst) {
                return task.refuse_with_econnrefused(Reason::MapFull, dst, socket);
            }
            debug!(
                &ctx,
                "veil: steer pid {} to {:i}:{}",
                ids().pid,
                u32::from_be(dst.addr[0]),
                dst.port
            );
            sa.user_ip4 = proxy_ip;
            sa.user_port = proxy_port;
            ALLOW
        }
        (SOCK_DGRAM, IPPROTO_UDP) if ns.own() => {
            match udp::own_verdict4(&ctx, &task, dst, socket) {
                udp::Own::Dns => {
                    sa.user_ip4 = LOOPBACK4;
                    sa.user_port = port_field(SANDBOX_DNS_PORT);
                    ALLOW
                }
                udp::Own::Verdict(verdict) => verdict,
            }
        }
        (SOCK_DGRAM, IPPROTO_UDP) => udp::verdict(&task, &v4_mapped(dst.addr[0]), dst, socket),
        _ => task.refuse_with_econnrefused(Reason::SocketType, dst, socket),
    }
}

#[cgroup_sock_addr(connect6)]
pub fn veil_connect6(ctx: SockAddrContext) -> i32 {
    // SAFETY: the kernel hands every cgroup/connect6 program a valid bpf_sock_addr.
    let sa = unsafe { &mut *ctx.sock_addr };
    let socket = Socket {
        family: u32::from(AF_INET6),
        sock_type: sa.type_,
        protocol: sa.protocol,
    };
    // SAFETY: this is a connect6 context.
    let ip6 = unsafe { user_ip6(sa) };
    let dst = endpoint6(ip6, user_port(sa));
    let task = Task::current();
    let Some(ns) = Netns::of(&ctx) else {
        return task.refuse_with_econnrefused(Reason::NetnsNotServed, dst, socket);
    };
    match (sa.type_, sa.protocol) {
        (SOCK_STREAM, IPPROTO_TCP) => {
            if ns.own() && dst.port == DNS_PORT {
                return to_dns6(&ctx, &task, ns, &ip6, dst, socket);
            }
            if ns.own() && is_loopback6(&ip6) {
                return ALLOW;
            }
            let (proxy_ip6, proxy_port) = if is_v4_mapped(&ip6) {
                let (proxy_ip4, port) = if ns.own() {
                    (LOOPBACK4, port_field(SANDBOX_PROXY_PORT))
                } else {
                    (VEIL_PROXY_IP4.load(), VEIL_PROXY_PORT.load())
                };
                let mapped = if proxy_ip4 == 0 {
                    [0; 4]
                } else {
                    v4_mapped(proxy_ip4)
                };
                (mapped, port)
            } else if task.denies_ipv6() {
                return task.refuse_with_econnrefused(Reason::Ipv6Denied, dst, socket);
            } else if ns.own() {
                if ns.ipv6() {
                    (LOOPBACK6, port_field(SANDBOX_PROXY_PORT))
                } else {
                    ([0; 4], 0)
                }
            } else {
                (VEIL_PROXY_IP6.load(), VEIL_PROXY_PORT6.load())
            };
            if is_unspecified(&proxy_ip6) || proxy_port == 0 {
                // No listener for this family (veil has no IPv6 listener): fail closed.
                return task.refuse_with_econnrefused(Reason::NoListener, dst, socket);
            }
            if !record(&ctx, &task, ns, dst) {
                return task.refuse_with_econnrefused(Reason::MapFull, dst, socket);
            }
            // SAFETY: [u32; 4] and [u8; 16] have the same size and every bit pattern is valid.
            let ip6_bytes: [u8; 16] = unsafe { core::mem::transmute(ip6) };
            debug!(
                &ctx,
                "veil: steer pid {} to [{:i}]:{}",
                ids().pid,
                ip6_bytes,
                dst.port
            );
            // SAFETY: this is a connect6 context, which may rewrite user_ip6.
            unsafe { set_user_ip6(sa, proxy_ip6) };
            sa.user_port = proxy_port;
            ALLOW
        }
        (SOCK_DGRAM, IPPROTO_UDP) if ns.own() => {
            if dst.port == DNS_PORT {
                udp::remember_dns(&ctx, dst);
                return to_dns6(&ctx, &task, ns, &ip6, dst, socket);
            }
            if is_loopback6(&ip6) {
                return ALLOW;
            }
            task.refuse_with_econnrefused(Reason::UdpNotDns, dst, socket)
        }
        (SOCK_DGRAM, IPPROTO_UDP) => udp::verdict(&task, &ip6, dst, socket),
        _ => task.refuse_with_econnrefused(Reason::SocketType, dst, socket),
    }
}

/// Rewrites an IPv6 socket's DNS connect (or send) to veil's DNS listener in its own
/// namespace: `::ffff:127.0.0.1` for a v4-mapped resolver, `::1` for a native one.
pub fn to_dns6(
    ctx: &SockAddrContext,
    task: &Task,
    ns: Netns,
    ip6: &[u32; 4],
    dst: Endpoint,
    socket: Socket,
) -> i32 {
    let target = if is_v4_mapped(ip6) {
        v4_mapped(LOOPBACK4)
    } else if ns.ipv6() {
        LOOPBACK6
    } else {
        return task.refuse_with_econnrefused(Reason::NoListener, dst, socket);
    };
    // SAFETY: ctx is a connect6/sendmsg6 context, which may rewrite user_ip6 and user_port.
    unsafe {
        set_user_ip6(ctx.sock_addr, target);
        (*ctx.sock_addr).user_port = port_field(SANDBOX_DNS_PORT);
    }
    ALLOW
}

/// Files the connect's record under the socket cookie; false when the map is full.
fn record(ctx: &SockAddrContext, task: &Task, ns: Netns, dst: Endpoint) -> bool {
    // SAFETY: bpf_get_socket_cookie accepts a sock_addr context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.sock_addr.cast()) };
    let ids = ids();
    let record = ConnRecord {
        cgroup_id: task.cgroup_id,
        sandbox_id: task.sandbox_id,
        cookie,
        netns: ns.cookie,
        dst,
        src: Endpoint::default(),
        pid: ids.pid,
        uid: ids.uid,
        gid: ids.gid,
        protocol: IPPROTO_TCP,
        comm: ids.comm,
    };
    VEIL_BY_COOKIE
        .insert(cookie, record, u64::from(BPF_ANY))
        .is_ok()
}
