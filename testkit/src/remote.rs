//! Stand-in "remote" hosts. A `veil run` sandbox has its own network namespace whose loopback
//! is its own, so servers standing in for remote hosts cannot sit on the host's loopback:
//! they bind addresses in [`REMOTE_NET`], which [`ensure_remote_hosts`] makes local to the
//! host's namespace (`ip route replace local 10.250.0.0/16 dev lo`: every address in it is the
//! host's, without adding any). A sandbox reaches them only through veil, under the policy,
//! as it would a real remote host. The route is idempotent and left in place.

use std::{net::Ipv4Addr, process::Command, sync::OnceLock};

use crate::error::{Context, Error};

/// The network the stand-in remote hosts live in.
pub const REMOTE_NET: &str = "10.250.0.0/16";

/// The `n`th stand-in remote host's address, `10.250.0.n`.
pub const fn remote_ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 250, 0, n)
}

/// Makes every address of [`REMOTE_NET`] local to the host's network namespace, once per
/// process (root only).
pub fn ensure_remote_hosts() -> Result<(), Error> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let out = Command::new("ip")
            .args(["route", "replace", "local", REMOTE_NET, "dev", "lo"])
            .output()
            .doing(|| format!("running `ip route replace local {REMOTE_NET} dev lo`"))
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`ip route replace local {REMOTE_NET} dev lo` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    })
    .clone()
    .map_err(|message| Error::Io {
        what: "making the stand-in remote hosts' addresses local".into(),
        source: std::io::Error::other(message),
    })
}
