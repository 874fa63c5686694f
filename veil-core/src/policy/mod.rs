//! Egress policy: which destinations a sandbox may reach. Default deny. Pure decisions over
//! parsed rules; [`config`] loads them from veil's TOML configuration.
//!
//! - Host rules (`api.github.com`, `*.githubusercontent.com`, `*`) match the TLS SNI, or the
//!   Host of a plain-HTTP request, case-insensitively.
//! - CIDR rules (`127.0.0.3/32:5432`) match connections judged by address: TCP that is
//!   neither TLS nor HTTP, and TLS without SNI.
//! - Loopback, private, link-local, CGNAT and metadata addresses are denied unless a rule
//!   names them explicitly: a named host (not `*`) or a CIDR block (not `/0`) that contains
//!   the address. `*` and `0.0.0.0/0` never open them.
//! - Passthrough patterns relay TLS to matching SNIs without interception (for clients that
//!   pin certificates); the destination must still be allowed.

pub mod config;
pub mod rules;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

use crate::host_pattern::HostPattern;

pub use rules::{Cidr, Rule, RuleError};

/// A parsed egress policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Allow rules, in the operator's order.
    pub allow: Vec<Rule>,
    /// SNIs whose TLS is relayed without interception.
    pub passthrough: Vec<HostPattern>,
}

/// What a name nothing proves (a plain-HTTP Host, a passthrough SNI) may reach: veil never
/// takes such a name's word for where the workload dialled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unproven {
    /// Decided: an address rule allows the dialled address, or nothing allows the connection.
    Decided(Decision),
    /// A host rule allows the name, and the dialled address is in no special range: the
    /// connection may go ahead only if the address is one of the name's (veil resolves it).
    IfResolves(Decision),
}

/// A decision and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the connection may go ahead.
    pub allowed: bool,
    /// The rule that allowed it, as written.
    pub rule: Option<String>,
    /// A short reason for people.
    pub reason: String,
}

impl Policy {
    /// Builds a policy from rule strings, naming the first bad one.
    pub fn parse(allow: &[String], passthrough: &[String]) -> Result<Self, RuleError> {
        Ok(Self {
            allow: allow
                .iter()
                .map(|r| Rule::parse(r))
                .collect::<Result<_, _>>()?,
            passthrough: passthrough
                .iter()
                .map(|p| HostPattern::parse(p).map_err(RuleError::from))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Decides a connection to `dst` for `host` (TLS SNI or HTTP Host).
    pub fn decide_host(&self, host: &str, dst: SocketAddr) -> Decision {
        let special = special_range(dst.ip());
        for rule in &self.allow {
            if let Rule::Host(pattern) = rule {
                if !pattern.matches(host) {
                    continue;
                }
                if special.is_some() && *pattern == HostPattern::Any {
                    continue;
                }
                return allowed(rule, format!("{host} is allowed"));
            }
        }
        // A host given as an address literal may be allowed by an address rule.
        if let Ok(ip) = host.parse::<IpAddr>() {
            if ip.to_canonical() == dst.ip().to_canonical() {
                return self.decide_addr(dst);
            }
        }
        match special {
            Some(range) if self.matches_any_host(host) => denied(format!(
                "{host} resolves to {} in {range}, which `*` does not open: allow {host} by name",
                dst.ip()
            )),
            _ => denied(format!("no egress rule allows {host}")),
        }
    }

    /// Decides whether a sandbox may resolve `name` (veil's DNS proxy asks): allowed exactly
    /// when some connection for `name` could be, that is when a host rule matches it
    /// ([`Policy::decide_host`] for `name` at an address in no special range). Which
    /// addresses the workload then reaches is decided when it connects. CIDR rules allow no
    /// names: a name reached only through one needs a host rule to be resolved through veil.
    pub fn decide_name(&self, name: &str) -> Decision {
        self.allow
            .iter()
            .find(|rule| matches!(rule, Rule::Host(p) if p.matches(name)))
            .map_or_else(
                || denied(format!("no egress rule allows {name}")),
                |rule| allowed(rule, format!("{name} is allowed")),
            )
    }

    /// Decides a connection to `dst` for `host`, a name nothing proves: an address rule that
    /// allows `dst` decides it; otherwise a host rule for `host` allows it only outside the
    /// special ranges (which only CIDR rules open to unproven names) and only if `host`
    /// resolves to `dst`.
    pub fn decide_unproven(&self, host: &str, dst: SocketAddr) -> Unproven {
        let by_addr = self.decide_addr(dst);
        if by_addr.allowed {
            return Unproven::Decided(by_addr);
        }
        if let Some(range) = special_range(dst.ip()) {
            return Unproven::Decided(denied(format!(
                "{host} is dialled at {} in {range}, which only a CIDR rule opens to a name veil \
                 cannot prove",
                dst.ip()
            )));
        }
        let by_name = self.decide_host(host, dst);
        if by_name.allowed {
            Unproven::IfResolves(by_name)
        } else {
            Unproven::Decided(by_name)
        }
    }

    /// Decides a connection judged by address alone.
    pub fn decide_addr(&self, dst: SocketAddr) -> Decision {
        let special = special_range(dst.ip());
        for rule in &self.allow {
            if let Rule::Cidr(cidr) = rule {
                if cidr.contains(dst.ip(), dst.port())
                    && !(special.is_some() && cidr.is_everything())
                {
                    return allowed(rule, format!("{dst} is allowed"));
                }
            }
        }
        match special {
            Some(range) => denied(format!("{dst} is in {range}: allow it with a CIDR rule")),
            None => denied(format!("no egress rule allows {dst}")),
        }
    }

    /// Whether TLS to `sni` is relayed without interception.
    pub fn is_passthrough(&self, sni: &str) -> bool {
        self.passthrough.iter().any(|p| p.matches(sni))
    }

    fn matches_any_host(&self, host: &str) -> bool {
        self.allow
            .iter()
            .any(|r| matches!(r, Rule::Host(p) if p.matches(host)))
    }
}

/// The special range `ip` falls in, if any.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    let ip = ip.to_canonical();
    SPECIAL_RANGES
        .iter()
        .find(|(range, _)| range.contains(&ip))
        .map(|&(_, name)| name)
}

/// The ranges that only a named host or a CIDR rule other than `/0` opens, as people see them.
const SPECIAL_RANGES: [(IpNet, &str); 11] = [
    (v4([127, 0, 0, 0], 8), "loopback 127.0.0.0/8"),
    (v4([10, 0, 0, 0], 8), "private 10.0.0.0/8"),
    (v4([172, 16, 0, 0], 12), "private 172.16.0.0/12"),
    (v4([192, 168, 0, 0], 16), "private 192.168.0.0/16"),
    (
        v4([169, 254, 0, 0], 16),
        "link-local and metadata 169.254.0.0/16",
    ),
    (v4([100, 64, 0, 0], 10), "CGNAT 100.64.0.0/10"),
    (v4([0, 0, 0, 0], 8), "this-network 0.0.0.0/8"),
    (v6(Ipv6Addr::LOCALHOST, 128), "loopback ::1"),
    (v6(Ipv6Addr::UNSPECIFIED, 128), "unspecified ::"),
    (
        v6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
        "unique-local fc00::/7",
    ),
    (
        v6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
        "link-local fe80::/10",
    ),
];

/// The IPv4 block `octets/prefix` (a constant, so a bad prefix fails the build).
const fn v4(octets: [u8; 4], prefix: u8) -> IpNet {
    IpNet::new_assert(
        IpAddr::V4(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3])),
        prefix,
    )
}

/// The IPv6 block `addr/prefix` (a constant, so a bad prefix fails the build).
const fn v6(addr: Ipv6Addr, prefix: u8) -> IpNet {
    IpNet::new_assert(IpAddr::V6(addr), prefix)
}

fn allowed(rule: &Rule, reason: String) -> Decision {
    Decision {
        allowed: true,
        rule: Some(rule.to_string()),
        reason,
    }
}

fn denied(reason: String) -> Decision {
    Decision {
        allowed: false,
        rule: None,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unproven_names_open_no_special_range_and_must_resolve() {
        let p = policy(&["api.test", "*", "127.0.0.7/32"]);
        let public: SocketAddr = "93.184.216.34:80".parse().unwrap();
        assert!(matches!(
            p.decide_unproven("api.test", public),
            Unproven::IfResolves(ref d) if d.allowed && d.rule.as_deref() == Some("api.test")
        ));
        for special in [
            "127.0.0.1:2375",
            "169.254.169.254:80",
            "10.0.0.1:80",
            "[::1]:80",
        ] {
            let dst: SocketAddr = special.parse().unwrap();
            assert!(
                matches!(p.decide_unproven("api.test", dst), Unproven::Decided(ref d) if !d.allowed),
                "{special}"
            );
        }
        let named: SocketAddr = "127.0.0.7:80".parse().unwrap();
        assert!(matches!(
            p.decide_unproven("anything.test", named),
            Unproven::Decided(ref d) if d.allowed && d.rule.as_deref() == Some("127.0.0.7/32")
        ));
        let strict = policy(&["api.test"]);
        assert!(matches!(
            strict.decide_unproven("evil.test", public),
            Unproven::Decided(ref d) if !d.allowed
        ));
    }

    fn policy(allow: &[&str]) -> Policy {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        Policy::parse(&allow, &[]).unwrap()
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn default_deny() {
        let p = Policy::default();
        assert!(
            !p.decide_host("api.github.com", addr("140.82.112.6:443"))
                .allowed
        );
        assert!(!p.decide_addr(addr("140.82.112.6:22")).allowed);
    }

    #[test]
    fn host_rules() {
        let p = policy(&["api.github.com", "*.githubusercontent.com"]);
        let public = addr("185.199.108.133:443");
        let d = p.decide_host("API.GitHub.com", public);
        assert!(d.allowed);
        assert_eq!(d.rule.as_deref(), Some("api.github.com"));
        assert!(p.decide_host("raw.githubusercontent.com", public).allowed);
        assert!(!p.decide_host("githubusercontent.com", public).allowed);
        assert!(!p.decide_host("a.b.githubusercontent.com", public).allowed);
        assert!(!p.decide_host("github.com", public).allowed);
    }

    #[test]
    fn star_does_not_open_special_ranges() {
        let p = policy(&["*", "0.0.0.0/0"]);
        assert!(
            p.decide_host("example.com", addr("93.184.216.34:443"))
                .allowed
        );
        assert!(p.decide_addr(addr("93.184.216.34:22")).allowed);
        for special in [
            "127.0.0.2:443",
            "10.1.2.3:443",
            "172.16.0.1:443",
            "192.168.1.1:443",
            "169.254.169.254:80",
            "100.64.0.1:443",
            "[::1]:443",
            "[fd00::1]:443",
            "[fe80::1]:443",
            "[::ffff:10.0.0.1]:443",
        ] {
            let d = p.decide_host("x.test", addr(special));
            assert!(!d.allowed, "{special}");
            assert!(d.reason.contains("by name"), "{}", d.reason);
            assert!(!p.decide_addr(addr(special)).allowed, "{special}");
        }
    }

    #[test]
    fn special_ranges_open_only_when_named() {
        let p = policy(&["api.example.test", "127.0.0.3/32:5432"]);
        assert!(
            p.decide_host("api.example.test", addr("127.0.0.2:8443"))
                .allowed
        );
        assert!(p.decide_addr(addr("127.0.0.3:5432")).allowed);
        assert!(!p.decide_addr(addr("127.0.0.3:5433")).allowed);
        assert!(!p.decide_addr(addr("127.0.0.4:5432")).allowed);
        assert!(!p.decide_host("other.test", addr("127.0.0.2:8443")).allowed);
    }

    #[test]
    fn address_literal_hosts_use_cidr_rules() {
        let p = policy(&["127.0.0.2/32"]);
        assert!(p.decide_host("127.0.0.2", addr("127.0.0.2:8443")).allowed);
        assert!(!p.decide_host("127.0.0.2", addr("127.0.0.9:8443")).allowed);
    }

    #[test]
    fn names_resolve_where_a_host_rule_would_allow_a_connection() {
        let p = policy(&["api.test", "*.cdn.test", "10.0.0.0/8"]);
        let public = addr("93.184.216.34:443");
        for name in [
            "api.test",
            "API.test.",
            "x.cdn.test",
            "cdn.test",
            "evil.test",
            "10.0.0.1",
            "",
        ] {
            assert_eq!(
                p.decide_name(name).allowed,
                p.decide_host(name, public).allowed,
                "{name}"
            );
        }
        assert_eq!(
            p.decide_name("x.cdn.test").rule.as_deref(),
            Some("*.cdn.test")
        );
        assert!(
            !p.decide_name("10.0.0.1").allowed,
            "CIDR rules allow no names"
        );
        assert!(policy(&["*"]).decide_name("anything.test").allowed);
        assert!(!Policy::default().decide_name("api.test").allowed);
    }

    #[test]
    fn passthrough() {
        let p = Policy::parse(&["*".into()], &["*.pinned.test".into()]).unwrap();
        assert!(p.is_passthrough("app.pinned.test"));
        assert!(!p.is_passthrough("pinned.test"));
    }
}
