//! Classifying a connection by its first bytes: a TLS ClientHello, an HTTP/1 request head, or
//! something else. Pure: [`sniff`] says what the bytes read so far are, or what it still
//! needs; the daemon does the reading.

pub mod client_hello;
pub mod http_head;

pub use client_hello::{parse_client_hello, ClientHello, HelloError};
pub use http_head::{parse_request_head, strip_port, HeadError, RequestHead};

/// What a connection turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// TLS, with what its ClientHello said.
    Tls(ClientHello),
    /// Plain HTTP/1.
    Http(RequestHead),
    /// Anything else, including protocols where the server speaks first.
    Other,
}

/// What the bytes read so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniff {
    /// The connection is this.
    Done(Protocol),
    /// The bytes begin this (a TLS ClientHello or an HTTP request head) but do not hold all
    /// of it yet.
    NeedMore(&'static str),
}

/// Why the first bytes are unusable.
#[derive(Debug, thiserror::Error)]
pub enum SniffError {
    /// A broken ClientHello.
    #[error(transparent)]
    Hello(#[from] HelloError),
    /// An over-long or broken request head.
    #[error(transparent)]
    Head(#[from] HeadError),
}

/// Says what `buf`, the first bytes a client sent, is.
pub fn sniff(buf: &[u8]) -> Result<Sniff, SniffError> {
    match parse_client_hello(buf) {
        Ok(Some(hello)) => return Ok(Sniff::Done(Protocol::Tls(hello))),
        Ok(None) => return Ok(Sniff::NeedMore("TLS ClientHello")),
        Err(HelloError::NotTls) => {}
        Err(e) => return Err(e.into()),
    }
    match parse_request_head(buf) {
        Ok(Some(head)) => Ok(Sniff::Done(Protocol::Http(head))),
        Ok(None) => Ok(Sniff::NeedMore("HTTP request head")),
        Err(HeadError::NotHttp) => Ok(Sniff::Done(Protocol::Other)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::{
        client_hello::fixtures::{hello_message, records},
        *,
    };

    #[test]
    fn tls_http_and_other() {
        let hello = records(&hello_message(Some("x.test"), &[b"h2"], 500), 100);
        assert!(matches!(
            sniff(&hello).unwrap(),
            Sniff::Done(Protocol::Tls(ref h)) if h.sni.as_deref() == Some("x.test")
        ));
        assert_eq!(
            sniff(&hello[..hello.len() - 1]).unwrap(),
            Sniff::NeedMore("TLS ClientHello")
        );
        assert_eq!(
            sniff(b"GET / HTTP/1.1\r\nHost: h.test\r\n\r\n").unwrap(),
            Sniff::Done(Protocol::Http(RequestHead {
                host: Some("h.test".into())
            }))
        );
        assert_eq!(
            sniff(b"GET / HTTP/1.1\r\nHost: h.te").unwrap(),
            Sniff::NeedMore("HTTP request head")
        );
        assert_eq!(
            sniff(b"\x00\x00\x00\x08\x04\xd2\x16\x2f").unwrap(),
            Sniff::Done(Protocol::Other)
        );
    }
}
