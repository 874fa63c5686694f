//! The demo's stand-in remote API: an HTTPS server in python3 (`ssl` and `http.server`) that
//! accepts one bearer token and logs the Authorization header of every request it gets.

use std::{
    fs,
    net::{Ipv4Addr, SocketAddr},
    path::Path,
    process::Command,
    time::Duration,
};

use anyhow::{Context, Result};
use veil_testkit::{free_port, pki::PkiFiles, Daemon};

use crate::process;

/// How long the server may take to come up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The server. It knows the one token it accepts (read from a file, as a real API keeps a record
/// of the tokens it issued), answers 200 to it and 401 to anything else without echoing a
/// valid token back, and logs what each request carried, outside the sandbox.
const SCRIPT: &str = r#"import http.server, ssl, sys

host, port, cert, key, token_file = sys.argv[1:]
with open(token_file) as f:
    expected = "Bearer " + f.read().strip()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        name = self.headers.get("Host", "").split(":")[0]
        auth = self.headers.get("Authorization")
        print(f"{name} got GET {self.path} from {self.client_address[0]}, Authorization: {auth}",
              flush=True)
        if auth == expected:
            status, body = 200, f"upstream {name}: token accepted, here are your repos\n"
        else:
            status, body = 401, f"upstream {name}: not a valid token: Authorization: {auth}\n"
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass  # do_GET logs what matters


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def finish_request(self, request, client_address):
        # The handshake runs in the connection's thread, so a slow client blocks no one.
        try:
            tls = context.wrap_socket(request, server_side=True)
        except OSError as e:
            print(f"TLS handshake from {client_address[0]} failed: {e}", flush=True)
            return
        with tls:
            self.RequestHandlerClass(tls, client_address, self)


context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server = Server((host, int(port)), Handler)
print(f"listening on https://{host}:{port}/", flush=True)
server.serve_forever()
"#;

/// The running stand-in API; stopped when dropped.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server: its log has one line per request, with the Authorization header it got.
    pub process: Daemon,
}

/// Starts the server on a free port of `ip`, accepting the token in `token_file`, with the
/// server certificate from `pki`, and waits until it listens. Its files go in `dir`.
pub fn start(dir: &Path, ip: Ipv4Addr, pki: &PkiFiles, token_file: &Path) -> Result<Upstream> {
    let addr = SocketAddr::from((ip, free_port(ip)?));
    let script = dir.join("upstream.py");
    fs::write(&script, SCRIPT).context("writing upstream.py")?;
    let log = dir.join("upstream.log");
    let mut python = Command::new("python3");
    python
        .arg("-u")
        .arg(&script)
        .args([ip.to_string(), addr.port().to_string()])
        .args([&pki.cert, &pki.key])
        .arg(token_file);
    println!("$ {} &", process::show_program(&python));
    let mut server = Daemon::spawn("the stand-in API", &mut python, &log)?;
    server.wait_ready(STARTUP_TIMEOUT, || {
        fs::read_to_string(&log).is_ok_and(|text| text.contains("listening on"))
    })?;
    Ok(Upstream {
        addr,
        process: server,
    })
}
