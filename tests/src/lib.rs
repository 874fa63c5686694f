//! Harness for veil's integration tests: they run the real `veil` binary as root against the
//! real kernel, with real cgroups, bpffs pins and processes.
//!
//! Every [`Instance`] is a separate veil installation (its own state and runtime directories,
//! bpffs directory, sandbox parent cgroup and listener port), so tests run in parallel and
//! twice in a row. Dropping an instance kills its daemon and removes everything it made, also
//! when the test failed.
//!
//! [`probe`] runs the Python probe that tries one way out of a sandbox; [`udp`] has the UDP
//! servers that stand in for DNS resolvers; [`auditdb`] edits a stopped veil's audit log
//! behind its back.

pub mod auditdb;
pub mod probe;
pub mod udp;

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    net::{IpAddr, SocketAddr, TcpListener},
    os::unix::{ffi::OsStrExt, fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

pub mod pki;
pub mod tls_env;
pub mod upstream;

use aya::maps::{HashMap, Map, MapData};
use veil_ebpf::{ConnRecord, Endpoint, Settings, MAP_BY_COOKIE, MAP_BY_PEER, MAP_SETTINGS};

/// Panics unless the tests run as root: they must never skip silently.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "veil's integration tests need root (BPF, cgroups, bpffs): run them with `cargo xtask test` as root"
    );
}

/// The directory cargo put the binaries in (`target/debug`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    // target/debug/deps/<test> -> target/debug
    exe.parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps")
        .to_path_buf()
}

/// The `veil` binary under test (`VEIL_BIN` overrides).
pub fn veil_bin() -> PathBuf {
    let path = std::env::var_os("VEIL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().join("veil"));
    assert!(
        path.is_file(),
        "{} is missing: build it first (`cargo xtask test` does)",
        path.display()
    );
    path
}

/// The cgroup2 mount point.
pub fn cgroup2_mount() -> PathBuf {
    let mounts = fs::read_to_string("/proc/mounts").expect("/proc/mounts is readable");
    mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .expect("a cgroup2 file system is mounted")
}

/// The policy every instance starts with: the echo servers' addresses.
pub const DEFAULT_POLICY: &str = "[egress]\nallow = [\"127.0.0.2/32\", \"127.0.0.3/32\"]\n";

/// One veil installation with its own paths.
pub struct Instance {
    /// A name unique to this test run, used for the bpffs directory and cgroups.
    pub id: String,
    /// The temporary directory holding state, runtime directory and logs.
    pub tmp: tempfile::TempDir,
    /// veil's IPv4 listener.
    pub listen: SocketAddr,
    /// veil's IPv6 listener.
    pub listen6: SocketAddr,
    /// Extra environment for every `veil` command of this installation (such as
    /// `VEIL_DNS_RESOLVERS`).
    pub env: Vec<(String, String)>,
    /// The bpffs directory.
    pub bpf_dir: PathBuf,
    /// The sandbox parent cgroup.
    pub cgroup_parent: PathBuf,
    daemon: Option<Child>,
    cgroups: Vec<PathBuf>,
}

impl Instance {
    /// A fresh installation; nothing runs yet.
    pub fn new() -> Self {
        require_root();
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "veil-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{id}-"))
            .tempdir()
            .expect("a temporary directory");
        // Sandboxed workloads running as other users read the CA bundle in here.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))
            .expect("opening up the temporary directory");
        let instance = Self {
            listen: free_port("127.0.0.1:0"),
            listen6: free_port("[::1]:0"),
            env: Vec::new(),
            bpf_dir: PathBuf::from("/sys/fs/bpf").join(&id),
            cgroup_parent: cgroup2_mount().join(&id),
            id,
            tmp,
            daemon: None,
            cgroups: Vec::new(),
        };
        instance.set_policy(DEFAULT_POLICY);
        instance
    }

    /// Replaces the egress policy (the `[egress]` section's `allow` and `passthrough` lists);
    /// a running daemon picks it up on SIGHUP (see [`Instance::reload`]).
    pub fn set_policy(&self, policy: &str) {
        fs::write(self.config_path(), policy).expect("writing the config file");
    }

    /// Sends SIGHUP to the daemon so it re-reads its configuration.
    pub fn reload(&self) {
        if let Some(child) = &self.daemon {
            // SAFETY: kill(2) on our own running child.
            unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
        }
    }

    /// The configuration file veil reads.
    pub fn config_path(&self) -> PathBuf {
        self.tmp.path().join("veil.toml")
    }

    /// The CA bundle sandboxes trust.
    pub fn ca_bundle(&self) -> PathBuf {
        self.tmp.path().join("run/ca-bundle.pem")
    }

    /// A `veil` command for this installation.
    pub fn veil(&self) -> Command {
        let mut cmd = Command::new(veil_bin());
        cmd.env("VEIL_STATE_DIR", self.tmp.path().join("state"))
            .env("VEIL_RUN_DIR", self.tmp.path().join("run"))
            .env("VEIL_BPF_DIR", &self.bpf_dir)
            .env("VEIL_CGROUP_PARENT", &self.cgroup_parent)
            .env("VEIL_LISTEN", self.listen.to_string())
            .env("VEIL_LISTEN6", self.listen6.to_string())
            .env("VEIL_CONFIG", self.config_path())
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs `veil ARGS` to completion.
    pub fn run_veil(&self, args: &[&str]) -> Output {
        self.veil().args(args).output().expect("veil runs")
    }

    /// Starts `veil serve EXTRA` and waits until its control API answers.
    pub fn start_daemon(&mut self, extra: &[&str]) {
        self.start_daemon_with_env(extra, &[]);
    }

    /// Starts `veil serve EXTRA` with extra environment variables (such as `RUST_LOG`) and
    /// waits until its control API answers.
    pub fn start_daemon_with_env(&mut self, extra: &[&str], env: &[(&str, &str)]) {
        assert!(self.daemon.is_none(), "daemon already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.daemon_log_path())
            .expect("daemon log file");
        let child = self
            .veil()
            .arg("serve")
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("veil serve starts");
        self.daemon = Some(child);
        let socket = self.tmp.path().join("run/veil.sock");
        let deadline = Instant::now() + Duration::from_secs(15);
        while !healthy(&socket) {
            if let Some(Some(status)) = self.daemon.as_mut().map(|c| c.try_wait().ok().flatten()) {
                panic!("veil serve exited with {status}:\n{}", self.daemon_log());
            }
            assert!(
                Instant::now() < deadline,
                "veil serve did not come up:\n{}",
                self.daemon_log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to the daemon and waits for it to exit.
    pub fn stop_daemon(&mut self, signal: i32) {
        if let Some(mut child) = self.daemon.take() {
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(child.id() as i32, signal) };
            let _ = child.wait();
        }
    }

    /// The daemon's peak resident memory (VmHWM), KiB.
    pub fn daemon_peak_rss_kib(&self) -> u64 {
        let pid = self.daemon.as_ref().expect("the daemon runs").id();
        let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmHWM line")
    }

    /// Sends `signal` to the running daemon without waiting (SIGSTOP and SIGCONT, say).
    pub fn signal_daemon(&self, signal: i32) {
        let child = self.daemon.as_ref().expect("the daemon runs");
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(child.id() as i32, signal) };
    }

    /// The control API's Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.tmp.path().join("run/veil.sock")
    }

    /// The state directory (the database and the CA).
    pub fn state_dir(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    /// Sends one request to the control API and returns the status and the body as JSON
    /// (`null` when the body is not JSON).
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let (status, body) = api_request(&self.socket(), method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        (status, serde_json::from_str(&body).unwrap_or_default())
    }

    /// The sled database directory.
    pub fn db_path(&self) -> PathBuf {
        self.state_dir().join("db")
    }

    /// `GET path` on the control socket: the status code and the body.
    pub fn api_get(&self, path: &str) -> (u16, String) {
        let socket = self.tmp.path().join("run/veil.sock");
        let mut stream = std::os::unix::net::UnixStream::connect(&socket)
            .unwrap_or_else(|e| panic!("{}: {e}", socket.display()));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("a read timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: veil\r\nConnection: close\r\n\r\n"
        )
        .expect("sending the request");
        let mut response = String::new();
        std::io::Read::read_to_string(&mut stream, &mut response).expect("reading the response");
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status in {response:?}"));
        let body = response
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
            .to_owned();
        (status, body)
    }

    /// What the daemon has logged so far.
    pub fn daemon_log(&self) -> String {
        fs::read_to_string(self.daemon_log_path()).unwrap_or_default()
    }

    /// The audit log as JSON values (`veil audit --json`).
    pub fn audit(&self) -> Vec<serde_json::Value> {
        let out = self.run_veil(&["audit", "--json"]);
        assert!(
            out.status.success(),
            "veil audit failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
            .collect()
    }

    /// Connection records in the audit log.
    pub fn connections(&self) -> Vec<serde_json::Value> {
        self.audit()
            .into_iter()
            .filter(|r| r["kind"] == "connection")
            .collect()
    }

    /// Waits until the audit log holds at least `n` connection records (they are written
    /// asynchronously, off the data path) and returns them all.
    pub fn wait_connections(&self, n: usize) -> Vec<serde_json::Value> {
        self.wait_records("connection", n)
    }

    /// Waits until the audit log holds at least `n` records of `kind` and returns them all.
    pub fn wait_records(&self, kind: &str, n: usize) -> Vec<serde_json::Value> {
        let mut records = Vec::new();
        eventually(&format!("{n} {kind} records"), || {
            records = self
                .audit()
                .into_iter()
                .filter(|r| r["kind"] == kind)
                .collect();
            records.len() >= n
        });
        records
    }

    /// Makes a cgroup of this instance's own (removed on drop) and returns its path.
    pub fn make_cgroup(&mut self, name: &str) -> PathBuf {
        let dir = cgroup2_mount().join(format!("{}-{name}", self.id));
        fs::create_dir(&dir).expect("creating a test cgroup");
        self.cgroups.push(dir.clone());
        dir
    }

    /// Entries in the pinned (by cookie, by peer) connection maps.
    pub fn map_entries(&self) -> (usize, usize) {
        let count = |name: &str| -> usize {
            let data = MapData::from_pin(self.bpf_dir.join("maps").join(name))
                .expect("the pinned map opens");
            match name {
                MAP_BY_COOKIE => HashMap::<_, u64, ConnRecord>::try_from(Map::HashMap(data))
                    .expect("a hash map")
                    .keys()
                    .count(),
                _ => HashMap::<_, Endpoint, ConnRecord>::try_from(Map::HashMap(data))
                    .expect("a hash map")
                    .keys()
                    .count(),
            }
        };
        (count(MAP_BY_COOKIE), count(MAP_BY_PEER))
    }

    /// The cgroup ids that have settings in the pinned settings map (0 holds the defaults),
    /// sorted.
    pub fn settings_keys(&self) -> Vec<u64> {
        let data = MapData::from_pin(self.bpf_dir.join("maps").join(MAP_SETTINGS))
            .expect("the pinned settings map opens");
        let map = HashMap::<_, u64, Settings>::try_from(Map::HashMap(data)).expect("a hash map");
        let mut keys: Vec<u64> = map.keys().map(|k| k.expect("a key")).collect();
        keys.sort_unstable();
        keys
    }

    /// The ids of the links pinned for the cgroup at `dir`, one per hook, in pin name order.
    pub fn link_ids(&self, dir: &Path) -> Vec<u32> {
        let link_dir = self.bpf_dir.join("links").join(cgroup_id(dir).to_string());
        let mut pins: Vec<PathBuf> = fs::read_dir(&link_dir)
            .unwrap_or_else(|e| panic!("{}: {e}", link_dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .collect();
        pins.sort();
        assert!(
            !pins.is_empty(),
            "no links pinned in {}",
            link_dir.display()
        );
        pins.iter()
            .map(|path| {
                let link = aya::programs::links::PinnedLink::from_pin(path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                aya::programs::links::FdLink::from(link)
                    .info()
                    .expect("link info")
                    .id()
            })
            .collect()
    }

    fn daemon_log_path(&self) -> PathBuf {
        self.tmp.path().join("daemon.log")
    }
}

impl Default for Instance {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop_daemon(libc::SIGKILL);
        for dir in self
            .cgroups
            .iter()
            .chain(std::iter::once(&self.cgroup_parent))
        {
            remove_cgroup(dir);
        }
        let _ = fs::remove_dir_all(&self.bpf_dir);
    }
}

/// The cgroup id of the cgroup at `dir` (its inode number).
fn cgroup_id(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .ino()
}

/// Spawns `cmd` as a member of the cgroup at `dir`.
pub fn spawn_in_cgroup(dir: &Path, cmd: &mut Command) -> Child {
    let procs = std::ffi::CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
        .expect("path without NUL");
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let n = libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
            if n == 1 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    cmd.spawn().expect("spawning into the cgroup")
}

/// Kills what is in `dir`, then removes it and its children.
pub fn remove_cgroup(dir: &Path) {
    if !dir.exists() {
        return;
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                remove_cgroup(&entry.path());
            }
        }
    }
    let _ = fs::write(dir.join("cgroup.kill"), "1");
    let deadline = Instant::now() + Duration::from_secs(5);
    while fs::remove_dir(dir).is_err() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
}

/// Echo servers on several local addresses: each answers `TOKEN\n` with
/// `LISTEN_ADDR TOKEN\n`, so a client can tell which destination it really reached.
pub struct EchoServers {
    /// Where they listen.
    pub addrs: Vec<SocketAddr>,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl EchoServers {
    /// Starts `per_ip` listeners on each of `ips`, on ports the kernel picks.
    pub fn start(ips: &[&str], per_ip: usize) -> Self {
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut addrs = Vec::new();
        let mut threads = Vec::new();
        for ip in ips {
            let ip: IpAddr = ip.parse().expect("an IP address");
            for _ in 0..per_ip {
                let listener = TcpListener::bind((ip, 0)).expect("binding an echo server");
                listener
                    .set_nonblocking(true)
                    .expect("nonblocking listener");
                let addr = listener.local_addr().expect("local addr");
                addrs.push(addr);
                let (accepted, stop) = (Arc::clone(&accepted), Arc::clone(&stop));
                threads.push(thread::spawn(move || {
                    serve_echo(listener, addr, &accepted, &stop)
                }));
            }
        }
        Self {
            addrs,
            accepted,
            stop,
            threads,
        }
    }

    /// How many connections the servers accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The addresses joined with commas, as `veil-test-client many` takes them.
    pub fn addr_list(&self) -> String {
        self.addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for EchoServers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn serve_echo(listener: TcpListener, addr: SocketAddr, accepted: &AtomicUsize, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                accepted.fetch_add(1, Ordering::SeqCst);
                thread::spawn(move || {
                    let _ = stream.set_nonblocking(false);
                    let mut line = String::new();
                    let mut reader = BufReader::new(&stream);
                    if reader.read_line(&mut line).is_ok() {
                        let _ =
                            (&stream).write_all(format!("{addr} {}\n", line.trim_end()).as_bytes());
                    }
                });
            }
            Err(_) => thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// A port nobody listens on right now at `any` (`127.0.0.1:0`, `[::1]:0`).
fn free_port(any: &str) -> SocketAddr {
    TcpListener::bind(any)
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// Sends one HTTP/1.1 request over the Unix socket `socket` and returns the status and body.
pub fn api_request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    use std::io::Read;
    let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: veil\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no response head in {response:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
    Ok((status, body.to_owned()))
}

fn healthy(socket: &Path) -> bool {
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: veil\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut status = String::new();
    BufReader::new(stream).read_line(&mut status).is_ok() && status.contains(" 200 ")
}

/// Polls `check` for up to ten seconds.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}
