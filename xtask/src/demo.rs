//! `cargo xtask demo`: a live demo of what veil is for. An operator stores an API token in veil;
//! a sandboxed client sees only a placeholder for it and sends that; veil intercepts the
//! client's TLS, swaps the placeholder for the token on the way to the API (a local stand-in
//! with a throwaway test PKI), and audits the swap. It runs on a private instance (its own
//! bpffs dir, cgroup parent, state and run dirs) that is removed afterwards, whatever happens.

use std::{fs, net::Ipv4Addr, os::unix::fs::OpenOptionsExt, path::Path, process::Output};

use anyhow::{bail, Context, Result};
use veil_testkit::{
    pki::TestCa,
    random_token,
    remote::{ensure_remote_hosts, remote_ip},
    Installation,
};

use crate::{
    build_cmd,
    demo_check::{self, Evidence},
    demo_cleanup::Cleanup,
    demo_support::{
        output, output_with_input, print_indented, print_log, print_text, say, stdout, step,
    },
    demo_upstream, process, setup, Workspace,
};

/// The stand-in API listens here; the names below resolve to it (with curl's `--resolve`).
pub const UPSTREAM_IP: Ipv4Addr = remote_ip(2);

/// The API the secret is for.
pub const API_HOST: &str = "api.demo.test";

/// A host the egress policy allows but the secret's scope does not include.
pub const OTHER_HOST: &str = "other.demo.test";

/// The secret's name.
const SECRET: &str = "github-main";
/// The variable sandboxes get the secret's placeholder in.
pub const ENV_VAR: &str = "GITHUB_TOKEN";

/// Runs the demo.
pub fn run(ws: &Workspace) -> Result<()> {
    step("Checking the toolchain and mounting bpffs (cargo xtask setup)");
    setup::run(ws)?;
    step("Building the eBPF object and veil (cargo xtask build)");
    build_cmd::run(ws, false)?;
    let veil = ws.root.join("target/debug/veil");
    if !process::is_executable(&veil) {
        bail!("the build succeeded but {} is missing", veil.display());
    }

    let name = format!("veil-demo-{}", std::process::id());
    // From here on, everything the demo creates is removed when `cleanup` drops.
    let mut cleanup = Cleanup {
        instance: Installation::new(&veil, &name)?,
        upstream: None,
    };
    let tmp = cleanup.instance.dir().to_path_buf();

    step("Making a throwaway test PKI for the stand-in API (rcgen)");
    let pki = TestCa::new("veil-demo-CA")?.write_files(
        &tmp.join("pki"),
        &[API_HOST, OTHER_HOST, &UPSTREAM_IP.to_string()],
    )?;
    say(&format!(
        "A CA, and a certificate it issued for {API_HOST}, {OTHER_HOST} and {UPSTREAM_IP}. veil \
         will trust this CA for upstream TLS (--upstream-ca), as it trusts the public roots for \
         real APIs. The keys live only in {}.",
        tmp.join("pki").display()
    ));

    step("Starting the stand-in remote API: HTTPS with python3's ssl and http.server");
    ensure_remote_hosts()?;
    let token = random_token("demo_")?;
    let token_file = tmp.join("api-token");
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&token_file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, token.as_bytes()))
        .context("writing the API's token file")?;
    let upstream =
        cleanup
            .upstream
            .insert(demo_upstream::start(&tmp, UPSTREAM_IP, &pki, &token_file)?);
    let (upstream_addr, upstream_log) = (upstream.addr, upstream.process.log_path().to_path_buf());
    let port = upstream_addr.port();
    // The log's first line says where it listens; what follows is what it received.
    let mut upstream_seen = 0;
    new_lines(&upstream_log, &mut upstream_seen);
    say(&format!(
        "It plays {API_HOST}, the API the token is for: it accepts exactly one bearer token, \
         {token} (a fake one made just now from /dev/urandom), and answers 401 to anything else. \
         There is no DNS here: the clients below reach both names at {upstream_addr} with curl's \
         --resolve."
    ));

    step("Starting the veil daemon (veil serve) on a private instance");
    let instance = &mut cleanup.instance;
    println!("Every veil command below runs on this demo's own instance, set in the environment:");
    for (var, value) in instance.env() {
        println!("    export {var}={}", value.to_string_lossy());
    }
    let policy = format!("[egress]\nallow = [\"{API_HOST}\", \"{OTHER_HOST}\"]\n");
    instance.set_policy(&policy)?;
    println!("{}:", instance.config_path().display());
    print_text(&policy);
    let ca = pki.ca.to_str().context("the PKI's path is not UTF-8")?;
    let mut serve = instance.command();
    serve.args(["serve", "--upstream-ca", ca]);
    println!("$ {} &", process::show_program(&serve));
    instance.start_daemon(&["--upstream-ca", ca], &[])?;
    let instance = &cleanup.instance;
    let serve_log = instance.daemon_log_path();
    say(&format!(
        "veil loaded its eBPF programs (pinned under {bpf}) and attached them to the cgroup \
         {cg}: every TCP connect from a sandbox below it is steered in the kernel to veil's \
         listener {listen}. veil completes sandboxes' TLS with certificates from its own CA, \
         and lets through only what the egress policy allows: {API_HOST} and {OTHER_HOST}.",
        bpf = instance.bpf_dir().display(),
        cg = instance.cgroup_parent().display(),
        listen = instance.listen(),
    ));

    step("The operator stores the token in veil (veil secrets create)");
    let mut create = instance.command();
    create.args([
        "secrets",
        "create",
        SECRET,
        "--env-var",
        ENV_VAR,
        "--host",
        API_HOST,
    ]);
    let created = output_with_input(&mut create, &token)?;
    print_indented(&created);
    if !created.status.success() {
        bail!("veil secrets create failed ({})", created.status);
    }
    let placeholder = field(&stdout(&created), "proxy_value")
        .context("veil secrets create printed no proxy_value")?;
    say(&format!(
        "veil keeps the value encrypted in its state dir and hands out only the placeholder \
         {placeholder}: sandboxes get it in ${ENV_VAR}. --host {API_HOST} scopes the secret: \
         veil puts the real value only into requests whose TLS-verified host is {API_HOST}."
    ));

    step("A client in a sandbox calls the API with its $GITHUB_TOKEN (veil run)");
    let client = sandboxed(
        instance,
        &[
            format!("echo \"inside the sandbox: {ENV_VAR}=${ENV_VAR}\""),
            curl(API_HOST, port, true),
        ],
    )?;
    print_indented(&client);
    let api_saw = new_lines(&upstream_log, &mut upstream_seen);
    if !client.status.success() {
        print_log("veil serve's log", &serve_log);
        bail!("the sandboxed client failed ({})", client.status);
    }
    say(&format!(
        "The sandbox only ever had the placeholder, and sent it. veil's eBPF program steered \
         curl's connect to veil, which completed curl's TLS handshake with a certificate from \
         veil's CA (veil run points curl at it: SSL_CERT_FILE, CURL_CA_BUNDLE), read the \
         request, found the placeholder in its Authorization header and, {API_HOST} being in \
         the secret's scope, swapped in the token, recorded the swap durably, and forwarded the \
         request over TLS verified against the demo CA. Outside the sandbox, the API logged:"
    ));
    print_text(&api_saw);

    step("For contrast: the placeholder sent elsewhere");
    let contrast = sandboxed(
        instance,
        &[
            curl(OTHER_HOST, port, true),
            curl(&UPSTREAM_IP.to_string(), port, false),
        ],
    )?;
    print_indented(&contrast);
    let other_saw = new_lines(&upstream_log, &mut upstream_seen);
    say(&format!(
        "{OTHER_HOST} is allowed by the egress policy but outside the secret's scope: veil left \
         the placeholder alone, so the server got nothing it could use (401). {UPSTREAM_IP} by \
         address is allowed by no egress rule: veil answered 403 itself and connected nowhere. \
         The API logged:"
    ));
    print_text(&other_saw);

    step("Reading the audit log (veil audit)");
    let table = output(instance.command().arg("audit"))?;
    print_indented(&table);
    let mut json = instance.command();
    json.args(["audit", "--json"]);
    if audit_has_kind_flag(instance) {
        json.args(["--kind", "secret_injected"]);
    }
    let json = output(&mut json)?;
    print_indented(&json);
    if !table.status.success() || !json.status.success() {
        print_log("veil serve's log", &serve_log);
        bail!("veil audit failed");
    }
    say(&format!(
        "The secret_injected row is the swap: which secret ({SECRET}), for which verified host \
         ({API_HOST}) and header, from which sandbox (demo) and process (pid, command), never \
         the value. placeholder_not_injected is {OTHER_HOST}, with why the placeholder was \
         kept; the connection rows carry each decision of the egress policy, 403 included. The \
         operator's secret_created is there too. `--json` prints the same records as JSON \
         lines, for scripts."
    ));

    step("Checking what the demo showed");
    demo_check::verify(&Evidence {
        token: &token,
        placeholder: &placeholder,
        client: &client,
        contrast: &contrast,
        api_saw: &api_saw,
        other_saw: &other_saw,
        audit: &format!("{}{}", stdout(&table), stdout(&json)),
    })?;
    drop(cleanup);
    println!("\nDemo finished.");
    Ok(())
}

/// `curl` in the sandbox, sending `$GITHUB_TOKEN` as a bearer token to `https://HOST:PORT/repos`
/// (resolving `host` to the stand-in API when `resolve`), and printing the HTTP status.
fn curl(host: &str, port: u16, resolve: bool) -> String {
    let resolve = if resolve {
        format!(" --resolve {host}:{port}:{UPSTREAM_IP}")
    } else {
        String::new()
    };
    format!(
        "curl -sS --max-time 10{resolve} -H \"Authorization: Bearer ${ENV_VAR}\" \
         -w \"HTTP %{{http_code}}\\n\" https://{host}:{port}/repos"
    )
}

/// Runs `lines` as one `sh -c` script in the sandbox `demo`.
fn sandboxed(instance: &Installation, lines: &[String]) -> Result<Output> {
    let mut run = instance.command();
    run.args(["run", "--sandbox", "demo", "--", "sh", "-c"])
        .arg(lines.join("; "));
    output(&mut run)
}

/// Whether this veil's `audit` filters by record kind (`--kind`).
fn audit_has_kind_flag(instance: &Installation) -> bool {
    instance
        .command()
        .args(["audit", "--help"])
        .output()
        .is_ok_and(|out| stdout(&out).contains("--kind"))
}

/// The value of `key` in `key   value` lines (veil's plain output of one secret).
fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(char::is_whitespace)?;
        (k == key).then(|| v.trim().to_owned())
    })
}

/// The lines of the log at `path` after the first `seen`; advances `seen` past them.
fn new_lines(path: &Path, seen: &mut usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let new: Vec<&str> = text.lines().skip(*seen).collect();
    *seen += new.len();
    new.iter().map(|line| format!("{line}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_reads_key_value_lines() {
        let text = "id           abc\nproxy_value  IRONSH_PROXY_x\nhosts        a, b\n";
        assert_eq!(
            field(text, "proxy_value").as_deref(),
            Some("IRONSH_PROXY_x")
        );
        assert_eq!(field(text, "hosts").as_deref(), Some("a, b"));
        assert_eq!(field(text, "nope"), None);
    }

    #[test]
    fn curl_sends_the_placeholder_variable() {
        let line = curl("api.demo.test", 8443, true);
        assert!(line.contains(" --resolve api.demo.test:8443:10.250.0.2 "));
        assert!(line.contains("-H \"Authorization: Bearer $GITHUB_TOKEN\""));
        assert!(line.ends_with(" https://api.demo.test:8443/repos"));
        assert!(!curl("10.250.0.2", 1, false).contains("--resolve"));
    }
}
