//! Queries and responses built by hand and as a resolver sends them.

use std::net::IpAddr;

use super::*;

/// `name` on the wire, uncompressed.
fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// The question section for `name` and `qtype`, class IN.
fn question(name: &str, qtype: u16) -> Vec<u8> {
    let mut out = wire_name(name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

/// A standard query with RD, optionally with an OPT record carrying `options`.
fn query_bytes(id: u16, name: &str, qtype: u16, opt: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(opt.is_some())]);
    out.extend_from_slice(&question(name, qtype));
    if let Some(options) = opt {
        out.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0]);
        out.extend_from_slice(&(options.len() as u16).to_be_bytes());
        out.extend_from_slice(options);
    }
    out
}

/// One record: owner (on the wire), type, TTL, data; class IN.
struct Rr(Vec<u8>, u16, u32, Vec<u8>);

/// A response with `flags` to the question `q`.
fn response_bytes(id: u16, flags: u16, q: &[u8], answers: &[Rr], authority: &[Rr]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in [
        id,
        flags,
        1,
        answers.len() as u16,
        authority.len() as u16,
        0,
    ] {
        out.extend_from_slice(&field.to_be_bytes());
    }
    out.extend_from_slice(q);
    for Rr(owner, rtype, ttl, data) in answers.iter().chain(authority) {
        out.extend_from_slice(owner);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
    }
    out
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `www.example.com A` as a resolver answers it: a CNAME to `cdn.example.com` (compressed
/// against the question), its address (compressed against the CNAME's data), and an OPT.
const CAPTURED: &str = "1234 8180 0001 0002 0000 0001 \
    03777777 076578616d706c65 03636f6d 00 0001 0001 \
    c00c 0005 0001 00000e10 0006 0363646e c010 \
    c02d 0001 0001 0000003c 0004 5db8d822 \
    00 0029 04d0 00000000 0000";

fn captured() -> Vec<u8> {
    hex::decode(CAPTURED.replace(' ', "")).unwrap()
}

#[test]
fn parses_a_query_and_normalises_its_name() {
    let q = Query::parse(&query_bytes(7, "WWW.Example.COM", TYPE_AAAA, None)).unwrap();
    assert_eq!(q.id, 7);
    assert_eq!(q.question.name.as_str(), "www.example.com");
    assert_eq!(q.question.qtype, TYPE_AAAA);
    assert_eq!(q.question.qclass, CLASS_IN);
    assert_eq!(q.edns, None);
    assert_eq!(q.udp_limit(), 512);
    let q = Query::parse(&query_bytes(
        7,
        "a.test",
        TYPE_A,
        Some(b"\x00\x08\x00\x04\x00\x01\x18\x00"),
    ))
    .unwrap();
    assert_eq!(
        q.edns,
        Some(Edns {
            udp_size: 4096,
            dnssec_ok: true
        })
    );
    assert_eq!(q.udp_limit(), 4096);
}

#[test]
fn the_upstream_query_has_its_own_id_and_none_of_the_clients_options() {
    let client = query_bytes(
        7,
        "Api.Test",
        TYPE_A,
        Some(b"\x00\x08\x00\x04\x00\x01\x18\x00"),
    );
    let q = Query::parse(&client).unwrap();
    let up = q.upstream(0xabcd);
    let back = Query::parse(&up).unwrap();
    assert_eq!(back.id, 0xabcd);
    assert_eq!(back.question, q.question);
    assert_eq!(up[2] & 0x01, 0x01, "RD kept");
    assert_eq!(
        back.edns,
        Some(Edns {
            udp_size: EDNS_UDP_SIZE,
            dnssec_ok: true
        })
    );
    assert!(
        up.len() < client.len(),
        "the client's ECS option is not sent"
    );
    assert_eq!(
        &up[12..12 + 14],
        &client[12..12 + 14],
        "the name as the client wrote it"
    );
}

#[test]
fn refuses_malformed_queries() {
    let good = query_bytes(1, "a.test", TYPE_A, None);
    let with = |at: usize, byte: u8| {
        let mut m = good.clone();
        m[at] = byte;
        m
    };
    let mut trailing = good.clone();
    trailing.push(0);
    let mut two_questions = good.clone();
    two_questions[5] = 2;
    two_questions.extend_from_slice(&question("b.test", TYPE_A));
    let mut compressed = good[..12].to_vec();
    compressed.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01");
    let mut not_opt = query_bytes(1, "a.test", TYPE_A, Some(b""));
    let at = not_opt.len() - 9;
    not_opt[at] = 16;
    for (bytes, expected) in [
        (good[..11].to_vec(), DnsError::Truncated),
        (good[..20].to_vec(), DnsError::Truncated),
        (with(2, 0x81), DnsError::NotAQuery),
        (with(2, 0x21), DnsError::Opcode(4)),
        (with(5, 0), DnsError::QuestionCount(0)),
        (with(7, 1), DnsError::UnexpectedRecords),
        (with(11, 2), DnsError::UnexpectedRecords),
        (with(11, 1), DnsError::Truncated),
        (trailing, DnsError::TrailingBytes),
        (two_questions, DnsError::QuestionCount(2)),
        (compressed, DnsError::BadPointer),
        (not_opt, DnsError::UnexpectedRecords),
    ] {
        assert_eq!(Query::parse(&bytes), Err(expected), "{bytes:02x?}");
    }
}

#[test]
fn error_responses_echo_the_id_and_question() {
    let q = Query::parse(&query_bytes(0x4242, "Evil.Test", TYPE_A, Some(b""))).unwrap();
    let refused = q.error(Rcode::Refused);
    assert_eq!(&refused[..4], &[0x42, 0x42, 0x81, 0x85]);
    assert_eq!(&refused[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
    assert_eq!(&refused[12..12 + 15], &question("Evil.Test", TYPE_A)[..]);
    let formerr = error_for_header(b"\x00\x09\x01\x00garbage!", Rcode::FormErr).unwrap();
    assert_eq!(formerr, [0, 9, 0x81, 0x81, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        error_for_header(b"\x00\x09\x81\x80garbage!", Rcode::FormErr),
        None
    );
    assert_eq!(error_for_header(b"\x00\x09", Rcode::FormErr), None);
}

#[test]
fn reads_a_captured_response_and_follows_its_cname() {
    let q = Query::parse(&query_bytes(0x1234, "www.example.com", TYPE_A, None)).unwrap();
    let r = Response::parse(&captured(), &q, 0x1234).unwrap();
    assert_eq!(r.rcode(), 0);
    assert!(!r.is_truncated());
    assert_eq!(
        r.addresses,
        [Address {
            ip: ip("93.184.216.34"),
            ttl: 60
        }]
    );
    assert_eq!(r.ttl, 60);
}

#[test]
fn relays_with_the_clients_id_and_question_and_aged_ttls() {
    let upstream = Query::parse(&query_bytes(0x1234, "www.example.com", TYPE_A, None)).unwrap();
    let r = Response::parse(&captured(), &upstream, 0x1234).unwrap();
    let client = Query::parse(&query_bytes(0xbeef, "WWW.example.Com", TYPE_A, None)).unwrap();
    let out = r.encode(&client, 10, client.udp_limit());
    assert_eq!(&out[..2], &[0xbe, 0xef]);
    assert_eq!(&out[12..12 + 21], &question("WWW.example.Com", TYPE_A)[..]);
    assert_eq!(
        &out[10..12],
        &[0, 0],
        "no additional records without the client's OPT"
    );
    let again = Response::parse(&out, &client, 0xbeef).unwrap();
    assert_eq!(
        again.addresses,
        [Address {
            ip: ip("93.184.216.34"),
            ttl: 50
        }]
    );
    let aged_cname = u32::from_be_bytes(out[39..43].try_into().unwrap());
    assert_eq!(aged_cname, 3590);
    let expired = r.encode(&client, 100_000, 512);
    assert_eq!(&expired[39..43], &[0, 0, 0, 0], "TTLs stop at 0");
}

#[test]
fn responses_must_match_their_query() {
    let q = Query::parse(&query_bytes(0x1234, "www.example.com", TYPE_A, None)).unwrap();
    assert_eq!(
        Response::parse(&captured(), &q, 0x1235),
        Err(DnsError::IdMismatch)
    );
    let other = Query::parse(&query_bytes(0x1234, "www.example.org", TYPE_A, None)).unwrap();
    assert_eq!(
        Response::parse(&captured(), &other, 0x1234),
        Err(DnsError::QuestionMismatch)
    );
    let aaaa = Query::parse(&query_bytes(0x1234, "www.example.com", TYPE_AAAA, None)).unwrap();
    assert_eq!(
        Response::parse(&captured(), &aaaa, 0x1234),
        Err(DnsError::QuestionMismatch)
    );
    let query_itself = query_bytes(0x1234, "www.example.com", TYPE_A, None);
    assert_eq!(
        Response::parse(&query_itself, &q, 0x1234),
        Err(DnsError::NotAResponse)
    );
}

#[test]
fn large_answers_are_truncated_for_the_client() {
    let q = Query::parse(&query_bytes(1, "big.test", TYPE_A, None)).unwrap();
    let answers: Vec<Rr> = (0..40)
        .map(|i| Rr(b"\xc0\x0c".to_vec(), TYPE_A, 300, vec![10, 0, 0, i]))
        .collect();
    let msg = response_bytes(1, 0x8180, &question("big.test", TYPE_A), &answers, &[]);
    let r = Response::parse(&msg, &q, 1).unwrap();
    assert_eq!(r.addresses.len(), 40);
    let out = r.encode(&q, 0, q.udp_limit());
    assert!(out.len() <= 512);
    assert_eq!(out[2] & 0x02, 0x02, "TC");
    assert_eq!(&out[6..8], &[0, 0]);
    assert!(r.encode(&q, 0, 65_535).len() > 512);
    // A resolver's own truncated response keeps no records.
    let tc = response_bytes(1, 0x8380, &question("big.test", TYPE_A), &[], &[]);
    let r = Response::parse(&tc, &q, 1).unwrap();
    assert!(r.is_truncated());
    assert_eq!(r.encode(&q, 0, 512)[2] & 0x02, 0x02);
}

#[test]
fn negative_answers_take_the_soa_minimum() {
    let q = Query::parse(&query_bytes(9, "nope.test", TYPE_A, None)).unwrap();
    let mut soa = wire_name("ns.test");
    soa.extend_from_slice(&wire_name("admin.test"));
    for field in [1u32, 7200, 3600, 1_209_600, 30] {
        soa.extend_from_slice(&field.to_be_bytes());
    }
    let msg = response_bytes(
        9,
        0x8183,
        &question("nope.test", TYPE_A),
        &[],
        &[Rr(wire_name("test"), TYPE_SOA, 900, soa)],
    );
    let r = Response::parse(&msg, &q, 9).unwrap();
    assert_eq!(r.rcode(), Rcode::NxDomain as u8);
    assert_eq!(r.ttl, 30);
    assert!(r.addresses.is_empty());
    let out = r.encode(&q, 0, 512);
    assert_eq!(out[3] & 0x0f, 3);
    assert_eq!(&out[8..10], &[0, 1], "the SOA is relayed");
}

#[test]
fn cname_chains_take_their_least_ttl_and_loops_end() {
    let q = Query::parse(&query_bytes(1, "a.test", TYPE_A, None)).unwrap();
    let answers = [
        Rr(wire_name("a.test"), TYPE_CNAME, 100, wire_name("b.test")),
        Rr(wire_name("B.test"), TYPE_CNAME, 20, wire_name("c.test")),
        Rr(wire_name("c.test"), TYPE_A, 50, vec![192, 0, 2, 1]),
        Rr(wire_name("other.test"), TYPE_A, 50, vec![192, 0, 2, 2]),
        Rr(
            wire_name("c.test"),
            TYPE_AAAA,
            0x8000_0000,
            vec![0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        ),
    ];
    let msg = response_bytes(1, 0x8180, &question("a.test", TYPE_A), &answers, &[]);
    let r = Response::parse(&msg, &q, 1).unwrap();
    assert_eq!(
        r.addresses,
        [
            Address {
                ip: ip("192.0.2.1"),
                ttl: 20
            },
            Address {
                ip: ip("2001:db8::1"),
                ttl: 0
            }
        ]
    );
    let looping = [
        Rr(wire_name("a.test"), TYPE_CNAME, 100, wire_name("b.test")),
        Rr(wire_name("b.test"), TYPE_CNAME, 100, wire_name("a.test")),
    ];
    let msg = response_bytes(1, 0x8180, &question("a.test", TYPE_A), &looping, &[]);
    assert!(Response::parse(&msg, &q, 1).unwrap().addresses.is_empty());
}

#[test]
fn bad_records_are_errors() {
    let q = Query::parse(&query_bytes(1, "a.test", TYPE_A, None)).unwrap();
    for (answer, expected) in [
        (
            Rr(wire_name("a.test"), TYPE_A, 1, vec![1, 2, 3]),
            DnsError::BadRdata(TYPE_A),
        ),
        (
            Rr(wire_name("a.test"), TYPE_AAAA, 1, vec![0; 4]),
            DnsError::BadRdata(TYPE_AAAA),
        ),
        (
            Rr(
                wire_name("a.test"),
                TYPE_CNAME,
                1,
                b"\x01b\x00\x00".to_vec(),
            ),
            DnsError::BadRdata(TYPE_CNAME),
        ),
        (
            Rr(b"\xc0\x40".to_vec(), TYPE_A, 1, vec![1, 2, 3, 4]),
            DnsError::BadPointer,
        ),
    ] {
        let msg = response_bytes(1, 0x8180, &question("a.test", TYPE_A), &[answer], &[]);
        assert_eq!(Response::parse(&msg, &q, 1), Err(expected));
    }
}

#[test]
fn no_prefix_or_corruption_of_a_message_panics() {
    let q = Query::parse(&query_bytes(0x1234, "www.example.com", TYPE_A, None)).unwrap();
    let msg = captured();
    for len in 0..msg.len() {
        let _ = Query::parse(&msg[..len]);
        let _ = Response::parse(&msg[..len], &q, 0x1234);
        for at in 0..len {
            for byte in [0x00, 0x3f, 0xc0, 0xff] {
                let mut bad = msg[..len].to_vec();
                bad[at] = byte;
                let _ = Query::parse(&bad);
                if let Ok(r) = Response::parse(&bad, &q, 0x1234) {
                    let _ = r.encode(&q, 5, 512);
                }
            }
        }
    }
}

#[test]
fn type_names() {
    assert_eq!(type_name(TYPE_A), "A");
    assert_eq!(type_name(TYPE_HTTPS), "HTTPS");
    assert_eq!(type_name(999), "TYPE999");
}
