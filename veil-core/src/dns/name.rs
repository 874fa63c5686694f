//! Domain names on the wire (RFC 1035 §3.1, §4.1.4): labels, compression pointers, and the
//! normalised text veil compares and audits.
//!
//! Reading is loop-proof: a pointer must point into the message after the header and strictly
//! before the start of the labels it interrupts, so every jump goes backwards and reading ends;
//! a name longer than 255 bytes on the wire is an error.

use std::fmt;

use super::{wire::HEADER_LEN, DnsError};

/// The longest name on the wire, labels' lengths and the root's zero included.
pub const MAX_NAME_LEN: usize = 255;

/// A domain name, normalised: ASCII lower case, labels joined by `.`, no trailing dot (the
/// root is empty). Bytes other than letters, digits, `-` and `_` are written `\DDD`, so two
/// names are equal exactly when they are the same name ignoring ASCII case, and a name with
/// odd bytes (a `.` inside a label, say) never matches a host pattern it does not belong to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

/// A name read from a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Read {
    /// The name.
    pub name: Name,
    /// Where the name ends in the message (after its first pointer, if it has one).
    pub end: usize,
    /// Whether the name used a pointer.
    pub compressed: bool,
}

impl Name {
    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads the name at `start` in `msg`.
pub(super) fn read(msg: &[u8], start: usize) -> Result<Read, DnsError> {
    let mut text = String::new();
    let mut pos = start;
    let mut chunk_start = start;
    let mut end = None;
    let mut wire_len = 1;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => break,
            0x00 => {
                let len = usize::from(len);
                wire_len += 1 + len;
                if wire_len > MAX_NAME_LEN {
                    return Err(DnsError::NameTooLong);
                }
                let label = msg.get(pos + 1..pos + 1 + len).ok_or(DnsError::Truncated)?;
                if !text.is_empty() {
                    text.push('.');
                }
                push_label(&mut text, label);
                pos += 1 + len;
            }
            0xc0 => {
                let low = *msg.get(pos + 1).ok_or(DnsError::Truncated)?;
                let target = usize::from(len & 0x3f) << 8 | usize::from(low);
                if target < HEADER_LEN || target >= chunk_start {
                    return Err(DnsError::BadPointer);
                }
                end.get_or_insert(pos + 2);
                chunk_start = target;
                pos = target;
            }
            _ => return Err(DnsError::LabelType(len)),
        }
    }
    Ok(Read {
        name: Name(text),
        end: end.unwrap_or(pos + 1),
        compressed: end.is_some(),
    })
}

/// Appends `label` lower-cased, with bytes other than letters, digits, `-` and `_` escaped.
fn push_label(text: &mut String, label: &[u8]) {
    for &byte in label {
        let byte = byte.to_ascii_lowercase();
        if byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_' {
            text.push(char::from(byte));
        } else {
            text.push_str(&format!("\\{byte:03}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message of a zeroed header followed by `body`.
    fn msg(body: &[u8]) -> Vec<u8> {
        let mut m = vec![0; HEADER_LEN];
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn reads_labels_case_insensitively() {
        let m = msg(b"\x03API\x04Test\x00rest");
        let read = read(&m, 12).unwrap();
        assert_eq!(read.name.as_str(), "api.test");
        assert_eq!(read.end, 12 + 10);
        assert!(!read.compressed);
        assert_eq!(super::read(&msg(b"\x00"), 12).unwrap().name.as_str(), "");
    }

    #[test]
    fn follows_backward_pointers() {
        // "api.test" at 12, then "www" + pointer to "test" at 16.
        let m = msg(b"\x03api\x04test\x00\x03www\xc0\x10");
        let read = read(&m, 22).unwrap();
        assert_eq!(read.name.as_str(), "www.test");
        assert_eq!(read.end, 28);
        assert!(read.compressed);
    }

    #[test]
    fn refuses_loops_forward_pointers_and_the_header() {
        for (m, at) in [
            (msg(b"\xc0\x0c"), 12),                   // points at itself
            (msg(b"\x01a\xc0\x0c"), 12),              // back to its own start
            (msg(b"\x01a\x00\xc0\x11"), 15),          // forward
            (msg(b"\xc0\x02"), 12),                   // into the header
            (msg(b"\x01a\xc0\x0e\x01b\xc0\x0c"), 16), // a loop of two
        ] {
            assert!(matches!(read(&m, at), Err(DnsError::BadPointer)), "{m:?}");
        }
    }

    #[test]
    fn bounds_length_and_label_types() {
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.push(0);
        assert!(matches!(read(&msg(&long), 12), Err(DnsError::NameTooLong)));
        assert!(matches!(
            read(&msg(b"\x40"), 12),
            Err(DnsError::LabelType(0x40))
        ));
        assert!(matches!(
            read(&msg(b"\x05ab"), 12),
            Err(DnsError::Truncated)
        ));
        assert!(matches!(read(&msg(b"\x01a"), 12), Err(DnsError::Truncated)));
    }

    #[test]
    fn escapes_odd_bytes() {
        let m = msg(b"\x05a.b*c\x04test\x00");
        assert_eq!(read(&m, 12).unwrap().name.as_str(), "a\\046b\\042c.test");
    }
}
