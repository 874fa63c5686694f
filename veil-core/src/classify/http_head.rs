//! Recognising a plain HTTP/1 request head and finding the host it names. Pure.

/// The largest request head veil waits for.
pub const MAX_HEAD_LEN: usize = 64 * 1024;

/// What veil needs from a plain-HTTP request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The host the request names (Host header, or the authority of an absolute target),
    /// lower-cased, without a port.
    pub host: Option<String>,
}

/// Why the bytes are not an HTTP/1 request head.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// Not HTTP/1.
    #[error("not an HTTP/1 request")]
    NotHttp,
    /// Longer than veil accepts.
    #[error("HTTP request head larger than {MAX_HEAD_LEN} bytes")]
    TooLarge,
}

/// Parses the request head at the start of `buf`; `Ok(None)` means more bytes are needed.
pub fn parse_request_head(buf: &[u8]) -> Result<Option<RequestHead>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_LEN => {
            return Err(HeadError::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::NotHttp),
    }
    let from_header = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::trim);
    let from_target = request.path.and_then(authority_of);
    let host = from_target
        .or(from_header)
        .map(strip_port)
        .filter(|h| !h.is_empty())
        .map(str::to_ascii_lowercase);
    Ok(Some(RequestHead { host }))
}

/// The authority of an absolute-form target (`http://host:port/path`).
fn authority_of(target: &str) -> Option<&str> {
    let rest = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    Some(
        authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host),
    )
}

/// Drops a `:port` suffix, keeping bracketed IPv6 literals intact.
pub fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split_once(']').map_or(authority, |(host, _)| host);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(head: &[u8]) -> Option<String> {
        parse_request_head(head).unwrap().unwrap().host
    }

    #[test]
    fn finds_the_host() {
        assert_eq!(
            host_of(b"GET / HTTP/1.1\r\nHost: Example.test:8080\r\n\r\n").as_deref(),
            Some("example.test")
        );
        assert_eq!(
            host_of(b"GET http://a.test/x HTTP/1.1\r\nHost: b.test\r\n\r\n").as_deref(),
            Some("a.test")
        );
        assert_eq!(
            host_of(b"GET / HTTP/1.1\r\nhost: [::1]:80\r\n\r\n").as_deref(),
            Some("::1")
        );
        assert_eq!(host_of(b"GET / HTTP/1.0\r\n\r\n"), None);
        assert_eq!(
            host_of(b"GET http://u:p@c.test:81/ HTTP/1.1\r\n\r\n").as_deref(),
            Some("c.test")
        );
    }

    #[test]
    fn waits_for_the_whole_head() {
        let head = b"POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\nabc";
        for cut in [1, 4, 10, 30, head.len() - 6] {
            assert_eq!(parse_request_head(&head[..cut]), Ok(None), "cut {cut}");
        }
        assert!(parse_request_head(head).unwrap().is_some());
    }

    #[test]
    fn rejects_other_protocols() {
        assert_eq!(
            parse_request_head(&[0x16, 3, 1, 0, 5]),
            Err(HeadError::NotHttp)
        );
        assert_eq!(
            parse_request_head(b"SSH-2.0-OpenSSH\r\n"),
            Err(HeadError::NotHttp)
        );
        assert_eq!(
            parse_request_head(b"\0\0\0\x08\x04\xd2\x16\x2f"),
            Err(HeadError::NotHttp)
        );
    }

    #[test]
    fn bounds_the_head() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        while head.len() < MAX_HEAD_LEN {
            head.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
        }
        assert_eq!(parse_request_head(&head), Err(HeadError::TooLarge));
    }

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("a.test:443"), "a.test");
        assert_eq!(strip_port("a.test"), "a.test");
        assert_eq!(strip_port("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(strip_port("a.test:x"), "a.test:x");
    }
}
