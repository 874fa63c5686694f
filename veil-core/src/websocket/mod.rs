//! Scrubbing the frames a WebSocket server sends a sandbox (RFC 6455), sans I/O: bytes from
//! upstream in, frames for the sandbox out, with every secret in a message's payload replaced
//! by its placeholder, also when it is split across frames or reads.
//!
//! Data frames are re-framed around what the scrubber releases: a frame whose payload is all
//! here at once goes out as one frame (byte for byte when it holds no secret and the message is
//! one frame); a longer one goes out in pieces of a fragmented message. Control frames (close
//! reasons, pings) are scrubbed whole and kept within their 125-byte limit. Extensions are not
//! spoken: veil strips `Sec-WebSocket-Extensions` from the request, so a frame with an RSV bit
//! set (a compressed message) is an error, as is anything else that is not WebSocket.

mod frame;

use std::sync::Arc;

use crate::scrub::{Found, ScrubStream, Scrubber};
use frame::{Header, OP_CONTINUATION};

/// How long a data frame's payload may be for veil to wait for all of it before passing it on
/// in pieces.
pub const WHOLE_FRAME: u64 = 64 * 1024;
/// The longest control frame payload.
const MAX_CONTROL: usize = 125;

/// Why the server's bytes are not a WebSocket stream veil can pass on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// An RSV bit is set: an extension veil did not agree to (compression).
    #[error("a frame uses an extension (RSV bits {0:#x})")]
    Extension(u8),
    /// A control frame that is fragmented or longer than 125 bytes.
    #[error("a malformed control frame")]
    Control,
    /// A continuation without a message, or a new message inside one.
    #[error("frames out of order")]
    Order,
    /// An opcode RFC 6455 does not define.
    #[error("unknown opcode {0:#x}")]
    Opcode(u8),
}

/// The scrubbing state of one direction of one WebSocket connection.
pub struct FrameScrubber {
    scrubber: Arc<Scrubber>,
    /// Bytes of a header, or of a payload waited for whole.
    buf: Vec<u8>,
    /// The frame being read, once its header is complete.
    frame: Option<Header>,
    /// Payload bytes of `frame` still to come.
    remaining: u64,
    /// The message being passed on: its opcode, whether its first frame went out, its stream.
    message: Option<Message>,
}

struct Message {
    opcode: u8,
    started: bool,
    stream: ScrubStream,
}

impl FrameScrubber {
    /// A scrubber for a server's frames.
    pub fn new(scrubber: Arc<Scrubber>) -> Self {
        Self {
            scrubber,
            buf: Vec::new(),
            frame: None,
            remaining: 0,
            message: None,
        }
    }

    /// Takes `input` from the server, appending to `out` the frames ready for the sandbox.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<Found, FrameError> {
        let mut found = Found::default();
        loop {
            let Some(header) = self.frame else {
                if input.is_empty() {
                    return Ok(found);
                }
                self.buf.push(input[0]);
                input = &input[1..];
                if let Some(header) = Header::parse(&self.buf)? {
                    self.buf.clear();
                    self.start(header)?;
                    if self.remaining == 0 {
                        found.merge(self.payload_done(out));
                    }
                }
                continue;
            };
            let whole = header.is_control() || header.len <= WHOLE_FRAME;
            let take = input
                .len()
                .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
            let (chunk, rest) = input.split_at(take);
            input = rest;
            let offset = header.len - self.remaining;
            self.remaining -= take as u64;
            let start = self.buf.len();
            self.buf.extend_from_slice(chunk);
            header.unmask(&mut self.buf[start..], offset);
            if !whole && !self.buf.is_empty() {
                found.merge(self.pass_piece(out));
            }
            if self.remaining == 0 {
                found.merge(self.payload_done(out));
                continue;
            }
            if input.is_empty() {
                return Ok(found);
            }
        }
    }

    /// A header is complete: checks it against the message in progress.
    fn start(&mut self, header: Header) -> Result<(), FrameError> {
        if header.is_control() {
            if !header.fin || header.len > MAX_CONTROL as u64 {
                return Err(FrameError::Control);
            }
        } else if header.opcode == OP_CONTINUATION {
            if self.message.is_none() {
                return Err(FrameError::Order);
            }
        } else {
            if self.message.is_some() {
                return Err(FrameError::Order);
            }
            self.message = Some(Message {
                opcode: header.opcode,
                started: false,
                stream: self.scrubber.stream(),
            });
        }
        self.frame = Some(header);
        self.remaining = header.len;
        Ok(())
    }

    /// Passes on what the scrubber releases of a long frame's payload so far, as a fragment.
    fn pass_piece(&mut self, out: &mut Vec<u8>) -> Found {
        let Some(message) = self.message.as_mut() else {
            return Found::default();
        };
        let mut payload = Vec::new();
        let found = message.stream.feed(&self.buf, &mut payload);
        self.buf.clear();
        if !payload.is_empty() {
            write_data(message, false, &payload, out);
        }
        found
    }

    /// A frame's payload is complete (all in `buf` if it was waited for whole).
    fn payload_done(&mut self, out: &mut Vec<u8>) -> Found {
        let Some(header) = self.frame.take() else {
            return Found::default();
        };
        if header.is_control() {
            let mut payload = std::mem::take(&mut self.buf);
            let found = match self.scrubber.scrub(&payload) {
                Some((new, found)) => {
                    payload = new;
                    payload.truncate(MAX_CONTROL);
                    found
                }
                None => Found::default(),
            };
            frame::write(true, header.opcode, &payload, out);
            return found;
        }
        let Some(message) = self.message.as_mut() else {
            return Found::default();
        };
        let mut payload = Vec::new();
        let mut found = message.stream.feed(&self.buf, &mut payload);
        self.buf.clear();
        if header.fin {
            found.merge(message.stream.finish(&mut payload));
            write_data(message, true, &payload, out);
            self.message = None;
        } else if !payload.is_empty() {
            write_data(message, false, &payload, out);
        }
        found
    }
}

/// Writes a data frame of `message`: its opcode on the first, continuation after.
fn write_data(message: &mut Message, fin: bool, payload: &[u8], out: &mut Vec<u8>) {
    let opcode = if message.started {
        OP_CONTINUATION
    } else {
        message.opcode
    };
    message.started = true;
    frame::write(fin, opcode, payload, out);
}

#[cfg(test)]
mod tests;
