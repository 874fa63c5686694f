//! Per-sandbox settings: what a sandbox may do beyond TCP through veil, in the form the CLI,
//! the API and the registry use, and in the kernel's form in the settings map. Pure, except
//! for reading the host's `/etc/resolv.conf`.

use std::{net::IpAddr, str::FromStr};

use serde::{Deserialize, Serialize};
use veil_ebpf::{Settings, MAX_RESOLVERS, SETTING_DENY_IPV6};

use super::SteeringError;

/// Where the host's resolvers are listed.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// What happens to a sandbox's native IPv6 TCP connects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Ipv6Policy {
    /// Steer them to veil's IPv6 listener, like IPv4.
    #[default]
    Steer,
    /// Refuse them in the kernel.
    Deny,
}

/// What one sandbox may do beyond TCP through veil.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSettings {
    /// The DNS resolvers the sandbox may send UDP to, on port 53 only.
    pub dns_resolvers: Vec<IpAddr>,
    /// What happens to native IPv6 TCP.
    pub ipv6: Ipv6Policy,
}

impl SandboxSettings {
    /// The installation's defaults: the host's resolvers, IPv6 steered.
    pub fn host_defaults() -> Self {
        let text = std::fs::read_to_string(RESOLV_CONF).unwrap_or_else(|e| {
            log::warn!("reading {RESOLV_CONF}: {e}; sandboxes get no DNS resolver by default");
            String::new()
        });
        let mut dns_resolvers = nameservers(&text);
        if dns_resolvers.len() > MAX_RESOLVERS {
            log::warn!("{RESOLV_CONF} lists more than {MAX_RESOLVERS} nameservers; using the first {MAX_RESOLVERS}");
            dns_resolvers.truncate(MAX_RESOLVERS);
        }
        Self {
            dns_resolvers,
            ipv6: Ipv6Policy::Steer,
        }
    }

    /// The settings in the kernel's form.
    pub fn to_kernel(&self) -> Result<Settings, SteeringError> {
        if self.dns_resolvers.len() > MAX_RESOLVERS {
            return Err(SteeringError::TooManyResolvers {
                given: self.dns_resolvers.len(),
                max: MAX_RESOLVERS,
            });
        }
        let mut settings = Settings {
            resolver_count: self.dns_resolvers.len() as u32,
            ..Settings::default()
        };
        for (slot, ip) in settings.resolvers.iter_mut().zip(&self.dns_resolvers) {
            *slot = mapped_words(*ip);
        }
        if self.ipv6 == Ipv6Policy::Deny {
            settings.flags |= SETTING_DENY_IPV6;
        }
        Ok(settings)
    }
}

/// Settings a sandbox request may set; what it leaves unset comes from the defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsOverride {
    /// Replaces the default DNS resolvers (an empty list allows none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_resolvers: Option<Vec<IpAddr>>,
    /// Replaces the default IPv6 policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Policy>,
}

impl SettingsOverride {
    /// The settings that result from applying this override to `defaults`.
    pub fn apply(&self, defaults: &SandboxSettings) -> SandboxSettings {
        SandboxSettings {
            dns_resolvers: self
                .dns_resolvers
                .clone()
                .unwrap_or_else(|| defaults.dns_resolvers.clone()),
            ipv6: self.ipv6.unwrap_or(defaults.ipv6),
        }
    }
}

/// A list of resolvers as the command line takes it: comma-separated addresses, or `none`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverList(pub Vec<IpAddr>);

impl FromStr for ResolverList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("none") {
            return Ok(Self(Vec::new()));
        }
        s.split(',')
            .map(|part| {
                part.trim()
                    .parse()
                    .map_err(|_| format!("{part:?} is not an IP address (or use `none`)"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// The `nameserver` addresses in resolv.conf text, in order; a zone (`%eth0`) is dropped.
pub fn nameservers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next()? == "nameserver").then_some(())?;
            let addr = fields.next()?;
            addr.split('%').next()?.parse().ok()
        })
        .collect()
}

/// An address as the kernel compares resolvers: IPv6 words in network byte order, IPv4
/// v4-mapped.
fn mapped_words(ip: IpAddr) -> [u32; 4] {
    let octets = match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    };
    let word =
        |i: usize| u32::from_ne_bytes([octets[i], octets[i + 1], octets[i + 2], octets[i + 3]]);
    [word(0), word(4), word(8), word(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resolv_conf() {
        let text = "# generated\nsearch example.test\nnameserver 127.0.0.53\n\
                    nameserver   fe80::1%eth0\nnameserver not-an-ip\noptions edns0\n\
                    nameserver 2001:db8::53\nnameserver\n";
        assert_eq!(
            nameservers(text),
            vec![
                "127.0.0.53".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap(),
                "2001:db8::53".parse().unwrap(),
            ]
        );
        assert!(nameservers("").is_empty());
    }

    #[test]
    fn resolvers_are_v4_mapped_in_kernel_form() {
        let settings = SandboxSettings {
            dns_resolvers: vec!["127.0.0.53".parse().unwrap(), "::1".parse().unwrap()],
            ipv6: Ipv6Policy::Deny,
        };
        let kernel = settings.to_kernel().unwrap();
        assert_eq!(kernel.resolver_count, 2);
        assert_eq!(
            kernel.resolvers[0],
            veil_ebpf::v4_mapped(u32::from_ne_bytes([127, 0, 0, 53]))
        );
        assert!(veil_ebpf::is_v4_mapped(&kernel.resolvers[0]));
        assert_eq!(
            kernel.resolvers[1],
            [0, 0, 0, u32::from_ne_bytes([0, 0, 0, 1])]
        );
        assert_eq!(kernel.resolvers[2], [0; 4]);
        assert_eq!(kernel.flags, SETTING_DENY_IPV6);
        assert_eq!(SandboxSettings::default().to_kernel().unwrap().flags, 0);
    }

    #[test]
    fn too_many_resolvers_are_refused() {
        let settings = SandboxSettings {
            dns_resolvers: vec!["10.0.0.1".parse().unwrap(); MAX_RESOLVERS + 1],
            ipv6: Ipv6Policy::Steer,
        };
        assert!(matches!(
            settings.to_kernel(),
            Err(SteeringError::TooManyResolvers { given, max }) if given == MAX_RESOLVERS + 1 && max == MAX_RESOLVERS
        ));
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let defaults = SandboxSettings {
            dns_resolvers: vec!["10.0.0.53".parse().unwrap()],
            ipv6: Ipv6Policy::Steer,
        };
        assert_eq!(SettingsOverride::default().apply(&defaults), defaults);
        let none = SettingsOverride {
            dns_resolvers: Some(Vec::new()),
            ipv6: Some(Ipv6Policy::Deny),
        };
        assert_eq!(
            none.apply(&defaults),
            SandboxSettings {
                dns_resolvers: Vec::new(),
                ipv6: Ipv6Policy::Deny
            }
        );
    }

    #[test]
    fn command_line_forms() {
        assert_eq!("none".parse::<ResolverList>(), Ok(ResolverList(Vec::new())));
        let list: ResolverList = "127.0.0.53, ::1".parse().unwrap();
        assert_eq!(
            list.0,
            vec![
                "127.0.0.53".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert!("127.0.0.1,bogus"
            .parse::<ResolverList>()
            .unwrap_err()
            .contains("bogus"));
    }
}
