//! Reading a steered connection's first bytes until [`veil_core::classify::sniff`] says what
//! they are: a TLS ClientHello, an HTTP/1 request head, or something else.

use std::time::Duration;

use tokio::{
    io::{AsyncRead, AsyncReadExt},
    time::{timeout, Instant},
};

use veil_core::classify::{sniff, Sniff, SniffError};
pub use veil_core::classify::{ClientHello, Protocol, RequestHead};

/// How long veil waits for a client to speak first before treating the connection as a
/// server-first protocol.
pub const FIRST_BYTES_TIMEOUT: Duration = Duration::from_millis(300);
/// How long a client may take to send a whole ClientHello or request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Why classification failed.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// The client sent a broken ClientHello or request head.
    #[error(transparent)]
    Unusable(#[from] SniffError),
    /// The client stopped sending in the middle of a ClientHello or request head.
    #[error("the client sent an incomplete {0} and then nothing for {HEAD_TIMEOUT:?}")]
    Stalled(&'static str),
    /// Reading failed.
    #[error("reading the first bytes: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads from `stream` into `buf` until the first bytes say what the connection is. The
/// bytes stay in `buf` for whoever handles the connection next.
pub async fn classify<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<Protocol, ClassifyError> {
    match timeout(FIRST_BYTES_TIMEOUT, read_more(stream, buf)).await {
        Err(_) => return Ok(Protocol::Other),
        Ok(read) => {
            if read? == 0 {
                return Ok(Protocol::Other);
            }
        }
    }
    classify_rest(stream, buf).await
}

/// Goes on classifying what is in `buf` (possibly nothing yet), reading more from `stream`
/// for up to [`HEAD_TIMEOUT`]; for a client known to speak first.
pub async fn classify_rest<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<Protocol, ClassifyError> {
    let deadline = Instant::now() + HEAD_TIMEOUT;
    loop {
        let what = match sniff(buf)? {
            Sniff::Done(protocol) => return Ok(protocol),
            Sniff::NeedMore(what) => what,
        };
        match tokio::time::timeout_at(deadline, read_more(stream, buf)).await {
            Ok(Ok(0)) | Err(_) => return Err(ClassifyError::Stalled(what)),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
        }
    }
}

async fn read_more<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use veil_core::classify::client_hello::fixtures::{hello_message, records};

    use super::*;

    #[tokio::test]
    async fn tls_split_over_writes() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let bytes = records(&hello_message(Some("x.test"), &[b"h2"], 500), 100);
        let writer = tokio::spawn(async move {
            for part in bytes.chunks(33) {
                client.write_all(part).await.unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            client
        });
        let mut buf = Vec::new();
        let protocol = classify(&mut server, &mut buf).await.unwrap();
        assert!(matches!(protocol, Protocol::Tls(ref h) if h.sni.as_deref() == Some("x.test")));
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn http_and_other() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: h.test\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        assert_eq!(
            classify(&mut server, &mut buf).await.unwrap(),
            Protocol::Http(RequestHead {
                host: Some("h.test".into())
            })
        );
        assert!(buf.starts_with(b"GET /"), "the bytes are kept");

        let (mut client, mut server) = tokio::io::duplex(1024);
        client
            .write_all(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")
            .await
            .unwrap();
        assert_eq!(
            classify(&mut server, &mut Vec::new()).await.unwrap(),
            Protocol::Other
        );
    }

    #[tokio::test(start_paused = true)]
    async fn server_first_protocols_are_other() {
        let (_client, mut server) = tokio::io::duplex(1024);
        assert_eq!(
            classify(&mut server, &mut Vec::new()).await.unwrap(),
            Protocol::Other
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_hello_is_an_error() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client
            .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .await
            .unwrap();
        let err = classify(&mut server, &mut Vec::new()).await.unwrap_err();
        assert!(
            matches!(err, ClassifyError::Stalled("TLS ClientHello")),
            "{err}"
        );
    }
}
