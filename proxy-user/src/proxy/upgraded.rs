//! Relaying a connection that stopped being HTTP (a WebSocket after its upgrade, or TLS that
//! carries something else): bytes from the sandbox go upstream as they are; bytes from
//! upstream go to the sandbox scrubbed, frame by frame for WebSocket
//! ([`veil_core::websocket`]), as a plain stream otherwise.
//!
//! The scrubber holds back the few bytes that could still begin a secret until the next bytes
//! say whether they do; it never lets them go on a timer, since the rest of a split secret
//! would then pass unrecognised.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use veil_core::{
    scrub::{Found, ScrubStream, Scrubber},
    websocket::{FrameError, FrameScrubber},
};

use super::report::Report;

/// What the bytes from upstream are.
pub enum Downstream {
    /// WebSocket frames.
    WebSocket,
    /// Anything else.
    Bytes,
}

/// Relays `client` and `upstream` both ways until both directions end, scrubbing what comes
/// from upstream.
pub async fn relay<C, U>(
    client: C,
    upstream: U,
    kind: Downstream,
    scrubber: Arc<Scrubber>,
    report: Arc<Report>,
) where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut upstream_read, mut upstream_write) = tokio::io::split(upstream);
    let up = async {
        let copied = tokio::io::copy(&mut client_read, &mut upstream_write).await;
        let _ = upstream_write.shutdown().await;
        copied
    };
    let down = async {
        let mut scrub = match kind {
            Downstream::WebSocket => Scrub::Frames(FrameScrubber::new(scrubber)),
            Downstream::Bytes => Scrub::Stream(scrubber.stream()),
        };
        let result = down(&mut upstream_read, &mut client_write, &mut scrub, &report).await;
        let _ = client_write.shutdown().await;
        result
    };
    let (up, down) = tokio::join!(up, down);
    if let Err(e) = up {
        log::debug!("relay to {} ended: {e}", report.host());
    }
    if let Err(e) = down {
        log::debug!("relay from {} ended: {e}", report.host());
    }
}

/// How the bytes from upstream are scrubbed.
enum Scrub {
    Frames(FrameScrubber),
    Stream(ScrubStream),
}

impl Scrub {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Found, FrameError> {
        match self {
            Self::Frames(frames) => frames.feed(input, out),
            Self::Stream(stream) => Ok(stream.feed(input, out)),
        }
    }

    fn location(&self) -> &'static str {
        match self {
            Self::Frames(_) => "frame",
            Self::Stream(_) => "stream",
        }
    }
}

/// Copies upstream's bytes to the sandbox through `scrub`.
async fn down<R, W>(
    from: &mut R,
    to: &mut W,
    scrub: &mut Scrub,
    report: &Report,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0; 16 * 1024];
    let mut out = Vec::with_capacity(16 * 1024);
    loop {
        let n = from.read(&mut buf).await?;
        out.clear();
        let found = if n == 0 {
            match scrub {
                Scrub::Stream(stream) => stream.finish(&mut out),
                Scrub::Frames(_) => Found::default(),
            }
        } else {
            scrub
                .feed(&buf[..n], &mut out)
                .map_err(|e| std::io::Error::other(format!("upstream's WebSocket: {e}")))?
        };
        if !found.is_empty() {
            report.found(&found, scrub.location(), "replaced");
        }
        to.write_all(&out).await?;
        if n == 0 {
            return Ok(());
        }
    }
}
