//! Request bodies: placeholders in form fields and JSON string values, rewritten as the body
//! streams. Pure.
//!
//! A [`BodyRewriter`] is fed the body piece by piece and hands back what may be sent on, with
//! an [`Event`] per placeholder found. It holds back no more than a placeholder's length of a
//! value (plus an unfinished escape), so a placeholder split across reads is still found and
//! memory stays bounded. Each body is tokenized strictly:
//!
//! - `application/x-www-form-urlencoded` ([`BodyKind::Form`]): `name=value&...`; names and
//!   values are percent-decoded (`+` is a space) to match, a placeholder in a value becomes the
//!   percent-encoded secret; a bad `%` escape is an error.
//! - `application/json` and `*/*+json` ([`BodyKind::Json`]): one JSON value, checked as it
//!   streams; string values (not keys) are decoded (escapes included) to match, a placeholder
//!   becomes the JSON-escaped secret; nesting deeper than [`MAX_DEPTH`] is an error.
//!
//! Secrets whose slot names fields or pointers ([`BodyRewriter::needs_whole_body`]) need the
//! caller to hold the output until [`BodyRewriter::finish`] succeeds, so a malformed body is
//! never forwarded half-rewritten.

mod form;
mod json;
mod pointer;
mod sink;

use std::sync::Arc;

use zeroize::Zeroizing;

pub use pointer::{Pointer, PointerError};

use self::sink::{Held, Sink};
use super::{scan::judge, Engine, Event, Reason, Request};

/// Deepest JSON nesting accepted.
pub const MAX_DEPTH: usize = 256;

/// The body formats veil rewrites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `application/json`, or a `+json` type.
    Json,
}

/// What feeding a piece of body gave: bytes to send on and the placeholders found.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Bytes to send on (zeroized when dropped: they may hold a secret).
    pub bytes: Zeroizing<Vec<u8>>,
    /// One event per complete placeholder in a covered value, in order.
    pub events: Vec<Event>,
}

/// Why a body cannot be rewritten; nothing more of it may be forwarded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not well-formed for its content type.
    #[error("malformed {kind} body at byte {at}: {what}")]
    Malformed {
        /// `form` or `JSON`.
        kind: &'static str,
        /// The offset of the offending byte.
        at: u64,
        /// What was wrong.
        what: &'static str,
    },
}

/// Rewrites one request body. Built by [`Engine::body_rewriter`].
pub struct BodyRewriter<V> {
    engine: Arc<Engine<V>>,
    /// Per entry: `None` if it has no slot of this kind, else its verdict for the request.
    verdicts: Vec<Option<Option<Reason>>>,
    tokens: Tokens,
    held: Held,
    whole: bool,
}

/// The tokenizer for the body's kind.
enum Tokens {
    Form(form::Form),
    Json(json::Json),
}

impl BodyKind {
    /// The kind a `Content-Type` value names, if veil rewrites it.
    pub fn of_content_type(value: &[u8]) -> Option<Self> {
        let media = value.split(|&b| b == b';').next().unwrap_or_default();
        let media = String::from_utf8_lossy(media).trim().to_ascii_lowercase();
        if media == "application/x-www-form-urlencoded" {
            Some(Self::Form)
        } else if media == "application/json"
            || (media.starts_with("application/") && media.ends_with("+json"))
        {
            Some(Self::Json)
        } else {
            None
        }
    }
}

impl<V: AsRef<[u8]>> Engine<V> {
    /// A rewriter for a `kind` body of `request`, or `None` when no secret with a slot of that
    /// kind may be injected into it (then the body needs no scanning).
    pub fn body_rewriter(
        self: &Arc<Self>,
        kind: BodyKind,
        request: &Request<'_>,
    ) -> Option<BodyRewriter<V>> {
        let verdicts: Vec<_> = self
            .entries
            .iter()
            .map(|entry| {
                let has = match kind {
                    BodyKind::Form => entry.slots.form.is_some(),
                    BodyKind::Json => entry.slots.json.is_some(),
                };
                has.then(|| judge(entry, request))
            })
            .collect();
        let mut injecting = self
            .entries
            .iter()
            .zip(&verdicts)
            .filter(|(_, verdict)| matches!(verdict, Some(None)))
            .map(|(entry, _)| entry)
            .peekable();
        injecting.peek()?;
        let whole = injecting.any(|entry| match kind {
            BodyKind::Form => entry.slots.form.as_ref().is_some_and(|n| n.is_only()),
            BodyKind::Json => matches!(entry.slots.json, Some(super::Pointers::Only(_))),
        });
        let longest = self
            .entries
            .iter()
            .map(|entry| entry.placeholder.len())
            .max()
            .unwrap_or(0);
        Some(BodyRewriter {
            engine: Arc::clone(self),
            verdicts,
            tokens: match kind {
                BodyKind::Form => Tokens::Form(form::Form::default()),
                BodyKind::Json => Tokens::Json(json::Json::default()),
            },
            held: Held::new(longest),
            whole,
        })
    }
}

impl<V: AsRef<[u8]>> BodyRewriter<V> {
    /// Whether a secret covers only named fields or pointers: then the output must be held
    /// until [`finish`](Self::finish) succeeds, and the body is refused past the caller's
    /// size limit.
    pub fn needs_whole_body(&self) -> bool {
        self.whole
    }

    /// Feeds the next piece of the body. Runs of bytes that stand for themselves inside a
    /// string, name or value are taken at once; the rest byte by byte.
    pub fn feed(&mut self, input: &[u8]) -> Result<Chunk, BodyError> {
        let mut sink = Sink::new(&self.engine, &self.verdicts, &mut self.held);
        sink.reserve(input.len());
        let mut rest = input;
        while let Some((&byte, after)) = rest.split_first() {
            let plain = match &self.tokens {
                Tokens::Form(form) => form.plain_len(rest),
                Tokens::Json(json) => json.plain_len(rest),
            };
            if plain > 0 {
                let (bytes, after) = rest.split_at(plain);
                sink.push_all(bytes);
                match &mut self.tokens {
                    Tokens::Form(form) => form.plain(bytes, &mut sink),
                    Tokens::Json(json) => json.plain(bytes, &mut sink),
                }
                rest = after;
                continue;
            }
            sink.push(byte);
            match &mut self.tokens {
                Tokens::Form(form) => form.step(byte, &mut sink)?,
                Tokens::Json(json) => json.step(byte, &mut sink)?,
            }
            rest = after;
        }
        Ok(sink.flush(false))
    }

    /// Ends the body: checks that it is complete and hands back what was held.
    pub fn finish(&mut self) -> Result<Chunk, BodyError> {
        let mut sink = Sink::new(&self.engine, &self.verdicts, &mut self.held);
        match &mut self.tokens {
            Tokens::Form(form) => form.finish(&mut sink)?,
            Tokens::Json(json) => json.finish(&mut sink)?,
        }
        Ok(sink.flush(true))
    }
}

#[cfg(test)]
mod tests;
