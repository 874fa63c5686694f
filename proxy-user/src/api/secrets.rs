//! The `/v1/secrets` endpoints: JSON in and out, never a secret value out.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, Method, Request, Response, StatusCode};
use zeroize::Zeroizing;

use super::{server, ErrorBody, MAX_BODY};
use crate::{
    daemon::Daemon,
    metrics::ErrorKind,
    secrets::{FieldError, NewSecret, SecretError, SecretInfo, SecretPatch, SecretStore},
};

/// Answers `method` on `/v1/secrets/<rest>`.
pub(super) async fn route(
    daemon: &Daemon,
    method: &Method,
    rest: &[&str],
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let store = daemon.secrets();
    let answer = match (method, rest) {
        (&Method::GET, []) => return server::json(StatusCode::OK, &store.list()),
        (&Method::POST, []) => create(store, req).await.map(|s| (StatusCode::CREATED, s)),
        (&Method::GET, [id]) => store.get(id).map(|s| (StatusCode::OK, s)),
        (&Method::PATCH, [id]) => update(store, id, req).await.map(|s| (StatusCode::OK, s)),
        (&Method::DELETE, [id]) => store.delete(id).await.map(|s| (StatusCode::OK, s)),
        (_, [] | [_]) => {
            return server::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed here"),
            )
        }
        _ => return server::error(StatusCode::NOT_FOUND, "no such endpoint".to_owned()),
    };
    match answer {
        Ok((status, secret)) => server::json(status, &secret),
        Err(e) => failure(daemon, &e),
    }
}

async fn create(store: &SecretStore, req: Request<Incoming>) -> Result<SecretInfo, SecretError> {
    let body = read_body(req).await?;
    store.create(NewSecret::from_json(&body)?).await
}

async fn update(
    store: &SecretStore,
    id: &str,
    req: Request<Incoming>,
) -> Result<SecretInfo, SecretError> {
    let body = read_body(req).await?;
    store.update(id, SecretPatch::from_json(&body)?).await
}

/// The request body, zeroized once parsed (it may hold a secret value).
async fn read_body(req: Request<Incoming>) -> Result<Zeroizing<Vec<u8>>, FieldError> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| FieldError {
            field: "body",
            message: format!("could not be read (at most {MAX_BODY} bytes): {e}"),
        })?;
    Ok(Zeroizing::new(Vec::from(body.to_bytes())))
}

/// The error response for `e`: 400 naming the field, 404, 409, or 5xx.
fn failure(daemon: &Daemon, e: &SecretError) -> Response<Full<Bytes>> {
    let (status, field) = match e {
        SecretError::Invalid(f) => (StatusCode::BAD_REQUEST, Some(f.field)),
        SecretError::NotFound(_) => (StatusCode::NOT_FOUND, None),
        SecretError::NameTaken(_) => (StatusCode::CONFLICT, Some("name")),
        SecretError::EnvVarTaken { .. } => (StatusCode::CONFLICT, Some("env_var")),
        SecretError::Audit(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, None),
    };
    if status.is_server_error() {
        daemon.metrics().error(ErrorKind::Api);
        log::error!("control API: {e}");
    }
    server::json(
        status,
        &ErrorBody {
            error: e.to_string(),
            field: field.map(str::to_owned),
        },
    )
}
