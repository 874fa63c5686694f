//! The demo's last step: checking that what it showed really happened, so a broken veil fails
//! the demo instead of printing a misleading story.

use std::process::Output;

use anyhow::{bail, Result};

use crate::{
    demo::{API_HOST, ENV_VAR, OTHER_HOST, UPSTREAM_IP},
    demo_support::stdout,
};

/// What the demo saw.
pub struct Evidence<'a> {
    /// The real token.
    pub token: &'a str,
    /// The secret's placeholder.
    pub placeholder: &'a str,
    /// The sandboxed client's run: its echo of the variable, then its request to the API.
    pub client: &'a Output,
    /// The contrast run: the request to the out-of-scope host, then the one to the address.
    pub contrast: &'a Output,
    /// What the stand-in API logged during the client's run.
    pub api_saw: &'a str,
    /// What the stand-in API logged during the contrast run.
    pub other_saw: &'a str,
    /// `veil audit` and `veil audit --json`, together.
    pub audit: &'a str,
}

/// Prints each claim the demo makes with whether it holds; fails naming the ones that do not.
pub fn verify(e: &Evidence) -> Result<()> {
    let (token, placeholder) = (e.token, e.placeholder);
    let sandbox_saw = format!("{}{}", combined(e.client), combined(e.contrast));
    check(&[
        (
            stdout(e.client).contains(&format!("{ENV_VAR}={placeholder}\n")),
            format!("the sandbox's ${ENV_VAR} was the placeholder {placeholder}"),
        ),
        (
            !sandbox_saw.contains(token),
            "the token appears nowhere in the sandbox's output".to_owned(),
        ),
        (
            line_with(e.api_saw, API_HOST).contains(&format!("Authorization: Bearer {token}")),
            format!("{API_HOST} received the real token"),
        ),
        (
            stdout(e.client).contains("token accepted"),
            format!("{API_HOST} accepted the request"),
        ),
        (
            line_with(e.other_saw, OTHER_HOST).contains(&format!("Bearer {placeholder}")),
            format!("{OTHER_HOST}, outside the secret's scope, got only the placeholder"),
        ),
        (
            stdout(e.contrast).contains("\nHTTP 403\n"),
            format!("veil refused {UPSTREAM_IP} with a 403"),
        ),
        (
            e.audit.contains("secret_injected") && e.audit.contains("placeholder_not_injected"),
            "the audit log has secret_injected and placeholder_not_injected".to_owned(),
        ),
        (
            !e.audit.contains(token),
            "the token appears nowhere in the audit log".to_owned(),
        ),
    ])
}

/// Prints each claim with whether it holds; fails naming the ones that do not.
fn check(claims: &[(bool, String)]) -> Result<()> {
    let mut failed = Vec::new();
    for (holds, claim) in claims {
        println!("{} {claim}", if *holds { "ok:  " } else { "FAIL:" });
        if !holds {
            failed.push(claim.as_str());
        }
    }
    if !failed.is_empty() {
        bail!(
            "the demo did not show what it should: {}",
            failed.join("; ")
        );
    }
    Ok(())
}

/// A command's stdout and stderr, as text.
fn combined(out: &Output) -> String {
    format!("{}{}", stdout(out), String::from_utf8_lossy(&out.stderr))
}

/// The first line of `text` starting with `prefix`, or "".
fn line_with<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_fails_naming_what_did_not_hold() {
        assert!(check(&[(true, "a".to_owned())]).is_ok());
        let err = check(&[(true, "a".to_owned()), (false, "b".to_owned())])
            .expect_err("a claim does not hold");
        assert!(err.to_string().ends_with(": b"));
    }

    #[test]
    fn line_with_finds_the_first_matching_line() {
        assert_eq!(line_with("a 1\nb 2\nb 3\n", "b"), "b 2");
        assert_eq!(line_with("a 1\n", "b"), "");
    }
}
