//! [`SecretValue`]: a secret's plaintext, held only in memory. Pure.

use std::fmt;

use zeroize::Zeroizing;

/// Longest secret value accepted, in bytes.
pub const MAX_LEN: usize = 8192;

/// Why a secret value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Nothing was given.
    #[error("the secret value is empty")]
    Empty,
    /// Longer than [`MAX_LEN`].
    #[error("the secret value is {0} bytes long; at most {MAX_LEN} are allowed")]
    TooLong(usize),
    /// A byte that cannot appear in an HTTP header value.
    #[error(
        "the secret value contains a control character (byte 0x{byte:02x} at offset {offset}); \
         CR, LF, NUL, tab and the other control bytes cannot be sent in an HTTP header"
    )]
    ControlByte {
        /// The offending byte.
        byte: u8,
        /// Where it is.
        offset: usize,
    },
    /// Not UTF-8 (the API carries values in JSON strings).
    #[error("the secret value is not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 {
        /// Where the first invalid byte is.
        offset: usize,
    },
}

/// A secret's plaintext value: 1 to [`MAX_LEN`] bytes of UTF-8 without control characters, so
/// it can always be placed in an HTTP header value.
///
/// Tab is refused along with the other control characters: HTTP parsers strip it at the edges
/// of a header value, and no token format uses it.
///
/// The bytes are zeroized when the value is dropped. `Debug` and `Display` print
/// `[redacted]`, and the type implements neither `Serialize` nor `Clone`, so a value cannot end
/// up in a response or a log by accident; [`SecretValue::expose`] is the one way to the bytes.
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    /// Checks `value` and takes it over (it is zeroized on drop from now on, also when refused).
    pub fn parse(value: String) -> Result<Self, ValueError> {
        let value = Zeroizing::new(value);
        check(value.as_bytes())?;
        Ok(Self(value))
    }

    /// Checks bytes (decrypted, or read by the CLI) and takes them over: they are zeroized on
    /// drop from now on, also when refused.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, ValueError> {
        match String::from_utf8(bytes) {
            Ok(text) => Self::parse(text),
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                drop(Zeroizing::new(e.into_bytes()));
                Err(ValueError::NotUtf8 { offset })
            }
        }
    }

    /// The plaintext. Only for encrypting it, sending it to the daemon, and injecting it into
    /// a request upstream: never log, print or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl AsRef<[u8]> for SecretValue {
    fn as_ref(&self) -> &[u8] {
        self.expose().as_bytes()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

fn check(bytes: &[u8]) -> Result<(), ValueError> {
    if bytes.is_empty() {
        return Err(ValueError::Empty);
    }
    if bytes.len() > MAX_LEN {
        return Err(ValueError::TooLong(bytes.len()));
    }
    match bytes.iter().position(|&b| b.is_ascii_control()) {
        Some(offset) => Err(ValueError::ControlByte {
            byte: bytes[offset],
            offset,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_tokens() {
        for ok in [
            "x",
            "ghp_abc123def456",
            "with space inside",
            "ünïcödé-tøken",
            &"a".repeat(MAX_LEN),
        ] {
            assert_eq!(SecretValue::parse(ok.to_owned()).unwrap().expose(), ok);
        }
    }

    #[test]
    fn refuses_what_cannot_go_in_a_header() {
        let cases = [
            ("", ValueError::Empty),
            (
                "a\rb",
                ValueError::ControlByte {
                    byte: b'\r',
                    offset: 1,
                },
            ),
            (
                "ab\n",
                ValueError::ControlByte {
                    byte: b'\n',
                    offset: 2,
                },
            ),
            ("\0", ValueError::ControlByte { byte: 0, offset: 0 }),
            (
                "a\tb",
                ValueError::ControlByte {
                    byte: b'\t',
                    offset: 1,
                },
            ),
            (
                "a\x1bb",
                ValueError::ControlByte {
                    byte: 0x1b,
                    offset: 1,
                },
            ),
            (
                "a\x7f",
                ValueError::ControlByte {
                    byte: 0x7f,
                    offset: 1,
                },
            ),
        ];
        for (value, want) in cases {
            assert_eq!(
                SecretValue::parse(value.to_owned()).unwrap_err(),
                want,
                "{value:?}"
            );
        }
        assert_eq!(
            SecretValue::parse("a".repeat(MAX_LEN + 1)).unwrap_err(),
            ValueError::TooLong(MAX_LEN + 1)
        );
    }

    #[test]
    fn from_bytes_demands_utf8() {
        assert_eq!(
            SecretValue::from_bytes(b"tok".to_vec()).unwrap().expose(),
            "tok"
        );
        assert!(SecretValue::from_bytes(vec![b'a', 0xff]).is_err());
        assert!(SecretValue::from_bytes(Vec::new()).is_err());
    }

    #[test]
    fn never_formats_the_value() {
        let value = SecretValue::parse("hunter2-very-secret".to_owned()).unwrap();
        assert_eq!(format!("{value:?}"), "[redacted]");
        assert_eq!(format!("{value}"), "[redacted]");
        assert_eq!(format!("{value:#?}"), "[redacted]");
        assert!(!format!("{:?}", Some(&value)).contains("hunter2"));
        let err = SecretValue::parse("bad\nhunter2".to_owned()).unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }
}
