//! The programs themselves, their maps and the globals the loader sets. See the crate's
//! library docs for the flow.
//!
//! - `connect`: `connect4`/`connect6`: steer TCP to veil, let DNS through, refuse other UDP.
//! - `udp`: `sendmsg4`/`sendmsg6`, `recvmsg4`/`recvmsg6` and the DNS rules they share with
//!   `connect`.
//! - `netns`: which namespace a task is in, and whether veil serves it.
//! - `peer`: `sock_ops`, `getpeername4/6` and `sock_release`: a connection record's life.
//! - `socket`: `sock_create` and `lsm_cgroup/socket_create`: which sockets may exist at all.
//! - `task`: who is asking: cgroup, sandbox settings, and reporting refusals.
//! - `sockaddr`: reading and writing addresses in the programs' contexts.

mod connect;
mod netns;
mod peer;
mod sockaddr;
mod socket;
mod task;
mod udp;

use aya_ebpf::{
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray, RingBuf},
    Global,
};
use veil_ebpf::{
    ConnRecord, Endpoint, PeerKey, Settings, MAX_DNS_SOCKETS, MAX_SANDBOXES,
    MAX_TRACKED_CONNECTIONS, REFUSAL_RING_BYTES,
};

/// veil's IPv4 listener address, network byte order; set by the loader.
#[unsafe(no_mangle)]
static VEIL_PROXY_IP4: Global<u32> = Global::new(0);
/// veil's IPv4 listener port, network byte order in the low 16 bits; set by the loader.
#[unsafe(no_mangle)]
static VEIL_PROXY_PORT: Global<u32> = Global::new(0);
/// veil's IPv6 listener address words, network byte order; all zero without a listener.
#[unsafe(no_mangle)]
static VEIL_PROXY_IP6: Global<[u32; 4]> = Global::new([0; 4]);
/// veil's IPv6 listener port, network byte order in the low 16 bits; set by the loader.
#[unsafe(no_mangle)]
static VEIL_PROXY_PORT6: Global<u32> = Global::new(0);

#[map]
static VEIL_BY_COOKIE: HashMap<u64, ConnRecord> = HashMap::pinned(MAX_TRACKED_CONNECTIONS, 0);

#[map]
static VEIL_BY_NS_PEER: HashMap<PeerKey, ConnRecord> = HashMap::pinned(MAX_TRACKED_CONNECTIONS, 0);

#[map]
static VEIL_NETNS: HashMap<u64, u32> = HashMap::pinned(MAX_SANDBOXES, 0);

#[map]
static VEIL_DNS_ORIG: LruHashMap<u64, Endpoint> = LruHashMap::pinned(MAX_DNS_SOCKETS, 0);

#[map]
static VEIL_SETTINGS: HashMap<u64, Settings> = HashMap::pinned(MAX_SANDBOXES, 0);

#[map]
static VEIL_REFUSALS: RingBuf = RingBuf::pinned(REFUSAL_RING_BYTES, 0);

#[map]
static VEIL_REFUSALS_DROPPED: PerCpuArray<u64> = PerCpuArray::pinned(1, 0);

/// Verdicts of cgroup programs: 1 lets the operation proceed, 0 fails it (with `EPERM`
/// unless the program set another error with `bpf_set_retval`).
const ALLOW: i32 = 1;
const REFUSE: i32 = 0;

/// The error connects and sends are refused with, as `bpf_set_retval` takes it.
const ECONNREFUSED: i32 = -111;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
