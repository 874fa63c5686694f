//! Scenario 5: many idle keep-alive connections through veil, and what each costs in veil's
//! memory. A Python asyncio client (`idle.py`) in a sandbox opens them, sends one request on
//! each (so both legs are set up), and holds them while veil's resident memory is read.

use std::{
    fs,
    io::{BufRead, BufReader},
    process::{Child, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use super::{interrupt, report::Row, status_kib, Bench, Target, HOST, UPSTREAM_IP};

/// The client, written next to the other temporary files at run time.
const CLIENT: &str = include_str!("idle.py");

/// How long opening every connection may take.
const OPEN_LIMIT: Duration = Duration::from_secs(300);

/// Opens `bench.idle_conns` connections and adds veil's memory per connection.
pub fn run(bench: &Bench, rows: &mut Vec<Row>, notes: &mut Vec<String>) -> Result<()> {
    let count = bench.idle_conns;
    if count < bench.mode.idle_conns {
        notes.push(format!(
            "Scenario 5 held {count} connections, not {}: the open-files hard limit here \
             cannot be raised (no CAP_SYS_RESOURCE) and veil holds two descriptors per \
             connection.",
            bench.mode.idle_conns
        ));
    }
    let mut row = Row::new(
        &format!("5. {count} idle keep-alive connections"),
        "veil memory per connection (KiB)",
    );
    let pid = bench.veil.pid().context("veil serve is not running")?;
    let script = bench.tmp.join("idle.py");
    fs::write(&script, CLIENT)?;
    // One run, in every mode: a second would reuse the heap the first grew and show less
    // than a connection costs.
    println!("{count} idle connections: veil");
    let before = rss_kib(pid)?;
    let mut client = bench
        .veil
        .run_command(&[
            "python3".into(),
            script.display().to_string(),
            HOST.into(),
            UPSTREAM_IP.to_string(),
            bench.upstream.port().to_string(),
            count.to_string(),
            format!("Bearer {}", bench.placeholder),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the idle-connection client")?;
    let held = wait_ready(&mut client, count);
    // Let the last handshakes' transient buffers go before reading.
    thread::sleep(Duration::from_secs(1));
    let after = rss_kib(pid);
    // Closing stdin tells the client to close everything and exit.
    drop(client.stdin.take());
    let output = client.wait_with_output()?;
    held.with_context(|| {
        format!(
            "the idle-connection client failed: {}\nveil's log:\n{}",
            String::from_utf8_lossy(&output.stderr),
            bench.veil.log()
        )
    })?;
    row.push(
        Target::Veil,
        after?.saturating_sub(before) as f64 / count as f64,
    );
    // Give veil a moment to tear the connections down before the next scenario.
    thread::sleep(Duration::from_secs(2));
    rows.push(row);
    Ok(())
}

/// Waits for the client's `ready N` line.
fn wait_ready(client: &mut Child, count: usize) -> Result<()> {
    let stdout = client.stdout.take().context("no stdout")?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let started = Instant::now();
    let line = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => break line,
            Err(mpsc::RecvTimeoutError::Timeout) if started.elapsed() < OPEN_LIMIT => {
                if let Err(e) = interrupt::check() {
                    let _ = client.kill();
                    return Err(e);
                }
            }
            Err(_) => {
                let _ = client.kill();
                bail!("the connections were not all open within {OPEN_LIMIT:?}");
            }
        }
    };
    if line.trim() != format!("ready {count}") {
        bail!("the client said {:?}, not \"ready {count}\"", line.trim());
    }
    Ok(())
}

/// A process's resident memory, KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS").with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}
