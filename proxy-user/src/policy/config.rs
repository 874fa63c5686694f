//! veil's TOML configuration file (`veil serve --config FILE`), of which the egress policy is
//! the part read today:
//!
//! ```toml
//! [egress]
//! allow = ["api.github.com", "*.githubusercontent.com", "127.0.0.3/32:5432"]
//! passthrough = ["pinned.example.com"]
//! ```

use std::{fs, path::Path};

use serde::{Deserialize, Serialize};

use super::{Policy, RuleError};

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A rule is invalid.
    #[error("{path}: {source}")]
    Rule {
        /// The file.
        path: String,
        /// The rule error.
        source: RuleError,
    },
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    egress: Egress,
}

/// The `[egress]` section as written: rule strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Egress {
    /// Allow rules.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Passthrough host patterns.
    #[serde(default)]
    pub passthrough: Vec<String>,
}

/// Writes `egress` as the configuration file at `path` (atomically: a temporary file renamed
/// over it), after checking that it parses. Returns the parsed policy.
pub fn store(path: &Path, egress: &Egress) -> Result<Policy, ConfigError> {
    let shown = path.display().to_string();
    let policy =
        Policy::parse(&egress.allow, &egress.passthrough).map_err(|source| ConfigError::Rule {
            path: shown.clone(),
            source,
        })?;
    let text = toml::to_string(&File {
        egress: egress.clone(),
    })
    .map_err(|e| ConfigError::Syntax {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let tmp = path.with_extension("tmp");
    let write_err = |source| ConfigError::Write {
        path: shown.clone(),
        source,
    };
    fs::write(&tmp, text).map_err(write_err)?;
    fs::rename(&tmp, path).map_err(write_err)?;
    Ok(policy)
}

/// The rules of `policy`, as they would be written.
pub fn rules_of(policy: &Policy) -> Egress {
    Egress {
        allow: policy.allow.iter().map(ToString::to_string).collect(),
        passthrough: policy.passthrough.iter().map(ToString::to_string).collect(),
    }
}

/// Reads the egress policy from the configuration file at `path`.
pub fn load(path: &Path) -> Result<Policy, ConfigError> {
    let shown = path.display().to_string();
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text).map_err(|e| match e {
        ParseError::Syntax(message) => ConfigError::Syntax {
            path: shown,
            message,
        },
        ParseError::Rule(source) => ConfigError::Rule {
            path: shown,
            source,
        },
    })
}

enum ParseError {
    Syntax(String),
    Rule(RuleError),
}

fn parse(text: &str) -> Result<Policy, ParseError> {
    let file: File = toml::from_str(text).map_err(|e| ParseError::Syntax(e.to_string()))?;
    Policy::parse(&file.egress.allow, &file.egress.passthrough).map_err(ParseError::Rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_egress_section() {
        let p = parse("[egress]\nallow = [\"api.github.com\", \"127.0.0.3/32:5432\"]\npassthrough = [\"*.pinned.test\"]\n")
            .unwrap_or_else(|_| panic!("valid"));
        assert_eq!(p.allow.len(), 2);
        assert!(p.is_passthrough("a.pinned.test"));
        assert!(parse("").is_ok_and(|p| p.allow.is_empty()));
    }

    #[test]
    fn says_what_is_wrong() {
        let Err(ParseError::Syntax(m)) = parse("[egress]\nallow = \"x\"\n") else {
            panic!("syntax")
        };
        assert!(m.contains("allow"), "{m}");
        let Err(ParseError::Syntax(m)) = parse("[egres]\n") else {
            panic!("unknown section")
        };
        assert!(m.contains("egres"), "{m}");
        let Err(ParseError::Rule(e)) = parse("[egress]\nallow = [\"10.0.0.1/8\"]\n") else {
            panic!("rule")
        };
        assert!(e.to_string().contains("10.0.0.1/8"));
    }

    #[test]
    fn stored_policies_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("veil.toml");
        let egress = Egress {
            allow: vec!["api.github.com".into(), "10.0.0.0/8:22".into()],
            passthrough: vec!["*.pinned.test".into()],
        };
        let stored = store(&path, &egress).unwrap();
        assert_eq!(load(&path).unwrap(), stored);
        assert_eq!(rules_of(&stored), egress);
        let bad = Egress {
            allow: vec!["10.0.0.1/8".into()],
            passthrough: vec![],
        };
        assert!(store(&path, &bad).is_err());
        assert_eq!(load(&path).unwrap(), stored, "a bad policy is not written");
    }

    #[test]
    fn file_errors_name_the_file() {
        let err = load(Path::new("/nonexistent/veil.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/veil.toml"));
    }
}
