//! Fuzzes the placeholder engine: a few secrets and a value derived from the input; the engine
//! must not panic, and must leave the value byte for byte as it was unless a complete in-scope
//! placeholder occurs in it.

#![no_main]

use std::sync::Arc;

use base64::{
    engine::general_purpose::{STANDARD, STANDARD_NO_PAD, STANDARD_PAD_INDIFFERENT},
    Engine as _,
};
use libfuzzer_sys::fuzz_target;
use veil_core::{
    host_pattern::HostPattern,
    inject::{Engine, Entry, Event, Outcome, Slots, Target},
};

const NAME_BYTES: &[u8] = b"ab-._P";
const PATTERNS: &[&str] = &["*", "a.x.com", "*.x.com", "y.org"];
const HOSTS: &[&str] = &["a.x.com", "A.X.COM.", "x.com", "b.a.x.com", "y.org"];
const HEADERS: &[&str] = &["x-token", "authorization", "Proxy-Authorization", "cookie"];

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let entries = entries(&mut input);
    let secrets: Vec<Secret> = entries.iter().map(Secret::from).collect();
    let placeholders: Vec<&[u8]> = secrets
        .iter()
        .map(|secret| secret.placeholder.as_slice())
        .chain([b"P_".as_slice(), b"P_ab-"])
        .collect();
    let Ok(engine) = Engine::new(entries) else {
        return;
    };
    let host = HOSTS[usize::from(input.byte()) % HOSTS.len()];
    let target = if input.byte() % 8 == 0 {
        Target::Unverified
    } else {
        Target::VerifiedTls { host }
    };
    let header = HEADERS[usize::from(input.byte()) % HEADERS.len()];
    let shape = input.byte() % 4;
    let plain = value(&mut input, &placeholders);

    let value = match shape {
        0 => format!("Basic {}", STANDARD.encode(&plain)).into_bytes(),
        1 => format!("basic  {}", STANDARD_NO_PAD.encode(&plain)).into_bytes(),
        _ => plain.clone(),
    };
    let outcome = engine.rewrite_header(header, &value, &target.into());
    check(&outcome);
    let text = credentials(header, &value).unwrap_or_else(|| value.clone());
    if !injectable(&secrets, &text, 0..text.len(), false, target) {
        assert_eq!(outcome.value(), None, "{header}: {value:?}");
    }

    let request_target = [b"/p?".as_slice(), &plain].concat();
    let outcome = engine.rewrite_query(&request_target, &target.into());
    check(&outcome);
    let end = request_target
        .iter()
        .position(|&b| b == b'#')
        .unwrap_or(request_target.len());
    if !injectable(&secrets, &request_target, 3..end, true, target) {
        assert_eq!(outcome.value(), None, "{request_target:?}");
    }
});

/// Reads the input a byte at a time, then zeros.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let (&first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        first
    }
}

/// One to four secrets with short names over a small alphabet, so names overlap often.
fn entries(input: &mut Bytes<'_>) -> Vec<Entry<Vec<u8>>> {
    (0..1 + input.byte() % 4)
        .map(|i| {
            let name: String = (0..1 + input.byte() % 3)
                .map(|_| NAME_BYTES[usize::from(input.byte()) % NAME_BYTES.len()] as char)
                .collect();
            let value: Vec<u8> = (0..input.byte() % 6).map(|_| input.byte()).collect();
            let scope_bits = input.byte();
            let scope = PATTERNS
                .iter()
                .enumerate()
                .filter(|(bit, _)| scope_bits & (1 << bit) != 0)
                .map(|(_, pattern)| HostPattern::parse(pattern).unwrap())
                .collect();
            Entry {
                id: format!("id{i}"),
                placeholder: format!("P_{name}"),
                name,
                scope,
                slots: Slots {
                    query: scope_bits & 0x80 != 0,
                    ..Slots::default()
                },
                route: Default::default(),
                value: Arc::new(value),
            }
        })
        .collect()
}

/// The rest of the input as a value: bytes from 0xF0 up stand for a placeholder (of a secret or
/// not), the others for themselves.
fn value(input: &mut Bytes<'_>, placeholders: &[&[u8]]) -> Vec<u8> {
    let mut value = Vec::new();
    for &byte in input.0 {
        match byte.checked_sub(0xF0) {
            Some(index) => {
                value.extend_from_slice(placeholders[usize::from(index) % placeholders.len()])
            }
            None => value.push(byte),
        }
    }
    value
}

/// The decoded Basic credentials, when the engine must look inside them.
fn credentials(header: &str, value: &[u8]) -> Option<Vec<u8>> {
    let lower = header.to_ascii_lowercase();
    if lower != "authorization" && lower != "proxy-authorization" {
        return None;
    }
    let rest = value
        .get(5..)
        .filter(|_| value[..5].eq_ignore_ascii_case(b"basic"))?;
    let spaces = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    if spaces == 0 {
        return None;
    }
    STANDARD_PAD_INDIFFERENT.decode(&rest[spaces..]).ok()
}

/// Whether a complete placeholder of a secret that may be injected here occurs in `span`.
fn injectable(
    secrets: &[Secret],
    text: &[u8],
    span: std::ops::Range<usize>,
    query: bool,
    target: Target<'_>,
) -> bool {
    let Target::VerifiedTls { host } = target else {
        return false;
    };
    span.clone().any(|at| {
        secrets.iter().any(|entry| {
            let placeholder = entry.placeholder.as_slice();
            let end = at + placeholder.len();
            end <= span.end
                && &text[at..end] == placeholder
                && text
                    .get(end)
                    .is_none_or(|b| !(b.is_ascii_alphanumeric() || b"_.-".contains(b)))
                && (!query || entry.inject_query)
                && entry.scope.iter().any(|pattern| pattern.matches(host))
                && entry
                    .value
                    .iter()
                    .all(|&b| b == b'\t' || !b.is_ascii_control())
        })
    })
}

/// What the oracle keeps of a secret.
struct Secret {
    placeholder: Vec<u8>,
    scope: Vec<HostPattern>,
    inject_query: bool,
    value: Vec<u8>,
}

impl From<&Entry<Vec<u8>>> for Secret {
    fn from(entry: &Entry<Vec<u8>>) -> Self {
        Self {
            placeholder: entry.placeholder.clone().into_bytes(),
            scope: entry.scope.clone(),
            inject_query: entry.slots.query,
            value: entry.value.to_vec(),
        }
    }
}

/// The outcome is consistent: a new value exactly when something was injected.
fn check(outcome: &Outcome) {
    let injected = outcome
        .events()
        .iter()
        .any(|event| matches!(event, Event::Injected { .. }));
    assert_eq!(outcome.value().is_some(), injected);
}
