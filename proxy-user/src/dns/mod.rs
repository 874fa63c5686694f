//! veil's DNS proxy: what answers a sandbox's DNS queries (UDP and TCP, in the sandbox's
//! network namespace, where the kernel steers its port-53 traffic).
//!
//! A query for a name the egress policy allows ([`Policy::decide_name`]: a host rule matches
//! it) is answered from the cache or asked of the resolvers, and the answer relayed with the
//! client's id and question; any other name gets REFUSED and never reaches a resolver. Only
//! the types a connection needs are forwarded ([`FORWARDED`]: A, AAAA, CNAME, SVCB, HTTPS);
//! every other type (TXT, MX, PTR, ANY, NULL, ...: the usual carriers of DNS tunnels) is
//! refused even for allowed names. Other classes than IN are refused; other opcodes get
//! NOTIMP; a query that does not parse gets FORMERR when its header does, and nothing when
//! it does not or is itself a response. Every query is audited as a `dns_query` record
//! (summed by the [`veil_core::audit::Aggregator`] like other frequent records), and the
//! addresses a sandbox is answered are remembered in [`DnsAnswers`] for binding names
//! ([`crate::proxy::Context::bind`]).
//!
//! - `udp.rs`, `tcp.rs`: the listeners' loops and their bounds.
//! - `upstream.rs`: asking the resolvers. `resolvers.rs`: which ones.
//! - `cache.rs`: answers per sandbox and question, for their TTL (at most 300 s).
//! - `answers.rs`: [`DnsAnswers`], what each sandbox was answered.
//!
//! The messages themselves are read and written by [`veil_core::dns`], without I/O.

mod answers;
mod cache;
mod resolvers;
mod tcp;
mod udp;
mod upstream;

use std::{future::Future, net::SocketAddr, sync::Arc};

use tokio::{
    net::{TcpListener, UdpSocket},
    sync::watch,
};
use veil_core::{
    dns::{
        self, error_for_header, type_name, Query, Question, Rcode, Response, CLASS_IN, TYPE_A,
        TYPE_AAAA, TYPE_CNAME, TYPE_HTTPS, TYPE_SVCB,
    },
    policy::Policy,
};

use crate::audit::{AuditHandle, DnsOutcome, DnsQuery, Event};
use cache::{Cache, Key};

pub use answers::DnsAnswers;
pub use resolvers::{parse_resolv_conf, parse_resolver, system_resolvers};

/// The query types forwarded for allowed names; others are refused.
pub const FORWARDED: [u16; 5] = [TYPE_A, TYPE_AAAA, TYPE_CNAME, TYPE_SVCB, TYPE_HTTPS];

/// Why the resolvers gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// No resolvers are configured.
    #[error("no DNS resolvers configured")]
    NoResolvers,
    /// No resolver answered in time.
    #[error("the resolvers did not answer in time")]
    Timeout,
    /// A socket failed.
    #[error("talking to the resolver: {0}")]
    Io(std::io::Error),
    /// A resolver's answer over TCP did not parse or did not match the query.
    #[error("the resolver's answer: {0}")]
    Message(dns::DnsError),
    /// The system's random number generator failed.
    #[error("no random query id")]
    Random,
}

/// The DNS proxy's shared state: the live policy, the audit log, the resolvers, the cache and
/// the sandboxes' answers. Cheap to clone; one serves every sandbox's listeners.
#[derive(Clone)]
pub struct DnsService {
    inner: Arc<Inner>,
}

struct Inner {
    policy: watch::Receiver<Arc<Policy>>,
    audit: AuditHandle,
    resolvers: Vec<SocketAddr>,
    answers: DnsAnswers,
    cache: Cache,
}

/// The sandbox a listener serves.
#[derive(Debug, Clone)]
struct Sandbox {
    /// Its cgroup id: the key of its cache entries and answers.
    cgroup_id: u64,
    /// Its name, for the audit log.
    name: Option<String>,
}

/// How a query came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

/// What to do with a message.
enum Step {
    /// Answer at once (or not at all).
    Reply(Option<Vec<u8>>),
    /// Ask the resolvers.
    Forward(Pending),
}

/// An allowed query on its way to the resolvers.
struct Pending {
    query: Query,
    key: Key,
    rule: Option<String>,
}

impl DnsService {
    /// A DNS proxy deciding by `policy`, auditing to `audit`, asking `resolvers` (in order,
    /// see [`system_resolvers`]) and remembering answers in `answers` (the store the data
    /// path's [`crate::proxy::Context`] binds names with).
    pub fn new(
        policy: watch::Receiver<Arc<Policy>>,
        audit: AuditHandle,
        resolvers: Vec<SocketAddr>,
        answers: DnsAnswers,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                policy,
                audit,
                resolvers,
                answers,
                cache: Cache::default(),
            }),
        }
    }

    /// The answers sandboxes received.
    pub fn answers(&self) -> &DnsAnswers {
        &self.inner.answers
    }

    /// Answers the queries arriving on `socket` for the sandbox whose cgroup id is `sandbox`
    /// (`name` for the audit log), until the future is dropped. At most
    /// [`udp::IN_FLIGHT`] queries wait for the resolvers at once; past that, SERVFAIL.
    pub fn serve_udp(
        &self,
        socket: UdpSocket,
        sandbox: u64,
        name: Option<String>,
    ) -> impl Future<Output = ()> + Send + 'static {
        udp::serve(self.clone(), socket, Sandbox::new(sandbox, name))
    }

    /// Answers queries on the connections `listener` accepts (2-byte length framing) for the
    /// sandbox whose cgroup id is `sandbox` (`name` for the audit log), until the future is
    /// dropped. At most [`tcp::CLIENTS`] connections at once, each closed after
    /// [`tcp::IDLE_TIMEOUT`] without a query or on a query over [`tcp::MAX_QUERY`] bytes.
    pub fn serve_tcp(
        &self,
        listener: TcpListener,
        sandbox: u64,
        name: Option<String>,
    ) -> impl Future<Output = ()> + Send + 'static {
        tcp::serve(self.clone(), listener, Sandbox::new(sandbox, name))
    }

    /// The answer to `msg`, asking the resolvers if need be.
    async fn answer(&self, msg: &[u8], sandbox: &Sandbox, transport: Transport) -> Option<Vec<u8>> {
        match self.prepare(msg, sandbox, transport) {
            Step::Reply(reply) => reply,
            Step::Forward(pending) => Some(self.forward(pending, sandbox, transport).await),
        }
    }

    /// Decides what to do with `msg` without waiting: refuse it, answer from the cache, or
    /// forward it.
    fn prepare(&self, msg: &[u8], sandbox: &Sandbox, transport: Transport) -> Step {
        let query = match Query::parse(msg) {
            Ok(query) => query,
            Err(e) => {
                let rcode = match e {
                    dns::DnsError::Opcode(_) => Rcode::NotImp,
                    _ => Rcode::FormErr,
                };
                let reply = error_for_header(msg, rcode);
                if reply.is_some() {
                    self.audit(
                        sandbox,
                        transport,
                        None,
                        DnsOutcome::Refused,
                        None,
                        e.to_string(),
                    );
                }
                return Step::Reply(reply);
            }
        };
        let question = &query.question;
        let refuse = |reason: String| {
            log::debug!("refusing DNS query for {}: {reason}", question.name);
            self.audit(
                sandbox,
                transport,
                Some(question),
                DnsOutcome::Refused,
                None,
                reason,
            );
            Step::Reply(Some(query.error(Rcode::Refused)))
        };
        if question.qclass != CLASS_IN {
            return refuse(format!("class {} is not IN", question.qclass));
        }
        let decision = self
            .inner
            .policy
            .borrow()
            .decide_name(question.name.as_str());
        if !decision.allowed {
            return refuse(decision.reason);
        }
        if !FORWARDED.contains(&question.qtype) {
            return refuse(format!(
                "type {} is not forwarded",
                type_name(question.qtype)
            ));
        }
        let key = Key::of(sandbox.cgroup_id, &query);
        if let Some((response, age)) = self.inner.cache.get(&key) {
            // The cache is the sandbox's own, and what it holds was remembered for at least
            // as long when it was resolved: nothing to remember again.
            let reply = response.encode(&query, age, reply_limit(&query, transport));
            let reason = with_rcode("from cache", &response);
            self.audit(
                sandbox,
                transport,
                Some(&query.question),
                DnsOutcome::Answered,
                decision.rule,
                reason,
            );
            return Step::Reply(Some(reply));
        }
        Step::Forward(Pending {
            query,
            key,
            rule: decision.rule,
        })
    }

    /// Asks the resolvers for `pending`'s answer and returns the client's response.
    async fn forward(&self, pending: Pending, sandbox: &Sandbox, transport: Transport) -> Vec<u8> {
        let Pending { query, key, rule } = pending;
        match upstream::resolve(&self.inner.resolvers, &query).await {
            Ok(response) => {
                let response = Arc::new(response);
                self.inner.cache.put(key, Arc::clone(&response));
                let reply = self.deliver(&query, &response, 0, sandbox, transport);
                let reason = with_rcode("resolved", &response);
                self.audit(
                    sandbox,
                    transport,
                    Some(&query.question),
                    DnsOutcome::Answered,
                    rule,
                    reason,
                );
                reply
            }
            Err(e) => {
                log::info!("DNS query for {} failed: {e}", query.question.name);
                self.fail(&query, rule, sandbox, transport, e.to_string())
            }
        }
    }

    /// SERVFAIL for `pending`, which could not be forwarded: too many are waiting.
    fn overloaded(&self, pending: Pending, sandbox: &Sandbox, transport: Transport) -> Vec<u8> {
        let reason = "too many queries waiting for the resolvers".to_owned();
        self.fail(&pending.query, pending.rule, sandbox, transport, reason)
    }

    /// Audits a failed query and returns its SERVFAIL.
    fn fail(
        &self,
        query: &Query,
        rule: Option<String>,
        sandbox: &Sandbox,
        transport: Transport,
        reason: String,
    ) -> Vec<u8> {
        self.audit(
            sandbox,
            transport,
            Some(&query.question),
            DnsOutcome::Failed,
            rule,
            reason,
        );
        query.error(Rcode::ServFail)
    }

    /// Remembers the addresses `response` gives the sandbox (aged `age` seconds) and encodes
    /// it for the client: the remembering comes first, so a connection made on the answer
    /// finds it.
    fn deliver(
        &self,
        query: &Query,
        response: &Response,
        age: u32,
        sandbox: &Sandbox,
        transport: Transport,
    ) -> Vec<u8> {
        let reply = response.encode(query, age, reply_limit(query, transport));
        let addresses: Vec<_> = response
            .addresses
            .iter()
            .map(|a| dns::Address {
                ip: a.ip,
                ttl: a.ttl.saturating_sub(age),
            })
            .collect();
        self.inner
            .answers
            .remember(sandbox.cgroup_id, query.question.name.as_str(), &addresses);
        reply
    }

    /// Queues the `dns_query` record of one query.
    fn audit(
        &self,
        sandbox: &Sandbox,
        transport: Transport,
        question: Option<&Question>,
        outcome: DnsOutcome,
        rule: Option<String>,
        reason: String,
    ) {
        self.inner.audit.record(Event::DnsQuery(DnsQuery {
            sandbox: sandbox.name.clone(),
            cgroup_id: sandbox.cgroup_id,
            name: question.map_or_else(String::new, |q| q.name.to_string()),
            qtype: question.map_or_else(String::new, |q| type_name(q.qtype)),
            transport: transport.as_str().to_owned(),
            outcome,
            rule,
            reason,
            count: 1,
        }));
    }
}

impl Sandbox {
    fn new(cgroup_id: u64, name: Option<String>) -> Self {
        Self { cgroup_id, name }
    }
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
        }
    }
}

/// The largest reply `query` may get over `transport`.
fn reply_limit(query: &Query, transport: Transport) -> usize {
    match transport {
        Transport::Udp => query.udp_limit(),
        Transport::Tcp => usize::from(u16::MAX),
    }
}

/// `what`, with the response code when it is not NOERROR: `resolved (NXDOMAIN)`.
fn with_rcode(what: &str, response: &Response) -> String {
    let name = match response.rcode() {
        0 => return what.to_owned(),
        1 => "FORMERR".to_owned(),
        2 => "SERVFAIL".to_owned(),
        3 => "NXDOMAIN".to_owned(),
        4 => "NOTIMP".to_owned(),
        5 => "REFUSED".to_owned(),
        other => format!("RCODE{other}"),
    };
    format!("{what} ({name})")
}

#[cfg(test)]
mod tests;
