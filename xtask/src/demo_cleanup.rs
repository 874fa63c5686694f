//! Removing everything the demo made, whatever happened: the guard that does it when dropped,
//! saying what it does.

use veil_testkit::Installation;

use crate::{
    demo_support::{output, print_indented, step},
    demo_upstream::Upstream,
};

/// Stops and removes everything the demo created, in reverse order, when dropped.
pub struct Cleanup {
    /// The demo's private veil installation (its directory also holds the PKI and the logs).
    pub instance: Installation,
    /// The stand-in remote API, once started.
    pub upstream: Option<Upstream>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        step("Cleaning up");
        if self.instance.daemon().is_some() {
            println!("Stopping veil serve (SIGTERM) and waiting for it to exit");
            if let Some(status) = self.instance.stop_daemon(libc::SIGTERM) {
                println!("veil serve exited ({status})");
            }
        }
        if let Some(upstream) = self.upstream.take() {
            println!("Stopping the stand-in API");
            drop(upstream);
        }
        if self.instance.has_leftovers() {
            println!("Detaching veil and removing its pins and sandbox cgroups (veil reset)");
            match output(self.instance.command().arg("reset")) {
                Ok(out) => {
                    print_indented(&out);
                    if !out.status.success() {
                        eprintln!("warning: veil reset failed ({})", out.status);
                    }
                }
                Err(e) => eprintln!("warning: cleanup step failed: {e:#}"),
            }
        }
        if self.instance.has_leftovers() {
            println!(
                "Still there: removing {} and the cgroup {}",
                self.instance.bpf_dir().display(),
                self.instance.cgroup_parent().display()
            );
            if let Err(e) = self.instance.remove_leftovers() {
                eprintln!("warning: cleanup step failed: {e}");
            }
        }
        // Dropping the installation removes its directory.
        println!("Removing {}", self.instance.dir().display());
    }
}
