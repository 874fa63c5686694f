//! Host patterns, as egress rules and secret scopes write them. Pure.
//!
//! | pattern           | matches                                                    |
//! |-------------------|------------------------------------------------------------|
//! | `api.github.com`  | exactly that host                                          |
//! | `*.github.com`    | one label deeper (`api.github.com`), not the apex, not two |
//! | `*`               | every host                                                 |
//!
//! Matching ignores ASCII case and one trailing dot on either side.

use std::{fmt, str::FromStr};

/// Why a pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Nothing was given.
    #[error("empty host pattern")]
    Empty,
    /// Longer than a DNS name can be.
    #[error("host pattern {0:?} is longer than 253 characters")]
    TooLong(String),
    /// A `*` somewhere other than as the whole first label.
    #[error("host pattern {0:?}: `*` may only be the whole first label (`*.example.com`) or the whole pattern")]
    BadWildcard(String),
    /// An empty, over-long or ill-formed label.
    #[error("host pattern {pattern:?}: bad label {label:?} (use letters, digits, `-` and `_`, 1-63 characters)")]
    BadLabel {
        /// The whole pattern.
        pattern: String,
        /// The offending label.
        label: String,
    },
}

/// A parsed host pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Every host.
    Any,
    /// Exactly this host (lower case, no trailing dot).
    Exact(String),
    /// Exactly one label in front of this suffix (lower case, no trailing dot).
    OneLabelUnder(String),
}

impl HostPattern {
    /// Parses a pattern, normalising case and a trailing dot.
    pub fn parse(raw: &str) -> Result<Self, PatternError> {
        let trimmed = raw.trim();
        if trimmed == "*" {
            return Ok(Self::Any);
        }
        let name = normalize(trimmed);
        if name.is_empty() {
            return Err(PatternError::Empty);
        }
        if name.len() > 253 {
            return Err(PatternError::TooLong(raw.to_owned()));
        }
        let (wildcard, rest) = match name.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, name.as_str()),
        };
        if rest.contains('*') {
            return Err(PatternError::BadWildcard(raw.to_owned()));
        }
        for label in rest.split('.') {
            let ok = (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(PatternError::BadLabel {
                    pattern: raw.to_owned(),
                    label: label.to_owned(),
                });
            }
        }
        Ok(if wildcard {
            Self::OneLabelUnder(rest.to_owned())
        } else {
            Self::Exact(rest.to_owned())
        })
    }

    /// Whether `host` (a name as a client sent it in SNI or Host) matches.
    pub fn matches(&self, host: &str) -> bool {
        let host = normalize(host);
        match self {
            Self::Any => !host.is_empty(),
            Self::Exact(name) => host == *name,
            Self::OneLabelUnder(suffix) => host
                .strip_suffix(suffix.as_str())
                .and_then(|front| front.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        }
    }
}

impl FromStr for HostPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Exact(name) => f.write_str(name),
            Self::OneLabelUnder(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// Lower-cases ASCII and drops one trailing dot.
pub fn normalize(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }

    #[test]
    fn matching_table() {
        let cases = [
            ("api.github.com", "api.github.com", true),
            ("api.github.com", "API.GitHub.com.", true),
            ("api.github.com.", "api.github.com", true),
            ("api.github.com", "github.com", false),
            ("api.github.com", "xapi.github.com", false),
            ("*.github.com", "api.github.com", true),
            ("*.github.com", "RAW.github.com.", true),
            ("*.github.com", "github.com", false),
            ("*.github.com", "a.b.github.com", false),
            ("*.github.com", "evilgithub.com", false),
            ("*.github.com", ".github.com", false),
            ("*", "anything.example", true),
            ("*", "", false),
            ("127.0.0.2", "127.0.0.2", true),
        ];
        for (pattern, host, want) in cases {
            assert_eq!(p(pattern).matches(host), want, "{pattern} vs {host}");
        }
    }

    #[test]
    fn rejects_bad_patterns() {
        assert_eq!(HostPattern::parse(""), Err(PatternError::Empty));
        assert_eq!(HostPattern::parse("."), Err(PatternError::Empty));
        for bad in [
            "a.*.com", "*foo.com", "**.com", "*.", "a..b", "a b.com", "ü.com",
        ] {
            let err = HostPattern::parse(bad);
            assert!(
                matches!(
                    err,
                    Err(PatternError::BadWildcard(_) | PatternError::BadLabel { .. })
                ),
                "{bad}: {err:?}"
            );
        }
        assert!(matches!(
            HostPattern::parse(&"a.".repeat(130)),
            Err(PatternError::TooLong(_))
        ));
        assert!(matches!(
            HostPattern::parse(&"a".repeat(64)),
            Err(PatternError::BadLabel { .. })
        ));
    }

    #[test]
    fn display_round_trips() {
        for s in ["*", "api.github.com", "*.githubusercontent.com"] {
            assert_eq!(p(s).to_string(), s);
            assert_eq!(p(&p(s).to_string()), p(s));
        }
    }
}
