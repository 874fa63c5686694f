//! Request paths, normalised for matching, and the path patterns of a secret's scope.

use std::fmt;

/// Longest path pattern accepted.
const MAX_PATTERN: usize = 1024;

/// A request path split into segments, each with its percent-encoded unreserved characters
/// decoded. Only paths that cannot mean something else to a server are made into one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestPath {
    segments: Vec<String>,
}

/// A path pattern: segments of literal text and `*` (any characters within one segment),
/// matching a path whose first segments they match. Normalised like a request path; a
/// trailing `/` is dropped (`/repos/my-org/` is `/repos/my-org`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathPattern {
    /// The pattern as normalised, for display and storage.
    text: String,
    segments: Vec<String>,
}

/// Why a path pattern was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// It does not start with `/`.
    #[error("path pattern {0:?} must start with `/`")]
    NotAbsolute(String),
    /// It is too long.
    #[error("path pattern {0:?} is longer than 1024 characters")]
    TooLong(String),
    /// It holds something a path pattern cannot: `?`, `#`, whitespace, control bytes, `\`,
    /// an encoded `/` or `\`, a bad percent escape, or a `.` or `..` segment.
    #[error("path pattern {0:?} holds `?`, `#`, `\\`, whitespace, an encoded `/` or `\\`, a bad `%` escape, or a `.` or `..` segment")]
    Malformed(String),
}

impl RequestPath {
    /// Normalises the path of a request target (origin form; anything from `?` on is
    /// ignored). `None` when the path never matches a pattern: not starting with `/`, holding
    /// a `.` or `..` segment (also percent-encoded), an encoded `/` or `\`, a `\`, or a bad
    /// percent escape.
    pub fn parse(target: &str) -> Option<Self> {
        let path = target.split(['?', '#']).next().unwrap_or_default();
        let rest = path.strip_prefix('/')?;
        let segments = rest
            .split('/')
            .map(|segment| {
                let decoded = decode_segment(segment)?;
                (decoded != "." && decoded != "..").then_some(decoded)
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self { segments })
    }

    /// The segments, decoded.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }
}

impl PathPattern {
    /// Checks and normalises `raw`.
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        if raw.len() > MAX_PATTERN {
            return Err(PathError::TooLong(raw.chars().take(64).collect()));
        }
        if !raw.starts_with('/') {
            return Err(PathError::NotAbsolute(raw.to_owned()));
        }
        let malformed = || PathError::Malformed(raw.to_owned());
        if raw
            .bytes()
            .any(|b| matches!(b, b'?' | b'#') || b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(malformed());
        }
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        let path = RequestPath::parse(if trimmed.is_empty() { "/" } else { trimmed })
            .ok_or_else(malformed)?;
        let mut segments = path.segments;
        if trimmed.is_empty() {
            segments.clear();
        }
        let text = format!("/{}", segments.join("/"));
        Ok(Self { text, segments })
    }

    /// Whether `path` starts with segments this pattern matches.
    pub fn matches(&self, path: &RequestPath) -> bool {
        path.segments.len() >= self.segments.len()
            && self
                .segments
                .iter()
                .zip(&path.segments)
                .all(|(pattern, segment)| glob(pattern.as_bytes(), segment.as_bytes()))
    }

    /// The normalised pattern.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One segment with `%XX` of unreserved characters decoded and other escapes kept (with
/// upper-case hex); `None` for a `\`, an encoded `/` or `\`, or a bad escape.
fn decode_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = String::with_capacity(segment.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => return None,
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                if matches!(value, b'/' | b'\\') {
                    return None;
                }
                if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(value));
                } else {
                    out.push('%');
                    out.push_str(&format!("{value:02X}"));
                }
                i += 3;
            }
            _ => {
                // Whole characters: `segment` is a str and only ASCII bytes were consumed.
                let len = utf8_len(bytes[i]);
                out.push_str(segment.get(i..i + len)?);
                i += len;
            }
        }
    }
    Some(out)
}

/// The length of the UTF-8 sequence that starts with `lead`.
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of bytes.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}
