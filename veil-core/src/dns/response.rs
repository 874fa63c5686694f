//! A resolver's response: checked against the query it answers; its answer and authority
//! records kept for the client (and the cache), with where their TTLs are; the addresses it
//! gives the question's name, following CNAMEs in the answer section.
//!
//! The additional section is neither read nor relayed: veil answers with its own OPT record
//! (when the client sent one) and nothing else there. Every name in the answer and authority
//! sections is read (so a pointer into the dropped additional section, or a forward one, is an
//! error); names inside the data of types veil does not read are relayed as they are.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    name::{self, Name},
    query::{read_question, Query},
    wire::{u16_at, u32_at, Header, AD, HEADER_LEN, QR, TC},
    DnsError, Rcode, CLASS_IN, TYPE_A, TYPE_AAAA, TYPE_CNAME, TYPE_SOA,
};

/// The most CNAMEs followed from the question's name.
pub const MAX_CHAIN: usize = 16;

/// A resolver's response, checked against its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The resolver's flags.
    flags: u16,
    /// How many answer records `records` holds, then how many authority records.
    an: u16,
    ns: u16,
    /// The answer and authority sections as received; their compression pointers assume the
    /// question at its place, `question_len` bytes long.
    records: Vec<u8>,
    question_len: usize,
    /// Where each record's TTL is in `records`.
    ttl_offsets: Vec<usize>,
    /// The addresses the response gives the question's name.
    pub addresses: Vec<Address>,
    /// How long the response may be cached, in seconds: the least TTL of its records (an SOA
    /// counts its MINIMUM too, for negative answers); 0 without records.
    pub ttl: u32,
}

/// An address a response gives a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// The address.
    pub ip: IpAddr,
    /// Its TTL in seconds: the least of the address record's and those of the CNAMEs that led
    /// to it.
    pub ttl: u32,
}

/// One answer record, as far as veil reads it.
struct Answer {
    owner: Name,
    ttl: u32,
    data: Data,
}

/// What veil reads of a record's data.
enum Data {
    Address(IpAddr),
    Alias(Name),
    Other,
}

impl Response {
    /// Parses `msg` as the answer to `query`, sent to the resolver with `id`: a response
    /// (opcode 0) with that id and the query's question. A truncated response keeps no
    /// records.
    pub fn parse(msg: &[u8], query: &Query, id: u16) -> Result<Self, DnsError> {
        let header = Header::parse(msg)?;
        if header.flags & QR == 0 {
            return Err(DnsError::NotAResponse);
        }
        if header.id != id {
            return Err(DnsError::IdMismatch);
        }
        if header.opcode() != 0 {
            return Err(DnsError::Opcode(header.opcode()));
        }
        if header.qd != 1 {
            return Err(DnsError::QuestionCount(header.qd));
        }
        let (question, start) = read_question(msg, HEADER_LEN)?;
        let question_len = start - HEADER_LEN;
        if question != query.question || question_len != query.question_len() {
            return Err(DnsError::QuestionMismatch);
        }
        let mut response = Self {
            flags: header.flags,
            an: 0,
            ns: 0,
            records: Vec::new(),
            question_len,
            ttl_offsets: Vec::new(),
            addresses: Vec::new(),
            ttl: 0,
        };
        if header.flags & TC != 0 {
            return Ok(response);
        }
        let mut pos = start;
        let mut answers = Vec::new();
        let mut least_ttl = None::<u32>;
        for section in [Section::Answer, Section::Authority] {
            let count = match section {
                Section::Answer => header.an,
                Section::Authority => header.ns,
            };
            for _ in 0..count {
                let record = read_record(msg, pos, section)?;
                response.ttl_offsets.push(record.ttl_at - start);
                least_ttl = Some(least_ttl.map_or(record.cache_ttl, |t| t.min(record.cache_ttl)));
                answers.extend(record.answer);
                pos = record.end;
            }
        }
        response.an = header.an;
        response.ns = header.ns;
        response.records = msg.get(start..pos).ok_or(DnsError::Truncated)?.to_vec();
        response.ttl = least_ttl.unwrap_or(0);
        response.addresses = addresses(&answers, &query.question.name);
        Ok(response)
    }

    /// The response code.
    pub fn rcode(&self) -> u8 {
        // Four bits, so the cast keeps everything.
        (self.flags & 0x000f) as u8
    }

    /// How many bytes its records take (what a cache holds of it).
    pub fn records_len(&self) -> usize {
        self.records.len()
    }

    /// Whether the resolver said its response was truncated (ask again over TCP).
    pub fn is_truncated(&self) -> bool {
        self.flags & TC != 0
    }

    /// The response for the client's `query` (the same question): its id and question, these
    /// records with their TTLs less `age` seconds (from a cache), and at most `limit` bytes;
    /// past that, no records and the TC bit, so the client asks again over TCP.
    pub fn encode(&self, query: &Query, age: u32, limit: usize) -> Vec<u8> {
        if query.question_len() != self.question_len {
            // The records' pointers would be off: only a response to another question.
            return query.error(Rcode::ServFail);
        }
        let kept = (self.flags & (AD | 0x000f)) | (self.flags & TC);
        let mut records = self.records.clone();
        for &at in &self.ttl_offsets {
            if let Ok(ttl) = u32_at(&records, at) {
                let ttl = effective_ttl(ttl).saturating_sub(age);
                records[at..at + 4].copy_from_slice(&ttl.to_be_bytes());
            }
        }
        let out = query.respond(query.response_flags(kept), self.an, self.ns, &records);
        if out.len() > limit {
            query.respond(query.response_flags(kept | TC), 0, 0, &[])
        } else {
            out
        }
    }
}

/// The section a record is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Answer,
    Authority,
}

/// What reading one record gives.
struct Record {
    /// Where its TTL is in the message.
    ttl_at: usize,
    /// How long it may be cached (an SOA: the lesser of its TTL and MINIMUM).
    cache_ttl: u32,
    /// The record, if it is in the answer section.
    answer: Option<Answer>,
    /// Where it ends.
    end: usize,
}

/// Reads the record at `pos`, in `section`.
fn read_record(msg: &[u8], pos: usize, section: Section) -> Result<Record, DnsError> {
    let owner = name::read(msg, pos)?;
    let at = owner.end;
    let rtype = u16_at(msg, at)?;
    let class = u16_at(msg, at + 2)?;
    let ttl = effective_ttl(u32_at(msg, at + 4)?);
    let rdlen = usize::from(u16_at(msg, at + 8)?);
    let data_at = at + 10;
    let end = data_at + rdlen;
    let rdata = msg.get(data_at..end).ok_or(DnsError::Truncated)?;
    let bad = || DnsError::BadRdata(rtype);
    let data = match (rtype, class) {
        (TYPE_A, CLASS_IN) => {
            let octets: [u8; 4] = rdata.try_into().map_err(|_| bad())?;
            Data::Address(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        (TYPE_AAAA, CLASS_IN) => {
            let octets: [u8; 16] = rdata.try_into().map_err(|_| bad())?;
            Data::Address(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        (TYPE_CNAME, _) => {
            let target = name::read(msg, data_at)?;
            if target.end != end {
                return Err(bad());
            }
            Data::Alias(target.name)
        }
        _ => Data::Other,
    };
    let mut cache_ttl = ttl;
    if rtype == TYPE_SOA {
        let mname = name::read(msg, data_at)?;
        let rname = name::read(msg, mname.end)?;
        if rname.end + 20 != end {
            return Err(bad());
        }
        cache_ttl = cache_ttl.min(effective_ttl(u32_at(msg, rname.end + 16)?));
    }
    let answer = (section == Section::Answer).then_some(Answer {
        owner: owner.name,
        ttl,
        data,
    });
    Ok(Record {
        ttl_at: at + 4,
        cache_ttl,
        answer,
        end,
    })
}

/// The addresses `answers` give `name`, following at most [`MAX_CHAIN`] CNAMEs.
fn addresses(answers: &[Answer], name: &Name) -> Vec<Address> {
    let mut found = Vec::new();
    let mut current = name;
    let mut chain_ttl = u32::MAX;
    for _ in 0..=MAX_CHAIN {
        let mut next = None;
        for answer in answers.iter().filter(|a| a.owner == *current) {
            match &answer.data {
                Data::Address(ip) => found.push(Address {
                    ip: *ip,
                    ttl: chain_ttl.min(answer.ttl),
                }),
                Data::Alias(target) if next.is_none() => next = Some((target, answer.ttl)),
                Data::Alias(_) | Data::Other => {}
            }
        }
        let Some((target, ttl)) = next else { break };
        chain_ttl = chain_ttl.min(ttl);
        current = target;
    }
    found
}

/// A TTL as RFC 2181 §8 reads it: one with the top bit set counts as 0.
fn effective_ttl(ttl: u32) -> u32 {
    if ttl & 0x8000_0000 != 0 {
        0
    } else {
        ttl
    }
}
