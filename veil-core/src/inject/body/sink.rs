//! What the tokenizers drive: the bytes held back, the run of name bytes that may end in a
//! placeholder, and the splice of a secret in its place.

use std::collections::VecDeque;

use zeroize::Zeroizing;

use super::{
    super::{boundary, scan::secret, Engine, Event, Names, Pointers, Reason},
    json::Seg,
    pointer, Chunk,
};
use crate::inject::{query, FORM_LOCATION, JSON_LOCATION};

/// Longest place name an event carries.
const MAX_LOCATION: usize = 256;

/// The value a tokenizer is in, for deciding which secrets it covers.
pub(super) enum Field<'a> {
    /// A form field with this (decoded) name.
    Form(&'a [u8]),
    /// A JSON string value at this path.
    Json(&'a [Seg]),
}

/// A rewriter's state between pieces of a body.
pub(super) struct Held {
    /// Raw bytes not yet handed on, from absolute offset `base`.
    bytes: Vec<u8>,
    base: u64,
    /// Absolute offset of the next byte.
    pos: u64,
    /// The decoded name bytes at the end of the current value (at most `longest`), and the
    /// absolute raw offset each starts at.
    run: VecDeque<u8>,
    run_raw: VecDeque<u64>,
    /// Absolute raw offset just past the run's last byte.
    run_end: u64,
    /// Absolute raw offset of an escape not finished yet.
    escape: Option<u64>,
    /// The current value: which entries it covers and its place name (`None`: covers none).
    value: Option<Value>,
    longest: usize,
    out: Zeroizing<Vec<u8>>,
    events: Vec<Event>,
}

/// The value being read, when some entry covers it.
struct Value {
    location: String,
    covered: Vec<bool>,
}

/// A [`Held`] with what it needs to judge placeholders, for one call.
pub(super) struct Sink<'a, V> {
    engine: &'a Engine<V>,
    verdicts: &'a [Option<Option<Reason>>],
    held: &'a mut Held,
}

impl Held {
    /// Nothing held; placeholders are at most `longest` bytes.
    pub(super) fn new(longest: usize) -> Self {
        Self {
            bytes: Vec::new(),
            base: 0,
            pos: 0,
            run: VecDeque::with_capacity(longest),
            run_raw: VecDeque::with_capacity(longest),
            run_end: 0,
            escape: None,
            value: None,
            longest,
            out: Zeroizing::new(Vec::new()),
            events: Vec::new(),
        }
    }
}

impl<'a, V: AsRef<[u8]>> Sink<'a, V> {
    pub(super) fn new(
        engine: &'a Engine<V>,
        verdicts: &'a [Option<Option<Reason>>],
        held: &'a mut Held,
    ) -> Self {
        Self {
            engine,
            verdicts,
            held,
        }
    }

    /// Makes room for `n` more input bytes, held and handed on, at once rather than growing
    /// (and copying, unzeroized) byte run by byte run.
    pub(super) fn reserve(&mut self, n: usize) {
        self.held.bytes.reserve(n);
        self.held.out.reserve(n);
    }

    /// Takes the next raw byte (before the tokenizer sees it).
    pub(super) fn push(&mut self, byte: u8) {
        self.push_all(&[byte]);
    }

    /// Takes the next raw `bytes` at once (before the tokenizer sees them).
    pub(super) fn push_all(&mut self, bytes: &[u8]) {
        self.held.bytes.extend_from_slice(bytes);
        self.held.pos += bytes.len() as u64;
    }

    /// The absolute offset of the byte being tokenized.
    pub(super) fn at(&self) -> u64 {
        self.held.pos - 1
    }

    /// How many bytes were taken.
    pub(super) fn len(&self) -> u64 {
        self.held.pos
    }

    /// An escape starts at the current byte: hold it until it ends.
    pub(super) fn escape_started(&mut self) {
        self.held.escape = Some(self.at());
    }

    /// The escape that started at `start` ends with the current byte.
    pub(super) fn escape_ended(&mut self) -> u64 {
        self.held.escape.take().unwrap_or(self.at())
    }

    /// A value starts: decide which secrets cover it.
    pub(super) fn start_value(&mut self, field: Field<'_>) {
        let mut any = false;
        let covered: Vec<bool> = self
            .engine
            .entries
            .iter()
            .zip(self.verdicts)
            .map(|(entry, verdict)| {
                let covers = verdict.is_some()
                    && match &field {
                        Field::Form(name) => entry.slots.form.as_ref().is_some_and(|n| match n {
                            Names::Any => true,
                            Names::Only(_) => n.allows(name),
                        }),
                        Field::Json(path) => entry.slots.json.as_ref().is_some_and(|p| match p {
                            Pointers::Any => true,
                            Pointers::Only(pointers) => {
                                pointers.iter().any(|p| matches_path(p.tokens(), path))
                            }
                        }),
                    };
                any |= covers;
                covers
            })
            .collect();
        self.held.value = any.then(|| Value {
            location: location(&field),
            covered,
        });
    }

    /// A decoded byte of the current value whose raw form started at `raw_start` and ends
    /// with the current byte.
    pub(super) fn decoded(&mut self, byte: u8, raw_start: u64) {
        if self.held.value.is_none() {
            return;
        }
        if !boundary::is_name_byte(byte) {
            self.end_run();
            return;
        }
        self.extend_run(&[byte], raw_start);
        // An escape's decoded byte ends where its raw bytes do.
        self.held.run_end = self.held.pos;
    }

    /// The last `bytes` pushed, each its own decoded byte of the current value (no escapes):
    /// the same as [`decoded`](Self::decoded) for each, one run of name bytes at a time.
    pub(super) fn decoded_raw(&mut self, bytes: &[u8]) {
        if self.held.value.is_none() {
            return;
        }
        let first = self.held.pos - bytes.len() as u64;
        let mut from = 0;
        loop {
            let rest = &bytes[from..];
            let names = rest
                .iter()
                .position(|&b| !boundary::is_name_byte(b))
                .unwrap_or(rest.len());
            self.extend_run(&rest[..names], first + from as u64);
            if names == rest.len() {
                return;
            }
            self.end_run();
            from += names + 1;
        }
    }

    /// Adds `names`, name bytes whose raw offsets start at `raw`, to the run: only its last
    /// `longest` bytes are kept.
    fn extend_run(&mut self, names: &[u8], raw: u64) {
        let held = &mut *self.held;
        if names.is_empty() || held.longest == 0 {
            return;
        }
        let keep = names.len().min(held.longest);
        let drop = (held.run.len() + keep).saturating_sub(held.longest);
        held.run.drain(..drop);
        held.run_raw.drain(..drop);
        let skip = names.len() - keep;
        held.run.extend(&names[skip..]);
        held.run_raw
            .extend((skip..names.len()).map(|k| raw + k as u64));
        held.run_end = raw + names.len() as u64;
    }

    /// The current value ends.
    pub(super) fn end_value(&mut self) {
        self.end_run();
        self.held.value = None;
    }

    /// The run of name bytes ends: if it ends in a placeholder the value covers, judge it and
    /// splice the secret in.
    fn end_run(&mut self) {
        let held = &mut *self.held;
        if held.run.is_empty() {
            return;
        }
        let run: &[u8] = held.run.make_contiguous();
        let found = self.engine.next_complete(run, 0, run.len());
        if let (Some((range, index)), Some(value)) = (found, &held.value) {
            if value.covered.get(index).copied().unwrap_or(false) {
                // Invariant: `covered` is only true for entries with a verdict.
                let skip = self.verdicts[index].flatten();
                let entry = &self.engine.entries[index];
                let (secret_id, secret_name, header) =
                    (entry.id.clone(), entry.name.clone(), value.location.clone());
                held.events.push(match skip {
                    None => Event::Injected {
                        secret_id,
                        secret_name,
                        header,
                    },
                    Some(reason) => Event::NotInjected {
                        secret_id,
                        secret_name,
                        header,
                        reason,
                    },
                });
                if skip.is_none() {
                    let start = usize::try_from(held.run_raw[range.start] - held.base)
                        .unwrap_or(usize::MAX);
                    let end = usize::try_from(held.run_end - held.base).unwrap_or(usize::MAX);
                    held.out.extend_from_slice(&held.bytes[..start]);
                    let json = value.location.starts_with(JSON_LOCATION);
                    encode(secret(entry), json, &mut held.out);
                    held.bytes.drain(..end);
                    held.base = held.run_end;
                }
            }
        }
        held.run.clear();
        held.run_raw.clear();
    }

    /// Hands on every byte that can no longer be part of a placeholder (all of them when
    /// `done`), with the events so far.
    pub(super) fn flush(self, done: bool) -> Chunk {
        let held = self.held;
        let keep_from = if done {
            held.pos
        } else {
            [held.run_raw.front().copied(), held.escape]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(held.pos)
        };
        let free = usize::try_from(keep_from - held.base).unwrap_or(usize::MAX);
        held.out.extend_from_slice(&held.bytes[..free]);
        held.bytes.drain(..free);
        held.base = keep_from;
        Chunk {
            bytes: std::mem::take(&mut held.out),
            events: std::mem::take(&mut held.events),
        }
    }
}

/// Whether pointer `tokens` name exactly `path`.
fn matches_path(tokens: &[String], path: &[Seg]) -> bool {
    tokens.len() == path.len()
        && tokens.iter().zip(path).all(|(token, seg)| match seg {
            Seg::Key(key) => key.matches(token),
            Seg::Index(i) => *token == i.to_string(),
        })
}

/// The place name of a value, shortened to [`MAX_LOCATION`].
fn location(field: &Field<'_>) -> String {
    let mut out = String::new();
    match field {
        Field::Form(name) => {
            out.push_str(FORM_LOCATION);
            out.push_str(&String::from_utf8_lossy(name));
        }
        Field::Json(path) => {
            out.push_str(JSON_LOCATION);
            for seg in *path {
                out.push('/');
                match seg {
                    Seg::Key(key) => pointer::escape_into(&key.text(), &mut out),
                    Seg::Index(i) => out.push_str(&i.to_string()),
                }
                if out.len() > MAX_LOCATION {
                    break;
                }
            }
        }
    }
    if out.len() > MAX_LOCATION {
        let mut cut = MAX_LOCATION;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out.retain(|c| !c.is_control());
    out
}

/// Appends `secret` JSON-escaped (`json`) or percent-encoded (form) to `out`.
fn encode(secret: &[u8], json: bool, out: &mut Vec<u8>) {
    if !json {
        query::percent_encode_into(secret, out);
        return;
    }
    for chunk in secret.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                c if c.is_ascii_control() => unicode_escape(c as u8, out),
                c => {
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        for &byte in chunk.invalid() {
            // Not UTF-8: JSON cannot carry the byte itself; its Latin-1 code point stands in.
            unicode_escape(byte, out);
        }
    }
}

/// Appends `\u00XX` for `byte`.
fn unicode_escape(byte: u8, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\\u00");
    out.push(HEX[usize::from(byte >> 4)]);
    out.push(HEX[usize::from(byte & 0xf)]);
}
