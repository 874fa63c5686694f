//! Percent-encoding forms: the styles common encoders produce, in upper- and lower-case hex.

use super::forms::{push_encoded, Form};

/// One way of percent-encoding: which bytes stay as they are, and whether space becomes `+`.
struct Style {
    /// Whether the byte is left unencoded.
    keeps: fn(u8) -> bool,
    /// Whether space is written `+` rather than `%20`.
    space_plus: bool,
}

/// The styles matched, each in both hex cases.
const STYLES: [Style; 6] = [
    // RFC 3986 unreserved: Python's `quote(s, safe='')`, and what veil injects in queries.
    Style {
        keeps: is_unreserved,
        space_plus: false,
    },
    // JavaScript's `encodeURIComponent`.
    Style {
        keeps: |byte| is_unreserved(byte) || b"!*'()".contains(&byte),
        space_plus: false,
    },
    // Python's `quote(s)`, whose default `safe` is `/`.
    Style {
        keeps: |byte| is_unreserved(byte) || byte == b'/',
        space_plus: false,
    },
    // Python's `quote_plus(s)`.
    Style {
        keeps: is_unreserved,
        space_plus: true,
    },
    // WHATWG `application/x-www-form-urlencoded` (`URLSearchParams`, HTML forms).
    Style {
        keeps: |byte| byte.is_ascii_alphanumeric() || b"*-._".contains(&byte),
        space_plus: true,
    },
    // Every byte encoded.
    Style {
        keeps: |_| false,
        space_plus: false,
    },
];

/// Appends the percent-encoded forms of `plaintext`, standing for `stands_for`.
pub(super) fn push(plaintext: &[u8], stands_for: &[u8], forms: &mut Vec<Form>) {
    for hex in [b"0123456789ABCDEF", b"0123456789abcdef"] {
        for style in &STYLES {
            push_encoded(
                plaintext,
                stands_for,
                1,
                &|text, out| {
                    encode_into(style, hex, text, out);
                    true
                },
                forms,
            );
        }
    }
}

/// Writes `text` percent-encoded in `style` with the digits `hex` into `out`.
fn encode_into(style: &Style, hex: &[u8; 16], text: &[u8], out: &mut Vec<u8>) {
    for &byte in text {
        if (style.keeps)(byte) {
            out.push(byte);
        } else if byte == b' ' && style.space_plus {
            out.push(b'+');
        } else {
            out.extend_from_slice(&[
                b'%',
                hex[usize::from(byte >> 4)],
                hex[usize::from(byte & 0x0f)],
            ]);
        }
    }
}

/// Whether `byte` is unreserved in a URI (RFC 3986): `A-Za-z0-9-._~`.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}
