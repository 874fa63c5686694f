//! Placeholder replacement on a request about to be forwarded: every header, the path and the
//! query string go through the engine (each secret only in its slots, and only within its
//! host, method and path scopes); every replacement is recorded durably before the request may
//! leave, and the placeholders left alone are recorded too: one record per secret and reason,
//! with how many there were and where. Bodies: [`super::inject_body`].

use hyper::{
    body::Incoming,
    http::{uri::PathAndQuery, HeaderValue},
    Request, Uri,
};

use veil_core::{
    inject::{self, Engine, Target},
    secrets::SecretValue,
};

pub use veil_core::inject::Request as Judged;

use super::Context;
use crate::audit::{Connection, Event, Injection, RequestProtocol, MAX_HEADERS};

/// Who sent a request, for the audit records of what happened to it.
#[derive(Clone, Debug)]
pub struct Origin {
    /// Sandbox name, if known.
    pub sandbox: Option<String>,
    /// cgroup v2 id.
    pub cgroup_id: u64,
    /// The sandbox's cgroup id (`cgroup_id`, or an ancestor of it).
    pub sandbox_id: u64,
    /// Process id.
    pub pid: u32,
    /// Command name.
    pub comm: String,
}

impl Origin {
    /// The requester named in a connection's audit record, in sandbox `sandbox_id`.
    pub fn of(connection: &Connection, sandbox_id: u64) -> Self {
        Self {
            sandbox: connection.sandbox.clone(),
            cgroup_id: connection.cgroup_id,
            sandbox_id,
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

impl Destination<'_> {
    /// Where the request goes, as the engine judges it.
    pub fn target(&self) -> Target<'_> {
        if self.verified {
            Target::VerifiedTls { host: self.host }
        } else {
            Target::Unverified
        }
    }
}

/// A request's head once rewritten: the request as the sandbox sent it (what scopes judge) and
/// what the rewrite did, still to be recorded.
pub struct Head<'a> {
    /// The request as the sandbox sent it.
    pub judged: &'a Judged<'a>,
    /// The head's replacements and placeholders left alone.
    pub events: Vec<inject::Event>,
}

/// Rewrites `req`'s headers, path and query in place and returns what happened, for
/// [`record`]: the caller records these events together with the body's (one group commit
/// for the whole request) before the request leaves. `judged` is the request as the sandbox
/// sent it.
pub fn rewrite_head(
    engine: Option<&Engine<SecretValue>>,
    req: &mut Request<Incoming>,
    judged: &Judged<'_>,
) -> Result<Vec<inject::Event>, InjectError> {
    let Some(engine) = engine else {
        return Ok(Vec::new());
    };
    let target = judged;
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
        let (path, found) = engine.rewrite_path(&target_bytes, target).into_parts();
        events.extend(found);
        let rewritten = path.as_deref().map_or(&target_bytes[..], |p| p);
        let (query, found) = engine.rewrite_query(rewritten, target).into_parts();
        events.extend(found);
        if let Some(new) = query.as_deref().or(path.as_deref()) {
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = Some(
                PathAndQuery::try_from(&new[..])
                    .map_err(|_| InjectError::Invalid("request target"))?,
            );
            *req.uri_mut() =
                Uri::from_parts(parts).map_err(|_| InjectError::Invalid("request target"))?;
        }
    }
    Ok(events)
}

/// Records `events`: each replacement durably (all awaited before this returns), the
/// placeholders left alone grouped per secret and reason.
pub async fn record(
    ctx: &Context,
    origin: &Origin,
    to: &Destination<'_>,
    events: Vec<inject::Event>,
) -> Result<(), InjectError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut pending = Vec::new();
    let mut left = Vec::new();
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
            } => left_alone(&mut left, secret_id, secret_name, header, reason.as_str()),
        }
    }
    for group in left {
        log::info!(
            "left {} of {}'s placeholders in {} for {} ({})",
            group.count,
            group.secret_name,
            group.headers.join(", "),
            to.host,
            group.reason
        );
        // Every group has the place of its first placeholder.
        let header = group.headers.first().cloned().unwrap_or_default();
        let mut record = injection(
            origin,
            to,
            group.secret_id,
            group.secret_name,
            header,
            Some(group.reason.to_owned()),
        );
        if group.headers.len() > 1 {
            record.headers = group.headers;
        }
        record.count = group.count;
        ctx.audit.record(Event::PlaceholderNotInjected(record));
    }
    for durable in pending {
        durable
            .await
            .map_err(|e| InjectError::Unaudited(e.to_string()))?;
    }
    Ok(())
}

/// The placeholders of one secret left alone for one reason in one request.
#[derive(Debug, PartialEq)]
struct LeftAlone {
    secret_id: String,
    secret_name: String,
    reason: &'static str,
    /// The distinct places they were in, in order, at most [`MAX_HEADERS`].
    headers: Vec<String>,
    count: u64,
}

/// Counts a placeholder of `secret_id` left alone in `header` for `reason` into its group.
fn left_alone(
    groups: &mut Vec<LeftAlone>,
    secret_id: String,
    secret_name: String,
    header: String,
    reason: &'static str,
) {
    let index = match groups
        .iter()
        .position(|g| g.secret_id == secret_id && g.reason == reason)
    {
        Some(index) => index,
        None => {
            groups.push(LeftAlone {
                secret_id,
                secret_name,
                reason,
                headers: Vec::new(),
                count: 0,
            });
            groups.len() - 1
        }
    };
    let group = &mut groups[index];
    group.count = group.count.saturating_add(1);
    if group.headers.len() < MAX_HEADERS && !group.headers.contains(&header) {
        group.headers.push(header);
    }
}

/// The record of a placeholder of `secret_id` in `header`: replaced, or left alone for
/// `reason`.
fn injection(
    origin: &Origin,
    to: &Destination<'_>,
    secret_id: String,
    secret_name: String,
    header: String,
    reason: Option<String>,
) -> Injection {
    Injection {
        slot: Some(inject::slot_name(&header)),
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
        headers: Vec::new(),
        count: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_left_alone_are_grouped_by_secret_and_reason() {
        let mut groups = Vec::new();
        for i in 0..2000 {
            let header = format!("x-h{}", i % 10);
            left_alone(
                &mut groups,
                "s1".into(),
                "one".into(),
                header,
                "out_of_scope",
            );
        }
        left_alone(
            &mut groups,
            "s2".into(),
            "two".into(),
            "x-a".into(),
            "out_of_scope",
        );
        left_alone(
            &mut groups,
            "s1".into(),
            "one".into(),
            "(query)".into(),
            "not_tls",
        );
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].count, 2000);
        assert_eq!(groups[0].headers.len(), MAX_HEADERS);
        assert_eq!(groups[0].headers[..2], ["x-h0", "x-h1"]);
        assert_eq!(
            (
                groups[1].secret_id.as_str(),
                groups[1].count,
                groups[1].headers.len()
            ),
            ("s2", 1, 1)
        );
        assert_eq!((groups[2].reason, groups[2].count), ("not_tls", 1));
    }
}
