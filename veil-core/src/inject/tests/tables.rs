//! Table-driven tests of headers, Basic credentials, scopes, query strings and construction.

use base64::{
    engine::general_purpose::{STANDARD, STANDARD_NO_PAD},
    Engine as _,
};

use super::{engine, entry, output, query_entry, summary, table_entries, Reason, TABLE_SECRETS};
use crate::inject::{Engine, EngineError, Target, QUERY_LOCATION};

const IN_SCOPE: Option<&str> = Some("api.github.com");
const OTHER: Option<&str> = Some("evil.example");

/// `(secret name, None if injected or the reason)` per occurrence, in order.
type Expected<'a> = &'a [(&'a str, Option<Reason>)];

/// One header value, where it goes, and what must come of it.
struct Case {
    what: &'static str,
    header: &'static str,
    input: &'static [u8],
    /// The verified host, or `None` for an unverified target.
    host: Option<&'static str>,
    want: &'static [u8],
    events: Expected<'static>,
}

fn target(host: Option<&str>) -> Target<'_> {
    host.map_or(Target::Unverified, |host| Target::VerifiedTls { host })
}

/// Runs `case` against `engine` and checks value, events and `Debug`.
fn check(engine: &Engine<Vec<u8>>, case: &Case) {
    let outcome = engine.rewrite_header(case.header, case.input, &target(case.host).into());
    let what = case.what;
    assert_eq!(
        String::from_utf8_lossy(&output(&outcome, case.input)),
        String::from_utf8_lossy(case.want),
        "{what}"
    );
    assert_eq!(outcome.value().is_some(), case.input != case.want, "{what}");
    let want_events: Vec<_> = case
        .events
        .iter()
        .map(|&(name, reason)| (name.to_owned(), case.header.to_owned(), reason))
        .collect();
    assert_eq!(summary(&outcome), want_events, "{what}");
    let debug = format!("{outcome:?}");
    for secret in TABLE_SECRETS {
        assert!(!debug.contains(secret), "{what}: {debug}");
    }
}

const HEADER_CASES: &[Case] = &[
    Case {
        what: "single",
        header: "X-Api-Key",
        input: b"IRONSH_PROXY_gh",
        host: IN_SCOPE,
        want: b"GH-SECRET",
        events: &[("gh", None)],
    },
    Case {
        what: "bearer",
        header: "authorization",
        input: b"Bearer IRONSH_PROXY_gh",
        host: IN_SCOPE,
        want: b"Bearer GH-SECRET",
        events: &[("gh", None)],
    },
    Case {
        what: "several",
        header: "cookie",
        input: b"a=IRONSH_PROXY_gh; b=IRONSH_PROXY_gh-main",
        host: IN_SCOPE,
        want: b"a=GH-SECRET; b=MAIN-SECRET",
        events: &[("gh", None), ("gh-main", None)],
    },
    Case {
        what: "repeated",
        header: "x-token",
        input: b"IRONSH_PROXY_gh IRONSH_PROXY_gh,IRONSH_PROXY_gh",
        host: IN_SCOPE,
        want: b"GH-SECRET GH-SECRET,GH-SECRET",
        events: &[("gh", None), ("gh", None), ("gh", None)],
    },
    Case {
        what: "the longer of two overlapping names",
        header: "x-token",
        input: b"IRONSH_PROXY_gh-main",
        host: IN_SCOPE,
        want: b"MAIN-SECRET",
        events: &[("gh-main", None)],
    },
    Case {
        what: "the shorter of two overlapping names, then the longer",
        header: "x-token",
        input: b"IRONSH_PROXY_gh:IRONSH_PROXY_gh-main",
        host: IN_SCOPE,
        want: b"GH-SECRET:MAIN-SECRET",
        events: &[("gh", None), ("gh-main", None)],
    },
    Case {
        what: "a longer name that is no secret",
        header: "x-token",
        input: b"IRONSH_PROXY_gh-mainx IRONSH_PROXY_gh-other IRONSH_PROXY_gh.x",
        host: IN_SCOPE,
        want: b"IRONSH_PROXY_gh-mainx IRONSH_PROXY_gh-other IRONSH_PROXY_gh.x",
        events: &[],
    },
    Case {
        what: "a placeholder inside a longer name, then a complete one",
        header: "x-token",
        input: b"IRONSH_PROXY_ghIRONSH_PROXY_gh",
        host: IN_SCOPE,
        want: b"IRONSH_PROXY_ghGH-SECRET",
        events: &[("gh", None)],
    },
    Case {
        what: "only the byte after a placeholder counts, not the one before",
        header: "x-token",
        input: b"xIRONSH_PROXY_gh",
        host: IN_SCOPE,
        want: b"xGH-SECRET",
        events: &[("gh", None)],
    },
    Case {
        what: "placeholders are case-sensitive",
        header: "x-token",
        input: b"IRONSH_PROXY_GH ironsh_proxy_gh",
        host: IN_SCOPE,
        want: b"IRONSH_PROXY_GH ironsh_proxy_gh",
        events: &[],
    },
    Case {
        what: "the bare prefix",
        header: "x-token",
        input: b"IRONSH_PROXY_",
        host: IN_SCOPE,
        want: b"IRONSH_PROXY_",
        events: &[],
    },
    Case {
        what: "no placeholder",
        header: "user-agent",
        input: b"curl/8.5.0",
        host: IN_SCOPE,
        want: b"curl/8.5.0",
        events: &[],
    },
    Case {
        what: "empty value",
        header: "x-empty",
        input: b"",
        host: IN_SCOPE,
        want: b"",
        events: &[],
    },
    Case {
        what: "out of scope",
        header: "Authorization",
        input: b"Bearer IRONSH_PROXY_gh",
        host: OTHER,
        want: b"Bearer IRONSH_PROXY_gh",
        events: &[("gh", Some(Reason::OutOfScope))],
    },
    Case {
        what: "one in scope, one not",
        header: "x-token",
        input: b"IRONSH_PROXY_gh IRONSH_PROXY_gh-main",
        host: OTHER,
        want: b"IRONSH_PROXY_gh MAIN-SECRET",
        events: &[("gh", Some(Reason::OutOfScope)), ("gh-main", None)],
    },
    Case {
        what: "an empty scope",
        header: "x-token",
        input: b"IRONSH_PROXY_none",
        host: IN_SCOPE,
        want: b"IRONSH_PROXY_none",
        events: &[("none", Some(Reason::OutOfScope))],
    },
    Case {
        what: "unverified",
        header: "x-token",
        input: b"IRONSH_PROXY_gh IRONSH_PROXY_gh-main",
        host: None,
        want: b"IRONSH_PROXY_gh IRONSH_PROXY_gh-main",
        events: &[
            ("gh", Some(Reason::NotTls)),
            ("gh-main", Some(Reason::NotTls)),
        ],
    },
    Case {
        what: "unverified without placeholders",
        header: "x-token",
        input: b"nothing",
        host: None,
        want: b"nothing",
        events: &[],
    },
    Case {
        what: "CR LF in the secret",
        header: "x-token",
        input: b"IRONSH_PROXY_bad",
        host: IN_SCOPE,
        want: b"IRONSH_PROXY_bad",
        events: &[("bad", Some(Reason::IllegalBytes))],
    },
    Case {
        what: "DEL in the secret",
        header: "x-token",
        input: b"IRONSH_PROXY_del;IRONSH_PROXY_gh",
        host: IN_SCOPE,
        want: b"IRONSH_PROXY_del;GH-SECRET",
        events: &[("del", Some(Reason::IllegalBytes)), ("gh", None)],
    },
    Case {
        what: "tab and obs-text in the secret are legal",
        header: "x-token",
        input: b"IRONSH_PROXY_tab",
        host: IN_SCOPE,
        want: b"a\tb\x80",
        events: &[("tab", None)],
    },
    Case {
        what: "a query-only secret is swapped in headers too",
        header: "x-token",
        input: b"IRONSH_PROXY_q",
        host: IN_SCOPE,
        want: b"q s&=/~._-",
        events: &[("q", None)],
    },
    Case {
        what: "Basic outside the credential headers is plain text",
        header: "x-basic",
        input: b"Basic SVJPTlNIX1BST1hZX2doOng=",
        host: IN_SCOPE,
        want: b"Basic SVJPTlNIX1BST1hZX2doOng=",
        events: &[],
    },
    Case {
        what: "Basic credentials that are not base64 are plain text",
        header: "Authorization",
        input: b"Basic IRONSH_PROXY_gh",
        host: IN_SCOPE,
        want: b"Basic GH-SECRET",
        events: &[("gh", None)],
    },
    Case {
        what: "Basic without a space is plain text",
        header: "Authorization",
        input: b"BasicIRONSH_PROXY_gh",
        host: IN_SCOPE,
        want: b"BasicGH-SECRET",
        events: &[("gh", None)],
    },
    Case {
        what: "Basic with bad base64 and no placeholder",
        header: "Authorization",
        input: b"Basic !!!",
        host: IN_SCOPE,
        want: b"Basic !!!",
        events: &[],
    },
];

#[test]
fn header_table_in_both_orders_of_definition() {
    for reversed in [false, true] {
        let engine = engine(table_entries(reversed));
        for case in HEADER_CASES {
            check(&engine, case);
        }
    }
}

#[test]
fn overlapping_names_when_only_one_is_a_secret() {
    let short_only = engine(vec![entry("gh", b"GH-SECRET", &["*"])]);
    let long_only = engine(vec![entry("gh-main", b"MAIN-SECRET", &["*"])]);
    let cases = [
        (
            &short_only,
            "IRONSH_PROXY_gh-main",
            "IRONSH_PROXY_gh-main",
            0,
        ),
        (
            &short_only,
            "IRONSH_PROXY_gh-main IRONSH_PROXY_gh",
            "IRONSH_PROXY_gh-main GH-SECRET",
            1,
        ),
        (&long_only, "IRONSH_PROXY_gh", "IRONSH_PROXY_gh", 0),
        (&long_only, "IRONSH_PROXY_gh-main", "MAIN-SECRET", 1),
        (&long_only, "IRONSH_PROXY_gh-mai", "IRONSH_PROXY_gh-mai", 0),
    ];
    for (engine, input, want, events) in cases {
        let outcome = engine.rewrite_header("x-token", input.as_bytes(), &target(IN_SCOPE).into());
        assert_eq!(
            output(&outcome, input.as_bytes()),
            want.as_bytes(),
            "{input}"
        );
        assert_eq!(outcome.events().len(), events, "{input}");
    }
}

#[test]
fn boundary_bytes_end_a_placeholder_and_name_bytes_continue_it() {
    let engine = engine(vec![entry("gh", b"GH-SECRET", &["*"])]);
    for byte in *b"/ \",;:=&\t)]}'?#@%+!" {
        let input = [b"IRONSH_PROXY_gh".as_slice(), &[byte], b"zz"].concat();
        let want = [b"GH-SECRET".as_slice(), &[byte], b"zz"].concat();
        let outcome = engine.rewrite_header("x-token", &input, &target(IN_SCOPE).into());
        assert_eq!(outcome.value(), Some(want.as_slice()), "{:?}", byte as char);
    }
    for byte in *b"aZ09_.-" {
        let input = [b"IRONSH_PROXY_gh".as_slice(), &[byte], b"zz"].concat();
        let outcome = engine.rewrite_header("x-token", &input, &target(IN_SCOPE).into());
        assert_eq!(outcome.value(), None, "{:?}", byte as char);
        assert!(outcome.events().is_empty(), "{:?}", byte as char);
    }
}

#[test]
fn basic_credentials_table() {
    let engine = engine(table_entries(false));
    // (what, header, scheme, user:password, host, want user:password or None, events)
    type BasicCase<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Expected<'a>,
    );
    let cases: &[BasicCase] = &[
        (
            "password",
            "Authorization",
            "Basic ",
            "x-access-token:IRONSH_PROXY_gh",
            IN_SCOPE,
            Some("x-access-token:GH-SECRET"),
            &[("gh", None)],
        ),
        (
            "user",
            "authorization",
            "Basic ",
            "IRONSH_PROXY_gh:x-oauth-basic",
            IN_SCOPE,
            Some("GH-SECRET:x-oauth-basic"),
            &[("gh", None)],
        ),
        (
            "both",
            "AUTHORIZATION",
            "Basic ",
            "IRONSH_PROXY_gh:IRONSH_PROXY_gh-main",
            IN_SCOPE,
            Some("GH-SECRET:MAIN-SECRET"),
            &[("gh", None), ("gh-main", None)],
        ),
        (
            "lower-case scheme",
            "Authorization",
            "basic ",
            "u:IRONSH_PROXY_gh",
            IN_SCOPE,
            Some("u:GH-SECRET"),
            &[("gh", None)],
        ),
        (
            "upper-case scheme, tab and spaces",
            "Authorization",
            "BASIC\t  ",
            "u:IRONSH_PROXY_gh",
            IN_SCOPE,
            Some("u:GH-SECRET"),
            &[("gh", None)],
        ),
        (
            "proxy credentials",
            "Proxy-Authorization",
            "Basic ",
            "u:IRONSH_PROXY_gh",
            IN_SCOPE,
            Some("u:GH-SECRET"),
            &[("gh", None)],
        ),
        (
            "a secret whose base64 needs padding",
            "Authorization",
            "Basic ",
            "u:IRONSH_PROXY_npm",
            Some("registry.npmjs.org"),
            Some("u:NPM/SECRET+="),
            &[("npm", None)],
        ),
        (
            "out of scope",
            "Authorization",
            "Basic ",
            "u:IRONSH_PROXY_gh",
            OTHER,
            None,
            &[("gh", Some(Reason::OutOfScope))],
        ),
        (
            "unverified",
            "Authorization",
            "Basic ",
            "u:IRONSH_PROXY_gh",
            None,
            None,
            &[("gh", Some(Reason::NotTls))],
        ),
        (
            "illegal bytes",
            "Authorization",
            "Basic ",
            "u:IRONSH_PROXY_bad",
            IN_SCOPE,
            None,
            &[("bad", Some(Reason::IllegalBytes))],
        ),
        (
            "no placeholder",
            "Authorization",
            "Basic ",
            "user:password",
            IN_SCOPE,
            None,
            &[],
        ),
        (
            "a placeholder continued by a name byte",
            "Authorization",
            "Basic ",
            "u:IRONSH_PROXY_gh2",
            IN_SCOPE,
            None,
            &[],
        ),
    ];
    for &(what, header, scheme, user_pass, host, want, events) in cases {
        for padded in [true, false] {
            let encoded = if padded {
                STANDARD.encode(user_pass)
            } else {
                STANDARD_NO_PAD.encode(user_pass)
            };
            let input = format!("{scheme}{encoded}");
            let outcome = engine.rewrite_header(header, input.as_bytes(), &target(host).into());
            let want_value = want.map(|want| format!("{scheme}{}", STANDARD.encode(want)));
            assert_eq!(
                outcome.value(),
                want_value.as_ref().map(|want| want.as_bytes()),
                "{what}, padded: {padded}"
            );
            let want_events: Vec<_> = events
                .iter()
                .map(|&(name, reason)| (name.to_owned(), header.to_owned(), reason))
                .collect();
            assert_eq!(summary(&outcome), want_events, "{what}");
            let debug = format!("{outcome:?}");
            assert!(!debug.contains("SECRET"), "{debug}");
        }
    }
}

#[test]
fn long_basic_credentials_are_decoded_too() {
    let engine = engine(table_entries(false));
    let user = "u".repeat(2000);
    let input = format!(
        "Basic {}",
        STANDARD.encode(format!("{user}:IRONSH_PROXY_gh"))
    );
    let outcome =
        engine.rewrite_header("authorization", input.as_bytes(), &target(IN_SCOPE).into());
    let want = format!("Basic {}", STANDARD.encode(format!("{user}:GH-SECRET")));
    assert_eq!(outcome.value(), Some(want.as_bytes()));
}

#[test]
fn scope_table() {
    let engine = engine(vec![
        entry("exact", b"E", &["api.example.com"]),
        entry("wild", b"W", &["*.x.com"]),
        entry("any", b"A", &["*"]),
        entry("two", b"T", &["a.example", "*.b.example"]),
    ]);
    let cases = [
        ("exact", "api.example.com", true),
        ("exact", "API.Example.COM.", true),
        ("exact", "example.com", false),
        ("exact", "www.api.example.com", false),
        ("wild", "api.x.com", true),
        ("wild", "Api.X.Com.", true),
        ("wild", "x.com", false),
        ("wild", "a.b.x.com", false),
        ("wild", "evilx.com", false),
        ("any", "anything.example", true),
        ("any", "127.0.0.1", true),
        ("two", "a.example", true),
        ("two", "c.b.example", true),
        ("two", "b.example", false),
    ];
    for (name, host, injects) in cases {
        let input = format!("IRONSH_PROXY_{name}");
        let outcome =
            engine.rewrite_header("x-token", input.as_bytes(), &target(Some(host)).into());
        assert_eq!(outcome.value().is_some(), injects, "{name} on {host}");
        let want = if injects {
            vec![(name.to_owned(), "x-token".to_owned(), None)]
        } else {
            vec![(
                name.to_owned(),
                "x-token".to_owned(),
                Some(Reason::OutOfScope),
            )]
        };
        assert_eq!(summary(&outcome), want, "{name} on {host}");
    }
}

#[test]
fn query_table() {
    let engine = engine(vec![
        entry("gh", b"GH-SECRET", &["*"]),
        query_entry("q", b"q s&=/~._-", &["*"]),
        query_entry("qx", b"QX", &["*.x.com"]),
    ]);
    const Q: &str = "q%20s%26%3D%2F~._-";
    // (request target, host, want, events)
    let cases: &[(&str, Option<&str>, String, Expected)] = &[
        (
            "/path?key=IRONSH_PROXY_q&x=1",
            IN_SCOPE,
            format!("/path?key={Q}&x=1"),
            &[("q", None)],
        ),
        (
            "/p?a=IRONSH_PROXY_q&b=IRONSH_PROXY_q",
            IN_SCOPE,
            format!("/p?a={Q}&b={Q}"),
            &[("q", None), ("q", None)],
        ),
        (
            "/IRONSH_PROXY_q/x?k=IRONSH_PROXY_q",
            IN_SCOPE,
            format!("/IRONSH_PROXY_q/x?k={Q}"),
            &[("q", None)],
        ),
        (
            "https://api.github.com/p?k=IRONSH_PROXY_q",
            IN_SCOPE,
            format!("https://api.github.com/p?k={Q}"),
            &[("q", None)],
        ),
        (
            "/p?k=IRONSH_PROXY_q#IRONSH_PROXY_q",
            IN_SCOPE,
            format!("/p?k={Q}#IRONSH_PROXY_q"),
            &[("q", None)],
        ),
        (
            "/p#f?k=IRONSH_PROXY_q",
            IN_SCOPE,
            "/p#f?k=IRONSH_PROXY_q".into(),
            &[],
        ),
        ("/IRONSH_PROXY_q", IN_SCOPE, "/IRONSH_PROXY_q".into(), &[]),
        (
            "/p?k=IRONSH_PROXY_gh",
            IN_SCOPE,
            "/p?k=IRONSH_PROXY_gh".into(),
            &[],
        ),
        (
            "/p?k=IRONSH_PROXY_qq",
            IN_SCOPE,
            "/p?k=IRONSH_PROXY_qq".into(),
            &[],
        ),
        ("/p?", IN_SCOPE, "/p?".into(), &[]),
        (
            "/p?k=IRONSH_PROXY_q",
            None,
            "/p?k=IRONSH_PROXY_q".into(),
            &[("q", Some(Reason::NotTls))],
        ),
        (
            "/p?k=IRONSH_PROXY_qx",
            IN_SCOPE,
            "/p?k=IRONSH_PROXY_qx".into(),
            &[("qx", Some(Reason::OutOfScope))],
        ),
        (
            "/p?k=IRONSH_PROXY_qx",
            Some("a.x.com"),
            "/p?k=QX".into(),
            &[("qx", None)],
        ),
    ];
    for (input, host, want, events) in cases {
        let outcome = engine.rewrite_query(input.as_bytes(), &target(*host).into());
        assert_eq!(
            String::from_utf8(output(&outcome, input.as_bytes())).unwrap(),
            *want,
            "{input}"
        );
        assert_eq!(outcome.value().is_some(), input != want, "{input}");
        let want_events: Vec<_> = events
            .iter()
            .map(|&(name, reason)| (name.to_owned(), QUERY_LOCATION.to_owned(), reason))
            .collect();
        assert_eq!(summary(&outcome), want_events, "{input}");
    }
}

#[test]
fn construction_rejects_bad_placeholders() {
    let mut empty = entry("x", b"v", &["*"]);
    empty.placeholder.clear();
    assert!(matches!(
        Engine::new(vec![empty]),
        Err(EngineError::EmptyPlaceholder { id }) if id == "id-x"
    ));
    let mut spaced = entry("x", b"v", &["*"]);
    spaced.placeholder = "IRONSH PROXY".into();
    assert!(matches!(
        Engine::new(vec![spaced]),
        Err(EngineError::BadPlaceholder { .. })
    ));
    let mut twin = entry("y", b"w", &["*"]);
    twin.placeholder = "IRONSH_PROXY_x".into();
    let err = Engine::new(vec![entry("x", b"v", &["*"]), twin]).unwrap_err();
    assert!(
        matches!(&err, EngineError::DuplicatePlaceholder { placeholder, first, second }
            if placeholder == "IRONSH_PROXY_x" && first == "id-x" && second == "id-y"),
        "{err:?}"
    );
}

#[test]
fn an_empty_engine_changes_nothing() {
    let engine: Engine<Vec<u8>> = Engine::new(Vec::new()).unwrap();
    let outcome = engine.rewrite_header("x-token", b"IRONSH_PROXY_gh", &target(IN_SCOPE).into());
    assert!(outcome.value().is_none() && outcome.events().is_empty());
    let outcome = engine.rewrite_query(b"/?IRONSH_PROXY_gh", &target(IN_SCOPE).into());
    assert!(outcome.value().is_none() && outcome.events().is_empty());
}

#[test]
fn debug_never_shows_secrets() {
    let engine = engine(table_entries(false));
    let debug = format!("{engine:?}");
    assert!(
        debug.contains("IRONSH_PROXY_gh") && debug.contains("<redacted>"),
        "{debug}"
    );
    for secret in TABLE_SECRETS {
        assert!(!debug.contains(secret), "{debug}");
    }
    let outcome = engine.rewrite_header("x-token", b"IRONSH_PROXY_gh", &target(IN_SCOPE).into());
    assert_eq!(
        format!("{outcome:?}"),
        "Outcome { value: Some(<redacted>), events: [Injected { secret_id: \"id-gh\", \
         secret_name: \"gh\", header: \"x-token\" }] }"
    );
    let (value, events) = outcome.into_parts();
    assert_eq!(
        value.as_deref().map(Vec::as_slice),
        Some(b"GH-SECRET".as_slice())
    );
    assert_eq!(format!("{:?}", events[0]).matches("SECRET").count(), 0);
}
