//! Tests of the body rewriters: every split of the input gives the same output.

use std::sync::Arc;

use serde_json::json;

use super::{BodyError, BodyKind};
use crate::{
    host_pattern::HostPattern,
    inject::{Engine, Entry, Event, Reason, Request, Slots, Target},
    route::RouteScope,
};

fn entry(name: &str, value: &str, slots: serde_json::Value) -> Entry<Vec<u8>> {
    Entry {
        id: format!("id-{name}"),
        name: name.to_owned(),
        placeholder: format!("IRONSH_PROXY_{name}"),
        scope: vec![HostPattern::parse("api.example.com").unwrap()],
        slots: Slots::from_json(&slots).unwrap(),
        route: RouteScope::default(),
        value: Arc::new(value.as_bytes().to_vec()),
    }
}

fn engine() -> Arc<Engine<Vec<u8>>> {
    Arc::new(
        Engine::new(vec![
            entry("any", "S\"1\\é\t", json!(["json", "form"])),
            entry(
                "tok",
                "t o+k/=&",
                json!([{"form": ["refresh_token", "a b"]}]),
            ),
            entry(
                "key",
                "KEY",
                json!([{"json": ["/auth/key", "/a~1b/~0c", "/list/1"]}]),
            ),
            entry("hdr", "HDR", json!(["headers"])),
        ])
        .unwrap(),
    )
}

/// An event as (secret name, place, reason if left alone).
type Summary = (String, String, Option<Reason>);

const HOST: Target<'static> = Target::VerifiedTls {
    host: "api.example.com",
};

/// Rewrites `body` fed in pieces cut at `cuts`, returning the output and event summaries.
fn run(
    engine: &Arc<Engine<Vec<u8>>>,
    kind: BodyKind,
    target: Target<'_>,
    body: &[u8],
    cuts: &[usize],
) -> Result<(Vec<u8>, Vec<Summary>), BodyError> {
    let request = Request::from(target);
    let Some(mut rewriter) = engine.body_rewriter(kind, &request) else {
        return Ok((body.to_vec(), Vec::new()));
    };
    let mut out = Vec::new();
    let mut events = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain([&body.len()]) {
        let chunk = rewriter.feed(&body[from..cut])?;
        out.extend_from_slice(&chunk.bytes);
        events.extend(chunk.events);
        from = cut;
    }
    let chunk = rewriter.finish()?;
    out.extend_from_slice(&chunk.bytes);
    events.extend(chunk.events);
    let events = events
        .into_iter()
        .map(|e| match e {
            Event::Injected {
                secret_name,
                header,
                ..
            } => (secret_name, header, None),
            Event::NotInjected {
                secret_name,
                header,
                reason,
                ..
            } => (secret_name, header, Some(reason)),
        })
        .collect();
    Ok((out, events))
}

/// Runs `body` whole, split once at every offset, and byte by byte; all must agree.
fn every_split(kind: BodyKind, body: &str) -> Result<(String, Vec<Summary>), BodyError> {
    let engine = engine();
    let whole = run(&engine, kind, HOST, body.as_bytes(), &[]);
    for at in 0..=body.len() {
        assert_eq!(
            run(&engine, kind, HOST, body.as_bytes(), &[at]),
            whole,
            "split at {at} of {body}"
        );
    }
    let bytes: Vec<usize> = (1..body.len()).collect();
    assert_eq!(run(&engine, kind, HOST, body.as_bytes(), &bytes), whole);
    whole.map(|(out, events)| (String::from_utf8(out).unwrap(), events))
}

fn injected(name: &str, place: &str) -> Summary {
    (name.to_owned(), place.to_owned(), None)
}

#[test]
fn json_any_string_value_gets_the_escaped_secret() {
    let (out, events) = every_split(
        BodyKind::Json,
        r#"{"a": "IRONSH_PROXY_any", "IRONSH_PROXY_any": [1, -2.5e+3, true, null, "x IRONSH_PROXY_any"]}"#,
    )
    .unwrap();
    assert_eq!(
        out,
        r#"{"a": "S\"1\\é\u0009", "IRONSH_PROXY_any": [1, -2.5e+3, true, null, "x S\"1\\é\u0009"]}"#
    );
    assert_eq!(
        events,
        [
            injected("any", "(json)/a"),
            injected("any", "(json)/IRONSH_PROXY_any/4")
        ]
    );
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed["a"], "S\"1\\é\t");
}

#[test]
fn json_placeholders_spelled_with_escapes_are_found() {
    let (out, events) = every_split(
        BodyKind::Json,
        r#"["\u0049RONSH_PROXY_any", "IRONSH\u005fPROXY_any\n"]"#,
    )
    .unwrap();
    assert_eq!(out, r#"["S\"1\\é\u0009", "S\"1\\é\u0009\n"]"#);
    assert_eq!(events.len(), 2);
    // An escaped name byte after the placeholder continues the name: no match.
    let (out, events) = every_split(
        BodyKind::Json,
        r#"["IRONSH_PROXY_any\u0041", "IRONSH_PROXY_anyé"]"#,
    )
    .unwrap();
    assert_eq!(out, r#"["IRONSH_PROXY_any\u0041", "S\"1\\é\u0009é"]"#);
    assert_eq!(events.len(), 1);
}

#[test]
fn json_pointers_pick_values_with_escapes_and_indexes() {
    let body = r#"{"auth": {"key": "IRONSH_PROXY_key", "other": "IRONSH_PROXY_key"},
        "a/b": {"~c": "IRONSH_PROXY_key"}, "list": ["IRONSH_PROXY_key", "IRONSH_PROXY_key"],
        "\u0061uth": {"k\u0065y": "IRONSH_PROXY_key"}}"#;
    let (out, events) = every_split(BodyKind::Json, body).unwrap();
    assert_eq!(out.matches("KEY").count(), 4, "{out}");
    assert_eq!(out.matches("IRONSH_PROXY_key").count(), 2, "{out}");
    assert_eq!(
        events,
        [
            injected("key", "(json)/auth/key"),
            injected("key", "(json)/a~1b/~0c"),
            injected("key", "(json)/list/1"),
            injected("key", "(json)/auth/key"),
        ]
    );
}

#[test]
fn json_nested_and_split_surrogates_in_keys() {
    let body =
        r#"{"x": [[{"auth": {"key": "IRONSH_PROXY_key"}}]], "\ud83d\ude00": "IRONSH_PROXY_any"}"#;
    let (out, events) = every_split(BodyKind::Json, body).unwrap();
    assert!(out.contains("IRONSH_PROXY_key"), "{out}");
    assert_eq!(events, [injected("any", "(json)/😀")]);
}

#[test]
fn json_whole_document_string_and_empty_body() {
    assert_eq!(
        every_split(BodyKind::Json, r#" "IRONSH_PROXY_any" "#)
            .unwrap()
            .0,
        r#" "S\"1\\é\u0009" "#
    );
    assert_eq!(every_split(BodyKind::Json, "  ").unwrap().0, "  ");
    assert_eq!(every_split(BodyKind::Json, "").unwrap().0, "");
}

#[test]
fn malformed_json_is_refused() {
    for bad in [
        "{",
        "[1,]",
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        r#"{"a":01}"#,
        r#"{"a":-}"#,
        r#"{"a":1.}"#,
        r#"{"a":tru}"#,
        r#"{"a":truex}"#,
        r#""abc"#,
        "\"a\u{1}b\"",
        r#""\x""#,
        r#""\u12G4""#,
        "1 2",
        "{} {}",
        "]",
        r#"{"a":"IRONSH_PROXY_any"} x"#,
        "nul",
    ] {
        assert!(
            matches!(
                every_split(BodyKind::Json, bad),
                Err(BodyError::Malformed { .. })
            ),
            "{bad}"
        );
    }
    let deep = "[".repeat(super::MAX_DEPTH + 1) + &"]".repeat(super::MAX_DEPTH + 1);
    assert!(run(&engine(), BodyKind::Json, HOST, deep.as_bytes(), &[]).is_err());
    let ok = "[".repeat(super::MAX_DEPTH) + &"]".repeat(super::MAX_DEPTH);
    assert!(run(&engine(), BodyKind::Json, HOST, ok.as_bytes(), &[]).is_ok());
}

#[test]
fn form_values_get_the_percent_encoded_secret() {
    let (out, events) = every_split(
        BodyKind::Form,
        "grant=x&refresh_token=IRONSH_PROXY_tok&a+b=IRONSH_PROXY_tok&a%20b=%49RONSH_PROXY_tok&c=IRONSH_PROXY_tok&d=IRONSH_PROXY_any+x",
    )
    .unwrap();
    assert_eq!(
        out,
        "grant=x&refresh_token=t%20o%2Bk%2F%3D%26&a+b=t%20o%2Bk%2F%3D%26&a%20b=t%20o%2Bk%2F%3D%26&c=IRONSH_PROXY_tok&d=S%221%5C%C3%A9%09+x"
    );
    assert_eq!(
        events,
        [
            injected("tok", "(form)refresh_token"),
            injected("tok", "(form)a b"),
            injected("tok", "(form)a b"),
            injected("any", "(form)d"),
        ]
    );
}

#[test]
fn form_names_and_continued_names_are_not_swapped() {
    let (out, events) = every_split(
        BodyKind::Form,
        "IRONSH_PROXY_any=1&x=IRONSH_PROXY_anyx&y=IRONSH_PROXY_any%41&z=%2BIRONSH_PROXY_any=",
    )
    .unwrap();
    assert_eq!(
        out,
        "IRONSH_PROXY_any=1&x=IRONSH_PROXY_anyx&y=IRONSH_PROXY_any%41&z=%2BS%221%5C%C3%A9%09="
    );
    assert_eq!(events, [injected("any", "(form)z")]);
}

#[test]
fn malformed_forms_are_refused() {
    for bad in ["a=%", "a=%4", "a=%zz", "a%=1"] {
        assert!(every_split(BodyKind::Form, bad).is_err(), "{bad}");
    }
}

#[test]
fn out_of_scope_and_unrelated_bodies() {
    let engine = engine();
    let elsewhere = Target::VerifiedTls {
        host: "evil.example.com",
    };
    let request = Request::from(elsewhere);
    assert!(engine.body_rewriter(BodyKind::Json, &request).is_none());
    assert!(engine
        .body_rewriter(BodyKind::Json, &Request::from(Target::Unverified))
        .is_none());
    // A header-only secret's placeholder in a body stays, and is not an event.
    let (out, events) = every_split(BodyKind::Json, r#"["IRONSH_PROXY_hdr"]"#).unwrap();
    assert_eq!(out, r#"["IRONSH_PROXY_hdr"]"#);
    assert!(events.is_empty());
}

#[test]
fn whole_body_needed_only_for_named_fields() {
    let engine = engine();
    let request = Request::from(HOST);
    assert!(engine
        .body_rewriter(BodyKind::Json, &request)
        .unwrap()
        .needs_whole_body());
    let any_only = Arc::new(Engine::new(vec![entry("any", "v", json!(["json"]))]).unwrap());
    assert!(!any_only
        .body_rewriter(BodyKind::Json, &request)
        .unwrap()
        .needs_whole_body());
}

#[test]
fn long_runs_of_name_bytes_taken_at_once() {
    let pad = "x".repeat(300);
    let key = "k".repeat(100);
    let body = format!(
        r#"{{"a":"{pad}IRONSH_PROXY_any {pad} IRONSH_PROXY_any-{pad} IRONSH_PROXY_\u0061ny{pad}","{key}":"IRONSH_PROXY_any"}}"#
    );
    let (out, events) = every_split(BodyKind::Json, &body).unwrap();
    let secret = r#"S\"1\\é\u0009"#;
    assert_eq!(
        out,
        format!(
            r#"{{"a":"{pad}{secret} {pad} IRONSH_PROXY_any-{pad} IRONSH_PROXY_\u0061ny{pad}","{key}":"{secret}"}}"#
        )
    );
    assert_eq!(
        events,
        vec![
            injected("any", "(json)/a"),
            injected("any", &format!("(json)/{key}")),
        ]
    );
}

#[test]
fn long_form_names_and_values_taken_at_once() {
    let pad = "x".repeat(300);
    let long = "n".repeat(2000);
    let body = format!(
        "{long}=IRONSH_PROXY_any&refresh_token={pad}IRONSH_PROXY_tok%20{pad}&{long}refresh_token=IRONSH_PROXY_tok"
    );
    let (out, events) = every_split(BodyKind::Form, &body).unwrap();
    assert_eq!(
        out,
        format!("{long}=S%221%5C%C3%A9%09&refresh_token={pad}t%20o%2Bk%2F%3D%26%20{pad}&{long}refresh_token=IRONSH_PROXY_tok")
    );
    // A name past the longest kept matches no named field, and is not named in the record.
    assert_eq!(
        events,
        vec![
            injected("any", "(form)"),
            injected("tok", "(form)refresh_token")
        ]
    );
}

/// Bodies pieced together from placeholders, escapes and runs of name bytes (a fixed
/// xorshift sequence): JSON documents, forms, and now and then fragments that do not parse.
/// Fed whole, in random pieces and byte by byte, each gives the same bytes, events and verdict.
#[test]
fn random_bodies_agree_however_they_are_cut() {
    const IN_STRING: &[&str] = &[
        "IRONSH_PROXY_any",
        "IRONSH_PROXY_key",
        "IRONSH_PROXY_tok",
        "IRONSH_PROXY_",
        "IRONSH_",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "-",
        ".",
        " ",
        "\\u0041",
        "\\u004",
        "\\\\",
        "\\\"",
        "é",
        "%41",
        "+",
        "&",
        "=",
    ];
    const FRAGMENTS: &[&str] = &["{\"a\":\"", "\"", "}", "]", "[", ",", ":", "12", "tru"];
    let engine = engine();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |below: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % below as u64) as usize
    };
    let mut swapped = [0, 0];
    for round in 0..3000 {
        let text = |n: usize, next: &mut dyn FnMut(usize) -> usize| -> String {
            (0..next(n))
                .map(|_| IN_STRING[next(IN_STRING.len())])
                .collect()
        };
        let (kind, body) = match round % 3 {
            0 => (
                BodyKind::Json,
                format!(
                    r#"{{"auth":{{"key":"{}"}},"list":["{}","{}"],"{}":"{}"}}"#,
                    text(6, &mut next),
                    text(6, &mut next),
                    text(6, &mut next),
                    text(3, &mut next),
                    text(6, &mut next)
                ),
            ),
            1 => (
                BodyKind::Form,
                format!(
                    "refresh_token={}&{}={}",
                    text(6, &mut next),
                    text(3, &mut next),
                    text(6, &mut next)
                ),
            ),
            _ => (
                BodyKind::Json,
                (0..next(12))
                    .map(|_| match next(2) {
                        0 => FRAGMENTS[next(FRAGMENTS.len())],
                        _ => IN_STRING[next(IN_STRING.len())],
                    })
                    .collect(),
            ),
        };
        let body = body.as_bytes();
        let whole = run(&engine, kind, HOST, body, &[]);
        if let Ok((_, events)) = &whole {
            swapped[usize::from(kind == BodyKind::Json)] +=
                events.iter().filter(|e| e.2.is_none()).count();
        }
        let mut cuts: Vec<usize> = (0..next(6)).map(|_| next(body.len() + 1)).collect();
        cuts.sort_unstable();
        assert_eq!(run(&engine, kind, HOST, body, &cuts), whole, "{cuts:?}");
        let bytewise: Vec<usize> = (1..body.len()).collect();
        assert_eq!(run(&engine, kind, HOST, body, &bytewise), whole);
    }
    assert!(swapped.iter().all(|&n| n > 100), "swapped {swapped:?}");
}

#[test]
fn held_back_bytes_are_bounded() {
    let engine = engine();
    let request = Request::from(HOST);
    let mut rewriter = engine.body_rewriter(BodyKind::Json, &request).unwrap();
    let mut out = rewriter.feed(b"[\"").unwrap().bytes.len();
    for i in 1..=1000 {
        out += rewriter.feed(&[b'a'; 1000]).unwrap().bytes.len();
        assert!(2 + i * 1000 - out <= 64, "{out}");
    }
}

#[test]
fn content_types() {
    assert_eq!(
        BodyKind::of_content_type(b"application/json; charset=utf-8"),
        Some(BodyKind::Json)
    );
    assert_eq!(
        BodyKind::of_content_type(b"Application/Vnd.Api+JSON"),
        Some(BodyKind::Json)
    );
    assert_eq!(
        BodyKind::of_content_type(b"application/x-www-form-urlencoded"),
        Some(BodyKind::Form)
    );
    assert_eq!(BodyKind::of_content_type(b"text/plain"), None);
    assert_eq!(BodyKind::of_content_type(b"multipart/form-data"), None);
}
