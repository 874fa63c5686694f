//! Hop-by-hop header handling for a proxy (RFC 9110 section 7.6.1). Pure.

use hyper::{
    header::{self, HeaderMap, HeaderName},
    http::HeaderValue,
};

/// Headers that describe one connection and are never forwarded, plus `Expect`, which veil
/// answers itself. (`Trailer`, which names the trailer fields to come, goes on: hyper's
/// HTTP/1.1 server sends only the trailers it names.)
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::EXPECT,
];

/// Whether the headers ask to switch protocols (`Connection: upgrade` with `Upgrade`).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_tokens(headers).any(|t| t == "upgrade")
}

/// Removes hop-by-hop headers and those the `Connection` header names, except `TE: trailers`.
/// With `keep_upgrade`, `Upgrade` and `Connection: upgrade` survive (for a protocol switch).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    let upgrade = headers.get(header::UPGRADE).cloned();
    let trailers = headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    // `TE: trailers` says the client takes trailers (gRPC needs it upstream): it goes on.
    if trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    if keep_upgrade {
        if let Some(value) = upgrade {
            headers.insert(header::UPGRADE, value);
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
    }
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn strips_standard_and_named_headers() {
        let mut h = headers(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("te", "gzip"),
            ("expect", "100-continue"),
            ("authorization", "Bearer t"),
            ("proxy-authorization", "Basic x"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["authorization", "proxy-authorization"]);
    }

    #[test]
    fn te_trailers_goes_on_and_nothing_else_of_te() {
        let mut h = headers(&[("te", "gzip, Trailers"), ("connection", "TE")]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.get("te").unwrap(), "trailers");
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn keeps_a_requested_upgrade() {
        let mut h = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("host", "a"),
        ]);
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.get("upgrade").unwrap(), "websocket");
        assert_eq!(h.get("connection").unwrap(), "upgrade");
        let plain = headers(&[("upgrade", "websocket")]);
        assert!(
            !is_upgrade(&plain),
            "Upgrade without Connection: upgrade is not a switch"
        );
    }
}
