//! The audit endpoints beyond a plain query: the daemon's health (which is the audit log's),
//! verifying the hash chain, and following the log as a stream.

use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::{body::Frame, header, Response, StatusCode};
use tokio::sync::mpsc;

use super::server::{daemon_error, error, json};
use crate::{
    audit::{self, Filter, Record},
    daemon::Daemon,
};

/// The body of every control API response.
pub(super) type ApiBody = BoxBody<Bytes, Infallible>;

/// `GET /healthz`: 200 `{"status":"ok"}`, or 503 `{"status":"failing","reason":...}` once the
/// audit log has failed (veil then refuses whatever must be audited).
pub(super) fn healthz(daemon: &Daemon) -> Response<Full<Bytes>> {
    match daemon.audit().failure() {
        None => json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        Some(reason) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"status": "failing", "reason": format!("audit log: {reason}")}),
        ),
    }
}

/// `GET /v1/audit/verify`: walks the chain (off the async runtime) against the head the
/// writer committed last.
pub(super) async fn verify(daemon: &Daemon) -> Response<Full<Bytes>> {
    let store = daemon.audit_store().clone();
    let witness = daemon.audit().committed();
    match tokio::task::spawn_blocking(move || store.verify(Some(witness))).await {
        Ok(Ok(verification)) => json(StatusCode::OK, &verification),
        Ok(Err(e)) => {
            log::error!("verifying the audit log: {e}");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("verifying the audit log: {e}"),
            )
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("verifying the audit log: {e}"),
        ),
    }
}

/// `GET /v1/audit?follow=1`: the matching records already committed, then each new one as it
/// is committed, as JSON lines in a body that stays open until the client goes away or the
/// daemon stops.
pub(super) fn follow(daemon: &Daemon, filter: Filter) -> Response<ApiBody> {
    let (existing, mut follow) = match daemon.audit_follow(filter) {
        Ok(started) => started,
        Err(e) => return daemon_error(&e).map(BodyExt::boxed),
    };
    let (lines, body) = mpsc::channel(FOLLOW_BUFFER);
    tokio::spawn(async move {
        let mut batch = existing;
        loop {
            if !batch.is_empty() && lines.send(json_lines(&batch)).await.is_err() {
                return;
            }
            batch = tokio::select! {
                () = lines.closed() => return,
                next = follow.next() => match next {
                    Some(Ok(records)) => records,
                    Some(Err(e)) => {
                        log::error!("following the audit log: {e}");
                        return;
                    }
                    // The writer stopped: the daemon is shutting down.
                    None => return,
                },
            };
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Lines(body).boxed())
        .unwrap_or_else(|_| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".to_owned(),
            )
            .map(BodyExt::boxed)
        })
}

/// `records` as JSON lines.
pub(super) fn json_lines(records: &[Record]) -> Bytes {
    let mut body = String::new();
    for record in records {
        body.push_str(&audit::json_line(record));
        body.push('\n');
    }
    Bytes::from(body)
}

/// Batches of lines a follower may be ahead of a slow client by.
const FOLLOW_BUFFER: usize = 64;

/// A response body made of the chunks sent to it; it ends when the sender is dropped.
struct Lines(mpsc::Receiver<Bytes>);

impl hyper::body::Body for Lines {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}
