//! `GET /v1/egress` and `PUT /v1/egress`: read and replace the egress policy; `GET /v1/ca`:
//! veil's CA certificate.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, header, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};

use veil_core::policy::config::Egress;

use super::server;
use crate::daemon::Daemon;

/// What `GET /v1/egress` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressState {
    /// The rules in force.
    #[serde(flatten)]
    pub rules: Egress,
    /// The file they are kept in.
    pub config: String,
}

/// The rules in force.
pub(super) fn get(daemon: &Daemon) -> Response<Full<Bytes>> {
    server::json(StatusCode::OK, &state(daemon))
}

/// Replaces the rules with the body's `{allow, passthrough}`; a bad rule changes nothing.
pub(super) async fn put(daemon: &Daemon, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let egress: Egress = match server::read_json(req).await {
        Ok(egress) => egress,
        Err(response) => return response,
    };
    match daemon.policy().set(&egress) {
        Ok(policy) => {
            log::info!(
                "egress policy replaced through the API ({} allow rules)",
                policy.allow.len()
            );
            server::json(StatusCode::OK, &state(daemon))
        }
        Err(e) => server::error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// veil's CA certificate, PEM.
pub(super) fn ca(daemon: &Daemon) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-pem-file")
        .body(Full::new(Bytes::from(daemon.tls().ca_pem().to_owned())))
        .unwrap_or_else(|_| server::internal())
}

fn state(daemon: &Daemon) -> EgressState {
    EgressState {
        rules: daemon.policy().egress(),
        config: daemon.policy().path().display().to_string(),
    }
}
