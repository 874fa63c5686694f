use std::sync::Arc;

use super::{frame, frame::Header, FrameError, FrameScrubber, WHOLE_FRAME};
use crate::{
    scrub::{Entry, Scrubber},
    secrets::SecretValue,
};

const SECRET: &str = "s3cr3t-value-0123";
const PLACEHOLDER: &str = "IRONSH_PROXY_ws";

fn scrubber() -> Arc<Scrubber> {
    Arc::new(
        Scrubber::new(vec![Entry {
            id: "sec_1".into(),
            name: "ws".into(),
            placeholder: PLACEHOLDER.into(),
            value: Arc::new(SecretValue::parse(SECRET.into()).unwrap()),
            derived: Vec::new(),
        }])
        .unwrap(),
    )
}

/// A frame as a server writes it, masked with `mask` if given.
fn server_frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::new();
    frame::write(fin, opcode, payload, &mut out);
    if let Some(key) = mask {
        let header_len = out.len() - payload.len();
        out[1] |= 0x80;
        let mut masked: Vec<u8> = out[..header_len].to_vec();
        masked.extend_from_slice(&key);
        masked.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        return masked;
    }
    out
}

/// The messages (opcode, payload) and control frames in `bytes`, which must be whole frames.
fn messages(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut done = Vec::new();
    let mut current: Option<(u8, Vec<u8>)> = None;
    while !bytes.is_empty() {
        let header = Header::parse(bytes).unwrap().expect("a whole header");
        assert_eq!(header.mask, None, "frames to the sandbox are not masked");
        let header_len = match header.len {
            0..=125 => 2,
            126..=0xffff => 4,
            _ => 10,
        };
        let len = header.len as usize;
        let payload = bytes[header_len..header_len + len].to_vec();
        bytes = &bytes[header_len + len..];
        if header.is_control() {
            done.push((header.opcode, payload));
            continue;
        }
        let (_, ref mut body) = *current.get_or_insert((header.opcode, Vec::new()));
        body.extend_from_slice(&payload);
        if header.fin {
            done.extend(current.take());
        }
    }
    assert!(current.is_none(), "a message was left unfinished");
    done
}

fn run(input: &[u8], piece: usize) -> Result<Vec<u8>, FrameError> {
    let mut scrubber = FrameScrubber::new(scrubber());
    let mut out = Vec::new();
    for chunk in input.chunks(piece.max(1)) {
        scrubber.feed(chunk, &mut out)?;
    }
    Ok(out)
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_secret_in_a_message_becomes_the_placeholder_however_it_is_split() {
    let text = format!("{{\"echo\":\"Bearer {SECRET}\"}}");
    let (a, b) = text.as_bytes().split_at(20);
    let mut input = server_frame(false, 0x1, a, None);
    input.extend(server_frame(true, 0x9, b"ping", None));
    input.extend(server_frame(true, 0x0, b, Some([1, 2, 3, 4])));
    let expected = text.replace(SECRET, PLACEHOLDER);
    for piece in [1, 2, 3, 7, 1000] {
        let out = run(&input, piece).unwrap();
        assert!(!holds(&out, SECRET), "piece {piece}");
        assert_eq!(
            messages(&out),
            vec![(0x9, b"ping".to_vec()), (0x1, expected.as_bytes().to_vec())],
            "piece {piece}"
        );
    }
}

#[test]
fn frames_without_a_secret_pass_byte_for_byte() {
    let mut input = server_frame(true, 0x1, b"hello", None);
    input.extend(server_frame(true, 0x2, &[7; 300], None));
    input.extend(server_frame(true, 0x8, &[0x03, 0xe8, b'o', b'k'], None));
    input.extend(server_frame(true, 0x1, b"", None));
    assert_eq!(run(&input, 1000).unwrap(), input);
    assert_eq!(run(&input, 1).unwrap(), input);
}

#[test]
fn a_long_frame_passes_in_pieces_and_is_still_scrubbed() {
    let mut payload = vec![b'x'; (WHOLE_FRAME as usize) * 2];
    payload[70_000..70_000 + SECRET.len()].copy_from_slice(SECRET.as_bytes());
    let input = server_frame(true, 0x2, &payload, None);
    for piece in [4096, 9999] {
        let out = run(&input, piece).unwrap();
        assert!(!holds(&out, SECRET));
        let got = messages(&out);
        assert_eq!(got.len(), 1);
        let mut expected = payload.clone();
        expected.splice(70_000..70_000 + SECRET.len(), PLACEHOLDER.bytes());
        assert_eq!(got[0], (0x2, expected));
    }
}

#[test]
fn control_frames_are_scrubbed_within_their_limit() {
    let mut reason = vec![0x03, 0xe8];
    reason.extend_from_slice(SECRET.as_bytes());
    reason.extend(std::iter::repeat_n(b'.', 123 - reason.len()));
    let input = server_frame(true, 0x8, &reason, None);
    let out = run(&input, 5).unwrap();
    let got = messages(&out);
    assert!(!holds(&got[0].1, SECRET));
    assert!(got[0].1.len() <= 125);
}

#[test]
fn what_is_not_plain_websocket_is_refused() {
    let mut compressed = server_frame(true, 0x1, b"x", None);
    compressed[0] |= 0x40;
    assert_eq!(run(&compressed, 10), Err(FrameError::Extension(4)));
    assert_eq!(
        run(&server_frame(true, 0x0, b"x", None), 10),
        Err(FrameError::Order)
    );
    assert_eq!(
        run(&server_frame(false, 0x9, b"x", None), 10),
        Err(FrameError::Control)
    );
    assert_eq!(
        run(&server_frame(true, 0x3, b"x", None), 10),
        Err(FrameError::Opcode(3))
    );
    let mut two = server_frame(false, 0x1, b"a", None);
    two.extend(server_frame(true, 0x1, b"b", None));
    assert_eq!(run(&two, 10), Err(FrameError::Order));
}
