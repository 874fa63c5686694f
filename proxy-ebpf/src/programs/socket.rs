//! `sock_create`: the only inet sockets a sandbox may have are TCP and UDP. The hook sees
//! inet and inet6 sockets with their protocol resolved (`socket(AF_INET, SOCK_DGRAM, 0)` is
//! UDP) and refuses, with `EPERM`, raw sockets, ICMP datagram ("ping") sockets, which carry
//! data to any host, and every other protocol (UDP-Lite, SCTP, MPTCP, SMC, ...).
//!
//! The kernel runs this hook for inet sockets only: packet sockets never reach it. They need
//! `CAP_NET_RAW`, which `veil run` takes from the workload.

use aya_ebpf::{macros::cgroup_sock, programs::SockContext};
use veil_ebpf::{Endpoint, Reason, IPPROTO_TCP, IPPROTO_UDP, SOCK_DGRAM, SOCK_STREAM};

use super::{
    task::{Socket, Task},
    ALLOW, REFUSE,
};

#[cgroup_sock(sock_create)]
pub fn veil_sock_create(ctx: SockContext) -> i32 {
    // SAFETY: the kernel hands every cgroup/sock_create program a valid bpf_sock.
    let sk = unsafe { &*ctx.sock };
    match (sk.type_, sk.protocol) {
        (SOCK_STREAM, IPPROTO_TCP) | (SOCK_DGRAM, IPPROTO_UDP) => ALLOW,
        _ => {
            let socket = Socket {
                family: sk.family,
                sock_type: sk.type_,
                protocol: sk.protocol,
            };
            Task::current().report(Reason::SocketType, Endpoint::default(), socket);
            REFUSE
        }
    }
}
