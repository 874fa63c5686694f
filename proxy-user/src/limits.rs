//! Process limits a proxy needs: every proxied connection holds two file descriptors (the
//! sandbox's and the upstream's), so the default soft limit of 1024 open files would cap veil
//! near 500 connections.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises the soft limit on open files to the hard limit and returns the new soft limit.
///
/// Only the soft limit moves, which needs no privilege; the hard limit is the operator's
/// (`LimitNOFILE=` in systemd, `ulimit -Hn`).
pub fn raise_open_files() -> std::io::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
        return Ok(hard);
    }
    Ok(soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let soft = raise_open_files().unwrap();
        let (cur, max) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, cur);
        assert_eq!(cur, max);
    }
}
