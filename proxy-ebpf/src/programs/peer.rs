//! A steered connection's record after `connect`: `sock_ops` files it under the client's
//! local address for veil to find, `getpeername4/6` show the workload the original
//! destination as its peer, and `sock_release` deletes it with the socket.

use aya_ebpf::{
    bindings::{BPF_ANY, BPF_SOCK_OPS_TCP_CONNECT_CB},
    helpers::generated::bpf_get_socket_cookie,
    macros::{cgroup_sock, cgroup_sock_addr, sock_ops},
    programs::{SockAddrContext, SockContext, SockOpsContext},
};
use aya_log_ebpf::warn;
use veil_ebpf::{v4_mapped, Endpoint, PeerKey, AF_INET, AF_INET6};

use super::{
    sockaddr::{endpoint4, endpoint6, local_ip6, port_field, set_user_ip6},
    ALLOW, VEIL_BY_COOKIE, VEIL_BY_NS_PEER, VEIL_DNS_ORIG,
};

#[sock_ops]
pub fn veil_sock_ops(ctx: SockOpsContext) -> u32 {
    if ctx.op() != BPF_SOCK_OPS_TCP_CONNECT_CB {
        return 1;
    }
    // local_port is host byte order in sock_ops.
    let port = ctx.local_port() as u16;
    let src = match ctx.family() {
        f if f == u32::from(AF_INET) => endpoint4(ctx.local_ip4(), port),
        // A v4-mapped client is an IPv4 connection: veil's IPv4 listener sees an IPv4 peer.
        // SAFETY: ctx.ops is the valid sock_ops context of this program.
        f if f == u32::from(AF_INET6) => endpoint6(unsafe { local_ip6(ctx.ops) }, port),
        _ => return 1,
    };
    // SAFETY: bpf_get_socket_cookie accepts a sock_ops context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.ops.cast()) };
    let Some(record) = VEIL_BY_COOKIE.get_ptr_mut(cookie) else {
        return 1;
    };
    // SAFETY: the pointer came from a successful lookup in a preallocated hash map; only this
    // socket's own hooks write its entry, and they run one at a time for a socket.
    let filed = unsafe {
        (*record).src = src;
        *record
    };
    let key = PeerKey {
        netns: filed.netns,
        peer: src,
        reserved: 0,
    };
    if VEIL_BY_NS_PEER
        .insert(key, filed, u64::from(BPF_ANY))
        .is_err()
    {
        warn!(
            &ctx,
            "veil: peer map full; veil will refuse this connection"
        );
    }
    1
}

#[cgroup_sock_addr(getpeername4)]
pub fn veil_getpeername4(ctx: SockAddrContext) -> i32 {
    let Some(dst) = original_destination(&ctx) else {
        return ALLOW;
    };
    if dst.family == AF_INET {
        // SAFETY: the kernel hands every cgroup/getpeername4 program a valid bpf_sock_addr,
        // whose user_ip4 and user_port it may rewrite.
        let sa = unsafe { &mut *ctx.sock_addr };
        sa.user_ip4 = dst.addr[0];
        sa.user_port = port_field(dst.port);
    }
    ALLOW
}

#[cgroup_sock_addr(getpeername6)]
pub fn veil_getpeername6(ctx: SockAddrContext) -> i32 {
    let Some(dst) = original_destination(&ctx) else {
        return ALLOW;
    };
    let ip6 = match dst.family {
        AF_INET => v4_mapped(dst.addr[0]),
        AF_INET6 => dst.addr,
        _ => return ALLOW,
    };
    // SAFETY: the kernel hands every cgroup/getpeername6 program a valid bpf_sock_addr, whose
    // user_ip6 and user_port it may rewrite.
    unsafe { set_user_ip6(ctx.sock_addr, ip6) };
    // SAFETY: as above.
    unsafe { (*ctx.sock_addr).user_port = port_field(dst.port) };
    ALLOW
}

/// Where the socket of a getpeername context was steered from, if it was.
fn original_destination(ctx: &SockAddrContext) -> Option<Endpoint> {
    // SAFETY: bpf_get_socket_cookie accepts a sock_addr context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.sock_addr.cast()) };
    let record = VEIL_BY_COOKIE.get_ptr(cookie)?;
    // SAFETY: as in sock_ops; the entry is this socket's and is copied at once.
    Some(unsafe { (*record).dst })
}

#[cgroup_sock(sock_release)]
pub fn veil_sock_release(ctx: SockContext) -> i32 {
    // SAFETY: bpf_get_socket_cookie accepts a sock context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.sock.cast()) };
    if let Some(record) = VEIL_BY_COOKIE.get_ptr(cookie) {
        // SAFETY: as in sock_ops; the entry is this socket's and is read before removal.
        let (src, netns) = unsafe { ((*record).src, (*record).netns) };
        if src.family != 0 {
            let _ = VEIL_BY_NS_PEER.remove(PeerKey {
                netns,
                peer: src,
                reserved: 0,
            });
        }
        let _ = VEIL_BY_COOKIE.remove(cookie);
    }
    let _ = VEIL_DNS_ORIG.remove(&cookie);
    ALLOW
}
