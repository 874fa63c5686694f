//! Streaming by hand: matches split across feeds, and what is held back.

use super::{entry, scrubber, stream_of, streamed};

#[test]
fn a_match_split_across_one_byte_feeds_is_found() {
    let scrubber = scrubber(vec![entry("t", b"tok-secret-1")]);
    let input = b"a tok-secret-1 b tok-secret-1";
    let (out, found, _) = streamed(&scrubber, input, &[1; 64]);
    assert_eq!(out, b"a IRONSH_PROXY_t b IRONSH_PROXY_t");
    assert_eq!(found.total(), 2);
}

#[test]
fn holds_back_only_what_could_start_a_match() {
    let (scrubber, mut stream) = stream_of(vec![entry("t", b"tok-secret-1")]);
    let mut out = Vec::new();
    stream.feed(b"hello world ", &mut out);
    assert_eq!(
        (out.as_slice(), stream.held_back()),
        (&b"hello world "[..], 0)
    );
    stream.feed(b"and tok-sec", &mut out);
    assert_eq!(stream.held_back(), "tok-sec".len());
    assert_eq!(out, b"hello world and ");
    stream.feed(b"ond.", &mut out);
    assert_eq!(stream.held_back(), 0);
    assert_eq!(out, b"hello world and tok-second.");
    stream.feed(b" tok-secret-", &mut out);
    assert!(stream.held_back() < scrubber.longest_pattern());
    let found = stream.finish(&mut out);
    assert_eq!(out, b"hello world and tok-second. tok-secret-");
    assert!(found.is_empty());
}

#[test]
fn a_whole_match_that_could_grow_waits_for_the_next_byte() {
    let (_, mut stream) = stream_of(vec![entry("s", b"secret"), entry("l", b"secret-long")]);
    let mut out = Vec::new();
    assert!(stream.feed(b"x secret", &mut out).is_empty());
    assert_eq!((out.as_slice(), stream.held_back()), (&b"x "[..], 6));
    let found = stream.feed(b"!", &mut out);
    assert_eq!(out, b"x IRONSH_PROXY_s!");
    assert_eq!(found.total(), 1);
    stream.feed(b" secret-lo", &mut out);
    let found = stream.feed(b"ng", &mut out);
    assert_eq!(found.secrets()[0].secret_name.as_ref(), "l");
    assert_eq!(out, b"x IRONSH_PROXY_s! IRONSH_PROXY_l");
}

#[test]
fn finish_scrubs_a_match_at_the_very_end() {
    let (_, mut stream) = stream_of(vec![entry("s", b"secret"), entry("l", b"secret-long")]);
    let mut out = Vec::new();
    stream.feed(b"x secret", &mut out);
    let found = stream.finish(&mut out);
    assert_eq!(
        (out.as_slice(), found.total()),
        (&b"x IRONSH_PROXY_s"[..], 1)
    );
}
