use std::{ffi::OsString, path::PathBuf};

use super::{
    sandbox_name,
    spec::{Hook, Network},
    Invocation, Spec, State, StateError,
};

/// The state Podman 4.3 with runc handed a createRuntime hook on this project's test machine.
const PODMAN_STATE: &str = r#"{"ociVersion":"1.0.2-dev","id":"26c1a2ab17f9db0d2f63e6c9ca1edd13d12b6f96e01efb244fb976b800367aa7","status":"creating","pid":10258,"bundle":"/var/lib/containers/storage/overlay-containers/26c1a2ab17f9db0d2f63e6c9ca1edd13d12b6f96e01efb244fb976b800367aa7/userdata","annotations":{"io.container.manager":"libpod","io.podman.annotations.autoremove":"TRUE","org.opencontainers.image.stopSignal":"15","veil.sandbox":"demo"}}"#;

fn args(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

#[test]
fn reads_a_podman_state() {
    let state = State::parse(PODMAN_STATE.as_bytes()).unwrap();
    assert_eq!(state.pid, Some(10258));
    assert_eq!(state.annotations.get("veil.sandbox").unwrap(), "demo");
    assert!(state.config_path().ends_with("userdata/config.json"));
}

#[test]
fn poststop_state_has_no_pid() {
    let state =
        State::parse(br#"{"ociVersion":"1.0.2","id":"abc","status":"stopped","bundle":"/b"}"#)
            .unwrap();
    assert_eq!(state.pid, None);
    assert!(matches!(state.require_pid(), Err(StateError::NoPid)));
    let zero = State::parse(br#"{"id":"abc","pid":0,"bundle":"/b"}"#).unwrap();
    assert_eq!(zero.pid, None);
}

#[test]
fn refuses_bad_states() {
    for bad in [
        &br#"{"id":"../x","pid":1,"bundle":"/b"}"#[..],
        br#"{"id":"","pid":1,"bundle":"/b"}"#,
        br#"{"id":"a/b","pid":1,"bundle":"/b"}"#,
        br#"{"id":"abc","pid":1,"bundle":"relative"}"#,
        br#"{"id":"abc","pid":-1,"bundle":"/b"}"#,
        br#"{"pid":1,"bundle":"/b"}"#,
        b"not json",
        b"",
    ] {
        assert!(
            State::parse(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let huge = vec![b' '; super::state::MAX_STATE + 1];
    assert!(matches!(State::parse(&huge), Err(StateError::TooLarge(_))));
}

#[test]
fn names_sandboxes() {
    assert_eq!(sandbox_name(Some("agent"), Some("web"), "abc"), "agent");
    assert_eq!(sandbox_name(Some(""), Some("/web"), "abc"), "web");
    assert_eq!(sandbox_name(None, Some("my app!"), "abc"), "my-app-");
    assert_eq!(
        sandbox_name(None, None, "26c1a2ab17f9db0d2f63"),
        "ctr-26c1a2ab17f9"
    );
    assert_eq!(sandbox_name(None, Some(".."), "abc"), "ctr-abc");
    assert_eq!(sandbox_name(None, Some(&"x".repeat(100)), "abc").len(), 64);
    assert_eq!(sandbox_name(None, None, "é€"), "ctr---");
}

#[test]
fn reads_the_network_namespace() {
    let own =
        Spec::parse(br#"{"linux":{"namespaces":[{"type":"pid"},{"type":"network"}]}}"#).unwrap();
    assert_eq!(own.network().unwrap(), Network::Own);
    let joined =
        Spec::parse(br#"{"linux":{"namespaces":[{"type":"network","path":"/run/netns/cni-1"}]}}"#)
            .unwrap();
    assert_eq!(
        joined.network().unwrap(),
        Network::Joined("/run/netns/cni-1".into())
    );
    let host = Spec::parse(br#"{"linux":{"namespaces":[{"type":"pid"}]}}"#).unwrap();
    assert_eq!(host.network().unwrap(), Network::Host);
    assert_eq!(
        Spec::parse(b"{}").unwrap().network().unwrap(),
        Network::Host
    );
    assert!(Spec::parse(br#"{"linux":{"namespaces":{}}}"#)
        .unwrap()
        .network()
        .is_err());
    assert!(Spec::parse(b"[]").is_err());
}

#[test]
fn finds_and_drops_forbidden_capabilities() {
    let mut spec = Spec::parse(
        br#"{"process":{"capabilities":{"bounding":["CAP_CHOWN","CAP_NET_RAW"],"effective":["cap_net_raw"],"permitted":["CAP_NET_RAW"],"ambient":null}}}"#,
    )
    .unwrap();
    let forbidden = spec.forbidden_capabilities().unwrap();
    assert_eq!(forbidden.len(), 1);
    assert_eq!(forbidden[0].0, "CAP_NET_RAW");
    spec.drop_capability("CAP_NET_RAW").unwrap();
    assert!(spec.forbidden_capabilities().unwrap().is_empty());
    assert!(spec.capabilities().unwrap().contains("CAP_CHOWN"));
    let bad = Spec::parse(br#"{"process":{"capabilities":{"bounding":[1]}}}"#).unwrap();
    assert!(bad.capabilities().is_err());
}

#[test]
fn reads_capability_masks() {
    // Docker's default bounding set (CapBnd 00000000a80425fb) holds CAP_NET_RAW only.
    let names: Vec<_> = super::forbidden_in_mask(0xa80425fb)
        .iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(names, ["CAP_NET_RAW"]);
    assert!(super::forbidden_in_mask(0xa80405fb).is_empty());
    assert_eq!(super::forbidden_in_mask(u64::MAX).len(), 9);
}

#[test]
fn adds_hooks_once_and_keeps_the_rest() {
    let mut spec = Spec::parse(
        br#"{"ociVersion":"1.0.2","hooks":{"poststop":[{"path":"/bin/other"}]},"x-unknown":{"kept":true}}"#,
    )
    .unwrap();
    let hook = Hook {
        path: "/usr/bin/veil".into(),
        args: vec!["veil".into(), "oci-hook".into(), "createRuntime".into()],
        timeout: Some(30),
    };
    spec.add_hook("createRuntime", &hook).unwrap();
    spec.add_hook("createRuntime", &hook).unwrap();
    spec.add_hook("poststop", &hook).unwrap();
    spec.default_annotation("veil.sandbox", "a").unwrap();
    spec.default_annotation("veil.sandbox", "b").unwrap();
    let out: serde_json::Value = serde_json::from_slice(&spec.to_vec().unwrap()).unwrap();
    assert_eq!(out["hooks"]["createRuntime"].as_array().unwrap().len(), 1);
    assert_eq!(out["hooks"]["createRuntime"][0]["timeout"], 30);
    assert_eq!(out["hooks"]["poststop"].as_array().unwrap().len(), 2);
    assert_eq!(out["annotations"]["veil.sandbox"], "a");
    assert_eq!(out["x-unknown"]["kept"], true);
    let mut bad = Spec::parse(br#"{"hooks":[]}"#).unwrap();
    assert!(bad.add_hook("poststop", &hook).is_err());
}

#[test]
fn reads_runtime_command_lines() {
    let create = Invocation::parse(&args(&[
        "--root",
        "/run/docker/runtime-runc/moby",
        "--log",
        "/b/log.json",
        "--log-format",
        "json",
        "--systemd-cgroup",
        "create",
        "--bundle",
        "/b",
        "--pid-file",
        "/b/init.pid",
        "abc",
    ]));
    assert!(create.creates());
    assert_eq!(create.bundle, Some(PathBuf::from("/b")));
    assert_eq!(create.id.as_deref(), Some("abc"));
    let short = Invocation::parse(&args(&["run", "-b=/c", "abc"]));
    assert_eq!(short.bundle, Some(PathBuf::from("/c")));
    let default = Invocation::parse(&args(&["create", "abc"]));
    assert!(default.creates());
    assert_eq!(default.bundle, None);
    let start = Invocation::parse(&args(&["--root", "create", "start", "abc"]));
    assert_eq!(start.subcommand.as_deref(), Some("start"));
    assert!(!start.creates());
    assert_eq!(Invocation::parse(&[]).subcommand, None);
}
