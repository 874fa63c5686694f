//! Fuzzes the streaming body rewriters (form and JSON): a few secrets with body slots and a
//! body derived from the input, fed whole and cut at input-chosen offsets. They must not
//! panic; every cut must give the same bytes, events and verdict as the whole; a body without
//! an injection must come out byte for byte as it went in; and a JSON body serde_json accepts
//! must be accepted, and come out as JSON serde_json accepts.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use veil_core::{
    host_pattern::HostPattern,
    inject::{
        body::{BodyError, BodyKind},
        Engine, Entry, Event, Request, Slots, Target,
    },
};

const NAME_BYTES: &[u8] = b"ab-._P";
const SLOTS: &[&str] = &[
    r#"["json", "form"]"#,
    r#"[{"json": ["/a", "/a/0", "/~1b"]}]"#,
    r#"[{"form": ["a", "a b"]}]"#,
    r#"["headers"]"#,
];

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let entries = entries(&mut input);
    let placeholders: Vec<Vec<u8>> = entries
        .iter()
        .map(|e| e.placeholder.clone().into_bytes())
        .chain([b"P_".to_vec(), b"P_ab-".to_vec()])
        .collect();
    let Ok(engine) = Engine::new(entries) else {
        return;
    };
    let engine = Arc::new(engine);
    let kind = if input.byte() % 2 == 0 {
        BodyKind::Json
    } else {
        BodyKind::Form
    };
    let cuts: Vec<usize> = (0..input.byte() % 8)
        .map(|_| usize::from(input.byte()))
        .collect();
    let body = body(&mut input, &placeholders);
    let request = Request::from(Target::VerifiedTls { host: "a.x.com" });
    let whole = run(&engine, kind, &request, &body, &[]);
    let mut sorted: Vec<usize> = cuts.into_iter().filter(|&c| c <= body.len()).collect();
    sorted.sort_unstable();
    assert_eq!(run(&engine, kind, &request, &body, &sorted), whole);
    let bytewise: Vec<usize> = (1..body.len()).collect();
    assert_eq!(run(&engine, kind, &request, &body, &bytewise), whole);
    if let Ok((out, events)) = &whole {
        if !events.iter().any(|e| matches!(e, Event::Injected { .. })) {
            assert_eq!(out, &body);
        }
    }
    if kind == BodyKind::Json && serde_json::from_slice::<serde_json::Value>(&body).is_ok() {
        let (out, _) = whole.expect("serde_json's JSON is accepted");
        serde_json::from_slice::<serde_json::Value>(&out).expect("JSON comes out");
    }
});

type Run = Result<(Vec<u8>, Vec<Event>), BodyError>;

fn run(
    engine: &Arc<Engine<Vec<u8>>>,
    kind: BodyKind,
    request: &Request<'_>,
    body: &[u8],
    cuts: &[usize],
) -> Run {
    let Some(mut rewriter) = engine.body_rewriter(kind, request) else {
        return Ok((body.to_vec(), Vec::new()));
    };
    let (mut out, mut events, mut from) = (Vec::new(), Vec::new(), 0);
    for &cut in cuts.iter().chain([&body.len()]) {
        let chunk = rewriter.feed(&body[from..cut])?;
        out.extend_from_slice(&chunk.bytes);
        events.extend(chunk.events);
        from = cut;
    }
    let chunk = rewriter.finish()?;
    out.extend_from_slice(&chunk.bytes);
    events.extend(chunk.events);
    Ok((out, events))
}

/// Reads the input a byte at a time, then zeros.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let (&first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        first
    }
}

/// One to four secrets with short names, values of any bytes, and one of [`SLOTS`].
fn entries(input: &mut Bytes<'_>) -> Vec<Entry<Vec<u8>>> {
    (0..1 + input.byte() % 4)
        .map(|i| {
            let name: String = (0..1 + input.byte() % 3)
                .map(|_| NAME_BYTES[usize::from(input.byte()) % NAME_BYTES.len()] as char)
                .collect();
            let value: Vec<u8> = (0..input.byte() % 6).map(|_| input.byte()).collect();
            let slots = SLOTS[usize::from(input.byte()) % SLOTS.len()];
            Entry {
                id: format!("id{i}"),
                placeholder: format!("P_{name}"),
                name,
                scope: vec![HostPattern::Any],
                slots: Slots::from_json(&serde_json::from_str(slots).unwrap()).unwrap(),
                route: Default::default(),
                value: Arc::new(value),
            }
        })
        .collect()
}

/// The rest of the input as a body: bytes from 0xF0 up stand for a placeholder (of a secret or
/// not), the others for themselves.
fn body(input: &mut Bytes<'_>, placeholders: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    for &byte in input.0 {
        match byte.checked_sub(0xF0) {
            Some(index) => body.extend_from_slice(&placeholders[usize::from(index) % placeholders.len()]),
            None => body.push(byte),
        }
    }
    body
}
