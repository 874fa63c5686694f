//! Strict authority: on an intercepted TLS connection every authority a request names (the
//! absolute-form target's or HTTP/2 `:authority`, and the Host header) must name the host
//! upstream verification proved, and name it once. Anything else is misdirected (`421`), so a
//! workload cannot have upstream route a request carrying a secret by another name.

use std::net::IpAddr;

/// Why a request's authority is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityError {
    /// The request names no host at all.
    #[error("the request names no host")]
    Missing,
    /// More than one Host header.
    #[error("the request has {0} Host headers")]
    Duplicate(usize),
    /// An authority that does not parse.
    #[error("the request names an unusable authority {0:?}")]
    Malformed(String),
    /// A name other than the verified one.
    #[error("this connection is for {verified}, not {named}")]
    Misdirected {
        /// The host upstream verification proved.
        verified: String,
        /// The host the request named.
        named: String,
    },
    /// Two authorities naming different ports.
    #[error("the request names port {0} and port {1}")]
    Ports(u16, u16),
}

/// The authority a request goes upstream with: the verified host, and the port the request
/// named, if it named one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// The host, as verified (IPv6 without brackets).
    pub host: String,
    /// The port the request named.
    pub port: Option<u16>,
}

impl std::fmt::Display for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bracketed = self.host.contains(':');
        match (bracketed, self.port) {
            (false, None) => f.write_str(&self.host),
            (false, Some(port)) => write!(f, "{}:{port}", self.host),
            (true, None) => write!(f, "[{}]", self.host),
            (true, Some(port)) => write!(f, "[{}]:{port}", self.host),
        }
    }
}

/// Checks the authorities a request names, the target's (`target`) and its Host headers'
/// (`hosts`), against `verified` (the SNI, or the dialled address upstream's certificate was
/// verified for). `verified` is `None` on plain HTTP, where the named hosts only have to agree.
pub fn check(
    target: Option<&str>,
    hosts: &[&[u8]],
    verified: Option<&str>,
) -> Result<Authority, AuthorityError> {
    if hosts.len() > 1 {
        return Err(AuthorityError::Duplicate(hosts.len()));
    }
    let header = match hosts.first() {
        Some(bytes) => Some(
            std::str::from_utf8(bytes)
                .map_err(|_| AuthorityError::Malformed(String::from_utf8_lossy(bytes).into()))?,
        ),
        None => None,
    };
    let named: Vec<(String, Option<u16>)> = target
        .into_iter()
        .chain(header)
        .map(split)
        .collect::<Result<_, _>>()?;
    let Some((first_host, _)) = named.first() else {
        return Err(AuthorityError::Missing);
    };
    let expected = match verified {
        Some(verified) => normalize(verified),
        None => first_host.clone(),
    };
    let mut port = None;
    for (host, named_port) in &named {
        if !same_host(host, &expected) {
            return Err(AuthorityError::Misdirected {
                verified: expected,
                named: host.clone(),
            });
        }
        match (port, named_port) {
            (Some(a), Some(b)) if a != *b => return Err(AuthorityError::Ports(a, *b)),
            (None, Some(b)) => port = Some(*b),
            _ => {}
        }
    }
    Ok(Authority {
        host: expected,
        port,
    })
}

/// Splits an authority into its normalised host and its port, dropping userinfo.
fn split(authority: &str) -> Result<(String, Option<u16>), AuthorityError> {
    let malformed = || AuthorityError::Malformed(authority.to_owned());
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, rest)| rest)
        .trim();
    let (host, port) = if let Some(rest) = host_port.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(malformed)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(malformed)?)),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            Some(_) => return Err(malformed()),
            None => (host_port, None),
        }
    };
    let port = match port {
        Some(port) => Some(port.parse::<u16>().map_err(|_| malformed())?),
        None => None,
    };
    let host = normalize(host);
    if host.is_empty() || host.bytes().any(|b| b.is_ascii_whitespace() || b == b'/') {
        return Err(malformed());
    }
    Ok((host, port))
}

/// Lower-cased, without a trailing dot.
fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether two normalised hosts are the same: equal names, or equal addresses however written.
fn same_host(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => a.to_canonical() == b.to_canonical(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request's target authority, its Host headers, and what the check says.
    type Case = (
        Option<&'static str>,
        Vec<&'static [u8]>,
        Result<Authority, AuthorityError>,
    );

    fn ok(host: &str, port: Option<u16>) -> Result<Authority, AuthorityError> {
        Ok(Authority {
            host: host.into(),
            port,
        })
    }

    #[test]
    fn every_named_authority_must_be_the_verified_host() {
        let v = Some("api.test");
        let table: Vec<Case> = vec![
            (None, vec![b"api.test"], ok("api.test", None)),
            (None, vec![b"API.Test.:8443"], ok("api.test", Some(8443))),
            (Some("api.test"), vec![], ok("api.test", None)),
            (
                Some("api.test:443"),
                vec![b"api.test"],
                ok("api.test", Some(443)),
            ),
            (Some("user@api.test"), vec![], ok("api.test", None)),
            (
                Some("api.test"),
                vec![b"evil.test"],
                Err(AuthorityError::Misdirected {
                    verified: "api.test".into(),
                    named: "evil.test".into(),
                }),
            ),
            (
                Some("evil.test"),
                vec![b"api.test"],
                Err(AuthorityError::Misdirected {
                    verified: "api.test".into(),
                    named: "evil.test".into(),
                }),
            ),
            (
                Some("api.test@evil.test"),
                vec![],
                Err(AuthorityError::Misdirected {
                    verified: "api.test".into(),
                    named: "evil.test".into(),
                }),
            ),
            (
                None,
                vec![b"api.test", b"evil.test"],
                Err(AuthorityError::Duplicate(2)),
            ),
            (
                None,
                vec![b"api.test", b"api.test"],
                Err(AuthorityError::Duplicate(2)),
            ),
            (None, vec![], Err(AuthorityError::Missing)),
            (
                Some("api.test:1"),
                vec![b"api.test:2"],
                Err(AuthorityError::Ports(1, 2)),
            ),
            (
                None,
                vec![b"api.test:x"],
                Err(AuthorityError::Malformed("api.test:x".into())),
            ),
            (
                None,
                vec![b"api.test evil.test"],
                Err(AuthorityError::Malformed("api.test evil.test".into())),
            ),
            (
                None,
                vec![b"\xffapi.test"],
                Err(AuthorityError::Malformed("\u{fffd}api.test".into())),
            ),
        ];
        for (target, hosts, expected) in table {
            assert_eq!(check(target, &hosts, v), expected, "{target:?} {hosts:?}");
        }
    }

    #[test]
    fn addresses_compare_as_addresses() {
        assert_eq!(
            check(None, &[b"[::ffff:127.0.0.2]:8443"], Some("127.0.0.2")),
            ok("127.0.0.2", Some(8443))
        );
        assert_eq!(check(Some("[::1]"), &[], Some("::1")), ok("::1", None));
        assert!(check(None, &[b"127.0.0.3"], Some("127.0.0.2")).is_err());
        assert_eq!(
            ok("::1", Some(443)).map(|a| a.to_string()),
            Ok("[::1]:443".to_owned())
        );
        assert_eq!(
            ok("api.test", None).map(|a| a.to_string()),
            Ok("api.test".to_owned())
        );
    }

    #[test]
    fn plain_http_only_needs_agreement() {
        assert_eq!(
            check(Some("a.test"), &[b"a.test:80"], None),
            ok("a.test", Some(80))
        );
        assert!(check(Some("a.test"), &[b"b.test"], None).is_err());
    }
}
