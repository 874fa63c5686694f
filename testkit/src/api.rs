//! The control-API client: one HTTP/1.1 request per connection over veil's Unix socket.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use crate::error::{Context, Error};

/// How long an answer may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `METHOD path` with `body` (JSON) to the control socket at `socket`; returns the
/// status and the body.
pub fn request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String), Error> {
    let what = || format!("{method} {path} on {}", socket.display());
    let mut stream = UnixStream::connect(socket).doing(what)?;
    stream.set_read_timeout(Some(READ_TIMEOUT)).doing(what)?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: veil\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .doing(what)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).doing(what)?;
    parse_response(&response)
}

/// Whether the daemon behind `socket` answers `GET /healthz` with 200.
pub fn healthy(socket: &Path) -> bool {
    request(socket, "GET", "/healthz", None).is_ok_and(|(status, _)| status == 200)
}

/// The status and the body of an HTTP/1.1 response.
fn parse_response(response: &str) -> Result<(u16, String), Error> {
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| Error::Protocol(format!("no response head in {response:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Protocol(format!("no status in {head:?}")))?;
    Ok((status, body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_and_body() {
        let (status, body) =
            parse_response("HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}").expect("parses");
        assert_eq!((status, body.as_str()), (201, "{}"));
        assert!(parse_response("HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response("garbage\r\n\r\n").is_err());
    }
}
