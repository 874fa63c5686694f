//! Types shared by veil's eBPF programs and its user-space daemon.
//!
//! Everything that crosses the kernel/user boundary is defined here once, `#[repr(C)]` and
//! without padding, and compiled by both sides: the `veil-ebpf` binary (target
//! `bpfel-unknown-none`) and the `veil` daemon (with the `user` feature, which makes the
//! types `aya::Pod`).
//!
//! Every hook first asks which network namespace the task is in: veil serves the namespaces
//! filed in [`MAP_NETNS`] (its own, and each sandbox's own namespace, where it has listeners
//! on loopback) and refuses connects and sends from any other.
//!
//! Flow of a steered TCP connect:
//! 1. `connect4`/`connect6` record a [`ConnRecord`] in [`MAP_BY_COOKIE`] under the socket
//!    cookie and rewrite the destination to veil's listener in the task's namespace (the IPv4
//!    one for IPv4 and v4-mapped destinations, the IPv6 one for native IPv6).
//! 2. `sock_ops` at `TCP_CONNECT_CB` learns the client's local address, stores it in the
//!    record, and files a copy in [`MAP_BY_PEER`] under the namespace and that [`Endpoint`]
//!    (a [`PeerKey`]), so no namespace can read or replace another's records.
//! 3. veil accepts on the namespace's listener, looks the peer up in [`MAP_BY_PEER`] and
//!    deletes the entry.
//! 4. `getpeername4`/`getpeername6` show the workload the original destination as its peer.
//! 5. `sock_release` deletes whatever is left for the socket's cookie.
//!
//! In a sandbox's own namespace ([`NETNS_OWN`]) loopback is the sandbox's: connects and
//! datagrams to 127.0.0.0/8 and ::1 stay inside, unsteered. DNS (UDP or TCP to port 53, any
//! address) goes to veil's DNS listener there; `recvmsg4`/`recvmsg6` show the answers as
//! coming from the resolver the workload asked ([`MAP_DNS_ORIG`]).
//!
//! Everything else a sandbox might use to reach the network is refused in the kernel: UDP
//! other than DNS to the sandbox's resolvers (`connect4/6`, `sendmsg4/6`), native IPv6 where
//! the sandbox denies it (`connect6`), and inet sockets other than TCP and UDP
//! (`sock_create`). Each refusal is reported as a [`Refusal`] on the ring buffer
//! [`MAP_REFUSALS`]; when the ring is full the refusal still happens and is counted in
//! [`MAP_REFUSALS_DROPPED`].
//!
//! Per-sandbox [`Settings`] live in [`MAP_SETTINGS`] under the sandbox cgroup's id; a task in
//! a cgroup below a sandbox gets the settings of its nearest sandbox ancestor, and a task in
//! no sandbox gets the installation's defaults, filed under id [`DEFAULT_SETTINGS_KEY`].
#![no_std]

/// Name of the hash map from socket cookie to [`ConnRecord`].
pub const MAP_BY_COOKIE: &str = "VEIL_BY_COOKIE";
/// Name of the hash map from [`PeerKey`] (namespace and the client's local endpoint) to
/// [`ConnRecord`].
pub const MAP_BY_PEER: &str = "VEIL_BY_NS_PEER";
/// Name of the hash map from network namespace cookie to `NETNS_*` flags: the namespaces
/// veil serves.
pub const MAP_NETNS: &str = "VEIL_NETNS";
/// Name of the LRU map from a UDP socket's cookie to the resolver it last sent DNS to.
pub const MAP_DNS_ORIG: &str = "VEIL_DNS_ORIG";
/// Name of the hash map from sandbox cgroup id to [`Settings`].
pub const MAP_SETTINGS: &str = "VEIL_SETTINGS";
/// Name of the ring buffer of [`Refusal`]s.
pub const MAP_REFUSALS: &str = "VEIL_REFUSALS";
/// Name of the per-CPU array (one `u64` slot) counting refusals the full ring could not take.
pub const MAP_REFUSALS_DROPPED: &str = "VEIL_REFUSALS_DROPPED";
/// Capacity of each connection map; a connect that finds its map full is refused.
pub const MAX_TRACKED_CONNECTIONS: u32 = 65_536;
/// Capacity of the settings map and of the namespace map.
pub const MAX_SANDBOXES: u32 = 4_096;
/// Capacity of the DNS map (least recently used entries go first).
pub const MAX_DNS_SOCKETS: u32 = 16_384;
/// Size of the refusal ring buffer in bytes (a power-of-two multiple of the page size).
pub const REFUSAL_RING_BYTES: u32 = 256 * 1024;
/// How many DNS resolvers a sandbox may be allowed.
pub const MAX_RESOLVERS: usize = 8;
/// How deep below the cgroup root the programs look for a sandbox's settings.
pub const MAX_CGROUP_DEPTH: i32 = 32;
/// The settings key holding the defaults for steered tasks that are in no sandbox.
pub const DEFAULT_SETTINGS_KEY: u64 = 0;

/// Name of the global holding veil's IPv4 listener address (network byte order).
pub const GLOBAL_PROXY_IP4: &str = "VEIL_PROXY_IP4";
/// Name of the global holding veil's IPv4 listener port (network byte order, low 16 bits).
pub const GLOBAL_PROXY_PORT: &str = "VEIL_PROXY_PORT";
/// Name of the global holding veil's IPv6 listener address (network byte order words; all
/// zero when veil has no IPv6 listener, and native IPv6 is then refused).
pub const GLOBAL_PROXY_IP6: &str = "VEIL_PROXY_IP6";
/// Name of the global holding veil's IPv6 listener port (network byte order, low 16 bits).
pub const GLOBAL_PROXY_PORT6: &str = "VEIL_PROXY_PORT6";
/// The port of veil's proxy listeners (`127.0.0.1` and `::1`) in a sandbox's own namespace.
/// Below 1024, so nothing in the sandbox can take it while veil is down: binding it needs
/// `CAP_NET_BIND_SERVICE` in the namespace's owner, the host's user namespace.
pub const SANDBOX_PROXY_PORT: u16 = 1000;
/// The port of veil's DNS listeners (UDP and TCP, `127.0.0.1` and `::1`) in a sandbox's own
/// namespace: the DNS port itself.
pub const SANDBOX_DNS_PORT: u16 = DNS_PORT;

/// Program names, as the loader finds them in the object.
pub const PROG_CONNECT4: &str = "veil_connect4";
/// The `connect6` program.
pub const PROG_CONNECT6: &str = "veil_connect6";
/// The `sendmsg4` program (UDP sends with an address).
pub const PROG_SENDMSG4: &str = "veil_sendmsg4";
/// The `sendmsg6` program.
pub const PROG_SENDMSG6: &str = "veil_sendmsg6";
/// The `getpeername4` program.
pub const PROG_GETPEERNAME4: &str = "veil_getpeername4";
/// The `getpeername6` program.
pub const PROG_GETPEERNAME6: &str = "veil_getpeername6";
/// The `recvmsg4` program (UDP receives: DNS answers' source).
pub const PROG_RECVMSG4: &str = "veil_recvmsg4";
/// The `recvmsg6` program.
pub const PROG_RECVMSG6: &str = "veil_recvmsg6";
/// The `sock_ops` program (not named `sockops`: that clashes with its section at link time).
pub const PROG_SOCK_OPS: &str = "veil_sock_ops";
/// The `sock_create` program (inet sockets, with their protocol resolved).
pub const PROG_SOCK_CREATE: &str = "veil_sock_create";
/// The `sock_release` program.
pub const PROG_SOCK_RELEASE: &str = "veil_sock_release";

/// `AF_INET`, as stored in [`Endpoint::family`].
pub const AF_INET: u16 = 2;
/// `AF_INET6`, as stored in [`Endpoint::family`].
pub const AF_INET6: u16 = 10;
/// `SOCK_STREAM`.
pub const SOCK_STREAM: u32 = 1;
/// `SOCK_DGRAM`.
pub const SOCK_DGRAM: u32 = 2;
/// `SOCK_RAW`.
pub const SOCK_RAW: u32 = 3;
/// `IPPROTO_ICMP`.
pub const IPPROTO_ICMP: u32 = 1;
/// `IPPROTO_TCP`, as stored in [`ConnRecord::protocol`].
pub const IPPROTO_TCP: u32 = 6;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: u32 = 17;
/// `IPPROTO_ICMPV6`.
pub const IPPROTO_ICMPV6: u32 = 58;
/// The DNS port: the only UDP port a sandbox may send to, and only to its resolvers.
pub const DNS_PORT: u16 = 53;

/// [`Settings::flags`]: refuse native IPv6 TCP instead of steering it to veil.
pub const SETTING_DENY_IPV6: u32 = 1;

/// [`MAP_NETNS`] flag: a sandbox's own namespace, where veil listens on loopback (IPv4, and
/// the DNS listener), loopback stays inside and DNS goes to veil.
pub const NETNS_OWN: u32 = 1;
/// [`MAP_NETNS`] flag: veil also listens on `::1` in this (own) namespace.
pub const NETNS_IPV6: u32 = 2;

/// `127.0.0.1` as the kernel stores it (network byte order words).
pub const LOOPBACK4: u32 = u32::from_ne_bytes([127, 0, 0, 1]);
/// `::1` as the kernel stores it.
pub const LOOPBACK6: [u32; 4] = [0, 0, 0, u32::from_ne_bytes([0, 0, 0, 1])];

/// Whether an IPv4 address (network byte order) is in 127.0.0.0/8.
pub const fn is_loopback4(ip4: u32) -> bool {
    ip4.to_ne_bytes()[0] == 127
}

/// Whether IPv6 address words are `::1` or a v4-mapped loopback address.
pub const fn is_loopback6(ip6: &[u32; 4]) -> bool {
    (ip6[0] == 0 && ip6[1] == 0 && ip6[2] == 0 && ip6[3] == LOOPBACK6[3])
        || (is_v4_mapped(ip6) && is_loopback4(ip6[3]))
}

/// The third address word of a v4-mapped IPv6 address (`::ffff:a.b.c.d`) as the kernel
/// stores it: the bytes `00 00 ff ff` in memory.
pub const V4_MAPPED_PREFIX: u32 = u32::from_ne_bytes([0, 0, 0xff, 0xff]);

/// The v4-mapped IPv6 address words of an IPv4 address (network byte order).
pub const fn v4_mapped(ip4: u32) -> [u32; 4] {
    [0, 0, V4_MAPPED_PREFIX, ip4]
}

/// Whether IPv6 address words hold a v4-mapped address; the IPv4 address is word 3.
pub const fn is_v4_mapped(ip6: &[u32; 4]) -> bool {
    ip6[0] == 0 && ip6[1] == 0 && ip6[2] == V4_MAPPED_PREFIX
}

/// A transport endpoint as the kernel stores it.
///
/// `addr` holds the address in network byte order as the kernel's 32-bit words: an IPv4
/// address is `addr[0]` with the other words zero. `port` is in host byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Endpoint {
    /// The address words, network byte order.
    pub addr: [u32; 4],
    /// The port, host byte order.
    pub port: u16,
    /// `AF_INET` or `AF_INET6`; zero when not known yet.
    pub family: u16,
}

/// The key of [`MAP_BY_PEER`]: the client's namespace and its local endpoint.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PeerKey {
    /// The network namespace cookie of the connecting socket.
    pub netns: u64,
    /// The client's local endpoint.
    pub peer: Endpoint,
    /// Zero; makes the padding explicit.
    pub reserved: u32,
}

/// What the kernel knew about a steered connect when it happened.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ConnRecord {
    /// The cgroup v2 id (inode number) of the connecting task's cgroup.
    pub cgroup_id: u64,
    /// The id of the sandbox cgroup whose settings applied: the task's own cgroup or its
    /// nearest ancestor with [`Settings`]; zero when the defaults applied.
    pub sandbox_id: u64,
    /// The socket cookie, unique for the socket's lifetime.
    pub cookie: u64,
    /// The network namespace cookie of the connecting socket.
    pub netns: u64,
    /// Where the workload meant to connect. A v4-mapped destination is stored as IPv4.
    pub dst: Endpoint,
    /// The client's local endpoint; filled in by `sock_ops` (family zero until then).
    pub src: Endpoint,
    /// The connecting process (thread group) id.
    pub pid: u32,
    /// The connecting task's uid.
    pub uid: u32,
    /// The connecting task's gid.
    pub gid: u32,
    /// The socket's protocol (`IPPROTO_TCP`).
    pub protocol: u32,
    /// The connecting task's `comm`, NUL padded.
    pub comm: [u8; 16],
}

/// What one sandbox may do beyond TCP through veil.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Settings {
    /// DNS resolvers the sandbox may send UDP to on port 53, as IPv6 address words in network
    /// byte order; IPv4 resolvers are stored v4-mapped. Only the first `resolver_count` count.
    pub resolvers: [[u32; 4]; MAX_RESOLVERS],
    /// How many of `resolvers` are set.
    pub resolver_count: u32,
    /// `SETTING_*` bits.
    pub flags: u32,
}

/// Why the kernel refused something, as carried in [`Refusal::reason`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// UDP to a port other than DNS.
    UdpNotDns = 1,
    /// DNS to a resolver the sandbox is not allowed.
    ResolverNotAllowed = 2,
    /// Native IPv6 is denied by the sandbox's settings.
    Ipv6Denied = 3,
    /// veil has no listener for the destination's family (no IPv6 listener).
    NoListener = 4,
    /// An inet socket other than TCP or UDP (raw, ICMP, SCTP, MPTCP, ...).
    SocketType = 5,
    /// The connection map is full.
    MapFull = 6,
    /// The task is in a network namespace veil does not serve.
    NetnsNotServed = 7,
}

impl Reason {
    /// The reason a raw [`Refusal::reason`] holds, if it is known.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            1 => Self::UdpNotDns,
            2 => Self::ResolverNotAllowed,
            3 => Self::Ipv6Denied,
            4 => Self::NoListener,
            5 => Self::SocketType,
            6 => Self::MapFull,
            7 => Self::NetnsNotServed,
            _ => return None,
        })
    }
}

/// Something the kernel refused a sandboxed task, reported on [`MAP_REFUSALS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Refusal {
    /// The cgroup v2 id of the task's cgroup.
    pub cgroup_id: u64,
    /// As [`ConnRecord::sandbox_id`].
    pub sandbox_id: u64,
    /// The destination; family zero when there was none (socket creation).
    pub dst: Endpoint,
    /// The task's process (thread group) id.
    pub pid: u32,
    /// The task's uid.
    pub uid: u32,
    /// The task's gid.
    pub gid: u32,
    /// A [`Reason`], as its `u32` value.
    pub reason: u32,
    /// The socket's address family (`AF_INET` or `AF_INET6`).
    pub family: u32,
    /// The socket's type (`SOCK_STREAM`, `SOCK_DGRAM`, `SOCK_RAW`, ...).
    pub sock_type: u32,
    /// The socket's protocol (`IPPROTO_*`).
    pub protocol: u32,
    /// The task's `comm`, NUL padded.
    pub comm: [u8; 16],
}

// The kernel and user space must agree byte for byte: fail the build if padding creeps in.
const _: () = assert!(core::mem::size_of::<Endpoint>() == 16 + 2 + 2);
const _: () = assert!(core::mem::size_of::<PeerKey>() == 8 + 20 + 4);
const _: () = assert!(core::mem::size_of::<ConnRecord>() == 4 * 8 + 2 * 20 + 4 * 4 + 16);
const _: () = assert!(core::mem::size_of::<Settings>() == MAX_RESOLVERS * 16 + 2 * 4);
const _: () = assert!(core::mem::size_of::<Refusal>() == 2 * 8 + 20 + 7 * 4 + 16);

// SAFETY: these types are #[repr(C)], contain only integers and have no padding (checked
// above), so every bit pattern is a valid value.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Endpoint {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ConnRecord {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for PeerKey {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Settings {}
