//! nginx-light, twice. The upstream ([`start`]): TLS with h1 and h2 on [`super::UPSTREAM_IP`];
//! `/` answers a small body, `/auth` says whether the `Authorization` header it received
//! carried the real secret (the correctness check; an echo of the header would come back
//! scrubbed), `/big` is a large file, and `/upload` reads a request body of any size before
//! it answers. The peer ([`start_peer`]): a TLS-terminating reverse proxy in front of the
//! upstream doing veil's swap, the fast proxy veil is compared with.

use std::{
    fs::{self, File},
    net::SocketAddr,
    path::Path,
    process::Command,
};

use anyhow::{Context, Result};

use veil_testkit::{pki::PkiFiles, Daemon};

use super::STARTUP_TIMEOUT;

/// Debian's echo module for nginx (nginx-light depends on it): `/upload` reads the whole
/// request body before it answers. `return` would answer at once and read the body only after,
/// and a proxy that passes such an early answer on ends the client's upload before it has sent
/// the body.
const ECHO_MODULE: &str = "/usr/lib/nginx/modules/ngx_http_echo_module.so";

/// What `/auth` answers when the request carried `Bearer <the real secret>`.
pub const REAL_SECRET_SEEN: &str = "the upstream received the real secret";

/// Starts nginx on `addr` with `pki`'s certificate; its files live in `dir`. `big_bytes` is
/// the size of `/big`; `/auth` compares what it gets with `secret`.
pub fn start(
    dir: &Path,
    addr: SocketAddr,
    pki: &PkiFiles,
    big_bytes: u64,
    secret: &str,
) -> Result<Daemon> {
    let www = dir.join("www");
    fs::create_dir_all(&www)?;
    // A sparse file reads as zeros at memory speed: the disk never limits the download.
    File::create(www.join("big"))
        .and_then(|f| f.set_len(big_bytes))
        .context("creating the large file")?;
    let common = common(dir);
    let conf = format!(
        r#"load_module {ECHO_MODULE};
user root;
worker_processes 1;
{common}    map $http_authorization $auth_seen {{
        "Bearer {secret}" "{REAL_SECRET_SEEN}";
        default "the upstream received something else";
    }}
    server {{
        listen {addr} ssl http2 backlog=4096;
        server_name _;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
        root {www};
        location = / {{ default_type text/plain; return 200 "ok\n"; }}
        location = /auth {{ default_type text/plain; return 200 "$auth_seen"; }}
        location = /upload {{
            default_type text/plain;
            echo_read_request_body;
            echo "uploaded";
        }}
        location = /big {{ }}
    }}
}}
"#,
        cert = pki.cert.display(),
        key = pki.key.display(),
        www = www.display(),
    );
    let conf_path = dir.join("nginx.conf");
    fs::write(&conf_path, conf)?;
    let mut cmd = Command::new("nginx");
    cmd.arg("-c").arg(&conf_path).args(["-g", "daemon off;"]);
    let mut nginx = Daemon::spawn("nginx", &mut cmd, &dir.join("nginx.log"))?;
    nginx.wait_tcp(addr, STARTUP_TIMEOUT)?;
    Ok(nginx)
}

/// Where the peer's requests go, and what it swaps.
pub struct Peer<'a> {
    /// The peer's listener (the client dials it directly).
    pub listen: SocketAddr,
    /// The upstream it forwards to.
    pub upstream: SocketAddr,
    /// The upstream's name: the SNI the peer sends and the name it verifies the upstream's
    /// certificate for.
    pub host: &'a str,
    /// The placeholder it replaces in `Authorization: Bearer ...`.
    pub placeholder: &'a str,
    /// The secret it puts in instead.
    pub secret: &'a str,
}

/// Starts nginx as a proxy doing veil's swap (the peer a proxy is compared with): TLS to the
/// client with `pki`'s certificate (h1 and h2), TLS to the upstream verified against `pki`'s CA
/// for `peer.host`, a keep-alive pool of upstream connections, and `Authorization: Bearer
/// <placeholder>` replaced with the secret in a `map`. Two workers. Its files live in `dir`.
pub fn start_peer(dir: &Path, peer: &Peer<'_>, pki: &PkiFiles) -> Result<Daemon> {
    fs::create_dir_all(dir)?;
    let common = common(dir);
    let conf = format!(
        r#"user root;
worker_processes 2;
{common}    map $http_authorization $auth {{
        "Bearer {placeholder}" "Bearer {secret}";
        default $http_authorization;
    }}
    upstream bench_upstream {{
        server {upstream};
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }}
    server {{
        listen {listen} ssl http2 backlog=4096;
        server_name _;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
        location / {{
            proxy_pass https://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host {host};
            proxy_set_header Authorization $auth;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate {ca};
            proxy_ssl_name {host};
            proxy_ssl_server_name on;
            proxy_ssl_protocols TLSv1.2 TLSv1.3;
            proxy_request_buffering off;
            proxy_max_temp_file_size 0;
        }}
    }}
}}
"#,
        placeholder = peer.placeholder,
        secret = peer.secret,
        upstream = peer.upstream,
        listen = peer.listen,
        host = peer.host,
        cert = pki.cert.display(),
        key = pki.key.display(),
        ca = pki.ca.display(),
    );
    let conf_path = dir.join("nginx.conf");
    fs::write(&conf_path, conf)?;
    let mut cmd = Command::new("nginx");
    cmd.arg("-c").arg(&conf_path).args(["-g", "daemon off;"]);
    let mut nginx = Daemon::spawn("nginx (peer)", &mut cmd, &dir.join("nginx.log"))?;
    nginx.wait_tcp(peer.listen, STARTUP_TIMEOUT)?;
    Ok(nginx)
}

/// The lines both nginx configurations share after `worker_processes`: files under `dir`,
/// limits, keep-alive and HTTP/2 settings, up to the start of the `http` block's own content.
fn common(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 30000; }}
worker_rlimit_nofile 65536;
http {{
    access_log off;
    client_body_temp_path {d}/tmp-body;
    proxy_temp_path {d}/tmp-proxy;
    fastcgi_temp_path {d}/tmp-fastcgi;
    uwsgi_temp_path {d}/tmp-uwsgi;
    scgi_temp_path {d}/tmp-scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    http2_max_requests 1000000;
    http2_max_concurrent_streams 256;
    client_max_body_size 0;
"#
    )
}
