//! A streaming `application/x-www-form-urlencoded` tokenizer: field names decoded for
//! matching, values' decoded bytes handed to the [`Sink`].

use super::{
    sink::{Field, Sink},
    BodyError,
};

/// Longest field name kept for matching; longer names match none.
const MAX_NAME: usize = 1024;

/// The tokenizer's state.
#[derive(Default)]
pub(super) struct Form {
    /// Whether the current field's `=` was seen.
    in_value: bool,
    /// The current field's name, decoded (at most [`MAX_NAME`] bytes, then `long`).
    name: Vec<u8>,
    long: bool,
    /// Hex digits of a `%` escape read so far (`None`: not in one).
    escape: Option<(u8, u8)>,
}

impl Form {
    /// Takes the next byte (already pushed to `sink`).
    pub(super) fn step<V: AsRef<[u8]>>(
        &mut self,
        byte: u8,
        sink: &mut Sink<'_, V>,
    ) -> Result<(), BodyError> {
        if let Some((digits, value)) = self.escape {
            let digit = (byte as char).to_digit(16).ok_or(BodyError::Malformed {
                kind: "form",
                at: sink.at(),
                what: "bad % escape",
            })?;
            // Two hex digits fit in a byte.
            let value = (value << 4) | digit as u8;
            if digits == 0 {
                self.escape = Some((1, value));
            } else {
                self.escape = None;
                let start = sink.escape_ended();
                self.decoded(value, start, sink);
            }
            return Ok(());
        }
        match byte {
            b'%' => {
                sink.escape_started();
                self.escape = Some((0, 0));
            }
            b'&' => self.end_field(sink),
            b'=' if !self.in_value => {
                self.in_value = true;
                let name = if self.long { &b"\0"[..] } else { &self.name };
                sink.start_value(Field::Form(name));
            }
            b'+' => self.decoded(b' ', sink.at(), sink),
            _ => self.decoded(byte, sink.at(), sink),
        }
        Ok(())
    }

    /// How many bytes at the start of `input` stand for themselves in the current name or
    /// value (no escape, separator or `+`): [`plain`](Self::plain) takes them at once.
    pub(super) fn plain_len(&self, input: &[u8]) -> usize {
        if self.escape.is_some() {
            return 0;
        }
        input
            .iter()
            .position(|&b| matches!(b, b'%' | b'&' | b'+') || (b == b'=' && !self.in_value))
            .unwrap_or(input.len())
    }

    /// Takes `bytes`, counted by [`plain_len`](Self::plain_len) and already pushed to `sink`:
    /// the same as stepping through them one by one.
    pub(super) fn plain<V: AsRef<[u8]>>(&mut self, bytes: &[u8], sink: &mut Sink<'_, V>) {
        if self.in_value {
            sink.decoded_raw(bytes);
        } else {
            let room = MAX_NAME - self.name.len();
            self.name.extend_from_slice(&bytes[..bytes.len().min(room)]);
            self.long |= bytes.len() > room;
        }
    }

    /// Ends the body.
    pub(super) fn finish<V: AsRef<[u8]>>(
        &mut self,
        sink: &mut Sink<'_, V>,
    ) -> Result<(), BodyError> {
        if self.escape.is_some() {
            return Err(BodyError::Malformed {
                kind: "form",
                at: sink.len(),
                what: "the body ends inside a % escape",
            });
        }
        self.end_field(sink);
        Ok(())
    }

    fn decoded<V: AsRef<[u8]>>(&mut self, byte: u8, start: u64, sink: &mut Sink<'_, V>) {
        if self.in_value {
            sink.decoded(byte, start);
        } else if self.name.len() < MAX_NAME {
            self.name.push(byte);
        } else {
            self.long = true;
        }
    }

    fn end_field<V: AsRef<[u8]>>(&mut self, sink: &mut Sink<'_, V>) {
        if self.in_value {
            sink.end_value();
        }
        self.in_value = false;
        self.name.clear();
        self.long = false;
    }
}
