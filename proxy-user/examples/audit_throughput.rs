//! Measures what durability costs the audit log: records per second through the group-commit
//! writer with `record` (queued; the caller does not wait) and with `record_durable` (each
//! caller waits until its record is flushed), under 1, 16 and 256 concurrent writers.
//!
//! ```text
//! cargo run --release -p veil --example audit_throughput [-- DIR [SECONDS]]
//! ```
//!
//! DIR is where the scratch databases go (default: the system's temporary directory): put it
//! on the file system veil's state directory lives on, since the flush is what is measured.
//! SECONDS (default 3) is how long each durable run lasts. Numbers are printed, never checked.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use veil::audit::{AuditHandle, AuditStore, AuditWriter, ConnProtocol, Connection, Event, Verdict};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map_or_else(std::env::temp_dir, PathBuf::from);
    let seconds: u64 = args.next().map_or(Ok(3), |s| s.parse())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!("scratch databases in {}", dir.display());
    println!(
        "{:>8}  {:>16}  {:>16}  {:>14}",
        "writers", "record/s", "durable/s", "durable p50"
    );
    for writers in [1, 16, 256] {
        let queued = runtime.block_on(queued_rate(&dir, writers))?;
        let (durable, p50) = runtime.block_on(durable_rate(&dir, writers, seconds))?;
        println!(
            "{writers:>8}  {queued:>16.0}  {durable:>16.0}  {:>11.2} ms",
            p50.as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

/// Records queued in total by the fire-and-forget runs.
const QUEUED_TOTAL: usize = 200_000;

/// Records per second with `record`: `writers` tasks queue [`QUEUED_TOTAL`] records between
/// them, timed until the writer has flushed the last one.
async fn queued_rate(
    dir: &std::path::Path,
    writers: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let scratch = tempfile::tempdir_in(dir)?;
    let db = sled::open(scratch.path())?;
    let (audit, writer) = AuditWriter::spawn(AuditStore::open(&db, scratch.path())?);
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let audit = audit.clone();
            tokio::spawn(async move {
                for i in 0..QUEUED_TOTAL / writers {
                    audit.record(event(i));
                    if i % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }
    drop(audit);
    writer.shutdown().await;
    Ok((QUEUED_TOTAL / writers * writers) as f64 / started.elapsed().as_secs_f64())
}

/// Records per second with `record_durable` and the median wait: `writers` tasks each record
/// one after another for `seconds`.
async fn durable_rate(
    dir: &std::path::Path,
    writers: usize,
    seconds: u64,
) -> Result<(f64, Duration), Box<dyn std::error::Error>> {
    let scratch = tempfile::tempdir_in(dir)?;
    let db = sled::open(scratch.path())?;
    let (audit, writer) = AuditWriter::spawn(AuditStore::open(&db, scratch.path())?);
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..writers)
        .map(|_| tokio::spawn(durable_loop(audit.clone(), until)))
        .collect();
    let mut waits = Vec::new();
    for task in tasks {
        waits.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    writer.shutdown().await;
    waits.sort_unstable();
    let p50 = waits.get(waits.len() / 2).copied().unwrap_or_default();
    Ok((waits.len() as f64 / elapsed, p50))
}

/// Records durably until `until`; returns how long each record took.
async fn durable_loop(
    audit: AuditHandle,
    until: Instant,
) -> Result<Vec<Duration>, veil::audit::AuditError> {
    let mut waits = Vec::new();
    let mut i = 0;
    while Instant::now() < until {
        let asked = Instant::now();
        audit.record_durable(event(i)).await?;
        waits.push(asked.elapsed());
        i += 1;
    }
    Ok(waits)
}

/// A connection record of realistic size.
fn event(i: usize) -> Event {
    Event::Connection(Connection {
        sandbox: Some("bench".into()),
        cgroup_id: 4242,
        pid: 10_000 + (i % 1000) as u32,
        uid: 1000,
        gid: 1000,
        comm: "curl".into(),
        // Both literals are valid socket addresses.
        client: Some("127.0.0.1:40000".parse().expect("a socket address")),
        destination: Some("127.0.0.2:443".parse().expect("a socket address")),
        host: Some("api.example.test".into()),
        protocol: ConnProtocol::Tls,
        rule: Some("api.example.test".into()),
        verdict: Verdict::Allowed,
        reason: "relayed".into(),
        count: 1,
    })
}
