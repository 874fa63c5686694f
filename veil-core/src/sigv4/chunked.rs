//! [`ChunkResigner`]: re-signs an `aws-chunked` body (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`)
//! as it streams through, sans I/O. Pure.
//!
//! The body is a series of `<hex size>;chunk-signature=<64 hex>\r\n<data>\r\n` chunks ending
//! with a zero-size chunk. Each signature signs
//! `AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n<previous signature>\n<sha256("")>\n<sha256(data)>`,
//! the first chained from the request's (seed) signature. A signature precedes its data and
//! depends on it, so one chunk's data is held until it is complete: at most [`MAX_CHUNK_LEN`]
//! bytes (SDKs use 8 KiB to 8 MiB chunks), growing as bytes arrive, never preallocated from the
//! declared size. The output keeps every size field byte for byte and every signature is 64
//! hex digits, so the body's length (and `Content-Length`) does not change.
//! The sandbox's own chunk signatures (made with a placeholder key) are checked for form only.

use ring::digest;

use super::signing::{SigningKey, EMPTY_SHA256};
use super::ChunkError;

/// Largest chunk re-signed, in bytes (16 MiB).
pub const MAX_CHUNK_LEN: u64 = 16 << 20;

/// Longest chunk header line: 16 hex digits, `;chunk-signature=`, 64 hex digits, CRLF.
const MAX_HEADER_LEN: usize = 16 + 17 + 64 + 2;

const SIGNATURE_FIELD: &[u8] = b";chunk-signature=";

/// Where the parser is.
#[derive(Debug)]
enum State {
    /// Reading a header line (bytes so far in `line`).
    Header,
    /// Reading `remaining` more bytes of a chunk's data.
    Data { remaining: u64 },
    /// Expecting the CR (`false`) or the LF (`true`) after a chunk's data.
    Crlf { seen_cr: bool },
    /// The final chunk was emitted.
    Done,
    /// An error was returned; nothing more is accepted.
    Failed,
}

/// Re-signs an `aws-chunked` body chunk by chunk, fed in arbitrary pieces. `Debug` shows the
/// state and how much is held, never the key or the data.
pub struct ChunkResigner {
    key: SigningKey,
    prefix: String,
    previous: String,
    state: State,
    line: Vec<u8>,
    size_text: Vec<u8>,
    data: Vec<u8>,
}

impl ChunkResigner {
    /// A re-signer for a request dated `amz_date` in `scope` whose re-signed header signature
    /// is `seed_signature`.
    pub fn new(key: SigningKey, amz_date: &str, scope: &str, seed_signature: String) -> Self {
        Self {
            key,
            prefix: format!("AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n"),
            previous: seed_signature,
            state: State::Header,
            line: Vec::with_capacity(MAX_HEADER_LEN),
            size_text: Vec::new(),
            data: Vec::new(),
        }
    }

    /// Consumes `input`, appending every completed, re-signed chunk to `out`. After an error
    /// every call fails.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
        while !input.is_empty() {
            match self.step(input, out) {
                Ok(used) => input = &input[used..],
                Err(e) => {
                    self.state = State::Failed;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Whether the final chunk has been re-signed (the body is complete).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Call at the end of the body: an error if the final chunk has not been seen.
    pub fn finish(&self) -> Result<(), ChunkError> {
        if self.is_done() {
            Ok(())
        } else {
            Err(ChunkError::Truncated)
        }
    }

    /// Handles a prefix of `input`; returns how many bytes it used (at least one).
    fn step(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ChunkError> {
        match self.state {
            State::Header => {
                let end = input.iter().position(|&b| b == b'\n');
                let take = end.map_or(input.len(), |i| i + 1);
                if self.line.len() + take > MAX_HEADER_LEN {
                    return Err(ChunkError::MalformedHeader("line too long"));
                }
                self.line.extend_from_slice(&input[..take]);
                if end.is_some() {
                    self.parse_header()?;
                }
                Ok(take)
            }
            State::Data { remaining } => {
                let take = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                self.data.extend_from_slice(&input[..take]);
                let remaining = remaining - take as u64;
                self.state = if remaining == 0 {
                    State::Crlf { seen_cr: false }
                } else {
                    State::Data { remaining }
                };
                Ok(take)
            }
            State::Crlf { seen_cr: false } if input[0] == b'\r' => {
                self.state = State::Crlf { seen_cr: true };
                Ok(1)
            }
            State::Crlf { seen_cr: true } if input[0] == b'\n' => {
                self.emit(out);
                Ok(1)
            }
            State::Crlf { .. } => Err(ChunkError::MissingCrlf),
            State::Done => Err(ChunkError::TrailingBytes),
            State::Failed => Err(ChunkError::AfterError),
        }
    }

    fn parse_header(&mut self) -> Result<(), ChunkError> {
        let bad = ChunkError::MalformedHeader;
        let line = self
            .line
            .strip_suffix(b"\r\n")
            .ok_or(bad("not ended by CRLF"))?;
        let split = line
            .iter()
            .position(|&b| b == b';')
            .ok_or(bad("no chunk-signature"))?;
        let (size, rest) = line.split_at(split);
        let signature = rest
            .strip_prefix(SIGNATURE_FIELD)
            .ok_or(bad("expected ;chunk-signature="))?;
        if signature.len() != 64
            || !signature
                .iter()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(bad("the signature is not 64 lowercase hex digits"));
        }
        if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad("the size is not 1 to 16 hex digits"));
        }
        let len = size
            .iter()
            .fold(0u64, |n, &d| (n << 4) | u64::from(hex_value(d)));
        if len > MAX_CHUNK_LEN {
            return Err(ChunkError::ChunkTooLarge(len));
        }
        self.size_text = size.to_vec();
        self.line.clear();
        self.data.clear();
        self.state = if len == 0 {
            State::Crlf { seen_cr: false }
        } else {
            State::Data { remaining: len }
        };
        Ok(())
    }

    fn emit(&mut self, out: &mut Vec<u8>) {
        let data_hash = hex::encode(digest::digest(&digest::SHA256, &self.data));
        let to_sign = format!(
            "{}{}\n{EMPTY_SHA256}\n{data_hash}",
            self.prefix, self.previous
        );
        self.previous = self.key.sign(to_sign.as_bytes());
        out.reserve(self.size_text.len() + SIGNATURE_FIELD.len() + 64 + self.data.len() + 4);
        out.extend_from_slice(&self.size_text);
        out.extend_from_slice(SIGNATURE_FIELD);
        out.extend_from_slice(self.previous.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"\r\n");
        self.state = if self.data.is_empty() {
            State::Done
        } else {
            State::Header
        };
        self.data.clear();
    }
}

impl std::fmt::Debug for ChunkResigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkResigner")
            .field("state", &self.state)
            .field("held", &(self.line.len() + self.data.len()))
            .finish_non_exhaustive()
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit.wrapping_sub(b'A').wrapping_add(10),
    }
}
