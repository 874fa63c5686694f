//! Fuzzes decoding a stored audit value (one group commit's records, or an anchor): it must
//! never panic; a value that decodes holds entries whose encodings, joined again, give the
//! value back when they are records veil could have written.

#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_core::audit::{group, Entry};

fuzz_target!(|data: &[u8]| {
    let _ = group::decode_last(data);
    let Ok(entries) = group::decode(data) else {
        return;
    };
    assert_eq!(entries.len(), group::parts(data).count());
    let encoded: Vec<Vec<u8>> = entries
        .iter()
        .map(|entry| match entry {
            Entry::Record(record) => record.encode(),
            Entry::Anchor(anchor) => anchor.encode(),
        })
        .collect();
    let joined = group::join(encoded.iter().map(Vec::as_slice));
    let again = group::decode(&joined).expect("veil's own encoding decodes");
    assert_eq!(again, entries);
});
