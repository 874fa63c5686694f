//! Decide, then do: what happens to a steered connection, computed from what its first bytes
//! are, where it was going and the egress policy. The daemon carries the plan out.

use std::net::{IpAddr, SocketAddr};

use crate::{
    audit::ConnProtocol,
    classify::Protocol,
    policy::{Decision, Policy, Unproven},
};

/// The name veil proves upstream and shows the sandbox: the client's SNI, or the address it
/// dialled when it sent none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerName {
    /// A DNS name from the client's SNI.
    Dns(String),
    /// The address a client without SNI dialled.
    Ip(IpAddr),
}

impl std::fmt::Display for ServerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dns(name) => f.write_str(name),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// What veil does with a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The policy denies it: tell the client so.
    Deny(Denial),
    /// Relay TLS untouched to a passthrough SNI.
    Passthrough,
    /// Verify upstream TLS for this name, offering the client's ALPN protocols, then finish
    /// the client's handshake with a leaf for it and proxy HTTP.
    Intercept {
        /// The name to verify and to mint the leaf for.
        name: ServerName,
        /// The client's ALPN offer, in its order.
        alpn: Vec<Vec<u8>>,
    },
    /// Proxy plain HTTP, checking each request's Host against the policy.
    PlainHttp,
    /// Copy bytes both ways.
    Splice,
}

/// How a denied client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// Not HTTP: the connection is closed.
    Close,
    /// Plain HTTP: a 403 with this body.
    Http(String),
    /// TLS: veil finishes the handshake with a leaf for this name, choosing this ALPN
    /// protocol, and answers 403 with the body.
    Tls {
        /// The leaf's name.
        name: ServerName,
        /// The protocol to select from the client's offer.
        alpn: Option<&'static [u8]>,
        /// The 403's body.
        message: String,
    },
}

/// A connection's plan: what to do, the policy's decision behind it, and what the audit
/// record says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What veil does.
    pub action: Action,
    /// The policy's decision.
    pub decision: Decision,
    /// The connection's kind, for its audit record.
    pub kind: ConnProtocol,
    /// The host it named (SNI or HTTP Host), for its audit record.
    pub host: Option<String>,
    /// A name nothing proves that a host rule allowed: the connection may go ahead only if
    /// the dialled address is one of this name's addresses.
    pub bind: Option<String>,
}

/// Plans a connection to `dst` whose first bytes are `protocol`, under `policy`.
pub fn plan(protocol: &Protocol, dst: SocketAddr, policy: &Policy) -> Plan {
    match protocol {
        Protocol::Tls(hello) => {
            let (decision, name) = match &hello.sni {
                Some(sni) => (policy.decide_host(sni, dst), ServerName::Dns(sni.clone())),
                None => (policy.decide_addr(dst), ServerName::Ip(dst.ip())),
            };
            let passthrough = hello
                .sni
                .as_deref()
                .filter(|sni| decision.allowed && policy.is_passthrough(sni));
            // Relayed untouched, the SNI is never proven: it binds like a plain-HTTP Host.
            let (decision, bind) = match passthrough {
                Some(sni) => unproven(policy, sni, dst),
                None => (decision, None),
            };
            let kind = match passthrough {
                Some(_) => ConnProtocol::TlsPassthrough,
                None => ConnProtocol::Tls,
            };
            let action = if !decision.allowed {
                Action::Deny(Denial::Tls {
                    message: denied_message(&name.to_string(), &decision),
                    alpn: alpn_for_denial(&hello.alpn),
                    name,
                })
            } else if passthrough.is_some() {
                Action::Passthrough
            } else {
                Action::Intercept {
                    name,
                    alpn: hello.alpn.clone(),
                }
            };
            Plan {
                action,
                decision,
                kind,
                host: hello.sni.clone(),
                bind,
            }
        }
        Protocol::Http(head) => {
            let (decision, bind) = match &head.host {
                Some(host) => unproven(policy, host, dst),
                None => (policy.decide_addr(dst), None),
            };
            let action = if decision.allowed {
                Action::PlainHttp
            } else {
                let shown = head.host.clone().unwrap_or_else(|| dst.to_string());
                Action::Deny(Denial::Http(denied_message(&shown, &decision)))
            };
            Plan {
                action,
                decision,
                kind: ConnProtocol::Http,
                host: head.host.clone(),
                bind,
            }
        }
        Protocol::Other => {
            let decision = policy.decide_addr(dst);
            let action = if decision.allowed {
                Action::Splice
            } else {
                Action::Deny(Denial::Close)
            };
            Plan {
                action,
                decision,
                kind: ConnProtocol::Tcp,
                host: None,
                bind: None,
            }
        }
    }
}

/// The decision for a name nothing proves, and the name the dialled address must belong to.
fn unproven(policy: &Policy, host: &str, dst: SocketAddr) -> (Decision, Option<String>) {
    match policy.decide_unproven(host, dst) {
        Unproven::Decided(decision) => (decision, None),
        Unproven::IfResolves(decision) => (decision, Some(host.to_owned())),
    }
}

/// The body of the 403 a denied HTTP or HTTPS client gets.
pub fn denied_message(shown: &str, decision: &Decision) -> String {
    format!("veil: egress to {shown} is denied: {}\n", decision.reason)
}

/// The ALPN protocol a denial answers with: HTTP/1.1 if offered, else HTTP/2 if offered.
pub fn alpn_for_denial(offered: &[Vec<u8>]) -> Option<&'static [u8]> {
    [b"http/1.1".as_slice(), b"h2".as_slice()]
        .into_iter()
        .find(|p| offered.iter().any(|o| o == p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{ClientHello, RequestHead};

    fn policy(allow: &[&str], passthrough: &[&str]) -> Policy {
        let own = |rules: &[&str]| rules.iter().map(|r| r.to_string()).collect::<Vec<_>>();
        Policy::parse(&own(allow), &own(passthrough)).unwrap()
    }

    fn tls(sni: Option<&str>, alpn: &[&[u8]]) -> Protocol {
        Protocol::Tls(ClientHello {
            sni: sni.map(str::to_owned),
            alpn: alpn.iter().map(|p| p.to_vec()).collect(),
        })
    }

    fn http(host: Option<&str>) -> Protocol {
        Protocol::Http(RequestHead {
            host: host.map(str::to_owned),
        })
    }

    const PUBLIC: &str = "93.184.216.34:443";

    #[test]
    fn plans_follow_the_first_bytes_and_the_policy() {
        let p = policy(
            &[
                "api.test",
                "pinned.test",
                "93.184.216.0/24:443",
                "127.0.0.5/32",
            ],
            &["pinned.test"],
        );
        let dst: SocketAddr = PUBLIC.parse().unwrap();
        let local: SocketAddr = "127.0.0.5:80".parse().unwrap();
        let table: Vec<(Protocol, SocketAddr, Action, ConnProtocol)> = vec![
            (
                tls(Some("api.test"), &[b"h2"]),
                dst,
                Action::Intercept {
                    name: ServerName::Dns("api.test".into()),
                    alpn: vec![b"h2".to_vec()],
                },
                ConnProtocol::Tls,
            ),
            (
                tls(None, &[]),
                dst,
                Action::Intercept {
                    name: ServerName::Ip(dst.ip()),
                    alpn: Vec::new(),
                },
                ConnProtocol::Tls,
            ),
            (
                tls(Some("pinned.test"), &[]),
                dst,
                Action::Passthrough,
                ConnProtocol::TlsPassthrough,
            ),
            (
                http(Some("api.test")),
                dst,
                Action::PlainHttp,
                ConnProtocol::Http,
            ),
            (http(None), local, Action::PlainHttp, ConnProtocol::Http),
            (Protocol::Other, dst, Action::Splice, ConnProtocol::Tcp),
            (
                Protocol::Other,
                "93.184.217.1:443".parse().unwrap(),
                Action::Deny(Denial::Close),
                ConnProtocol::Tcp,
            ),
        ];
        for (protocol, dst, action, kind) in table {
            let planned = plan(&protocol, dst, &p);
            assert_eq!(planned.action, action, "{protocol:?} to {dst}");
            assert_eq!(planned.kind, kind, "{protocol:?} to {dst}");
            assert_eq!(
                planned.decision.allowed,
                !matches!(action, Action::Deny(_)),
                "{protocol:?} to {dst}"
            );
        }
    }

    #[test]
    fn names_nothing_proves_are_bound_to_the_dialled_address() {
        let p = policy(
            &["api.test", "pinned.test", "127.0.0.5/32"],
            &["pinned.test"],
        );
        let public: SocketAddr = PUBLIC.parse().unwrap();
        let planned = plan(&http(Some("api.test")), public, &p);
        assert_eq!(planned.action, Action::PlainHttp);
        assert_eq!(planned.bind.as_deref(), Some("api.test"));
        let planned = plan(&tls(Some("pinned.test"), &[]), public, &p);
        assert_eq!(planned.action, Action::Passthrough);
        assert_eq!(planned.bind.as_deref(), Some("pinned.test"));
        let planned = plan(&tls(Some("api.test"), &[]), public, &p);
        assert_eq!(
            planned.bind, None,
            "TLS verification proves an intercepted name"
        );
        // A special address opens to an unproven name only through a CIDR rule.
        for dst in ["127.0.0.1:2375", "169.254.169.254:80"] {
            let dst: SocketAddr = dst.parse().unwrap();
            assert!(matches!(
                plan(&http(Some("api.test")), dst, &p).action,
                Action::Deny(_)
            ));
            assert!(matches!(
                plan(&tls(Some("pinned.test"), &[]), dst, &p).action,
                Action::Deny(_)
            ));
        }
        let named: SocketAddr = "127.0.0.5:80".parse().unwrap();
        let planned = plan(&http(Some("api.test")), named, &p);
        assert_eq!(planned.action, Action::PlainHttp);
        assert_eq!(planned.bind, None, "the address rule decides");
    }

    #[test]
    fn denials_say_why_in_the_clients_protocol() {
        let p = policy(&["api.test"], &[]);
        let dst: SocketAddr = PUBLIC.parse().unwrap();
        let planned = plan(&tls(Some("evil.test"), &[b"h2", b"http/1.1"]), dst, &p);
        let Action::Deny(Denial::Tls {
            name,
            alpn,
            message,
        }) = planned.action
        else {
            panic!("a TLS denial: {:?}", planned.action)
        };
        assert_eq!(name, ServerName::Dns("evil.test".into()));
        assert_eq!(alpn, Some(b"http/1.1".as_slice()));
        assert!(
            message.starts_with("veil: egress to evil.test is denied"),
            "{message}"
        );
        assert_eq!(planned.host.as_deref(), Some("evil.test"));

        let planned = plan(&http(Some("evil.test")), dst, &p);
        assert!(
            matches!(planned.action, Action::Deny(Denial::Http(ref m)) if m.contains("evil.test")),
            "{:?}",
            planned.action
        );
        let planned = plan(&http(None), dst, &p);
        assert!(
            matches!(planned.action, Action::Deny(Denial::Http(ref m)) if m.contains(PUBLIC)),
            "{:?}",
            planned.action
        );
    }

    #[test]
    fn private_addresses_need_a_rule_that_names_them() {
        let p = policy(&["*"], &[]);
        let metadata: SocketAddr = "169.254.169.254:80".parse().unwrap();
        assert!(matches!(
            plan(&http(Some("anything.test")), metadata, &p).action,
            Action::Deny(_)
        ));
        assert!(matches!(
            plan(
                &tls(Some("anything.test"), &[]),
                PUBLIC.parse().unwrap(),
                &p
            )
            .action,
            Action::Intercept { .. }
        ));
    }

    #[test]
    fn denial_alpn_prefers_http1() {
        let both = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        assert_eq!(alpn_for_denial(&both), Some(b"http/1.1".as_slice()));
        assert_eq!(alpn_for_denial(&[b"h2".to_vec()]), Some(b"h2".as_slice()));
        assert_eq!(alpn_for_denial(&[b"imap".to_vec()]), None);
        assert_eq!(alpn_for_denial(&[]), None);
    }
}
