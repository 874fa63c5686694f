//! `connect4` and `connect6`: a sandbox's TCP connects are steered to veil's listener with
//! their original destination recorded, UDP connects pass only for DNS to the sandbox's
//! resolvers, and connects on any other socket are refused.
//!
//! A dual-stack IPv6 socket connecting to `::ffff:a.b.c.d` only passes `connect6`; it is
//! steered to the IPv4 listener as `::ffff:<listener>`, and its destination recorded as IPv4.

use aya_ebpf::{
    bindings::BPF_ANY, helpers::generated::bpf_get_socket_cookie, macros::cgroup_sock_addr,
    programs::SockAddrContext,
};
use aya_log_ebpf::debug;
use veil_ebpf::{
    is_v4_mapped, v4_mapped, ConnRecord, Endpoint, Reason, AF_INET, AF_INET6, IPPROTO_TCP,
    IPPROTO_UDP, SOCK_DGRAM, SOCK_STREAM,
};

use super::{
    sockaddr::{endpoint4, endpoint6, is_unspecified, set_user_ip6, user_ip6, user_port},
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
    match (sa.type_, sa.protocol) {
        (SOCK_STREAM, IPPROTO_TCP) => {
            let (proxy_ip, proxy_port) = (VEIL_PROXY_IP4.load(), VEIL_PROXY_PORT.load());
            if proxy_ip == 0 || proxy_port == 0 {
                // Loaded without a listener: refuse rather than let the connect go direct.
                return task.refuse_with_econnrefused(Reason::NoListener, dst, socket);
            }
            if !record(&ctx, &task, dst) {
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
    match (sa.type_, sa.protocol) {
        (SOCK_STREAM, IPPROTO_TCP) => {
            let (proxy_ip6, proxy_port) = if is_v4_mapped(&ip6) {
                let proxy_ip4 = VEIL_PROXY_IP4.load();
                let mapped = if proxy_ip4 == 0 {
                    [0; 4]
                } else {
                    v4_mapped(proxy_ip4)
                };
                (mapped, VEIL_PROXY_PORT.load())
            } else if task.denies_ipv6() {
                return task.refuse_with_econnrefused(Reason::Ipv6Denied, dst, socket);
            } else {
                (VEIL_PROXY_IP6.load(), VEIL_PROXY_PORT6.load())
            };
            if is_unspecified(&proxy_ip6) || proxy_port == 0 {
                // No listener for this family (veil has no IPv6 listener): fail closed.
                return task.refuse_with_econnrefused(Reason::NoListener, dst, socket);
            }
            if !record(&ctx, &task, dst) {
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
        (SOCK_DGRAM, IPPROTO_UDP) => udp::verdict(&task, &ip6, dst, socket),
        _ => task.refuse_with_econnrefused(Reason::SocketType, dst, socket),
    }
}

/// Files the connect's record under the socket cookie; false when the map is full.
fn record(ctx: &SockAddrContext, task: &Task, dst: Endpoint) -> bool {
    // SAFETY: bpf_get_socket_cookie accepts a sock_addr context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.sock_addr.cast()) };
    let ids = ids();
    let record = ConnRecord {
        cgroup_id: task.cgroup_id,
        sandbox_id: task.sandbox_id,
        cookie,
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
