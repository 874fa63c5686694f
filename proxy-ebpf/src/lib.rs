//! Types shared by veil's eBPF programs and its user-space daemon.
//!
//! Everything that crosses the kernel/user boundary is defined here once, `#[repr(C)]` and
//! without padding, and compiled by both sides: the `veil-ebpf` binary (target
//! `bpfel-unknown-none`) and the `veil` daemon (with the `user` feature, which makes the
//! types `aya::Pod`).
//!
//! Flow of a steered TCP connect:
//! 1. `connect4` records a [`ConnRecord`] in [`MAP_BY_COOKIE`] under the socket cookie and
//!    rewrites the destination to veil's listener.
//! 2. `sock_ops` at `TCP_CONNECT_CB` learns the client's local address, stores it in the
//!    record, and files a copy in [`MAP_BY_PEER`] under that [`Endpoint`].
//! 3. veil accepts, looks the peer address up in [`MAP_BY_PEER`] and deletes the entry.
//! 4. `sock_release` deletes whatever is left for the socket's cookie.
#![no_std]

/// Name of the hash map from socket cookie to [`ConnRecord`].
pub const MAP_BY_COOKIE: &str = "VEIL_BY_COOKIE";
/// Name of the hash map from the client's local [`Endpoint`] to [`ConnRecord`].
pub const MAP_BY_PEER: &str = "VEIL_BY_PEER";
/// Capacity of each connection map; a connect that finds its map full is refused.
pub const MAX_TRACKED_CONNECTIONS: u32 = 65_536;

/// Name of the global holding veil's listener IPv4 address (network byte order).
pub const GLOBAL_PROXY_IP4: &str = "VEIL_PROXY_IP4";
/// Name of the global holding veil's listener port (network byte order, low 16 bits).
pub const GLOBAL_PROXY_PORT: &str = "VEIL_PROXY_PORT";

/// Program names, as the loader finds them in the object.
pub const PROG_CONNECT4: &str = "veil_connect4";
/// The `sock_ops` program (not named `sockops`: that clashes with its section at link time).
pub const PROG_SOCK_OPS: &str = "veil_sock_ops";
/// The `sock_release` program.
pub const PROG_SOCK_RELEASE: &str = "veil_sock_release";

/// `AF_INET`, as stored in [`Endpoint::family`].
pub const AF_INET: u16 = 2;
/// `AF_INET6`, as stored in [`Endpoint::family`].
pub const AF_INET6: u16 = 10;
/// `IPPROTO_TCP`, as stored in [`ConnRecord::protocol`].
pub const IPPROTO_TCP: u32 = 6;

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

/// What the kernel knew about a steered connect when it happened.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ConnRecord {
    /// The cgroup v2 id (inode number) of the connecting task's cgroup.
    pub cgroup_id: u64,
    /// The socket cookie, unique for the socket's lifetime.
    pub cookie: u64,
    /// Where the workload meant to connect.
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

// The kernel and user space must agree byte for byte: fail the build if padding creeps in.
const _: () = assert!(core::mem::size_of::<Endpoint>() == 16 + 2 + 2);
const _: () = assert!(core::mem::size_of::<ConnRecord>() == 8 + 8 + 20 + 20 + 4 * 4 + 16);

// SAFETY: both types are #[repr(C)], contain only integers and have no padding (checked above),
// so every bit pattern is a valid value.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Endpoint {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ConnRecord {}
