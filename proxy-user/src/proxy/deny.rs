//! Answering a denied connection with a 403 that names the host and the reason, over plain
//! HTTP or over TLS that veil completes with its own certificate (no upstream connection is
//! made), so the sandboxed client sees why.

use std::{convert::Infallible, sync::Arc};

use hyper::{header, service::service_fn, StatusCode};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;

use super::http::answer;

/// Serves 403 `message` to every request on `client` (plain HTTP/1).
pub async fn respond_plain<S>(client: S, message: String)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_403(client, message).await;
}

/// Completes the client's TLS handshake with `config` (veil's leaf, ALPN chosen from the
/// client's offer) and serves 403 `message`.
pub async fn respond_tls<S>(client: S, config: Arc<ServerConfig>, message: String)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handshake = TlsAcceptor::from(config).accept(client);
    match tokio::time::timeout(std::time::Duration::from_secs(10), handshake).await {
        Ok(Ok(tls)) => serve_403(tls, message).await,
        Ok(Err(e)) => log::debug!("TLS handshake for a denial failed: {e}"),
        Err(_) => log::debug!("TLS handshake for a denial timed out"),
    }
}

async fn serve_403<S>(client: S, message: String)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |_req| {
        let mut response = answer(StatusCode::FORBIDDEN, message.clone());
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        async move { Ok::<_, Infallible>(response) }
    });
    if let Err(e) = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(client), service)
        .await
    {
        log::debug!("serving a denial: {e}");
    }
}
