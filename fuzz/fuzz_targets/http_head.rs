//! Fuzzes the HTTP/1 request head parser: it must never panic, and a host it reports is
//! lower-case and has no port.

#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_core::classify::parse_request_head;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(head)) = parse_request_head(data) {
        if let Some(host) = head.host {
            assert_eq!(host, host.to_ascii_lowercase());
        }
    }
});
