//! Harness for veil's integration tests: they run the real `veil` binary as root against the
//! real kernel, with real cgroups, bpffs pins and processes.
//!
//! Every [`Instance`] is a separate veil installation ([`veil_testkit::Installation`]: its own
//! state and runtime directories, bpffs directory, sandbox parent cgroup and listener port), so
//! tests run in parallel and twice in a row. Dropping an instance kills its daemon and removes
//! everything it made, also when the test failed.
//!
//! [`audit`] reads the audit log and edits a stopped veil's database behind its back;
//! [`probe`] runs the Python probe that tries one way out of a sandbox; [`udp`] has the UDP
//! servers that stand in for DNS resolvers the kernel allows, [`dns`] one that answers a name
//! for veil's DNS proxy; [`echo_upstream`] is what the upstream answers when it hands a secret
//! back on purpose. Upstreams live on stand-in remote hosts ([`REMOTE_A`], ...), never on the
//! host's loopback, which a `veil run` sandbox does not share.

pub mod audit;
pub mod containers;
pub mod dns;
pub mod echo_upstream;
pub mod git;
pub mod probe;
pub mod udp;

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    net::{IpAddr, SocketAddr, TcpListener},
    os::unix::{ffi::OsStrExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Output},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

pub mod tls_env;
pub mod upstream;

use aya::maps::{HashMap, Map, MapData};
use veil_ebpf::{ConnRecord, PeerKey, Settings, MAP_BY_COOKIE, MAP_BY_PEER, MAP_SETTINGS};
pub use veil_testkit::{api::request as api_request, cgroup::remove_cgroup, pki};
use veil_testkit::{mounts::cgroup2_mount, Installation};

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

/// The root of the checkout the tests run from.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
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

/// The first stand-in remote host, `remote_ip(2)` ([`veil_testkit::remote`]): off the host's
/// loopback, which a `veil run` sandbox does not share. Most upstreams listen here.
pub const REMOTE_A: &str = "10.250.0.2";

/// A second stand-in remote host, `remote_ip(3)`.
pub const REMOTE_B: &str = "10.250.0.3";

/// The stand-in remote host's IPv6 address ([`veil_testkit::remote::REMOTE_IP6`]).
pub const REMOTE_V6: &str = "fd7e:5ee1::2";

/// The policy every instance starts with: the echo servers' addresses ([`REMOTE_A`],
/// [`REMOTE_B`]).
pub const DEFAULT_POLICY: &str = "[egress]\nallow = [\"10.250.0.2/32\", \"10.250.0.3/32\"]\n";

/// Makes the stand-in remote hosts' addresses local to the host (once per process); panics
/// if that fails. Everything that starts a server on them calls it.
pub fn remote_hosts() {
    veil_testkit::remote::ensure_remote_hosts().expect("the stand-in remote hosts' addresses");
}

/// One veil installation for one test, with the assertions tests make on it.
pub struct Instance {
    installation: Installation,
    cgroups: Vec<PathBuf>,
}

impl Instance {
    /// A fresh installation; nothing runs yet.
    pub fn new() -> Self {
        require_root();
        remote_hosts();
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "veil-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut instance = Self {
            installation: Installation::new(&veil_bin(), &id).expect("a veil installation"),
            cgroups: Vec::new(),
        };
        instance.set_policy(DEFAULT_POLICY);
        // Sandboxed commands run scripts and binaries from the checkout, which is invisible
        // in a sandbox when it is under /tmp (private to each sandbox).
        instance.set_env("VEIL_RO_BIND", &workspace_root().display().to_string());
        instance
    }

    /// A name unique to this test run, used for the bpffs directory and cgroups.
    pub fn id(&self) -> &str {
        self.installation.name()
    }

    /// The temporary directory holding state, runtime directory and logs (removed on drop).
    pub fn dir(&self) -> &Path {
        self.installation.dir()
    }

    /// A directory in [`Instance::dir`] any user may write to: sandboxes write files there
    /// when run with `--bind` it.
    pub fn work_dir(&self) -> PathBuf {
        self.installation.work_dir()
    }

    /// veil's IPv4 listener.
    pub fn listen(&self) -> SocketAddr {
        self.installation.listen()
    }

    /// veil's IPv6 listener.
    pub fn listen6(&self) -> SocketAddr {
        self.installation.listen6()
    }

    /// The bpffs directory.
    pub fn bpf_dir(&self) -> &Path {
        self.installation.bpf_dir()
    }

    /// The sandbox parent cgroup.
    pub fn cgroup_parent(&self) -> &Path {
        self.installation.cgroup_parent()
    }

    /// Adds `var=value` to the environment of every `veil` command of this installation
    /// (such as `VEIL_DNS_RESOLVERS`).
    pub fn set_env(&mut self, var: &str, value: &str) {
        self.installation.set_env(var, value);
    }

    /// Replaces the egress policy (the `[egress]` section's `allow` and `passthrough` lists);
    /// a running daemon picks it up on SIGHUP (see [`Instance::reload`]).
    pub fn set_policy(&self, policy: &str) {
        self.installation
            .set_policy(policy)
            .expect("writing the config file");
    }

    /// Sends SIGHUP to the daemon so it re-reads its configuration.
    pub fn reload(&self) {
        if let Some(daemon) = self.installation.daemon() {
            daemon.signal(libc::SIGHUP);
        }
    }

    /// The configuration file veil reads.
    pub fn config_path(&self) -> PathBuf {
        self.installation.config_path()
    }

    /// The CA bundle sandboxes trust.
    pub fn ca_bundle(&self) -> PathBuf {
        self.installation.ca_bundle()
    }

    /// A `veil` command for this installation.
    pub fn veil(&self) -> Command {
        self.installation.command()
    }

    /// The environment every `veil` command of this installation gets, for a `veil` started
    /// through another program (`unshare`, `script`).
    pub fn env_vars(&self) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        self.veil()
            .get_envs()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
            .collect()
    }

    /// Runs `veil ARGS` to completion.
    pub fn run_veil(&self, args: &[&str]) -> Output {
        self.installation.output(args).expect("veil runs")
    }

    /// Starts `veil serve EXTRA` and waits until its control API answers.
    pub fn start_daemon(&mut self, extra: &[&str]) {
        self.start_daemon_with_env(extra, &[]);
    }

    /// Starts `veil serve EXTRA` with extra environment variables (such as `RUST_LOG`) and
    /// waits until its control API answers.
    pub fn start_daemon_with_env(&mut self, extra: &[&str], env: &[(&str, &str)]) {
        if let Err(e) = self.installation.start_daemon(extra, env) {
            panic!("{e}\n{}", self.daemon_log());
        }
    }

    /// Sends `signal` to the daemon and waits for it to exit.
    pub fn stop_daemon(&mut self, signal: i32) {
        self.installation.stop_daemon(signal);
    }

    /// The daemon's peak resident memory (VmHWM), KiB.
    pub fn daemon_peak_rss_kib(&self) -> u64 {
        let pid = self.daemon().pid().expect("the daemon runs");
        let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmHWM line")
    }

    /// Sends `signal` to the running daemon without waiting (SIGSTOP and SIGCONT, say).
    pub fn signal_daemon(&self, signal: i32) {
        self.daemon().signal(signal);
    }

    fn daemon(&self) -> &veil_testkit::Daemon {
        self.installation.daemon().expect("the daemon runs")
    }

    /// The control API's Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.installation.socket()
    }

    /// The runtime directory (the control socket, the namespaces of sandboxes).
    pub fn run_dir(&self) -> PathBuf {
        self.installation.run_dir()
    }

    /// The state directory (the database and the CA).
    pub fn state_dir(&self) -> PathBuf {
        self.installation.state_dir()
    }

    /// Sends one request to the control API and returns the status and the body as JSON
    /// (`null` when the body is not JSON).
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let (status, body) = self.api_text(method, path, body);
        (status, serde_json::from_str(&body).unwrap_or_default())
    }

    /// `GET path` on the control socket: the status code and the body.
    pub fn api_get(&self, path: &str) -> (u16, String) {
        self.api_text("GET", path, None)
    }

    fn api_text(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        self.installation
            .api(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Stores a secret through the control API and returns what the API answered.
    pub fn create_secret(
        &self,
        name: &str,
        value: &str,
        env_var: &str,
        hosts: &[&str],
    ) -> serde_json::Value {
        self.installation
            .create_secret(name, value, env_var, hosts)
            .unwrap_or_else(|e| panic!("creating secret {name}: {e}"))
    }

    /// The sled database directory.
    pub fn db_path(&self) -> PathBuf {
        self.state_dir().join("db")
    }

    /// What the daemon has logged so far.
    pub fn daemon_log(&self) -> String {
        self.installation.daemon_log()
    }

    /// Makes a cgroup of this instance's own (removed on drop) and returns its path.
    pub fn make_cgroup(&mut self, name: &str) -> PathBuf {
        let dir = cgroup2_mount()
            .expect("a cgroup2 mount")
            .join(format!("{}-{name}", self.id()));
        fs::create_dir(&dir).expect("creating a test cgroup");
        self.cgroups.push(dir.clone());
        dir
    }

    /// Entries in the pinned (by cookie, by peer) connection maps.
    pub fn map_entries(&self) -> (usize, usize) {
        let count = |name: &str| -> usize {
            let data = MapData::from_pin(self.bpf_dir().join("maps").join(name))
                .expect("the pinned map opens");
            match name {
                MAP_BY_COOKIE => HashMap::<_, u64, ConnRecord>::try_from(Map::HashMap(data))
                    .expect("a hash map")
                    .keys()
                    .count(),
                _ => HashMap::<_, PeerKey, ConnRecord>::try_from(Map::HashMap(data))
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
        let data = MapData::from_pin(self.bpf_dir().join("maps").join(MAP_SETTINGS))
            .expect("the pinned settings map opens");
        let map = HashMap::<_, u64, Settings>::try_from(Map::HashMap(data)).expect("a hash map");
        let mut keys: Vec<u64> = map.keys().map(|k| k.expect("a key")).collect();
        keys.sort_unstable();
        keys
    }

    /// The ids of the links pinned for the cgroup at `dir`, one per hook, in pin name order.
    pub fn link_ids(&self, dir: &Path) -> Vec<u32> {
        let link_dir = self
            .bpf_dir()
            .join("links")
            .join(cgroup_id(dir).to_string());
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
}

impl Default for Instance {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop_daemon(libc::SIGKILL);
        for dir in &self.cgroups {
            let _ = remove_cgroup(dir);
        }
        // Dropping the installation removes its cgroup parent, bpffs directory and files.
    }
}

/// The cgroup id of the cgroup at `dir` (its inode number).
fn cgroup_id(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .ino()
}

/// A named network namespace (`ip netns add`) with its loopback up, deleted when dropped.
pub struct NetNs(String);

impl NetNs {
    /// Makes the namespace `name`; panics if `ip` fails.
    pub fn new(name: &str) -> Self {
        let ok = Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip netns add {name}");
        let ns = Self(name.to_owned());
        let ok = Command::new("ip")
            .args(["-n", name, "link", "set", "lo", "up"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "bringing lo up in {name}");
        ns
    }

    /// Its name, for `ip netns exec`.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The file it is mounted on, for `veil attach --netns`.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
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

/// Echo servers on several addresses of the host: each answers `TOKEN\n` with
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
        remote_hosts();
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

/// Polls `check` for up to ten seconds.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use veil_testkit::remote::{remote_ip, REMOTE_IP6};

    use super::*;

    #[test]
    fn the_remote_addresses_are_the_testkits() {
        assert_eq!(REMOTE_A.parse::<Ipv4Addr>(), Ok(remote_ip(2)));
        assert_eq!(REMOTE_B.parse::<Ipv4Addr>(), Ok(remote_ip(3)));
        assert_eq!(REMOTE_V6.parse::<IpAddr>(), Ok(IpAddr::V6(REMOTE_IP6)));
        assert_eq!(
            DEFAULT_POLICY,
            tls_env::policy(&[&format!("{REMOTE_A}/32"), &format!("{REMOTE_B}/32")])
        );
    }
}
