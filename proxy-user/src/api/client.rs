//! A client for the control API, used by the CLI.

use std::{
    ops::ControlFlow,
    path::{Path, PathBuf},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, client::conn::http1, header, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{de::DeserializeOwned, Serialize};
use tokio::net::UnixStream;
use veil_core::policy::config::Egress;

use super::{EgressState, ErrorBody, SandboxRequest};
use crate::{
    audit::{Container, Record, Verification},
    sandbox::Sandbox,
    secrets::SecretInfo,
    status::Status,
    steering::SettingsOverride,
};

/// Errors from talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon is not reachable.
    #[error("cannot reach the veil daemon at {path} (is `veil serve` running?): {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("talking to the veil daemon: {0}")]
    Http(#[from] hyper::Error),
    /// The daemon answered with an error.
    #[error("{message}")]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The daemon's message.
        message: String,
    },
    /// The daemon's answer could not be decoded.
    #[error("unexpected answer from the veil daemon: {0}")]
    Decode(String),
}

/// Body of `POST /v1/secrets`.
#[derive(Debug, Serialize)]
pub struct NewSecretBody<'a> {
    /// The name.
    pub name: &'a str,
    /// The value ([`crate::secrets::SecretValue::expose`]), or an aws key.
    pub secret: SecretField<'a>,
    /// The variable.
    pub env_var: &'a str,
    /// Host patterns; the daemon's default (`*`) when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<&'a [String]>,
    /// Query-string injection (sent only when set).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inject_query: bool,
    /// Slots, as the API writes them; the daemon's default (`["headers"]`) when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<serde_json::Value>,
    /// Methods; any when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<&'a [String]>,
    /// Path patterns; any when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<&'a [String]>,
    /// `aws` for an aws secret; the daemon's default (`token`) when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'a str>,
}

/// A secret's value as sent: a string, or an aws key's parts. `Debug` shows no value.
#[derive(Serialize)]
#[serde(untagged)]
pub enum SecretField<'a> {
    /// An ordinary secret's value.
    Text(&'a str),
    /// An aws secret's key.
    Aws(AwsKeyBody<'a>),
}

/// An aws key as `POST /v1/secrets` and `PATCH` take it. `Debug` shows the key id only.
#[derive(Serialize)]
pub struct AwsKeyBody<'a> {
    /// The access key id.
    pub access_key_id: &'a str,
    /// The secret access key.
    pub secret_access_key: &'a str,
    /// The session token of temporary credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_token: Option<&'a str>,
}

impl std::fmt::Debug for SecretField<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text(_) => f.write_str("Text([redacted])"),
            Self::Aws(key) => key.fmt(f),
        }
    }
}

impl std::fmt::Debug for AwsKeyBody<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKeyBody")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Body of `PATCH /v1/secrets/{id}`: only the fields that are set are sent.
#[derive(Debug, Default, Serialize)]
pub struct SecretPatchBody<'a> {
    /// A new value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretField<'a>>,
    /// A new variable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_var: Option<&'a str>,
    /// New host patterns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<&'a [String]>,
    /// New query-string injection setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inject_query: Option<bool>,
    /// New slots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<serde_json::Value>,
    /// New methods (empty: any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<&'a [String]>,
    /// New path patterns (empty: any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<&'a [String]>,
}

/// A handle on the daemon's control socket.
#[derive(Clone, Debug)]
pub struct ApiClient {
    socket: PathBuf,
}

impl ApiClient {
    /// A client for the daemon listening on `socket`, if one answers there (healthy or not:
    /// a daemon whose audit log has failed still answers, and says so).
    pub async fn connect(socket: &Path) -> Result<Self, ClientError> {
        let client = Self {
            socket: socket.to_path_buf(),
        };
        match client
            .request::<serde_json::Value>(Method::GET, "/healthz", None::<&()>)
            .await
        {
            Ok(_)
            | Err(ClientError::Api {
                status: StatusCode::SERVICE_UNAVAILABLE,
                ..
            }) => Ok(client),
            Err(e) => Err(e),
        }
    }

    /// The daemon's process id, as the kernel reports the peer of its control socket; `None`
    /// if it cannot be learned.
    pub async fn daemon_pid(&self) -> Option<u32> {
        let stream = UnixStream::connect(&self.socket).await.ok()?;
        let pid = stream.peer_cred().ok()?.pid()?;
        u32::try_from(pid).ok()
    }

    /// Creates a managed sandbox called `name` with `settings` over the defaults, and with
    /// `own_netns` a network namespace of its own.
    pub async fn create_sandbox(
        &self,
        name: &str,
        settings: &SettingsOverride,
        own_netns: bool,
    ) -> Result<Sandbox, ClientError> {
        let body = SandboxRequest {
            name: name.to_owned(),
            cgroup: None,
            settings: settings.clone(),
            own_netns,
            netns: None,
            container: None,
        };
        self.request(Method::POST, "/v1/sandboxes", Some(&body))
            .await
    }

    /// Steers the existing cgroup `cgroup` as sandbox `name`, with `settings` over the
    /// defaults, served in the network namespace `netns` (veil's own when `None`); the
    /// cgroup is `container`'s, when given.
    pub async fn attach(
        &self,
        name: &str,
        cgroup: &Path,
        settings: &SettingsOverride,
        netns: Option<&Path>,
        container: Option<&Container>,
    ) -> Result<Sandbox, ClientError> {
        let body = SandboxRequest {
            name: name.to_owned(),
            cgroup: Some(cgroup.to_path_buf()),
            settings: settings.clone(),
            own_netns: false,
            netns: netns.map(Path::to_path_buf),
            container: container.cloned(),
        };
        self.request(Method::POST, "/v1/sandboxes", Some(&body))
            .await
    }

    /// Removes or detaches sandbox `name`.
    pub async fn remove_sandbox(&self, name: &str) -> Result<Sandbox, ClientError> {
        let path = format!("/v1/sandboxes/{}", super::query::percent_encode(name));
        self.request(Method::DELETE, &path, None::<&()>).await
    }

    /// Every sandbox.
    pub async fn sandboxes(&self) -> Result<Vec<Sandbox>, ClientError> {
        self.request(Method::GET, "/v1/sandboxes", None::<&()>)
            .await
    }

    /// Every secret.
    pub async fn secrets(&self) -> Result<Vec<SecretInfo>, ClientError> {
        self.request(Method::GET, "/v1/secrets", None::<&()>).await
    }

    /// Stores a secret.
    pub async fn create_secret(&self, body: &NewSecretBody<'_>) -> Result<SecretInfo, ClientError> {
        self.request(Method::POST, "/v1/secrets", Some(body)).await
    }

    /// Changes secret `id`.
    pub async fn update_secret(
        &self,
        id: &str,
        body: &SecretPatchBody<'_>,
    ) -> Result<SecretInfo, ClientError> {
        self.request(Method::PATCH, &secret_path(id), Some(body))
            .await
    }

    /// Deletes secret `id`.
    pub async fn delete_secret(&self, id: &str) -> Result<SecretInfo, ClientError> {
        self.request(Method::DELETE, &secret_path(id), None::<&()>)
            .await
    }

    /// The egress rules in force.
    pub async fn egress(&self) -> Result<EgressState, ClientError> {
        self.request(Method::GET, "/v1/egress", None::<&()>).await
    }

    /// Replaces the egress rules.
    pub async fn set_egress(&self, egress: &Egress) -> Result<EgressState, ClientError> {
        self.request(Method::PUT, "/v1/egress", Some(egress)).await
    }

    /// Audit records matching `query` (the `/v1/audit` query string).
    pub async fn audit(&self, query: &str) -> Result<Vec<Record>, ClientError> {
        let body = self
            .exchange(Method::GET, &format!("/v1/audit?{query}"), None)
            .await?;
        decode_lines(&body)
    }

    /// The daemon's status report.
    pub async fn status(&self) -> Result<Status, ClientError> {
        self.request(Method::GET, "/v1/status", None::<&()>).await
    }

    /// Walks the audit log's hash chain in the daemon.
    pub async fn audit_verify(&self) -> Result<Verification, ClientError> {
        self.request(Method::GET, "/v1/audit/verify", None::<&()>)
            .await
    }

    /// Follows the audit records matching `query` (the `/v1/audit` query string, without
    /// `follow`): calls `on_records` once with nothing as soon as the daemon has accepted the
    /// request, then with the ones already there, then with each batch of new ones as the
    /// daemon commits them, until `on_records` breaks (returned as `Break`) or the daemon ends
    /// the stream because it stopped (`Continue`).
    pub async fn audit_follow(
        &self,
        query: &str,
        mut on_records: impl FnMut(Vec<Record>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, ClientError> {
        let path = match query {
            "" => "/v1/audit?follow=1".to_owned(),
            _ => format!("/v1/audit?{query}&follow=1"),
        };
        let response = self.send(Method::GET, &path, None).await?;
        let status = response.status();
        let mut body = response.into_body();
        if !status.is_success() {
            let bytes = body.collect().await?.to_bytes();
            return Err(api_error(status, &bytes));
        }
        // The daemon is following: say so before the first record, which may be a while.
        if on_records(Vec::new()).is_break() {
            return Ok(ControlFlow::Break(()));
        }
        let mut pending = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(frame) => frame,
                // The daemon went away mid-stream (it stopped or was killed): the follow is
                // over, as when it ends the stream itself.
                Err(e) if connection_closed(&e) => break,
                Err(e) => return Err(e.into()),
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            let Some(end) = pending.iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            let complete: Vec<u8> = pending.drain(..=end).collect();
            if on_records(decode_lines(&complete)?).is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl serde::Serialize>,
    ) -> Result<T, ClientError> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        let bytes = self.exchange(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, ClientError> {
        let response = self.send(method, path, body).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if status.is_success() {
            return Ok(bytes);
        }
        Err(api_error(status, &bytes))
    }

    /// Sends a request and returns the response with its body still to read.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Incoming>, ClientError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Connect {
                    path: self.socket.clone(),
                    source,
                })?;
        let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                log::debug!("control API client connection: {e}");
            }
        });
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "veil")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        Ok(sender.send_request(request).await?)
    }
}

fn secret_path(id: &str) -> String {
    format!("/v1/secrets/{}", super::query::percent_encode(id))
}

/// The error for a response with `status` and body `bytes`.
fn api_error(status: StatusCode, bytes: &[u8]) -> ClientError {
    let message = serde_json::from_slice::<ErrorBody>(bytes)
        .map(|e| e.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(bytes).into_owned());
    ClientError::Api { status, message }
}

/// Whether `error` says the connection closed under a body being read.
fn connection_closed(error: &hyper::Error) -> bool {
    if error.is_incomplete_message() {
        return true;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
            );
        }
        source = cause.source();
    }
    false
}

/// Decodes JSON lines of records.
fn decode_lines(bytes: &[u8]) -> Result<Vec<Record>, ClientError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ClientError::Decode(e.to_string()))?;
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| ClientError::Decode(e.to_string())))
        .collect()
}
