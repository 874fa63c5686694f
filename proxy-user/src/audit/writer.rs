//! The single task that owns audit appends, group-commits them, and publishes
//! what it committed.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::error::SendError;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender, WeakUnboundedSender};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

use veil_core::audit::Aggregator;

use super::backlog::{spends_budget, Admission, Backlog};
use super::health::Health;
use super::{AuditError, AuditStore, ChainHead, Event, Record, RetentionPolicy};

/// The running writer task, used to shut it down.
///
/// The task owns every append to its [`AuditStore`]: it takes everything
/// queued through [`AuditHandle`]s (up to 1024 records at a time, once the runtime's
/// ready tasks have queued theirs), appends it
/// as one batch with a single flush, acknowledges each waiter, and publishes
/// the committed records to followers ([`super::Follow`]). It also applies
/// retention when asked ([`AuditHandle::retain`]), between batches, and writes
/// the summaries of repeated events ([`Aggregator`]) when their windows end.
///
/// Durable records are never dropped: whoever queues one waits for it, so
/// they are bounded by their waiters. Records queued without waiting are
/// summed first ([`Aggregator`]) and then spend their sandbox's budget of
/// waiting records ([`Backlog`]): a sandbox that has too many waiting loses its
/// own newest ones, counted in a `records_dropped` record, and never another
/// sandbox's. So the queue is bounded, and [`AuditHandle::record`] never blocks
/// the proxy. A failing disk is logged loudly and marks the log failing
/// ([`AuditHandle::is_healthy`]).
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
    /// before it exits. Followers see the end of the feed when it exits.
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime, like [`tokio::spawn`].
    pub fn spawn(store: AuditStore) -> (AuditHandle, Self) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        let shared = Arc::new(Shared {
            health: Health::default(),
            committed: Mutex::new(store.head()),
            intake: Mutex::new(Intake::default()),
        });
        let handle = AuditHandle {
            commands: tx,
            shared: Arc::clone(&shared),
            feed: feed.downgrade(),
        };
        let publisher = Publisher { feed, shared };
        let writer = Self {
            commands: handle.commands.downgrade(),
            task: tokio::spawn(run(store, rx, publisher)),
        };
        (handle, writer)
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
    shared: Arc<Shared>,
    /// Weak, so that followers see the feed end when the writer exits.
    feed: broadcast::WeakSender<Arc<Record>>,
}

impl AuditHandle {
    /// Queues `event`, timestamped now, without waiting for it to be stored.
    ///
    /// Never blocks. A repeat of a kernel refusal or refused connection is only
    /// counted, into a record written when its window ends ([`Aggregator`]); a
    /// record of a sandbox with too many records waiting is dropped and counted
    /// in a `records_dropped` record ([`Backlog`]). If the writer is gone the
    /// event is logged as an error instead.
    pub fn record(&self, event: Event) {
        let time_ms = now_ms();
        let mut intake = self.shared.intake();
        let now = intake.clock_ms();
        for event in intake.aggregator.offer(event, now) {
            if let Some(sandbox) = spends_budget(&event) {
                if let Admission::Dropped { first } = intake.backlog.admit(sandbox, event.count()) {
                    if first {
                        // Wakes the writer to report the drop; fails only when it is gone.
                        let _ = self.commands.send(Command::ReportDrops);
                    }
                    continue;
                }
            }
            let command = Command::Record {
                time_ms,
                event,
                ack: None,
            };
            if let Err(SendError(command)) = self.commands.send(command) {
                log::error!("audit writer is gone, audit record lost: {command:?}");
            }
        }
    }

    /// Queues `event`, timestamped now, and resolves with its stored record
    /// once it has been flushed to disk.
    ///
    /// The event is queued when this is called, not when the future is first
    /// polled, so call order is seq order for calls from one task. Fails at
    /// once with [`AuditError::Failing`] when the log is failing: whatever
    /// waits for this must not go ahead.
    pub fn record_durable(
        &self,
        event: Event,
    ) -> impl Future<Output = Result<Record, AuditError>> + Send + 'static {
        let (ack, acked) = oneshot::channel();
        let queued = match self.shared.health.failure() {
            Some(reason) => Err(AuditError::Failing {
                reason: reason.to_owned(),
            }),
            None => self
                .commands
                .send(Command::record(event, Some(ack)))
                .map_err(|_| AuditError::WriterGone),
        };
        async move {
            queued?;
            acked.await.map_err(|_| AuditError::WriterGone)?
        }
    }

    /// Whether the audit log works: `false` once a write has failed. Check it
    /// before anything that must not happen unaudited.
    pub fn is_healthy(&self) -> bool {
        self.shared.health.failure().is_none()
    }

    /// Why the audit log is failing, with what and where; `None` while it works.
    pub fn failure(&self) -> Option<String> {
        self.shared.health.failure().map(str::to_owned)
    }

    /// The newest record the writer has committed (flushed and published).
    pub fn committed(&self) -> ChainHead {
        *self
            .shared
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `policy` now, between batches, and resolves with the
    /// `retention` record if anything was dropped.
    pub fn retain(
        &self,
        policy: RetentionPolicy,
    ) -> impl Future<Output = Result<Option<Record>, AuditError>> + Send + 'static {
        let (ack, acked) = oneshot::channel();
        let queued = self
            .commands
            .send(Command::Retain { policy, ack })
            .map_err(|_| AuditError::WriterGone);
        async move {
            queued?;
            acked.await.map_err(|_| AuditError::WriterGone)?
        }
    }

    /// A receiver of every record committed from now on; `None` once the
    /// writer has exited.
    pub(super) fn subscribe(&self) -> Option<broadcast::Receiver<Arc<Record>>> {
        self.feed.upgrade().map(|feed| feed.subscribe())
    }
}

/// Most records appended as one batch.
const MAX_BATCH: usize = 1024;

/// Most rounds [`gather`] lets the runtime run before a commit. Measured with scenario 1
/// (64 keep-alive connections, one durable record per request): 2, 8, 16 and 32 rounds
/// all carried 10-15% more requests/s than committing at once, within noise of each
/// other.
const GATHER_ROUNDS: usize = 8;

/// Committed records a follower may fall behind by before it has to re-read
/// from the store.
pub(super) const FEED_CAPACITY: usize = 4096;

/// How long repeats of a kernel refusal or refused connection are summed.
const AGGREGATION_WINDOW: Duration = Duration::from_secs(1);

/// Most keys summed at once; past that, new keys are recorded one by one (and
/// spend their sandbox's budget).
const AGGREGATION_KEYS: usize = 4096;

/// State the writer shares with every handle.
#[derive(Debug)]
struct Shared {
    health: Health,
    /// The newest committed link: flushed, and published to followers.
    committed: Mutex<ChainHead>,
    /// What records queued without waiting go through.
    intake: Mutex<Intake>,
}

impl Shared {
    fn intake(&self) -> MutexGuard<'_, Intake> {
        self.intake.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The repeats being summed and the budget of waiting records.
#[derive(Debug)]
struct Intake {
    aggregator: Aggregator,
    backlog: Backlog,
    /// The origin of the aggregator's monotonic milliseconds.
    started: Instant,
}

impl Default for Intake {
    fn default() -> Self {
        Self {
            aggregator: Aggregator::new(
                u64::try_from(AGGREGATION_WINDOW.as_millis()).unwrap_or(u64::MAX),
                AGGREGATION_KEYS,
            ),
            backlog: Backlog::default(),
            started: Instant::now(),
        }
    }
}

impl Intake {
    /// Monotonic milliseconds for the aggregator's windows.
    fn clock_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// How long until the oldest aggregation window ends; `None` when none is open.
    fn next_due_in(&self) -> Option<Duration> {
        let due = self.aggregator.next_due()?;
        Some(Duration::from_millis(due.saturating_sub(self.clock_ms())))
    }

    /// The records the writer adds itself, timestamped now: the summaries of
    /// windows that ended (all of them when `closing`), and the drops counted.
    fn housekeeping(&mut self, closing: bool) -> Vec<(u64, Event)> {
        let summaries = if closing {
            self.aggregator.drain()
        } else {
            let now = self.clock_ms();
            self.aggregator.due(now)
        };
        let drops = self.backlog.take_dropped();
        for drop in &drops {
            log::warn!(
                "{} audit records of sandbox {} were dropped: too many were waiting",
                drop.dropped,
                drop.sandbox.as_deref().unwrap_or("(none)")
            );
        }
        let time_ms = now_ms();
        summaries
            .into_iter()
            .chain(drops.into_iter().map(Event::RecordsDropped))
            .map(|event| (time_ms, event))
            .collect()
    }
}

/// A message to the writer task.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "records are the common message; boxing each would add an allocation per record"
)]
enum Command {
    /// Store a record.
    Record {
        time_ms: u64,
        event: Event,
        /// Where to report the outcome, for durable records.
        ack: Option<Ack>,
    },
    /// Apply a retention policy.
    Retain {
        policy: RetentionPolicy,
        ack: oneshot::Sender<Result<Option<Record>, AuditError>>,
    },
    /// Write the drops counted (sent by the first drop since the last report).
    ReportDrops,
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

/// Records waiting to be appended together, with their acks.
#[derive(Default)]
struct Pending {
    events: Vec<(u64, Event)>,
    acks: Vec<Option<Ack>>,
}

impl Pending {
    /// Adds records nobody waits for.
    fn push_unacked(&mut self, events: Vec<(u64, Event)>) {
        self.acks.extend(events.iter().map(|_| None));
        self.events.extend(events);
    }
}

/// The writer task: appends queued records in batches, and the summaries of
/// aggregation windows as they end, until the queue is closed (by
/// [`Command::Shutdown`] or by every sender being dropped) and drained; then
/// writes every summary still open and the drops counted.
async fn run(store: AuditStore, mut commands: UnboundedReceiver<Command>, publisher: Publisher) {
    let mut received = Vec::with_capacity(MAX_BATCH);
    loop {
        let due_in = publisher.shared.intake().next_due_in();
        tokio::select! {
            taken = commands.recv_many(&mut received, MAX_BATCH) => {
                if taken == 0 {
                    break;
                }
                gather(&mut commands, &mut received).await;
            }
            () = tokio::time::sleep(due_in.unwrap_or_default()), if due_in.is_some() => {}
        }
        let mut pending = Pending::default();
        for command in received.drain(..) {
            match command {
                Command::Record {
                    time_ms,
                    event,
                    ack,
                } => {
                    if ack.is_none() {
                        if let Some(sandbox) = spends_budget(&event) {
                            publisher.shared.intake().backlog.release(sandbox);
                        }
                    }
                    pending.events.push((time_ms, event));
                    pending.acks.push(ack);
                }
                Command::Retain { policy, ack } => {
                    // Everything queued before it goes first.
                    publisher.append(&store, std::mem::take(&mut pending)).await;
                    let _ = ack.send(publisher.retain(&store, policy).await);
                }
                // Drops are reported with every batch.
                Command::ReportDrops => {}
                // Records queued before the close are still received.
                Command::Shutdown => commands.close(),
            }
        }
        pending.push_unacked(publisher.shared.intake().housekeeping(false));
        publisher.append(&store, pending).await;
    }
    let mut last = Pending::default();
    last.push_unacked(publisher.shared.intake().housekeeping(true));
    publisher.append(&store, last).await;
}

/// Lets the tasks the runtime has ready run first, a few rounds while each brings more
/// records, and adds what they queued to `received`, so that one commit (and one flush)
/// serves as many records as are on their way. When the runtime has nothing else to run a
/// round returns at once and brings nothing, so a lone record waits for no timer.
async fn gather(commands: &mut UnboundedReceiver<Command>, received: &mut Vec<Command>) {
    for _ in 0..GATHER_ROUNDS {
        tokio::task::yield_now().await;
        let before = received.len();
        while received.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(command) => received.push(command),
                Err(_) => break,
            }
        }
        if received.len() == before {
            return;
        }
    }
}

/// The writer's side of the shared state and the feed.
struct Publisher {
    feed: broadcast::Sender<Arc<Record>>,
    shared: Arc<Shared>,
}

impl Publisher {
    /// Appends `pending` off the async runtime (flushing blocks on the disk),
    /// reports the outcome to each record's ack, in order, and publishes the
    /// committed records.
    async fn append(&self, store: &AuditStore, pending: Pending) {
        let Pending { events, acks } = pending;
        if events.is_empty() {
            return;
        }
        let blocking = store.clone();
        // Sending an ack fails only when the waiter stopped waiting; nobody is
        // left to tell, so those results are ignored.
        match tokio::task::spawn_blocking(move || blocking.append(events)).await {
            Ok(Ok(records)) => {
                self.commit(&records);
                for (ack, record) in acks.into_iter().zip(records) {
                    if let Some(ack) = ack {
                        let _ = ack.send(Ok(record));
                    }
                }
            }
            Ok(Err(e)) => {
                self.fail(store, &e.to_string(), acks.len());
                for ack in acks.into_iter().flatten() {
                    let _ = ack.send(Err(e.clone()));
                }
            }
            // Dropping the acks makes their waiters fail with `WriterGone`.
            Err(e) => self.fail(store, &format!("the write was aborted: {e}"), acks.len()),
        }
    }

    /// Applies `policy` off the async runtime and publishes its record.
    async fn retain(
        &self,
        store: &AuditStore,
        policy: RetentionPolicy,
    ) -> Result<Option<Record>, AuditError> {
        let blocking = store.clone();
        let outcome = tokio::task::spawn_blocking(move || blocking.retain(&policy, now_ms()))
            .await
            .map_err(|_| AuditError::WriterGone)
            .and_then(|outcome| outcome);
        match &outcome {
            Ok(Some(record)) => self.commit(std::slice::from_ref(record)),
            Ok(None) => {}
            Err(AuditError::Store(e)) => self.fail(store, &format!("retention: {e}"), 0),
            Err(e) => log::error!("audit retention in {} failed: {e}", store.path().display()),
        }
        outcome
    }

    /// Moves the committed head to the last of `records`, then publishes them
    /// (in that order, so that a follower that reads the head after
    /// subscribing misses nothing).
    fn commit(&self, records: &[Record]) {
        let Some(last) = records.last() else {
            return;
        };
        *self
            .shared
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = ChainHead {
            seq: last.seq,
            hash: last.hash,
        };
        if self.feed.receiver_count() > 0 {
            for record in records {
                // Fails only when every follower has gone since the check.
                let _ = self.feed.send(Arc::new(record.clone()));
            }
        }
    }

    /// Marks the log failing and reports the failed write loudly (the first one in full).
    fn fail(&self, store: &AuditStore, error: &str, lost: usize) {
        let place = store.path().display();
        let first = self
            .shared
            .health
            .fail(format!("writing the audit log in {place} failed: {error}"));
        if first {
            log::error!(
                "AUDIT LOG FAILURE: writing to the audit log in {place} failed: {error}; {lost} \
                 records may be lost. veil refuses anything that must be audited until it is \
                 restarted with a working audit log (check free space and the database)"
            );
        } else {
            log::error!(
                "audit log in {place} still failing: {error}; {lost} more records may be lost"
            );
        }
    }
}

/// The current time in milliseconds since the Unix epoch; 0 if the clock is
/// before the epoch.
pub fn now_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::audit::backlog::PER_SANDBOX;
    use crate::audit::test_support::open;
    use crate::audit::EventKind;
    use crate::audit::{
        ConnProtocol, Connection, Filter, Injection, KernelRefusal, RequestProtocol, SandboxChange,
        Verdict,
    };

    fn attached(name: &str) -> Event {
        Event::SandboxAttached(SandboxChange {
            name: name.into(),
            cgroup: format!("/sys/fs/cgroup/{name}"),
            cgroup_id: 1,
            container: None,
        })
    }

    fn refusal(sandbox: &str, port: u16) -> Event {
        Event::KernelRefusal(KernelRefusal {
            sandbox: Some(sandbox.into()),
            cgroup_id: 9,
            pid: 1,
            uid: 0,
            gid: 0,
            comm: "flood".into(),
            destination: Some(std::net::SocketAddr::from(([127, 0, 0, 2], port))),
            protocol: "udp".into(),
            reason: "udp to a port other than 53".into(),
            count: 1,
        })
    }

    fn allowed(sandbox: &str) -> Event {
        Event::Connection(Connection {
            sandbox: Some(sandbox.into()),
            cgroup_id: 1,
            pid: 2,
            uid: 0,
            gid: 0,
            comm: "curl".into(),
            client: None,
            destination: Some(std::net::SocketAddr::from(([127, 0, 0, 2], 443))),
            host: None,
            protocol: ConnProtocol::Tcp,
            rule: None,
            verdict: Verdict::Allowed,
            reason: "relayed".into(),
            count: 1,
        })
    }

    fn injected(sandbox: &str) -> Event {
        Event::SecretInjected(Injection {
            secret_id: "sec_1".into(),
            secret_name: "token".into(),
            host: "api.example.test".into(),
            destination: std::net::SocketAddr::from(([127, 0, 0, 2], 443)),
            protocol: RequestProtocol::Http1,
            header: "authorization".into(),
            reason: None,
            sandbox: Some(sandbox.into()),
            cgroup_id: 1,
            pid: 2,
            comm: "curl".into(),
            headers: Vec::new(),
            count: 1,
            slot: None,
        })
    }

    fn of_sandbox<'a>(records: &'a [Record], sandbox: &str) -> Vec<&'a Record> {
        records
            .iter()
            .filter(|r| r.event.sandbox() == Some(sandbox))
            .collect()
    }

    // A current-thread runtime: the writer cannot run while the test queues, so the queue
    // fills exactly as it would behind a stalled disk.
    #[tokio::test(flavor = "current_thread")]
    async fn a_flooding_sandbox_drops_only_its_own_records_and_never_durable_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = open(&dir);
        let (audit, writer) = AuditWriter::spawn(store.clone());
        const FLOOD: u16 = 10_000;
        // Distinct destinations, so that nothing is summed: every one spends the budget.
        for port in 0..FLOOD {
            audit.record(refusal("flood", port));
        }
        audit.record(allowed("calm"));
        let durable = audit.record_durable(injected("flood"));
        audit.record(Event::SandboxDetached(SandboxChange {
            name: "flood".into(),
            cgroup: "/flood".into(),
            cgroup_id: 9,
            container: None,
        }));
        let stored = durable.await.unwrap();
        assert_eq!(stored.event, injected("flood"));
        writer.shutdown().await;

        let records = store.query(&Filter::default()).unwrap();
        let flood = of_sandbox(&records, "flood");
        let refusals = flood
            .iter()
            .filter(|r| r.event.kind() == EventKind::KernelRefusal)
            .count();
        assert_eq!(refusals, PER_SANDBOX);
        let dropped: u64 = flood
            .iter()
            .filter_map(|r| match &r.event {
                Event::RecordsDropped(d) => Some(d.dropped),
                _ => None,
            })
            .sum();
        assert_eq!(refusals as u64 + dropped, u64::from(FLOOD));
        assert!(flood.iter().any(|r| r.event == injected("flood")));
        assert!(flood
            .iter()
            .any(|r| r.event.kind() == EventKind::SandboxDetached));
        assert_eq!(
            of_sandbox(&records, "calm")
                .iter()
                .map(|r| &r.event)
                .collect::<Vec<_>>(),
            [&allowed("calm")]
        );
    }

    #[tokio::test]
    async fn repeats_are_counted_into_one_record_and_none_is_lost_at_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = open(&dir);
        let (audit, writer) = AuditWriter::spawn(store.clone());
        for _ in 0..20_000 {
            audit.record(refusal("flood", 9));
        }
        audit.record(allowed("calm"));
        audit.record(allowed("calm"));
        writer.shutdown().await;
        let records = store.query(&Filter::default()).unwrap();
        let counts: Vec<u64> = of_sandbox(&records, "flood")
            .iter()
            .map(|r| r.event.count())
            .collect();
        assert_eq!(counts, [1, 19_999]);
        // Allowed connections are recorded one by one.
        assert_eq!(of_sandbox(&records, "calm").len(), 2);
    }

    #[tokio::test]
    async fn records_that_ready_tasks_queue_share_the_commit_under_way() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = open(&dir);
        let (audit, writer) = AuditWriter::spawn(store.clone());
        let first = tokio::spawn(audit.record_durable(attached("first")));
        // These queue their records only after yielding, once the writer has taken the
        // first one: without `gather` they would make a second commit.
        let late: Vec<_> = (0..5)
            .map(|i| {
                let audit = audit.clone();
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    audit.record_durable(attached(&i.to_string())).await
                })
            })
            .collect();
        let mut seqs = vec![first.await.unwrap().unwrap().seq];
        for task in late {
            seqs.push(task.await.unwrap().unwrap().seq);
        }
        seqs.sort_unstable();
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
        // One commit is one value in the tree.
        assert_eq!(store.tree.len(), 1);
        writer.shutdown().await;
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

    #[tokio::test]
    async fn the_committed_head_follows_appends() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = open(&dir);
        store.append(vec![(1, attached("old"))]).unwrap();
        let (audit, writer) = AuditWriter::spawn(store.clone());
        assert_eq!(audit.committed(), store.head());
        let record = audit.record_durable(attached("a")).await.unwrap();
        assert_eq!(record.seq, 2);
        assert_eq!(
            audit.committed(),
            ChainHead {
                seq: 2,
                hash: record.hash
            }
        );
        writer.shutdown().await;
    }

    #[tokio::test]
    async fn a_failing_store_fails_durable_records_and_marks_the_log_failing() {
        let dir = tempfile::tempdir().unwrap();
        let (db, store) = open(&dir);
        let (audit, writer) = AuditWriter::spawn(store);
        audit.record_durable(attached("a")).await.unwrap();
        assert!(audit.is_healthy());
        assert_eq!(audit.failure(), None);
        // Every operation on a dropped tree fails, as on a broken database.
        assert!(db.drop_tree(crate::audit::store::TREE).unwrap());
        let err = audit.record_durable(attached("b")).await.unwrap_err();
        assert!(matches!(err, AuditError::Store(_)), "{err}");
        assert!(!audit.is_healthy());
        let failure = audit.failure().unwrap();
        assert!(
            failure.contains(&dir.path().display().to_string()),
            "{failure}"
        );
        // From now on durable records are refused at once, saying why.
        let err = audit.record_durable(attached("c")).await.unwrap_err();
        assert!(matches!(err, AuditError::Failing { .. }), "{err}");
        assert!(err.to_string().contains(&failure), "{err}");
        // Fire-and-forget records are still tried (and fail) without a panic.
        audit.record(attached("d"));
        writer.shutdown().await;
        assert!(!audit.is_healthy());
    }

    #[tokio::test]
    async fn retention_runs_between_batches_and_is_published() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = open(&dir);
        let (audit, writer) = AuditWriter::spawn(store.clone());
        let mut feed = audit.subscribe().unwrap();
        for i in 0..5 {
            audit.record(attached(&i.to_string()));
        }
        let policy = RetentionPolicy {
            max_records: Some(2),
            ..RetentionPolicy::default()
        };
        let record = audit.retain(policy).await.unwrap().unwrap();
        assert_eq!(record.seq, 6);
        assert_eq!(audit.committed().seq, 6);
        let published: Vec<u64> = (0..6).map(|_| feed.try_recv().unwrap().seq).collect();
        assert_eq!(published, [1, 2, 3, 4, 5, 6]);
        let stored: Vec<u64> = store
            .query(&Filter::default())
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(stored, [5, 6]);
        writer.shutdown().await;
        assert!(matches!(
            audit.retain(policy).await,
            Err(AuditError::WriterGone)
        ));
    }
}
