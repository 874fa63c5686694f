//! The proxy against a fake resolver on 127.0.0.1 that records what reaches it, with a real
//! audit log in a temporary directory.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UdpSocket},
    task::JoinHandle,
};
use veil_core::{
    dns::{Query, TYPE_A, TYPE_AAAA},
    policy::Policy,
};

use super::*;
use crate::audit::{AuditStore, AuditWriter, EventKind, Filter, Record, SandboxChange};

/// The sandbox the tests' listeners serve.
const SANDBOX: u64 = 7;
/// The address the fake resolver gives every name.
const ADDRESS: [u8; 4] = [192, 0, 2, 1];

/// What reached the fake resolver: names asked, and over which transport.
type Seen = Arc<Mutex<Vec<(String, &'static str)>>>;

/// A DNS proxy serving [`SANDBOX`] on local sockets, its fake resolver, its audit log.
struct Harness {
    _dir: tempfile::TempDir,
    _writer: AuditWriter,
    store: AuditStore,
    audit: AuditHandle,
    service: DnsService,
    seen: Seen,
    udp: SocketAddr,
    tcp: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Harness {
    async fn new(allow: &[&str]) -> Self {
        let (resolver, seen) = fake_resolver().await;
        Self::with_resolvers(allow, vec![resolver], seen).await
    }

    async fn with_resolvers(allow: &[&str], resolvers: Vec<SocketAddr>, seen: Seen) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let store = AuditStore::open(&db, dir.path()).unwrap();
        let (audit, writer) = AuditWriter::spawn(store.clone());
        let allow: Vec<String> = allow.iter().map(|r| r.to_string()).collect();
        let policy = Policy::parse(&allow, &[]).unwrap();
        let policy = watch::Sender::new(Arc::new(policy)).subscribe();
        let service = DnsService::new(policy, audit.clone(), resolvers, DnsAnswers::default());
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (udp, tcp) = (socket.local_addr().unwrap(), listener.local_addr().unwrap());
        let name = Some("test".to_owned());
        let tasks = vec![
            tokio::spawn(service.serve_udp(socket, SANDBOX, name.clone())),
            tokio::spawn(service.serve_tcp(listener, SANDBOX, name)),
        ];
        Self {
            _dir: dir,
            _writer: writer,
            store,
            audit,
            service,
            seen,
            udp,
            tcp,
            tasks,
        }
    }

    /// Sends `query` over UDP and waits a moment for the answer.
    async fn ask(&self, query: &[u8]) -> Option<Vec<u8>> {
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.send_to(query, self.udp).await.unwrap();
        let mut buf = vec![0; 65_536];
        let received = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buf)).await;
        let len = received.ok()?.unwrap();
        Some(buf[..len].to_vec())
    }

    /// The names that reached the resolver.
    fn seen(&self) -> Vec<(String, &'static str)> {
        self.seen.lock().unwrap().clone()
    }

    /// The `dns_query` records, once the writer has committed everything queued.
    async fn records(&self) -> Vec<DnsQuery> {
        self.audit
            .record_durable(Event::SandboxDetached(SandboxChange {
                name: "flush".into(),
                cgroup: String::new(),
                cgroup_id: 0,
                container: None,
            }))
            .await
            .unwrap();
        let filter = Filter {
            kind: Some(EventKind::DnsQuery),
            ..Filter::default()
        };
        self.store
            .query(&filter)
            .unwrap()
            .into_iter()
            .map(|r: Record| match r.event {
                Event::DnsQuery(d) => d,
                other => panic!("{other:?}"),
            })
            .collect()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A fake resolver on 127.0.0.1 (UDP and TCP on one port): every name has [`ADDRESS`] (A)
/// with a TTL of 60; over UDP, names starting `big.` get a truncated answer; `nx.` names get
/// NXDOMAIN.
async fn fake_resolver() -> (SocketAddr, Seen) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let listener = TcpListener::bind(addr).await.unwrap();
    let seen = Seen::default();
    let udp_seen = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut buf = vec![0; 4096];
        while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
            let query = &buf[..len];
            let name = Query::parse(query).unwrap().question.name.to_string();
            udp_seen.lock().unwrap().push((name.clone(), "udp"));
            let answer = answer(query, name.starts_with("big."));
            socket.send_to(&answer, peer).await.unwrap();
        }
    });
    let tcp_seen = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let len = stream.read_u16().await.unwrap();
            let mut query = vec![0; usize::from(len)];
            stream.read_exact(&mut query).await.unwrap();
            let name = Query::parse(&query).unwrap().question.name.to_string();
            tcp_seen.lock().unwrap().push((name, "tcp"));
            let answer = answer(&query, false);
            stream
                .write_all(&u16::try_from(answer.len()).unwrap().to_be_bytes())
                .await
                .unwrap();
            stream.write_all(&answer).await.unwrap();
        }
    });
    (addr, seen)
}

/// The fake resolver's answer to `query` (veil's: a question, then an OPT record).
fn answer(query: &[u8], truncated: bool) -> Vec<u8> {
    let parsed = Query::parse(query).unwrap();
    let question_end = query.len() - 11;
    let nx = parsed.question.name.as_str().starts_with("nx.");
    let a = parsed.question.qtype == TYPE_A && !truncated && !nx;
    let flags: u16 = 0x8180 | if truncated { 0x0200 } else { 0 } | if nx { 3 } else { 0 };
    let mut out = query[..2].to_vec();
    for field in [flags, 1, u16::from(a), 0, 0] {
        out.extend_from_slice(&field.to_be_bytes());
    }
    out.extend_from_slice(&query[12..question_end]);
    if a {
        out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        out.extend_from_slice(&ADDRESS);
    }
    out
}

/// A query with RD for `name` and `qtype`, without EDNS.
fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        out.push(u8::try_from(label.len()).unwrap());
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out
}

fn id(reply: &[u8]) -> u16 {
    u16::from_be_bytes([reply[0], reply[1]])
}

fn rcode(reply: &[u8]) -> u8 {
    reply[3] & 0x0f
}

fn answers(reply: &[u8]) -> u16 {
    u16::from_be_bytes([reply[6], reply[7]])
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn an_allowed_name_is_resolved_cached_and_remembered() {
    let h = Harness::new(&["api.test"]).await;
    let reply = h.ask(&query(0x1111, "Api.Test", TYPE_A)).await.unwrap();
    assert_eq!(id(&reply), 0x1111);
    assert_eq!(rcode(&reply), 0);
    assert_eq!(answers(&reply), 1);
    assert!(reply.ends_with(&ADDRESS));
    assert_eq!(
        &reply[12..22],
        b"\x03Api\x04Test\x00",
        "the client's own question"
    );
    assert_eq!(h.seen(), [("api.test".to_owned(), "udp")]);
    assert!(h
        .service
        .answers()
        .resolved(SANDBOX, "api.test", ip("192.0.2.1")));
    assert!(!h
        .service
        .answers()
        .resolved(SANDBOX + 1, "api.test", ip("192.0.2.1")));

    let again = h.ask(&query(0x2222, "api.test", TYPE_A)).await.unwrap();
    assert_eq!(id(&again), 0x2222);
    assert!(again.ends_with(&ADDRESS));
    assert_eq!(h.seen().len(), 1, "the second answer came from the cache");

    let records = h.records().await;
    let reasons: Vec<(&str, DnsOutcome, &str)> = records
        .iter()
        .map(|r| (r.name.as_str(), r.outcome, r.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("api.test", DnsOutcome::Answered, "resolved"),
            ("api.test", DnsOutcome::Answered, "from cache")
        ]
    );
    assert_eq!(records[0].sandbox.as_deref(), Some("test"));
    assert_eq!(records[0].cgroup_id, SANDBOX);
    assert_eq!(records[0].qtype, "A");
    assert_eq!(records[0].transport, "udp");
    assert_eq!(records[0].rule.as_deref(), Some("api.test"));
}

#[tokio::test]
async fn other_names_and_types_are_refused_and_never_reach_the_resolver() {
    let h = Harness::new(&["api.test"]).await;
    let reply = h.ask(&query(0xbeef, "evil.test", TYPE_A)).await.unwrap();
    assert_eq!(id(&reply), 0xbeef);
    assert_eq!(rcode(&reply), Rcode::Refused as u8);
    assert_eq!(answers(&reply), 0);
    assert_eq!(
        &reply[12..],
        &query(0, "evil.test", TYPE_A)[12..],
        "question echoed"
    );
    let txt = h.ask(&query(2, "api.test", 16)).await.unwrap();
    assert_eq!(rcode(&txt), Rcode::Refused as u8);
    let mut chaos = query(3, "api.test", TYPE_A);
    let at = chaos.len() - 1;
    chaos[at] = 3;
    assert_eq!(rcode(&h.ask(&chaos).await.unwrap()), Rcode::Refused as u8);
    assert!(h.seen().is_empty());
    let records = h.records().await;
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r.outcome == DnsOutcome::Refused));
    assert_eq!(records[0].reason, "no egress rule allows evil.test");
    assert_eq!(records[1].reason, "type TXT is not forwarded");
    assert_eq!(records[2].reason, "class 3 is not IN");
}

#[tokio::test]
async fn repeated_refusals_are_summed_in_the_audit_log() {
    let h = Harness::new(&["api.test"]).await;
    for i in 0..20 {
        h.ask(&query(i, "evil.test", TYPE_A)).await.unwrap();
    }
    let records = h.records().await;
    assert!(records.len() < 20, "{}", records.len());
}

#[tokio::test]
async fn malformed_queries_get_formerr_or_nothing() {
    let h = Harness::new(&["*"]).await;
    let mut garbage = query(0x0a0b, "api.test", TYPE_A);
    garbage[12] = 0x40;
    let reply = h.ask(&garbage).await.unwrap();
    assert_eq!(id(&reply), 0x0a0b);
    assert_eq!(rcode(&reply), Rcode::FormErr as u8);
    let mut notify = query(5, "api.test", TYPE_A);
    notify[2] = 0x20;
    assert_eq!(rcode(&h.ask(&notify).await.unwrap()), Rcode::NotImp as u8);
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut response = query(6, "api.test", TYPE_A);
    response[2] |= 0x80;
    for silent in [&b"\x01\x02\x03"[..], &response] {
        client.send_to(silent, h.udp).await.unwrap();
    }
    let mut buf = [0; 512];
    let nothing = tokio::time::timeout(Duration::from_millis(300), client.recv(&mut buf)).await;
    assert!(nothing.is_err(), "no answer to a fragment or a response");
    assert!(h.seen().is_empty());
    // The proxy still answers.
    assert_eq!(
        rcode(&h.ask(&query(7, "api.test", TYPE_A)).await.unwrap()),
        0
    );
}

#[tokio::test]
async fn tcp_queries_are_framed_and_bounded() {
    let h = Harness::new(&["api.test"]).await;
    let mut stream = TcpStream::connect(h.tcp).await.unwrap();
    let mut both = Vec::new();
    for (i, name) in [(1u16, "api.test"), (2, "evil.test")] {
        let q = query(i, name, TYPE_A);
        both.extend_from_slice(&u16::try_from(q.len()).unwrap().to_be_bytes());
        both.extend_from_slice(&q);
    }
    stream.write_all(&both).await.unwrap();
    for (expected_id, expected_rcode) in [(1, 0), (2, Rcode::Refused as u8)] {
        let len = stream.read_u16().await.unwrap();
        let mut reply = vec![0; usize::from(len)];
        stream.read_exact(&mut reply).await.unwrap();
        assert_eq!((id(&reply), rcode(&reply)), (expected_id, expected_rcode));
    }
    assert_eq!(h.seen(), [("api.test".to_owned(), "udp")]);
    // A length over the limit closes the connection.
    stream.write_all(&u16::MAX.to_be_bytes()).await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");
    let records = h.records().await;
    assert!(records.iter().all(|r| r.transport == "tcp"));
}

#[tokio::test]
async fn a_truncated_answer_is_asked_again_over_tcp() {
    let h = Harness::new(&["*.test"]).await;
    let reply = h.ask(&query(9, "big.test", TYPE_A)).await.unwrap();
    assert_eq!(rcode(&reply), 0);
    assert!(reply.ends_with(&ADDRESS));
    assert_eq!(
        h.seen(),
        [
            ("big.test".to_owned(), "udp"),
            ("big.test".to_owned(), "tcp")
        ]
    );
}

#[tokio::test]
async fn negative_answers_are_relayed_and_no_resolver_is_servfail() {
    let h = Harness::new(&["*.test"]).await;
    let reply = h.ask(&query(4, "nx.test", TYPE_AAAA)).await.unwrap();
    assert_eq!(rcode(&reply), Rcode::NxDomain as u8);
    let records = h.records().await;
    assert_eq!(records[0].reason, "resolved (NXDOMAIN)");

    let none = Harness::with_resolvers(&["*.test"], Vec::new(), Seen::default()).await;
    let reply = none.ask(&query(5, "api.test", TYPE_A)).await.unwrap();
    assert_eq!((id(&reply), rcode(&reply)), (5, Rcode::ServFail as u8));
    let records = none.records().await;
    assert_eq!(records[0].outcome, DnsOutcome::Failed);
}
