//! A TLS ClientHello parser that pulls out what veil decides on: the server name (SNI) and the
//! offered ALPN protocols. Pure: it takes the bytes a client sent so far and says whether they
//! hold a whole ClientHello, which may be split over several TLS records and several reads.

/// The largest ClientHello veil waits for (handshake message bytes).
pub const MAX_HELLO_LEN: usize = 64 * 1024;

const RECORD_HANDSHAKE: u8 = 0x16;
const HANDSHAKE_CLIENT_HELLO: u8 = 0x01;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;

/// What veil needs from a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHello {
    /// The server name, lower-cased, if the client sent one.
    pub sni: Option<String>,
    /// The ALPN protocol names in the client's order.
    pub alpn: Vec<Vec<u8>>,
}

/// Why the bytes are not a usable ClientHello.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// The first bytes are not a TLS handshake record.
    #[error("not a TLS handshake")]
    NotTls,
    /// The handshake is not a ClientHello, or its structure is broken.
    #[error("malformed ClientHello: {0}")]
    Malformed(&'static str),
    /// The ClientHello is larger than veil accepts.
    #[error("ClientHello larger than {MAX_HELLO_LEN} bytes")]
    TooLarge,
}

/// Parses the ClientHello at the start of `buf`. `Ok(None)` means the bytes so far are a valid
/// beginning and more are needed.
pub fn parse_client_hello(buf: &[u8]) -> Result<Option<ClientHello>, HelloError> {
    let Some(message) = handshake_message(buf)? else {
        return Ok(None);
    };
    parse_body(message).map(Some)
}

/// Reassembles the first handshake message from consecutive handshake records.
fn handshake_message(buf: &[u8]) -> Result<Option<Vec<u8>>, HelloError> {
    let mut message = Vec::new();
    let mut rest = buf;
    loop {
        if rest.is_empty() {
            return Ok(None);
        }
        if rest[0] != RECORD_HANDSHAKE {
            return Err(if message.is_empty() && rest.len() == buf.len() {
                HelloError::NotTls
            } else {
                HelloError::Malformed("handshake interrupted by another record type")
            });
        }
        if rest.len() >= 2 && rest[1] != 0x03 {
            return Err(HelloError::NotTls);
        }
        if rest.len() < 5 {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if len == 0 {
            return Err(HelloError::Malformed("empty handshake record"));
        }
        if rest.len() < 5 + len {
            // Check what we can before waiting for more: the message type and its length.
            let have = &rest[5..];
            message.extend_from_slice(have);
            check_header(&message)?;
            return Ok(None);
        }
        message.extend_from_slice(&rest[5..5 + len]);
        rest = &rest[5 + len..];
        if let Some(total) = check_header(&message)? {
            if message.len() >= total {
                message.truncate(total);
                return Ok(Some(message));
            }
        }
    }
}

/// Validates the handshake header once four bytes are there; returns the full message length.
fn check_header(message: &[u8]) -> Result<Option<usize>, HelloError> {
    if message.is_empty() {
        return Ok(None);
    }
    if message[0] != HANDSHAKE_CLIENT_HELLO {
        return Err(HelloError::Malformed(
            "first handshake message is not a ClientHello",
        ));
    }
    if message.len() < 4 {
        return Ok(None);
    }
    let len =
        usize::from(message[1]) << 16 | usize::from(message[2]) << 8 | usize::from(message[3]);
    if len > MAX_HELLO_LEN {
        return Err(HelloError::TooLarge);
    }
    Ok(Some(4 + len))
}

fn parse_body(message: Vec<u8>) -> Result<ClientHello, HelloError> {
    let mut r = Reader::new(&message[4..]);
    r.skip(2, "legacy_version")?;
    r.skip(32, "random")?;
    let session_len = usize::from(r.u8("session_id length")?);
    r.skip(session_len, "session_id")?;
    let suites_len = usize::from(r.u16("cipher_suites length")?);
    r.skip(suites_len, "cipher_suites")?;
    let compression_len = usize::from(r.u8("compression_methods length")?);
    r.skip(compression_len, "compression_methods")?;
    let mut hello = ClientHello::default();
    if r.is_empty() {
        return Ok(hello);
    }
    let ext_len = usize::from(r.u16("extensions length")?);
    let mut exts = Reader::new(r.take(ext_len, "extensions")?);
    while !exts.is_empty() {
        let ty = exts.u16("extension type")?;
        let len = usize::from(exts.u16("extension length")?);
        let data = exts.take(len, "extension data")?;
        match ty {
            EXT_SERVER_NAME => hello.sni = parse_sni(data)?,
            EXT_ALPN => hello.alpn = parse_alpn(data)?,
            _ => {}
        }
    }
    Ok(hello)
}

fn parse_sni(data: &[u8]) -> Result<Option<String>, HelloError> {
    let mut r = Reader::new(data);
    let list_len = usize::from(r.u16("server_name_list length")?);
    let mut list = Reader::new(r.take(list_len, "server_name_list")?);
    while !list.is_empty() {
        let name_type = list.u8("server name type")?;
        let len = usize::from(list.u16("server name length")?);
        let name = list.take(len, "server name")?;
        if name_type == 0 {
            let valid = !name.is_empty()
                && name.len() <= 253
                && name
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            if !valid {
                return Err(HelloError::Malformed("server name is not a host name"));
            }
            let name = String::from_utf8_lossy(name).to_ascii_lowercase();
            return Ok(Some(name));
        }
    }
    Ok(None)
}

fn parse_alpn(data: &[u8]) -> Result<Vec<Vec<u8>>, HelloError> {
    let mut r = Reader::new(data);
    let list_len = usize::from(r.u16("ALPN list length")?);
    let mut list = Reader::new(r.take(list_len, "ALPN list")?);
    let mut protocols = Vec::new();
    while !list.is_empty() {
        let len = usize::from(list.u8("ALPN protocol length")?);
        if len == 0 {
            return Err(HelloError::Malformed("empty ALPN protocol name"));
        }
        protocols.push(list.take(len, "ALPN protocol")?.to_vec());
    }
    Ok(protocols)
}

/// A bounds-checked cursor; every read names the field for the error.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], HelloError> {
        if self.buf.len() < n {
            return Err(HelloError::Malformed(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn skip(&mut self, n: usize, what: &'static str) -> Result<(), HelloError> {
        self.take(n, what).map(drop)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, HelloError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, HelloError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures {
    //! ClientHellos made to order, for tests here and in the daemon.

    use super::*;

    /// Builds a ClientHello handshake message (no record header).
    pub fn hello_message(sni: Option<&str>, alpn: &[&[u8]], padding: usize) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.push(32);
        body.extend_from_slice(&[9; 32]);
        body.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x02]);
        body.extend_from_slice(&[1, 0]);
        let mut exts = Vec::new();
        if let Some(name) = sni {
            let n = name.as_bytes();
            let mut list = vec![0u8];
            list.extend_from_slice(&(n.len() as u16).to_be_bytes());
            list.extend_from_slice(n);
            push_ext(&mut exts, EXT_SERVER_NAME, &with_u16_len(&list));
        }
        if !alpn.is_empty() {
            let mut list = Vec::new();
            for p in alpn {
                list.push(p.len() as u8);
                list.extend_from_slice(p);
            }
            push_ext(&mut exts, EXT_ALPN, &with_u16_len(&list));
        }
        push_ext(&mut exts, 21, &vec![0; padding]);
        body.extend_from_slice(&with_u16_len(&exts));
        let mut msg = vec![HANDSHAKE_CLIENT_HELLO];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend_from_slice(&body);
        msg
    }

    /// Wraps a handshake message into records of at most `chunk` bytes each.
    pub fn records(message: &[u8], chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for part in message.chunks(chunk) {
            out.extend_from_slice(&[RECORD_HANDSHAKE, 0x03, 0x01]);
            out.extend_from_slice(&(part.len() as u16).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    fn push_ext(exts: &mut Vec<u8>, ty: u16, data: &[u8]) {
        exts.extend_from_slice(&ty.to_be_bytes());
        exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
        exts.extend_from_slice(data);
    }

    fn with_u16_len(data: &[u8]) -> Vec<u8> {
        let mut v = (data.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(data);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::{
        fixtures::{hello_message, records},
        *,
    };

    #[test]
    fn sni_and_alpn() {
        let bytes = records(
            &hello_message(Some("API.Example.test"), &[b"h2", b"http/1.1"], 0),
            16384,
        );
        let hello = parse_client_hello(&bytes).unwrap().unwrap();
        assert_eq!(hello.sni.as_deref(), Some("api.example.test"));
        assert_eq!(hello.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    }

    #[test]
    fn no_sni_no_alpn() {
        let bytes = records(&hello_message(None, &[], 0), 16384);
        assert_eq!(
            parse_client_hello(&bytes).unwrap(),
            Some(ClientHello::default())
        );
    }

    #[test]
    fn split_over_records_and_reads() {
        let msg = hello_message(Some("split.example.test"), &[b"h2"], 3000);
        for chunk in [1, 7, 100, 512, 1400] {
            let bytes = records(&msg, chunk);
            for cut in [0, 1, 3, 4, 5, 6, bytes.len() / 2, bytes.len() - 1] {
                assert_eq!(
                    parse_client_hello(&bytes[..cut]),
                    Ok(None),
                    "chunk {chunk} cut {cut}"
                );
            }
            let hello = parse_client_hello(&bytes).unwrap().unwrap();
            assert_eq!(
                hello.sni.as_deref(),
                Some("split.example.test"),
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn trailing_bytes_after_the_hello_are_ignored() {
        let mut bytes = records(&hello_message(Some("a.test"), &[], 0), 16384);
        bytes.extend_from_slice(&[0x14, 0x03, 0x03, 0, 1, 1]);
        assert!(parse_client_hello(&bytes).unwrap().is_some());
    }

    #[test]
    fn rejects_non_tls_and_garbage() {
        assert_eq!(
            parse_client_hello(b"GET / HTTP/1.1\r\n"),
            Err(HelloError::NotTls)
        );
        assert_eq!(parse_client_hello(&[0x16, 0x01]), Err(HelloError::NotTls));
        assert_eq!(
            parse_client_hello(&[0x16, 0x03, 0x01, 0, 4, 2, 0, 0, 0]),
            Err(HelloError::Malformed(
                "first handshake message is not a ClientHello"
            ))
        );
        assert_eq!(
            parse_client_hello(&[0x16, 0x03, 0x01, 0, 0]),
            Err(HelloError::Malformed("empty handshake record"))
        );
        let mut msg = hello_message(Some("a.test"), &[], 0);
        msg.truncate(msg.len() - 3);
        let len = msg.len() - 4;
        msg[1..4].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
        assert!(matches!(
            parse_client_hello(&records(&msg, 16384)),
            Err(HelloError::Malformed(_))
        ));
    }

    #[test]
    fn rejects_bad_server_names_and_huge_hellos() {
        let bytes = records(&hello_message(Some("bad name\n"), &[], 0), 16384);
        assert!(matches!(
            parse_client_hello(&bytes),
            Err(HelloError::Malformed(_))
        ));
        let huge = [0x16, 0x03, 0x01, 0, 4, 1, 0x02, 0, 0];
        assert_eq!(parse_client_hello(&huge), Err(HelloError::TooLarge));
    }

    #[test]
    fn never_panics_on_prefixes_of_mutated_input() {
        let base = records(&hello_message(Some("fuzz.example.test"), &[b"h2"], 40), 50);
        for i in 0..base.len() {
            for delta in [1u8, 0x7f, 0xff] {
                let mut bytes = base.clone();
                bytes[i] = bytes[i].wrapping_add(delta);
                for cut in [i, i + 1, bytes.len()] {
                    let _ = parse_client_hello(&bytes[..cut.min(bytes.len())]);
                }
            }
        }
    }
}
