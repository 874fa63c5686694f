//! A table per form: what real encoders write for a secret is replaced by what they write for
//! its placeholder. The encoded texts are what Python, Node.js, PHP and Go print.

use base64::{
    engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD},
    Engine as _,
};

use super::{basic_entry, contains, counts, entry, one_shot, scrubber, streamed};
use crate::scrub::{Scrubber, ScrubberError};

/// A value with a byte of every kind the encoders treat differently.
const VALUE: &str = "p@ss wörd/+\"\\<&~!*'()\u{2028}😀";
const PLACEHOLDER: &str = "IRONSH_PROXY_pw";

/// `(what, the form of VALUE, the same form of PLACEHOLDER)`.
const FORMS: &[(&str, &str, &str)] = &[
    ("raw", VALUE, PLACEHOLDER),
    (
        "encodeURIComponent",
        "p%40ss%20w%C3%B6rd%2F%2B%22%5C%3C%26~!*'()%E2%80%A8%F0%9F%98%80",
        PLACEHOLDER,
    ),
    (
        "encodeURIComponent, lower-case hex",
        "p%40ss%20w%c3%b6rd%2f%2b%22%5c%3c%26~!*'()%e2%80%a8%f0%9f%98%80",
        PLACEHOLDER,
    ),
    (
        "URLSearchParams",
        "p%40ss+w%C3%B6rd%2F%2B%22%5C%3C%26%7E%21*%27%28%29%E2%80%A8%F0%9F%98%80",
        PLACEHOLDER,
    ),
    (
        "Python quote",
        "p%40ss%20w%C3%B6rd/%2B%22%5C%3C%26~%21%2A%27%28%29%E2%80%A8%F0%9F%98%80",
        PLACEHOLDER,
    ),
    (
        "Python quote, safe=''",
        "p%40ss%20w%C3%B6rd%2F%2B%22%5C%3C%26~%21%2A%27%28%29%E2%80%A8%F0%9F%98%80",
        PLACEHOLDER,
    ),
    (
        "Python quote_plus",
        "p%40ss+w%C3%B6rd%2F%2B%22%5C%3C%26~%21%2A%27%28%29%E2%80%A8%F0%9F%98%80",
        PLACEHOLDER,
    ),
    (
        "Python quote_plus, lower-case hex",
        "p%40ss+w%c3%b6rd%2f%2b%22%5c%3c%26~%21%2a%27%28%29%e2%80%a8%f0%9f%98%80",
        PLACEHOLDER,
    ),
    (
        "serde_json, JSON.stringify",
        "p@ss wörd/+\\\"\\\\<&~!*'()\u{2028}😀",
        PLACEHOLDER,
    ),
    (
        "escaped solidus",
        "p@ss wörd\\/+\\\"\\\\<&~!*'()\u{2028}😀",
        PLACEHOLDER,
    ),
    (
        "Python json.dumps",
        r#"p@ss w\u00f6rd/+\"\\<&~!*'()\u2028\ud83d\ude00"#,
        PLACEHOLDER,
    ),
    (
        "PHP json_encode",
        r#"p@ss w\u00f6rd\/+\"\\<&~!*'()\u2028\ud83d\ude00"#,
        PLACEHOLDER,
    ),
    (
        "ASCII-only JSON, upper-case hex",
        r#"p@ss w\u00F6rd/+\"\\<&~!*'()\u2028\uD83D\uDE00"#,
        PLACEHOLDER,
    ),
    (
        "Go encoding/json",
        "p@ss wörd/+\\\"\\\\\\u003c\\u0026~!*'()\\u2028😀",
        PLACEHOLDER,
    ),
];

#[test]
fn every_form_becomes_the_same_form_of_the_placeholder() {
    let scrubber = scrubber(vec![entry("pw", VALUE.as_bytes())]);
    let mut cases: Vec<(String, String, String)> = FORMS
        .iter()
        .map(|&(what, form, replacement)| {
            (what.to_owned(), form.to_owned(), replacement.to_owned())
        })
        .collect();
    for (what, padded, unpadded) in [
        ("standard base64", STANDARD, STANDARD_NO_PAD),
        ("URL-safe base64", URL_SAFE, URL_SAFE_NO_PAD),
    ] {
        for (how, engine) in [("padded", padded), ("unpadded", unpadded)] {
            cases.push((
                format!("{what}, {how}"),
                engine.encode(VALUE),
                engine.encode(PLACEHOLDER),
            ));
        }
    }
    for (what, upper) in [
        ("every byte, upper-case", true),
        ("every byte, lower-case", false),
    ] {
        cases.push((
            what.to_owned(),
            every_byte(VALUE, upper),
            every_byte(PLACEHOLDER, upper),
        ));
    }
    for (what, form, replacement) in &cases {
        let input = format!("{{\"before\": 1, \"x\": \"{form}\"}} after");
        let want = format!("{{\"before\": 1, \"x\": \"{replacement}\"}} after");
        let (out, found) = scrubber.scrub(input.as_bytes()).expect(what);
        assert_eq!(String::from_utf8_lossy(&out), want, "{what}");
        assert_eq!(counts(&found), [("pw".to_owned(), 1)], "{what}");
        let (streamed_out, streamed_found, _) = streamed(&scrubber, input.as_bytes(), &[1; 64]);
        assert_eq!(streamed_out, out, "{what}");
        assert_eq!(streamed_found, found, "{what}");
    }
}

#[test]
fn the_json_forms_are_what_serde_json_writes() {
    let json = serde_json::to_string(VALUE).unwrap();
    assert_eq!(&json[1..json.len() - 1], FORMS[8].1);
}

#[test]
fn base64_alphabets_differ_where_they_should() {
    // "~~~?>>" encodes to `fn5+Pz4+` and `fn5-Pz4-`.
    let scrubber = scrubber(vec![entry("b", b"~~~?>>")]);
    for (input, want) in [
        ("x fn5+Pz4+ y", STANDARD.encode("IRONSH_PROXY_b")),
        ("x fn5-Pz4- y", URL_SAFE.encode("IRONSH_PROXY_b")),
    ] {
        let (out, _) = one_shot(&scrubber, input.as_bytes());
        assert_eq!(String::from_utf8(out).unwrap(), format!("x {want} y"));
    }
}

#[test]
fn a_derived_basic_credential_becomes_the_placeholder_credential() {
    let scrubber = scrubber(vec![basic_entry("gh", "alice", b"GHSECRET123")]);
    for engine in [STANDARD, STANDARD_NO_PAD] {
        let input = format!(
            "Authorization: Basic {}\r\n",
            engine.encode("alice:GHSECRET123")
        );
        let want = format!(
            "Authorization: Basic {}\r\n",
            engine.encode("alice:IRONSH_PROXY_gh")
        );
        let (out, found) = scrubber.scrub(input.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), want);
        assert_eq!(counts(&found), [("gh".to_owned(), 1)]);
    }
}

#[test]
fn a_value_base64_encoded_inside_anything_is_caught_at_every_offset() {
    let value = b"GHSECRET1234";
    // A placeholder as long as the value modulo 3, so the scrubbed text decodes cleanly.
    let name = "ab";
    let placeholder = format!("IRONSH_PROXY_{name}");
    assert_eq!(placeholder.len() % 3, value.len() % 3);
    let scrubber = scrubber(vec![entry(name, value)]);
    for before in 0..7 {
        for after in 0..4 {
            let plaintext = [
                &b"user:xyz"[..before.min(8)],
                value,
                &b"\x00\xff\x10"[..after],
            ]
            .concat();
            for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
                let encoded = engine.encode(&plaintext);
                let (out, found) = scrubber
                    .scrub(encoded.as_bytes())
                    .unwrap_or_else(|| panic!("{before} {after} {encoded}"));
                assert_eq!(counts(&found), [(name.to_owned(), 1)]);
                let decoded = engine.decode(&out).unwrap();
                assert!(!contains(&decoded, value), "{before} {after}");
                let inner = &placeholder.as_bytes()[1..placeholder.len() - 1];
                assert!(contains(&decoded, inner), "{before} {after}");
            }
        }
    }
}

#[test]
fn counts_every_occurrence_of_every_secret() {
    let scrubber = scrubber(vec![
        entry("a", b"alpha-secret"),
        entry("b", b"beta-secret"),
    ]);
    let input = format!(
        "alpha-secret {} beta-secret (alpha-secret) {}",
        STANDARD.encode("alpha-secret"),
        STANDARD.encode("beta-secret")
    );
    let (_, found) = scrubber.scrub(input.as_bytes()).unwrap();
    assert_eq!(counts(&found), [("a".to_owned(), 3), ("b".to_owned(), 2)]);
    assert_eq!(found.total(), 5);
}

#[test]
fn refuses_empty_plaintexts() {
    let err = Scrubber::new(vec![entry("e", b"")]).unwrap_err();
    assert!(matches!(err, ScrubberError::EmptyPlaintext { id } if id == "id-e"));
    let mut derived = basic_entry("d", "u", b"value");
    derived.derived[0].plaintext.clear();
    assert!(Scrubber::new(vec![derived]).is_err());
}

#[test]
fn no_secret_no_copy_and_byte_for_byte() {
    let scrubber = scrubber(vec![entry("pw", VALUE.as_bytes())]);
    let input: Vec<u8> = (0..=255).cycle().take(4096).collect();
    assert!(scrubber.scrub(&input).is_none());
    let (out, found, _) = streamed(&scrubber, &input, &[1, 2, 3, 100, 7]);
    assert_eq!(out, input);
    assert!(found.is_empty());
    for empty in [
        Scrubber::empty(),
        Scrubber::new(Vec::<super::super::Entry<Vec<u8>>>::new()).unwrap(),
    ] {
        let empty = std::sync::Arc::new(empty);
        assert!(empty.scrub(VALUE.as_bytes()).is_none());
        let (out, found, held) = streamed(&empty, &input, &[1, 5, 9]);
        assert_eq!((out, found.is_empty(), held), (input.clone(), true, 0));
    }
}

#[test]
fn debug_output_never_shows_a_secret() {
    let entry = basic_entry("gh", "alice", b"GHSECRET123");
    let debug = format!("{entry:?}");
    assert!(!debug.contains("GHSECRET123"), "{debug}");
    let scrubber = scrubber(vec![entry]);
    let mut stream = scrubber.stream();
    stream.feed(b"xx GHSECRET", &mut Vec::new());
    for debug in [format!("{scrubber:?}"), format!("{stream:?}")] {
        assert!(!debug.contains("GHSECRET"), "{debug}");
    }
}

/// `text` with every byte percent-encoded.
fn every_byte(text: &str, upper: bool) -> String {
    text.bytes()
        .map(|byte| {
            if upper {
                format!("%{byte:02X}")
            } else {
                format!("%{byte:02x}")
            }
        })
        .collect()
}
