//! WebSocket frame headers (RFC 6455 section 5.2): parsing what a server sent, writing what
//! veil passes on (never masked: frames to a client are not).

use super::FrameError;

/// Continuation of a fragmented message.
pub const OP_CONTINUATION: u8 = 0x0;

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Whether this is a message's last frame.
    pub fin: bool,
    /// The opcode.
    pub opcode: u8,
    /// The masking key, if the sender masked the payload.
    pub mask: Option<[u8; 4]>,
    /// The payload's length.
    pub len: u64,
}

impl Header {
    /// Parses the header at the start of `buf`: `None` while it is incomplete.
    pub fn parse(buf: &[u8]) -> Result<Option<Self>, FrameError> {
        let [first, second, ..] = buf else {
            return Ok(None);
        };
        let rsv = first & 0x70;
        if rsv != 0 {
            return Err(FrameError::Extension(rsv >> 4));
        }
        let opcode = first & 0x0f;
        if !matches!(opcode, 0x0..=0x2 | 0x8..=0xa) {
            return Err(FrameError::Opcode(opcode));
        }
        let masked = second & 0x80 != 0;
        let (len, mut at) = match second & 0x7f {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut be = [0; 8];
                    be.copy_from_slice(b);
                    (u64::from_be_bytes(be), 10)
                }
                None => return Ok(None),
            },
            short => (u64::from(short), 2),
        };
        let mask = if masked {
            let Some(key) = buf.get(at..at + 4) else {
                return Ok(None);
            };
            at += 4;
            Some([key[0], key[1], key[2], key[3]])
        } else {
            None
        };
        if buf.len() < at {
            return Ok(None);
        }
        Ok(Some(Self {
            fin: first & 0x80 != 0,
            opcode,
            mask,
            len,
        }))
    }

    /// Whether this is a control frame (close, ping, pong).
    pub fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }

    /// Unmasks `payload`, which starts `offset` bytes into the frame's payload.
    pub fn unmask(&self, payload: &mut [u8], offset: u64) {
        if let Some(key) = self.mask {
            for (i, byte) in payload.iter_mut().enumerate() {
                // Invariant: `% 4` is below 4, so the index is in the key.
                *byte ^= key[((offset + i as u64) % 4) as usize];
            }
        }
    }
}

/// Appends an unmasked frame carrying `payload` to `out`.
pub fn write(fin: bool, opcode: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(if fin { 0x80 } else { 0 } | opcode);
    match payload.len() {
        len @ 0..=125 => out.push(len as u8),
        len @ 126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}
