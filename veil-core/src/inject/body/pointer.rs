//! JSON pointers (RFC 6901) naming the string values a secret may be injected into.

use std::fmt;

/// Longest pointer accepted.
const MAX_POINTER: usize = 1024;

/// A JSON pointer such as `/auth/key`: `""` (the whole document) or `/`-separated reference
/// tokens, `~1` standing for `/` and `~0` for `~`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pointer {
    text: String,
    tokens: Vec<String>,
}

/// Why a pointer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    /// Neither empty nor starting with `/`.
    #[error("JSON pointer {0:?} must be empty or start with `/`")]
    NotAbsolute(String),
    /// A `~` not followed by `0` or `1`.
    #[error("JSON pointer {0:?} has a `~` that is not `~0` or `~1`")]
    BadEscape(String),
    /// Too long.
    #[error("JSON pointer {0:?} is longer than 1024 characters")]
    TooLong(String),
}

impl Pointer {
    /// Parses `raw`.
    pub fn parse(raw: &str) -> Result<Self, PointerError> {
        if raw.len() > MAX_POINTER {
            return Err(PointerError::TooLong(raw.chars().take(64).collect()));
        }
        if raw.is_empty() {
            return Ok(Self {
                text: String::new(),
                tokens: Vec::new(),
            });
        }
        let Some(rest) = raw.strip_prefix('/') else {
            return Err(PointerError::NotAbsolute(raw.to_owned()));
        };
        let tokens = rest
            .split('/')
            .map(|token| unescape(token).ok_or_else(|| PointerError::BadEscape(raw.to_owned())))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            text: raw.to_owned(),
            tokens,
        })
    }

    /// The reference tokens, unescaped.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `~1` → `/`, `~0` → `~`; `None` for any other `~`.
fn unescape(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next()? {
                '0' => out.push('~'),
                '1' => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Appends `token` escaped for a pointer (`~` → `~0`, `/` → `~1`).
pub(crate) fn escape_into(token: &str, out: &mut String) {
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}
