//! Serving the control API over the daemon.

use std::{convert::Infallible, sync::Arc};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{
    body::Incoming, header, server::conn::http1, service::service_fn, Method, Request, Response,
    StatusCode,
};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::UnixListener;

use super::{audit::ApiBody, parse_audit_query, AuditQuery, ErrorBody, SandboxRequest, MAX_BODY};
use crate::{
    audit::{self, AuditError},
    cgroup::CgroupError,
    daemon::{Daemon, DaemonError},
    sandbox::{RegistryError, SandboxError},
    steering::SteeringError,
};

/// Serves API connections until the task is dropped.
pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                log::warn!("control API accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let daemon = Arc::clone(&daemon);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let daemon = Arc::clone(&daemon);
                async move { Ok::<_, Infallible>(respond(&daemon, req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                log::debug!("control API connection: {e}");
            }
        });
    }
}

/// Answers one API request: following the audit log as a stream, anything else through
/// [`route`].
async fn respond(daemon: &Daemon, req: Request<Incoming>) -> Response<ApiBody> {
    if req.method() == Method::GET && req.uri().path().trim_matches('/') == "v1/audit" {
        let query = req.uri().query().unwrap_or("");
        if let Ok(AuditQuery {
            filter,
            follow: true,
        }) = parse_audit_query(query, audit::now_ms())
        {
            return super::audit::follow(daemon, filter);
        }
    }
    route(daemon, req).await.map(BodyExt::boxed)
}

/// Answers one API request.
pub(super) async fn route(daemon: &Daemon, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["healthz"]) => super::audit::healthz(daemon),
        (_, ["v1", "secrets", rest @ ..]) => {
            super::secrets::route(daemon, &method, rest, req).await
        }
        (&Method::GET, ["metrics"]) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(Full::new(Bytes::from(daemon.metrics().render())))
            .unwrap_or_else(|_| internal()),
        (&Method::GET, ["v1", "egress"]) => super::egress::get(daemon),
        (&Method::PUT, ["v1", "egress"]) => super::egress::put(daemon, req).await,
        (&Method::GET, ["v1", "ca"]) => super::egress::ca(daemon),
        (&Method::GET, ["v1", "status"]) => json(StatusCode::OK, &crate::status::report(daemon)),
        (&Method::GET, ["v1", "sandboxes"]) => json(StatusCode::OK, &daemon.sandboxes().list()),
        (&Method::POST, ["v1", "sandboxes"]) => {
            let request: SandboxRequest = match read_json(req).await {
                Ok(r) => r,
                Err(resp) => return resp,
            };
            let sandboxes = daemon.sandboxes();
            let created = match &request.cgroup {
                Some(dir) => {
                    let netns = request.netns.as_deref();
                    let container = request.container.clone();
                    sandboxes
                        .attach(&request.name, dir, &request.settings, netns, container)
                        .await
                }
                None => {
                    sandboxes
                        .create(&request.name, &request.settings, request.own_netns)
                        .await
                }
            };
            match created {
                Ok(sandbox) => json(StatusCode::CREATED, &sandbox),
                Err(e) => daemon_error(&e.into()),
            }
        }
        (&Method::DELETE, ["v1", "sandboxes", name]) => {
            match daemon.sandboxes().remove(name).await {
                Ok(sandbox) => json(StatusCode::OK, &sandbox),
                Err(e) => daemon_error(&e.into()),
            }
        }
        (&Method::GET, ["v1", "audit"]) => {
            let filter = match parse_audit_query(&query, audit::now_ms()) {
                Ok(q) => q.filter,
                Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
            };
            match daemon.audit_query(&filter) {
                Ok(records) => Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "application/x-ndjson")
                    .body(Full::new(super::audit::json_lines(&records)))
                    .unwrap_or_else(|_| internal()),
                Err(e) => daemon_error(&e),
            }
        }
        (&Method::GET, ["v1", "audit", "verify"]) => super::audit::verify(daemon).await,
        (
            _,
            ["healthz"]
            | ["metrics"]
            | ["v1", "sandboxes"]
            | ["v1", "sandboxes", _]
            | ["v1", "egress"]
            | ["v1", "ca"]
            | ["v1", "status"]
            | ["v1", "audit"]
            | ["v1", "audit", "verify"],
        ) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}"),
        ),
        _ => error(StatusCode::NOT_FOUND, format!("no such endpoint: {path}")),
    }
}

pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
) -> Result<T, Response<Full<Bytes>>> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("reading the body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

/// The response for a failed daemon operation.
pub(super) fn daemon_error(e: &DaemonError) -> Response<Full<Bytes>> {
    let status = match e {
        DaemonError::Sandbox(e) => sandbox_status(e),
        DaemonError::Audit(e) => audit_status(e),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status.is_server_error() {
        log::error!("control API: {e}");
    }
    error(status, e.to_string())
}

/// The status for a failed sandbox change.
fn sandbox_status(e: &SandboxError) -> StatusCode {
    match e {
        SandboxError::Registry(RegistryError::NotFound(_)) => StatusCode::NOT_FOUND,
        SandboxError::Registry(RegistryError::NameTaken(_) | RegistryError::CgroupTaken { .. })
        | SandboxError::Cgroup(CgroupError::Exists(_)) => StatusCode::CONFLICT,
        SandboxError::Cgroup(CgroupError::InvalidName(_) | CgroupError::NotACgroup(_))
        | SandboxError::Steering(SteeringError::TooManyResolvers { .. }) => StatusCode::BAD_REQUEST,
        SandboxError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            StatusCode::BAD_REQUEST
        }
        SandboxError::Audit(e) => audit_status(e),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The status for a failed audit log operation.
fn audit_status(e: &AuditError) -> StatusCode {
    match e {
        AuditError::Store(_) | AuditError::Failing { .. } | AuditError::WriterGone => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `value` as a JSON response.
pub(super) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_else(|_| internal()),
        Err(_) => internal(),
    }
}

/// An error response.
pub(super) fn error(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    json(
        status,
        &ErrorBody {
            error: message,
            field: None,
        },
    )
}

pub(super) fn internal() -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(
        b"{\"error\":\"internal error\"}",
    )));
    *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    resp
}
