//! A stand-in DNS resolver that knows one name: veil's DNS proxy forwards a sandbox's queries
//! to it (`veil serve --dns-upstream`), so clients that resolve names themselves (node's
//! `fetch`, say) find a stand-in remote host by name, the way they would a real one.

use std::{
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

/// The record type of an IPv4 address.
const TYPE_A: u16 = 1;
/// `NXDOMAIN`: the name does not exist.
const NXDOMAIN: u8 = 3;

/// A UDP resolver on a stand-in remote host: `name` has the IPv4 address it was given (and
/// no other records); every other name does not exist.
pub struct FakeResolver {
    /// Where it listens.
    pub addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl FakeResolver {
    /// Starts a resolver on `ip` (a port the kernel picks) answering `name` with `answer`.
    pub fn start(ip: &str, name: &str, answer: Ipv4Addr) -> Self {
        crate::remote_hosts();
        let socket = UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("binding {ip}: {e}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("a read timeout");
        let addr = socket.local_addr().expect("local addr");
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let name = name.to_ascii_lowercase();
        let thread = {
            let (queries, stop) = (Arc::clone(&queries), Arc::clone(&stop));
            thread::spawn(move || {
                let mut buf = [0u8; 512];
                while !stop.load(Ordering::SeqCst) {
                    let Ok((n, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    if let Some(reply) = respond(&buf[..n], &name, answer) {
                        queries.fetch_add(1, Ordering::SeqCst);
                        let _ = socket.send_to(&reply, from);
                    }
                }
            })
        };
        Self {
            addr,
            queries,
            stop,
            thread: Some(thread),
        }
    }

    /// How many queries it answered.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for FakeResolver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The response to `query` (a standard query with one question; anything else: none): for
/// `name`, its A record `answer` when asked for A, no records otherwise; NXDOMAIN for any
/// other name.
fn respond(query: &[u8], name: &str, answer: Ipv4Addr) -> Option<Vec<u8>> {
    let header = query.get(..12)?;
    let is_query = header[2] & 0xf8 == 0; // QR 0, opcode QUERY
    if !is_query || header[4..6] != [0, 1] {
        return None;
    }
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(pos)?);
        pos += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None; // a compression pointer: not in a question veil sends
        }
        labels.push(String::from_utf8_lossy(query.get(pos..pos + len)?).to_ascii_lowercase());
        pos += len;
    }
    let question = query.get(12..pos + 4)?;
    let qtype = u16::from_be_bytes([question[question.len() - 4], question[question.len() - 3]]);
    let known = labels.join(".") == name;
    let answers = u8::from(known && qtype == TYPE_A);
    let rcode = if known { 0 } else { NXDOMAIN };
    let mut reply = Vec::with_capacity(question.len() + 28);
    reply.extend_from_slice(&header[..2]); // the query's id
    reply.push(0x84 | (header[2] & 0x01)); // QR, AA, the query's RD
    reply.push(0x80 | rcode); // RA
    reply.extend_from_slice(&[0, 1, 0, answers, 0, 0, 0, 0]);
    reply.extend_from_slice(question);
    if answers == 1 {
        // The question's name (a pointer to offset 12), A, IN, TTL 60 s, four bytes.
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&answer.octets());
    }
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` of type `qtype`, id 0x1234, RD set.
    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(u8::try_from(label.len()).expect("a short label"));
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0]);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    #[test]
    fn answers_its_name_and_only_it() {
        let ip = Ipv4Addr::new(10, 250, 0, 2);
        let a = respond(&query("API.example.test", 1), "api.example.test", ip).expect("a reply");
        assert_eq!(&a[..4], &[0x12, 0x34, 0x85, 0x80]);
        assert_eq!(&a[4..12], &[0, 1, 0, 1, 0, 0, 0, 0]);
        assert_eq!(&a[a.len() - 4..], &ip.octets());
        let aaaa = respond(&query("api.example.test", 28), "api.example.test", ip).expect("one");
        assert_eq!(&aaaa[3..8], &[0x80, 0, 1, 0, 0], "no records, no error");
        let other = respond(&query("x.example.test", 1), "api.example.test", ip).expect("one");
        assert_eq!(other[3], 0x80 | NXDOMAIN);
        let mut response = query("api.example.test", 1);
        response[2] |= 0x80;
        assert_eq!(respond(&response, "api.example.test", ip), None);
    }
}
