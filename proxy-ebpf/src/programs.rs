//! The programs themselves. See the crate's library docs for the flow.

use aya_ebpf::{
    bindings::{BPF_ANY, BPF_SOCK_OPS_TCP_CONNECT_CB},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
        generated::{bpf_get_current_cgroup_id, bpf_get_socket_cookie},
    },
    macros::{cgroup_sock, cgroup_sock_addr, map, sock_ops},
    maps::HashMap,
    programs::{SockAddrContext, SockContext, SockOpsContext},
    Global,
};
use aya_log_ebpf::{debug, warn};
use veil_ebpf::{ConnRecord, Endpoint, AF_INET, IPPROTO_TCP, MAX_TRACKED_CONNECTIONS};

/// veil's listener address, network byte order; set by the loader.
#[unsafe(no_mangle)]
static VEIL_PROXY_IP4: Global<u32> = Global::new(0);
/// veil's listener port, network byte order in the low 16 bits; set by the loader.
#[unsafe(no_mangle)]
static VEIL_PROXY_PORT: Global<u32> = Global::new(0);

#[map]
static VEIL_BY_COOKIE: HashMap<u64, ConnRecord> = HashMap::pinned(MAX_TRACKED_CONNECTIONS, 0);

#[map]
static VEIL_BY_PEER: HashMap<Endpoint, ConnRecord> = HashMap::pinned(MAX_TRACKED_CONNECTIONS, 0);

/// `connect()` verdicts for cgroup programs.
const ALLOW: i32 = 1;
const REFUSE: i32 = 0;
const SOCK_STREAM: u32 = 1;

#[cgroup_sock_addr(connect4)]
pub fn veil_connect4(ctx: SockAddrContext) -> i32 {
    // SAFETY: the kernel hands every cgroup/connect4 program a valid bpf_sock_addr.
    let sa = unsafe { &mut *ctx.sock_addr };
    if sa.type_ != SOCK_STREAM || sa.protocol != IPPROTO_TCP {
        return ALLOW;
    }
    let proxy_ip = VEIL_PROXY_IP4.load();
    let proxy_port = VEIL_PROXY_PORT.load();
    if proxy_ip == 0 || proxy_port == 0 {
        // Loaded without a listener: refuse rather than let the connect go direct.
        return REFUSE;
    }
    // SAFETY: bpf_get_socket_cookie accepts a sock_addr context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.sock_addr.cast()) };
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    let port_be = sa.user_port as u16;
    let record = ConnRecord {
        // SAFETY: a plain helper call with no arguments.
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        cookie,
        dst: Endpoint {
            addr: [sa.user_ip4, 0, 0, 0],
            port: u16::from_be(port_be),
            family: AF_INET,
        },
        src: Endpoint::default(),
        pid: (pid_tgid >> 32) as u32,
        uid: uid_gid as u32,
        gid: (uid_gid >> 32) as u32,
        protocol: IPPROTO_TCP,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    };
    if VEIL_BY_COOKIE
        .insert(cookie, record, BPF_ANY as u64)
        .is_err()
    {
        warn!(&ctx, "veil: connection map full, refusing connect");
        return REFUSE;
    }
    debug!(
        &ctx,
        "veil: steer pid {} to {:i}:{} (cookie {})",
        record.pid,
        u32::from_be(sa.user_ip4),
        record.dst.port,
        cookie
    );
    sa.user_ip4 = proxy_ip;
    sa.user_port = proxy_port;
    ALLOW
}

#[sock_ops]
pub fn veil_sock_ops(ctx: SockOpsContext) -> u32 {
    if ctx.op() != BPF_SOCK_OPS_TCP_CONNECT_CB || ctx.family() != u32::from(AF_INET) {
        return 1;
    }
    // SAFETY: bpf_get_socket_cookie accepts a sock_ops context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.ops.cast()) };
    let Some(record) = VEIL_BY_COOKIE.get_ptr_mut(cookie) else {
        return 1;
    };
    let src = Endpoint {
        addr: [ctx.local_ip4(), 0, 0, 0],
        // local_port is host byte order in sock_ops.
        port: ctx.local_port() as u16,
        family: AF_INET,
    };
    // SAFETY: the pointer came from a successful lookup in a preallocated hash map; only this
    // socket's own hooks write its entry, and they run one at a time for a socket.
    let filed = unsafe {
        (*record).src = src;
        *record
    };
    if VEIL_BY_PEER.insert(src, filed, BPF_ANY as u64).is_err() {
        warn!(
            &ctx,
            "veil: peer map full; veil will refuse this connection"
        );
    }
    1
}

#[cgroup_sock(sock_release)]
pub fn veil_sock_release(ctx: SockContext) -> i32 {
    // SAFETY: bpf_get_socket_cookie accepts a sock context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.sock.cast()) };
    if let Some(record) = VEIL_BY_COOKIE.get_ptr(cookie) {
        // SAFETY: as in sock_ops; the entry is this socket's and is read before removal.
        let src = unsafe { (*record).src };
        if src.family != 0 {
            let _ = VEIL_BY_PEER.remove(src);
        }
        let _ = VEIL_BY_COOKIE.remove(cookie);
    }
    ALLOW
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
