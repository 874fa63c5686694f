//! Ctrl-C (SIGINT) and SIGTERM during a benchmark: instead of dying on the spot, which would
//! leave veil's pins, its sandbox cgroups and the servers behind, the bench notes the signal,
//! stops at the next check, and its cleanup runs as on any other error.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Result};

/// Whether SIGINT or SIGTERM arrived.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// From now on, SIGINT and SIGTERM only set the flag [`check`] reads.
pub fn catch() {
    let handler = on_signal as extern "C" fn(libc::c_int);
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(signal, handler as libc::sighandler_t) };
    }
}

/// Fails once the bench was interrupted.
pub fn check() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}
