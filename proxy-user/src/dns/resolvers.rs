//! Which resolvers veil asks: `--dns-resolvers`, else the nameservers of the host's
//! `/etc/resolv.conf`.

use std::net::{IpAddr, SocketAddr};

/// The DNS port.
pub const PORT: u16 = 53;

/// The host's resolvers: the `nameserver` lines of `/etc/resolv.conf`, on port 53. Empty
/// when the file cannot be read or names none (then every allowed query fails).
pub fn system_resolvers() -> Vec<SocketAddr> {
    match std::fs::read_to_string("/etc/resolv.conf") {
        Ok(text) => parse_resolv_conf(&text),
        Err(e) => {
            log::warn!("reading /etc/resolv.conf: {e}");
            Vec::new()
        }
    }
}

/// The `nameserver` addresses in resolv.conf's `text`, on port 53; lines that are not one, or
/// whose address does not parse (an IPv6 zone, say), are skipped.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("nameserver"), Some(addr)) => addr.parse::<IpAddr>().ok(),
                _ => None,
            }
        })
        .map(|ip| SocketAddr::new(ip, PORT))
        .collect()
}

/// Parses a resolver as `--dns-resolvers` takes it: `ADDR` (port 53) or `ADDR:PORT`
/// (`[V6ADDR]:PORT`).
pub fn parse_resolver(raw: &str) -> Result<SocketAddr, String> {
    let raw = raw.trim();
    raw.parse::<SocketAddr>()
        .or_else(|_| raw.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, PORT)))
        .map_err(|_| format!("{raw:?} is not an address or address:port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nameserver_lines() {
        let text = "# generated\nsearch example.test\nnameserver 127.0.0.53\n\
                    nameserver  2001:db8::53 # comment\n;nameserver 10.0.0.1\n\
                    nameserver fe80::1%eth0\noptions edns0\nnameserver\n";
        assert_eq!(
            parse_resolv_conf(text),
            [
                "127.0.0.53:53".parse::<SocketAddr>().unwrap(),
                "[2001:db8::53]:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn parses_resolver_flags() {
        assert_eq!(parse_resolver("1.1.1.1"), Ok("1.1.1.1:53".parse().unwrap()));
        assert_eq!(
            parse_resolver("1.1.1.1:5353"),
            Ok("1.1.1.1:5353".parse().unwrap())
        );
        assert_eq!(parse_resolver("::1"), Ok("[::1]:53".parse().unwrap()));
        assert_eq!(
            parse_resolver("[::1]:5353"),
            Ok("[::1]:5353".parse().unwrap())
        );
        assert!(parse_resolver("resolver.test").is_err());
    }
}
