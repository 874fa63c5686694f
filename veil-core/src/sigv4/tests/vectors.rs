//! The AWS signing test suite (vectors/README.md): each request, signed by the sandbox with a
//! placeholder key id, a dummy signature and a placeholder session token, re-signed with the
//! suite's credentials, must come out exactly as the suite's signed request.

use std::path::{Path, PathBuf};

use super::support::{credentials, unix_time, RawRequest, PLACEHOLDER};

const TOKEN_PLACEHOLDER: &str = "IRONSH_PROXY_aws-token";
const DUMMY_SIGNATURE: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sigv4/tests/vectors");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "vectors missing");
    cases
}

struct Context {
    key_id: String,
    secret: String,
    token: Option<String>,
    /// The token was added after signing (so it is not in the signed query string).
    omit_session_token: bool,
    now: u64,
}

fn context(case: &Path) -> Context {
    let text = std::fs::read_to_string(case.join("context.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let creds = &json["credentials"];
    Context {
        key_id: creds["access_key_id"].as_str().unwrap().to_owned(),
        secret: creds["secret_access_key"].as_str().unwrap().to_owned(),
        token: creds["token"].as_str().map(str::to_owned),
        omit_session_token: json["omit_session_token"].as_bool().unwrap_or(false),
        now: unix_time(json["timestamp"].as_str().unwrap()),
    }
}

fn read(case: &Path, file: &str) -> RawRequest {
    RawRequest::parse(&std::fs::read_to_string(case.join(file)).unwrap())
}

#[test]
fn header_signed_requests_resign_to_the_suite_signature() {
    for case in cases() {
        let ctx = context(&case);
        let want = read(&case, "header-signed-request.txt");
        let mut sandbox = read(&case, "header-signed-request.txt");
        let auth = String::from_utf8(want.header("authorization").unwrap().to_vec()).unwrap();
        let (before_sig, _) = auth.rsplit_once("Signature=").unwrap();
        let placeholder_auth = format!("{before_sig}Signature={DUMMY_SIGNATURE}").replace(
            &format!("Credential={}/", ctx.key_id),
            &format!("Credential={PLACEHOLDER}/"),
        );
        sandbox.set_header("authorization", placeholder_auth.as_bytes());
        sandbox.set_header("x-amz-security-token", TOKEN_PLACEHOLDER.as_bytes());
        let real = credentials(&ctx.key_id, &ctx.secret, ctx.token.as_deref());
        let got = sandbox.resign(&real, ctx.now);
        assert_eq!(
            String::from_utf8_lossy(got.header("authorization").unwrap()),
            auth,
            "{}",
            case.display()
        );
        assert_eq!(got.headers, want.headers, "{}", case.display());
    }
}

/// A presigned URL's parameters are all signed (but `X-Amz-Signature`), the session token
/// too: the one case whose token the suite appends unsigned is left out.
#[test]
fn presigned_requests_resign_to_the_suite_signature() {
    for case in cases() {
        let ctx = context(&case);
        if ctx.omit_session_token {
            continue;
        }
        let want = read(&case, "query-signed-request.txt");
        let mut sandbox = read(&case, "query-signed-request.txt");
        let (before_sig, _) = want.target.rsplit_once("X-Amz-Signature=").unwrap();
        let mut target = format!("{before_sig}X-Amz-Signature={DUMMY_SIGNATURE}").replace(
            &format!("X-Amz-Credential={}%2F", ctx.key_id),
            &format!("X-Amz-Credential={PLACEHOLDER}%2F"),
        );
        if let Some(token) = &ctx.token {
            let mut encoded = String::new();
            crate::sigv4::canonical::encode_into(token.as_bytes(), false, &mut encoded);
            target = target.replace(&encoded, TOKEN_PLACEHOLDER);
        }
        assert_ne!(target, want.target);
        sandbox.target = target;
        let real = credentials(&ctx.key_id, &ctx.secret, ctx.token.as_deref());
        let got = sandbox.resign(&real, ctx.now);
        assert_eq!(got.target, want.target, "{}", case.display());
        assert_eq!(got.headers, want.headers, "{}", case.display());
    }
}
