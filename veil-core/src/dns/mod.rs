//! DNS messages, sans I/O: what veil's DNS proxy reads and writes (RFC 1035, EDNS from RFC
//! 6891).
//!
//! - `wire.rs`: the header and bounds-checked integers.
//! - `name.rs`: names, with compression pointers read loop-proof and length-limited, and
//!   the normalised text ([`Name`]) they are compared by.
//! - `query.rs`: a client's [`Query`] (one question, at most an OPT record), the query veil
//!   sends a resolver for it, and veil's own error responses.
//! - `response.rs`: a resolver's [`Response`], checked against the query; its records for
//!   the client with TTLs aged, and the A/AAAA addresses it gives the question's name.
//!
//! Malformed input is a [`DnsError`], never a panic.

mod name;
mod query;
mod response;
mod wire;

pub use name::{Name, MAX_NAME_LEN};
pub use query::{
    error_for_header, Edns, Query, Question, EDNS_UDP_SIZE, MAX_UDP_RESPONSE, PLAIN_UDP_RESPONSE,
};
pub use response::{Address, Response, MAX_CHAIN};
pub use wire::HEADER_LEN;

/// Type A: an IPv4 address.
pub const TYPE_A: u16 = 1;
/// Type CNAME: an alias.
pub const TYPE_CNAME: u16 = 5;
/// Type SOA: a zone's start of authority (negative answers' TTL).
pub const TYPE_SOA: u16 = 6;
/// Type AAAA: an IPv6 address.
pub const TYPE_AAAA: u16 = 28;
/// Type OPT: EDNS.
pub const TYPE_OPT: u16 = 41;
/// Type SVCB: service binding.
pub const TYPE_SVCB: u16 = 64;
/// Type HTTPS: service binding for HTTPS.
pub const TYPE_HTTPS: u16 = 65;
/// Class IN: the Internet.
pub const CLASS_IN: u16 = 1;

/// Response codes veil answers with or reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Rcode {
    /// No error.
    NoError = 0,
    /// The query could not be read.
    FormErr = 1,
    /// The server failed (here: the resolvers did not answer usably).
    ServFail = 2,
    /// The name does not exist.
    NxDomain = 3,
    /// The kind of query is not implemented.
    NotImp = 4,
    /// The server will not answer (here: the egress policy does not allow the name).
    Refused = 5,
}

/// Why a message could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The message ends in the middle of something.
    #[error("message truncated")]
    Truncated,
    /// A name is longer than 255 bytes on the wire.
    #[error("name longer than 255 bytes")]
    NameTooLong,
    /// A label's length byte has a reserved type (0x40 or 0x80).
    #[error("label type {0:#04x} is reserved")]
    LabelType(u8),
    /// A compression pointer goes forward, loops, or into the header.
    #[error("bad compression pointer")]
    BadPointer,
    /// A query's question used a compression pointer.
    #[error("compressed name in the question")]
    CompressedQuestion,
    /// A query had the response bit set.
    #[error("not a query")]
    NotAQuery,
    /// A resolver's message did not have the response bit set.
    #[error("not a response")]
    NotAResponse,
    /// Not a standard query (opcode 0).
    #[error("opcode {0} is not a standard query")]
    Opcode(u8),
    /// Not exactly one question.
    #[error("{0} questions, expected 1")]
    QuestionCount(u16),
    /// A query with answer or authority records, or additional records other than one OPT.
    #[error("unexpected records in a query")]
    UnexpectedRecords,
    /// Bytes after the end of the message.
    #[error("bytes after the end of the message")]
    TrailingBytes,
    /// A response's id is not the query's.
    #[error("response id does not match the query")]
    IdMismatch,
    /// A response's question is not the query's.
    #[error("response question does not match the query")]
    QuestionMismatch,
    /// A record's data does not fit its type.
    #[error("bad data in a record of type {0}")]
    BadRdata(u16),
}

/// A record type's name, as audit records show it: `A`, `AAAA`, ..., or `TYPE<n>`.
pub fn type_name(rtype: u16) -> String {
    let name = match rtype {
        TYPE_A => "A",
        2 => "NS",
        TYPE_CNAME => "CNAME",
        TYPE_SOA => "SOA",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        TYPE_AAAA => "AAAA",
        33 => "SRV",
        TYPE_OPT => "OPT",
        TYPE_SVCB => "SVCB",
        TYPE_HTTPS => "HTTPS",
        255 => "ANY",
        other => return format!("TYPE{other}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests;
