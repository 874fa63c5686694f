//! One kit for "a private veil installation", shared by the integration tests (`tests/`), the
//! demo and the bench (`xtask/`).
//!
//! - [`Installation`]: a veil installation of its own (state and runtime directories, bpffs
//!   directory, sandbox parent cgroup, listeners, configuration file) whose `veil` commands
//!   carry its paths in their environment; it starts `veil serve`, waits until the control API
//!   is healthy, and removes everything it made when dropped.
//! - [`Daemon`]: a background process with its log, waited for until ready and stopped on drop.
//! - [`api`]: the control-API client (HTTP/1.1 over the Unix socket).
//! - [`pki`]: a throwaway test CA and server certificates, made with rcgen.
//! - [`mounts`] and [`cgroup`]: where cgroup2 is mounted, and removing a cgroup tree.
//! - [`remote`]: addresses for stand-in remote hosts, off the host's loopback.
//! - [`free_port`] and [`random_token`]: small things every one of them needs.

pub mod api;
pub mod cgroup;
mod daemon;
mod error;
mod installation;
pub mod mounts;
mod net;
pub mod pki;
pub mod remote;
mod token;

pub use daemon::Daemon;
pub use error::Error;
pub use installation::Installation;
pub use net::free_port;
pub use token::random_token;
