//! Placeholder replacement on a request about to be forwarded: every header (and, for secrets
//! that opt in, the query string) goes through the engine; every replacement is recorded
//! durably before the request may leave, and every placeholder left alone is recorded too.

use hyper::{
    body::Incoming,
    http::{uri::PathAndQuery, HeaderValue},
    Request, Uri,
};

use veil_core::inject::{self, Target};

use super::Context;
use crate::audit::{Connection, Event, Injection, RequestProtocol};

/// Who sent a request, for the audit records of what happened to it.
#[derive(Clone, Debug)]
pub struct Origin {
    /// Sandbox name, if known.
    pub sandbox: Option<String>,
    /// cgroup v2 id.
    pub cgroup_id: u64,
    /// Process id.
    pub pid: u32,
    /// Command name.
    pub comm: String,
}

impl Origin {
    /// The requester named in a connection's audit record.
    pub fn of(connection: &Connection) -> Self {
        Self {
            sandbox: connection.sandbox.clone(),
            cgroup_id: connection.cgroup_id,
            pid: connection.pid,
            comm: connection.comm.clone(),
        }
    }
}

/// Why a request may not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    /// A replacement could not be recorded durably: the secret must not leave unaudited.
    #[error("the audit log cannot record a secret's use ({0}), so the request was not forwarded")]
    Unaudited(String),
    /// A rewritten value could not be put back into the request.
    #[error("a rewritten {0} is not valid in a request")]
    Invalid(&'static str),
}

/// Where a request goes, for the engine and the records.
pub struct Destination<'a> {
    /// The verified SNI or address (TLS), or the unverified Host (plain HTTP).
    pub host: &'a str,
    /// Whether upstream TLS verification proved `host`.
    pub verified: bool,
    /// The original destination.
    pub addr: std::net::SocketAddr,
    /// What the request goes upstream in.
    pub protocol: RequestProtocol,
}

/// Rewrites `req` in place and records what happened; returns once every replacement is on
/// disk.
pub async fn inject(
    ctx: &Context,
    origin: &Origin,
    req: &mut Request<Incoming>,
    to: &Destination<'_>,
) -> Result<(), InjectError> {
    let Some(engine) = ctx.engine.current() else {
        return Ok(());
    };
    let target = if to.verified {
        Target::VerifiedTls { host: to.host }
    } else {
        Target::Unverified
    };
    let mut events = Vec::new();
    for (name, value) in req.headers_mut().iter_mut() {
        // The authority is never an injection site: upstream gets the verified one.
        if name == hyper::header::HOST {
            continue;
        }
        let (new, found) = engine
            .rewrite_header(name.as_str(), value.as_bytes(), target)
            .into_parts();
        if let Some(new) = new {
            let mut replaced =
                HeaderValue::from_bytes(&new).map_err(|_| InjectError::Invalid("header"))?;
            replaced.set_sensitive(true);
            *value = replaced;
        }
        events.extend(found);
    }
    if let Some(target_bytes) = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().as_bytes().to_vec())
    {
        let (new, found) = engine.rewrite_query(&target_bytes, target).into_parts();
        if let Some(new) = new {
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query =
                Some(PathAndQuery::try_from(&new[..]).map_err(|_| InjectError::Invalid("query"))?);
            *req.uri_mut() = Uri::from_parts(parts).map_err(|_| InjectError::Invalid("query"))?;
        }
        events.extend(found);
    }
    let mut pending = Vec::new();
    for event in events {
        match event {
            inject::Event::Injected {
                secret_id,
                secret_name,
                header,
            } => {
                ctx.metrics.injection();
                let record = injection(origin, to, secret_id, secret_name, header, None);
                pending.push(ctx.audit.record_durable(Event::SecretInjected(record)));
            }
            inject::Event::NotInjected {
                secret_id,
                secret_name,
                header,
                reason,
            } => {
                log::info!(
                    "left {secret_name}'s placeholder in {header} for {} ({reason})",
                    to.host
                );
                let record = injection(
                    origin,
                    to,
                    secret_id,
                    secret_name,
                    header,
                    Some(reason.as_str().to_owned()),
                );
                ctx.audit.record(Event::PlaceholderNotInjected(record));
            }
        }
    }
    for durable in pending {
        durable
            .await
            .map_err(|e| InjectError::Unaudited(e.to_string()))?;
    }
    Ok(())
}

fn injection(
    origin: &Origin,
    to: &Destination<'_>,
    secret_id: String,
    secret_name: String,
    header: String,
    reason: Option<String>,
) -> Injection {
    Injection {
        secret_id,
        secret_name,
        host: to.host.to_owned(),
        destination: to.addr,
        protocol: to.protocol,
        header,
        reason,
        sandbox: origin.sandbox.clone(),
        cgroup_id: origin.cgroup_id,
        pid: origin.pid,
        comm: origin.comm.clone(),
    }
}
