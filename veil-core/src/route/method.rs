//! HTTP methods as a secret's scope names them.

use std::fmt;

/// Longest method name accepted.
const MAX_METHOD: usize = 32;

/// A method name: an HTTP token, upper-cased (`get` becomes `GET`). Requests match it exactly.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Method(String);

/// Why a method name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an HTTP method: use 1 to 32 letters, digits or `-`")]
pub struct MethodError(pub String);

impl Method {
    /// Checks and upper-cases `raw`.
    pub fn parse(raw: &str) -> Result<Self, MethodError> {
        let ok = (1..=MAX_METHOD).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(Self(raw.to_ascii_uppercase()))
        } else {
            Err(MethodError(raw.chars().take(64).collect()))
        }
    }

    /// The upper-case name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
