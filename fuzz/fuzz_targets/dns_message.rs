//! Fuzzes the DNS message parsers: they must never panic; a query that parses yields an
//! upstream query that parses back to the same question; a response that parses re-encodes
//! for the client within the limit and parses back with the same addresses.

#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_core::dns::{Query, Rcode, Response};

/// `www.example.com A`, id 0x1234, the query the input is read as a response to.
const QUERY: &[u8] = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
    \x03www\x07example\x03com\x00\x00\x01\x00\x01";

fuzz_target!(|data: &[u8]| {
    if let Ok(query) = Query::parse(data) {
        let upstream = Query::parse(&query.upstream(0x4242)).expect("the upstream query parses");
        assert_eq!(upstream.question, query.question);
        assert!(Query::parse(&query.error(Rcode::Refused)).is_err(), "a response is no query");
    }
    let _ = veil_core::dns::error_for_header(data, Rcode::FormErr);
    let query = Query::parse(QUERY).expect("the fixed query parses");
    if let Ok(response) = Response::parse(data, &query, 0x1234) {
        let out = response.encode(&query, 1, query.udp_limit());
        assert!(out.len() <= query.udp_limit());
        let again = Response::parse(&out, &query, 0x1234).expect("veil's response parses");
        if !again.is_truncated() && !response.is_truncated() {
            assert_eq!(again.addresses.len(), response.addresses.len());
        }
    }
});
