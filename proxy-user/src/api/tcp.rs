//! The control API on a TCP address (`veil serve --api-listen`), for operators on other
//! machines or in containers: every request needs `Authorization: Bearer <api key>`, the key
//! being the contents of `<state-dir>/api.key` (created on first start, 0600).

use std::{convert::Infallible, sync::Arc};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    body::Incoming, header, server::conn::http1, service::service_fn, Request, Response, StatusCode,
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::server;
use crate::{daemon::Daemon, secrets::ApiKey};

/// Serves API connections on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, key: ApiKey, daemon: Arc<Daemon>) {
    let key = Arc::new(key);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                log::warn!("TCP control API accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let daemon = Arc::clone(&daemon);
        let key = Arc::clone(&key);
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let daemon = Arc::clone(&daemon);
                let key = Arc::clone(&key);
                async move {
                    if key.admits(&req) {
                        Ok::<_, Infallible>(server::route(&daemon, req).await)
                    } else {
                        log::info!(
                            "TCP control API: refused a request from {peer} without the API key"
                        );
                        Ok(unauthorized())
                    }
                }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                log::debug!("TCP control API connection from {peer}: {e}");
            }
        });
    }
}

fn unauthorized() -> Response<Full<Bytes>> {
    let mut response = server::error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong API key: send `Authorization: Bearer <contents of api.key in the \
         state directory>`"
            .to_owned(),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}
