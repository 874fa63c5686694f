//! The fixed parts of a DNS message (RFC 1035 §4.1): the 12-byte header and big-endian
//! integers, read with bounds checks.

use super::DnsError;

/// Length of the header.
pub const HEADER_LEN: usize = 12;

/// The query/response bit.
pub(super) const QR: u16 = 0x8000;
/// Truncated.
pub(super) const TC: u16 = 0x0200;
/// Recursion desired.
pub(super) const RD: u16 = 0x0100;
/// Recursion available.
pub(super) const RA: u16 = 0x0080;
/// Authentic data (DNSSEC).
pub(super) const AD: u16 = 0x0020;
/// Checking disabled (DNSSEC).
pub(super) const CD: u16 = 0x0010;

/// A message's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    pub id: u16,
    pub flags: u16,
    pub qd: u16,
    pub an: u16,
    pub ns: u16,
    pub ar: u16,
}

impl Header {
    /// Reads the header at the start of `msg`.
    pub fn parse(msg: &[u8]) -> Result<Self, DnsError> {
        Ok(Self {
            id: u16_at(msg, 0)?,
            flags: u16_at(msg, 2)?,
            qd: u16_at(msg, 4)?,
            an: u16_at(msg, 6)?,
            ns: u16_at(msg, 8)?,
            ar: u16_at(msg, 10)?,
        })
    }

    /// The operation code.
    pub fn opcode(&self) -> u8 {
        // Four bits, so the cast keeps everything.
        ((self.flags >> 11) & 0x0f) as u8
    }

    /// Appends the header's 12 bytes.
    pub fn write(&self, out: &mut Vec<u8>) {
        for field in [self.id, self.flags, self.qd, self.an, self.ns, self.ar] {
            out.extend_from_slice(&field.to_be_bytes());
        }
    }
}

/// The big-endian `u16` at `pos`.
pub(super) fn u16_at(msg: &[u8], pos: usize) -> Result<u16, DnsError> {
    match msg.get(pos..pos.saturating_add(2)) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(DnsError::Truncated),
    }
}

/// The big-endian `u32` at `pos`.
pub(super) fn u32_at(msg: &[u8], pos: usize) -> Result<u32, DnsError> {
    match msg.get(pos..pos.saturating_add(4)) {
        Some(&[a, b, c, d]) => Ok(u32::from_be_bytes([a, b, c, d])),
        _ => Err(DnsError::Truncated),
    }
}
