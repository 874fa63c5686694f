//! Running a started daemon: the proxy's accept loops, the control API, the kernel refusal
//! forwarder and the eBPF log forwarder as tasks, and an orderly shutdown that flushes the
//! audit log.

use std::{collections::HashMap, sync::Arc};

use tokio::{
    io::{unix::AsyncFd, Interest},
    net::{TcpListener, UdpSocket},
    signal::unix::{signal, Signal, SignalKind},
    sync::mpsc,
    task::JoinHandle,
};

use crate::{
    api, audit,
    daemon::{Daemon, DaemonError, Options, Started},
    dns::DnsService,
    netns::NsListeners,
    refusals,
    relay::{self, Gate},
    sandbox::NsEvent,
    steering::BpfLogLevel,
};

/// A daemon with its tasks running.
pub struct Running {
    daemon: Arc<Daemon>,
    tasks: Vec<JoinHandle<()>>,
    writer: audit::AuditWriter,
}

/// Starts the daemon described by `options` and its tasks. Must run inside a tokio runtime.
pub fn spawn(options: &Options) -> Result<Running, DaemonError> {
    match crate::limits::raise_open_files() {
        Ok(open_files) => log::debug!("open files limit: {open_files}"),
        Err(e) => log::warn!("could not raise the open files limit: {e}"),
    }
    let Started {
        daemon,
        listeners,
        gate,
        writer,
        namespaces,
        own_netns,
        dns,
    } = Daemon::start(options)?;
    let hangups = signal(SignalKind::hangup()).map_err(|source| DaemonError::Io {
        path: options.paths.run_dir.clone(),
        source,
    })?;
    let mut tasks = vec![
        tokio::spawn(relay::accept_loop(
            listeners.proxy,
            Arc::clone(&gate),
            own_netns,
        )),
        tokio::spawn(serve_namespaces(namespaces, Arc::clone(&gate), dns)),
        tokio::spawn(api::server::serve(listeners.api, Arc::clone(&daemon))),
        tokio::spawn(reload_on_hangup(hangups, Arc::clone(&daemon))),
        tokio::spawn(refusals::forward(
            daemon.refusal_reader()?,
            Arc::clone(&daemon),
        )),
    ];
    if !options.audit_retention.keeps_everything() {
        tasks.push(tokio::spawn(audit::enforce_retention(
            daemon.audit().clone(),
            options.audit_retention,
        )));
    }
    if let Some(proxy6) = listeners.proxy6 {
        tasks.push(tokio::spawn(relay::accept_loop(proxy6, gate, own_netns)));
    }
    if let Some((listener, key)) = listeners.api_tcp {
        log::info!(
            "control API also on {} (bearer token in {})",
            daemon.api_addr().map(|a| a.to_string()).unwrap_or_default(),
            options.paths.api_key().display()
        );
        tasks.push(tokio::spawn(api::tcp::serve(
            listener,
            key,
            Arc::clone(&daemon),
        )));
    }
    if options.steering.log_level != BpfLogLevel::Off {
        let logger = daemon.bpf_logger()?;
        // SAFETY: the logger owns its ring buffer's fd, which stays open and unchanged until
        // the AsyncFd (which owns the logger) is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(logger, Interest::READABLE) }.map_err(
            |e| DaemonError::Io {
                path: options.paths.bpf_dir.clone(),
                source: std::io::Error::other(e.to_string()),
            },
        )?;
        tasks.push(tokio::spawn(forward_bpf_logs(fd)));
    }
    let listeners: Vec<String> = daemon.listeners().iter().map(ToString::to_string).collect();
    log::info!(
        "veil is steering sandboxes to {} (control socket {})",
        listeners.join(" and "),
        options.paths.socket().display()
    );
    Ok(Running {
        daemon,
        tasks,
        writer,
    })
}

impl Running {
    /// The running daemon.
    pub fn daemon(&self) -> &Arc<Daemon> {
        &self.daemon
    }

    /// Stops accepting connections and API requests, then waits until every audit record
    /// queued so far is on disk.
    pub async fn shutdown(self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        drop(self.daemon);
        self.writer.shutdown().await;
    }
}

/// Serves veil's listeners in sandboxes' own network namespaces as sandboxes come and go:
/// one accept loop per proxy listener and one DNS task per DNS socket, all stopped with the
/// sandbox (or with this task).
async fn serve_namespaces(
    mut events: mpsc::UnboundedReceiver<NsEvent>,
    gate: Arc<Gate>,
    dns: DnsService,
) {
    let mut served: HashMap<u64, Vec<AbortOnDrop>> = HashMap::new();
    while let Some(event) = events.recv().await {
        match event {
            NsEvent::Serve {
                sandbox,
                name,
                listeners,
            } => {
                let tasks = serve_namespace(sandbox, &name, listeners, &gate, &dns);
                served.insert(sandbox, tasks);
            }
            NsEvent::Stop { sandbox } => {
                served.remove(&sandbox);
                dns.answers().forget(sandbox);
            }
        }
    }
}

/// Starts the tasks serving one sandbox's listeners.
fn serve_namespace(
    sandbox: u64,
    name: &str,
    listeners: NsListeners,
    gate: &Arc<Gate>,
    dns: &DnsService,
) -> Vec<AbortOnDrop> {
    let name = Some(name.to_owned());
    let cookie = listeners.cookie;
    let mut tasks = Vec::new();
    let mut spawn = |task: tokio::task::JoinHandle<()>| tasks.push(AbortOnDrop(task));
    let failed = |e: std::io::Error| log::error!("serving sandbox {sandbox}'s namespace: {e}");
    for listener in listeners.proxy {
        match TcpListener::from_std(listener) {
            Ok(l) => spawn(tokio::spawn(relay::accept_loop(
                l,
                Arc::clone(gate),
                cookie,
            ))),
            Err(e) => failed(e),
        }
    }
    for socket in listeners.dns_udp {
        match UdpSocket::from_std(socket) {
            Ok(s) => spawn(tokio::spawn(dns.serve_udp(s, sandbox, name.clone()))),
            Err(e) => failed(e),
        }
    }
    for listener in listeners.dns_tcp {
        match TcpListener::from_std(listener) {
            Ok(l) => spawn(tokio::spawn(dns.serve_tcp(l, sandbox, name.clone()))),
            Err(e) => failed(e),
        }
    }
    tasks
}

/// A task that is aborted when this handle is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Re-reads the egress policy on every SIGHUP; a bad file leaves the old policy in force.
async fn reload_on_hangup(mut hangups: Signal, daemon: Arc<Daemon>) {
    while hangups.recv().await.is_some() {
        match daemon.policy().reload() {
            Ok(rules) => log::info!("SIGHUP: reloaded the egress policy ({rules} allow rules)"),
            Err(e) => log::error!("SIGHUP: keeping the old egress policy: {e}"),
        }
    }
}

async fn forward_bpf_logs(mut fd: AsyncFd<aya_log::EbpfLogger<&'static dyn log::Log>>) {
    loop {
        match fd.readable_mut().await {
            Ok(mut guard) => {
                guard.get_inner_mut().flush();
                guard.clear_ready();
            }
            Err(e) => {
                log::error!("reading the eBPF log ring: {e}");
                return;
            }
        }
    }
}
