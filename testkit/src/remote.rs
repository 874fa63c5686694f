//! Stand-in "remote" hosts. A `veil run` sandbox has its own network namespace whose loopback
//! is its own, so servers standing in for remote hosts cannot sit on the host's loopback:
//! they bind addresses in [`REMOTE_NET`], which [`ensure_remote_hosts`] makes local to the
//! host's namespace (`ip route replace local 10.250.0.0/16 dev lo`: every address in it is the
//! host's, without adding any), or [`REMOTE_IP6`] for IPv6. A sandbox reaches them only
//! through veil, under the policy, as it would a real remote host. The route and the address
//! are idempotent and left in place.

use std::{
    fs,
    net::{Ipv4Addr, Ipv6Addr},
    process::Command,
    sync::OnceLock,
};

use crate::error::{Context, Error};

/// The network the stand-in remote hosts live in.
pub const REMOTE_NET: &str = "10.250.0.0/16";

/// The stand-in remote host's IPv6 address, `fd7e:5ee1::2` (unique local, not loopback).
/// IPv6 has no `local` routes a server could bind in, so [`ensure_remote_hosts`] adds this
/// one address to `lo` instead (when the host has IPv6 on `lo`).
pub const REMOTE_IP6: Ipv6Addr = Ipv6Addr::new(0xfd7e, 0x5ee1, 0, 0, 0, 0, 0, 2);

/// The `n`th stand-in remote host's address, `10.250.0.n`.
pub const fn remote_ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 250, 0, n)
}

/// Makes every address of [`REMOTE_NET`], and [`REMOTE_IP6`] where the host has IPv6 on
/// `lo`, local to the host's network namespace, once per process (root only).
pub fn ensure_remote_hosts() -> Result<(), Error> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        ip(&["route", "replace", "local", REMOTE_NET, "dev", "lo"])?;
        if ipv6_on_loopback() {
            let addr = format!("{REMOTE_IP6}/128");
            // nodad: usable at once, with no duplicate address detection to wait for.
            ip(&["-6", "addr", "replace", &addr, "dev", "lo", "nodad"])?;
        }
        Ok(())
    })
    .clone()
    .map_err(|message| Error::Io {
        what: "making the stand-in remote hosts' addresses local".into(),
        source: std::io::Error::other(message),
    })
}

/// Whether `lo` has IPv6 (the kernel has it and it is not disabled there).
fn ipv6_on_loopback() -> bool {
    fs::read_to_string("/proc/sys/net/ipv6/conf/lo/disable_ipv6").is_ok_and(|v| v.trim() == "0")
}

/// Runs `ip ARGS`; its error output when it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let line = format!("ip {}", args.join(" "));
    let out = Command::new("ip")
        .args(args)
        .output()
        .doing(|| format!("running `{line}`"))
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{line}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
