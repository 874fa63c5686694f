//! Decoding a compressed response body alongside its delivery, so the scrubber sees what the
//! sandbox's client will see once it decompresses it (gzip, deflate, br, zstd).

use std::io::{self, Write};

/// How much a body may grow when decoded before veil gives up on it (a decompression bomb
/// would otherwise cost unbounded CPU).
const MAX_DECODED: u64 = 1 << 30;

/// A content coding veil can decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    /// `gzip` (or `x-gzip`).
    Gzip,
    /// `deflate`: zlib-wrapped, as RFC 9110 says.
    Deflate,
    /// `br`.
    Brotli,
    /// `zstd`.
    Zstd,
}

/// What a `Content-Encoding` header asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// No coding (absent, or `identity`).
    Identity,
    /// One coding veil decodes.
    Coded(Coding),
    /// Something veil cannot decode: several codings, or an unknown one.
    Unknown,
}

impl Encoding {
    /// Reads a `Content-Encoding` value (or its absence).
    pub fn of(header: Option<&[u8]>) -> Self {
        let Some(value) = header else {
            return Self::Identity;
        };
        let Ok(value) = std::str::from_utf8(value) else {
            return Self::Unknown;
        };
        let codings: Vec<String> = value
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty() && c != "identity")
            .collect();
        match codings.as_slice() {
            [] => Self::Identity,
            [one] => match one.as_str() {
                "gzip" | "x-gzip" => Self::Coded(Coding::Gzip),
                "deflate" => Self::Coded(Coding::Deflate),
                "br" => Self::Coded(Coding::Brotli),
                "zstd" => Self::Coded(Coding::Zstd),
                _ => Self::Unknown,
            },
            _ => Self::Unknown,
        }
    }
}

impl Coding {
    /// Whether everything fed to the decoder so far comes out at once (up to a few bits of a
    /// symbol), so compressed bytes can go on as soon as their output is scanned. gzip and
    /// deflate do; brotli and zstd decode in blocks of up to 128 KiB and hold a block's output
    /// until all of it is there, so their bodies are read whole before anything goes on.
    pub fn streams(self) -> bool {
        matches!(self, Self::Gzip | Self::Deflate)
    }
}

/// `Accept-Encoding` with only the codings veil scans as they stream (gzip, deflate, and
/// identity), so an upstream that follows it never makes veil hold a body whole; `None` when
/// nothing is left (then upstream sends the body as it is).
pub fn streamable_accept_encoding(value: &[u8]) -> Option<String> {
    let value = std::str::from_utf8(value).ok()?;
    let kept: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|item| {
            let coding = item
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            matches!(coding.as_str(), "gzip" | "x-gzip" | "deflate" | "identity")
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join(", "))
}

/// A streaming decoder: compressed bytes in, decoded bytes out.
pub struct Decoder {
    inner: Inner,
    decoded: u64,
}

enum Inner {
    Gzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    Deflate(flate2::write::ZlibDecoder<Vec<u8>>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Decoder<'static, Vec<u8>>),
}

impl Decoder {
    /// A decoder for `coding`.
    pub fn new(coding: Coding) -> io::Result<Self> {
        let inner = match coding {
            Coding::Gzip => Inner::Gzip(flate2::write::MultiGzDecoder::new(Vec::new())),
            Coding::Deflate => Inner::Deflate(flate2::write::ZlibDecoder::new(Vec::new())),
            Coding::Brotli => Inner::Brotli(Box::new(
                brotli_decompressor::DecompressorWriter::new(Vec::new(), 4096),
            )),
            Coding::Zstd => Inner::Zstd(zstd::stream::write::Decoder::new(Vec::new())?),
        };
        Ok(Self { inner, decoded: 0 })
    }

    /// Decodes `input`, calling `sink` with what it decodes to.
    ///
    /// Everything `input` decodes to reaches `sink` now: the decoders keep the output of their
    /// last step buffered until the next write unless flushed, and compressed bytes must never
    /// go on to the sandbox before what they decode to is scanned.
    pub fn feed(&mut self, input: &[u8], sink: impl FnMut(&[u8])) -> io::Result<()> {
        match &mut self.inner {
            Inner::Gzip(d) => d.write_all(input).and_then(|()| d.flush())?,
            Inner::Deflate(d) => d.write_all(input).and_then(|()| d.flush())?,
            Inner::Brotli(d) => d.write_all(input).and_then(|()| d.flush())?,
            Inner::Zstd(d) => d.write_all(input).and_then(|()| d.flush())?,
        }
        self.drain(sink)
    }

    /// Ends the body: what is left is decoded; a truncated body is an error.
    pub fn finish(&mut self, sink: impl FnMut(&[u8])) -> io::Result<()> {
        match &mut self.inner {
            Inner::Gzip(d) => d.try_finish()?,
            Inner::Deflate(d) => d.try_finish()?,
            Inner::Brotli(d) => d.flush()?,
            Inner::Zstd(d) => d.flush()?,
        }
        self.drain(sink)
    }

    fn drain(&mut self, mut sink: impl FnMut(&[u8])) -> io::Result<()> {
        let out = match &mut self.inner {
            Inner::Gzip(d) => d.get_mut(),
            Inner::Deflate(d) => d.get_mut(),
            Inner::Brotli(d) => d.get_mut(),
            Inner::Zstd(d) => d.get_mut(),
        };
        self.decoded += out.len() as u64;
        if self.decoded > MAX_DECODED {
            return Err(io::Error::other(format!(
                "the body decodes to more than {MAX_DECODED} bytes"
            )));
        }
        sink(out);
        out.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(coding: Coding, compressed: &[u8], piece: usize) -> Vec<u8> {
        let mut decoder = Decoder::new(coding).unwrap();
        let mut out = Vec::new();
        for chunk in compressed.chunks(piece) {
            decoder.feed(chunk, |d| out.extend_from_slice(d)).unwrap();
        }
        decoder.finish(|d| out.extend_from_slice(d)).unwrap();
        out
    }

    #[test]
    fn every_coding_decodes_in_any_pieces() {
        let text = b"{\"authorization\":\"Bearer s3cr3t\"} ".repeat(500);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zl.write_all(&text).unwrap();
        let zl = zl.finish().unwrap();
        let zs = zstd::stream::encode_all(&text[..], 3).unwrap();
        for (coding, compressed) in [
            (Coding::Gzip, gz),
            (Coding::Deflate, zl),
            (Coding::Zstd, zs),
        ] {
            for piece in [1, 7, 4096] {
                assert_eq!(
                    decode_in_pieces(coding, &compressed, piece),
                    text,
                    "{coding:?}"
                );
            }
        }
    }

    #[test]
    fn a_feed_yields_everything_its_bytes_decode_to() {
        let text: Vec<u8> = (0..200_000u32)
            .map(|i| b"abcdefghijklmnopqrstuvwxyz"[(i * 7 % 26) as usize] ^ (i % 3) as u8)
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zl.write_all(&text).unwrap();
        let zl = zl.finish().unwrap();
        // All but the trailers (gzip's CRC and length, zlib's checksum): the whole text is
        // decodable from what was fed, so all of it must have come out.
        for (coding, compressed, trailer) in [(Coding::Gzip, gz, 8), (Coding::Deflate, zl, 4)] {
            let mut decoder = Decoder::new(coding).unwrap();
            let mut out = Vec::new();
            decoder
                .feed(&compressed[..compressed.len() - trailer], |d| {
                    out.extend_from_slice(d)
                })
                .unwrap();
            assert_eq!(out.len(), text.len(), "{coding:?}");
        }
    }

    #[test]
    fn accept_encoding_keeps_what_streams() {
        let kept = |v: &str| streamable_accept_encoding(v.as_bytes());
        assert_eq!(
            kept("gzip, deflate, br, zstd").as_deref(),
            Some("gzip, deflate")
        );
        assert_eq!(kept("br;q=1.0, gzip;q=0.8").as_deref(), Some("gzip;q=0.8"));
        assert_eq!(kept("br"), None);
        assert_eq!(kept("identity").as_deref(), Some("identity"));
        assert!(Coding::Gzip.streams() && Coding::Deflate.streams());
        assert!(!Coding::Brotli.streams() && !Coding::Zstd.streams());
    }

    #[test]
    fn garbage_is_an_error() {
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Zstd, Coding::Brotli] {
            let mut decoder = Decoder::new(coding).unwrap();
            let fed = decoder.feed(&[0xff; 64], |_| {});
            let finished = decoder.finish(|_| {});
            assert!(fed.is_err() || finished.is_err(), "{coding:?}");
        }
    }

    #[test]
    fn content_encodings_are_read() {
        assert_eq!(Encoding::of(None), Encoding::Identity);
        assert_eq!(Encoding::of(Some(b"identity")), Encoding::Identity);
        assert_eq!(Encoding::of(Some(b" GZIP ")), Encoding::Coded(Coding::Gzip));
        assert_eq!(Encoding::of(Some(b"br")), Encoding::Coded(Coding::Brotli));
        assert_eq!(Encoding::of(Some(b"zstd")), Encoding::Coded(Coding::Zstd));
        assert_eq!(
            Encoding::of(Some(b"deflate")),
            Encoding::Coded(Coding::Deflate)
        );
        assert_eq!(Encoding::of(Some(b"gzip, br")), Encoding::Unknown);
        assert_eq!(Encoding::of(Some(b"compress")), Encoding::Unknown);
        assert_eq!(Encoding::of(Some(b"\xff")), Encoding::Unknown);
    }
}
