//! The text of veil's TOML configuration file, of which the egress policy is the part read
//! today; reading and writing the file itself is the daemon's business.
//!
//! ```toml
//! [egress]
//! allow = ["api.github.com", "*.githubusercontent.com", "127.0.0.3/32:5432"]
//! passthrough = ["pinned.example.com"]
//! ```

use serde::{Deserialize, Serialize};

use super::{Policy, RuleError};

/// Why a configuration text could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not valid TOML of the expected shape; the parser's message, with line and column.
    #[error("{0}")]
    Syntax(String),
    /// A rule is invalid.
    #[error(transparent)]
    Rule(#[from] RuleError),
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

impl Egress {
    /// The policy these rules make, naming the first bad rule.
    pub fn policy(&self) -> Result<Policy, RuleError> {
        Policy::parse(&self.allow, &self.passthrough)
    }

    /// The configuration file's text holding these rules.
    pub fn to_toml(&self) -> Result<String, ParseError> {
        toml::to_string(&File {
            egress: self.clone(),
        })
        .map_err(|e| ParseError::Syntax(e.to_string()))
    }
}

/// The rules of `policy`, as they would be written.
pub fn rules_of(policy: &Policy) -> Egress {
    Egress {
        allow: policy.allow.iter().map(ToString::to_string).collect(),
        passthrough: policy.passthrough.iter().map(ToString::to_string).collect(),
    }
}

/// Parses a configuration file's text into its egress policy.
pub fn parse(text: &str) -> Result<Policy, ParseError> {
    let file: File = toml::from_str(text).map_err(|e| ParseError::Syntax(e.to_string()))?;
    Ok(file.egress.policy()?)
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
    fn written_rules_read_back() {
        let egress = Egress {
            allow: vec!["api.github.com".into(), "10.0.0.0/8:22".into()],
            passthrough: vec!["*.pinned.test".into()],
        };
        let policy = parse(&egress.to_toml().unwrap()).unwrap();
        assert_eq!(rules_of(&policy), egress);
    }
}
