//! Parsing the audit query string into a filter. Pure.

use std::{borrow::Cow, time::Duration};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use time::{format_description::BorrowedFormatItem, macros::format_description, OffsetDateTime};

use crate::audit::Filter;

/// A parsed `GET /v1/audit` query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditQuery {
    /// Which records.
    pub filter: Filter,
    /// Whether to keep the response open and stream new matching records as they are
    /// committed.
    pub follow: bool,
}

/// Parses `limit=N&kind=K&sandbox=S&host=H&secret=S&since=T&until=T&after=SEQ&follow=1` into
/// an [`AuditQuery`]. Times are taken at `now_ms` (unix milliseconds) when relative; see
/// [`parse_time`].
pub fn parse_audit_query(query: &str, now_ms: u64) -> Result<AuditQuery, String> {
    let mut parsed = AuditQuery::default();
    let filter = &mut parsed.filter;
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
            "secret" => filter.secret = Some(value),
            "since" => {
                filter.since_ms =
                    Some(parse_time(&value, now_ms).map_err(|e| format!("since: {e}"))?)
            }
            "until" => {
                filter.until_ms =
                    Some(parse_time(&value, now_ms).map_err(|e| format!("until: {e}"))?)
            }
            "after" => {
                filter.after_seq = Some(
                    value
                        .parse()
                        .map_err(|_| format!("after: {value:?} is not a sequence number"))?,
                )
            }
            "follow" => {
                parsed.follow = match value.as_str() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(format!("follow: {value:?} is neither 1 nor 0")),
                }
            }
            other => return Err(format!("unknown audit filter {other:?}")),
        }
    }
    Ok(parsed)
}

/// Parses a point in time into unix milliseconds: RFC 3339 (`2026-11-27T10:00:00Z`; without
/// an offset, UTC), a duration meaning that long before `now_ms` (`90s`, `10m`, `2h`, `7d`,
/// `1h 30m`), or unix milliseconds (digits only).
pub fn parse_time(value: &str, now_ms: u64) -> Result<u64, String> {
    if let Ok(ms) = value.parse::<u64>() {
        return Ok(ms);
    }
    if let Ok(ago) = humantime::parse_duration(value) {
        return Ok(now_ms.saturating_sub(millis(ago)));
    }
    let not_a_time = || {
        format!(
            "{value:?} is not a time: give RFC 3339 (2026-11-27T10:00:00Z), a duration ago \
             (10m, 2h, 7d) or unix milliseconds"
        )
    };
    let time = parse_rfc3339(value).ok_or_else(not_a_time)?;
    let ms = time.unix_timestamp_nanos().div_euclid(1_000_000);
    u64::try_from(ms).map_err(|_| format!("{value:?} is before 1970"))
}

/// RFC 3339 as people type it: `T`, `t` or a space between date and time, optional fractional
/// seconds, and `Z`, an offset (`+01:00`, at most 23 hours) or nothing (UTC).
const RFC_3339: &[BorrowedFormatItem<'_>] = format_description!(
    version = 2,
    "[year]-[month]-[day][first [T][t][ ]][hour]:[minute]:[second][optional [.[subsecond]]]\
     [first [Z][z][[offset_hour sign:mandatory]:[offset_minute]][]]"
);

/// Parses [`RFC_3339`].
fn parse_rfc3339(value: &str) -> Option<OffsetDateTime> {
    let mut parsed = time::parsing::Parsed::new();
    let rest = parsed.parse_items(value.as_bytes(), RFC_3339).ok()?;
    if !rest.is_empty() {
        return None;
    }
    match parsed.offset_hour() {
        None => parsed.set_offset_hour(0)?,
        Some(hours) if hours.unsigned_abs() > 23 => return None,
        Some(_) => {}
    }
    OffsetDateTime::try_from(parsed).ok()
}

/// A query string of the pairs whose value is set, values percent-encoded.
pub fn encode_query(pairs: &[(&str, Option<&str>)]) -> String {
    pairs
        .iter()
        .filter_map(|(key, value)| value.map(|v| format!("{key}={}", percent_encode(v))))
        .collect::<Vec<_>>()
        .join("&")
}

/// `duration` in whole milliseconds, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// What a query value or path segment keeps as it is: the unreserved characters of RFC 3986.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Encodes a query value or path segment (everything but unreserved characters is
/// percent-encoded).
pub fn percent_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, UNRESERVED).to_string()
}

/// Decodes a query value (`+` is a space), or `None` if a `%` is not followed by two hex
/// digits or the bytes are not UTF-8.
fn percent_decode(raw: &str) -> Option<String> {
    let well_formed = raw.split('%').skip(1).all(|escape| {
        escape
            .as_bytes()
            .get(..2)
            .is_some_and(|digits| digits.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::EventKind;

    /// 2026-11-27T00:00:00Z.
    const NOW: u64 = 1_795_737_600_000;

    #[test]
    fn empty_query_is_no_filter() {
        assert_eq!(parse_audit_query("", NOW).unwrap(), AuditQuery::default());
    }

    #[test]
    fn every_field() {
        let q = parse_audit_query(
            "limit=5&kind=connection&sandbox=ci%2D1&host=127.0.0.2&secret=gh%20main&since=1000\
             &until=2026-11-27T00:00:00Z&after=7&follow=1",
            NOW,
        )
        .unwrap();
        let f = &q.filter;
        assert_eq!(f.limit, Some(5));
        assert_eq!(f.kind, Some(EventKind::Connection));
        assert_eq!(f.sandbox.as_deref(), Some("ci-1"));
        assert_eq!(f.host.as_deref(), Some("127.0.0.2"));
        assert_eq!(f.secret.as_deref(), Some("gh main"));
        assert_eq!(f.since_ms, Some(1000));
        assert_eq!(f.until_ms, Some(NOW));
        assert_eq!(f.after_seq, Some(7));
        assert_eq!(f.through_seq, None);
        assert!(q.follow);
        assert!(!parse_audit_query("follow=0", NOW).unwrap().follow);
        assert!(parse_audit_query("follow=true", NOW).unwrap().follow);
    }

    #[test]
    fn times_are_rfc3339_durations_ago_or_milliseconds() {
        assert_eq!(parse_time("10m", NOW), Ok(NOW - 600_000));
        assert_eq!(parse_time("1h 30m", NOW), Ok(NOW - 5_400_000));
        assert_eq!(parse_time("7d", NOW), Ok(NOW - 7 * 86_400_000));
        assert_eq!(parse_time("100y", NOW), Ok(0));
        assert_eq!(parse_time("2026-11-27 00:00:00", NOW), Ok(NOW));
        assert_eq!(parse_time("2026-11-27T01:00:00+01:00", NOW), Ok(NOW));
        assert_eq!(parse_time("2026-11-26T19:30:00-04:30", NOW), Ok(NOW));
        assert_eq!(
            parse_time("2026-11-27T00:00:00.250+00:00", NOW),
            Ok(NOW + 250)
        );
        assert!(parse_time("2026-11-27T00:00:00+25:00", NOW).is_err());
        assert!(parse_time("1970-01-01T00:00:00+01:00", NOW)
            .unwrap_err()
            .contains("before 1970"));
        assert_eq!(parse_time("2026-11-26T23:59:59.5Z", NOW), Ok(NOW - 500));
        assert_eq!(parse_time("2026-11-27t00:00:00z", NOW), Ok(NOW));
        assert_eq!(parse_time("2026-11-27 01:00:00+01:00", NOW), Ok(NOW));
        assert!(parse_time("2026-11-27T00:00:00Zx", NOW).is_err());
        assert!(parse_time("2026-11-27T00:00", NOW).is_err());
        assert_eq!(parse_time("42", NOW), Ok(42));
        let err = parse_time("yesterday", NOW).unwrap_err();
        assert!(err.contains("RFC 3339") && err.contains("10m"), "{err}");
        assert!(parse_time("1969-12-31T00:00:00Z", NOW).is_err());
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let err = |q| parse_audit_query(q, NOW).unwrap_err();
        assert!(err("limit=x").contains("limit"));
        assert!(err("kind=nope").contains("kind"));
        assert!(err("since=yesterday").contains("since"));
        assert!(err("until=-5m").contains("until"));
        assert!(err("follow=yes").contains("follow"));
        assert!(err("color=red").contains("color"));
        assert!(err("sandbox=%zz").contains("percent"));
    }

    #[test]
    fn encode_query_keeps_set_pairs() {
        assert_eq!(
            encode_query(&[
                ("sandbox", Some("a b")),
                ("host", None),
                ("limit", Some("5"))
            ]),
            "sandbox=a%20b&limit=5"
        );
        assert_eq!(encode_query(&[("host", None)]), "");
        let q = encode_query(&[("secret", Some("gh&x=1")), ("since", Some("10m"))]);
        let parsed = parse_audit_query(&q, NOW).unwrap();
        assert_eq!(parsed.filter.secret.as_deref(), Some("gh&x=1"));
        assert_eq!(parsed.filter.since_ms, Some(NOW - 600_000));
    }

    #[test]
    fn encode_decode_round_trip() {
        for s in ["plain", "a b&c=d", "ü/ß", ""] {
            assert_eq!(percent_decode(&percent_encode(s)).as_deref(), Some(s));
        }
        assert_eq!(percent_decode("a+b%2Bc").as_deref(), Some("a b+c"));
        for bad in ["%", "%2", "a%g0", "%ff"] {
            assert_eq!(percent_decode(bad), None, "{bad:?}");
        }
    }
}
