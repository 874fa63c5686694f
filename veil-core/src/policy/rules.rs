//! Egress rules as operators write them: host patterns and CIDR blocks with an optional port.
//! Parsing is pure.

use std::{fmt, net::IpAddr, str::FromStr};

use ipnet::IpNet;

use crate::host_pattern::{HostPattern, PatternError};

/// One allow rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// A host pattern, matched against the TLS SNI or the HTTP Host.
    Host(HostPattern),
    /// An address block, for connections judged by address (other TCP, TLS without SNI).
    Cidr(Cidr),
}

/// An address block with an optional port, e.g. `127.0.0.3/32:5432` or `[fd00::/8]:443`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpNet,
    port: Option<u16>,
}

/// Why a rule did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// A bad host pattern.
    #[error(transparent)]
    Host(#[from] PatternError),
    /// A bad CIDR rule.
    #[error("bad CIDR rule {rule:?}: {why}")]
    Cidr {
        /// The rule as written.
        rule: String,
        /// What is wrong.
        why: &'static str,
    },
}

impl Rule {
    /// Parses a rule: anything with a `/` is a CIDR block, everything else a host pattern.
    pub fn parse(raw: &str) -> Result<Self, RuleError> {
        let raw = raw.trim();
        if raw.contains('/') {
            Ok(Self::Cidr(Cidr::parse(raw)?))
        } else {
            Ok(Self::Host(HostPattern::parse(raw)?))
        }
    }
}

impl FromStr for Rule {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Host(p) => p.fmt(f),
            Self::Cidr(c) => c.fmt(f),
        }
    }
}

impl Cidr {
    /// Parses `ADDR/PREFIX`, `ADDR/PREFIX:PORT`, or `[V6ADDR/PREFIX]:PORT`.
    pub fn parse(raw: &str) -> Result<Self, RuleError> {
        let err = |why| RuleError::Cidr {
            rule: raw.to_owned(),
            why,
        };
        let (block, port) = if let Some(rest) = raw.strip_prefix('[') {
            let (block, after) = rest.split_once(']').ok_or_else(|| err("missing `]`"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| err("expected `:PORT` after `]`"))?,
                ),
            };
            (block, port)
        } else {
            let (addr, rest) = raw
                .split_once('/')
                .ok_or_else(|| err("missing `/PREFIX`"))?;
            if addr.contains(':') && rest.contains(':') {
                return Err(err("write IPv6 blocks with a port as [ADDR/PREFIX]:PORT"));
            }
            match rest.split_once(':') {
                Some((prefix, port)) => (&raw[..addr.len() + 1 + prefix.len()], Some(port)),
                None => (raw, None),
            }
        };
        let (addr, prefix) = block
            .split_once('/')
            .ok_or_else(|| err("missing `/PREFIX`"))?;
        let addr: IpAddr = addr.parse().map_err(|_| err("not an IP address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| err("prefix is not a number"))?;
        let net = IpNet::new(addr, prefix).map_err(|_| err("prefix longer than the address"))?;
        if net.network() != addr {
            return Err(err("address has bits set beyond the prefix"));
        }
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| err("bad port"))
            })
            .transpose()?;
        Ok(Self { net, port })
    }

    /// Whether the block (and port, if given) contains `ip:port`.
    pub fn contains(&self, ip: IpAddr, port: u16) -> bool {
        self.port.is_none_or(|p| p == port) && self.net.contains(&ip.to_canonical())
    }

    /// Whether this is an all-addresses block (`0.0.0.0/0`, `::/0`), which, like `*`, does not
    /// open the special ranges.
    pub fn is_everything(&self) -> bool {
        self.net.prefix_len() == 0
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.net, self.port) {
            (IpNet::V6(_), Some(port)) => write!(f, "[{}]:{port}", self.net),
            (_, Some(port)) => write!(f, "{}:{port}", self.net),
            (_, None) => self.net.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches_cidr_rules() {
        let c = Cidr::parse("127.0.0.3/32:5432").unwrap();
        assert!(c.contains("127.0.0.3".parse().unwrap(), 5432));
        assert!(!c.contains("127.0.0.3".parse().unwrap(), 5433));
        assert!(!c.contains("127.0.0.4".parse().unwrap(), 5432));
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.200.1.1".parse().unwrap(), 1));
        assert!(
            c.contains("::ffff:10.1.1.1".parse().unwrap(), 1),
            "v4-mapped counts as v4"
        );
        let c = Cidr::parse("::1/128").unwrap();
        assert!(c.contains("::1".parse().unwrap(), 8080));
        let c = Cidr::parse("[fd00::/8]:443").unwrap();
        assert!(c.contains("fd12::1".parse().unwrap(), 443));
        assert!(!c.contains("fd12::1".parse().unwrap(), 80));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().is_everything());
    }

    #[test]
    fn rejects_bad_cidr_rules() {
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "10.0.0.0/x",
            "nope/8",
            "10.0.0.0/8:0",
            "10.0.0.0/8:http",
            "fd00::/8:443",
            "[fd00::/8",
            "[fd00::/8]443",
        ] {
            assert!(
                matches!(Rule::parse(bad), Err(RuleError::Cidr { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn hosts_and_display() {
        assert_eq!(
            Rule::parse("*.example.test").unwrap().to_string(),
            "*.example.test"
        );
        assert_eq!(
            Rule::parse("10.0.0.0/8:22").unwrap().to_string(),
            "10.0.0.0/8:22"
        );
        assert_eq!(
            Rule::parse("[fd00::/8]:443").unwrap().to_string(),
            "[fd00::/8]:443"
        );
        assert!(matches!(Rule::parse("a..b"), Err(RuleError::Host(_))));
    }
}
