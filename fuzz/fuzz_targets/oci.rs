//! Fuzzes what veil's container hook and Docker wrapper read from a runtime: the OCI state,
//! a bundle's `config.json`, and a runtime command line. None may panic; a spec veil changed
//! must parse again, without the capability it dropped, and with the network namespace it
//! reported unchanged.

#![no_main]

use std::ffi::OsString;

use libfuzzer_sys::fuzz_target;
use veil_core::oci::{spec::Hook, Invocation, Spec, State};

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = State::parse(data) {
        assert!(state.bundle.is_absolute());
        assert!(veil_core::oci::state::valid_id(&state.id));
    }
    if let Ok(mut spec) = Spec::parse(data) {
        let network = spec.network();
        let _ = spec.forbidden_capabilities();
        let hook = Hook {
            path: "/usr/bin/veil".into(),
            args: vec!["veil".into(), "oci-hook".into()],
            timeout: Some(30),
        };
        let changed = spec.add_hook("createRuntime", &hook).is_ok()
            && spec.drop_capability("CAP_NET_RAW").is_ok()
            && spec.default_annotation("veil.container.runtime", "docker").is_ok();
        if changed {
            let again = Spec::parse(&spec.to_vec().expect("a spec serializes"))
                .expect("the changed spec parses");
            assert_eq!(again.network().ok(), network.ok());
            if let Ok(caps) = again.capabilities() {
                assert!(!caps.contains("CAP_NET_RAW"));
            }
        }
    }
    let args: Vec<OsString> = String::from_utf8_lossy(data)
        .split('\0')
        .map(OsString::from)
        .collect();
    let _ = Invocation::parse(&args).creates();
});
