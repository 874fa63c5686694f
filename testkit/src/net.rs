//! Local ports.

use std::net::{IpAddr, TcpListener};

use crate::error::{Context, Error};

/// A TCP port nobody listens on at `ip` right now.
pub fn free_port(ip: impl Into<IpAddr>) -> Result<u16, Error> {
    let ip = ip.into();
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|addr| addr.port())
        .doing(|| format!("finding a free port on {ip}"))
}
