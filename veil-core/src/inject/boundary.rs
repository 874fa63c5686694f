//! The boundary rule: which bytes make up placeholder names, and when a match is complete.

/// Whether `byte` can be part of a placeholder name: `[A-Za-z0-9_.-]`.
pub(super) fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-')
}

/// Whether a match ending at `end` in `haystack` is a complete placeholder: it ends the
/// haystack, or the byte after it cannot continue a name.
pub(super) fn is_complete(haystack: &[u8], end: usize) -> bool {
    haystack.get(end).is_none_or(|&byte| !is_name_byte(byte))
}
