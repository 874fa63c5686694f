//! Fuzzes the ClientHello parser: it must never panic, and on any prefix of an input it must
//! either ask for more bytes or give the same answer as on the whole input once complete.

#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_core::classify::parse_client_hello;

fuzz_target!(|data: &[u8]| {
    let whole = parse_client_hello(data);
    for cut in [data.len() / 3, data.len() / 2, data.len().saturating_sub(1)] {
        let prefix = parse_client_hello(&data[..cut]);
        if let (Ok(Some(early)), Ok(Some(late))) = (&prefix, &whole) {
            assert_eq!(early, late, "a complete prefix must parse as the whole does");
        }
    }
});
