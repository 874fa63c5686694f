//! The single task that owns audit appends and group-commits them.

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::error::SendError;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender, WeakUnboundedSender};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{AuditError, AuditStore, Event, Record};

/// The running writer task, used to shut it down.
///
/// The task owns every append to its [`AuditStore`]: it takes everything
/// queued through [`AuditHandle`]s (up to 1024 records at a time), appends it
/// as one batch with a single flush, then acknowledges each waiter.
///
/// The queue is unbounded on purpose: records are small and must never be
/// dropped, and [`AuditHandle::record`] must never block the proxy. A bounded
/// queue would force one of the two. Group commit keeps the writer ahead of
/// any realistic connection rate, so the queue only grows while the disk
/// stalls, and a failing disk is logged loudly.
#[derive(Debug)]
pub struct AuditWriter {
    /// Weak, so that dropping every [`AuditHandle`] also ends the task.
    commands: WeakUnboundedSender<Command>,
    task: JoinHandle<()>,
}

impl AuditWriter {
    /// Spawns the writer task for `store` on the current Tokio runtime and
    /// returns a handle to record through.
    ///
    /// The task runs until [`AuditWriter::shutdown`] is called or every
    /// [`AuditHandle`] is dropped, and in both cases writes everything queued
    /// before it exits.
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime, like [`tokio::spawn`].
    pub fn spawn(store: AuditStore) -> (AuditHandle, Self) {
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Self {
            commands: tx.downgrade(),
            task: tokio::spawn(run(store, rx)),
        };
        (AuditHandle { commands: tx }, writer)
    }

    /// Stops accepting records, waits until everything already queued is
    /// stored and flushed, and waits for the task to exit.
    ///
    /// Call this before the Tokio runtime shuts down, which would cancel the
    /// task and lose whatever is still queued. Records sent afterwards are
    /// lost (and logged); durable ones fail with [`AuditError::WriterGone`].
    pub async fn shutdown(self) {
        if let Some(commands) = self.commands.upgrade() {
            // Fails only if the task has already closed the queue, in which
            // case it is draining it anyway.
            let _ = commands.send(Command::Shutdown);
        }
        if let Err(e) = self.task.await {
            log::error!("audit writer task failed: {e}");
        }
    }
}

/// Records audit events through the writer task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditHandle {
    commands: UnboundedSender<Command>,
}

impl AuditHandle {
    /// Queues `event`, timestamped now, without waiting for it to be stored.
    ///
    /// Never blocks. If the writer is gone the event is logged as an error
    /// instead.
    pub fn record(&self, event: Event) {
        if let Err(SendError(command)) = self.commands.send(Command::record(event, None)) {
            log::error!("audit writer is gone, audit record lost: {command:?}");
        }
    }

    /// Queues `event`, timestamped now, and resolves with its stored record
    /// once it has been flushed to disk.
    ///
    /// The event is queued when this is called, not when the future is first
    /// polled, so call order is seq order for calls from one task.
    pub fn record_durable(
        &self,
        event: Event,
    ) -> impl Future<Output = Result<Record, AuditError>> + Send + 'static {
        let (ack, acked) = oneshot::channel();
        let queued = self
            .commands
            .send(Command::record(event, Some(ack)))
            .map_err(|_| AuditError::WriterGone);
        async move {
            queued?;
            acked.await.map_err(|_| AuditError::WriterGone)?
        }
    }
}

/// Most records appended as one batch.
const MAX_BATCH: usize = 1024;

/// A message to the writer task.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every command is a record; boxing it would cost an allocation each"
)]
enum Command {
    /// Store a record.
    Record {
        time_ms: u64,
        event: Event,
        /// Where to report the outcome, for durable records.
        ack: Option<Ack>,
    },
    /// Stop accepting records, drain the queue and exit.
    Shutdown,
}

impl Command {
    /// A record command for `event`, timestamped now.
    fn record(event: Event, ack: Option<Ack>) -> Self {
        Self::Record {
            time_ms: now_ms(),
            event,
            ack,
        }
    }
}

/// The sender half of a durable record's acknowledgement.
type Ack = oneshot::Sender<Result<Record, AuditError>>;

/// The writer task: appends queued records in batches until the queue is
/// closed (by [`Command::Shutdown`] or by every sender being dropped) and
/// drained.
async fn run(store: AuditStore, mut commands: UnboundedReceiver<Command>) {
    let mut received = Vec::with_capacity(MAX_BATCH);
    while commands.recv_many(&mut received, MAX_BATCH).await > 0 {
        let mut batch = Vec::with_capacity(received.len());
        let mut acks = Vec::with_capacity(received.len());
        for command in received.drain(..) {
            match command {
                Command::Record {
                    time_ms,
                    event,
                    ack,
                } => {
                    batch.push((time_ms, event));
                    acks.push(ack);
                }
                // Records queued before the close are still received.
                Command::Shutdown => commands.close(),
            }
        }
        append(&store, batch, acks).await;
    }
}

/// Appends `batch` off the async runtime (flushing blocks on the disk) and
/// reports the outcome to each record's ack, in order.
async fn append(store: &AuditStore, batch: Vec<(u64, Event)>, acks: Vec<Option<Ack>>) {
    if batch.is_empty() {
        return;
    }
    let store = store.clone();
    // Sending an ack fails only when the waiter stopped waiting; nobody is
    // left to tell, so those results are ignored.
    match tokio::task::spawn_blocking(move || store.append(batch)).await {
        Ok(Ok(records)) => {
            for (ack, record) in acks.into_iter().zip(records) {
                if let Some(ack) = ack {
                    let _ = ack.send(Ok(record));
                }
            }
        }
        Ok(Err(e)) => {
            log::error!("audit log write failed, {} records lost: {e}", acks.len());
            for ack in acks.into_iter().flatten() {
                let _ = ack.send(Err(e.clone()));
            }
        }
        // Dropping the acks makes their waiters fail with `WriterGone`.
        Err(e) => log::error!("audit log write aborted, {} records lost: {e}", acks.len()),
    }
}

/// The current time in milliseconds since the Unix epoch; 0 if the clock is
/// before the epoch.
fn now_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::audit::{Filter, SandboxChange};

    fn attached(name: &str) -> Event {
        Event::SandboxAttached(SandboxChange {
            name: name.into(),
            cgroup: format!("/sys/fs/cgroup/{name}"),
            cgroup_id: 1,
        })
    }

    fn open(dir: &tempfile::TempDir) -> (sled::Db, AuditStore) {
        let db = sled::open(dir.path()).unwrap();
        let store = AuditStore::open(&db).unwrap();
        (db, store)
    }

    #[tokio::test]
    async fn record_durable_resolves_with_the_stored_record() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = open(&dir);
        let (audit, writer) = AuditWriter::spawn(store.clone());
        let before = now_ms();
        let record = audit.record_durable(attached("a")).await.unwrap();
        assert_eq!(record.seq, 1);
        assert_eq!(record.event, attached("a"));
        assert!(record.time_ms >= before && record.time_ms <= now_ms());
        assert_eq!(store.query(&Filter::default()).unwrap(), [record]);
        writer.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_durable_records_all_land_with_distinct_seqs() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = open(&dir);
        let (audit, writer) = AuditWriter::spawn(store.clone());
        let tasks: Vec<_> = (0..1000)
            .map(|i| {
                let audit = audit.clone();
                tokio::spawn(async move { audit.record_durable(attached(&i.to_string())).await })
            })
            .collect();
        let mut seqs = BTreeSet::new();
        for task in tasks {
            let record = task.await.unwrap().unwrap();
            assert!(seqs.insert(record.seq));
        }
        assert_eq!(seqs, (1..=1000).collect());
        let stored = store.query(&Filter::default()).unwrap();
        assert_eq!(stored.len(), 1000);
        let names: BTreeSet<_> = stored.iter().filter_map(|r| r.event.sandbox()).collect();
        assert_eq!(names.len(), 1000);
        writer.shutdown().await;
    }

    #[tokio::test]
    async fn shutdown_flushes_fire_and_forget_records() {
        let dir = tempfile::tempdir().unwrap();
        let (db, store) = open(&dir);
        let (audit, writer) = AuditWriter::spawn(store);
        for i in 0..100 {
            audit.record(attached(&i.to_string()));
        }
        writer.shutdown().await;

        audit.record(attached("late"));
        assert!(matches!(
            audit.record_durable(attached("late")).await,
            Err(AuditError::WriterGone)
        ));
        drop(db);
        let (_db, store) = open(&dir);
        let stored = store.query(&Filter::default()).unwrap();
        assert_eq!(stored.len(), 100);
        for (i, record) in stored.iter().enumerate() {
            assert_eq!(record.event, attached(&i.to_string()));
        }
    }

    #[tokio::test]
    async fn dropping_every_handle_drains_and_ends_the_task() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = open(&dir);
        let (audit, writer) = AuditWriter::spawn(store.clone());
        audit.clone().record(attached("a"));
        audit.record(attached("b"));
        drop(audit);
        writer.task.await.unwrap();
        assert_eq!(store.query(&Filter::default()).unwrap().len(), 2);
    }
}
