//! A client's query: one question, at most an EDNS OPT record; the query veil sends a
//! resolver for it, and the error responses veil answers with itself.

use super::{
    name::{self, Name},
    wire::{u16_at, u32_at, Header, CD, HEADER_LEN, QR, RA, RD},
    DnsError, Rcode, TYPE_OPT,
};

/// The UDP payload size veil advertises, to resolvers and to clients (the DNS flag day's).
pub const EDNS_UDP_SIZE: u16 = 1232;
/// The largest UDP response veil sends a client that advertises more.
pub const MAX_UDP_RESPONSE: usize = 4096;
/// The largest response to a client without EDNS (RFC 1035).
pub const PLAIN_UDP_RESPONSE: usize = 512;

/// The DNSSEC OK bit in an OPT record's TTL field.
const DO: u32 = 0x8000;

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The client's id, echoed in the response.
    pub id: u16,
    /// The question.
    pub question: Question,
    /// The client's EDNS, if it sent an OPT record.
    pub edns: Option<Edns>,
    /// The header's flags as the client sent them.
    flags: u16,
    /// The question section as the client sent it (name in its case, type, class).
    question_wire: Vec<u8>,
}

/// The one question of a query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    /// The name asked about.
    pub name: Name,
    /// The record type asked for.
    pub qtype: u16,
    /// The class (1 is IN).
    pub qclass: u16,
}

/// What a client's OPT record said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// The largest UDP response it takes.
    pub udp_size: u16,
    /// Whether it wants DNSSEC records (the DO bit).
    pub dnssec_ok: bool,
}

impl Query {
    /// Parses a client's query: a standard query (opcode 0), exactly one question with an
    /// uncompressed name, no answer or authority records, at most one additional record, which
    /// must be an OPT record, and nothing after it.
    pub fn parse(msg: &[u8]) -> Result<Self, DnsError> {
        let header = Header::parse(msg)?;
        if header.flags & QR != 0 {
            return Err(DnsError::NotAQuery);
        }
        if header.opcode() != 0 {
            return Err(DnsError::Opcode(header.opcode()));
        }
        if header.qd != 1 {
            return Err(DnsError::QuestionCount(header.qd));
        }
        if header.an != 0 || header.ns != 0 || header.ar > 1 {
            return Err(DnsError::UnexpectedRecords);
        }
        let (question, end) = read_question(msg, HEADER_LEN)?;
        let question_wire = msg
            .get(HEADER_LEN..end)
            .ok_or(DnsError::Truncated)?
            .to_vec();
        let (edns, end) = if header.ar == 1 {
            let (edns, end) = read_opt(msg, end)?;
            (Some(edns), end)
        } else {
            (None, end)
        };
        if end != msg.len() {
            return Err(DnsError::TrailingBytes);
        }
        Ok(Self {
            id: header.id,
            question,
            edns,
            flags: header.flags,
            question_wire,
        })
    }

    /// The query veil sends a resolver for this one, with the resolver's `id`: the client's
    /// question as sent, its RD and CD bits, and veil's own OPT record (the client's DO bit,
    /// no options), so nothing else the client put in its query reaches the resolver.
    pub fn upstream(&self, id: u16) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.question_wire.len() + 11);
        Header {
            id,
            flags: self.flags & (RD | CD),
            qd: 1,
            an: 0,
            ns: 0,
            ar: 1,
        }
        .write(&mut out);
        out.extend_from_slice(&self.question_wire);
        write_opt(&mut out, self.edns.is_some_and(|e| e.dnssec_ok));
        out
    }

    /// veil's own answer to this query with `rcode` and no records: the client's id and
    /// question, and an OPT record if the client sent one.
    pub fn error(&self, rcode: Rcode) -> Vec<u8> {
        self.respond(self.response_flags(0) | u16::from(rcode as u8), 0, 0, &[])
    }

    /// Whether the client set the CD bit (checking disabled: it validates DNSSEC itself).
    pub fn checking_disabled(&self) -> bool {
        self.flags & CD != 0
    }

    /// The most bytes a UDP response to this query may have: 512 without EDNS, else what the
    /// client advertised, between 512 and [`MAX_UDP_RESPONSE`].
    pub fn udp_limit(&self) -> usize {
        self.edns.map_or(PLAIN_UDP_RESPONSE, |e| {
            usize::from(e.udp_size).clamp(PLAIN_UDP_RESPONSE, MAX_UDP_RESPONSE)
        })
    }

    /// The question section's length on the wire.
    pub(super) fn question_len(&self) -> usize {
        self.question_wire.len()
    }

    /// The flags of a response to this query: QR, RA, the client's RD and CD, and `extra`.
    pub(super) fn response_flags(&self, extra: u16) -> u16 {
        QR | RA | (self.flags & (RD | CD)) | extra
    }

    /// A response with `flags`, `an` answer and `ns` authority records in `records` (whose
    /// compression pointers assume the question at its place), the client's id and question,
    /// and an OPT record if the client sent one.
    pub(super) fn respond(&self, flags: u16, an: u16, ns: u16, records: &[u8]) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(HEADER_LEN + self.question_wire.len() + records.len() + 11);
        Header {
            id: self.id,
            flags,
            qd: 1,
            an,
            ns,
            ar: u16::from(self.edns.is_some()),
        }
        .write(&mut out);
        out.extend_from_slice(&self.question_wire);
        out.extend_from_slice(records);
        if let Some(edns) = self.edns {
            write_opt(&mut out, edns.dnssec_ok);
        }
        out
    }
}

/// veil's answer with `rcode` to a message whose header parsed but nothing else did: the id,
/// opcode and RD bit echoed, no sections. `None` for a response (never answered, so two
/// servers cannot bounce messages between them) or fewer than 12 bytes.
pub fn error_for_header(msg: &[u8], rcode: Rcode) -> Option<Vec<u8>> {
    let header = Header::parse(msg).ok()?;
    if header.flags & QR != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(HEADER_LEN);
    Header {
        id: header.id,
        flags: QR | RA | (header.flags & (0x7800 | RD)) | u16::from(rcode as u8),
        qd: 0,
        an: 0,
        ns: 0,
        ar: 0,
    }
    .write(&mut out);
    Some(out)
}

/// Reads the question at `start`, whose name must not be compressed, and where it ends.
pub(super) fn read_question(msg: &[u8], start: usize) -> Result<(Question, usize), DnsError> {
    let read = name::read(msg, start)?;
    if read.compressed {
        return Err(DnsError::CompressedQuestion);
    }
    let question = Question {
        name: read.name,
        qtype: u16_at(msg, read.end)?,
        qclass: u16_at(msg, read.end + 2)?,
    };
    Ok((question, read.end + 4))
}

/// Reads the OPT record at `start` and where it ends.
fn read_opt(msg: &[u8], start: usize) -> Result<(Edns, usize), DnsError> {
    let read = name::read(msg, start)?;
    if !read.name.as_str().is_empty() || u16_at(msg, read.end)? != TYPE_OPT {
        return Err(DnsError::UnexpectedRecords);
    }
    let udp_size = u16_at(msg, read.end + 2)?;
    let ttl = u32_at(msg, read.end + 4)?;
    let rdlen = usize::from(u16_at(msg, read.end + 8)?);
    let end = read.end + 10 + rdlen;
    if end > msg.len() {
        return Err(DnsError::Truncated);
    }
    let edns = Edns {
        udp_size,
        dnssec_ok: ttl & DO != 0,
    };
    Ok((edns, end))
}

/// Appends veil's OPT record: root name, [`EDNS_UDP_SIZE`], version 0, the DO bit if asked, no
/// options.
fn write_opt(out: &mut Vec<u8>, dnssec_ok: bool) {
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&EDNS_UDP_SIZE.to_be_bytes());
    out.extend_from_slice(&(if dnssec_ok { DO } else { 0 }).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
}
