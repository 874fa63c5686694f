//! Reporting what the scrubber took out of a response: a `secret_scrubbed` audit record per
//! secret and place, naming the request, never the value.

use std::{net::SocketAddr, sync::Arc};

use veil_core::scrub::Found;

use super::{inject_request::Origin, Context};
use crate::audit::{Event, Scrub};

/// Where the records of one response's scrubbing go, and what they say of it.
pub struct Report {
    ctx: Arc<Context>,
    origin: Origin,
    host: String,
    destination: SocketAddr,
}

impl Report {
    /// A report for a response from `host` at `destination` to `origin`.
    pub fn new(ctx: Arc<Context>, origin: Origin, host: String, destination: SocketAddr) -> Self {
        Self {
            ctx,
            origin,
            host,
            destination,
        }
    }

    /// The host the response came from.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Records what `found` says was scrubbed at `location`, and what was done (`replaced`,
    /// `cut: why`).
    pub fn found(&self, found: &Found, location: &str, action: &str) {
        for scrubbed in found.secrets() {
            log::debug!(
                "{} occurrence(s) of secret {} in the {location} of a response from {} ({action})",
                scrubbed.count,
                scrubbed.secret_name,
                self.host
            );
            self.ctx.metrics.scrub();
            self.ctx.audit.record(Event::SecretScrubbed(Scrub {
                secret_id: scrubbed.secret_id.to_string(),
                secret_name: scrubbed.secret_name.to_string(),
                host: self.host.clone(),
                destination: self.destination,
                location: location.to_owned(),
                count: scrubbed.count,
                action: action.to_owned(),
                sandbox: self.origin.sandbox.clone(),
                cgroup_id: self.origin.cgroup_id,
                pid: self.origin.pid,
                comm: self.origin.comm.clone(),
            }));
        }
    }
}
