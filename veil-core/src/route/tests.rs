use super::*;

fn scope(methods: &[&str], paths: &[&str]) -> RouteScope {
    RouteScope {
        methods: methods.iter().map(|m| Method::parse(m).unwrap()).collect(),
        paths: paths
            .iter()
            .map(|p| PathPattern::parse(p).unwrap())
            .collect(),
    }
}

fn allows(scope: &RouteScope, method: &str, target: &str) -> bool {
    scope
        .check(method, RequestPath::parse(target).as_ref())
        .is_ok()
}

#[test]
fn methods_are_tokens_upper_cased() {
    assert_eq!(Method::parse("get").unwrap().as_str(), "GET");
    assert_eq!(Method::parse("PROPFIND").unwrap().as_str(), "PROPFIND");
    for bad in ["", "G ET", "GET\r\n", "GE/T", &"A".repeat(33)] {
        assert!(Method::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn paths_normalise_unreserved_escapes_only() {
    let p = RequestPath::parse("/repos/my%2Dorg/%7euser/a%3ab?x=1").unwrap();
    assert_eq!(p.segments(), ["repos", "my-org", "~user", "a%3Ab"]);
    assert_eq!(RequestPath::parse("/").unwrap().segments(), [""]);
    for never in [
        "",
        "*",
        "repos/x",
        "/repos/my-org/../other-org",
        "/repos/my-org/%2e%2e/other-org",
        "/repos/my-org/%2E./other-org",
        "/repos/my-org/./x",
        "/repos/my-org%2fother",
        "/repos/my-org%2F..%2Fother",
        "/repos/my-org%5c..%5cother",
        "/repos/my-org\\..\\other",
        "/repos/%zz",
        "/repos/%4",
        "/a/..",
    ] {
        assert!(RequestPath::parse(never).is_none(), "{never:?}");
    }
}

#[test]
fn patterns_match_leading_segments_with_globs() {
    let org = scope(&[], &["/repos/my-org/*"]);
    assert!(allows(&org, "GET", "/repos/my-org/repo"));
    assert!(allows(&org, "GET", "/repos/my-org/repo/pulls?page=2"));
    assert!(allows(&org, "GET", "/repos/my%2Dorg/repo"));
    for refused in [
        "/repos/my-org",
        "/repos/other-org/repo",
        "/repos/my-org-evil/repo",
        "/repos/my-org/../other-org/repo",
        "/repos/my-org/%2e%2e/other-org/repo",
        "/repos/my-org%2f..%2fother-org/repo",
        "/repos/MY-ORG/repo",
        "//repos/my-org/repo",
    ] {
        assert!(!allows(&org, "GET", refused), "{refused}");
    }
    let prefix = scope(&[], &["/v1/"]);
    assert!(allows(&prefix, "GET", "/v1"));
    assert!(allows(&prefix, "GET", "/v1/chat/completions"));
    assert!(!allows(&prefix, "GET", "/v10/x"));
    let mid = scope(&[], &["/bot*/send*"]);
    assert!(allows(&mid, "POST", "/botTOKEN/sendMessage"));
    assert!(!allows(&mid, "POST", "/botTOKEN/getUpdates"));
    let all = scope(&[], &["/"]);
    assert!(allows(&all, "GET", "/anything/at/all"));
    assert!(!allows(&all, "GET", "/x/../y"));
}

#[test]
fn methods_and_paths_together() {
    let s = scope(&["get", "POST"], &["/repos/my-org"]);
    assert_eq!(
        s.check("GET", RequestPath::parse("/repos/my-org").as_ref()),
        Ok(())
    );
    assert_eq!(
        s.check("DELETE", RequestPath::parse("/repos/my-org").as_ref()),
        Err(Miss::Method)
    );
    assert_eq!(
        s.check("get", RequestPath::parse("/repos/my-org").as_ref()),
        Err(Miss::Method)
    );
    assert_eq!(
        s.check("POST", RequestPath::parse("/repos/other").as_ref()),
        Err(Miss::Path)
    );
    assert_eq!(s.check("POST", None), Err(Miss::Path));
    assert!(RouteScope::default().is_any());
    assert_eq!(RouteScope::default().check("X", None), Ok(()));
}

#[test]
fn bad_patterns_are_refused() {
    for bad in [
        "",
        "repos",
        "/a?b",
        "/a#b",
        "/a b",
        "/a/../b",
        "/a/./b",
        "/a%2fb",
        "/a\\b",
        "/a%zz",
        "/a\n",
        &format!("/{}", "a".repeat(1024)),
    ] {
        assert!(PathPattern::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(PathPattern::parse("/").unwrap().as_str(), "/");
    assert_eq!(
        PathPattern::parse("/repos/my%2dorg/").unwrap().as_str(),
        "/repos/my-org"
    );
}

#[test]
fn the_engine_reads_the_path_of_origin_and_absolute_form_targets() {
    use crate::inject::{Request, Target};
    let target = Target::Unverified;
    let path = |t: &str| {
        Request::new(target, "GET", t)
            .path
            .map(|p| p.segments().join("/"))
    };
    assert_eq!(
        path("/other-org/x?a=://h/repos/my-org/y").as_deref(),
        Some("other-org/x")
    );
    assert_eq!(
        path("https://h/repos/my-org/y?q=1").as_deref(),
        Some("repos/my-org/y")
    );
    assert_eq!(path("https://h?q=/repos/my-org").as_deref(), Some(""));
    assert_eq!(path("https://h").as_deref(), Some(""));
    assert_eq!(path("*"), None);
    let org = scope(&[], &["/repos/my-org/*"]);
    let request = Request::new(target, "GET", "/other-org/x?a=://h/repos/my-org/y");
    assert!(org.check("GET", request.path.as_ref()).is_err());
}
