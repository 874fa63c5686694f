//! A seeded random check against a naive model: never panics, always agrees with the model,
//! and leaves a value byte for byte as it was when no complete in-scope placeholder occurs.

use std::{ops::Range, sync::Arc};

use base64::{
    engine::general_purpose::{STANDARD, STANDARD_NO_PAD, STANDARD_PAD_INDIFFERENT},
    Engine as _,
};

use super::{output, summary};
use crate::{
    host_pattern::HostPattern,
    inject::{Engine, Entry, Reason, Target, QUERY_LOCATION},
};

const ROUNDS: usize = 10_000;
const PATTERNS: &[&str] = &["*", "a.x.com", "*.x.com", "y.org"];
const HOSTS: &[&str] = &["a.x.com", "A.X.COM.", "x.com", "b.a.x.com", "y.org"];
const NAME_BYTES: &[u8] = b"ab-._P";
const OTHER_BYTES: &[u8] = b"/ \",;:=&?#%";

#[test]
fn random_values_agree_with_the_model() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for round in 0..ROUNDS {
        let entries = random_entries(&mut rng);
        let model_entries: Vec<_> = entries.iter().map(ModelEntry::from).collect();
        let engine = Engine::new(entries).unwrap();
        let host = HOSTS[rng.below(HOSTS.len())];
        let target = if rng.chance(15) {
            Target::Unverified
        } else {
            Target::VerifiedTls { host }
        };
        let plain = random_value(&mut rng, &model_entries);

        let (header, value) = random_header(&mut rng, &plain);
        let outcome = engine.rewrite_header(header, &value, &target.into());
        let (want, want_events, injectable) = model_header(&model_entries, header, &value, target);
        let context = || format!("round {round}: {header}: {value:?} to {target:?}");
        if !injectable {
            assert_eq!(outcome.value(), None, "{}", context());
        }
        assert_eq!(output(&outcome, &value), want, "{}", context());
        assert_eq!(
            summary(&outcome),
            named(want_events, header),
            "{}",
            context()
        );

        let request_target = [b"/p?".as_slice(), &plain].concat();
        let outcome = engine.rewrite_query(&request_target, &target.into());
        let span = 3..model_query_end(&request_target);
        let (want, want_events, injectable) =
            model(&model_entries, &request_target, span, true, target);
        if !injectable {
            assert_eq!(outcome.value(), None, "round {round}: {request_target:?}");
        }
        assert_eq!(output(&outcome, &request_target), want, "round {round}");
        assert_eq!(summary(&outcome), named(want_events, QUERY_LOCATION));
    }
}

/// xorshift64*: small, seeded, good enough to shake out cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn byte_from(&mut self, bytes: &[u8]) -> u8 {
        bytes[self.below(bytes.len())]
    }
}

fn random_name(rng: &mut Rng) -> String {
    let len = 1 + rng.below(3);
    (0..len)
        .map(|_| rng.byte_from(NAME_BYTES) as char)
        .collect()
}

fn random_entries(rng: &mut Rng) -> Vec<Entry<Vec<u8>>> {
    let mut entries: Vec<Entry<Vec<u8>>> = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let name = random_name(rng);
        if entries.iter().any(|entry| entry.name == name) {
            continue;
        }
        let value = (0..rng.below(7))
            .map(|_| {
                if rng.chance(80) {
                    rng.byte_from(b"SECRETsecret0123+/=")
                } else {
                    rng.next() as u8
                }
            })
            .collect();
        let scope = (0..rng.below(3))
            .map(|_| HostPattern::parse(PATTERNS[rng.below(PATTERNS.len())]).unwrap())
            .collect();
        entries.push(Entry {
            id: format!("id-{name}"),
            placeholder: format!("P_{name}"),
            name,
            scope,
            slots: crate::inject::Slots {
                query: rng.chance(50),
                ..crate::inject::Slots::default()
            },
            route: crate::route::RouteScope::default(),
            value: Arc::new(value),
        });
    }
    entries
}

/// Pieces of placeholders (of secrets and not), name bytes, boundary bytes and any bytes.
fn random_value(rng: &mut Rng, entries: &[ModelEntry]) -> Vec<u8> {
    let mut value = Vec::new();
    for _ in 0..rng.below(7) {
        match rng.below(5) {
            0 | 1 => {
                let entry = &entries[rng.below(entries.len())];
                value.extend_from_slice(&entry.placeholder);
            }
            2 => value.extend_from_slice(format!("P_{}", random_name(rng)).as_bytes()),
            3 => value.push(rng.byte_from(NAME_BYTES)),
            _ if rng.chance(70) => value.push(rng.byte_from(OTHER_BYTES)),
            _ => value.push(rng.next() as u8),
        }
    }
    value
}

/// A header name and value carrying `plain`, sometimes as Basic credentials.
fn random_header(rng: &mut Rng, plain: &[u8]) -> (&'static str, Vec<u8>) {
    let header = ["x-token", "authorization", "Proxy-Authorization"][rng.below(3)];
    let value = match rng.below(4) {
        0 => plain.to_vec(),
        1 => format!("Basic {}", STANDARD.encode(plain)).into_bytes(),
        2 => format!("basic\t{}", STANDARD_NO_PAD.encode(plain)).into_bytes(),
        _ => [b"Basic ".as_slice(), plain].concat(),
    };
    (header, value)
}

/// A secret as the model sees it.
struct ModelEntry {
    name: String,
    placeholder: Vec<u8>,
    scope: Vec<HostPattern>,
    inject_query: bool,
    value: Vec<u8>,
}

impl From<&Entry<Vec<u8>>> for ModelEntry {
    fn from(entry: &Entry<Vec<u8>>) -> Self {
        Self {
            name: entry.name.clone(),
            placeholder: entry.placeholder.clone().into_bytes(),
            scope: entry.scope.clone(),
            inject_query: entry.slots.query,
            value: entry.value.to_vec(),
        }
    }
}

type ModelEvents = Vec<(String, Option<Reason>)>;

fn named(events: ModelEvents, header: &str) -> Vec<(String, String, Option<Reason>)> {
    events
        .into_iter()
        .map(|(name, reason)| (name, header.to_owned(), reason))
        .collect()
}

/// The model for a header: Basic credentials in the two credential headers when they decode,
/// otherwise plain text. Also says whether a complete in-scope placeholder occurs.
fn model_header(
    entries: &[ModelEntry],
    header: &str,
    value: &[u8],
    target: Target<'_>,
) -> (Vec<u8>, ModelEvents, bool) {
    let lower = header.to_ascii_lowercase();
    let credentials = (lower == "authorization" || lower == "proxy-authorization")
        .then(|| value.get(..6))
        .flatten()
        .filter(|start| {
            start[..5].eq_ignore_ascii_case(b"basic") && (start[5] == b' ' || start[5] == b'\t')
        })
        .map(|_| {
            let spaces = value[5..]
                .iter()
                .take_while(|b| **b == b' ' || **b == b'\t');
            5 + spaces.count()
        })
        .and_then(|at| Some((at, STANDARD_PAD_INDIFFERENT.decode(&value[at..]).ok()?)));
    let Some((at, decoded)) = credentials else {
        return model(entries, value, 0..value.len(), false, target);
    };
    let (new, events, injectable) = model(entries, &decoded, 0..decoded.len(), false, target);
    if new == decoded {
        return (value.to_vec(), events, injectable);
    }
    let encoded = [&value[..at], STANDARD.encode(new).as_bytes()].concat();
    (encoded, events, injectable)
}

/// Where the model thinks a query string ends.
fn model_query_end(request_target: &[u8]) -> usize {
    request_target
        .iter()
        .position(|&b| b == b'#')
        .unwrap_or(request_target.len())
}

/// The naive model: at each position take the longest complete placeholder starting there.
fn model(
    entries: &[ModelEntry],
    haystack: &[u8],
    span: Range<usize>,
    query: bool,
    target: Target<'_>,
) -> (Vec<u8>, ModelEvents, bool) {
    let complete = |end: usize| {
        haystack
            .get(end)
            .is_none_or(|b| !(b.is_ascii_alphanumeric() || b"_.-".contains(b)))
    };
    let mut out = haystack[..span.start].to_vec();
    let mut events = Vec::new();
    let mut injectable = false;
    let mut at = span.start;
    while at < span.end {
        let found = entries
            .iter()
            .filter(|entry| {
                let end = at + entry.placeholder.len();
                end <= span.end && haystack[at..end] == entry.placeholder[..] && complete(end)
            })
            .max_by_key(|entry| entry.placeholder.len());
        let Some(entry) = found else {
            out.push(haystack[at]);
            at += 1;
            continue;
        };
        at += entry.placeholder.len();
        if query && !entry.inject_query {
            out.extend_from_slice(&entry.placeholder);
            continue;
        }
        let reason = model_judge(entry, target);
        injectable |= reason.is_none();
        events.push((entry.name.clone(), reason));
        match reason {
            Some(_) => out.extend_from_slice(&entry.placeholder),
            None if query => {
                for &b in &entry.value {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        out.push(b);
                    } else {
                        out.extend_from_slice(format!("%{b:02X}").as_bytes());
                    }
                }
            }
            None => out.extend_from_slice(&entry.value),
        }
    }
    out.extend_from_slice(&haystack[span.end..]);
    (out, events, injectable)
}

fn model_judge(entry: &ModelEntry, target: Target<'_>) -> Option<Reason> {
    match target {
        Target::Unverified => Some(Reason::NotTls),
        Target::VerifiedTls { host } if !entry.scope.iter().any(|p| p.matches(host)) => {
            Some(Reason::OutOfScope)
        }
        Target::VerifiedTls { .. }
            if entry
                .value
                .iter()
                .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) =>
        {
            Some(Reason::IllegalBytes)
        }
        Target::VerifiedTls { .. } => None,
    }
}
