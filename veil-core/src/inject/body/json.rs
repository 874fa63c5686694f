//! A streaming JSON tokenizer: checks one JSON value as it streams (a run of bytes that stand
//! for themselves inside a string at once, the rest byte by byte), tracks the path of each
//! string value, and hands string values' decoded bytes to the [`Sink`].

use super::{
    sink::{Field, Sink},
    BodyError, MAX_DEPTH,
};

/// Longest object key kept for matching pointers; longer keys match none.
const MAX_KEY: usize = 1024;

/// One step of the path to a value.
pub(super) enum Seg {
    /// An object member.
    Key(Key),
    /// An array element.
    Index(u64),
}

/// An object key, decoded (escapes to UTF-8, raw bytes as sent).
#[derive(Default)]
pub(super) struct Key {
    bytes: Vec<u8>,
    /// Longer than [`MAX_KEY`], or a lone surrogate in its escapes: matches no pointer.
    unmatchable: bool,
    /// A high surrogate waiting for its low half.
    high: Option<u16>,
}

/// The tokenizer's state.
pub(super) struct Json {
    path: Vec<Seg>,
    expect: Expect,
    lex: Lex,
}

/// What may come next outside a token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value (the document, after `:`, after `,` in an array).
    Value,
    /// A value or `]` (after `[`).
    ValueOrClose,
    /// A key or `}` (after `{`).
    KeyOrClose,
    /// A key (after `,` in an object).
    Key,
    /// `:` after a key.
    Colon,
    /// `,` or the closing bracket, after a member or element.
    CommaOrClose,
    /// Only whitespace: the document is complete.
    End,
}

/// The token being read.
#[derive(Clone, Copy)]
enum Lex {
    None,
    Str { key: bool, escape: Escape },
    Number(Number),
    Literal { word: &'static [u8], at: usize },
}

/// Where in an escape a string is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    Backslash,
    Unicode { digits: u8, value: u16 },
}

/// Where in `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` a number is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Number {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    E,
    ESign,
    Exp,
}

impl Default for Json {
    fn default() -> Self {
        Self {
            path: Vec::new(),
            expect: Expect::Value,
            lex: Lex::None,
        }
    }
}

impl Key {
    /// Whether this key is `token`.
    pub(super) fn matches(&self, token: &str) -> bool {
        !self.unmatchable && self.high.is_none() && self.bytes == token.as_bytes()
    }

    /// The key as far as it decoded, for place names.
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// Empties the key for the next member, keeping its buffer.
    fn clear(&mut self) {
        self.bytes.clear();
        self.unmatchable = false;
        self.high = None;
    }

    fn push_raw(&mut self, byte: u8) {
        self.push_raw_all(&[byte]);
    }

    fn push_raw_all(&mut self, bytes: &[u8]) {
        if self.high.take().is_some() {
            self.unmatchable = true;
        }
        self.push(bytes);
    }

    fn push_unit(&mut self, unit: u16) {
        let c = match (self.high.take(), unit) {
            (None, 0xD800..=0xDBFF) => {
                self.high = Some(unit);
                return;
            }
            (Some(high), 0xDC00..=0xDFFF) => char::from_u32(
                0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(unit) - 0xDC00),
            ),
            (Some(_), _) | (None, 0xDC00..=0xDFFF) => None,
            (None, unit) => char::from_u32(u32::from(unit)),
        };
        match c {
            Some(c) => self.push(c.encode_utf8(&mut [0; 4]).as_bytes()),
            None => self.unmatchable = true,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.bytes.len() + bytes.len() > MAX_KEY {
            self.unmatchable = true;
        } else {
            self.bytes.extend_from_slice(bytes);
        }
    }
}

impl Json {
    /// Takes the next byte (already pushed to `sink`).
    pub(super) fn step<V: AsRef<[u8]>>(
        &mut self,
        byte: u8,
        sink: &mut Sink<'_, V>,
    ) -> Result<(), BodyError> {
        match self.lex {
            Lex::Str { key, escape } => return self.string(byte, key, escape, sink),
            Lex::Literal { word, at } => {
                if word.get(at) != Some(&byte) {
                    return Err(malformed(sink, "bad literal"));
                }
                self.lex = if at + 1 == word.len() {
                    self.after_value();
                    Lex::None
                } else {
                    Lex::Literal { word, at: at + 1 }
                };
                return Ok(());
            }
            Lex::Number(state) => match number(state, byte) {
                Some(next) => {
                    self.lex = Lex::Number(next);
                    return Ok(());
                }
                None if matches!(
                    state,
                    Number::Zero | Number::Int | Number::Frac | Number::Exp
                ) =>
                {
                    self.lex = Lex::None;
                    self.after_value();
                }
                None => return Err(malformed(sink, "bad number")),
            },
            Lex::None => {}
        }
        self.structure(byte, sink)
    }

    /// How many bytes at the start of `input` continue the string being read without
    /// ending it or starting an escape (none outside a string): [`plain`](Self::plain) takes
    /// them at once.
    pub(super) fn plain_len(&self, input: &[u8]) -> usize {
        match self.lex {
            Lex::Str {
                escape: Escape::None,
                ..
            } => input
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(input.len()),
            _ => 0,
        }
    }

    /// Takes `bytes`, counted by [`plain_len`](Self::plain_len) and already pushed to `sink`:
    /// the same as stepping through them one by one.
    pub(super) fn plain<V: AsRef<[u8]>>(&mut self, bytes: &[u8], sink: &mut Sink<'_, V>) {
        match self.lex {
            Lex::Str { key: true, .. } => {
                if let Some(Seg::Key(key)) = self.path.last_mut() {
                    key.push_raw_all(bytes);
                }
            }
            _ => sink.decoded_raw(bytes),
        }
    }

    /// Ends the document.
    pub(super) fn finish<V: AsRef<[u8]>>(
        &mut self,
        sink: &mut Sink<'_, V>,
    ) -> Result<(), BodyError> {
        if let Lex::Number(Number::Zero | Number::Int | Number::Frac | Number::Exp) = self.lex {
            self.lex = Lex::None;
            self.after_value();
        }
        // Nothing but whitespace: an empty body.
        let empty = self.expect == Expect::Value && self.path.is_empty();
        if matches!(self.lex, Lex::None) && (self.expect == Expect::End || empty) {
            Ok(())
        } else {
            Err(BodyError::Malformed {
                kind: "JSON",
                at: sink.len(),
                what: "the body ends inside a value",
            })
        }
    }

    /// A byte outside any token.
    fn structure<V: AsRef<[u8]>>(
        &mut self,
        byte: u8,
        sink: &mut Sink<'_, V>,
    ) -> Result<(), BodyError> {
        if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            return Ok(());
        }
        let in_object = matches!(self.path.last(), Some(Seg::Key(_)));
        match (self.expect, byte) {
            (Expect::Value | Expect::ValueOrClose, _) if byte != b']' => self.value(byte, sink),
            (Expect::ValueOrClose, b']') | (Expect::CommaOrClose, b']')
                if !in_object && !self.path.is_empty() =>
            {
                self.path.pop();
                self.after_value();
                Ok(())
            }
            (Expect::KeyOrClose | Expect::CommaOrClose, b'}') if in_object => {
                self.path.pop();
                self.after_value();
                Ok(())
            }
            (Expect::KeyOrClose | Expect::Key, b'"') => {
                if let Some(Seg::Key(key)) = self.path.last_mut() {
                    key.clear();
                }
                self.lex = Lex::Str {
                    key: true,
                    escape: Escape::None,
                };
                Ok(())
            }
            (Expect::Colon, b':') => {
                self.expect = Expect::Value;
                Ok(())
            }
            (Expect::CommaOrClose, b',') => {
                match self.path.last_mut() {
                    Some(Seg::Key(_)) => self.expect = Expect::Key,
                    Some(Seg::Index(i)) => {
                        *i += 1;
                        self.expect = Expect::Value;
                    }
                    None => return Err(malformed(sink, "unexpected `,`")),
                }
                Ok(())
            }
            _ => Err(malformed(sink, "unexpected byte")),
        }
    }

    /// The first byte of a value.
    fn value<V: AsRef<[u8]>>(&mut self, byte: u8, sink: &mut Sink<'_, V>) -> Result<(), BodyError> {
        match byte {
            b'{' | b'[' => {
                if self.path.len() >= MAX_DEPTH {
                    return Err(malformed(sink, "nested too deeply"));
                }
                if byte == b'{' {
                    self.path.push(Seg::Key(Key::default()));
                    self.expect = Expect::KeyOrClose;
                } else {
                    self.path.push(Seg::Index(0));
                    self.expect = Expect::ValueOrClose;
                }
            }
            b'"' => {
                sink.start_value(Field::Json(&self.path));
                self.lex = Lex::Str {
                    key: false,
                    escape: Escape::None,
                };
            }
            b'-' => self.lex = Lex::Number(Number::Minus),
            b'0' => self.lex = Lex::Number(Number::Zero),
            b'1'..=b'9' => self.lex = Lex::Number(Number::Int),
            b't' => {
                self.lex = Lex::Literal {
                    word: b"true",
                    at: 1,
                }
            }
            b'f' => {
                self.lex = Lex::Literal {
                    word: b"false",
                    at: 1,
                }
            }
            b'n' => {
                self.lex = Lex::Literal {
                    word: b"null",
                    at: 1,
                }
            }
            _ => return Err(malformed(sink, "unexpected byte where a value should be")),
        }
        Ok(())
    }

    /// A byte inside a string.
    fn string<V: AsRef<[u8]>>(
        &mut self,
        byte: u8,
        key: bool,
        escape: Escape,
        sink: &mut Sink<'_, V>,
    ) -> Result<(), BodyError> {
        let mut next = Escape::None;
        let decoded: Option<u16> = match escape {
            Escape::None => match byte {
                b'"' => {
                    self.lex = Lex::None;
                    if key {
                        self.expect = Expect::Colon;
                    } else {
                        sink.end_value();
                        self.after_value();
                    }
                    return Ok(());
                }
                b'\\' => {
                    sink.escape_started();
                    next = Escape::Backslash;
                    None
                }
                0..=0x1f => return Err(malformed(sink, "control byte in a string")),
                _ => {
                    let at = sink.at();
                    if key {
                        self.key_raw(byte);
                    } else {
                        sink.decoded(byte, at);
                    }
                    None
                }
            },
            Escape::Backslash => {
                let unit = match byte {
                    b'"' | b'\\' | b'/' => byte,
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'u' => {
                        next = Escape::Unicode {
                            digits: 0,
                            value: 0,
                        };
                        0
                    }
                    _ => return Err(malformed(sink, "bad escape")),
                };
                (byte != b'u').then_some(u16::from(unit))
            }
            Escape::Unicode { digits, value } => {
                let digit = (byte as char)
                    .to_digit(16)
                    .ok_or_else(|| malformed(sink, "bad \\u escape"))?;
                // At most four digits of four bits: fits in u16.
                let value = (value << 4) | digit as u16;
                if digits == 3 {
                    Some(value)
                } else {
                    next = Escape::Unicode {
                        digits: digits + 1,
                        value,
                    };
                    None
                }
            }
        };
        if let Some(unit) = decoded {
            let start = sink.escape_ended();
            if key {
                self.key_unit(unit);
            } else {
                // Only ASCII can be part of a placeholder; anything else ends a run.
                sink.decoded(u8::try_from(unit).unwrap_or(0x80), start);
            }
        }
        self.lex = Lex::Str { key, escape: next };
        Ok(())
    }

    fn key_raw(&mut self, byte: u8) {
        if let Some(Seg::Key(key)) = self.path.last_mut() {
            key.push_raw(byte);
        }
    }

    fn key_unit(&mut self, unit: u16) {
        if let Some(Seg::Key(key)) = self.path.last_mut() {
            key.push_unit(unit);
        }
    }

    /// A value ended.
    fn after_value(&mut self) {
        self.expect = if self.path.is_empty() {
            Expect::End
        } else {
            Expect::CommaOrClose
        };
    }
}

/// The next number state after `byte`, or `None` if `byte` does not continue the number.
fn number(state: Number, byte: u8) -> Option<Number> {
    use Number::*;
    Some(match (state, byte) {
        (Minus, b'0') => Zero,
        (Minus, b'1'..=b'9') => Int,
        (Int, b'0'..=b'9') => Int,
        (Zero | Int, b'.') => Dot,
        (Dot | Frac, b'0'..=b'9') => Frac,
        (Zero | Int | Frac, b'e' | b'E') => E,
        (E, b'+' | b'-') => ESign,
        (E | ESign | Exp, b'0'..=b'9') => Exp,
        _ => return None,
    })
}

fn malformed<V: AsRef<[u8]>>(sink: &Sink<'_, V>, what: &'static str) -> BodyError {
    BodyError::Malformed {
        kind: "JSON",
        at: sink.at(),
        what,
    }
}
