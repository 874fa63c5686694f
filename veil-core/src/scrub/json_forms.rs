//! JSON string escaping forms: what serde_json and `JSON.stringify` write, and the variants
//! other encoders use.

use super::forms::{push_encoded, Form};

/// One way of escaping a string for JSON. `"`, `\` and control bytes are always escaped.
struct Style {
    /// Whether `/` is written `\/`.
    solidus: bool,
    /// Whether every non-ASCII character is written `\uXXXX` (UTF-16, surrogate pairs beyond
    /// the BMP).
    ascii_only: bool,
    /// Whether `<`, `>`, `&`, U+2028 and U+2029 are written `\uXXXX`, as Go does.
    html_safe: bool,
    /// The hex digits of `\uXXXX`.
    hex: &'static [u8; 16],
}

const LOWER: &[u8; 16] = b"0123456789abcdef";
const UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// The styles matched.
const STYLES: [Style; 6] = [
    // serde_json, `JSON.stringify`.
    Style {
        solidus: false,
        ascii_only: false,
        html_safe: false,
        hex: LOWER,
    },
    // `\/`, as some encoders write it.
    Style {
        solidus: true,
        ascii_only: false,
        html_safe: false,
        hex: LOWER,
    },
    // Python's `json.dumps`.
    Style {
        solidus: false,
        ascii_only: true,
        html_safe: false,
        hex: LOWER,
    },
    // PHP's `json_encode`.
    Style {
        solidus: true,
        ascii_only: true,
        html_safe: false,
        hex: LOWER,
    },
    // ASCII-only with upper-case hex (Java encoders).
    Style {
        solidus: false,
        ascii_only: true,
        html_safe: false,
        hex: UPPER,
    },
    // Go's `encoding/json`.
    Style {
        solidus: false,
        ascii_only: false,
        html_safe: true,
        hex: LOWER,
    },
];

/// Appends the JSON-escaped forms of `plaintext`, standing for `stands_for`.
pub(super) fn push(plaintext: &[u8], stands_for: &[u8], forms: &mut Vec<Form>) {
    for style in &STYLES {
        push_encoded(
            plaintext,
            stands_for,
            1,
            &|text, out| escape_into(style, text, out),
            forms,
        );
    }
}

/// Writes `text` escaped in `style` into `out`; `false` when the style needs characters and
/// `text` is not UTF-8 (byte-wise styles take any bytes).
fn escape_into(style: &Style, text: &[u8], out: &mut Vec<u8>) -> bool {
    if !style.ascii_only && !style.html_safe {
        for &byte in text {
            escape_byte(style, byte, out);
        }
        return true;
    }
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    for ch in text.chars() {
        let escaped = (style.ascii_only && !ch.is_ascii())
            || (style.html_safe && matches!(ch, '<' | '>' | '&' | '\u{2028}' | '\u{2029}'));
        if escaped {
            let mut units = [0; 2];
            for &unit in ch.encode_utf16(&mut units).iter() {
                unicode_escape_into(style.hex, unit, out);
            }
        } else if ch.is_ascii() {
            // The cast is exact: `ch` is ASCII.
            escape_byte(style, ch as u8, out);
        } else {
            out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
        }
    }
    true
}

/// Writes one byte of a string, escaped as `style` wants.
fn escape_byte(style: &Style, byte: u8, out: &mut Vec<u8>) {
    let short = match byte {
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' if style.solidus => b'/',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0..=0x1f => return unicode_escape_into(style.hex, u16::from(byte), out),
        _ => return out.push(byte),
    };
    out.extend_from_slice(&[b'\\', short]);
}

/// Writes `\uXXXX` for one UTF-16 code unit.
fn unicode_escape_into(hex: &[u8; 16], unit: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(b"\\u");
    for shift in [12, 8, 4, 0] {
        out.push(hex[usize::from((unit >> shift) & 0x0f)]);
    }
}
