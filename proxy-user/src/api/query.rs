//! Parsing the audit query string into a filter. Pure.

use std::time::UNIX_EPOCH;

use crate::audit::Filter;

/// Parses `limit=N&kind=K&sandbox=S&host=H&since=T&until=T&after=SEQ` into a [`Filter`].
/// Times are RFC 3339 (`2026-11-27T10:00:00Z`) or unix milliseconds.
pub fn parse_audit_query(query: &str) -> Result<Filter, String> {
    let mut filter = Filter::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(raw).ok_or_else(|| format!("{key}: bad percent-encoding"))?;
        match key {
            "limit" => {
                filter.limit = Some(
                    value
                        .parse()
                        .map_err(|_| format!("limit: {value:?} is not a whole number"))?,
                )
            }
            "kind" => filter.kind = Some(value.parse().map_err(|e| format!("kind: {e}"))?),
            "sandbox" => filter.sandbox = Some(value),
            "host" => filter.host = Some(value),
            "since" => {
                filter.since_ms = Some(parse_time(&value).map_err(|e| format!("since: {e}"))?)
            }
            "until" => {
                filter.until_ms = Some(parse_time(&value).map_err(|e| format!("until: {e}"))?)
            }
            "after" => {
                filter.after_seq = Some(
                    value
                        .parse()
                        .map_err(|_| format!("after: {value:?} is not a sequence number"))?,
                )
            }
            other => return Err(format!("unknown audit filter {other:?}")),
        }
    }
    Ok(filter)
}

/// Parses an RFC 3339 time or unix milliseconds into unix milliseconds.
pub fn parse_time(value: &str) -> Result<u64, String> {
    if let Ok(ms) = value.parse::<u64>() {
        return Ok(ms);
    }
    let time = humantime::parse_rfc3339_weak(value)
        .map_err(|e| format!("{value:?} is neither RFC 3339 nor unix milliseconds: {e}"))?;
    let since_epoch = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| format!("{value:?} is before 1970"))?;
    u64::try_from(since_epoch.as_millis()).map_err(|_| format!("{value:?} is too far ahead"))
}

/// Encodes a query value (everything but unreserved characters is percent-encoded).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::EventKind;

    #[test]
    fn empty_query_is_no_filter() {
        assert_eq!(parse_audit_query("").unwrap(), Filter::default());
    }

    #[test]
    fn every_field() {
        let f = parse_audit_query(
            "limit=5&kind=connection&sandbox=ci%2D1&host=127.0.0.2&since=1000&until=2026-11-27T00:00:00Z&after=7",
        )
        .unwrap();
        assert_eq!(f.limit, Some(5));
        assert_eq!(f.kind, Some(EventKind::Connection));
        assert_eq!(f.sandbox.as_deref(), Some("ci-1"));
        assert_eq!(f.host.as_deref(), Some("127.0.0.2"));
        assert_eq!(f.since_ms, Some(1000));
        assert_eq!(f.until_ms, Some(1_795_737_600_000));
        assert_eq!(f.after_seq, Some(7));
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        assert!(parse_audit_query("limit=x").unwrap_err().contains("limit"));
        assert!(parse_audit_query("kind=nope").unwrap_err().contains("kind"));
        assert!(parse_audit_query("since=yesterday")
            .unwrap_err()
            .contains("since"));
        assert!(parse_audit_query("color=red")
            .unwrap_err()
            .contains("color"));
        assert!(parse_audit_query("sandbox=%zz")
            .unwrap_err()
            .contains("percent"));
    }

    #[test]
    fn encode_decode_round_trip() {
        for s in ["plain", "a b&c=d", "ü/ß", ""] {
            assert_eq!(percent_decode(&percent_encode(s)).as_deref(), Some(s));
        }
    }
}
